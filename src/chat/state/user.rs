//! A registered user as the directory holds it: who they are, where they
//! are, the modes and lists that are theirs.
//!
//! Kept apart from `State` so that the directory's file is about how
//! events change it, and this one about what a user is.

use std::collections::BTreeSet;

use crate::chat::caps::Caps;
use crate::chat::{ChannelName, Nick, Protocol, UserMode};

use super::whowas::WasUser;

/// A registered user.
#[derive(Debug, Clone)]
pub struct User {
    pub nick: Nick,
    pub user: String,
    pub realname: String,
    pub host: String,
    pub protocol: Protocol,
    /// The channels the user is in, each named as the channel names itself
    /// ([`Channel::name`](crate::chat::channel::Channel::name)), so that what
    /// is shown from here reads the same.
    pub channels: BTreeSet<ChannelName>,
    /// Plain clients only: the channel their lines go to (named as it
    /// names itself).
    pub focus: Option<ChannelName>,
    /// The AWAY message, while away.
    pub away: Option<String>,
    /// User mode +i.
    pub invisible: bool,
    /// User mode +o: an IRC operator (OPER gave the right credentials).
    pub oper: bool,
    /// User mode +w: WALLOPS reach the user.
    pub wallops: bool,
    /// User mode +B: a bot (IRCv3 bot mode).
    pub bot: bool,
    /// Channels the user is invited to and has not joined since (each
    /// channel's `invited` names the user back), for INVITE's list.
    pub invites: BTreeSet<ChannelName>,
    /// The IRCv3 capabilities the client has enabled: how its lines are
    /// written (see `caps`).
    pub caps: Caps,
    /// When the user registered (Unix seconds, from the event).
    pub signon: u64,
    /// When the user last sent a message: idle time runs from here.
    pub last_active: u64,
    /// The nicks the user monitors (MONITOR), at most `MONITOR_LIMIT`.
    pub monitoring: BTreeSet<Nick>,
}

impl User {
    /// `nick!user@host`, the source of everything the user does.
    pub fn prefix(&self) -> String {
        format!("{}!{}@{}", self.nick, self.user, self.host)
    }

    /// Whether the user has set `mode`.
    pub fn has_mode(&self, mode: UserMode) -> bool {
        match mode {
            UserMode::Invisible => self.invisible,
            UserMode::Wallops => self.wallops,
            UserMode::Bot => self.bot,
        }
    }

    pub(super) fn mode_flag(&mut self, mode: UserMode) -> &mut bool {
        match mode {
            UserMode::Invisible => &mut self.invisible,
            UserMode::Wallops => &mut self.wallops,
            UserMode::Bot => &mut self.bot,
        }
    }

    /// Seconds since the user last said something, at `now`.
    pub fn idle(&self, now: u64) -> u64 {
        now.saturating_sub(self.last_active)
    }

    pub(super) fn was(&self) -> WasUser {
        WasUser {
            nick: self.nick.clone(),
            user: self.user.clone(),
            host: self.host.clone(),
            realname: self.realname.clone(),
        }
    }
}
