//! WHOWAS: who used a nick before it was given up, by quitting or by a nick
//! change.
//!
//! The history is part of the directory, written by `State::apply` as
//! users leave or rename, so every replica holds the same history and a
//! WHOWAS answers alike on every worker. It is bounded twice, because
//! clients choose what fills it: [`MAX_ENTRIES`] in all (the oldest go
//! first) and [`PER_NICK`] for any one nick, so one client reconnecting
//! in a loop cannot push everyone else out.

use std::collections::{HashMap, VecDeque};

use crate::chat::Nick;

/// Most entries kept in all.
pub const MAX_ENTRIES: usize = 1000;
/// Most entries kept for one nick (the latest).
pub const PER_NICK: usize = 5;

/// A user as they were when they gave up their nick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WasUser {
    pub nick: Nick,
    pub user: String,
    pub host: String,
    pub realname: String,
}

/// The history, oldest first.
#[derive(Debug, Clone, Default)]
pub struct Whowas {
    entries: VecDeque<WasUser>,
}

impl Whowas {
    /// Remembers `was`, forgetting the oldest entry for the same nick when
    /// it has [`PER_NICK`] already, and the oldest of all when full.
    pub fn record(&mut self, was: WasUser) {
        let same: Vec<usize> =
            self.entries.iter().enumerate().filter(|(_, e)| e.nick == was.nick).map(|(i, _)| i).collect();
        if same.len() >= PER_NICK {
            self.entries.remove(same[0]);
        }
        if self.entries.len() >= MAX_ENTRIES {
            self.entries.pop_front();
        }
        self.entries.push_back(was);
    }

    /// The entries for `nick` (compared folded), the most recent first.
    pub fn lookup<'a>(&'a self, nick: &Nick) -> impl Iterator<Item = &'a WasUser> + 'a {
        let nick = nick.clone();
        self.entries.iter().rev().filter(move |e| e.nick == nick)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every entry, oldest first (for a snapshot).
    pub(super) fn entries(&self) -> impl Iterator<Item = &WasUser> {
        self.entries.iter()
    }

    /// The history `entries` (oldest first) make, if it keeps within
    /// [`MAX_ENTRIES`] and [`PER_NICK`], as `record` keeps it; otherwise
    /// the bound it breaks and by how many (a snapshot's restore).
    pub(super) fn from_entries(entries: Vec<WasUser>) -> Result<Whowas, (&'static str, usize, usize)> {
        if entries.len() > MAX_ENTRIES {
            return Err(("WHOWAS entries", entries.len(), MAX_ENTRIES));
        }
        let mut per_nick: HashMap<&Nick, usize> = HashMap::new();
        for entry in &entries {
            let count = per_nick.entry(&entry.nick).or_default();
            *count += 1;
            if *count > PER_NICK {
                return Err(("WHOWAS entries for one nick", *count, PER_NICK));
            }
        }
        Ok(Whowas { entries: entries.into() })
    }

    /// For `State::digest`: replicas must agree on the history too.
    pub fn digest(&self) -> String {
        let entries: Vec<String> =
            self.entries.iter().map(|e| format!("{}!{}@{}:{}", e.nick, e.user, e.host, e.realname)).collect();
        format!("{entries:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn was(nick: &str, user: &str) -> WasUser {
        WasUser { nick: Nick::new(nick), user: user.into(), host: "h".into(), realname: "r".into() }
    }

    #[test]
    fn latest_first_folded_and_bounded_per_nick() {
        let mut history = Whowas::default();
        for i in 0..PER_NICK + 3 {
            history.record(was(if i % 2 == 0 { "Sam" } else { "sAM" }, &format!("u{i}")));
        }
        history.record(was("other", "o"));
        let users: Vec<&str> = history.lookup(&Nick::new("SAM")).map(|e| e.user.as_str()).collect();
        assert_eq!(users, ["u7", "u6", "u5", "u4", "u3"]);
        assert_eq!(history.len(), PER_NICK + 1);
    }

    #[test]
    fn bounded_in_all() {
        let mut history = Whowas::default();
        for i in 0..MAX_ENTRIES + 10 {
            history.record(was(&format!("n{i}"), "u"));
        }
        assert_eq!(history.len(), MAX_ENTRIES);
        assert_eq!(history.lookup(&Nick::new("n0")).count(), 0);
        assert_eq!(history.lookup(&Nick::new(&format!("n{}", MAX_ENTRIES + 9))).count(), 1);
    }
}
