//! Registrations whose refusal is held back a moment, so that a client that
//! hangs up and at once reconnects with its nick gets the nick back
//! (issue 11).
//!
//! # The race
//!
//! The old connection lives on worker A, the reconnection lands on worker
//! B. Nicks are settled in log order, and nothing orders B's `Register`
//! after A's `Quit`: if B appends before A has read the old socket's EOF,
//! the log says the nick is taken, though its holder had hung up before
//! the new client even connected. So when the log refuses a registration
//! of B's own connection, B does not tell its client yet. It holds the
//! refusal and watches the holder's worker (A, or B itself) until one of:
//!
//! - the nick is free in B's replica (the holder's `Quit`, or a NICK away,
//!   was applied): the `Register` is appended again, and its outcome is
//!   told as it comes, whatever it is (one retry per registration);
//! - A has gone round its loop [`TURNS`] times since the refusal was read,
//!   and B has applied everything published before it saw that: the nick
//!   is really taken, and the 433 goes out;
//! - A is no longer the LIVE incarnation it was: the keeper quits its
//!   users, as it does for any lost worker; the 433 goes out;
//! - [`PATIENCE`] has run out: the 433 goes out.
//!
//! # Why [`TURNS`] turns are enough
//!
//! The client closed the old socket before it connected the new one, and
//! B read the new one's registration, appended it and read it back refused
//! before it looked at A's heartbeat: the EOF was in A's socket by then.
//! A's loop (see `worker::run`) beats, applies the log, handles input, then
//! polls. Say A's heartbeat read `h` at the refusal. If A's poll in turn
//! `h` is still to come, or had not returned before the EOF arrived, it
//! reports the EOF, and turn `h + 1` reads it; if that poll had already
//! returned, turn `h + 1`'s reports it and turn `h + 2` reads it. Reading
//! EOF (`clients::serve_lines`, `read_while_waiting`) drops the client
//! (`clients::drop_client`), which appends its `Quit` there and then, so
//! it is published before A beats `h + 3`. The beat is a Release and its
//! read an Acquire (`Log::turns`), and B reads the heartbeat before it
//! drains the log up to the head it saw, so the `Quit` is applied before
//! B rules: the nick is then free, unless someone really holds it.
//!
//! A worker that sleeps with nothing to do does not beat: B nudges it
//! (`Log::nudge`), so that the wait is a few wake-ups, not a tick. B itself
//! polls briefly while it holds a registration.
//!
//! What this does not cover is bounded by [`PATIENCE`]: A holding the flow
//! or finding the ring full (input is not handled then, or the `Quit`
//! waits for room), a stopped worker (evicted by the keeper after
//! `STALL_TIMEOUT`), the old connection parked for a long reply. Even then
//! its `Quit` frees the nick as soon as it is applied within the patience.
//!
//! # A holder on another node
//!
//! In a network (`--cluster`) the old connection may be on another node,
//! whose sockets and loop this worker cannot see: its `Quit` comes through
//! the stream when that node has read the hang-up and the network has
//! ordered it. Nothing here can tell a holder that hung up from one that
//! stays, so time bounds the wait: a holder on another node connected
//! from the registering client's address (a reconnection comes from where
//! the old connection was) is waited for until its nick is free, or
//! [`REMOTE_PATIENCE`]. A holder elsewhere is refused at once.
//!
//! NICK changes are left alone: only registration races a reconnection.
//!
//! While a registration is held its client's further lines wait (they are
//! not read), so that they are answered after its 001 or 433, in order.
//!
//! The decisions are here, without sockets or clocks (time, heartbeats and
//! whether a nick is free are passed in); the worker carries them out.

use std::time::{Duration, Instant};

use crate::chat::{ConnId, Event};
use crate::server::pool::log::CellId;

use super::TICK;

/// Turns of the holder's worker after which its `Quit` for a socket that
/// had hung up before the refusal is in the log (see the module doc).
pub(super) const TURNS: u64 = 3;

/// The longest a refusal is held, for what the turns do not cover.
pub(super) const PATIENCE: Duration = TICK.saturating_mul(2);

/// The longest a refusal is held for a holder on another node.
pub(super) const REMOTE_PATIENCE: Duration = crate::server::cluster::REMOTE_HOLDER_PATIENCE;

/// Whom a refused registration may wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Holder {
    /// A connection of this node, on the worker watched.
    Local(Watch),
    /// A connection of another node of the network, from the same address.
    Remote,
}

/// The worker a held registration waits for: the holder's incarnation and
/// its heartbeat when the refusal was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Watch {
    pub(super) cell: CellId,
    pub(super) generation: u32,
    pub(super) beat: u64,
}

