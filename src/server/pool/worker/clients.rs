//! A pool worker's connections: accepting them, handing their input to
//! their sessions in fair turns and at the pace flood control allows, and
//! ending them (drops, timeouts, shutdown). What a connection's input
//! means and when it is due something are its `Connection`'s decisions;
//! this is the event loop carrying them out.

use std::cmp::Reverse;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Token};
use socket2::SockRef;

use crate::chat::{Action, Session};
use crate::server::connection::slot::ClientSlot;
use crate::server::connection::{
    CLOSE_GRACE, Connection, DisconnectReason, Limits, LinePoll, Stage, TimeoutOutcome, Transmit, liveness,
};
use crate::server::listener::{ACCEPT_BACKOFF, AcceptStep};
use crate::server::reload::Rehash;
use crate::server::sendq::{Flush, SendQueue};
use crate::server::transport::stream::Stream;
use crate::server::transport::{Kind, Layers};
use crate::server::unix_now_ms;
use crate::wire::Frame;

use super::conn::{CellClients, Conn};
use super::{FIRST_CONN, LINES_PER_TURN, READ_CHUNK, Worker};

impl<'a> Worker<'a> {
    pub(super) fn socket_ready(&mut self, slot: u32, readable: bool, writable: bool) {
        let Some(conn) = self.conns.get_mut(&slot) else { return };
        if writable && !conn.dirty {
            conn.dirty = true;
            self.dirty.push(slot);
        }
        if !readable {
            return;
        }
        match conn.connection.stage() {
            Stage::Open => {
                conn.readable = true;
                if !conn.queued_for_input && !conn.input_parked && !conn.registration_held {
                    conn.queued_for_input = true;
                    self.input.push_back(slot);
                }
            }
            // Its input no longer matters; it is read once the line is out.
            Stage::Closing { .. } => {}
            Stage::Lingering { .. } | Stage::Done => {
                if conn.discard_input(&mut self.scratch) {
                    self.remove(slot);
                }
            }
        }
    }

    /// Handles input while it is admitted, giving each connection with
    /// input its turn.
    pub(super) fn handle_input(&mut self) {
        for _ in 0..self.input.len() {
            if !self.admitting() {
                return;
            }
            let Some(slot) = self.input.pop_front() else { return };
            let Some(conn) = self.conns.get_mut(&slot) else { continue };
            conn.queued_for_input = false;
            if !conn.is_open() {
                continue;
            }
            self.serve_lines(slot);
            self.requeue_input(slot);
        }
    }

    /// Handles up to [`LINES_PER_TURN`] of one connection's lines, reading
    /// as needed; stops early when input stops being admitted or this
    /// client is itself behind (it may not talk while it is not listening).
    pub(super) fn serve_lines(&mut self, slot: u32) {
        let mut handled = 0;
        while handled < LINES_PER_TURN {
            let Some(conn) = self.conns.get_mut(&slot) else { return };
            if !conn.is_open() || conn.registration_held {
                return;
            }
            if conn.flow.is_behind() {
                conn.input_parked = true;
                return;
            }
            if !conn.listings.is_empty() || self.resume_actions(slot) || !self.end_answer(slot) {
                return;
            }
            // In a cluster: its last line's proposals are not back yet.
            if !self.answered(slot) {
                return;
            }
            let Some(conn) = self.conns.get_mut(&slot) else { return };
            if !conn.is_open() || !conn.listings.is_empty() {
                return;
            }
            if conn.connection.waiting_until().is_some() {
                return self.read_while_waiting(slot);
            }
            if !conn.connection.has_line() {
                if !conn.readable {
                    return;
                }
                match conn.read_some(&mut self.scratch[..READ_CHUNK]) {
                    Ok(true) => continue,
                    Ok(false) => return,
                    Err(reason) => return self.drop_client(slot, reason),
                }
            }
            // Queries are answered from this replica: bring it up to
            // everything published before the line is handled, unless that
            // puts a reader behind (then the line waits).
            self.drain_log();
            if !self.admitting() {
                return;
            }
            let Some(conn) = self.conns.get_mut(&slot) else { return };
            match conn.connection.poll_line(self.now) {
                LinePoll::Empty => return,
                LinePoll::Line(frame) => self.handle_frame(slot, frame),
                LinePoll::WaitUntil(until) => {
                    self.flood_timers.push(Reverse((until, slot)));
                    return self.read_while_waiting(slot);
                }
                LinePoll::Drop(reason) => return self.drop_client(slot, reason),
            }
            // Its answer goes out now: a large one (NAMES of a big channel)
            // left queued would count it as behind and stop everyone's input.
            self.flush(slot);
            handled += 1;
            if !self.admitting() {
                return;
            }
        }
    }

