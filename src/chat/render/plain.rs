//! What plain (`nc`) clients are sent: one readable sentence per change.
//!
//! Unlike an IRC line, a plain line can depend on who reads it (a message
//! to the channel you are typing in is shown without its `[#room]` tag, a
//! nick change reads "You are now known as" to the one who made it), so
//! these functions take the recipient and return text; [`line`](fn@line) makes it
//! safe for a terminal (see `printable`), once per recipient.

use crate::chat::change::Departure;
use crate::chat::ctcp;
use crate::chat::reply::plain;
use crate::chat::state::{LOBBY, Topic, User};
use crate::chat::{ChannelName, MessageKind, Nick, State};

use super::Neighbour;

/// `text` as a printable line.
pub fn line(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    plain(&mut out, text);
    out
}

pub fn welcome(state: &State, user: &User) -> String {
    let network = &state.info().network;
    let nick = &user.nick;
    format!("*** Welcome to {network}, {nick}! What you type goes to {LOBBY}; /help lists commands.")
}

/// The name is taken: the person is asked again (they are not a user yet).
pub fn registration_refused(nick: &str) -> String {
    format!("! The name {nick} is taken. Type another name:")
}

pub fn nick_refused(nick: &str) -> String {
    format!("! The name {nick} is taken")
}

/// `to` is told of a nick change, theirs or someone else's.
pub fn nick_changed(to: &User, old_nick: &str, nick: &str) -> String {
    if to.nick.as_str() == nick {
        format!("*** You are now known as {nick}")
    } else {
        format!("*** {old_nick} is now known as {nick}")
    }
}

pub fn joined(user: &User, channel: &str) -> String {
    format!("*** {} joined {channel}", user.nick)
}

/// `channel` is where the user's lines go now; it is shown as typed if it
/// has no name on record.
pub fn focused(state: &State, channel: &ChannelName) -> String {
    let name = state.channel_named(channel).map_or(channel.as_str(), |c| c.name.as_str());
    format!("*** Your lines now go to {name}")
}

pub fn topic_on_join(channel: &str, topic: &Topic) -> String {
    format!("*** Topic of {channel}: {}", topic.text)
}

pub fn parted(user: &User, channel: &str, reason: Option<&str>) -> String {
    match reason {
        Some(reason) => format!("*** {} left {channel} ({reason})", user.nick),
        None => format!("*** {} left {channel}", user.nick),
    }
}

/// A channel message as `to` sees it: tagged with its target (`#room`,
/// or `@#room` for the operators alone) unless it is for everyone in the
/// room `to` types in.
pub fn channel_message(
    user: &User,
    kind: MessageKind,
    text: &str,
    channel: &ChannelName,
    target: &str,
    to: &User,
) -> String {
    let said = speech(user.nick.as_str(), kind, text);
    let everyone = target == channel.as_str();
    if everyone && to.focus.as_ref() == Some(channel) { said } else { format!("[{target}] {said}") }
}

pub fn private_message(user: &User, kind: MessageKind, text: &str) -> String {
    format!("[private] {}", speech(user.nick.as_str(), kind, text))
}

pub fn target_away(them: &User, away: &str) -> String {
    format!("*** {} is away: {away}", them.nick)
}

pub fn topic_set(user: &User, channel: &str, topic: &str) -> String {
    let nick = &user.nick;
    if topic.is_empty() {
        format!("*** {nick} cleared the topic of {channel}")
    } else {
        format!("*** {nick} set the topic of {channel} to: {topic}")
    }
}

/// A quit as `to` sees it: named after the first channel (by folded name)
/// they shared, or none.
pub(super) fn quit(departure: &Departure<'_>, to: Neighbour<'_>) -> String {
    let shared = departure.channels.iter().find(|channel| to.in_channel(channel));
    let name = shared.map_or("", ChannelName::as_str);
    format!("*** {} left {name} ({})", departure.nick, departure.reason)
}

/// `*** alice sets mode +o bob on #room`.
pub fn mode_changed(user: &User, channel: &str, modes: &str, params: &[String]) -> String {
    let mut words = modes.to_string();
    for param in params {
        words.push(' ');
        words.push_str(param);
    }
    format!("*** {} sets mode {words} on {channel}", user.nick)
}

/// A kick as `to` sees it: their own reads "you".
pub fn kicked(user: &User, channel: &str, nick: &Nick, reason: &str, to: &User) -> String {
    let whom = if &to.nick == nick { "you" } else { nick.as_str() };
    format!("*** {} kicked {whom} from {channel} ({reason})", user.nick)
}

pub fn inviting(them: &User, channel: &str) -> String {
    format!("*** You invited {} to {channel}", them.nick)
}

pub fn invited(user: &User, channel: &str) -> String {
    format!("*** {} invites you to {channel}: /join {channel} to accept", user.nick)
}

pub fn oper_changed(on: bool) -> String {
    if on { "*** You are now an IRC operator".into() } else { "*** You are no longer an IRC operator".into() }
}

pub fn wallops(from: &User, text: &str) -> String {
    format!("*** WALLOPS from {}: {text}", from.nick)
}

pub fn away_changed(away: bool) -> String {
    format!("*** {}", super::away_words(away))
}

/// How a plain client sees someone speak: `alice: hi`, `-alice- hi` for a
/// notice, `* alice waves` for a CTCP ACTION.
fn speech(nick: &str, kind: MessageKind, text: &str) -> String {
    if let Some(action) = ctcp::action(text) {
        return format!("* {nick} {action}");
    }
    match kind {
        MessageKind::Privmsg => format!("{nick}: {text}"),
        MessageKind::Notice => format!("-{nick}- {text}"),
        // Never shown: `render` sends TAGMSG to clients with message-tags
        // only, and plain clients negotiate nothing.
        MessageKind::Tagmsg => String::new(),
    }
}
