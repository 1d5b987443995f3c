//! Channel membership and what a channel shows: JOIN, PART, TOPIC, NAMES,
//! LIST, and the operators' KICK and INVITE.
//!
//! Handlers here check only the shape of what was asked for; whether a
//! channel exists, is full, or has this user in it when the event lands is
//! for `State::apply` to decide, in event order. Long answers (NAMES of a
//! channel, LIST) are `Listing`s, written as the client reads them.

use crate::chat::channel::{KICK_TARGETS, is_valid_key};
use crate::chat::elist::ListFilter;
use crate::chat::listing::{Listing, NamesEnd};
use crate::chat::names::{MAX_TARGETS, is_valid_channel};
use crate::chat::reply::{self, numeric, numeric_bare};
use crate::chat::{ChannelName, Event, Nick};

use super::Ctx;

/// JOIN #a,#b key1,key2 joins each with its key; JOIN 0 leaves every
/// channel, as RFC 2812 says.
pub(super) fn join(ctx: &mut Ctx<'_>) {
    if !ctx.need_params(1) {
        return;
    }
    let conn = ctx.conn();
    let channels = ctx.message.params[0].as_str();
    if channels == "0" {
        ctx.out.event(Event::PartAll { conn });
        return;
    }
    let mut keys = ctx.message.param(1).unwrap_or("").split(',');
    for channel in channels.split(',').filter(|c| !c.is_empty()) {
        // Keys pair with channels by position; an invalid key could never
        // be a channel's, so it is no key at all.
        let key = keys.next().filter(|k| is_valid_key(k)).map(str::to_string);
        if is_valid_channel(channel) {
            ctx.out.event(Event::Join { conn, channel: ChannelName::new(channel), key, at: ctx.now });
        } else {
            ctx.numeric(reply::ERR_NOSUCHCHANNEL, &[channel], "No such channel");
        }
    }
}

pub(super) fn part(ctx: &mut Ctx<'_>) {
    if !ctx.need_params(1) {
        return;
    }
    let conn = ctx.conn();
    let reason = ctx.message.param(1).filter(|r| !r.is_empty()).map(str::to_string);
    for channel in ctx.message.params[0].split(',').filter(|c| !c.is_empty()) {
        let channel = ChannelName::new(channel);
        ctx.out.event(Event::Part { conn, channel, reason: reason.clone() });
    }
}

/// TOPIC #c text sets (the directory checks membership as it applies
/// it); TOPIC #c only reads, so it is answered here from the directory.
/// Anyone may read the topic of a channel LIST shows them (the spec makes
/// 442 a MAY); a secret channel's is for its members (442).
pub(super) fn topic(ctx: &mut Ctx<'_>) {
    if !ctx.need_params(1) {
        return;
    }
    let conn = ctx.conn();
    let channel = ctx.message.params[0].as_str();
    if let Some(topic) = ctx.message.param(1) {
        ctx.out.event(Event::Topic {
            conn,
            channel: ChannelName::new(channel),
            topic: topic.to_string(),
            at: ctx.now,
        });
        return;
    }
    let (state, out, nick) = (ctx.state, &mut ctx.out, ctx.user.nick.as_str());
    match state.channel(channel) {
        None => ctx.numeric(reply::ERR_NOSUCHCHANNEL, &[channel], "No such channel"),
        Some(chan) if !chan.visible_to(conn) => {
            ctx.numeric(reply::ERR_NOTONCHANNEL, &[chan.name.as_str()], "You're not on that channel")
        }
        Some(chan) => crate::chat::render::irc::write_topic(state, out.buf(), nick, chan),
    }
}

