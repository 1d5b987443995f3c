//! MONITOR (IRCv3): `+ nicks`, `- nicks`, `C`lear, `L`ist, `S`tatus.
//!
//! Changing the list is an event (every replica must know who watches
//! whom, to tell the watchers it serves); listing it and asking its status
//! are answered here from the replica. Targets must be nicks, not masks,
//! as the spec says (a mask would let a user follow someone through nick
//! changes): anything else gets 432 and is not added.

use crate::chat::event::MonitorChange;
use crate::chat::names::is_valid_nick;
use crate::chat::reply::{self, numeric, numeric_joined};
use crate::chat::{Event, Nick};

use super::Ctx;

pub(super) fn monitor(ctx: &mut Ctx<'_>) {
    if !ctx.need_params(1) {
        return;
    }
    let conn = ctx.conn();
    let targets = || ctx.message.param(1).unwrap_or("").split(',').filter(|t| !t.is_empty());
    match ctx.message.params[0].as_str() {
        "+" => {
            if !ctx.need_params(2) {
                return;
            }
            let (valid, invalid): (Vec<&str>, Vec<&str>) = targets().partition(|t| is_valid_nick(t));
            for target in invalid {
                ctx.numeric(reply::ERR_ERRONEUSNICKNAME, &[target], "Erroneous nickname");
            }
            if !valid.is_empty() {
                let nicks = valid.into_iter().map(Nick::new).collect();
                ctx.out.event(Event::Monitor { conn, change: MonitorChange::Add(nicks) });
            }
        }
        "-" => {
            if !ctx.need_params(2) {
                return;
            }
            let nicks = targets().map(Nick::new).collect();
            ctx.out.event(Event::Monitor { conn, change: MonitorChange::Remove(nicks) });
        }
        "C" | "c" => ctx.out.event(Event::Monitor { conn, change: MonitorChange::Clear }),
        "L" | "l" => {
            let (nick, server) = (ctx.nick(), ctx.session.info.name.as_str());
            let listed = ctx.user.monitoring.iter().map(Nick::as_str);
            numeric_joined(ctx.out.buf(), server, reply::RPL_MONLIST, nick, &[], listed, ',');
            numeric(ctx.out.buf(), server, reply::RPL_ENDOFMONLIST, nick, &[], "End of MONITOR list");
        }
        "S" | "s" => {
            let (nick, server, state) = (ctx.nick(), ctx.session.info.name.as_str(), ctx.state);
            let (mut online, mut offline) = (Vec::new(), Vec::new());
            for watched in &ctx.user.monitoring {
                match state.find_nick(watched.as_str()).and_then(|c| state.user(c)) {
                    Some(them) => online.push(them.prefix()),
                    None => offline.push(watched.as_str()),
                }
            }
            let on = online.iter().map(String::as_str);
            numeric_joined(ctx.out.buf(), server, reply::RPL_MONONLINE, nick, &[], on, ',');
            numeric_joined(ctx.out.buf(), server, reply::RPL_MONOFFLINE, nick, &[], offline, ',');
        }
        // Unknown subcommands are ignored, as the spec leaves them.
        _ => {}
    }
}
