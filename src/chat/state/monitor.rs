//! MONITOR (IRCv3): who wants to know when a nick comes or goes.
//!
//! Each user's list of nicks is directory state, set by `Event::Monitor`
//! in log order, so every replica knows every watcher and renders the
//! notices for the watchers it serves. The reverse index (nick → watchers)
//! makes a registration, a nick change or a quit cost one lookup, not a
//! scan of every user's list. Lists are bounded by [`MONITOR_LIMIT`]
//! (advertised as `MONITOR=` in ISUPPORT); a nick given twice counts once.

use std::collections::{BTreeSet, HashMap};

use crate::chat::change::Change;
use crate::chat::event::MonitorChange;
use crate::chat::{ConnId, Nick};

use super::State;

/// The most nicks one user may monitor.
pub const MONITOR_LIMIT: usize = 100;

/// Nick → the users monitoring it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Watchers {
    by_nick: HashMap<Nick, BTreeSet<ConnId>>,
}

impl Watchers {
    fn of(&self, nick: &Nick) -> Vec<ConnId> {
        self.by_nick.get(nick).map(|w| w.iter().copied().collect()).unwrap_or_default()
    }

    pub(super) fn add(&mut self, nick: Nick, conn: ConnId) {
        self.by_nick.entry(nick).or_default().insert(conn);
    }

    fn remove(&mut self, nick: &Nick, conn: ConnId) {
        if let Some(watchers) = self.by_nick.get_mut(nick) {
            watchers.remove(&conn);
            if watchers.is_empty() {
                self.by_nick.remove(nick);
            }
        }
    }
}

impl State {
    /// Who monitors `nick`, in id order.
    pub(crate) fn watchers_of(&self, nick: &Nick) -> Vec<ConnId> {
        self.watchers.of(nick)
    }

    /// `conn` changes its list; adding answers with who is on and who is
    /// not (and who did not fit).
    pub(super) fn monitor<'e>(
        &mut self,
        changes: &mut Vec<Change<'e>>,
        conn: ConnId,
        change: &'e MonitorChange,
    ) {
        let Some(user) = self.users.get_mut(&conn) else { return };
        match change {
            MonitorChange::Add(nicks) => {
                let (mut online, mut offline, mut full) = (Vec::new(), Vec::new(), Vec::new());
                for nick in nicks {
                    if !user.monitoring.contains(nick) {
                        if user.monitoring.len() >= MONITOR_LIMIT {
                            full.push(nick.clone());
                            continue;
                        }
                        user.monitoring.insert(nick.clone());
                        self.watchers.add(nick.clone(), conn);
                    }
                    match self.nicks.get(nick) {
                        Some(&them) => online.push(them),
                        None => offline.push(nick.clone()),
                    }
                }
                changes.push(Change::MonitorStatus { conn, online, offline, full });
            }
            MonitorChange::Remove(nicks) => {
                for nick in nicks {
                    if user.monitoring.remove(nick) {
                        self.watchers.remove(nick, conn);
                    }
                }
            }
            MonitorChange::Clear => {
                for nick in std::mem::take(&mut user.monitoring) {
                    self.watchers.remove(&nick, conn);
                }
            }
        }
    }

    /// `conn` has come on as `nick`: its watchers are told.
    pub(super) fn monitored_online(&self, changes: &mut Vec<Change<'_>>, conn: ConnId, nick: &Nick) {
        let watchers = self.watchers.of(nick);
        if !watchers.is_empty() {
            changes.push(Change::MonitorOnline { watchers, who: conn });
        }
    }

    /// `nick` is gone (quit, or renamed): its watchers are told.
    pub(super) fn monitored_offline(&self, changes: &mut Vec<Change<'_>>, nick: &Nick) {
        let watchers = self.watchers.of(nick);
        if !watchers.is_empty() {
            changes.push(Change::MonitorOffline { watchers, nick: nick.clone() });
        }
    }

    /// A user who leaves stops watching.
    pub(super) fn forget_monitoring(&mut self, conn: ConnId, monitoring: &BTreeSet<Nick>) {
        for nick in monitoring {
            self.watchers.remove(nick, conn);
        }
    }
}
