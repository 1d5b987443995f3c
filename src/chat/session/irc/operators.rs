//! What IRC operators do: OPER to become one, KILL to end a user's
//! connection, WALLOPS to tell every user who asked for them (+w), REHASH
//! to have the configuration reread.
//!
//! Credentials come from the config file (`[[operators]]`, password
//! hashes only). Checking one is argon2, deliberately slow (tens of
//! milliseconds), and runs on the thread that serves the client, so a
//! connection gets [`OPER_ATTEMPTS`] tries and then 491 for good: no
//! client can make the server hash without bound. Whether the user is an
//! operator when KILL or WALLOPS lands is settled again by the directory
//! in event order; the checks here answer the common case at once.

use crate::chat::names::truncate_at_char;
use crate::chat::reply;
use crate::chat::{Event, Nick};

use super::Ctx;

/// Wrong OPER passwords one connection may give before it may try no more.
pub(crate) const OPER_ATTEMPTS: u8 = 3;

/// The longest reason a KILL carries (it ends up in a QUIT line).
const KILL_REASON_LEN: usize = 200;

/// `OPER name password`: 381 and +o, or 464 for a wrong password, 491 for
/// no such operator (or too many tries).
pub(super) fn oper(ctx: &mut Ctx<'_>) {
    if !ctx.need_params(2) {
        return;
    }
    let (name, password) = (ctx.message.params[0].as_str(), ctx.message.params[1].as_str());
    if ctx.session.oper_attempts >= OPER_ATTEMPTS {
        ctx.numeric(reply::ERR_NOOPERHOST, &[], "No more OPER attempts on this connection");
        return;
    }
    let Some(operator) = ctx.session.info.operators.iter().find(|o| o.name == name) else {
        ctx.session.oper_attempts += 1;
        ctx.numeric(reply::ERR_NOOPERHOST, &[], "No O-lines for your host");
        return;
    };
    if !operator.accepts(password) {
        ctx.session.oper_attempts += 1;
        ctx.numeric(reply::ERR_PASSWDMISMATCH, &[], "Password incorrect");
        return;
    }
    ctx.out.event(Event::Oper { conn: ctx.conn(), on: true });
}

/// Whether the user is an operator; if not, says so (481) and the
/// handler stops.
fn is_operator(ctx: &mut Ctx<'_>) -> bool {
    if !ctx.user.oper {
        ctx.numeric(reply::ERR_NOPRIVILEGES, &[], "Permission Denied- You're not an IRC operator");
    }
    ctx.user.oper
}

/// `KILL nick :reason`: operators only (481).
pub(super) fn kill(ctx: &mut Ctx<'_>) {
    if !ctx.need_params(2) || !is_operator(ctx) {
        return;
    }
    let target = ctx.message.params[0].as_str();
    if ctx.state.find_nick(target).is_none() {
        ctx.numeric(reply::ERR_NOSUCHNICK, &[target], "No such nick/channel");
        return;
    }
    let reason = truncate_at_char(&ctx.message.params[1], KILL_REASON_LEN).to_string();
    ctx.out.event(Event::Kill { conn: ctx.conn(), target: Nick::new(target), reason });
}

/// `WALLOPS :text`: operators only (481), to every user with +w.
pub(super) fn wallops(ctx: &mut Ctx<'_>) {
    if !ctx.need_params(1) || !is_operator(ctx) {
        return;
    }
    let text = ctx.message.params[0].clone();
    ctx.out.event(Event::WallopsMessage { conn: ctx.conn(), text });
}

/// `REHASH [server]`: operators only (481); a server named must be this
/// one (402). Rereading the file is I/O, so the model does it and answers
/// (382 and how it went, see `server::reload`).
pub(super) fn rehash(ctx: &mut Ctx<'_>) {
    if is_operator(ctx) && super::about::target_here(ctx) {
        ctx.out.rehash();
    }
}
