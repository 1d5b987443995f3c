//! A pool worker's outbound side: queueing bytes for its connections,
//! writing them as the sockets allow, and the flow-control book-keeping
//! that follows every change of a queue's length (see `flow`).

use std::sync::Arc;
use std::time::Instant;

use crate::server::connection::DisconnectReason;
use crate::server::flow::{self, Census, Change, Policy, Receivers};
use crate::server::sendq::Flush;

use super::Worker;

/// The worker's side of flow control: counts kept from each connection's
/// changes of standing, and the list of connections to re-evaluate.
pub(super) struct FlowBook {
    pub(super) policy: Policy,
    /// Connections behind and waited for: while any, the worker holds.
    pub(super) holders: usize,
    /// Connections behind, waited for or not.
    pub(super) behind: usize,
    pub(super) receivers: Receivers,
    /// Connections that became behind (some may have caught up since).
    pub(super) behind_list: Vec<u32>,
    pub(super) last_tick: Instant,
    pub(super) published: Census,
}

impl FlowBook {
    pub(super) fn apply(&mut self, change: Change) {
        self.holders = self.holders.saturating_add_signed(change.holds as isize);
        self.behind = self.behind.saturating_add_signed(change.behind as isize);
    }

    pub(super) fn holding(&self) -> bool {
        self.holders > 0
    }
}

impl Worker<'_> {
    /// Queues bytes for a connection; `broadcast` marks deliveries from the
    /// log (which make it a receiver in the flow census) as opposed to
    /// replies to its own commands.
    pub(super) fn queue(&mut self, slot: u32, bytes: Arc<[u8]>, broadcast: bool) {
        let Some(conn) = self.conns.get_mut(&slot) else { return };
        if !conn.is_open() {
            return;
        }
        if conn.sendq.push(bytes, self.now_ms).is_err() {
            self.overflowed.push(slot);
            return;
        }
        if broadcast {
            self.flow.receivers.note(self.now_ms, &mut conn.receiver_window);
        }
        let change = conn.flow.queued(conn.sendq.queued(), &self.flow.policy, self.now);
        if !change.is_none() {
            self.flow.apply(change);
            if change.behind > 0 && !conn.listed_behind {
                conn.listed_behind = true;
                self.flow.behind_list.push(slot);
            }
        }
        if !conn.dirty {
            conn.dirty = true;
            self.dirty.push(slot);
        }
    }

    pub(super) fn reply(&mut self, slot: u32, bytes: Vec<u8>) {
        self.queue(slot, bytes.into(), false);
    }

    pub(super) fn mark_dirty(&mut self, slot: u32) {
        if let Some(conn) = self.conns.get_mut(&slot)
            && !conn.dirty
        {
            conn.dirty = true;
            self.dirty.push(slot);
        }
    }

    /// Writes what the sockets take and drops whoever overflowed, until
    /// neither makes anything new to do.
    pub(super) fn settle(&mut self) {
        self.drop_overflowed();
        self.flush_dirty();
    }

    pub(super) fn flush_dirty(&mut self) {
        while !self.dirty.is_empty() {
            for slot in std::mem::take(&mut self.dirty) {
                self.flush(slot);
            }
            self.drop_overflowed();
        }
    }

    /// Writes what the socket takes of one connection's queue, if it has
    /// anything new (its dirty flag), and follows up on what that changes.
    pub(super) fn flush(&mut self, slot: u32) {
        let Some(conn) = self.conns.get_mut(&slot) else { return };
        if !conn.dirty {
            return;
        }
        conn.dirty = false;
        let listing = !conn.listings.is_empty();
        let written = conn.sendq.write_to(&mut conn.stream);
        if conn.is_open() {
            let change = conn.flow.queued(conn.sendq.queued(), &self.flow.policy, self.now);
            self.flow.apply(change);
            if change.behind < 0 && conn.input_parked {
                conn.input_parked = false;
                if conn.has_input() && !conn.queued_for_input {
                    conn.queued_for_input = true;
                    self.input.push_back(slot);
                }
            }
        }
        match written {
            Ok(Flush::Drained) => {
                if conn.flushed(self.now) {
                    // Told, and its QUIT already out (or never registered).
                    let quit = conn.connection.quit_event(&self.state, &DisconnectReason::Closed);
                    if conn.discard_input(&mut self.scratch) {
                        self.remove(slot);
                    }
                    if let Some(quit) = quit {
                        self.publish(quit);
                    }
                }
            }
            Ok(Flush::Blocked) => {}
            Err(_) => return self.drop_client(slot, DisconnectReason::WriteError),
        }
        if listing {
            self.continue_listing(slot);
        }
    }

    /// Queues the next pieces of a connection's long replies while its
    /// queue is at most the caught-up mark, each no bigger than keeps it
    /// under the behind mark: the asker gets the whole reply, and is never
    /// behind (let alone dropped) for it. When the last is done, its
    /// input is read again.
    fn continue_listing(&mut self, slot: u32) {
        loop {
            let Some(conn) = self.conns.get_mut(&slot) else { return };
            if !conn.is_open() {
                return;
            }
            let queued = conn.sendq.queued();
            let Some(listing) = conn.listings.front_mut() else { break };
            if queued > self.flow.policy.caught_up_at {
                return;
            }
            let mut piece = Vec::new();
            let room = self.flow.policy.behind_at.saturating_sub(queued);
            if listing.write_next(&self.state, conn.connection.session().conn(), &mut piece, room) {
                conn.listings.pop_front();
            }
            // A long reply is always part of the answer to a line.
            if !piece.is_empty() {
                self.answer(slot, piece);
            }
        }
        self.requeue_input(slot);
    }

    /// Re-evaluates the connections that hold the flow (see `flow`): each
    /// spends patience, and those out of patience or too far behind are cut
    /// loose. Runs every `flow::TICK` while anything is behind.
    pub(super) fn flow_tick(&mut self) {
        let elapsed = self.now.saturating_duration_since(self.flow.last_tick);
        if self.flow.behind_list.is_empty() {
            self.flow.last_tick = self.now;
            return;
        }
        if elapsed < flow::TICK {
            return;
        }
        self.flow.last_tick = self.now;
        let elapsed = elapsed.min(4 * flow::TICK);
        self.publish_census();
        let census = self.log.census();
        let mut list = std::mem::take(&mut self.flow.behind_list);
        list.retain(|slot| {
            let Some(conn) = self.conns.get_mut(slot) else { return false };
            if !conn.is_open() || !conn.flow.is_behind() {
                conn.listed_behind = false;
                return false;
            }
            if conn.flow.holds() {
                let lag = conn.sendq.lag(self.now_ms);
                let change = conn.flow.held(elapsed, lag, census, &self.flow.policy);
                if change.holds < 0 {
                    tracing::info!(
                        cell = %self.cell,
                        slot,
                        ?lag,
                        ?census,
                        "no longer waiting for a slow reader"
                    );
                    self.flow.apply(change);
                }
            }
            true
        });
        self.flow.behind_list = list;
    }

    /// Shares this worker's part of the census with the others.
    pub(super) fn publish_census(&mut self) {
        let census = Census { behind: self.flow.behind, receivers: self.flow.receivers.count(self.now_ms) };
        if census != self.flow.published {
            self.log.set_census(self.cell, census);
            self.flow.published = census;
        }
    }
}
