//! PRIVMSG and NOTICE: text to channels and nicks.
//!
//! The two differ only in that NOTICE never answers with an error (RFC
//! 2812: automatic replies must not loop), so they share one function.
//! Each target becomes its own `Message` event; whether it exists, and who
//! receives the text, is decided by the directory. TAGMSG (IRCv3
//! message-tags) is the same with tags and no text. A sender with
//! message-tags has its client-only tags (`+key`) carried in the event's
//! [`Stamp`](crate::chat::Stamp), to be relayed to recipients that have
//! the capability too; every other tag a client sends is ignored.

use crate::chat::caps::Caps;
use crate::chat::names::{MAX_TARGETS, same_name};
use crate::chat::reply;
use crate::chat::{Event, MessageKind, Target};

use super::Ctx;

pub(super) fn privmsg(ctx: &mut Ctx<'_>) {
    send(ctx, MessageKind::Privmsg);
}

pub(super) fn notice(ctx: &mut Ctx<'_>) {
    send(ctx, MessageKind::Notice);
}

pub(super) fn tagmsg(ctx: &mut Ctx<'_>) {
    send(ctx, MessageKind::Tagmsg);
}

/// Most client-only tags relayed from one message; the tag section's
/// 4096 bytes bound their size (and so the event's), this their number.
const MAX_CLIENT_TAGS: usize = 32;

/// The client-only tags the sender's line carried, if it negotiated
/// message-tags (a client that did not cannot expect them relayed).
fn client_tags(ctx: &Ctx<'_>) -> Vec<(String, String)> {
    if !ctx.session.caps.has(Caps::MESSAGE_TAGS) {
        return Vec::new();
    }
    let tags = ctx.message.tags.iter().filter(|t| t.key.starts_with('+'));
    tags.take(MAX_CLIENT_TAGS).map(|t| (t.key.clone(), t.value.clone())).collect()
}

fn send(ctx: &mut Ctx<'_>, kind: MessageKind) {
    let conn = ctx.conn();
    let quiet = kind == MessageKind::Notice;
    let Some(targets) = ctx.message.param(0).filter(|t| !t.is_empty()) else {
        if !quiet {
            let text = format!("No recipient given ({})", ctx.message.command);
            ctx.numeric(reply::ERR_NORECIPIENT, &[], &text);
        }
        return;
    };
    let text = if kind == MessageKind::Tagmsg { Some("") } else { ctx.message.param(1) };
    let Some(text) = text.filter(|t| kind == MessageKind::Tagmsg || !t.is_empty()) else {
        if !quiet {
            ctx.numeric(reply::ERR_NOTEXTTOSEND, &[], "No text to send");
        }
        return;
    };
    // Each target once, at most MAX_TARGETS of them (as ngIRCd: the first
    // ones are served, the first one too many gets 407). Earlier targets
    // are compared in place: the usual message has one target and costs
    // no allocation for this.
    let tags = client_tags(ctx);
    let mut served = 0;
    for (i, target) in targets.split(',').enumerate().filter(|(_, t)| !t.is_empty()) {
        if targets.split(',').take(i).any(|earlier| same_name(earlier, target)) {
            continue;
        }
        if served == MAX_TARGETS {
            if !quiet {
                ctx.numeric(reply::ERR_TOOMANYTARGETS, &[target], "Too many recipients");
            }
            break;
        }
        served += 1;
        let target = Target::new(target);
        let stamp = ctx.session.stamp(tags.clone());
        ctx.out.event(Event::Message { conn, kind, target, text: text.to_string(), stamp });
    }
}
