//! Commands about the connection rather than the chat: PING/PONG, CAP,
//! PASS/USER again, QUIT.
//!
//! PING, PONG and CAP mean the same before registration, so these
//! handlers hand over to the session's shared methods with the nick as
//! the client name.

use crate::chat::Event;
use crate::chat::reply;

use super::Ctx;

pub(super) fn ping(ctx: &mut Ctx<'_>) {
    let nick = ctx.nick();
    ctx.session.pong(ctx.message, nick, &mut ctx.out);
}

/// An answer to the server's PING needs no reply: that a complete line
/// arrived is all liveness wants (see `server::liveness`).
pub(super) fn pong(_: &mut Ctx<'_>) {}

pub(super) fn cap(ctx: &mut Ctx<'_>) {
    let nick = ctx.nick();
    ctx.session.cap(ctx.message, nick, true, &mut ctx.out);
}

/// PASS and USER belong to registration, which is over.
pub(super) fn reregister(ctx: &mut Ctx<'_>) {
    ctx.numeric(reply::ERR_ALREADYREGISTERED, &[], "You may not reregister");
}

/// Others hear of the quit (the event) before this client's closing line.
pub(super) fn quit(ctx: &mut Ctx<'_>) {
    let reason = match ctx.message.param(0).filter(|r| !r.is_empty()) {
        Some(reason) => format!("Quit: {reason}"),
        None => "Quit".to_string(),
    };
    ctx.out.event(Event::Quit { conn: ctx.conn(), reason: reason.clone() });
    ctx.session.close_with(&mut ctx.out, &reason);
}
