//! MODE, for channels and for the user itself.
//!
//! Channel modes are parsed here (`channel::parse_modes`: syntax, unknown
//! letters 472, missing or bad parameters 696, list queries) and applied
//! by the directory; user modes are only +i (and +w, accepted as a no-op).

use crate::chat::channel::{Channel, ListKind, parse_modes};
use crate::chat::names::is_channel_target;
use crate::chat::reply::{self, numeric, numeric_bare};
use crate::chat::{Event, UserMode};

use super::Ctx;

pub(super) fn mode(ctx: &mut Ctx<'_>) {
    let Some(target) = ctx.message.param(0).filter(|t| !t.is_empty()) else {
        ctx.numeric(reply::ERR_NEEDMOREPARAMS, &["MODE"], "Not enough parameters");
        return;
    };
    if is_channel_target(target) {
        channel_mode(ctx, target);
    } else {
        user_mode(ctx, target);
    }
}

/// MODE on a channel: a query (324 then 329), list queries (answered here
/// from the directory, to anyone who may see the channel), and changes,
/// which go to the directory as one event: whether the user is an
/// operator, and what each change does, is decided there in event order.
fn channel_mode(ctx: &mut Ctx<'_>, target: &str) {
    let (nick, state, conn) = (ctx.nick(), ctx.state, ctx.conn());
    let server = ctx.session.info.name.as_str();
    let out = &mut ctx.out;
    let Some(chan) = state.channel(target) else {
        numeric(out.buf(), server, reply::ERR_NOSUCHCHANNEL, nick, &[target], "No such channel");
        return;
    };
    let name = chan.name.as_str();
    let Some(modestring) = ctx.message.param(1).filter(|m| !m.is_empty()) else {
        let (letters, params) = chan.modes.describe(chan.is_member(conn));
        let mut middle = vec![name, letters.as_str()];
        middle.extend(params.iter().map(String::as_str));
        numeric_bare(out.buf(), server, reply::RPL_CHANNELMODEIS, nick, &middle);
        let created = chan.created_at.to_string();
        numeric_bare(out.buf(), server, reply::RPL_CREATIONTIME, nick, &[name, &created]);
        return;
    };
    let parsed = parse_modes(modestring, &ctx.message.params[2..]);
    for letter in parsed.unknown {
        numeric(
            out.buf(),
            server,
            reply::ERR_UNKNOWNMODE,
            nick,
            &[&letter.to_string()],
            "is unknown mode char to me",
        );
    }
    for (letter, param, why) in &parsed.invalid {
        numeric(
            out.buf(),
            server,
            reply::ERR_INVALIDMODEPARAM,
            nick,
            &[name, &letter.to_string(), param],
            why,
        );
    }
    for kind in parsed.queries {
        write_list(out.buf(), server, nick, chan, kind);
    }
    if !parsed.changes.is_empty() {
        let channel = chan.name.clone();
        ctx.out.event(Event::Mode { conn, channel, changes: parsed.changes, at: ctx.now });
    }
}

/// A channel's ban, exception or invite-exception list, and its end line.
fn write_list(out: &mut Vec<u8>, server: &str, nick: &str, chan: &Channel, kind: ListKind) {
    let name = chan.name.as_str();
    let (item, end, text) = match kind {
        ListKind::Ban => (reply::RPL_BANLIST, reply::RPL_ENDOFBANLIST, "End of channel ban list"),
        ListKind::Except => {
            (reply::RPL_EXCEPTLIST, reply::RPL_ENDOFEXCEPTLIST, "End of channel exception list")
        }
        ListKind::InviteExcept => {
            (reply::RPL_INVEXLIST, reply::RPL_ENDOFINVEXLIST, "End of Channel Invite Exception List")
        }
    };
    for entry in chan.list(kind) {
        let at = entry.set_at.to_string();
        numeric_bare(out, server, item, nick, &[name, &entry.mask, &entry.set_by, &at]);
    }
    numeric(out, server, end, nick, &[name], text);
}

fn user_mode(ctx: &mut Ctx<'_>, target: &str) {
    let (state, conn) = (ctx.state, ctx.conn());
    match state.find_nick(target) {
        None => ctx.numeric(reply::ERR_NOSUCHNICK, &[target], "No such nick/channel"),
        Some(other) if other != conn => {
            ctx.numeric(reply::ERR_USERSDONTMATCH, &[], "Cant change mode for other users")
        }
        Some(_) => match ctx.message.param(1) {
            None => {
                let user = ctx.user;
                let has = |mode| user.has_mode(mode);
                let flags = [
                    (has(UserMode::Invisible), 'i'),
                    (user.oper, 'o'),
                    (has(UserMode::Wallops), 'w'),
                    (has(UserMode::Bot), 'B'),
                ];
                let modes: String =
                    std::iter::once('+').chain(flags.iter().filter(|(on, _)| *on).map(|(_, c)| *c)).collect();
                let modes = modes.as_str();
                numeric_bare(
                    ctx.out.buf(),
                    &ctx.session.info.name,
                    reply::RPL_UMODEIS,
                    ctx.user.nick.as_str(),
                    &[modes],
                );
            }
            // +i (invisible), +w (wallops), +B (bot); +o only comes from
            // OPER, and -o gives it up.
            Some(modes)
                if modes
                    .chars()
                    .all(|c| matches!(c, '+' | '-' | 'o') || UserMode::from_letter(c).is_some()) =>
            {
                let mut adding = true;
                for c in modes.chars() {
                    match (c, UserMode::from_letter(c)) {
                        ('+', _) => adding = true,
                        ('-', _) => adding = false,
                        (_, Some(mode)) => ctx.out.event(Event::UserMode { conn, mode, on: adding }),
                        ('o', None) if !adding => ctx.out.event(Event::Oper { conn, on: false }),
                        _ => {}
                    }
                }
            }
            Some(_) => ctx.numeric(reply::ERR_UMODEUNKNOWNFLAG, &[], "Unknown MODE flag"),
        },
    }
}
