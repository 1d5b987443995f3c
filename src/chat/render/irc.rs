//! What IRC clients are sent: protocol messages whose source is the user
//! who acted, and numerics from the server.
//!
//! A line for many recipients (a message, a JOIN) depends only on the
//! change, never on who receives it, which is what lets `render` build it
//! once and share it. Replies to one user take the directory (`&State`)
//! where they report on it (the welcome burst's LUSERS, a topic); the
//! session answers MOTD, LUSERS and TOPIC queries with the same functions,
//! so a query and the burst cannot drift apart.

use crate::chat::change::Departure;
use crate::chat::reply::{self, numeric, numeric_bare};
use crate::chat::state::{Channel, User};
use std::collections::BTreeSet;
use std::time::{Duration, UNIX_EPOCH};

use crate::chat::caps::Caps;
use crate::chat::{ConnId, MessageKind, Stamp, State};
use crate::wire::message::write_line;
use crate::wire::tags::write_tags;

/// 001–005, LUSERS and MOTD: what an IRC client gets on registering.
pub fn welcome(state: &State, user: &User) -> Vec<u8> {
    let mut out = Vec::new();
    write_welcome(state, &mut out, user);
    out
}

/// Appends the welcome burst for `user` (see [`welcome`]).
pub fn write_welcome(state: &State, out: &mut Vec<u8>, user: &User) {
    let info = state.info();
    let server = info.name.as_str();
    let nick = user.nick.as_str();
    numeric(
        out,
        server,
        reply::RPL_WELCOME,
        nick,
        &[],
        &format!("Welcome to the {} Network, {}", info.network, user.prefix()),
    );
    numeric(
        out,
        server,
        reply::RPL_YOURHOST,
        nick,
        &[],
        &format!("Your host is {server}, running version {}", info.version),
    );
    numeric(out, server, reply::RPL_CREATED, nick, &[], &format!("This server was created {}", info.created));
    // User modes, channel modes, and the channel modes with a parameter.
    numeric_bare(
        out,
        server,
        reply::RPL_MYINFO,
        nick,
        &[server, &info.version, "Biow", "CIbeiklmnostv", "Ibeklov"],
    );
    reply::isupport(out, info, nick);
    write_lusers(state, out, nick);
    write_motd(state, out, nick);
}

/// The LUSERS replies (251, 252, 254, 255).
pub fn write_lusers(state: &State, out: &mut Vec<u8>, client: &str) {
    let info = state.info();
    let server = info.name.as_str();
    let users = state.user_count();
    let invisible = state.users().filter(|u| u.invisible).count();
    // In a cluster the other nodes with users are the other servers; this
    // node's users are its local ones. Alone, every user is local.
    let mut nodes: BTreeSet<u16> = state.connections().map(|c| c.node()).collect();
    nodes.insert(info.node);
    let local = state.connections().filter(|c| c.node() == info.node).count();
    numeric(
        out,
        server,
        reply::RPL_LUSERCLIENT,
        client,
        &[],
        &format!(
            "There are {} users and {invisible} invisible on {} servers",
            users - invisible,
            nodes.len()
        ),
    );
    let opers = state.users().filter(|u| u.oper).count().to_string();
    numeric(out, server, reply::RPL_LUSEROP, client, &[&opers], "operator(s) online");
    let channels = state.channel_count().to_string();
    numeric(out, server, reply::RPL_LUSERCHANNELS, client, &[&channels], "channels formed");
    let others = nodes.len() - 1;
    numeric(
        out,
        server,
        reply::RPL_LUSERME,
        client,
        &[],
        &format!("I have {local} clients and {others} servers"),
    );
    // The peak is the network's; a node's own peak is not kept, so the
    // local line gives its current count as its maximum.
    let (global, peak) = (users.to_string(), state.peak_users().to_string());
    let local = local.to_string();
    let local_peak = if others == 0 { &peak } else { &local };
    for (code, scope, now, max) in [
        (reply::RPL_LOCALUSERS, "local", &local, local_peak),
        (reply::RPL_GLOBALUSERS, "global", &global, &peak),
    ] {
        let text = format!("Current {scope} users {now}, max {max}");
        numeric(out, server, code, client, &[now, max], &text);
    }
}

