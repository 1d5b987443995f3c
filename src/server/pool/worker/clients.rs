//! A pool worker's connections: accepting them, handing their input to
//! their sessions in fair turns and at the pace flood control allows, and
//! ending them (drops, timeouts, shutdown).

use std::cmp::Reverse;
use std::collections::VecDeque;
use std::io::ErrorKind;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Token};
use socket2::SockRef;

use super::conn::{Conn, Stage};
use crate::chat::{Action, Session};
use crate::server::connection::CLOSE_GRACE;
use crate::server::connection::flood::Penalty;
use crate::server::connection::liveness::{self, Due, standing};
use crate::server::listener::{ACCEPT_BACKOFF, is_fd_exhaustion};
use crate::server::sendq::{Flush, SendQueue};
use crate::server::unix_now;
use crate::wire::Frame;
use crate::wire::message::write_line;

use super::{FIRST_CONN, LINES_PER_TURN, READ_CHUNK, Worker};

impl Worker<'_> {
    pub(super) fn socket_ready(&mut self, slot: u32, readable: bool, writable: bool) {
        let Some(conn) = self.conns.get_mut(&slot) else { return };
        if writable && !conn.dirty {
            conn.dirty = true;
            self.dirty.push(slot);
        }
        if !readable {
            return;
        }
        match conn.stage {
            Stage::Open => {
                conn.readable = true;
                if !conn.queued_for_input && !conn.input_parked {
                    conn.queued_for_input = true;
                    self.input.push_back(slot);
                }
            }
            // Its input no longer matters; it is read once the line is out.
            Stage::Closing { .. } => {}
            Stage::Lingering { .. } => {
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
    }

    /// Handles up to [`LINES_PER_TURN`] of one connection's lines, reading
    /// as needed; stops early when input stops being admitted or this
    /// client is itself behind (it may not talk while it is not listening).
    pub(super) fn serve_lines(&mut self, slot: u32) {
        let mut handled = 0;
        while handled < LINES_PER_TURN {
            let Some(conn) = self.conns.get_mut(&slot) else { return };
            if !conn.is_open() {
                return;
            }
            if conn.flow.is_behind() {
                conn.input_parked = true;
                return;
            }
            if !conn.listings.is_empty() || self.resume_actions(slot) {
                return;
            }
            let Some(conn) = self.conns.get_mut(&slot) else { return };
            if !conn.is_open() || !conn.listings.is_empty() {
                return;
            }
            if conn.waiting_until.is_some() {
                return self.read_while_waiting(slot);
            }
            if conn.reader.has_frames() {
                // Queries are answered from this replica: bring it up to
                // everything published before the line is handled, unless
                // that puts a reader behind (then the line waits).
                self.drain_log();
                if !self.admitting() {
                    return;
                }
                let Some(conn) = self.conns.get_mut(&slot) else { return };
                if let Err(until) = conn.penalty.admit(self.now, self.config.flood.as_ref()) {
                    conn.waiting_until = Some(until);
                    self.flood_timers.push(Reverse((until, slot)));
                    return self.read_while_waiting(slot);
                }
            }
            let Some(conn) = self.conns.get_mut(&slot) else { return };
            let frame = match conn.reader.next_frame() {
                Some(frame) => frame,
                None if !conn.readable => return,
                None => match conn.read_some(&mut self.scratch[..READ_CHUNK]) {
                    Ok(0) => return self.drop_client(slot, "Connection closed", false),
                    Ok(_) => continue,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                    Err(e) => return self.drop_client(slot, &format!("Read error: {e}"), false),
                },
            };
            self.handle_frame(slot, frame);
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
            if Penalty::is_excess(conn.reader.held(), self.config.flood.as_ref()) {
                self.flood_drops += 1;
                tracing::info!(cell = self.cell, slot, "dropping client: excess flood");
                return self.drop_client(slot, "Excess Flood", true);
            }
            if !conn.readable {
                return;
            }
            match conn.read_some(&mut self.scratch[..READ_CHUNK]) {
                Ok(0) => return self.drop_client(slot, "Connection closed", false),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) => return self.drop_client(slot, &format!("Read error: {e}"), false),
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
            if conn.waiting_until.is_some_and(|until| until <= self.now) {
                conn.waiting_until = None;
                if conn.is_open() && !conn.queued_for_input && !conn.input_parked {
                    conn.queued_for_input = true;
                    self.input.push_back(slot);
                }
            }
        }
    }

    pub(super) fn handle_frame(&mut self, slot: u32, frame: Frame) {
        let Some(conn) = self.conns.get_mut(&slot) else { return };
        conn.liveness.heard(self.now);
        let mut actions = Vec::new();
        match frame {
            Frame::Line(line) => conn.session.on_line(&line, &self.state, unix_now(), &mut actions),
            Frame::TooLong => conn.session.on_too_long(&self.state, &mut actions),
        }
        self.run_actions(slot, actions.into());
    }

    /// Carries out a line's actions in order. A long reply (or an event
    /// not yet applied, whose effect may be one) holds the rest back until
    /// it is done, so a client's replies keep the order of its requests:
    /// `JOIN #a,#b` answers #a's NAMES before #b's JOIN.
    pub(super) fn run_actions(&mut self, slot: u32, mut actions: VecDeque<Action>) {
        while let Some(action) = actions.pop_front() {
            match action {
                Action::Reply(bytes) => self.reply(slot, bytes),
                Action::Event(event) => self.publish(event),
                Action::Listing(listing) => {
                    if let Some(conn) = self.conns.get_mut(&slot) {
                        conn.listings.push_back(listing);
                    }
                    self.mark_dirty(slot);
                }
                Action::Close => {
                    if let Some(conn) = self.conns.get_mut(&slot) {
                        conn.close_when_flushed(self.now);
                    }
                    self.mark_dirty(slot);
                }
            }
            let applied = self.cursor >= self.own_until;
            let Some(conn) = self.conns.get_mut(&slot) else { return };
            if !actions.is_empty() && (!conn.listings.is_empty() || !applied) {
                conn.pending_actions = actions;
                break;
            }
        }
        self.drop_overflowed();
    }

    /// Carries on with a connection's held-back actions once nothing holds
    /// them (see [`run_actions`](Self::run_actions)); true if some remain.
    fn resume_actions(&mut self, slot: u32) -> bool {
        let Some(conn) = self.conns.get_mut(&slot) else { return false };
        if conn.pending_actions.is_empty() {
            return false;
        }
        if !conn.listings.is_empty() || self.cursor < self.own_until {
            return true;
        }
        let actions = std::mem::take(&mut conn.pending_actions);
        self.run_actions(slot, actions);
        self.conns.get(&slot).is_some_and(|c| !c.pending_actions.is_empty())
    }

    pub(super) fn accept_all(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, addr)) => self.admit(stream, addr.ip().to_string()),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if is_fd_exhaustion(&e) => {
                    self.exhaustion.note(&e, self.now);
                    self.accept_paused_until = Some(self.now + ACCEPT_BACKOFF);
                    break;
                }
                Err(e) => {
                    tracing::warn!("accept: {e}");
                    break;
                }
            }
        }
    }

    pub(super) fn admit(&mut self, mut stream: TcpStream, host: String) {
        let _ = stream.set_nodelay(true);
        // Plain clients are never PINGed: TCP finds their dead peers.
        let _ = SockRef::from(&stream).set_tcp_keepalive(&liveness::keepalive(self.config.ping_interval));
        if self.log.total_clients() as usize >= self.config.max_clients {
            self.refusals.refuse(self.poll.registry(), stream, host, self.now);
            return;
        }
        let slot = self.next_slot;
        self.next_slot = self.next_slot.wrapping_add(1);
        let token = Token(slot as usize + FIRST_CONN);
        if let Err(e) =
            self.poll.registry().register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
        {
            tracing::warn!("cannot watch a new connection: {e}");
            return;
        }
        let session = Session::new(self.conn_id(slot), host, self.config.info.clone());
        let mut sendq = SendQueue::new(self.config.sendq_bytes);
        sendq.push_unbounded(session.greeting(Some(&self.label)).into(), self.now_ms);
        let mut conn = Conn::new(stream, session, sendq, self.now);
        conn.queued_for_input = true;
        self.conns.insert(slot, conn);
        self.input.push_back(slot);
        self.log.add_client(self.cell);
        self.mark_dirty(slot);
    }

    /// Drops the clients whose sendq overflowed: each gets its closing line
    /// (past the limit, in place of what it had not started to receive) and
    /// the others see it QUIT.
    pub(super) fn drop_overflowed(&mut self) {
        while let Some(slot) = self.overflowed.pop() {
            if self.conns.get(&slot).is_some_and(Conn::is_open) {
                self.sendq_drops += 1;
                tracing::info!(cell = self.cell, slot, "dropping client: sendq exceeded");
                self.drop_client(slot, "SendQ exceeded", true);
            }
        }
    }

    /// Ends a client: publishes its QUIT if it had registered, then either
    /// closes at once or, with `tell`, sends the closing line first.
    pub(super) fn drop_client(&mut self, slot: u32, reason: &str, tell: bool) {
        let Some(conn) = self.conns.get_mut(&slot) else { return };
        if !conn.is_open() {
            if !tell {
                self.remove(slot);
            }
            return;
        }
        let quit = conn.session.quit_event(&self.state, reason);
        let change = conn.flow.leave();
        self.flow.apply(change);
        if tell {
            let line = conn.session.closing_line(reason);
            conn.begin_close(line, self.now);
            self.mark_dirty(slot);
        } else {
            self.remove(slot);
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
            let _ = self.poll.registry().deregister(&mut conn.stream);
            if conn.counts_as_client() {
                self.log.remove_client(self.cell);
            }
        }
    }

    /// Pings silent clients, drops those that never answered or never
    /// registered (see `liveness`), and closes connections whose closing
    /// line or lingering ran out of time.
    pub(super) fn housekeeping(&mut self) {
        let now = self.now;
        let timeouts = self.config.timeouts();
        let mut to_ping = Vec::new();
        let mut to_drop = Vec::new();
        let mut expired = Vec::new();
        for (slot, conn) in &mut self.conns {
            match conn.stage {
                Stage::Closing { by } | Stage::Lingering { by } if now >= by => expired.push(*slot),
                Stage::Closing { .. } | Stage::Lingering { .. } => {}
                Stage::Open => {
                    match conn.liveness.check(now, standing(&conn.session, &self.state), &timeouts) {
                        Due::Nothing => {}
                        Due::Ping => to_ping.push(*slot),
                        Due::Close(reason) => to_drop.push((*slot, reason)),
                    }
                }
            }
        }
        for slot in expired {
            self.remove(slot);
        }
        for (slot, reason) in to_drop {
            self.drop_client(slot, &reason, true);
        }
        let mut ping = Vec::new();
        write_line(&mut ping, None, "PING", &[], Some(&self.config.info.name));
        for slot in to_ping {
            self.reply(slot, ping.clone());
        }
        self.settle();
    }

    /// Sends every client its closing line and waits (bounded) for the lines
    /// to go out. Used at shutdown and on eviction; no QUITs are published,
    /// since either everyone is leaving or the keeper publishes them.
    pub(super) fn close_all(&mut self, reason: &str) {
        let now = Instant::now();
        for conn in self.conns.values_mut() {
            if conn.is_open() {
                let line = conn.session.closing_line(reason);
                conn.begin_close(line, now);
            }
        }
        let deadline = now + CLOSE_GRACE;
        let mut events = Events::with_capacity(256);
        loop {
            let (scratch, log, cell) = (&mut self.scratch, self.log, self.cell);
            self.conns.retain(|_, conn| {
                let done = match conn.sendq.write_to(&mut conn.stream) {
                    Ok(Flush::Blocked) => false,
                    Ok(Flush::Drained) => {
                        let _ = conn.stream.shutdown(std::net::Shutdown::Write);
                        conn.discard_input(scratch);
                        true
                    }
                    Err(_) => true,
                };
                if done && conn.counts_as_client() {
                    log.remove_client(cell);
                }
                !done
            });
            if self.conns.is_empty() || Instant::now() >= deadline {
                break;
            }
            let _ = self.poll.poll(&mut events, Some(Duration::from_millis(50)));
        }
        for (_, conn) in self.conns.drain() {
            if conn.counts_as_client() {
                self.log.remove_client(self.cell);
            }
        }
    }
}
