//! The worker's side of held registrations: finding whom a refused
//! registration of its own would wait for, ruling on the held ones each
//! turn, and telling the refused. The decisions themselves are `held`'s,
//! apart from sockets and clocks so they are tested alone; this is where
//! they meet the worker's log, replica and connections.

use crate::chat::{Change, Deliveries, Event, render};

use super::Worker;
use super::held::{Holder, Release, Watch};

impl Worker<'_> {
    /// One of this worker's registrations, read back from the log: a
    /// refusal is held back (taken out of `changes`) while the nick's
    /// holder may be a client that has hung up (see `held`).
    pub(super) fn read_back_registration(&mut self, event: &Event, changes: &mut Vec<Change<'_>>) {
        let Event::Register { conn, nick, host, .. } = event else { return };
        let refused = changes
            .iter()
            .position(|c| matches!(c, Change::RegistrationRefused { conn: refused, .. } if refused == conn));
        let Some(at) = refused else {
            self.held.accepted(*conn);
            return;
        };
        let Some(client) = self.conns.get_mut(&conn.slot).filter(|c| c.is_open()) else { return };
        let space = self.space;
        let state = &self.state;
        let log = &self.log;
        let holder = state.find_nick(nick.as_str()).and_then(|holder| {
            let Some(cell) = space.cell_of(holder) else {
                let same_address = state.user(holder).is_some_and(|user| user.host == *host);
                return (space.clustered() && same_address).then_some(Holder::Remote);
            };
            let generation = space.cell_generation(holder);
            let beat = log.turns(cell, generation)?;
            Some(Holder::Local(Watch { cell, generation, beat }))
        });
        if self.held.refused(event, holder, self.now) {
            client.registration_held = true;
            changes.remove(at);
        }
    }

    /// Rules on held registrations (see `held`): retries those whose nick
    /// is free, tells the others 433 once their holder's worker has gone
    /// round its loop, and wakes that worker if it sleeps meanwhile.
    pub(super) fn release_registrations(&mut self) {
        // Heartbeats before the log: a QUIT published before a beat read
        // here is among what the drain below applies.
        let turns: Vec<(Watch, Option<u64>)> =
            self.held.watched().map(|w| (w, self.log.turns(w.cell, w.generation))).collect();
        let head = self.log.head();
        self.drain_log();
        let caught_up = self.follower.cursor() >= head;
        let state = &self.state;
        let nick_free = |event: &Event| match event {
            Event::Register { nick, .. } => state.find_nick(nick.as_str()).is_none(),
            _ => true,
        };
        let beat_of = |watch: Watch| turns.iter().find(|(w, _)| *w == watch).and_then(|(_, beat)| *beat);
        let mut released = Vec::new();
        self.held.release(self.now, caught_up, beat_of, nick_free, &mut released);
        for (conn, release) in released {
            let Some(client) = self.conns.get_mut(&conn.slot).filter(|c| c.is_open()) else {
                self.held.forget(conn);
                continue;
            };
            client.registration_held = false;
            match release {
                Release::Retry(event) => self.publish(event),
                Release::Refuse(event) => self.tell_refused(&event),
            }
            self.requeue_input(conn.slot);
        }
        for watch in self.held.watched().filter(|w| w.cell != self.cell) {
            self.log.nudge(watch.cell, self.wake);
        }
    }

    /// Tells a client the 433 its registration was held back from.
    fn tell_refused(&mut self, event: &Event) {
        let Event::Register { conn, nick, protocol, .. } = event else { return };
        let change = Change::RegistrationRefused { conn: *conn, nick: nick.as_str(), protocol: *protocol };
        let mut deliveries = Deliveries::default();
        render(&self.state, &[change], |to| to == *conn, &mut deliveries);
        self.deliver(deliveries, Some(*conn));
    }
}