/// NAMES lists the channels asked for (at most MAX_TARGETS), or without a
/// parameter every channel the user is in.
pub(super) fn names(ctx: &mut Ctx<'_>) {
    match ctx.message.param(0).filter(|p| !p.is_empty()) {
        Some(list) => {
            // One channel ends with its own 366; `NAMES #a,#b` with one 366
            // naming what was asked, after all of them (RFC 2812).
            let all: Vec<&str> = list.split(',').collect();
            let channels = &all[..all.len().min(MAX_TARGETS)];
            for (i, channel) in channels.iter().enumerate() {
                let end = match (channels.len(), i + 1 == channels.len()) {
                    (1, _) => NamesEnd::Own,
                    (_, true) => NamesEnd::All(channels.join(",")),
                    (_, false) => NamesEnd::Later,
                };
                ctx.out.listing(Listing::names_ending(channel, end));
            }
            if let Some(extra) = all.get(MAX_TARGETS) {
                ctx.numeric(reply::ERR_TOOMANYTARGETS, &[extra], "Too many recipients");
            }
        }
        None if ctx.user.channels.is_empty() => {
            // In no channel: nothing to list, but an answer all the same
            // (Modern IRC: NAMES alone is answered as NAMES of channels).
            ctx.numeric(reply::RPL_ENDOFNAMES, &["*"], "End of /NAMES list");
        }
        None => {
            // By key, as always: a channel gone by the time its listing
            // is written is named by its key in the 366.
            for channel in &ctx.user.channels {
                ctx.out.listing(Listing::names(channel.key()));
            }
        }
    }
}

/// LIST [channels or masks] [conditions]: ELIST filters (see `elist`),
/// streamed like a plain LIST.
pub(super) fn list(ctx: &mut Ctx<'_>) {
    let params = ctx.message.params.iter().map(String::as_str).filter(|p| !p.is_empty());
    let filter = ListFilter::parse(params, ctx.now);
    let listing =
        if filter == ListFilter::default() { Listing::channels() } else { Listing::channels_where(filter) };
    ctx.out.listing(listing);
}

/// KICK #chan nick[,nick] [:reason]: one event per nick, at most
/// KICK_TARGETS of them (TARGMAX); later nicks are dropped, as the spec
/// allows.
pub(super) fn kick(ctx: &mut Ctx<'_>) {
    if !ctx.need_params(2) {
        return;
    }
    let conn = ctx.conn();
    let reason = ctx.message.param(2).filter(|r| !r.is_empty()).map(str::to_string);
    // `KICK #a u1,u2` kicks both from #a; `KICK #a,#b u1,u2` pairs them
    // (RFC 2812). Either way each kick is its own event, and its own KICK
    // line: clients understand one channel and one user per line.
    let channels: Vec<&str> = ctx.message.params[0].split(',').filter(|c| !c.is_empty()).collect();
    let nicks = ctx.message.params[1].split(',').filter(|n| !n.is_empty()).take(KICK_TARGETS);
    for (i, nick) in nicks.enumerate() {
        let channel = match channels.as_slice() {
            [one] => *one,
            many => match many.get(i) {
                Some(channel) => *channel,
                None => break,
            },
        };
        let (channel, reason) = (ChannelName::new(channel), reason.clone());
        ctx.out.event(Event::Kick { conn, channel, nick: Nick::new(nick), reason });
    }
}

/// INVITE nick #chan invites; INVITE alone lists the channels the user is
/// invited to (336, 337).
pub(super) fn invite(ctx: &mut Ctx<'_>) {
    let conn = ctx.conn();
    if ctx.message.params.is_empty() {
        let (nick, state, user) = (ctx.nick(), ctx.state, ctx.user);
        let server = ctx.session.info.name.as_str();
        for channel in user.invites.iter().filter_map(|c| state.channel_named(c)) {
            numeric_bare(ctx.out.buf(), server, reply::RPL_INVITELIST, nick, &[channel.name.as_str()]);
        }
        numeric(ctx.out.buf(), server, reply::RPL_ENDOFINVITELIST, nick, &[], "End of /INVITE list");
        return;
    }
    if !ctx.need_params(2) {
        return;
    }
    let nick = Nick::new(&ctx.message.params[0]);
    let channel = ChannelName::new(&ctx.message.params[1]);
    ctx.out.event(Event::Invite { conn, nick, channel });
}
