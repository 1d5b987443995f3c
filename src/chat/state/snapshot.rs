//! Snapshots of the directory: how a node that joins a running network
//! gets the directory as it was at a known position of the event stream,
//! to apply the events after it.
//!
//! A snapshot is one version byte, then the directory in postcard. It
//! holds what `apply` and the queries read and nothing that can be worked
//! out from the rest: the nick index, the id-ordered user index, the
//! nick → watchers index, and each user's channels and invites (the
//! channels' member and invite lists say them) are rebuilt on restore. So
//! a snapshot cannot say two things that disagree; what it can still get
//! wrong (a member who is no user, a nick twice) is refused.
//!
//! The node's identity (server name, network, version, start time) is the
//! restoring node's: it is what that node's clients are told, and nothing
//! `apply` decides depends on it. The reloadable settings (MOTD, operators,
//! limits...) are the snapshot's: `apply` decides JOINs by them and they
//! change only by `Event::Reload` in the stream, so a node that took its
//! own file's instead would decide the events after the snapshot unlike
//! the others until the next reload.
//!
//! The encoding is canonical: users in id order, channels in folded-name
//! order, each channel's members and invites in id order, each user's
//! monitored nicks in folded order, as the directory's own maps hold them.
//! Restore insists on that order, which is also how it finds a repeated
//! key without a set per list. It reads a snapshot from outside as hostile:
//! every name must pass the session's own rules, every list its bounds,
//! and the work and memory are linear in the snapshot's length (serde
//! reserves at most 1 MiB for a list whose items it has not read yet).
//!
//! The format is this module's own small structs, not the directory's
//! types: a field added to `User` or `Channel` does not silently change
//! what a snapshot is, and the structs borrow their text from the state
//! (writing) or the input (reading) rather than copying it twice.

use std::borrow::Cow;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::chat::caps::Caps;
use crate::chat::channel::{Flag, ListEntry};
use crate::chat::info::Reloadable;
use crate::chat::{ConnId, Protocol, ServerInfo};

use super::State;

mod fields;
mod restore;
#[cfg(test)]
mod tests;

/// The version of the format this build writes, and the only one it reads.
pub const VERSION: u8 = 1;

/// Why a snapshot was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("the snapshot is empty")]
    Empty,
    #[error("snapshot version {0} is not the one this node reads ({VERSION})")]
    UnknownVersion(u8),
    #[error("the snapshot does not decode: {0}")]
    Malformed(#[from] postcard::Error),
    #[error("{0} bytes follow the end of the snapshot")]
    TrailingBytes(usize),
    /// A field holds what no session lets in (a nick that is no nick, a
    /// mode bit that means nothing, a text over its length).
    #[error("{what} is not valid: {value:?}")]
    InvalidField { what: &'static str, value: String },
    /// Keys must come in the order the directory keeps them, each once.
    #[error("{what} {key} is out of order or repeated")]
    OutOfOrder { what: &'static str, key: String },
    #[error("two users have the nick {nick}")]
    NickTaken { nick: String },
    #[error("{channel} has {conn:?} as {role}, and there is no such user")]
    NoSuchUser { channel: String, conn: ConnId, role: &'static str },
    #[error("{count} {what} where at most {limit} are kept")]
    TooMany { what: &'static str, count: usize, limit: usize },
    /// The parts are each valid but together no directory could be so.
    #[error("inconsistent: {0}")]
    Inconsistent(String),
}

/// The directory as a snapshot holds it.
#[derive(Debug, Serialize, Deserialize)]
struct Image<'a> {
    settings: Cow<'a, Reloadable>,
    peak_users: u64,
    #[serde(borrow)]
    users: Vec<UserImage<'a>>,
    #[serde(borrow)]
    channels: Vec<ChannelImage<'a>>,
    /// Oldest first.
    #[serde(borrow)]
    whowas: Vec<WasImage<'a>>,
    /// Reloads begun and not finished, per writer (see `reload`).
    reloads: Vec<PendingReload<'a>>,
}

/// A user, without its channels and invites (the channels list them).
#[derive(Debug, Serialize, Deserialize)]
struct UserImage<'a> {
    conn: ConnId,
    nick: &'a str,
    user: &'a str,
    realname: &'a str,
    host: &'a str,
    protocol: Protocol,
    focus: Option<&'a str>,
    away: Option<&'a str>,
    /// +i, +o, +w, +B, one bit each in that order.
    modes: u8,
    caps: Caps,
    signon: u64,
    last_active: u64,
    #[serde(borrow)]
    monitoring: Vec<&'a str>,
}

#[derive(Debug, Serialize, Deserialize)]
struct ChannelImage<'a> {
    name: &'a str,
    created_at: u64,
    #[serde(borrow)]
    topic: Option<Dated<'a>>,
    /// The flags in `Flag::ALL`'s order, one bit each.
    flags: u8,
    key: Option<&'a str>,
    limit: Option<u32>,
    /// Each member's status: +o then +v, one bit each.
    members: Vec<(ConnId, u8)>,
    #[serde(borrow)]
    bans: Vec<Dated<'a>>,
    #[serde(borrow)]
    excepts: Vec<Dated<'a>>,
    #[serde(borrow)]
    invite_excepts: Vec<Dated<'a>>,
    invited: Vec<ConnId>,
}

/// A topic, or a list entry's mask: the text, who set it and when.
#[derive(Debug, Serialize, Deserialize)]
struct Dated<'a> {
    text: &'a str,
    set_by: &'a str,
    set_at: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct WasImage<'a> {
    nick: &'a str,
    user: &'a str,
    host: &'a str,
    realname: &'a str,
}

