//! Plain-line clients: a person at `nc` or `telnet`.
//!
//! Before registration a line is the password (if the server has one) and
//! then a name. After it, a line is text for the current room unless it
//! starts with `/`: then it is a command, looked up by name in
//! [`COMMANDS`] like the IRC ones, so new commands are a function and a
//! row. Replies are short sentences a person can read (`*** ...` for
//! information, `! ...` for mistakes), never numerics.

use crate::chat::channel::{ListKind, is_valid_key, parse_modes};
use crate::chat::listing::Listing;
use crate::chat::names::{USER_LEN, is_valid_channel, is_valid_nick, truncate_at_char};
use crate::chat::reply::plain;
use crate::chat::state::User;
use crate::chat::{ChannelName, ConnId, Event, MessageKind, Nick, Protocol, State, Target};

use super::{Out, Session};

/// What a `/command` is handed.
struct Ctx<'a> {
    session: &'a Session,
    state: &'a State,
    now: u64,
    /// The command as typed (for "unknown command"), without the `/`.
    verb: &'a str,
    /// Everything after the command, trimmed.
    rest: &'a str,
    /// The room the person's lines go to, if any, as it names itself.
    focus: Option<ChannelName>,
    out: Out<'a>,
}

impl Ctx<'_> {
    fn conn(&self) -> ConnId {
        self.session.conn
    }
}

