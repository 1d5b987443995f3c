//! Events: the only way shared chat state changes.
//!
//! An event is a fact a session asks the directory to record ("alice joins
//! #rust"). Events carry everything [`crate::chat::State::apply`] needs, the
//! clock included (`at`), so applying them stays deterministic: the pool
//! models append them to an ordered log and every replica applies the same
//! sequence. They hold plain owned data and derive serde, so that they can
//! be encoded into a bounded log record (see the pool's `codec`) and, later,
//! carried between machines.
//!
//! Names that identify a user or a channel are [`Nick`]s and
//! [`ChannelName`]s, folded once when the event is made or decoded, so that
//! no replica folds them again to apply the event (see `name`).

use serde::{Deserialize, Serialize};

use crate::chat::caps::Caps;
use crate::chat::channel::ModeChange;
use crate::chat::{ChannelName, Nick, Target};

/// The most bytes an event may take encoded: what one record of the pool's
/// log may hold (a record spans up to 8 slots of 1008 bytes). Sessions
/// build events from one line of at most 510 bytes plus names they bound
/// (`names`) and, for a message, the sender's IRCv3 tags (a tag section of
/// at most 4096 bytes); the largest, a message with every byte of both
/// used, stays under 6 KiB even when the 510 bytes are all invalid UTF-8
/// (each then three bytes of U+FFFD). A property test (the pool's
/// `codec`) checks that every event a session builds fits.
pub const MAX_EVENT_BYTES: usize = 8000;

/// Which connection a user is on: the worker that owns it, the slot within
/// that worker and a generation that tells apart successive connections that
/// reuse the slot. The iterative model uses worker 0 and a counter for slot.
///
/// In a cluster (see `server::cluster`) the numbers also say which node and
/// which run of it: a node's workers are numbered from its node number
/// times [`ConnId::CELLS_PER_NODE`], and the high half of a generation is
/// the node's epoch (a new one each time the node starts). On one machine
/// both are 0 and the numbers are exactly the pool's cells and generations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ConnId {
    pub worker: u16,
    pub slot: u32,
    pub generation: u32,
}

impl ConnId {
    /// Worker numbers each node has: more than a pool's cells (65).
    pub const CELLS_PER_NODE: u16 = 128;

    /// The cluster node whose worker accepted this connection (0 alone).
    pub fn node(&self) -> u16 {
        self.worker / Self::CELLS_PER_NODE
    }

    /// Which run of that node it was (0 alone).
    pub fn epoch(&self) -> u32 {
        self.generation >> 16
    }
}

/// What a client speaks, decided by its first line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Protocol {
    /// IRC: the client gets protocol messages and numerics.
    Irc,
    /// Plain lines for `nc`: readable text in, readable text out.
    Plain,
}

/// PRIVMSG or NOTICE: they differ only in that a NOTICE never causes an
/// automatic reply, errors included. TAGMSG (IRCv3 message-tags) is a
/// PRIVMSG with tags and no text, heard only by clients with message-tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MessageKind {
    Privmsg,
    Notice,
    Tagmsg,
}

/// What IRCv3 clients learn of a message beyond its text: when the server
/// took it (`time` for server-time), its id (`msgid`) and the sender's
/// client-only tags (`+key`, relayed to clients with message-tags). Made
/// by the session, so every replica writes the same tags.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    /// Unix milliseconds.
    pub at: u64,
    /// The sender's session's count of messages: with the connection id,
    /// an id no other message has.
    pub id: u64,
    /// Client-only tags, keys with their `+`, values unescaped. Bounded by
    /// the tag section they came in (4096 bytes), so the event still fits
    /// a log record.
    pub tags: Vec<(String, String)>,
}

impl Stamp {
    /// message-tags' `msgid` for a message `from` sent: its connection
    /// (worker, slot, generation: unique while the server runs) and the
    /// count, so no two messages share one.
    pub fn msgid(&self, from: ConnId) -> String {
        format!("{:x}-{:x}-{:x}-{:x}", from.worker, from.slot, from.generation, self.id)
    }
}

