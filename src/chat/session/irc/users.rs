//! What a user changes about itself: NICK, AWAY and SETNAME.
//!
//! (User modes are set with MODE, in `mode`.) Only syntax is checked here:
//! whether a nick is free is decided by the directory when the event lands,
//! so two clients racing for one nick get a consistent answer.

use crate::chat::names::{AWAY_LEN, REALNAME_LEN, is_valid_nick, truncate_at_char};
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

/// SETNAME :realname (IRCv3 setname). A name that would not be accepted
/// at registration (empty, or longer than NAMELEN) is refused with the
/// standard reply the spec names rather than cut: the client asked for
/// exactly this name. Clients without the capability may use it too; they
/// are just not told (the directory's change reaches only those with it).
pub(super) fn setname(ctx: &mut Ctx<'_>) {
    let realname = ctx.message.param(0).unwrap_or("");
    if realname.is_empty() || realname.len() > REALNAME_LEN {
        let server = ctx.session.info.name.as_str();
        reply::fail(ctx.out.buf(), server, "SETNAME", "INVALID_REALNAME", &[], "Realname is not valid");
        return;
    }
    ctx.out.event(Event::SetName { conn: ctx.conn(), realname: realname.to_string() });
}
