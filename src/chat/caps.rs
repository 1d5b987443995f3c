//! IRCv3 capabilities: which exist here, which are offered, and the set a
//! client has enabled.
//!
//! A client's enabled set decides how lines are written *for it* (a
//! `@time=` tag, `@+` in NAMES, its own messages echoed), so it must be
//! known wherever that client's lines are rendered, which under the pools
//! is every replica. It is therefore part of the directory: `Register`
//! carries the set negotiated before registration and `Event::Caps` any
//! change after it. [`Caps`] is a bit set so that it costs an event a few
//! bytes and a renderer one mask to tell which recipients get the same
//! bytes (see `render`).

use serde::{Deserialize, Serialize};

/// A set of capabilities, one bit each.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Caps(u32);

impl Caps {
    pub const NONE: Caps = Caps(0);
    pub const CAP_NOTIFY: Caps = Caps(1 << 0);
    pub const MULTI_PREFIX: Caps = Caps(1 << 1);
    pub const USERHOST_IN_NAMES: Caps = Caps(1 << 2);
    pub const MESSAGE_TAGS: Caps = Caps(1 << 3);
    pub const SERVER_TIME: Caps = Caps(1 << 4);
    pub const ECHO_MESSAGE: Caps = Caps(1 << 5);
    pub const BATCH: Caps = Caps(1 << 6);
    pub const LABELED_RESPONSE: Caps = Caps(1 << 7);
    pub const AWAY_NOTIFY: Caps = Caps(1 << 8);
    pub const EXTENDED_JOIN: Caps = Caps(1 << 9);
    pub const INVITE_NOTIFY: Caps = Caps(1 << 10);
    pub const SETNAME: Caps = Caps(1 << 11);
    pub const EXTENDED_MONITOR: Caps = Caps(1 << 12);

    /// Whether every capability in `other` is in this set.
    pub const fn has(self, other: Caps) -> bool {
        self.0 & other.0 == other.0
    }

    pub const fn with(self, other: Caps) -> Caps {
        Caps(self.0 | other.0)
    }

    pub const fn without(self, other: Caps) -> Caps {
        Caps(self.0 & !other.0)
    }

    /// Only the capabilities also in `mask`.
    pub const fn only(self, mask: Caps) -> Caps {
        Caps(self.0 & mask.0)
    }

    /// The offered capability called `name`, if there is one.
    pub fn named(name: &str) -> Option<Caps> {
        OFFERED.iter().find(|(n, _)| *n == name).map(|&(_, cap)| cap)
    }

    /// The names of the offered capabilities in this set, in [`OFFERED`]'s
    /// order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        OFFERED.iter().filter(move |(_, cap)| self.has(*cap)).map(|&(name, _)| name)
    }

    /// Whether every capability in the set is one the server offers (a
    /// set read from outside, such as a snapshot's, may hold other bits).
    pub fn is_offered(self) -> bool {
        Caps::from_bits(self.0) == self
    }

    /// Builds a set from its bits, keeping only offered ones (for tests'
    /// generators).
    pub fn from_bits(bits: u32) -> Caps {
        let offered = OFFERED.iter().fold(Caps::NONE, |all, &(_, cap)| all.with(cap));
        Caps(bits).only(offered)
    }
}

/// Every capability chatter offers, by the name `CAP LS` gives, in that
/// order. Only what works end to end is here: a capability not listed is
/// NAKed like an unknown one. The set never changes while the server runs,
/// so `CAP NEW` and `CAP DEL` are never sent; `cap-notify` is offered (and
/// implied by `CAP LS 302`, as its spec says) so that clients know they
/// would be told.
pub const OFFERED: &[(&str, Caps)] = &[
    ("away-notify", Caps::AWAY_NOTIFY),
    ("batch", Caps::BATCH),
    ("cap-notify", Caps::CAP_NOTIFY),
    ("echo-message", Caps::ECHO_MESSAGE),
    ("extended-join", Caps::EXTENDED_JOIN),
    ("extended-monitor", Caps::EXTENDED_MONITOR),
    ("invite-notify", Caps::INVITE_NOTIFY),
    ("labeled-response", Caps::LABELED_RESPONSE),
    ("message-tags", Caps::MESSAGE_TAGS),
    ("multi-prefix", Caps::MULTI_PREFIX),
    ("server-time", Caps::SERVER_TIME),
    ("setname", Caps::SETNAME),
    ("userhost-in-names", Caps::USERHOST_IN_NAMES),
];

/// Most capabilities one `CAP REQ` may name; a longer request is NAKed
/// whole, like one naming an unknown capability.
pub const MAX_REQ_CAPS: usize = 32;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_bits_agree() {
        for &(name, cap) in OFFERED {
            assert_eq!(Caps::named(name), Some(cap));
            assert_eq!(cap.names().collect::<Vec<_>>(), [name]);
        }
        assert_eq!(Caps::named("MULTI-PREFIX"), None, "names are case-sensitive");
        assert_eq!(Caps::named("sasl"), None);
        let two = Caps::MULTI_PREFIX.with(Caps::USERHOST_IN_NAMES);
        assert!(two.has(Caps::USERHOST_IN_NAMES) && !two.has(Caps::CAP_NOTIFY));
        assert_eq!(two.without(Caps::USERHOST_IN_NAMES), Caps::MULTI_PREFIX);
        assert_eq!(two.names().collect::<Vec<_>>(), ["multi-prefix", "userhost-in-names"]);
        assert_eq!(Caps::from_bits(u32::MAX).names().count(), OFFERED.len());
    }
}
