//! Channel membership and what a channel shows: JOIN, PART, TOPIC, NAMES,
//! LIST.
//!
//! Handlers here check only the shape of what was asked for; whether a
//! channel exists, is full, or has this user in it when the event lands is
//! for `State::apply` to decide, in event order. Long answers (NAMES of a
//! channel, LIST) are `Listing`s, written as the client reads them.

use crate::chat::listing::Listing;
use crate::chat::names::{MAX_TARGETS, is_valid_channel};
use crate::chat::reply;
use crate::chat::{ChannelName, Event};

use super::Ctx;

/// JOIN #a,#b joins each; JOIN 0 leaves every channel, as RFC 2812 says.
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
    for channel in channels.split(',').filter(|c| !c.is_empty()) {
        if is_valid_channel(channel) {
            ctx.out.event(Event::Join { conn, channel: ChannelName::new(channel) });
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
        Some(chan) if !chan.members.contains_key(&conn) => {
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
            for (i, channel) in list.split(',').enumerate() {
                if i == MAX_TARGETS {
                    ctx.numeric(reply::ERR_TOOMANYTARGETS, &[channel], "Too many recipients");
                    break;
                }
                ctx.out.listing(Listing::names(channel));
            }
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

pub(super) fn list(ctx: &mut Ctx<'_>) {
    ctx.out.listing(Listing::channels());
}