    /// A client over its flood allowance: what it sends is still read, so
    /// that one sending far beyond it is noticed and dropped, but nothing
    /// is served until its timer (see `flood`). What it may have waiting
    /// is bounded by the receive queue plus one read.
    fn read_while_waiting(&mut self, slot: u32) {
        loop {
            let Some(conn) = self.conns.get_mut(&slot) else { return };
            if !conn.readable {
                return;
            }
            match conn.read_some(&mut self.scratch[..READ_CHUNK]) {
                Ok(true) => {}
                Ok(false) => return,
                Err(reason) => return self.drop_client(slot, reason),
            }
        }
    }

    /// Brings back the clients whose flood penalty has run out.
    pub(super) fn end_flood_waits(&mut self) {
        while let Some(&Reverse((at, slot))) = self.flood_timers.peek() {
            if at > self.now {
                break;
            }
            self.flood_timers.pop();
            let Some(conn) = self.conns.get_mut(&slot) else { continue };
            if conn.connection.waiting_until().is_some_and(|until| until <= self.now) {
                conn.connection.handle_timeout(self.now);
            }
            if conn.connection.waiting_until().is_none()
                && conn.is_open()
                && !conn.queued_for_input
                && !conn.input_parked
                && !conn.registration_held
            {
                conn.queued_for_input = true;
                self.input.push_back(slot);
            }
        }
    }

    /// Puts a connection back in turn for input, if it has some and
    /// nothing else holds it.
    pub(super) fn requeue_input(&mut self, slot: u32) {
        if let Some(conn) = self.conns.get_mut(&slot)
            && conn.is_open()
            && conn.has_input()
            && !conn.input_parked
            && !conn.queued_for_input
        {
            conn.queued_for_input = true;
            self.input.push_back(slot);
        }
    }

    pub(super) fn handle_frame(&mut self, slot: u32, frame: Frame) {
        let Some(conn) = self.conns.get_mut(&slot) else { return };
        let mut actions = Vec::new();
        conn.connection.handle_line(frame, &self.state, unix_now_ms(), &mut actions);
        if conn.connection.is_labeling() {
            self.labeling.push(slot);
        }
        self.run_actions(slot, actions.into());
        self.end_answer(slot);
    }

    /// Ends the labeled answer to a connection's last line once nothing
    /// of it can still come: its actions are done, its long replies sent,
    /// its events applied (what the directory sends it for them is in),
    /// and its registration not held back. True if it was ended (or there
    /// was none).
    pub(super) fn end_answer(&mut self, slot: u32) -> bool {
        let applied = self.outgoing.is_empty() && self.answered(slot);
        let Some(conn) = self.conns.get_mut(&slot) else { return true };
        if !conn.connection.is_labeling() {
            return true;
        }
        let answering =
            !conn.pending_actions.is_empty() || !conn.listings.is_empty() || conn.registration_held;
        if answering || !applied {
            return false;
        }
        if let Some(end) = conn.connection.end_response() {
            self.reply(slot, end);
        }
        true
    }

    /// Ends the labeled answers that are complete (see `end_answer`).
    pub(super) fn end_answers(&mut self) {
        let mut open = std::mem::take(&mut self.labeling);
        open.retain(|&slot| !self.end_answer(slot));
        self.labeling = open;
    }

    /// Queues bytes that answer a connection's line: labeled if the line
    /// was (see `Connection::label_response`).
    pub(super) fn answer(&mut self, slot: u32, bytes: Vec<u8>) {
        let Some(conn) = self.conns.get_mut(&slot) else { return };
        let bytes =
            if conn.connection.is_labeling() { conn.connection.label_response(&bytes) } else { bytes };
        if !bytes.is_empty() {
            self.reply(slot, bytes);
        }
    }

    /// Carries out a line's actions in order. A long reply (or an event
    /// not yet applied, whose effect may be one) holds the rest back until
    /// it is done, so a client's replies keep the order of its requests:
    /// `JOIN #a,#b` answers #a's NAMES before #b's JOIN.
    pub(super) fn run_actions(&mut self, slot: u32, mut actions: VecDeque<Action>) {
        while let Some(action) = actions.pop_front() {
            match action {
                Action::Reply(bytes) => self.answer(slot, bytes),
                Action::Event(event) => self.publish(event),
                Action::Listing(listing) => {
                    if let Some(conn) = self.conns.get_mut(&slot) {
                        conn.listings.push_back(listing);
                    }
                    self.mark_dirty(slot);
                }
                Action::Close => {
                    // Its answer (the closing line) is complete: nothing
                    // is sent after it.
                    if let Some(end) = self.conns.get_mut(&slot).and_then(|c| c.connection.end_response()) {
                        self.reply(slot, end);
                    }
                    if let Some(conn) = self.conns.get_mut(&slot) {
                        conn.connection.close_when_flushed(self.now);
                    }
                    self.mark_dirty(slot);
                }
                Action::Rehash => self.rehash(slot),
            }
            let applied = self.answered(slot);
            let Some(conn) = self.conns.get_mut(&slot) else { return };
            if !actions.is_empty() && (!conn.listings.is_empty() || !applied) {
                conn.pending_actions = actions;
                break;
            }
        }
        self.drop_overflowed();
    }

