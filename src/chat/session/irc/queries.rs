//! Questions answered straight from the directory, with no event: WHO,
//! WHOIS, WHOWAS, USERHOST, ISON, MOTD, LUSERS, VERSION, TIME.
//!
//! The answer reflects the directory as this session sees it when the line
//! is read; nothing here changes state, so none of it needs event order.

use crate::chat::Nick;
use crate::chat::listing::Listing;
use crate::chat::names::{MAX_TARGETS, is_channel_target};
use crate::chat::reply::{self, numeric};
use crate::chat::state::User;
use crate::chat::who::WhoQuery;

use super::Ctx;

/// WHO <mask> [o][%fields[,token]]: WHO of a channel or of a mask can be
/// long, so it is a `Listing`; WHO of one nick is at most one line, and
/// shows the user even if +i (a nick is not a search). A word that is no
/// one's nick is a mask still: `WHO 127.0.0.1` finds users by host.
pub(super) fn who(ctx: &mut Ctx<'_>) {
    let (nick, state) = (ctx.nick(), ctx.state);
    let server = ctx.session.info.name.as_str();
    let mask = ctx.message.param(0).filter(|m| !m.is_empty()).unwrap_or("*");
    let query = WhoQuery::parse(mask, ctx.message.param(1), ctx.now);
    if is_channel_target(mask) {
        ctx.out.listing(Listing::who(mask, query));
        return;
    }
    let exact = if query.is_pattern() { None } else { state.find_nick(mask).and_then(|c| state.user(c)) };
    let Some(user) = exact else {
        ctx.out.listing(Listing::who_mask(query));
        return;
    };
    if !query.operators_only {
        query.write_line(ctx.out.buf(), server, nick, "*", user, "");
    }
    query.write_end(ctx.out.buf(), server, nick);
}

/// WHOIS [target] nick[,nick...]: the nicks are the last parameter, at
/// most MAX_TARGETS of them; a target is this server or a user on it (every
/// user is), anything else is 402. One 318 ends it all, naming the nicks as
/// asked.
pub(super) fn whois(ctx: &mut Ctx<'_>) {
    let (nick, state, asker) = (ctx.nick(), ctx.state, ctx.conn());
    let info = &ctx.session.info;
    let server = info.name.as_str();
    let params = &ctx.message.params;
    let Some(nicks) = params.last().filter(|t| !t.is_empty()) else {
        numeric(ctx.out.buf(), server, reply::ERR_NONICKNAMEGIVEN, nick, &[], "No nickname given");
        return;
    };
    if let [target, _, ..] = params.as_slice()
        && !target.eq_ignore_ascii_case(server)
        && state.find_nick(target).is_none()
    {
        numeric(ctx.out.buf(), server, reply::ERR_NOSUCHSERVER, nick, &[target], "No such server");
        return;
    }
    let out = ctx.out.buf();
    for target in nicks.split(',').filter(|n| !n.is_empty()).take(MAX_TARGETS) {
        let Some((them, user)) = state.find_nick(target).and_then(|c| state.user(c).map(|u| (c, u))) else {
            numeric(out, server, reply::ERR_NOSUCHNICK, nick, &[target], "No such nick/channel");
            continue;
        };
        let who = user.nick.as_str();
        numeric(out, server, reply::RPL_WHOISUSER, nick, &[who, &user.user, &user.host, "*"], &user.realname);
        // With each channel's prefix. A channel is shown to its members;
        // to others only if it is not secret and the user is not +i.
        let channels: Vec<String> = user
            .channels
            .iter()
            .filter_map(|k| state.channel_named(k))
            .filter(|c| c.is_member(asker) || (!c.modes.secret && !user.invisible))
            .map(|c| {
                let status = c.members.get(&them);
                format!("{}{}", status.map_or("", |s| s.prefix()), c.name)
            })
            .collect();
        reply::numeric_list(
            out,
            server,
            reply::RPL_WHOISCHANNELS,
            nick,
            &[who],
            channels.iter().map(String::as_str),
        );
        numeric(out, server, reply::RPL_WHOISSERVER, nick, &[who, server], &info.description);
        if user.oper {
            numeric(out, server, reply::RPL_WHOISOPERATOR, nick, &[who], "is an IRC operator");
        }
        if user.bot {
            numeric(out, server, reply::RPL_WHOISBOT, nick, &[who], "is a bot");
        }
        if let Some(away) = &user.away {
            numeric(out, server, reply::RPL_AWAY, nick, &[who], away);
        }
        let (idle, signon) = (user.idle(ctx.now).to_string(), user.signon.to_string());
        numeric(out, server, reply::RPL_WHOISIDLE, nick, &[who, &idle, &signon], "seconds idle, signon time");
    }
    numeric(out, server, reply::RPL_ENDOFWHOIS, nick, &[nicks], "End of /WHOIS list");
}

