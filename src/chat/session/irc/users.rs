//! What a user changes about itself: NICK and AWAY.
//!
//! (User modes are set with MODE, in `mode`.) Only syntax is checked here:
//! whether a nick is free is decided by the directory when the event lands,
//! so two clients racing for one nick get a consistent answer.

use crate::chat::names::{AWAY_LEN, is_valid_nick, truncate_at_char};
use crate::chat::reply;
use crate::chat::{Event, Nick};

use super::Ctx;

pub(super) fn nick(ctx: &mut Ctx<'_>) {
    match ctx.message.param(0).filter(|n| !n.is_empty()) {
        None => ctx.numeric(reply::ERR_NONICKNAMEGIVEN, &[], "No nickname given"),
        Some(new) if !is_valid_nick(new) => {
            ctx.numeric(reply::ERR_ERRONEUSNICKNAME, &[new], "Erroneous nickname")
        }
        Some(new) => ctx.out.event(Event::Nick { conn: ctx.conn(), nick: Nick::new(new) }),
    }
}

/// AWAY with a message sets it (cut to AWAYLEN); without one, clears it.
pub(super) fn away(ctx: &mut Ctx<'_>) {
    let message =
        ctx.message.param(0).filter(|m| !m.is_empty()).map(|m| truncate_at_char(m, AWAY_LEN).to_string());
    ctx.out.event(Event::Away { conn: ctx.conn(), message });
}