type Handler = fn(&mut Ctx<'_>);

/// Every `/command`, by its lower-case name (commands are typed in any case).
const COMMANDS: &[(&str, Handler)] = &[
    ("nick", nick),
    ("join", join),
    ("part", part),
    ("leave", part),
    ("msg", msg),
    ("me", me),
    ("topic", topic),
    ("kick", kick),
    ("invite", invite),
    ("mode", mode),
    ("names", names),
    ("who", names),
    ("quit", quit),
    ("help", help),
];

fn handler(verb: &str) -> Option<Handler> {
    COMMANDS.iter().find(|(name, _)| *name == verb).map(|&(_, handler)| handler)
}

const HELP: &[&str] = &[
    "*** Lines you type go to your current room. Commands:",
    "***   /nick NAME        change your name",
    "***   /join #room       join a room; your lines then go there",
    "***   /part [#room]     leave a room",
    "***   /msg NAME text    send a private message",
    "***   /me action        describe an action",
    "***   /topic [text]     show or set the room's topic",
    "***   /names [#room]    who is in the room (@ operator, + voice)",
    "***   /kick NAME [why]  put someone out of the room (operators)",
    "***   /invite NAME [#room]  invite someone to a room",
    "***   /mode [+m|+o NAME|+b MASK|...]  show or change the room's modes",
    "***   /quit [reason]    leave the chat",
    "***   //text            send a line that starts with /",
];

const NO_ROOM_TO_SPEAK: &str = "! You are in no room: /join #room first";

impl Session {
    /// A plain client's lines before it has a name: the password, if the
    /// server wants one, then names until one is free.
    pub(super) fn plain_name(&mut self, line: &str, out: &mut Out) {
        let name = line.trim();
        if !self.password_ok() {
            // With a password set, a person's first line is the password
            // (as the greeting asks); "PASS secret" works too.
            let given = name.strip_prefix("PASS ").unwrap_or(name).trim();
            self.password = Some(given.to_string());
            if self.password_ok() {
                plain(out.buf(), "*** Password accepted. Type a name and press Enter to start chatting.");
            } else {
                plain(out.buf(), "! Wrong password");
                self.close_with(out, "Bad password");
            }
            return;
        }
        if !is_valid_nick(name) {
            plain(
                out.buf(),
                &format!(
                    "! {name:?} is not a valid name: use up to 30 letters, digits or -_[]{{}}\\`^|, starting with a letter. Type another name:"
                ),
            );
            return;
        }
        // A plain client's name is its user name too, cut as USERLEN says.
        let user = truncate_at_char(name, USER_LEN);
        out.event(self.register_event(name, user, name, Protocol::Plain));
    }

    /// A registered plain client's line: text for its room, or a command.
    pub(super) fn plain_line(&self, line: &str, user: &User, state: &State, now: u64, mut out: Out) {
        let focus = user.focus.as_ref().and_then(|name| state.channel_named(name)).map(|c| c.name.clone());
        let Some(command) = line.strip_prefix('/').filter(|rest| !rest.starts_with('/')) else {
            // "//text" sends "/text" as it is.
            let text = line.strip_prefix('/').unwrap_or(line);
            if text.trim().is_empty() {
                return;
            }
            match focus {
                // A room's name starts with '#' (JOIN checks), so it is
                // the channel target a typed name would be.
                Some(channel) => out.event(Event::Message {
                    conn: self.conn,
                    kind: MessageKind::Privmsg,
                    target: Target::Channel(channel),
                    text: text.to_string(),
                    at: now,
                }),
                None => plain(out.buf(), NO_ROOM_TO_SPEAK),
            }
            return;
        };
        let (verb, rest) = command.split_once(' ').unwrap_or((command, ""));
        let mut ctx = Ctx { session: self, state, now, verb, rest: rest.trim(), focus, out };
        match handler(&verb.to_ascii_lowercase()) {
            Some(handle) => handle(&mut ctx),
            None => unknown(&mut ctx),
        }
    }
}

fn unknown(ctx: &mut Ctx<'_>) {
    plain(ctx.out.buf(), &format!("! Unknown command /{}; /help lists commands", ctx.verb));
}

fn nick(ctx: &mut Ctx<'_>) {
    let name = ctx.rest;
    if is_valid_nick(name) {
        ctx.out.event(Event::Nick { conn: ctx.conn(), nick: Nick::new(name) });
    } else {
        plain(ctx.out.buf(), &format!("! {name:?} is not a valid name"));
    }
}

/// `/join room` and `/join #room` are the same: people need not know
/// channel syntax. A word after the room is its key.
fn join(ctx: &mut Ctx<'_>) {
    let (room, key) = ctx.rest.split_once(' ').unwrap_or((ctx.rest, ""));
    let channel = if room.starts_with('#') { room.to_string() } else { format!("#{room}") };
    if !is_valid_channel(&channel) {
        plain(ctx.out.buf(), &format!("! {channel:?} is not a valid room name"));
    } else {
        let (conn, at) = (ctx.conn(), ctx.now);
        let key = Some(key.trim()).filter(|k| is_valid_key(k)).map(str::to_string);
        ctx.out.event(Event::Join { conn, channel: ChannelName::from(channel), key, at });
    }
}

/// `/kick NAME [reason]`: out of the current room.
fn kick(ctx: &mut Ctx<'_>) {
    let Some(channel) = ctx.focus.clone() else {
        plain(ctx.out.buf(), "! You are in no room");
        return;
    };
    let (nick, reason) = ctx.rest.split_once(' ').unwrap_or((ctx.rest, ""));
    if nick.is_empty() {
        plain(ctx.out.buf(), "! Usage: /kick NAME [reason]");
        return;
    }
    let reason = Some(reason.trim()).filter(|r| !r.is_empty()).map(str::to_string);
    ctx.out.event(Event::Kick { conn: ctx.conn(), channel, nick: Nick::new(nick), reason });
}

/// `/invite NAME [#room]`: into the current room unless one is named.
fn invite(ctx: &mut Ctx<'_>) {
    let (nick, room) = ctx.rest.split_once(' ').unwrap_or((ctx.rest, ""));
    let channel = match (room.trim(), &ctx.focus) {
        ("", Some(focus)) => focus.clone(),
        ("", None) => {
            plain(ctx.out.buf(), "! You are in no room: /invite NAME #room");
            return;
        }
        (room, _) => ChannelName::new(room),
    };
    if nick.is_empty() {
        plain(ctx.out.buf(), "! Usage: /invite NAME [#room]");
        return;
    }
    ctx.out.event(Event::Invite { conn: ctx.conn(), nick: Nick::new(nick), channel });
}

/// `/mode` shows the current room's modes; `/mode +m`, `/mode +o bob`
/// (or `/mode #room ...`) changes them, as IRC's MODE does.
fn mode(ctx: &mut Ctx<'_>) {
    let mut words = ctx.rest.split_whitespace();
    let first = words.next();
    let (channel, modestring) = match (first, &ctx.focus) {
        (Some(room), _) if room.starts_with('#') => (ChannelName::new(room), words.next()),
        (_, Some(focus)) => (focus.clone(), first),
        (_, None) => {
            plain(ctx.out.buf(), "! You are in no room");
            return;
        }
    };
    let params: Vec<String> = words.map(str::to_string).collect();
    let Some(chan) = ctx.state.channel_named(&channel) else {
        plain(ctx.out.buf(), &format!("! No such room: {channel}"));
        return;
    };
    let Some(modestring) = modestring else {
        let (letters, params) = chan.modes.describe(chan.is_member(ctx.conn()));
        let shown = std::iter::once(letters).chain(params).collect::<Vec<_>>().join(" ");
        plain(ctx.out.buf(), &format!("*** {} modes: {shown}", chan.name));
        return;
    };
    let parsed = parse_modes(modestring, &params);
    for letter in parsed.unknown {
        plain(ctx.out.buf(), &format!("! Unknown mode letter: {letter}"));
    }
    for (letter, param, why) in parsed.invalid {
        plain(ctx.out.buf(), &format!("! {why}: {letter} {param}"));
    }
    for kind in parsed.queries {
        let masks: Vec<&str> = chan.list(kind).iter().map(|e| e.mask.as_str()).collect();
        let what = match kind {
            ListKind::Ban => "Bans",
            ListKind::Except => "Ban exceptions",
            ListKind::InviteExcept => "Invite exceptions",
        };
        let list = if masks.is_empty() { "none".to_string() } else { masks.join(", ") };
        plain(ctx.out.buf(), &format!("*** {what} on {}: {list}", chan.name));
    }
    if !parsed.changes.is_empty() {
        let (conn, at) = (ctx.conn(), ctx.now);
        ctx.out.event(Event::Mode { conn, channel: chan.name.clone(), changes: parsed.changes, at });
    }
}

/// `/part` leaves the current room; `/part #room [reason]` a named one.
fn part(ctx: &mut Ctx<'_>) {
    let conn = ctx.conn();
    match (ctx.rest.is_empty(), &ctx.focus) {
        (true, None) => plain(ctx.out.buf(), "! You are in no room"),
        (true, Some(channel)) => ctx.out.event(Event::Part { conn, channel: channel.clone(), reason: None }),
        (false, _) => {
            let (channel, reason) = ctx.rest.split_once(' ').unwrap_or((ctx.rest, ""));
            ctx.out.event(Event::Part {
                conn,
                channel: ChannelName::new(channel),
                reason: (!reason.is_empty()).then(|| reason.to_string()),
            });
        }
    }
}

fn msg(ctx: &mut Ctx<'_>) {
    match ctx.rest.split_once(' ') {
        Some((target, text)) if !text.trim().is_empty() => ctx.out.event(Event::Message {
            conn: ctx.conn(),
            kind: MessageKind::Privmsg,
            target: Target::new(target),
            text: text.to_string(),
            at: ctx.now,
        }),
        _ => plain(ctx.out.buf(), "! Usage: /msg NAME text"),
    }
}

/// `/me` sends a CTCP ACTION, which IRC clients in the room show as one.
/// Without an action it is not a command at all.
fn me(ctx: &mut Ctx<'_>) {
    if ctx.rest.is_empty() {
        unknown(ctx);
        return;
    }
    match ctx.focus.take() {
        Some(channel) => ctx.out.event(Event::Message {
            conn: ctx.conn(),
            kind: MessageKind::Privmsg,
            target: Target::Channel(channel),
            text: format!("\u{1}ACTION {}\u{1}", ctx.rest),
            at: ctx.now,
        }),
        None => plain(ctx.out.buf(), NO_ROOM_TO_SPEAK),
    }
}

/// `/topic text` sets the current room's topic; `/topic` shows it.
fn topic(ctx: &mut Ctx<'_>) {
    let Some(channel) = &ctx.focus else {
        plain(ctx.out.buf(), "! You are in no room");
        return;
    };
    if !ctx.rest.is_empty() {
        let event = Event::Topic {
            conn: ctx.conn(),
            channel: channel.clone(),
            topic: ctx.rest.to_string(),
            at: ctx.now,
        };
        ctx.out.event(event);
        return;
    }
    match ctx.state.channel_named(channel).and_then(|c| c.topic.as_ref()) {
        Some(topic) => plain(ctx.out.buf(), &format!("*** Topic of {channel}: {}", topic.text)),
        None => plain(ctx.out.buf(), &format!("*** {channel} has no topic")),
    }
}

fn names(ctx: &mut Ctx<'_>) {
    let channel =
        if ctx.rest.is_empty() { ctx.focus.as_ref().map(ChannelName::as_str) } else { Some(ctx.rest) };
    match channel {
        Some(channel) => {
            let listing = Listing::names(channel);
            ctx.out.listing(listing);
        }
        None => plain(ctx.out.buf(), "! You are in no room"),
    }
}

/// Others hear of the quit (the event) before this client's closing line.
fn quit(ctx: &mut Ctx<'_>) {
    let reason = if ctx.rest.is_empty() { "Quit".to_string() } else { format!("Quit: {}", ctx.rest) };
    ctx.out.event(Event::Quit { conn: ctx.conn(), reason: reason.clone() });
    ctx.session.close_with(&mut ctx.out, &reason);
}

fn help(ctx: &mut Ctx<'_>) {
    for line in HELP {
        plain(ctx.out.buf(), line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_the_help_names_has_a_handler() {
        let named =
            HELP.iter().filter_map(|line| line.strip_prefix("***   /")).filter(|l| !l.starts_with('/'));
        for line in named {
            let name = line.split(' ').next().unwrap_or("");
            assert!(handler(name).is_some(), "/help names /{name}, which has no handler");
        }
    }

    #[test]
    fn every_name_is_lower_case_and_listed_once() {
        for (i, (name, _)) in COMMANDS.iter().enumerate() {
            assert_eq!(*name, name.to_ascii_lowercase(), "commands are looked up lower-cased");
            assert!(COMMANDS[..i].iter().all(|(earlier, _)| earlier != name), "/{name} is listed twice");
        }
    }
}