/// WHOWAS nick[,nick...] [count]: who had each nick lately, the most
/// recent first, at most `count` of them (all if it is not positive).
pub(super) fn whowas(ctx: &mut Ctx<'_>) {
    let (nick, state) = (ctx.nick(), ctx.state);
    let info = &ctx.session.info;
    let server = info.name.as_str();
    let Some(nicks) = ctx.message.param(0).filter(|n| !n.is_empty()) else {
        numeric(ctx.out.buf(), server, reply::ERR_NONICKNAMEGIVEN, nick, &[], "No nickname given");
        return;
    };
    let count =
        ctx.message.param(1).and_then(|c| c.parse::<usize>().ok()).filter(|&c| c > 0).unwrap_or(usize::MAX);
    let out = ctx.out.buf();
    for asked in nicks.split(',').filter(|n| !n.is_empty()).take(MAX_TARGETS) {
        let mut found = false;
        for was in state.whowas(&Nick::new(asked)).take(count) {
            found = true;
            let middle = [was.nick.as_str(), &was.user, &was.host, "*"];
            numeric(out, server, reply::RPL_WHOWASUSER, nick, &middle, &was.realname);
            numeric(
                out,
                server,
                reply::RPL_WHOISSERVER,
                nick,
                &[was.nick.as_str(), server],
                &info.description,
            );
        }
        if !found {
            numeric(out, server, reply::ERR_WASNOSUCHNICK, nick, &[asked], "There was no such nickname");
        }
        numeric(out, server, reply::RPL_ENDOFWHOWAS, nick, &[asked], "End of WHOWAS");
    }
}

/// USERHOST answers at most five nicks (RFC 2812).
pub(super) fn userhost(ctx: &mut Ctx<'_>) {
    let describe =
        |u: &User| format!("{}={}{}@{}", u.nick, if u.away.is_some() { '-' } else { '+' }, u.user, u.host);
    answer_present_nicks(ctx, reply::RPL_USERHOST, 5, describe);
}

/// ISON answers as many nicks as fit the line.
pub(super) fn ison(ctx: &mut Ctx<'_>) {
    answer_present_nicks(ctx, reply::RPL_ISON, usize::MAX, |u| u.nick.as_str().to_string());
}

/// USERHOST and ISON answer about the asked nicks that exist, one word
/// each, over as many lines as it takes; none found is one empty reply.
fn answer_present_nicks(ctx: &mut Ctx<'_>, code: u16, most: usize, describe: impl Fn(&User) -> String) {
    if !ctx.need_params(1) {
        return;
    }
    let (nick, state) = (ctx.nick(), ctx.state);
    let server = ctx.session.info.name.as_str();
    let asked = ctx.message.params.iter().flat_map(|p| p.split(' ')).filter(|n| !n.is_empty()).take(most);
    let found: Vec<String> =
        asked.filter_map(|n| state.find_nick(n).and_then(|c| state.user(c))).map(describe).collect();
    if found.is_empty() {
        numeric(ctx.out.buf(), server, code, nick, &[], "");
    } else {
        reply::numeric_list(ctx.out.buf(), server, code, nick, &[], found.iter().map(String::as_str));
    }
}

pub(super) fn motd(ctx: &mut Ctx<'_>) {
    let (state, out, nick) = (ctx.state, &mut ctx.out, ctx.user.nick.as_str());
    crate::chat::render::irc::write_motd(state, out.buf(), nick);
}

pub(super) fn lusers(ctx: &mut Ctx<'_>) {
    let (state, out, nick) = (ctx.state, &mut ctx.out, ctx.user.nick.as_str());
    crate::chat::render::irc::write_lusers(state, out.buf(), nick);
}

/// VERSION also repeats ISUPPORT (005), as servers do, so a client can
/// ask for it again.
pub(super) fn version(ctx: &mut Ctx<'_>) {
    let nick = ctx.nick();
    let info = &ctx.session.info;
    let server = info.name.as_str();
    numeric(ctx.out.buf(), server, reply::RPL_VERSION, nick, &[&info.version, server], "chatter IRC server");
    reply::isupport(ctx.out.buf(), info, nick);
}

pub(super) fn time(ctx: &mut Ctx<'_>) {
    let nick = ctx.nick();
    let server = ctx.session.info.name.as_str();
    let text = crate::chat::info::human_time(ctx.now);
    numeric(ctx.out.buf(), server, reply::RPL_TIME, nick, &[server], &text);
}