/// What to do with a held registration now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Release {
    /// The nick is free: append the `Register` again.
    Retry(Event),
    /// The nick is really taken: tell the client (433).
    Refuse(Event),
}

struct Held {
    conn: ConnId,
    event: Event,
    /// The holder's worker, if on this node.
    watch: Option<Watch>,
    deadline: Instant,
}

/// A worker's held registrations, and those it retried whose outcome is
/// not yet read back.
#[derive(Default)]
pub(super) struct HeldRegistrations {
    held: Vec<Held>,
    retried: Vec<ConnId>,
}

impl HeldRegistrations {
    pub(super) fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// The log refused `event`, a `Register` of this worker's connection;
    /// `holder` is whom to wait for, `None` if no one (its worker is gone,
    /// or it is on another node and elsewhere). Returns whether to hold the
    /// refusal back (else it is told now).
    pub(super) fn refused(&mut self, event: &Event, holder: Option<Holder>, now: Instant) -> bool {
        let Some(conn) = event.conn() else { return false };
        if let Some(i) = self.retried.iter().position(|c| *c == conn) {
            self.retried.swap_remove(i);
            return false;
        }
        let Some(holder) = holder else { return false };
        if self.held.iter().any(|h| h.conn == conn) {
            return false;
        }
        let (watch, deadline) = match holder {
            Holder::Local(watch) => (Some(watch), now + PATIENCE),
            Holder::Remote => (None, now + REMOTE_PATIENCE),
        };
        self.held.push(Held { conn, event: event.clone(), watch, deadline });
        true
    }

    /// A `Register` of `conn` was read back and not refused.
    pub(super) fn accepted(&mut self, conn: ConnId) {
        if !self.retried.is_empty() {
            self.retried.retain(|c| *c != conn);
        }
    }

