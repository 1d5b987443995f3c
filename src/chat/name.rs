//! Nicks and channel names as values that know who they are: the name as
//! its user wrote it, and its case-folded key, worked out once.
//!
//! Names compare under the rfc1459 casemapping (see `names`), so a name
//! needs its folded form wherever it identifies something: as a map key,
//! in a membership test, to compare two names. Folding on every use cost an
//! allocation per event on every replica (a channel message folded its
//! channel in `State::apply`, once per pool worker). A [`Nick`] or
//! [`ChannelName`] folds when it is made, usually as an event is decoded,
//! and the directory and the renderers only compare keys already there.
//!
//! Both keep the written form and the key in one allocation, written form
//! first: folding maps ASCII to ASCII and leaves every other character as
//! it is, so the two halves are the same length and the split needs no
//! field. Equality, hashing and order go by the key alone, so `Alice` and
//! `alice` are one entry in a map, in the folded order the directory has
//! always listed channels in; the written form is for showing.
//!
//! They are separate types so that a nick can never be looked up among
//! channels. Making one does not validate it: what is a valid nick or
//! channel is the session's to check (`names`) before it builds an event;
//! these types are only about identity.
//!
//! Serde sees the written form alone, as a string, and the key is folded
//! again when decoding: the key is a function of the written form, so
//! carrying it would double the bytes of every name in the pool's log for
//! nothing, and a decoder could not be handed a key that disagrees.

use std::fmt;
use std::hash::{Hash, Hasher};

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::chat::channel::Status;
use crate::chat::names::{fold_char, is_channel_target};

/// A name and its key in one buffer (see the module doc).
#[derive(Clone)]
struct Folded {
    /// The written form, then the same number of bytes of its fold.
    both: Box<str>,
}

impl Folded {
    fn new(written: &str) -> Folded {
        let mut both = String::with_capacity(2 * written.len());
        both.push_str(written);
        both.extend(written.chars().map(fold_char));
        debug_assert_eq!(both.len(), 2 * written.len(), "folding keeps every character's length");
        Folded { both: both.into_boxed_str() }
    }

    fn written(&self) -> &str {
        &self.both[..self.both.len() / 2]
    }

    fn key(&self) -> &str {
        &self.both[self.both.len() / 2..]
    }
}

impl PartialEq for Folded {
    fn eq(&self, other: &Folded) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Folded {}

impl Hash for Folded {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}

impl PartialOrd for Folded {
    fn partial_cmp(&self, other: &Folded) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Folded {
    fn cmp(&self, other: &Folded) -> std::cmp::Ordering {
        self.key().cmp(other.key())
    }
}

impl fmt::Debug for Folded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.written(), f)
    }
}

impl Serialize for Folded {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.written())
    }
}

impl<'de> Deserialize<'de> for Folded {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Folded, D::Error> {
        // A visitor rather than `String::deserialize`, so that a name read
        // from a borrowed buffer (the pool's log slot) is copied once, into
        // its own buffer, not first into a String that is then dropped.
        struct FoldedVisitor;

        impl Visitor<'_> for FoldedVisitor {
            type Value = Folded;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a name")
            }

            fn visit_str<E: de::Error>(self, name: &str) -> Result<Folded, E> {
                Ok(Folded::new(name))
            }
        }

        deserializer.deserialize_str(FoldedVisitor)
    }
}

/// A nick: equal, hashed and ordered by its folded key.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Nick(Folded);

/// A channel name, `#` included: equal, hashed and ordered by its folded
/// key.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ChannelName(Folded);

impl Nick {
    /// Folds `nick` once; does not check that it is a valid nick.
    pub fn new(nick: &str) -> Nick {
        Nick(Folded::new(nick))
    }

    /// The nick as written, for showing.
    pub fn as_str(&self) -> &str {
        self.0.written()
    }

    /// The folded nick: equal for every spelling of the same nick.
    pub fn key(&self) -> &str {
        self.0.key()
    }
}

impl ChannelName {
    /// Folds `name` once; does not check that it is a valid channel name.
    pub fn new(name: &str) -> ChannelName {
        ChannelName(Folded::new(name))
    }

    /// The name as written, for showing.
    pub fn as_str(&self) -> &str {
        self.0.written()
    }

    /// The folded name: equal for every spelling of the same channel.
    pub fn key(&self) -> &str {
        self.0.key()
    }
}

impl fmt::Display for Nick {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Nick {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Nick").field(&self.0).finish()
    }
}

impl fmt::Debug for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ChannelName").field(&self.0).finish()
    }
}

impl From<&str> for Nick {
    fn from(nick: &str) -> Nick {
        Nick::new(nick)
    }
}

impl From<String> for Nick {
    fn from(nick: String) -> Nick {
        Nick::new(&nick)
    }
}

impl From<&str> for ChannelName {
    fn from(name: &str) -> ChannelName {
        ChannelName::new(name)
    }
}

impl From<String> for ChannelName {
    fn from(name: String) -> ChannelName {
        ChannelName::new(&name)
    }
}

/// Whom a PRIVMSG or NOTICE is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Target {
    Channel(ChannelName),
    Nick(Nick),
    /// STATUSMSG: the members of `channel` with `status` or higher
    /// (`@#chan`, `+#chan`).
    Status {
        status: Status,
        channel: ChannelName,
    },
}

