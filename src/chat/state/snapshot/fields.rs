//! What each field of a snapshot may hold: the rules the session applies
//! before anything becomes an event, applied again to what a snapshot
//! says, since a snapshot comes from the network like a client's line.
//!
//! The names use the session's own checks (`names`, `channel`), so a
//! snapshot can hold exactly what a directory can; texts are held to the
//! lengths the session cuts them to. Every check is linear in its field,
//! and an error quotes at most a few dozen bytes of what it refused.

use crate::chat::caps::Caps;
use crate::chat::channel::{is_valid_key, normalize_mask};
use crate::chat::names::{
    AWAY_LEN, NICK_LEN, REALNAME_LEN, TOPIC_LEN, USER_LEN, is_valid_channel, is_valid_nick, truncate_at_char,
    valid_user,
};
use crate::chat::state::whowas::WasUser;
use crate::chat::{ChannelName, Nick};

use super::{SnapshotError, WasImage};

/// Longest host kept: a DNS name's limit (the server gives an address,
/// which is shorter, but a host is not the session's to choose).
const HOST_LEN: usize = 255;
/// Longest `nick!user@host` kept as who set a topic or a list entry.
const SOURCE_LEN: usize = NICK_LEN + USER_LEN + HOST_LEN + 2;

/// `Ok` if `ok`, otherwise `what` is refused, quoting the start of `value`.
pub(super) fn require(ok: bool, what: &'static str, value: &str) -> Result<(), SnapshotError> {
    if ok {
        return Ok(());
    }
    Err(SnapshotError::InvalidField { what, value: excerpt(value) })
}

/// The start of `value`, to quote in an error without copying a
/// hostile megabyte.
pub(super) fn excerpt(value: &str) -> String {
    let cut = truncate_at_char(value, 40);
    if cut.len() < value.len() { format!("{cut}...") } else { cut.to_string() }
}

pub(super) fn nick(what: &'static str, nick: &str) -> Result<Nick, SnapshotError> {
    require(is_valid_nick(nick), what, nick)?;
    Ok(Nick::new(nick))
}

pub(super) fn channel_name(name: &str) -> Result<ChannelName, SnapshotError> {
    require(is_valid_channel(name), "channel name", name)?;
    Ok(ChannelName::new(name))
}

pub(super) fn user_name(user: &str) -> Result<String, SnapshotError> {
    require(valid_user(user) == Some(user), "user name", user)?;
    Ok(user.to_string())
}

/// A free text the session cuts to `max` bytes: any characters, at most
/// that long.
pub(super) fn text(what: &'static str, text: &str, max: usize) -> Result<String, SnapshotError> {
    require(text.len() <= max, what, text)?;
    Ok(text.to_string())
}

pub(super) fn realname(realname: &str) -> Result<String, SnapshotError> {
    text("real name", realname, REALNAME_LEN)
}

pub(super) fn away(away: Option<&str>) -> Result<Option<String>, SnapshotError> {
    away.map(|a| text("away message", a, AWAY_LEN)).transpose()
}

/// A topic is never empty: an empty TOPIC clears it.
pub(super) fn topic(topic: &str) -> Result<String, SnapshotError> {
    require(!topic.is_empty(), "topic", topic)?;
    text("topic", topic, TOPIC_LEN)
}

/// One word, so it stays one part of a `nick!user@host` and one parameter.
fn word(what: &'static str, word: &str, max: usize) -> Result<String, SnapshotError> {
    let one_word = !word.is_empty() && !word.chars().any(|c| c.is_whitespace() || c.is_control());
    require(one_word && word.len() <= max, what, word)?;
    Ok(word.to_string())
}

pub(super) fn host(host: &str) -> Result<String, SnapshotError> {
    require(!host.contains(['!', '@']), "host", host)?;
    word("host", host, HOST_LEN)
}

/// Who set a topic or a list entry: their `nick!user@host` then.
pub(super) fn source(source: &str) -> Result<String, SnapshotError> {
    word("setter", source, SOURCE_LEN)
}

/// A list's mask, in the normal form the session gives it.
pub(super) fn mask(mask: &str) -> Result<String, SnapshotError> {
    require(normalize_mask(mask).as_deref() == Some(mask), "list mask", mask)?;
    Ok(mask.to_string())
}

pub(super) fn key(key: Option<&str>) -> Result<Option<String>, SnapshotError> {
    key.map(|k| require(is_valid_key(k), "channel key", k).map(|()| k.to_string())).transpose()
}

/// +l takes a positive number.
pub(super) fn limit(limit: Option<u32>) -> Result<Option<u32>, SnapshotError> {
    require(limit != Some(0), "channel limit", "0")?;
    Ok(limit)
}

/// Only capabilities the server offers can have been enabled.
pub(super) fn caps(caps: Caps) -> Result<Caps, SnapshotError> {
    require(caps.is_offered(), "capability set", &format!("{caps:?}"))?;
    Ok(caps)
}

pub(super) fn was_user(was: &WasImage<'_>) -> Result<WasUser, SnapshotError> {
    Ok(WasUser {
        nick: nick("WHOWAS nick", was.nick)?,
        user: user_name(was.user)?,
        host: host(was.host)?,
        realname: realname(was.realname)?,
    })
}
