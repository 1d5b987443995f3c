//! Channels as the directory keeps them: members and their status (operator,
//! voice), the modes set on the channel, its ban, exception and
//! invite-exception lists, and the masks those lists hold.
//!
//! Everything here is plain data and pure functions, so that both sides of
//! the event log use the same rules: the session parses a MODE line into
//! [`ModeChange`]s (syntax, before anything is an event) with
//! [`parse_modes`], and `State::apply` decides with the methods of
//! [`Channel`] what a change or a JOIN does, in event order. Changes cross
//! processes inside events, so they are serde-derived values, not code.
//!
//! Everything a client sends is bounded here: masks and keys are validated
//! and length-capped, a line carries at most [`MAX_MODE_PARAMS`] modes
//! with a parameter and [`MAX_MODE_CHANGES`] changes in all, and each list
//! holds at most [`MAX_LIST_ENTRIES`] masks.
//!
//! What a channel is and its rules are this file; reading a MODE line is
//! `parse`, and the masks lists hold (their form and how they match) are
//! `mask`, both used by the session and the directory alike.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::chat::caps::Caps;
use crate::chat::change::Refusal;
use crate::chat::ctcp;
use crate::chat::{ChannelName, ConnId, Nick};

mod mask;
mod parse;

pub use mask::{mask_matches, normalize_mask};
pub use parse::{ParsedModes, is_valid_key, parse_modes};

/// Most modes with a parameter one MODE line may change (advertised as
/// MODES); later ones are ignored, as the spec allows.
pub const MAX_MODE_PARAMS: usize = 6;
/// Most changes of any kind taken from one MODE line: `+tttt...` must not
/// make an event larger than a log slot.
pub const MAX_MODE_CHANGES: usize = 20;
/// Most masks in each of a channel's lists (advertised as MAXLIST).
pub const MAX_LIST_ENTRIES: usize = 100;
/// Longest channel key accepted (advertised as KEYLEN).
pub const KEY_LEN: usize = 23;
/// Longest mask kept in a list, after expansion to `nick!user@host`.
pub const MASK_LEN: usize = 100;
/// Most nicks one KICK may name (advertised in TARGMAX); more are dropped.
pub const KICK_TARGETS: usize = 4;

/// A member's status in a channel: the prefix modes it holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Membership {
    /// +o: may change modes, kick, invite to +i, set a +t topic.
    pub op: bool,
    /// +v: may speak in a +m channel.
    pub voice: bool,
}

impl Membership {
    /// The highest prefix, as NAMES, WHO and WHOIS show it to clients
    /// without `multi-prefix`.
    pub fn prefix(self) -> &'static str {
        if self.op {
            "@"
        } else if self.voice {
            "+"
        } else {
            ""
        }
    }

    /// The prefixes a client with `caps` is shown: all of them, highest
    /// first, with `multi-prefix`; the highest alone otherwise.
    pub fn prefixes(self, caps: Caps) -> &'static str {
        if !caps.has(Caps::MULTI_PREFIX) {
            return self.prefix();
        }
        match (self.op, self.voice) {
            (true, true) => "@+",
            (true, false) => "@",
            (false, true) => "+",
            (false, false) => "",
        }
    }
}

/// What a STATUSMSG target (`@#chan`, `+#chan`) asks of the members who
/// hear it: this status or a higher one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    /// `@`: the operators.
    Op,
    /// `+`: the voiced members and the operators.
    Voice,
}

impl Status {
    /// The prefixes a message target may start with (advertised as
    /// STATUSMSG), highest first.
    pub const SYMBOLS: &'static str = "@+";

    pub fn symbol(self) -> char {
        match self {
            Status::Op => '@',
            Status::Voice => '+',
        }
    }

    /// The status a target's leading prefixes ask for, and the rest of the
    /// target, if it has any. Of several (`@+#chan`) the lowest counts, so
    /// no member the sender named is left out.
    pub fn split(target: &str) -> Option<(Status, &str)> {
        let rest = target.trim_start_matches(['@', '+']);
        let prefixes = &target[..target.len() - rest.len()];
        match (prefixes.contains('+'), prefixes.is_empty()) {
            (_, true) => None,
            (true, false) => Some((Status::Voice, rest)),
            (false, false) => Some((Status::Op, rest)),
        }
    }

    /// Whether a member with `membership` hears a message for this status.
    pub fn admits(self, membership: Membership) -> bool {
        match self {
            Status::Op => membership.op,
            Status::Voice => membership.op || membership.voice,
        }
    }
}

/// The channel modes that are on or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Flag {
    /// +C: no CTCP but ACTION is said here.
    NoCtcp,
    /// +i: JOIN needs an invite or an invite exception.
    InviteOnly,
    /// +m: only voiced members and operators speak.
    Moderated,
    /// +n: only members speak.
    NoExternal,
    /// +s: hidden from LIST, and from NAMES and WHOIS of non-members.
    Secret,
    /// +t: only operators set the topic.
    TopicOps,
}