    /// An operator's REHASH: this worker reads the file, and every replica
    /// installs what it read from the log, this one included.
    fn rehash(&mut self, slot: u32) {
        let operator = self.conn_id(slot);
        let nick = self.state.user(operator).map(|u| u.nick.to_string()).unwrap_or_default();
        let rehash = Rehash::run(&self.config, &nick);
        for event in rehash.events(self.conn_worker) {
            self.publish(event);
        }
        let replies = rehash.replies(&self.state, operator);
        self.answer(slot, replies);
    }

    /// Carries on with a connection's held-back actions once nothing holds
    /// them (see [`run_actions`](Self::run_actions)); true if some remain.
    fn resume_actions(&mut self, slot: u32) -> bool {
        let applied = self.answered(slot);
        let Some(conn) = self.conns.get_mut(&slot) else { return false };
        if conn.pending_actions.is_empty() {
            return false;
        }
        if !conn.listings.is_empty() || !applied {
            return true;
        }
        let actions = std::mem::take(&mut conn.pending_actions);
        self.run_actions(slot, actions);
        self.conns.get(&slot).is_some_and(|c| !c.pending_actions.is_empty())
    }

    /// Accepts what every listening socket has (the poll is edge-triggered).
    pub(super) fn accept_all(&mut self) {
        for n in 0..self.listeners.len() {
            loop {
                let (kind, listener) = &self.listeners[n];
                let kind = *kind;
                match self.exhaustion.step(listener.accept(), self.now) {
                    AcceptStep::Accepted(stream, addr) => self.admit(stream, kind, addr.ip().to_string()),
                    AcceptStep::Again => continue,
                    AcceptStep::Drained => break,
                    AcceptStep::Pause => {
                        self.accept_paused_until = Some(self.now + ACCEPT_BACKOFF);
                        return;
                    }
                }
            }
        }
    }

    pub(super) fn admit(&mut self, mut stream: TcpStream, kind: Kind, host: String) {
        let _ = stream.set_nodelay(true);
        // The replica's settings: a reload changes them for later connections.
        let info = self.state.shared_info().clone();
        if !Arc::ptr_eq(&self.limits.info, &info) {
            self.limits = Arc::new(Limits::new(info.clone()));
        }
        // Plain clients are never PINGed: TCP finds their dead peers.
        let keepalive = liveness::keepalive(info.connections.ping_interval);
        let _ = SockRef::from(&stream).set_tcp_keepalive(&keepalive);
        let clients = CellClients { log: self.log, cell: self.cell };
        let Some(place) = ClientSlot::try_take(clients, info.connections.max_clients) else {
            // The refusal is a plain line: a client of another kind is
            // only closed.
            if kind == Kind::Plain {
                self.refusals.refuse(self.poll.registry(), stream, host, self.now);
            }
            return;
        };
        let certificate = self.certificate.as_mut().map(|c| c.under(&info));
        let layers = match Layers::new(kind, certificate) {
            Ok(layers) => layers,
            Err(e) => {
                tracing::warn!("cannot start a {kind} connection: {e}");
                return;
            }
        };
        let slot = self.next_slot;
        self.next_slot = self.next_slot.wrapping_add(1);
        let token = Token(slot as usize + FIRST_CONN);
        if let Err(e) =
            self.poll.registry().register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
        {
            tracing::warn!("cannot watch a new connection: {e}");
            return;
        }
        let stream = Stream::new(stream, layers);
        let session = Session::new(self.conn_id(slot), host, info);
        let connection = Connection::new(session, self.limits.clone(), Some(&self.label), self.now);
        let sendq = SendQueue::new(self.config.sendq_bytes);
        let mut conn = Conn::new(stream, connection, sendq, place);
        conn.queued_for_input = true;
        self.conns.insert(slot, conn);
        self.input.push_back(slot);
        self.transmit(slot);
    }

    /// Queues what the connection itself wants sent (greeting, PING, its
    /// closing line in place of what it had not started to receive).
    pub(super) fn transmit(&mut self, slot: u32) {
        loop {
            let Some(conn) = self.conns.get_mut(&slot) else { return };
            match conn.connection.poll_transmit() {
                None => break,
                Some(Transmit::Send(bytes)) => self.reply(slot, bytes),
                Some(Transmit::Close(line)) => {
                    conn.sendq.discard_unstarted();
                    conn.sendq.push_unbounded(line.into(), self.now_ms);
                }
            }
        }
        self.mark_dirty(slot);
    }

