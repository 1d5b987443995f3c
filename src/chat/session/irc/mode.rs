//! MODE, for channels and for the user itself.
//!
//! Queries answer truthfully (every channel is +n, the one user mode kept
//! is +i); changes that are not supported are refused with the numeric
//! that says why, so clients show a sensible error. This is the file
//! channel modes (+o, +k, +l, bans...) will grow in, hence one of its own.

use crate::chat::Event;
use crate::chat::names::is_channel_target;
use crate::chat::reply::{self, numeric, numeric_bare};

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

fn channel_mode(ctx: &mut Ctx<'_>, target: &str) {
    let (nick, state, conn) = (ctx.nick(), ctx.state, ctx.conn());
    let server = ctx.session.info.name.as_str();
    let out = &mut ctx.out;
    let Some(chan) = state.channel(target) else {
        numeric(out.buf(), server, reply::ERR_NOSUCHCHANNEL, nick, &[target], "No such channel");
        return;
    };
    match ctx.message.param(1) {
        None => numeric_bare(out.buf(), server, reply::RPL_CHANNELMODEIS, nick, &[chan.name.as_str(), "+n"]),
        // A ban-list query (what irssi sends on join): the list is empty.
        Some("b" | "+b") if ctx.message.params.len() == 2 => numeric(
            out.buf(),
            server,
            reply::RPL_ENDOFBANLIST,
            nick,
            &[chan.name.as_str()],
            "End of channel ban list",
        ),
        Some(_) if !chan.members.get(&conn).copied().unwrap_or(false) => numeric(
            out.buf(),
            server,
            reply::ERR_CHANOPRIVSNEEDED,
            nick,
            &[chan.name.as_str()],
            "You're not channel operator",
        ),
        Some(modes) => {
            let mode = modes.trim_start_matches(['+', '-']).chars().next().unwrap_or('?').to_string();
            numeric(out.buf(), server, reply::ERR_UNKNOWNMODE, nick, &[&mode], "is unknown mode char to me")
        }
    }
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
                let modes = if ctx.user.invisible { "+i" } else { "+" };
                numeric_bare(
                    ctx.out.buf(),
                    &ctx.session.info.name,
                    reply::RPL_UMODEIS,
                    ctx.user.nick.as_str(),
                    &[modes],
                );
            }
            // +i is the one user mode kept (clients set it on connect);
            // +w (wallops) is accepted and means nothing on one server.
            Some(modes) if modes.chars().all(|c| matches!(c, '+' | '-' | 'i' | 'w')) => {
                let mut adding = true;
                for c in modes.chars() {
                    match c {
                        '+' => adding = true,
                        '-' => adding = false,
                        'i' => ctx.out.event(Event::Invisible { conn, on: adding }),
                        _ => {}
                    }
                }
            }
            Some(_) => ctx.numeric(reply::ERR_UMODEUNKNOWNFLAG, &[], "Unknown MODE flag"),
        },
    }
}
