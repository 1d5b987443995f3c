//! The event-loop worker both pool models run, one per thread (prethread) or
//! per process (prefork).
//!
//! A worker owns the connections it accepted (non-blocking sockets, a line
//! reader, a session and a bounded sendq each) and a replica of the chat
//! `State`. It never touches another worker's connections or a shared
//! directory: a client's events are appended to the ordered log, every
//! worker applies every logged event to its replica in log order, and each
//! writes the resulting deliveries to its own connections only.
//!
//! After appending a client's event the worker drains the log up to that
//! event before it handles anything else (read-your-writes), so `JOIN #a`
//! then `NAMES #a` sees the join, and a NICK claim's outcome is known before
//! the next line. Before handling any line it also applies everything
//! appended so far, so answers to queries never lag behind what another
//! client has already been shown (if bob saw his JOIN, alice's NAMES has him). The only difference between the two pools is how a sleeping
//! worker is woken, which the caller supplies: a `mio::Waker` or a signalfd
//! for SIGUSR1, registered in the worker's poll at [`WAKE`].
//!
//! Accepts are spread by the kernel: each worker has its own listening
//! socket bound to the same port with SO_REUSEPORT (see `listener`), so
//! there is no thundering herd on one socket and no worker can starve the
//! others of new clients.

use std::collections::HashMap;
use std::io::{self, ErrorKind, Read as _, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

use crate::chat::{Action, ConnId, Deliveries, Event, Session, State};
use crate::server::codec;
use crate::server::listener::{ACCEPT_BACKOFF, is_fd_exhaustion, server_full_line};
use crate::server::log::{self, CellStatus, Log, Wake};
use crate::server::outbox::CLOSE_GRACE;
use crate::server::sendq::{Flush, SendQueue};
use crate::server::{Config, unix_now};
use crate::wire::message::write_line;
use crate::wire::{Frame, LineReader};

pub const LISTENER: Token = Token(0);
/// Where the caller registers the worker's wake-up source.
pub const WAKE: Token = Token(1);
const FIRST_CONN: usize = 2;

/// Housekeeping period (pings, closing deadlines) while idle.
const TICK: Duration = Duration::from_millis(500);
/// Reads per connection per turn, so one flooding client cannot starve the
/// others; a connection with more to read is revisited next turn.
const READ_BUDGET: usize = 16;

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

struct Conn {
    stream: TcpStream,
    session: Session,
    reader: LineReader,
    sendq: SendQueue,
    /// Set once a closing line is queued: close when drained or by then.
    closing: Option<Instant>,
    last_heard: Instant,
    pinged: bool,
    dirty: bool,
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
    conns: HashMap<u32, Conn>,
    next_slot: u32,
    dirty: Vec<u32>,
    /// Connections whose sendq overflowed during delivery; dropped after.
    overflowed: Vec<u32>,
    /// Connections that used up their read budget with more to read.
    again: Vec<u32>,
    read_buf: Vec<u8>,
    encode_buf: Vec<u8>,
    /// Where socket reads land before their lines are cut out.
    scratch: Box<[u8]>,
    accept_paused_until: Option<Instant>,
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
    let mut worker = Worker {
        cell: setup.cell,
        generation: setup.generation,
        log,
        wake,
        config: setup.config,
        label: setup.label,
        state: setup.state,
        cursor: setup.start,
        poll,
        listener,
        conns: HashMap::new(),
        next_slot: 0,
        dirty: Vec::new(),
        overflowed: Vec::new(),
        again: Vec::new(),
        read_buf: Vec::new(),
        encode_buf: Vec::new(),
        scratch: vec![0; 64 * 1024].into_boxed_slice(),
        accept_paused_until: None,
    };
    let mut events = Events::with_capacity(1024);
    let mut last_tick = Instant::now();
    let mut shutdown = false;
    loop {
        worker.drain_log();
        worker.drop_overflowed();
        worker.flush_dirty();
        if shutdown {
            worker.close_all("Server shutting down");
            return Ok(Exit::Shutdown);
        }
        if log.status(worker.cell) != CellStatus::Live {
            worker.close_all("Server worker fell behind");
            return Ok(Exit::Evicted);
        }
        let idle = worker.again.is_empty() && log.prepare_sleep(worker.cell, worker.cursor);
        let timeout = match (idle, worker.accept_paused_until) {
            (false, _) => Duration::ZERO,
            (true, Some(_)) => ACCEPT_BACKOFF,
            (true, None) => TICK,
        };
        let polled = worker.poll.poll(&mut events, Some(timeout));
        log.awake(worker.cell);
        if let Err(e) = polled {
            if e.kind() == ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        let mut accept = false;
        for event in events.iter() {
            match event.token() {
                LISTENER => accept = true,
                WAKE => shutdown |= on_wake(),
                Token(t) => {
                    let slot = (t - FIRST_CONN) as u32;
                    if event.is_writable() {
                        worker.mark_dirty(slot);
                    }
                    if event.is_readable() || event.is_read_closed() || event.is_error() {
                        worker.read_ready(slot);
                    }
                }
            }
        }
        for slot in std::mem::take(&mut worker.again) {
            worker.read_ready(slot);
        }
        if worker.accept_paused_until.is_some_and(|t| Instant::now() >= t) {
            worker.accept_paused_until = None;
            accept = true;
        }
        if accept {
            worker.accept_all();
        }
        if last_tick.elapsed() >= TICK {
            last_tick = Instant::now();
            worker.housekeeping();
        }
    }
}

impl Worker<'_> {
    fn conn_id(&self, slot: u32) -> ConnId {
        ConnId { worker: self.cell as u16, slot, generation: self.generation }
    }

    // ---- the log ----

    /// Applies every published event this worker has not seen yet and
    /// queues the deliveries for its own connections.
    fn drain_log(&mut self) {
        let mut buf = std::mem::take(&mut self.read_buf);
        let start = self.cursor;
        loop {
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
            if d.to.worker as usize != self.cell || d.to.generation != self.generation {
                continue;
            }
            let Some(conn) = self.conns.get_mut(&d.to.slot) else { continue };
            if conn.closing.is_some() {
                continue;
            }
            match conn.sendq.push(d.bytes) {
                Ok(()) => {
                    if !conn.dirty {
                        conn.dirty = true;
                        self.dirty.push(d.to.slot);
                    }
                }
                Err(_) => self.overflowed.push(d.to.slot),
            }
        }
    }

    /// Appends a client's event and waits until this worker has applied it.
    fn publish(&mut self, event: &Event) {
        let mut record = std::mem::take(&mut self.encode_buf);
        record.clear();
        codec::encode(event, &mut record);
        let log = self.log;
        let wake = self.wake;
        let seq = log.append(self.cell, &record, wake, || self.drain_log());
        self.encode_buf = record;
        self.catch_up(seq + 1);
    }

    /// Applies the log up to (not including) sequence `until`.
    fn catch_up(&mut self, until: u64) {
        let mut spins = 0u32;
        while self.cursor < until {
            self.drain_log();
            if self.cursor < until {
                // An earlier sequence is still being written by another
                // worker (or repaired after one died): it will appear.
                spins += 1;
                if spins < 100 {
                    std::thread::yield_now();
                } else {
                    std::thread::sleep(Duration::from_micros(100));
                }
            }
        }
    }

    // ---- connections ----

    fn mark_dirty(&mut self, slot: u32) {
        if let Some(conn) = self.conns.get_mut(&slot)
            && !conn.dirty
        {
            conn.dirty = true;
            self.dirty.push(slot);
        }
    }

    fn reply(&mut self, slot: u32, bytes: Vec<u8>) {
        let Some(conn) = self.conns.get_mut(&slot) else { return };
        if conn.closing.is_some() {
            return;
        }
        if conn.sendq.push(bytes.into()).is_err() {
            self.overflowed.push(slot);
        } else {
            self.mark_dirty(slot);
        }
    }

    fn accept_all(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, addr)) => self.admit(stream, addr.ip().to_string()),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if is_fd_exhaustion(&e) => {
                    tracing::warn!("accept: {e}; retrying in {ACCEPT_BACKOFF:?}");
                    self.accept_paused_until = Some(Instant::now() + ACCEPT_BACKOFF);
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
        sendq.push_unbounded(session.greeting(Some(&self.label)).into());
        self.conns.insert(
            slot,
            Conn {
                stream,
                session,
                reader: LineReader::default(),
                sendq,
                closing: None,
                last_heard: Instant::now(),
                pinged: false,
                dirty: false,
            },
        );
        self.log.add_client(self.cell);
        self.mark_dirty(slot);
    }

    fn read_ready(&mut self, slot: u32) {
        for _ in 0..READ_BUDGET {
            let Some(conn) = self.conns.get_mut(&slot) else { return };
            if conn.closing.is_some() {
                return;
            }
            // Read into the worker's one scratch buffer; the connection's
            // reader keeps only an unfinished line, usually nothing.
            match conn.stream.read(&mut self.scratch) {
                Ok(0) => return self.drop_client(slot, "Connection closed", false),
                Ok(n) => {
                    conn.reader.push(&self.scratch[..n]);
                    conn.last_heard = Instant::now();
                    conn.pinged = false;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return self.drop_client(slot, &format!("Read error: {e}"), false),
            }
            while let Some(frame) = self.conns.get_mut(&slot).and_then(|c| c.reader.next_frame()) {
                self.handle_frame(slot, frame);
                if self.conns.get(&slot).is_none_or(|c| c.closing.is_some()) {
                    return;
                }
            }
        }
        self.again.push(slot);
    }

    fn handle_frame(&mut self, slot: u32, frame: Frame) {
        // Queries are answered from this worker's replica: bring it up to
        // everything appended before the line arrived, so a client never
        // sees less than what another client has already been told.
        self.catch_up(self.log.head());
        let Some(conn) = self.conns.get_mut(&slot) else { return };
        let mut actions = Vec::new();
        match frame {
            Frame::Line(line) => conn.session.on_line(&line, &self.state, unix_now(), &mut actions),
            Frame::TooLong => conn.session.on_too_long(&self.state, &mut actions),
        }
        for action in actions {
            match action {
                Action::Reply(bytes) => self.reply(slot, bytes),
                Action::Event(event) => self.publish(&event),
                Action::Close => {
                    if let Some(conn) = self.conns.get_mut(&slot) {
                        conn.closing = Some(Instant::now() + CLOSE_GRACE);
                    }
                    self.mark_dirty(slot);
                }
            }
            self.drop_overflowed();
        }
    }

    /// Drops the clients whose sendq overflowed: each gets its closing line
    /// (past the limit, in place of what it had not started to receive) and
    /// the others see it QUIT.
    fn drop_overflowed(&mut self) {
        while let Some(slot) = self.overflowed.pop() {
            if self.conns.get(&slot).is_some_and(|c| c.closing.is_none()) {
                tracing::info!(cell = self.cell, slot, "dropping client: sendq exceeded");
                self.drop_client(slot, "SendQ exceeded", true);
            }
        }
    }

    /// Ends a client: publishes its QUIT if it had registered, then either
    /// closes at once or, with `tell`, sends the closing line first.
    fn drop_client(&mut self, slot: u32, reason: &str, tell: bool) {
        let Some(conn) = self.conns.get_mut(&slot) else { return };
        let quit = conn.session.quit_event(&self.state, reason);
        if tell {
            let line = conn.session.closing_line(reason);
            conn.sendq.discard_unstarted();
            conn.sendq.push_unbounded(line.into());
            conn.closing = Some(Instant::now() + CLOSE_GRACE);
            self.mark_dirty(slot);
        } else {
            self.remove(slot);
        }
        if let Some(quit) = quit {
            self.publish(&quit);
        }
    }

    fn remove(&mut self, slot: u32) {
        if let Some(mut conn) = self.conns.remove(&slot) {
            let _ = self.poll.registry().deregister(&mut conn.stream);
            self.log.remove_client(self.cell);
        }
    }

    fn flush_dirty(&mut self) {
        while !self.dirty.is_empty() {
            for slot in std::mem::take(&mut self.dirty) {
                let Some(conn) = self.conns.get_mut(&slot) else { continue };
                conn.dirty = false;
                match conn.sendq.write_to(&mut conn.stream) {
                    Ok(Flush::Drained) => {
                        if conn.closing.is_some() {
                            // Already told and already QUIT (or never registered).
                            let quit = conn.session.quit_event(&self.state, "Closed");
                            self.remove(slot);
                            if let Some(quit) = quit {
                                self.publish(&quit);
                            }
                        }
                    }
                    Ok(Flush::Blocked) => {}
                    Err(_) => self.drop_client(slot, "Write error", false),
                }
            }
            self.drop_overflowed();
        }
    }

    /// Pings silent clients, drops those that never answered, and closes
    /// connections whose closing line could not be delivered in time.
    fn housekeeping(&mut self) {
        let now = Instant::now();
        let interval = self.config.ping_interval;
        let mut to_ping = Vec::new();
        let mut timed_out = Vec::new();
        let mut expired = Vec::new();
        for (slot, conn) in &self.conns {
            if let Some(deadline) = conn.closing {
                if now >= deadline {
                    expired.push(*slot);
                }
            } else if conn.pinged && now - conn.last_heard >= 2 * interval {
                timed_out.push(*slot);
            } else if !conn.pinged && now - conn.last_heard >= interval {
                to_ping.push(*slot);
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
        self.drop_overflowed();
        self.flush_dirty();
    }

    /// Sends every client its closing line and waits (bounded) for the lines
    /// to go out. Used at shutdown and on eviction; no QUITs are published,
    /// since either everyone is leaving or the keeper publishes them.
    fn close_all(&mut self, reason: &str) {
        for conn in self.conns.values_mut() {
            if conn.closing.is_none() {
                let line = conn.session.closing_line(reason);
                conn.sendq.discard_unstarted();
                conn.sendq.push_unbounded(line.into());
                conn.closing = Some(Instant::now() + CLOSE_GRACE);
            }
        }
        let deadline = Instant::now() + CLOSE_GRACE;
        let mut events = Events::with_capacity(256);
        loop {
            let before = self.conns.len();
            self.conns.retain(|_, conn| matches!(conn.sendq.write_to(&mut conn.stream), Ok(Flush::Blocked)));
            for _ in self.conns.len()..before {
                self.log.remove_client(self.cell);
            }
            if self.conns.is_empty() || Instant::now() >= deadline {
                break;
            }
            let _ = self.poll.poll(&mut events, Some(Duration::from_millis(50)));
        }
        for _ in self.conns.drain() {
            self.log.remove_client(self.cell);
        }
    }
}