impl Flag {
    /// In the order 324 lists them.
    pub const ALL: [Flag; 6] =
        [Flag::NoCtcp, Flag::InviteOnly, Flag::Moderated, Flag::NoExternal, Flag::Secret, Flag::TopicOps];

    pub fn letter(self) -> char {
        match self {
            Flag::NoCtcp => 'C',
            Flag::InviteOnly => 'i',
            Flag::Moderated => 'm',
            Flag::NoExternal => 'n',
            Flag::Secret => 's',
            Flag::TopicOps => 't',
        }
    }

    fn from_letter(c: char) -> Option<Flag> {
        Flag::ALL.into_iter().find(|f| f.letter() == c)
    }
}

/// The three lists of masks a channel keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ListKind {
    /// +b: who may not join, nor speak unless voiced.
    Ban,
    /// +e: exempt from the bans.
    Except,
    /// +I: may join a +i channel without an invite.
    InviteExcept,
}

impl ListKind {
    pub fn letter(self) -> char {
        match self {
            ListKind::Ban => 'b',
            ListKind::Except => 'e',
            ListKind::InviteExcept => 'I',
        }
    }

    fn from_letter(c: char) -> Option<ListKind> {
        [ListKind::Ban, ListKind::Except, ListKind::InviteExcept].into_iter().find(|k| k.letter() == c)
    }
}

/// One change a MODE line asks for, as the session parsed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ModeChange {
    Flag {
        flag: Flag,
        on: bool,
    },
    /// +k key, or -k.
    Key(Option<String>),
    /// +l limit, or -l.
    Limit(Option<u32>),
    /// +o / -o nick.
    Op {
        nick: Nick,
        on: bool,
    },
    /// +v / -v nick.
    Voice {
        nick: Nick,
        on: bool,
    },
    /// +b/+e/+I mask or their removal; the mask is normalized.
    List {
        kind: ListKind,
        mask: String,
        on: bool,
    },
}

impl ModeChange {
    pub fn on(&self) -> bool {
        match self {
            ModeChange::Flag { on, .. }
            | ModeChange::Op { on, .. }
            | ModeChange::Voice { on, .. }
            | ModeChange::List { on, .. } => *on,
            ModeChange::Key(key) => key.is_some(),
            ModeChange::Limit(limit) => limit.is_some(),
        }
    }

    pub fn letter(&self) -> char {
        match self {
            ModeChange::Flag { flag, .. } => flag.letter(),
            ModeChange::Key(_) => 'k',
            ModeChange::Limit(_) => 'l',
            ModeChange::Op { .. } => 'o',
            ModeChange::Voice { .. } => 'v',
            ModeChange::List { kind, .. } => kind.letter(),
        }
    }
}

/// The modes in effect, flags and parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Modes {
    pub no_ctcp: bool,
    pub invite_only: bool,
    pub moderated: bool,
    pub no_external: bool,
    pub secret: bool,
    pub topic_ops: bool,
    pub key: Option<String>,
    pub limit: Option<u32>,
}

impl Default for Modes {
    /// A new channel is +n, as it was before there were modes; +t is the
    /// operators' to set (chatter's channels have always let members set
    /// the topic).
    fn default() -> Modes {
        Modes {
            no_ctcp: false,
            invite_only: false,
            moderated: false,
            no_external: true,
            secret: false,
            topic_ops: false,
            key: None,
            limit: None,
        }
    }
}

impl Modes {
    pub fn flag(&self, flag: Flag) -> bool {
        match flag {
            Flag::NoCtcp => self.no_ctcp,
            Flag::InviteOnly => self.invite_only,
            Flag::Moderated => self.moderated,
            Flag::NoExternal => self.no_external,
            Flag::Secret => self.secret,
            Flag::TopicOps => self.topic_ops,
        }
    }

    pub fn set_flag(&mut self, flag: Flag, on: bool) {
        let field = match flag {
            Flag::NoCtcp => &mut self.no_ctcp,
            Flag::InviteOnly => &mut self.invite_only,
            Flag::Moderated => &mut self.moderated,
            Flag::NoExternal => &mut self.no_external,
            Flag::Secret => &mut self.secret,
            Flag::TopicOps => &mut self.topic_ops,
        };
        *field = on;
    }

    /// The mode string and its parameters, as 324 gives them (`+Cimnstkl`
    /// order); the key only when `show_key` (members see it).
    pub fn describe(&self, show_key: bool) -> (String, Vec<String>) {
        let mut letters = String::from("+");
        let mut params = Vec::new();
        for flag in Flag::ALL {
            if self.flag(flag) {
                letters.push(flag.letter());
            }
        }
        if let Some(key) = &self.key {
            letters.push('k');
            params.push(if show_key { key.clone() } else { "*".to_string() });
        }
        if let Some(limit) = self.limit {
            letters.push('l');
            params.push(limit.to_string());
        }
        (letters, params)
    }
}

