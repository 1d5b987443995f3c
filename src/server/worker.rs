//! The event-loop worker both pool models run, one per thread (prethread) or
//! per process (prefork).
//!
//! A worker owns the connections it accepted (see `conn`) and a replica of
//! the chat `State`. It never touches another worker's connections or a
//! shared directory: a client's events are appended to the ordered log,
//! every worker applies every logged event to its replica in log order,
//! and each writes the resulting deliveries to its own connections only.
//! How a sleeping worker is woken is the caller's (a `mio::Waker` or a
//! signalfd for SIGUSR1, registered in the worker's poll at [`WAKE`]).
//!
//! # One turn of the loop
//!
//! 1. Apply the log (unless holding, below), queueing deliveries.
//! 2. Append events still waiting for room in the ring.
//! 3. Handle client input, if admitted: round-robin over the connections
//!    with input, at most [`LINES_PER_TURN`] lines each, so one flooding
//!    client cannot starve the others. Before each line the replica is
//!    brought up to everything published (a client never sees less than
//!    another has already been shown); after each line its events are
//!    appended and applied (read-your-writes: `JOIN #a` then `NAMES #a`
//!    sees the join, a NICK claim's outcome is known before the next line).
//! 4. Write to sockets, drop clients that overflowed, account the flow.
//! 5. Poll: not at all if there is more to do, briefly while holding or
//!    waiting for room, else sleep until woken.
//!
//! # Flow control
//!
//! Input is admitted only while the worker is not *holding* (no connection
//! it waits for is behind, see `flow`), has no event waiting for room in
//! the ring, and has applied its own last event. So a burst stops being
//! read as soon as readers fall behind: unread lines stay in the kernel,
//! and TCP slows the senders. Across workers the pressure travels through
//! the log: a holding worker stops applying it, its cursor stops, the ring
//! fills, and every other worker finds no room for its next event and
//! stops reading its clients too. When the readers catch up (or the ones
//! that hold everyone up are cut loose), the holding worker applies the log
//! again, the ring empties, and reading resumes everywhere.
//!
//! Why this cannot deadlock: no worker ever waits inside the log or on
//! another worker. Appends that find the ring full are kept and retried;
//! waiting for our own event to be applied gives up after a bounded spin
//! and is retried next turn. The only thing a holding worker waits for is
//! its own sockets becoming writable, and every holder is released within
//! bounded time by the flow rule (patience, or `max_lag`) whether its
//! client reads or not. So the slowest cursor always moves again, and with
//! it every writer. A worker that stops running altogether (SIGSTOP) stops
//! beating its heartbeat and is evicted by the keeper.
//!
//! Accepts are spread by the kernel: each worker has its own listening
//! socket bound to the same port with SO_REUSEPORT (see `listener`).

use std::collections::VecDeque;

use rustc_hash::FxHashMap;
use std::io::{self, ErrorKind, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

use crate::chat::{Action, ConnId, Deliveries, Event, Session, State};
use crate::server::codec;
use crate::server::conn::{CLOSE_GRACE, Conn, Stage};
use crate::server::flow::{self, Census, Change, Policy, Receivers};
use crate::server::listener::{ACCEPT_BACKOFF, is_fd_exhaustion, server_full_line};
use crate::server::log::{self, CellStatus, Log, Wake};
use crate::server::sendq::{Flush, SendQueue};
use crate::server::{Config, unix_now};
use crate::wire::Frame;
use crate::wire::message::write_line;

pub const LISTENER: Token = Token(0);
/// Where the caller registers the worker's wake-up source.
pub const WAKE: Token = Token(1);
const FIRST_CONN: usize = 2;

/// Housekeeping period (pings, closing deadlines) and the longest sleep.
const TICK: Duration = Duration::from_millis(500);
/// Lines handled per connection per turn.
const LINES_PER_TURN: usize = 32;
/// Bytes read from a client at a time: what its line reader may hold
/// beyond one unfinished line. The rest waits in the kernel.
const READ_CHUNK: usize = 4096;
/// How often to look for room in a full ring.
const ROOM_POLL: Duration = Duration::from_millis(1);
/// Rounds to wait for our own event to be applied before going back to
/// the loop (an earlier sequence is being written by another worker, or
/// is a hole a stopped worker left that the keeper will fill).
const CATCH_UP_ROUNDS: u32 = 200;

/// Everything a worker starts from.
pub struct WorkerSetup {
    pub cell: usize,
    pub generation: u32,
    /// The log position `state` corresponds to.
    pub start: u64,
    /// A replica of the directory at `start`, rendering for this worker.
    pub state: State,
    pub listener: std::net::TcpListener,
    pub config: Arc<Config>,
    /// How this worker names itself in greetings, e.g. "worker 2, pid 123".
    pub label: String,
}

/// Why the worker loop returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Shutdown,
    Evicted,
}

