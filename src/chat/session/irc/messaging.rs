//! PRIVMSG and NOTICE: text to channels and nicks.
//!
//! The two differ only in that NOTICE never answers with an error (RFC
//! 2812: automatic replies must not loop), so they share one function.
//! Each target becomes its own `Message` event; whether it exists, and who
//! receives the text, is decided by the directory.

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
    let Some(text) = ctx.message.param(1).filter(|t| !t.is_empty()) else {
        if !quiet {
            ctx.numeric(reply::ERR_NOTEXTTOSEND, &[], "No text to send");
        }
        return;
    };
    // Each target once, at most MAX_TARGETS of them (as ngIRCd: the first
    // ones are served, the first one too many gets 407). Earlier targets
    // are compared in place: the usual message has one target and costs
    // no allocation for this.
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
        ctx.out.event(Event::Message { conn, kind, target, text: text.to_string(), at: ctx.now });
    }
}