impl Target {
    /// A target as a client typed it: a channel if it starts with `#`
    /// (`names::is_channel_target`), some of its members if `@` or `+`
    /// come before the `#`, a nick otherwise (no nick starts with those).
    pub fn new(target: &str) -> Target {
        if is_channel_target(target) {
            return Target::Channel(ChannelName::new(target));
        }
        match Status::split(target) {
            Some((status, channel)) if is_channel_target(channel) => {
                Target::Status { status, channel: ChannelName::new(channel) }
            }
            _ => Target::Nick(Nick::new(target)),
        }
    }

    /// The status a STATUSMSG target asks for; none for any other target.
    pub fn status(&self) -> Option<Status> {
        match self {
            Target::Status { status, .. } => Some(*status),
            Target::Channel(_) | Target::Nick(_) => None,
        }
    }

    /// The nick or channel named, as written, for showing (a status
    /// target's channel without its prefix).
    pub fn as_str(&self) -> &str {
        match self {
            Target::Channel(channel) | Target::Status { channel, .. } => channel.as_str(),
            Target::Nick(nick) => nick.as_str(),
        }
    }
}

impl From<&str> for Target {
    fn from(target: &str) -> Target {
        Target::new(target)
    }
}

impl From<String> for Target {
    fn from(target: String) -> Target {
        Target::new(&target)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::hash_map::DefaultHasher;

    use super::*;
    use crate::chat::names::fold;

    fn hash_of(value: &impl Hash) -> u64 {
        let mut hasher = DefaultHasher::new();
        value.hash(&mut hasher);
        hasher.finish()
    }

    #[test]
    fn a_name_keeps_how_it_was_written_and_its_fold() {
        let nick = Nick::new("Alice[]\\~");
        assert_eq!(nick.as_str(), "Alice[]\\~");
        assert_eq!(nick.key(), "alice{}|^");
        assert_eq!(nick.key(), fold(nick.as_str()));
        assert_eq!(nick.to_string(), "Alice[]\\~");
        let channel = ChannelName::new("#Café");
        assert_eq!((channel.as_str(), channel.key()), ("#Café", "#café"));
        assert_eq!(format!("{channel}"), "#Café");
        assert_eq!(format!("{channel:?}"), "ChannelName(\"#Café\")");
        let empty = Nick::new("");
        assert_eq!((empty.as_str(), empty.key()), ("", ""));
    }

    #[test]
    fn spellings_of_one_name_are_equal_and_hash_alike() {
        let (a, b) = (Nick::new("[Bob]"), Nick::new("{bOB}"));
        assert_eq!(a, b);
        assert_eq!(hash_of(&a), hash_of(&b));
        assert_eq!(a.cmp(&b), std::cmp::Ordering::Equal);
        assert_ne!(Nick::new("bob"), Nick::new("bobby"));
        assert_eq!(ChannelName::new("#RUST"), ChannelName::new("#rust"));
        assert_ne!(ChannelName::new("#rust"), ChannelName::new("#rusty"));
    }

    #[test]
    fn names_order_by_their_keys() {
        // By written form "B" < "a" and "[" < "a"; by key "a" < "b" < "{".
        let mut names: Vec<ChannelName> = ["#[x]", "#B", "#a"].map(ChannelName::new).into();
        names.sort();
        let written: Vec<&str> = names.iter().map(ChannelName::as_str).collect();
        assert_eq!(written, ["#a", "#B", "#[x]"]);
        let keys: Vec<&str> = names.iter().map(ChannelName::key).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
    }

    #[test]
    fn serde_carries_the_written_form_and_folds_again() {
        let nick = Nick::new("Zoë[1]");
        let bytes = postcard::to_allocvec(&nick).unwrap();
        assert_eq!(bytes, postcard::to_allocvec("Zoë[1]").unwrap(), "encoded as the string alone");
        let back: Nick = postcard::from_bytes(&bytes).unwrap();
        assert_eq!((back.as_str(), back.key()), (nick.as_str(), nick.key()));
        let json = serde_json::to_string(&ChannelName::new("#Rust")).unwrap();
        assert_eq!(json, "\"#Rust\"");
        let back: ChannelName = serde_json::from_str("\"#R\\u0055st\"").unwrap();
        assert_eq!((back.as_str(), back.key()), ("#RUst", "#rust"));
    }

    #[test]
    fn a_target_is_a_channel_when_a_hash_starts_it_after_any_status_prefixes() {
        assert_eq!(Target::new("#Rust"), Target::Channel(ChannelName::new("#rust")));
        assert_eq!(Target::new("Rust"), Target::Nick(Nick::new("rust")));
        assert_eq!(Target::new("&rust"), Target::Nick(Nick::new("&rust")));
        assert_eq!(Target::new("#Rust").as_str(), "#Rust");
        let ops = Target::Status { status: Status::Op, channel: ChannelName::new("#rust") };
        assert_eq!(Target::new("@#Rust"), ops);
        assert_eq!(Target::new("+@#Rust").as_str(), "#Rust");
        assert!(matches!(Target::new("@+#a"), Target::Status { status: Status::Voice, .. }));
        for not_a_channel in ["@bob", "+", "@", "@&a", "#@a"] {
            assert!(!matches!(Target::new(not_a_channel), Target::Status { .. }), "{not_a_channel}");
        }
        for target in [Target::new("#A"), Target::new("b"), Target::new("+#c")] {
            let bytes = postcard::to_allocvec(&target).unwrap();
            let back: Target = postcard::from_bytes(&bytes).unwrap();
            assert_eq!(back.as_str(), target.as_str());
            assert_eq!(back, target);
        }
    }
}
