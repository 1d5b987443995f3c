//! What applying an event did to the directory, before anyone is told.
//!
//! [`State::apply`](crate::chat::State::apply) records an event and lists
//! its [`Change`]s; [`render`](fn@crate::chat::render) turns changes into
//! bytes, per protocol, for the connections a model serves. Keeping the two
//! apart means the directory knows nothing of IRC or plain lines, and a
//! replica that serves no one (the pool keeper) does no rendering at all.
//!
//! Rendering happens after the whole event is applied, so a change carries
//! what the directory no longer holds: a quitter's prefix and channels, the
//! members a part or quit reached before they were removed. What has not
//! changed (the members of a channel a message went to, a user's nick when
//! they only joined) is read back from the directory instead, so that the
//! hot path, a channel message, carries no member list and copies no text:
//! a change borrows from the event it came from, its channel's name (folded
//! when the event was made) included.

use std::borrow::Cow;

use crate::chat::channel::Status;
use crate::chat::reply;
use crate::chat::{ChannelName, ConnId, MessageKind, Nick, Protocol, Stamp, UserMode};

/// One thing an event did, in the order its consequences are sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change<'e> {
    /// `conn` became a user.
    Registered { conn: ConnId },
    /// `conn` lost the race for `nick` and is still not a user.
    RegistrationRefused { conn: ConnId, nick: &'e str, protocol: Protocol },
    /// A user's change to `nick` lost to another user's claim.
    NickRefused { conn: ConnId, nick: &'e str },
    /// A user is now `nick`; `recipients` (the user and everyone sharing a
    /// channel) see the change under the old source.
    NickChanged { conn: ConnId, old_nick: Nick, old_prefix: String, nick: &'e str, recipients: Vec<ConnId> },
    /// `conn` joined `channel` (as the joiner typed it: the channel's own
    /// name is read back); all its members hear it.
    Joined { conn: ConnId, channel: &'e ChannelName },
    /// A plain user's lines now go to a channel it was already in
    /// (`channel` as typed, shown if the channel has no name on record).
    Focused { conn: ConnId, channel: &'e ChannelName },
    /// `conn` left `channel` (its own name, kept: the channel may be gone);
    /// `recipients` were its members, the leaver included.
    Parted { conn: ConnId, channel: ChannelName, reason: Option<&'e str>, recipients: Vec<ConnId> },
    /// Said to `channel` (as the sender typed it): every member but the
    /// sender hears it. Membership is read when rendering, as a message
    /// changes none.
    /// The sender hears it too if it has echo-message.
    /// With a `status` (STATUSMSG) only the members with that status or
    /// a higher one hear it, and the line names the target as `@#chan`.
    ChannelMessage {
        conn: ConnId,
        kind: MessageKind,
        channel: &'e ChannelName,
        status: Option<Status>,
        text: &'e str,
        stamp: &'e Stamp,
    },
    /// Said to one user (and echoed as a channel message is).
    PrivateMessage { conn: ConnId, kind: MessageKind, to: ConnId, text: &'e str, stamp: &'e Stamp },
    /// `conn` messaged `target`, who is away: `conn` is told so.
    TargetAway { conn: ConnId, target: ConnId },
    /// The topic of `channel` (as typed) is now `topic` (empty: none);
    /// all its members hear it.
    TopicSet { conn: ConnId, channel: &'e ChannelName, topic: &'e str },
    /// `conn` changed `channel`'s modes: `modes` (like `+o-m`) and its
    /// `params` are what actually changed, in order; every member hears it.
    ModeChanged { conn: ConnId, channel: ChannelName, modes: String, params: Vec<String> },
    /// `conn` kicked `nick` out of `channel`; `recipients` were its
    /// members, the kicked one included (no longer a member when rendered).
    Kicked { conn: ConnId, channel: ChannelName, nick: Nick, reason: Cow<'e, str>, recipients: Vec<ConnId> },
    /// `conn` invited `to` into `channel`: 341 to one, INVITE to the other.
    Invited { conn: ConnId, to: ConnId, channel: ChannelName },
    /// A user is gone: see [`Departure`].
    Quit(Departure<'e>),
    /// `conn` added nicks to its MONITOR list: who of them is on (their
    /// connections), who is not, and who did not fit (734).
    MonitorStatus { conn: ConnId, online: Vec<ConnId>, offline: Vec<Nick>, full: Vec<Nick> },
    /// `who` came on under a nick `watchers` monitor (730).
    MonitorOnline { watchers: Vec<ConnId>, who: ConnId },
    /// `nick` went away (quit, or renamed): `watchers` are told (731).
    MonitorOffline { watchers: Vec<ConnId>, nick: Nick },
    /// `conn` is now an operator (user mode +o), or no longer.
    OperChanged { conn: ConnId, on: bool },
    /// `conn` set or cleared one of its own user modes.
    UserModeChanged { conn: ConnId, mode: UserMode, on: bool },
    /// `conn`'s real name changed (SETNAME): it and those who share a
    /// channel with it, or monitor it, may be told.
    RealnameChanged { conn: ConnId },
    /// An operator's WALLOPS, to every user with +w (in order).
    Wallops { conn: ConnId, text: &'e str, recipients: Vec<ConnId> },
    /// An operator killed `target`: it is told who and why, and its
    /// connection is to be closed by whichever model serves it (the quit
    /// others see follows as a [`Change::Quit`]).
    Killed { target: ConnId, by: String, words: &'e str, protocol: Protocol, host: String },
    /// `conn` is now away (or back).
    AwayChanged { conn: ConnId, away: bool },
    /// The directory refused what `conn` asked; `subject` is what the
    /// refusal is about (a channel or nick), `also` a second parameter
    /// some refusals name (441's channel after the nick, 478's mode).
    Refused { conn: ConnId, refusal: Refusal, subject: Cow<'e, str>, also: Option<String> },
}

/// A user who quit, as they were: they are no longer in the directory when
/// the change is rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Departure<'e> {
    pub conn: ConnId,
    pub nick: Nick,
    pub prefix: String,
    pub protocol: Protocol,
    /// The channels they were in, by key, named as each named itself.
    pub channels: Vec<ChannelName>,
    pub reason: Cow<'e, str>,
    /// Everyone who shared a channel with them, in order, themselves not.
    pub recipients: Vec<ConnId>,
}

/// Why the directory refused an action; each is one IRC numeric, and the
/// same words for plain clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    NoSuchNick,
    NoSuchChannel,
    NotOnChannel,
    CannotSendToChannel,
    /// CTCP other than ACTION to a +C channel (404 too).
    NoCtcp,
    TooManyChannels,
    /// The server holds all the channels it may.
    Unavailable,
    NotOperator,
    UserNotInChannel,
    UserOnChannel,
    ChannelIsFull,
    InviteOnly,
    Banned,
    BadKey,
    ListFull,
    /// Not an IRC operator (user mode +o).
    NoPrivileges,
}

impl Refusal {
    pub fn code(self) -> u16 {
        match self {
            Refusal::NoSuchNick => reply::ERR_NOSUCHNICK,
            Refusal::NoSuchChannel => reply::ERR_NOSUCHCHANNEL,
            Refusal::NotOnChannel => reply::ERR_NOTONCHANNEL,
            Refusal::CannotSendToChannel | Refusal::NoCtcp => reply::ERR_CANNOTSENDTOCHAN,
            Refusal::TooManyChannels => reply::ERR_TOOMANYCHANNELS,
            Refusal::Unavailable => reply::ERR_UNAVAILRESOURCE,
            Refusal::NotOperator => reply::ERR_CHANOPRIVSNEEDED,
            Refusal::UserNotInChannel => reply::ERR_USERNOTINCHANNEL,
            Refusal::UserOnChannel => reply::ERR_USERONCHANNEL,
            Refusal::ChannelIsFull => reply::ERR_CHANNELISFULL,
            Refusal::InviteOnly => reply::ERR_INVITEONLYCHAN,
            Refusal::Banned => reply::ERR_BANNEDFROMCHAN,
            Refusal::BadKey => reply::ERR_BADCHANNELKEY,
            Refusal::ListFull => reply::ERR_BANLISTFULL,
            Refusal::NoPrivileges => reply::ERR_NOPRIVILEGES,
        }
    }

    pub fn text(self) -> &'static str {
        match self {
            Refusal::NoSuchNick => "No such nick/channel",
            Refusal::NoSuchChannel => "No such channel",
            Refusal::NotOnChannel => "You're not on that channel",
            Refusal::CannotSendToChannel => "Cannot send to channel",
            Refusal::NoCtcp => "Cannot send CTCP to channel (+C)",
            Refusal::TooManyChannels => "You have joined too many channels",
            Refusal::Unavailable => {
                "Channel is temporarily unavailable: the server has all the channels it can hold"
            }
            Refusal::NotOperator => "You're not channel operator",
            Refusal::UserNotInChannel => "They aren't on that channel",
            Refusal::UserOnChannel => "is already on channel",
            Refusal::ChannelIsFull => "Cannot join channel (+l)",
            Refusal::InviteOnly => "Cannot join channel (+i)",
            Refusal::Banned => "Cannot join channel (+b)",
            Refusal::BadKey => "Cannot join channel (+k)",
            Refusal::ListFull => "Channel list is full",
            Refusal::NoPrivileges => "Permission Denied- You're not an IRC operator",
        }
    }
}

/// An emptied change buffer, ready for the next event's changes.
///
/// Changes borrow from their event, so a buffer kept across events cannot
/// name one lifetime; this hands the allocation from one to the next. An
/// empty `Vec` collected from a `Vec` of a same-sized type reuses its
/// allocation (the standard library's in-place collection), so a model
/// that keeps a `Vec<Change<'static>>` allocates once, not once per event.
pub fn recycle<'a>(mut changes: Vec<Change<'_>>) -> Vec<Change<'a>> {
    changes.clear();
    changes.into_iter().map(|_| unreachable!("the buffer was cleared")).collect()
}