    /// Drops the clients whose sendq overflowed: each gets its closing line
    /// (past the limit, in place of what it had not started to receive) and
    /// the others see it QUIT.
    pub(super) fn drop_overflowed(&mut self) {
        while let Some(slot) = self.overflowed.pop() {
            if self.conns.get(&slot).is_some_and(Conn::is_open) {
                self.sendq_drops += 1;
                tracing::info!(cell = %self.cell, slot, "dropping client: sendq exceeded");
                self.drop_client(slot, DisconnectReason::SendQExceeded);
            }
        }
    }

    /// Ends a client: publishes its QUIT if it had registered, then closes
    /// at once or, for a reason it is told, sends the closing line first.
    pub(super) fn drop_client(&mut self, slot: u32, reason: DisconnectReason) {
        let Some(conn) = self.conns.get_mut(&slot) else { return };
        if !conn.is_open() {
            if !reason.tells_client() {
                self.remove(slot);
            }
            return;
        }
        if reason == DisconnectReason::ExcessFlood {
            self.flood_drops += 1;
            tracing::info!(cell = %self.cell, slot, "dropping client: excess flood");
        }
        let quit = conn.connection.quit_event(&self.state, &reason);
        let change = conn.flow.leave();
        self.flow.apply(change);
        conn.connection.close(reason, self.now);
        if conn.connection.is_done() {
            self.remove(slot);
        } else {
            self.transmit(slot);
        }
        if let Some(quit) = quit {
            self.publish(quit);
        }
    }

    pub(super) fn remove(&mut self, slot: u32) {
        if let Some(mut conn) = self.conns.remove(&slot) {
            let change = conn.flow.leave();
            self.flow.apply(change);
            // Unread input would make the close a reset.
            conn.discard_input(&mut self.scratch);
            let _ = self.poll.registry().deregister(conn.stream.socket_mut());
        }
    }

    /// Gives every connection its due (see `Connection::handle_timeout`):
    /// PINGs for the silent, drops for those that never answered or never
    /// registered, and the end of closing lines or lingering that ran out
    /// of time.
    pub(super) fn housekeeping(&mut self) {
        let now = self.now;
        let mut to_transmit = Vec::new();
        let mut to_drop = Vec::new();
        let mut expired = Vec::new();
        for (slot, conn) in &mut self.conns {
            // Registering moves its next deadline (a PING is due sooner
            // than the registration timeout).
            conn.connection.refresh_standing(&self.state);
            if conn.connection.poll_timeout().is_none_or(|at| at > now) {
                continue;
            }
            match conn.connection.handle_timeout(now) {
                TimeoutOutcome::Nothing if conn.connection.has_transmit() => to_transmit.push(*slot),
                TimeoutOutcome::Nothing => {}
                TimeoutOutcome::Drop(reason) => to_drop.push((*slot, reason)),
                TimeoutOutcome::Expired => expired.push(*slot),
            }
        }
        for slot in expired {
            self.remove(slot);
        }
        for (slot, reason) in to_drop {
            self.drop_client(slot, reason);
        }
        for slot in to_transmit {
            self.transmit(slot);
        }
        self.settle();
    }

    /// Sends every client its closing line and waits (bounded) for the lines
    /// to go out. Used at shutdown and on eviction; no QUITs are published,
    /// since either everyone is leaving or the keeper publishes them.
    pub(super) fn close_all(&mut self, reason: DisconnectReason) {
        let now = Instant::now();
        let slots: Vec<u32> = self.conns.keys().copied().collect();
        for slot in slots {
            if let Some(conn) = self.conns.get_mut(&slot)
                && conn.is_open()
            {
                conn.connection.close(reason.clone(), now);
                self.transmit(slot);
            }
        }
        let deadline = now + CLOSE_GRACE;
        let mut events = Events::with_capacity(256);
        loop {
            let scratch = &mut self.scratch;
            // A connection leaves the map when its line is out (or cannot
            // be): dropping it gives its place back.
            self.conns.retain(|_, conn| match conn.sendq.write_to(&mut conn.stream) {
                Ok(Flush::Blocked) => true,
                Ok(Flush::Drained) => {
                    conn.stream.close_layers();
                    let _ = conn.stream.socket().shutdown(std::net::Shutdown::Write);
                    conn.discard_input(scratch);
                    false
                }
                Err(_) => false,
            });
            if self.conns.is_empty() || Instant::now() >= deadline {
                break;
            }
            let _ = self.poll.poll(&mut events, Some(Duration::from_millis(50)));
        }
        self.conns.clear();
    }
}