/// A mask in a list, with who set it and when (for 367/348/346).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    pub mask: String,
    pub set_by: String,
    pub set_at: u64,
}

#[derive(Debug, Clone)]
pub struct Topic {
    pub text: String,
    /// The setter's `nick!user@host`, as 333 gives it.
    pub set_by: String,
    pub set_at: u64,
}

#[derive(Debug, Clone)]
pub struct Channel {
    /// The name as first joined: its key is the channel's, its written
    /// form what everyone is shown.
    pub name: ChannelName,
    pub topic: Option<Topic>,
    /// Member → status. The creator is the first operator.
    pub members: BTreeMap<ConnId, Membership>,
    /// Unix seconds of the JOIN that made it (329).
    pub created_at: u64,
    pub modes: Modes,
    pub bans: Vec<ListEntry>,
    pub excepts: Vec<ListEntry>,
    pub invite_excepts: Vec<ListEntry>,
    /// Users invited and not joined since: each may pass +i once.
    pub invited: BTreeSet<ConnId>,
}

impl Channel {
    pub fn new(name: ChannelName, created_at: u64) -> Channel {
        Channel {
            name,
            topic: None,
            members: BTreeMap::new(),
            created_at,
            modes: Modes::default(),
            bans: Vec::new(),
            excepts: Vec::new(),
            invite_excepts: Vec::new(),
            invited: BTreeSet::new(),
        }
    }

    pub fn is_member(&self, conn: ConnId) -> bool {
        self.members.contains_key(&conn)
    }

    pub fn is_op(&self, conn: ConnId) -> bool {
        self.members.get(&conn).is_some_and(|m| m.op)
    }

    pub fn list(&self, kind: ListKind) -> &[ListEntry] {
        match kind {
            ListKind::Ban => &self.bans,
            ListKind::Except => &self.excepts,
            ListKind::InviteExcept => &self.invite_excepts,
        }
    }

    pub fn list_mut(&mut self, kind: ListKind) -> &mut Vec<ListEntry> {
        match kind {
            ListKind::Ban => &mut self.bans,
            ListKind::Except => &mut self.excepts,
            ListKind::InviteExcept => &mut self.invite_excepts,
        }
    }

    /// Whether `source` (`nick!user@host`) matches a ban and no exception.
    pub fn is_banned(&self, source: &str) -> bool {
        let matches = |list: &[ListEntry]| list.iter().any(|e| mask_matches(&e.mask, source));
        matches(&self.bans) && !matches(&self.excepts)
    }

    pub fn invite_excepted(&self, source: &str) -> bool {
        self.invite_excepts.iter().any(|e| mask_matches(&e.mask, source))
    }

    /// Whether `conn` (a member or not, known as `source`) may speak here.
    pub fn may_speak(&self, conn: ConnId, source: &str) -> bool {
        let status = self.members.get(&conn).copied();
        if status.is_some_and(|m| m.op || m.voice) {
            return true;
        }
        if status.is_none() && self.modes.no_external {
            return false;
        }
        !self.modes.moderated && !self.is_banned(source)
    }

    /// Why `conn` (known as `source`) may not say `text` here, if it may
    /// not: the rules of [`may_speak`](Channel::may_speak), then +C, which
    /// refuses CTCP other than ACTION from anyone.
    pub fn speech_refusal(&self, conn: ConnId, source: &str, text: &str) -> Option<Refusal> {
        if !self.may_speak(conn, source) {
            Some(Refusal::CannotSendToChannel)
        } else if self.modes.no_ctcp && ctcp::is_other_than_action(text) {
            Some(Refusal::NoCtcp)
        } else {
            None
        }
    }

    /// Whether a non-member asking about the channel may see it at all
    /// (secret channels are hidden from LIST, NAMES and WHOIS).
    pub fn visible_to(&self, conn: ConnId) -> bool {
        !self.modes.secret || self.is_member(conn)
    }

    /// NAMES' channel symbol: `@` secret, `=` public.
    pub fn symbol(&self) -> &'static str {
        if self.modes.secret { "@" } else { "=" }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn described_modes_hide_the_key_from_outsiders() {
        let mut modes = Modes { key: Some("sesame".into()), limit: Some(5), ..Modes::default() };
        modes.set_flag(Flag::Moderated, true);
        assert_eq!(modes.describe(true), ("+mnkl".to_string(), vec!["sesame".into(), "5".into()]));
        assert_eq!(modes.describe(false).1, ["*", "5"]);
    }
}