    /// The workers being waited for, to nudge.
    pub(super) fn watched(&self) -> impl Iterator<Item = Watch> + '_ {
        self.held.iter().filter_map(|h| h.watch)
    }

    /// Forgets `conn` (its connection is gone).
    pub(super) fn forget(&mut self, conn: ConnId) {
        self.held.retain(|h| h.conn != conn);
        self.retried.retain(|c| *c != conn);
    }

    /// Rules on every held registration that can be ruled on now, in the
    /// order they were held. `turns` gives a watched worker's heartbeat as
    /// read *before* the replica was brought up to date (`None`: that
    /// incarnation is gone); `caught_up` says the replica has applied
    /// everything published when it was read; `nick_free` asks the replica
    /// about a `Register`'s nick.
    pub(super) fn release(
        &mut self,
        now: Instant,
        caught_up: bool,
        turns: impl Fn(Watch) -> Option<u64>,
        nick_free: impl Fn(&Event) -> bool,
        out: &mut Vec<(ConnId, Release)>,
    ) {
        let mut i = 0;
        while i < self.held.len() {
            let h = &self.held[i];
            let verdict = if nick_free(&h.event) {
                Some(true)
            } else {
                let gone_round = h.watch.is_some_and(|watch| match turns(watch) {
                    None => true,
                    Some(beat) => caught_up && beat >= watch.beat + TURNS,
                });
                (gone_round || now >= h.deadline).then_some(false)
            };
            let Some(retry) = verdict else {
                i += 1;
                continue;
            };
            let h = self.held.remove(i);
            if retry {
                self.retried.push(h.conn);
                out.push((h.conn, Release::Retry(h.event)));
            } else {
                out.push((h.conn, Release::Refuse(h.event)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::{Nick, Protocol};

    fn conn(slot: u32) -> ConnId {
        ConnId { worker: 2, slot, generation: 1 }
    }

    fn register(slot: u32) -> Event {
        Event::Register {
            conn: conn(slot),
            nick: Nick::new("phoenix"),
            user: "phoenix".into(),
            realname: "Phoenix".into(),
            host: "127.0.0.1".into(),
            protocol: Protocol::Irc,
            caps: crate::chat::Caps::NONE,
            at: 0,
        }
    }

    fn watch() -> Watch {
        Watch { cell: CellId::worker(1), generation: 1, beat: 10 }
    }

    fn release(
        held: &mut HeldRegistrations,
        now: Instant,
        caught_up: bool,
        beat: Option<u64>,
        free: bool,
    ) -> Vec<(ConnId, Release)> {
        let mut out = Vec::new();
        held.release(now, caught_up, |_| beat, |_| free, &mut out);
        out
    }

    #[test]
    fn a_nick_freed_while_held_is_retried_once() {
        let t0 = Instant::now();
        let mut held = HeldRegistrations::default();
        assert!(held.refused(&register(7), Some(Holder::Local(watch())), t0));
        assert!(release(&mut held, t0, true, Some(11), false).is_empty(), "the holder has not gone round");
        let out = release(&mut held, t0, true, Some(11), true);
        assert_eq!(out, vec![(conn(7), Release::Retry(register(7)))]);
        assert!(held.is_empty());
        // Refused again: told at once, not held a second time.
        assert!(!held.refused(&register(7), Some(Holder::Local(watch())), t0));
        assert!(held.is_empty());
    }

    #[test]
    fn a_retry_that_succeeds_leaves_nothing_behind() {
        let t0 = Instant::now();
        let mut held = HeldRegistrations::default();
        assert!(held.refused(&register(7), Some(Holder::Local(watch())), t0));
        assert_eq!(release(&mut held, t0, true, Some(10), true).len(), 1);
        held.accepted(conn(7));
        // A later registration of the same connection is held afresh.
        assert!(held.refused(&register(7), Some(Holder::Local(watch())), t0));
    }

    #[test]
    fn a_nick_still_taken_once_the_holder_went_round_is_refused() {
        let t0 = Instant::now();
        let mut held = HeldRegistrations::default();
        assert!(held.refused(&register(7), Some(Holder::Local(watch())), t0));
        assert!(release(&mut held, t0, true, Some(watch().beat + TURNS - 1), false).is_empty());
        assert!(
            release(&mut held, t0, false, Some(watch().beat + TURNS), false).is_empty(),
            "not ruled before the replica has applied what was published by then"
        );
        let out = release(&mut held, t0, true, Some(watch().beat + TURNS), false);
        assert_eq!(out, vec![(conn(7), Release::Refuse(register(7)))]);
        assert!(held.is_empty());
    }

    #[test]
    fn a_stalled_holder_is_waited_for_no_longer_than_the_patience() {
        let t0 = Instant::now();
        let mut held = HeldRegistrations::default();
        assert!(held.refused(&register(7), Some(Holder::Local(watch())), t0));
        let almost = t0 + PATIENCE - Duration::from_millis(1);
        assert!(release(&mut held, almost, true, Some(watch().beat), false).is_empty());
        let out = release(&mut held, t0 + PATIENCE, false, Some(watch().beat), false);
        assert_eq!(out, vec![(conn(7), Release::Refuse(register(7)))]);
    }

    #[test]
    fn a_holder_whose_worker_is_gone_is_not_waited_for() {
        let t0 = Instant::now();
        let mut held = HeldRegistrations::default();
        assert!(!held.refused(&register(7), None, t0), "no worker to wait for");
        assert!(held.refused(&register(8), Some(Holder::Local(watch())), t0));
        let out = release(&mut held, t0, false, None, false);
        assert_eq!(out, vec![(conn(8), Release::Refuse(register(8)))]);
    }

    #[test]
    fn a_holder_on_another_node_is_waited_for_until_its_nick_is_free_or_the_patience() {
        let t0 = Instant::now();
        let mut held = HeldRegistrations::default();
        assert!(held.refused(&register(7), Some(Holder::Remote), t0));
        assert!(held.refused(&register(8), Some(Holder::Remote), t0));
        assert_eq!(held.watched().count(), 0, "no worker of this node to nudge");
        let later = t0 + REMOTE_PATIENCE - Duration::from_millis(1);
        assert!(release(&mut held, later, true, None, false).is_empty(), "no turns to count");
        let mut out = Vec::new();
        held.release(later, true, |_| None, |e| e.conn() == Some(conn(7)), &mut out);
        assert_eq!(out, vec![(conn(7), Release::Retry(register(7)))]);
        let out = release(&mut held, t0 + REMOTE_PATIENCE, true, None, false);
        assert_eq!(out, vec![(conn(8), Release::Refuse(register(8)))]);
    }

    #[test]
    fn each_registration_is_ruled_on_its_own() {
        let t0 = Instant::now();
        let mut held = HeldRegistrations::default();
        let other = Watch { beat: 20, ..watch() };
        assert!(held.refused(&register(7), Some(Holder::Local(watch())), t0));
        assert!(held.refused(&register(8), Some(Holder::Local(other)), t0));
        let mut out = Vec::new();
        held.release(t0, true, |w| Some(w.beat + TURNS * u64::from(w.beat == 10)), |_| false, &mut out);
        assert_eq!(out, vec![(conn(7), Release::Refuse(register(7)))]);
        assert_eq!(held.watched().collect::<Vec<_>>(), vec![other]);
        held.forget(conn(8));
        assert!(held.is_empty());
    }
}