/// The MOTD (375, 372…, 376) or 422 when there is none.
pub fn write_motd(state: &State, out: &mut Vec<u8>, client: &str) {
    let info = state.info();
    let server = info.name.as_str();
    match &info.motd {
        None => numeric(out, server, reply::ERR_NOMOTD, client, &[], "MOTD File is missing"),
        Some(lines) => {
            let start = format!("- {server} Message of the day - ");
            numeric(out, server, reply::RPL_MOTDSTART, client, &[], &start);
            for line in lines {
                numeric(out, server, reply::RPL_MOTD, client, &[], &format!("- {line}"));
            }
            numeric(out, server, reply::RPL_ENDOFMOTD, client, &[], "End of /MOTD command.");
        }
    }
}

/// 332 + 333, or 331 when no topic is set.
pub fn write_topic(state: &State, out: &mut Vec<u8>, client: &str, chan: &Channel) {
    let server = state.info().name.as_str();
    match &chan.topic {
        Some(topic) => {
            numeric(out, server, reply::RPL_TOPIC, client, &[chan.name.as_str()], &topic.text);
            let at = topic.set_at.to_string();
            numeric_bare(
                out,
                server,
                reply::RPL_TOPICWHOTIME,
                client,
                &[chan.name.as_str(), &topic.set_by, &at],
            );
        }
        None => numeric(out, server, reply::RPL_NOTOPIC, client, &[chan.name.as_str()], "No topic is set"),
    }
}

/// 433 to a connection that is not a user yet, so its client is `*`.
pub fn registration_refused(server: &str, nick: &str) -> Vec<u8> {
    let mut out = Vec::new();
    numeric(&mut out, server, reply::ERR_NICKNAMEINUSE, "*", &[nick], "Nickname is already in use");
    out
}

/// 433 to a user, who keeps their nick.
pub fn nick_refused(server: &str, user: &User, nick: &str) -> Vec<u8> {
    let mut out = Vec::new();
    numeric(
        &mut out,
        server,
        reply::ERR_NICKNAMEINUSE,
        user.nick.as_str(),
        &[nick],
        "Nickname is already in use",
    );
    out
}

/// NICK, from the source the others knew.
pub fn nick_changed(old_prefix: &str, nick: &str) -> Vec<u8> {
    let mut out = Vec::new();
    write_line(&mut out, Some(old_prefix), "NICK", &[], Some(nick));
    out
}

/// JOIN, and with extended-join the joiner's account (`*`: chatter has
/// no accounts) and real name.
pub fn joined(user: &User, channel: &str, caps: Caps) -> Vec<u8> {
    let mut out = Vec::new();
    if caps.has(Caps::EXTENDED_JOIN) {
        write_line(&mut out, Some(&user.prefix()), "JOIN", &[channel, "*"], Some(&user.realname));
    } else {
        write_line(&mut out, Some(&user.prefix()), "JOIN", &[channel], None);
    }
    out
}

pub fn parted(user: &User, channel: &str, reason: Option<&str>) -> Vec<u8> {
    let mut out = Vec::new();
    write_line(&mut out, Some(&user.prefix()), "PART", &[channel], reason);
    out
}

/// The capabilities that change how a message is written: see
/// [`tagged_message`].
pub const MESSAGE_CAPS: Caps = Caps::MESSAGE_TAGS.with(Caps::SERVER_TIME);

/// A PRIVMSG, NOTICE or TAGMSG as a client with `caps` sees it: `time`
/// with server-time; `msgid`, `bot` (from a +B user) and the sender's
/// client-only tags with message-tags. Empty for a TAGMSG to a client without message-tags,
/// which must not get one.
pub fn tagged_message(
    user: &User,
    from: ConnId,
    kind: MessageKind,
    target: &str,
    text: &str,
    stamp: &Stamp,
    caps: Caps,
) -> Vec<u8> {
    let tagged = caps.has(Caps::MESSAGE_TAGS);
    if kind == MessageKind::Tagmsg && !tagged {
        return Vec::new();
    }
    let mut out = Vec::new();
    let time = caps.has(Caps::SERVER_TIME).then(|| server_time(stamp.at));
    let id = tagged.then(|| stamp.msgid(from));
    // bot mode: a bare `bot` tag, to clients with message-tags only.
    let bot = (tagged && user.bot).then_some("");
    let server_tags = [("time", time.as_deref()), ("msgid", id.as_deref()), ("bot", bot)];
    let server_tags = server_tags.into_iter().filter_map(|(k, v)| Some((k, v?)));
    let client_tags = stamp.tags.iter().filter(|_| tagged).map(|(k, v)| (k.as_str(), v.as_str()));
    write_tags(&mut out, server_tags.chain(client_tags));
    if kind == MessageKind::Tagmsg {
        write_line(&mut out, Some(&user.prefix()), "TAGMSG", &[target], None);
    } else {
        write_line(&mut out, Some(&user.prefix()), kind.command(), &[target], Some(text));
    }
    out
}