#[derive(Debug, Serialize, Deserialize)]
struct PendingReload<'a> {
    from: u16,
    next_part: u32,
    bytes: Cow<'a, [u8]>,
}

impl<'a> Dated<'a> {
    fn of(entry: &'a ListEntry) -> Dated<'a> {
        Dated { text: &entry.mask, set_by: &entry.set_by, set_at: entry.set_at }
    }
}

/// Flags as one byte, the first the lowest bit.
fn pack(flags: &[bool]) -> u8 {
    flags.iter().rev().fold(0, |bits, &on| bits << 1 | u8::from(on))
}

/// The `N` flags `pack` made of `bits`; a bit beyond them is refused as
/// `what`, since no writer sets one.
fn unpack<const N: usize>(bits: u8, what: &'static str) -> Result<[bool; N], SnapshotError> {
    if u32::from(bits) >> N != 0 {
        return Err(SnapshotError::InvalidField { what, value: format!("{bits:#010b}") });
    }
    Ok(std::array::from_fn(|i| bits >> i & 1 == 1))
}

impl State {
    /// The directory as it is now, to restore elsewhere with
    /// [`State::restore`] (see the module doc for what it holds).
    pub fn snapshot(&self) -> Vec<u8> {
        let users = self.users_from(std::ops::Bound::Unbounded).map(|(conn, u)| UserImage {
            conn,
            nick: u.nick.as_str(),
            user: &u.user,
            realname: &u.realname,
            host: &u.host,
            protocol: u.protocol,
            focus: u.focus.as_ref().map(|f| f.as_str()),
            away: u.away.as_deref(),
            modes: pack(&[u.invisible, u.oper, u.wallops, u.bot]),
            caps: u.caps,
            signon: u.signon,
            last_active: u.last_active,
            monitoring: u.monitoring.iter().map(|n| n.as_str()).collect(),
        });
        let channels = self.channels.values().map(|c| ChannelImage {
            name: c.name.as_str(),
            created_at: c.created_at,
            topic: c.topic.as_ref().map(|t| Dated { text: &t.text, set_by: &t.set_by, set_at: t.set_at }),
            flags: pack(&Flag::ALL.map(|f| c.modes.flag(f))),
            key: c.modes.key.as_deref(),
            limit: c.modes.limit,
            members: c.members.iter().map(|(&conn, m)| (conn, pack(&[m.op, m.voice]))).collect(),
            bans: c.bans.iter().map(Dated::of).collect(),
            excepts: c.excepts.iter().map(Dated::of).collect(),
            invite_excepts: c.invite_excepts.iter().map(Dated::of).collect(),
            invited: c.invited.iter().copied().collect(),
        });
        let image = Image {
            settings: Cow::Borrowed(&self.info.reloadable),
            peak_users: self.peak_users as u64,
            users: users.collect(),
            channels: channels.collect(),
            whowas: self
                .whowas
                .entries()
                .map(|w| WasImage {
                    nick: w.nick.as_str(),
                    user: &w.user,
                    host: &w.host,
                    realname: &w.realname,
                })
                .collect(),
            reloads: self
                .reloads
                .pending()
                .map(|(from, next_part, bytes)| PendingReload {
                    from,
                    next_part,
                    bytes: Cow::Borrowed(bytes),
                })
                .collect(),
        };
        postcard::to_extend(&image, vec![VERSION]).expect("a directory always encodes")
    }

    /// The directory a [`snapshot`](State::snapshot) holds, under the
    /// identity of `info` and the settings of the snapshot. Refuses
    /// another version, bytes that do not decode or follow the end, and
    /// content no directory could have, saying which.
    pub fn restore(bytes: &[u8], info: Arc<ServerInfo>) -> Result<State, SnapshotError> {
        let (&version, rest) = bytes.split_first().ok_or(SnapshotError::Empty)?;
        if version != VERSION {
            return Err(SnapshotError::UnknownVersion(version));
        }
        let (image, trailing) = postcard::take_from_bytes::<Image<'_>>(rest)?;
        if !trailing.is_empty() {
            return Err(SnapshotError::TrailingBytes(trailing.len()));
        }
        restore::rebuild(image, info)
    }
}
