//! What the server says about itself: INFO, ADMIN, LINKS and HELP.
//!
//! All of it comes from the settings (`ServerInfo`, as last reloaded) or is
//! written here, so these answer without the directory, except to tell a
//! nick (whose server is this one) from a server name that is not this one
//! (402).

use crate::chat::reply::{self, numeric};

use super::Ctx;
use super::help;

/// Whether a query's optional `<target>` names this server: its name (as
/// a mask too: `*.test`), or a user, every one of whom is on it.
fn is_here(ctx: &Ctx<'_>, target: &str) -> bool {
    let server = ctx.session.info.name.as_str();
    target.eq_ignore_ascii_case(server)
        || crate::chat::channel::mask_matches(target, server)
        || ctx.state.find_nick(target).is_some()
}

/// Answers 402 and returns false if the first parameter names another
/// server.
pub(super) fn target_here(ctx: &mut Ctx<'_>) -> bool {
    match ctx.message.param(0).filter(|t| !t.is_empty()) {
        Some(target) if !is_here(ctx, target) => {
            let target = target.to_string();
            ctx.numeric(reply::ERR_NOSUCHSERVER, &[&target], "No such server");
            false
        }
        _ => true,
    }
}

/// INFO [target]: what chatter is, in a few lines (371), then 374.
pub(super) fn info(ctx: &mut Ctx<'_>) {
    if !target_here(ctx) {
        return;
    }
    let info = &ctx.session.info;
    let lines = [
        format!("{} is chatter, version {}.", info.name, info.version),
        "chatter is one chat server with three concurrency models".to_string(),
        "(a thread per client, a pool of threads, a pool of processes)".to_string(),
        "and the same chat under each, for IRC clients and for people at nc.".to_string(),
        format!("This server was started {}.", info.created),
        "Source and documentation: the chatter repository (README.md, docs/DESIGN.md).".to_string(),
    ];
    for line in &lines {
        ctx.numeric(reply::RPL_INFO, &[], line);
    }
    ctx.numeric(reply::RPL_ENDOFINFO, &[], "End of INFO list");
}

/// ADMIN [target]: who runs the server (256-259), from `[admin]` in the
/// config file.
pub(super) fn admin(ctx: &mut Ctx<'_>) {
    if !target_here(ctx) {
        return;
    }
    let (nick, info) = (ctx.nick(), &ctx.session.info);
    let server = info.name.as_str();
    let out = ctx.out.buf();
    numeric(out, server, reply::RPL_ADMINME, nick, &[server], "Administrative info");
    numeric(out, server, reply::RPL_ADMINLOC1, nick, &[], &info.admin_location);
    numeric(out, server, reply::RPL_ADMINLOC2, nick, &[], &info.admin_description);
    numeric(out, server, reply::RPL_ADMINEMAIL, nick, &[], &info.admin_email);
}

/// LINKS [[server] mask]: this server is the whole network, so it is the
/// one link, if the mask (the last parameter) names it.
pub(super) fn links(ctx: &mut Ctx<'_>) {
    let (nick, info) = (ctx.nick(), &ctx.session.info);
    let server = info.name.as_str();
    let mask = ctx.message.params.last().map(String::as_str).filter(|m| !m.is_empty()).unwrap_or("*");
    let out = ctx.out.buf();
    if crate::chat::channel::mask_matches(mask, server) {
        numeric(out, server, reply::RPL_LINKS, nick, &[server, server], &format!("0 {}", info.description));
    }
    numeric(out, server, reply::RPL_ENDOFLINKS, nick, &[mask], "End of /LINKS list");
}

/// HELP [subject] (and HELPOP, its other name): 704, 705s, 706; 524 for a
/// subject that is no command here.
pub(super) fn help(ctx: &mut Ctx<'_>) {
    let subject = ctx.message.param(0).filter(|s| !s.is_empty()).map(str::to_ascii_uppercase);
    let subject = subject.as_deref().unwrap_or("*");
    let Some(text) = help::text(subject) else {
        ctx.numeric(reply::ERR_HELPNOTFOUND, &[subject], "No help available on this topic");
        return;
    };
    let (first, rest) = text.split_first().expect("help has a first line");
    ctx.numeric(reply::RPL_HELPSTART, &[subject], first);
    for line in rest {
        ctx.numeric(reply::RPL_HELPTXT, &[subject], line);
    }
    ctx.numeric(reply::RPL_ENDOFHELP, &[subject], "End of /HELP");
}