/// The worker's side of flow control: counts kept from each connection's
/// changes of standing, and the list of connections to re-evaluate.
struct FlowBook {
    policy: Policy,
    /// Connections behind and waited for: while any, the worker holds.
    holders: usize,
    /// Connections behind, waited for or not.
    behind: usize,
    receivers: Receivers,
    /// Connections that became behind (some may have caught up since).
    behind_list: Vec<u32>,
    last_tick: Instant,
    published: Census,
}

impl FlowBook {
    fn apply(&mut self, change: Change) {
        self.holders = self.holders.saturating_add_signed(change.holds as isize);
        self.behind = self.behind.saturating_add_signed(change.behind as isize);
    }

    fn holding(&self) -> bool {
        self.holders > 0
    }
}

struct Worker<'a> {
    cell: usize,
    generation: u32,
    log: &'a Log,
    wake: &'a dyn Wake,
    config: Arc<Config>,
    label: String,
    state: State,
    cursor: u64,
    poll: Poll,
    listener: TcpListener,
    /// Keyed by slot, which the worker assigns: a fast hash is safe.
    conns: FxHashMap<u32, Conn>,
    next_slot: u32,
    /// Connections with bytes to write.
    dirty: Vec<u32>,
    /// Connections whose sendq overflowed; dropped after the current step.
    overflowed: Vec<u32>,
    /// Connections with input to handle, in turn order.
    input: VecDeque<u32>,
    /// Events waiting for room in the ring, in order.
    outgoing: VecDeque<Event>,
    /// One past the last sequence this worker appended: input waits until
    /// the replica has applied it.
    own_until: u64,
    flow: FlowBook,
    /// The time this turn, read once per turn.
    now: Instant,
    now_ms: u32,
    read_buf: Vec<u8>,
    encode_buf: Vec<u8>,
    /// Where socket reads land before their lines are cut out.
    scratch: Box<[u8]>,
    accept_paused_until: Option<Instant>,
    /// Clients dropped for falling a whole sendq behind.
    sendq_drops: u64,
}