impl MessageKind {
    pub fn command(self) -> &'static str {
        match self {
            MessageKind::Privmsg => "PRIVMSG",
            MessageKind::Notice => "NOTICE",
            MessageKind::Tagmsg => "TAGMSG",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// Claim `nick` and become a user. Loses to an earlier claim of the same
    /// nick; the loser is told and stays unregistered. `at` is the signon
    /// time WHOIS shows (317).
    Register {
        conn: ConnId,
        nick: Nick,
        user: String,
        realname: String,
        host: String,
        protocol: Protocol,
        at: u64,
        /// The IRCv3 capabilities negotiated before registering.
        caps: Caps,
    },
    /// A registered client's enabled IRCv3 capabilities are now `caps`
    /// (after an acknowledged `CAP REQ`): every replica renders for it.
    Caps {
        conn: ConnId,
        caps: Caps,
    },
    Nick {
        conn: ConnId,
        nick: Nick,
    },
    /// JOIN with the key given for this channel, if any; `at` is the
    /// channel's creation time if this JOIN creates it.
    Join {
        conn: ConnId,
        channel: ChannelName,
        key: Option<String>,
        at: u64,
    },
    /// `JOIN 0`: leave every channel.
    PartAll {
        conn: ConnId,
    },
    Part {
        conn: ConnId,
        channel: ChannelName,
        reason: Option<String>,
    },
    /// PRIVMSG or NOTICE (or TAGMSG); its stamp says when it was said
    /// (server-time, and the end of the sender's idle time: WHOIS 317,
    /// WHOX `l`) and carries its tags.
    Message {
        conn: ConnId,
        kind: MessageKind,
        target: Target,
        text: String,
        stamp: Stamp,
    },
    Topic {
        conn: ConnId,
        channel: ChannelName,
        topic: String,
        at: u64,
    },
    /// MODE on a channel: the changes, parsed and bounded by the session
    /// (`channel::parse_modes`); whether the user may make them, and which
    /// change anything, is the directory's to decide. `at` dates list
    /// entries.
    Mode {
        conn: ConnId,
        channel: ChannelName,
        changes: Vec<ModeChange>,
        at: u64,
    },
    /// KICK of one nick (a KICK naming several is one event each).
    Kick {
        conn: ConnId,
        channel: ChannelName,
        nick: Nick,
        reason: Option<String>,
    },
    /// INVITE `nick` to `channel`.
    Invite {
        conn: ConnId,
        nick: Nick,
        channel: ChannelName,
    },
    /// The user is gone: by QUIT, a lost connection, or being dropped.
    Quit {
        conn: ConnId,
        reason: String,
    },
    /// AWAY with a message marks the user away; without, back.
    Away {
        conn: ConnId,
        message: Option<String>,
    },
    /// A user mode the user sets or clears itself: +i, +w, +B.
    UserMode {
        conn: ConnId,
        mode: UserMode,
        on: bool,
    },
    /// SETNAME: the user's real name is now `realname` (validated by the
    /// session: bounded, one line).
    SetName {
        conn: ConnId,
        realname: String,
    },
    /// An operator's privileges (user mode +o) taken, after OPER gave the
    /// right credentials, or given up (`MODE nick -o`).
    Oper {
        conn: ConnId,
        on: bool,
    },
    /// An operator's WALLOPS message to every user with +w.
    WallopsMessage {
        conn: ConnId,
        text: String,
    },
    /// An operator ends `target`'s connection.
    Kill {
        conn: ConnId,
        target: Nick,
        reason: String,
    },
    /// MONITOR +, - or C: the user's list of nicks to be told about.
    Monitor {
        conn: ConnId,
        change: MonitorChange,
    },
    /// A pool worker died: every user of that worker incarnation quits.
    /// Applied in log order, so each replica quits exactly the users it
    /// knows of at that point, which is every user the worker registered.
    WorkerLost {
        worker: u16,
        generation: u32,
        reason: String,
    },
    /// A cluster node stopped being part of the network (its heartbeat
    /// ran out, or it restarted as a new epoch): every user it served in
    /// that epoch quits, on every node, in stream order.
    NodeLost {
        node: u16,
        epoch: u32,
        reason: String,
    },
    /// A piece of new settings from a reload (see `chat::reload`):
    /// writer `from`'s piece `part`; every replica installs the settings
    /// when it applies the `last`. Built by the server from its config
    /// file, never from what a client sends.
    Reload {
        from: u16,
        part: u32,
        last: bool,
        bytes: Vec<u8>,
    },
}

impl Event {
    /// The connection whose action this event records (none for events
    /// the server makes about a whole worker).
    pub fn conn(&self) -> Option<ConnId> {
        match self {
            Event::Register { conn, .. }
            | Event::Nick { conn, .. }
            | Event::Join { conn, .. }
            | Event::PartAll { conn }
            | Event::Part { conn, .. }
            | Event::Message { conn, .. }
            | Event::Topic { conn, .. }
            | Event::Mode { conn, .. }
            | Event::Kick { conn, .. }
            | Event::Invite { conn, .. }
            | Event::Quit { conn, .. }
            | Event::Away { conn, .. }
            | Event::UserMode { conn, .. }
            | Event::SetName { conn, .. }
            | Event::Oper { conn, .. }
            | Event::WallopsMessage { conn, .. }
            | Event::Kill { conn, .. }
            | Event::Monitor { conn, .. }
            | Event::Caps { conn, .. } => Some(*conn),
            Event::WorkerLost { .. } | Event::NodeLost { .. } | Event::Reload { .. } => None,
        }
    }
}

/// The user modes a user sets on itself with `MODE nick +x` (+o, which
/// only OPER gives, is [`Event::Oper`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UserMode {
    /// +i: hidden from WHO and NAMES of those who share no channel.
    Invisible,
    /// +w: WALLOPS reach the user.
    Wallops,
    /// +B (IRCv3 bot mode): marked as a bot in WHOIS, WHO and a `bot` tag.
    Bot,
}

impl UserMode {
    /// Every user mode a user sets itself, in the order `MODE nick` lists them.
    pub const ALL: [UserMode; 3] = [UserMode::Invisible, UserMode::Wallops, UserMode::Bot];

    /// Its letter in `MODE`, and for `Bot` the `BOT` ISUPPORT token and
    /// WHO flag.
    pub const fn letter(self) -> char {
        match self {
            UserMode::Invisible => 'i',
            UserMode::Wallops => 'w',
            UserMode::Bot => 'B',
        }
    }

    pub fn from_letter(letter: char) -> Option<UserMode> {
        UserMode::ALL.into_iter().find(|m| m.letter() == letter)
    }
}

/// How MONITOR changes a user's list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MonitorChange {
    /// `MONITOR + nicks`: also answered with who is on (730) and off (731).
    Add(Vec<Nick>),
    /// `MONITOR - nicks`.
    Remove(Vec<Nick>),
    /// `MONITOR C`.
    Clear,
}