/// The latest time `humantime` writes (the end of year 9999), in Unix
/// milliseconds; later stamps (only a corrupt clock makes them) are
/// written as this.
const LATEST_MS: u64 = 253_402_300_799_999;

/// server-time's `time`: RFC 3339 in UTC with milliseconds, as
/// `2024-05-01T12:00:00.000Z`.
pub fn server_time(at_ms: u64) -> String {
    let at = UNIX_EPOCH + Duration::from_millis(at_ms.min(LATEST_MS));
    humantime::format_rfc3339_millis(at).to_string()
}

/// PRIVMSG or NOTICE to `target` (a channel's display name or a nick).
pub fn message(user: &User, kind: MessageKind, target: &str, text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    write_line(&mut out, Some(&user.prefix()), kind.command(), &[target], Some(text));
    out
}

/// 301 to `user`, who messaged `them`.
pub fn target_away(server: &str, user: &User, them: &User, away: &str) -> Vec<u8> {
    let mut out = Vec::new();
    numeric(&mut out, server, reply::RPL_AWAY, user.nick.as_str(), &[them.nick.as_str()], away);
    out
}

pub fn topic_set(user: &User, channel: &str, topic: &str) -> Vec<u8> {
    let mut out = Vec::new();
    write_line(&mut out, Some(&user.prefix()), "TOPIC", &[channel], Some(topic));
    out
}

pub fn quit(departure: &Departure<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    write_line(&mut out, Some(&departure.prefix), "QUIT", &[], Some(&departure.reason));
    out
}

/// away-notify's `AWAY :message` (or bare `AWAY`, back), from the user.
pub fn away_notify(user: &User) -> Vec<u8> {
    let mut out = Vec::new();
    write_line(&mut out, Some(&user.prefix()), "AWAY", &[], user.away.as_deref());
    out
}

/// setname's `SETNAME :realname`, from the user.
pub fn setname(user: &User) -> Vec<u8> {
    let mut out = Vec::new();
    write_line(&mut out, Some(&user.prefix()), "SETNAME", &[], Some(&user.realname));
    out
}

/// 306 or 305.
pub fn away_changed(server: &str, user: &User, away: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let code = if away { reply::RPL_NOWAWAY } else { reply::RPL_UNAWAY };
    numeric(&mut out, server, code, user.nick.as_str(), &[], super::away_words(away));
    out
}

/// A channel's MODE line: what changed, parameters as separate words
/// (masks, keys and nicks are validated to be one word each).
pub fn mode_changed(user: &User, channel: &str, modes: &str, params: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut middle = vec![channel, modes];
    middle.extend(params.iter().map(String::as_str));
    write_line(&mut out, Some(&user.prefix()), "MODE", &middle, None);
    out
}

pub fn kicked(user: &User, channel: &str, nick: &str, reason: &str) -> Vec<u8> {
    let mut out = Vec::new();
    write_line(&mut out, Some(&user.prefix()), "KICK", &[channel, nick], Some(reason));
    out
}

/// 341 to the inviter.
pub fn inviting(server: &str, user: &User, them: &User, channel: &str) -> Vec<u8> {
    let mut out = Vec::new();
    numeric_bare(&mut out, server, reply::RPL_INVITING, user.nick.as_str(), &[them.nick.as_str(), channel]);
    out
}

/// The INVITE line to the invitee.
pub fn invited(user: &User, them: &User, channel: &str) -> Vec<u8> {
    let mut out = Vec::new();
    write_line(&mut out, Some(&user.prefix()), "INVITE", &[them.nick.as_str(), channel], None);
    out
}

/// 381 and the MODE that shows +o, or the MODE that shows -o.
pub fn oper_changed(server: &str, user: &User, on: bool) -> Vec<u8> {
    let mut out = Vec::new();
    if on {
        numeric(
            &mut out,
            server,
            reply::RPL_YOUREOPER,
            user.nick.as_str(),
            &[],
            "You are now an IRC operator",
        );
    }
    out.extend(user_mode(user, if on { "+o" } else { "-o" }));
    out
}

/// `:nick MODE nick :+w`, how a user learns one of its modes changed
/// (from its bare nick, as servers commonly write it).
pub fn user_mode(user: &User, change: &str) -> Vec<u8> {
    let mut out = Vec::new();
    write_line(&mut out, Some(user.nick.as_str()), "MODE", &[user.nick.as_str()], Some(change));
    out
}

pub fn wallops(from: &User, text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    write_line(&mut out, Some(&from.prefix()), "WALLOPS", &[], Some(text));
    out
}