/// Runs a worker until shutdown or eviction. `poll` must already have the
/// wake-up source registered at [`WAKE`]; `on_wake` is called for each event
/// on it and returns true when the worker must shut down.
pub fn run(
    setup: WorkerSetup,
    log: &Log,
    wake: &dyn Wake,
    poll: Poll,
    mut on_wake: impl FnMut() -> bool,
) -> io::Result<Exit> {
    let mut listener = TcpListener::from_std(setup.listener);
    poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
    let now = Instant::now();
    let mut worker = Worker {
        cell: setup.cell,
        generation: setup.generation,
        log,
        wake,
        flow: FlowBook {
            policy: Policy::for_sendq(setup.config.sendq_bytes),
            holders: 0,
            behind: 0,
            receivers: Receivers::default(),
            behind_list: Vec::new(),
            last_tick: now,
            published: Census::default(),
        },
        config: setup.config,
        label: setup.label,
        state: setup.state,
        cursor: setup.start,
        own_until: setup.start,
        poll,
        listener,
        conns: FxHashMap::default(),
        next_slot: 0,
        dirty: Vec::new(),
        overflowed: Vec::new(),
        input: VecDeque::new(),
        outgoing: VecDeque::new(),
        now,
        now_ms: flow::millis(),
        read_buf: Vec::new(),
        encode_buf: Vec::new(),
        scratch: vec![0; 16 * 1024].into_boxed_slice(),
        accept_paused_until: None,
        sendq_drops: 0,
    };
    let mut events = Events::with_capacity(1024);
    let mut last_housekeeping = now;
    let mut shutdown = false;
    loop {
        log.beat(worker.cell);
        worker.clock();
        worker.drain_log(u64::MAX, true);
        worker.append_outgoing();
        worker.handle_input();
        worker.settle();
        worker.flow_tick();
        worker.publish_census();
        if shutdown {
            worker.close_all("Server shutting down");
            tracing::info!(cell = worker.cell, sendq_drops = worker.sendq_drops, "worker stopped");
            return Ok(Exit::Shutdown);
        }
        if log.status(worker.cell) != CellStatus::Live {
            worker.close_all("Server worker fell behind");
            return Ok(Exit::Evicted);
        }
        let (timeout, sleeping) = worker.poll_timeout();
        let polled = worker.poll.poll(&mut events, Some(timeout));
        if sleeping {
            log.awake(worker.cell);
        }
        if let Err(e) = polled {
            if e.kind() == ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        worker.clock();
        let mut accept = false;
        for event in events.iter() {
            match event.token() {
                LISTENER => accept = true,
                WAKE => shutdown |= on_wake(),
                Token(t) => {
                    let readable = event.is_readable() || event.is_read_closed() || event.is_error();
                    worker.socket_ready((t - FIRST_CONN) as u32, readable, event.is_writable());
                }
            }
        }
        if worker.accept_paused_until.is_some_and(|t| worker.now >= t) {
            worker.accept_paused_until = None;
            accept = true;
        }
        if accept {
            worker.accept_all();
        }
        if worker.now.duration_since(last_housekeeping) >= TICK {
            last_housekeeping = worker.now;
            worker.housekeeping();
        }
    }
}

impl Worker<'_> {
    fn conn_id(&self, slot: u32) -> ConnId {
        ConnId { worker: self.cell as u16, slot, generation: self.generation }
    }

    fn clock(&mut self) {
        self.now = Instant::now();
        self.now_ms = flow::millis();
    }

    /// Input is handled only while nothing holds it back: see the module doc.
    fn admitting(&self) -> bool {
        !self.flow.holding() && self.outgoing.is_empty() && self.cursor >= self.own_until
    }

    fn poll_timeout(&self) -> (Duration, bool) {
        if self.flow.holding() {
            // Woken by writable sockets; the timeout re-evaluates patience.
            return (flow::TICK, false);
        }
        if !self.input.is_empty() && self.admitting() {
            return (Duration::ZERO, false);
        }
        if !self.outgoing.is_empty() || self.cursor < self.own_until {
            return (ROOM_POLL, false);
        }
        let timeout = if self.accept_paused_until.is_some() { ACCEPT_BACKOFF } else { TICK };
        if self.log.prepare_sleep(self.cell, self.cursor) { (timeout, true) } else { (Duration::ZERO, false) }
    }

    // ---- the log ----

    /// Applies published events this worker has not seen yet, below
    /// sequence `until`, and queues the deliveries for its own connections;
    /// with `stop_when_holding`, stops as soon as a connection it waits for
    /// falls behind.
    fn drain_log(&mut self, until: u64, stop_when_holding: bool) {
        let mut buf = std::mem::take(&mut self.read_buf);
        let start = self.cursor;
        while self.cursor < until && !(stop_when_holding && self.flow.holding()) {
            match self.log.read(self.cursor, &mut buf) {
                log::Read::NotYet => break,
                log::Read::Filler => self.cursor += 1,
                log::Read::Record => {
                    self.cursor += 1;
                    match codec::decode(&buf) {
                        Ok(event) => {
                            let deliveries = self.state.apply(&event);
                            self.deliver(deliveries);
                        }
                        Err(e) => tracing::error!(seq = self.cursor - 1, "undecodable log record: {e}"),
                    }
                }
            }
            if (self.cursor - start).is_multiple_of(64) {
                self.log.advance(self.cell, self.cursor);
            }
        }
        if self.cursor != start {
            self.log.advance(self.cell, self.cursor);
        }
        self.read_buf = buf;
    }

    fn deliver(&mut self, deliveries: Deliveries) {
        for d in deliveries.items {
            if d.to.worker as usize == self.cell && d.to.generation == self.generation {
                self.queue(d.to.slot, d.bytes, true);
            }
        }
    }

    /// Queues an event; appends what fits and applies it.
    fn publish(&mut self, event: Event) {
        self.outgoing.push_back(event);
        self.append_outgoing();
    }

    /// Appends waiting events while the ring has room, then waits (bounded)
    /// until the replica has applied them.
    fn append_outgoing(&mut self) {
        let mut record = std::mem::take(&mut self.encode_buf);
        while let Some(event) = self.outgoing.front() {
            record.clear();
            codec::encode(event, &mut record);
            match self.log.try_append(self.cell, &record, self.wake) {
                Some(seq) => {
                    self.own_until = seq + 1;
                    self.outgoing.pop_front();
                }
                None => break,
            }
        }
        self.encode_buf = record;
        self.catch_up();
    }

    /// Applies the log up to this worker's own last event, so that its
    /// client's next line sees its effect, unless a reader falls behind on
    /// the way (input is not admitted until then anyway). Waits a bounded
    /// while for earlier sequences other writers have claimed but not yet
    /// published; if they are still missing, the loop retries next turn.
    fn catch_up(&mut self) {
        let mut rounds = 0u32;
        while self.cursor < self.own_until && rounds < CATCH_UP_ROUNDS {
            self.drain_log(u64::MAX, true);
            if self.cursor >= self.own_until || self.flow.holding() {
                return;
            }
            rounds += 1;
            if rounds < 100 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
    }

    // ---- queues and flow ----

    /// Queues bytes for a connection; `broadcast` marks deliveries from the
    /// log (which make it a receiver in the flow census) as opposed to
    /// replies to its own commands.
    fn queue(&mut self, slot: u32, bytes: Arc<[u8]>, broadcast: bool) {
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

    fn reply(&mut self, slot: u32, bytes: Vec<u8>) {
        self.queue(slot, bytes.into(), false);
    }

    fn mark_dirty(&mut self, slot: u32) {
        if let Some(conn) = self.conns.get_mut(&slot)
            && !conn.dirty
        {
            conn.dirty = true;
            self.dirty.push(slot);
        }
    }

    /// Writes what the sockets take and drops whoever overflowed, until
    /// neither makes anything new to do.
    fn settle(&mut self) {
        self.drop_overflowed();
        self.flush_dirty();
    }

    fn flush_dirty(&mut self) {
        while !self.dirty.is_empty() {
            for slot in std::mem::take(&mut self.dirty) {
                self.flush(slot);
            }
            self.drop_overflowed();
        }
    }

    /// Writes what the socket takes of one connection's queue, if it has
    /// anything new (its dirty flag), and follows up on what that changes.
    fn flush(&mut self, slot: u32) {
        let Some(conn) = self.conns.get_mut(&slot) else { return };
        if !conn.dirty {
            return;
        }
        conn.dirty = false;
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
                if let Stage::Closing { .. } = conn.stage {
                    // Told, and its QUIT already out (or never registered).
                    let quit = conn.session.quit_event(&self.state, "Closed");
                    conn.linger(self.now);
                    // Gone as far as anyone can tell: its place is free.
                    self.log.remove_client(self.cell);
                    if conn.discard_input(&mut self.scratch) {
                        self.remove(slot);
                    }
                    if let Some(quit) = quit {
                        self.publish(quit);
                    }
                }
            }
            Ok(Flush::Blocked) => {}
            Err(_) => self.drop_client(slot, "Write error", false),
        }
    }

    /// Re-evaluates the connections that hold the flow (see `flow`): each
    /// spends patience, and those out of patience or too far behind are cut
    /// loose. Runs every `flow::TICK` while anything is behind.
    fn flow_tick(&mut self) {
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
                let lag = conn.sendq.oldest_stamp().map_or(Duration::ZERO, |s| flow::age(s, self.now_ms));
                let change = conn.flow.held(elapsed, lag, census, &self.flow.policy);
                if change.holds < 0 {
                    tracing::info!(
                        cell = self.cell,
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
    fn publish_census(&mut self) {
        let census = Census { behind: self.flow.behind, receivers: self.flow.receivers.count(self.now_ms) };
        if census != self.flow.published {
            self.log.set_census(self.cell, census);
            self.flow.published = census;
        }
    }

    // ---- connections ----

    fn socket_ready(&mut self, slot: u32, readable: bool, writable: bool) {
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
    fn handle_input(&mut self) {
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
    fn serve_lines(&mut self, slot: u32) {
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
            if conn.reader.has_frames() {
                // Queries are answered from this replica: bring it up to
                // everything published before the line is handled, unless
                // that puts a reader behind (then the line waits).
                self.drain_log(u64::MAX, true);
                if !self.admitting() {
                    return;
                }
            }
            let Some(conn) = self.conns.get_mut(&slot) else { return };
            let frame = match conn.reader.next_frame() {
                Some(frame) => frame,
                None if !conn.readable => return,
                None => match conn.read_some(&mut self.scratch[..READ_CHUNK], self.now) {
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

    fn handle_frame(&mut self, slot: u32, frame: Frame) {
        let Some(conn) = self.conns.get_mut(&slot) else { return };
        let mut actions = Vec::new();
        match frame {
            Frame::Line(line) => conn.session.on_line(&line, &self.state, unix_now(), &mut actions),
            Frame::TooLong => conn.session.on_too_long(&self.state, &mut actions),
        }
        for action in actions {
            match action {
                Action::Reply(bytes) => self.reply(slot, bytes),
                Action::Event(event) => self.publish(event),
                Action::Close => {
                    if let Some(conn) = self.conns.get_mut(&slot) {
                        conn.close_when_flushed(self.now);
                    }
                    self.mark_dirty(slot);
                }
            }
        }
        self.drop_overflowed();
    }

    fn accept_all(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, addr)) => self.admit(stream, addr.ip().to_string()),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if is_fd_exhaustion(&e) => {
                    tracing::warn!("accept: {e}; retrying in {ACCEPT_BACKOFF:?}");
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

    fn admit(&mut self, mut stream: TcpStream, host: String) {
        let _ = stream.set_nodelay(true);
        if self.log.total_clients() as usize >= self.config.max_clients {
            let _ = stream.write(&server_full_line());
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
    fn drop_overflowed(&mut self) {
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
    fn drop_client(&mut self, slot: u32, reason: &str, tell: bool) {
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

    fn remove(&mut self, slot: u32) {
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

    /// Pings silent clients, drops those that never answered, and closes
    /// connections whose closing line or lingering ran out of time.
    fn housekeeping(&mut self) {
        let now = self.now;
        let interval = self.config.ping_interval;
        let mut to_ping = Vec::new();
        let mut timed_out = Vec::new();
        let mut expired = Vec::new();
        for (slot, conn) in &self.conns {
            match conn.stage {
                Stage::Closing { by } | Stage::Lingering { by } if now >= by => expired.push(*slot),
                Stage::Closing { .. } | Stage::Lingering { .. } => {}
                Stage::Open if conn.pinged && now - conn.last_heard >= 2 * interval => timed_out.push(*slot),
                Stage::Open if !conn.pinged && now - conn.last_heard >= interval => to_ping.push(*slot),
                Stage::Open => {}
            }
        }
        for slot in expired {
            self.remove(slot);
        }
        let reason = format!("Ping timeout: {} seconds", 2 * interval.as_secs());
        for slot in timed_out {
            self.drop_client(slot, &reason, true);
        }
        let mut ping = Vec::new();
        write_line(&mut ping, None, "PING", &[], Some(&self.config.info.name));
        for slot in to_ping {
            if let Some(conn) = self.conns.get_mut(&slot) {
                conn.pinged = true;
            }
            self.reply(slot, ping.clone());
        }
        self.settle();
    }

    /// Sends every client its closing line and waits (bounded) for the lines
    /// to go out. Used at shutdown and on eviction; no QUITs are published,
    /// since either everyone is leaving or the keeper publishes them.
    fn close_all(&mut self, reason: &str) {
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
