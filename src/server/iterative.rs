//! The iterative model: the classic thread-per-client server.
//!
//! The main thread runs the accept loop (and listens for SIGINT/SIGTERM in
//! the same poll). Every accepted client gets its own thread, which blocks in
//! `recv`, turns lines into session actions and applies events to the one
//! directory, a `State` behind a `Mutex` together with the outboxes of all
//! connections. Deliveries are queued while the lock is held, so every
//! recipient gets lines in the order events were applied; the socket writes
//! happen after the lock is released (see `outbox` for how and why).
//!
//! A client thread's read has a timeout of the ping interval: on the first
//! timeout the client is PINGed, on the second it is dropped.
//!
//! Flow control: before each line a client thread waits at the `FlowGate`
//! (see `outbox`) while some reader the server waits for is behind, or
//! while its own client is. The lines it has not read stay in the kernel,
//! so TCP slows the sender; the wait holds no lock, and every holder is
//! released within bounded time by the flow rule, so it cannot deadlock.

use std::collections::HashMap;
use std::io::{self, ErrorKind};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;

use crate::chat::reply::closing_link;
use crate::chat::{Action, ConnId, Event, Session, State};
use crate::server::conn::CLOSE_GRACE;
use crate::server::flow::{self, Policy, Receivers};
use crate::server::listener::{ACCEPT_BACKOFF, is_fd_exhaustion, server_full_line};
use crate::server::outbox::{Enqueued, FlowGate, Flusher, Outbox};
use crate::server::{Config, unix_now};
use crate::wire::message::write_line;
use crate::wire::{Frame, LineReader};

/// Client threads need little stack: buffers live on the heap.
const CLIENT_STACK_BYTES: usize = 256 * 1024;

/// The directory and everyone's outbox, under one lock.
struct Hub {
    state: State,
    outboxes: HashMap<ConnId, Arc<Outbox>>,
    receivers: Receivers,
}

struct Shared {
    config: Config,
    hub: Mutex<Hub>,
    gate: Arc<FlowGate>,
    flusher: Flusher,
    clients: AtomicUsize,
    sendq_drops: AtomicU64,
}

impl Shared {
    fn hub(&self) -> MutexGuard<'_, Hub> {
        self.hub.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Outboxes with bytes queued since their last flush.
#[derive(Default)]
struct ToFlush(Vec<Arc<Outbox>>);

impl ToFlush {
    fn add(&mut self, outbox: &Arc<Outbox>) {
        if outbox.mark_listed() {
            self.0.push(outbox.clone());
        }
    }

    fn flush(&mut self, flusher: &Flusher) {
        for outbox in self.0.drain(..) {
            outbox.flush(flusher);
        }
    }
}

/// The moment deliveries are queued at, read once per event.
#[derive(Clone, Copy)]
struct Stamp {
    ms: u32,
    now: Instant,
}

impl Stamp {
    fn now() -> Stamp {
        Stamp { ms: flow::millis(), now: Instant::now() }
    }
}

impl Hub {
    /// Queues bytes for `to`; `broadcast` marks deliveries of an event (which
    /// make `to` a receiver in the flow census), not replies.
    fn send(
        &mut self,
        to: ConnId,
        bytes: Arc<[u8]>,
        at: Stamp,
        broadcast: bool,
        flush: &mut ToFlush,
        overflowed: &mut Vec<ConnId>,
    ) {
        let Some(outbox) = self.outboxes.get(&to) else {
            return;
        };
        match outbox.enqueue(bytes, at.ms, at.now) {
            Enqueued::Queued => {
                if broadcast {
                    let mut window = outbox.receiver_window.load(Ordering::Relaxed);
                    self.receivers.note(at.ms, &mut window);
                    outbox.receiver_window.store(window, Ordering::Relaxed);
                }
                flush.add(outbox)
            }
            Enqueued::Overflow => overflowed.push(to),
            Enqueued::Closed => {}
        }
    }

    /// The last line a connection gets before the server drops it.
    fn closing_line(&self, conn: ConnId, reason: &str) -> Vec<u8> {
        let user = self.state.user(conn);
        let mut line = Vec::new();
        closing_link(&mut line, user.map(|u| u.protocol), user.map_or("", |u| u.host.as_str()), reason);
        line
    }

    /// Queues bytes for one connection, dropping it if its sendq overflows.
    fn deliver(&mut self, to: ConnId, bytes: Arc<[u8]>, shared: &Shared, flush: &mut ToFlush) {
        let mut overflowed = Vec::new();
        self.send(to, bytes, Stamp::now(), false, flush, &mut overflowed);
        self.drop_overflowed(overflowed, shared, flush);
    }

    /// Applies `event` and queues its deliveries.
    fn apply(&mut self, event: &Event, shared: &Shared, flush: &mut ToFlush) {
        let mut overflowed = Vec::new();
        let at = Stamp::now();
        for d in self.state.apply(event).items {
            self.send(d.to, d.bytes, at, true, flush, &mut overflowed);
        }
        shared.gate.set_receivers(self.receivers.count(at.ms));
        self.drop_overflowed(overflowed, shared, flush);
    }

    /// A recipient whose sendq overflowed is dropped on the spot: it gets its
    /// closing line and the others see it QUIT, which may overflow someone
    /// else in turn.
    fn drop_overflowed(&mut self, mut overflowed: Vec<ConnId>, shared: &Shared, flush: &mut ToFlush) {
        while let Some(conn) = overflowed.pop() {
            let Some(outbox) = self.outboxes.get(&conn).cloned() else {
                continue;
            };
            if outbox.is_closing() {
                continue;
            }
            shared.sendq_drops.fetch_add(1, Ordering::Relaxed);
            tracing::info!(?conn, "dropping client: sendq exceeded");
            outbox.begin_close(self.closing_line(conn, "SendQ exceeded"), &shared.flusher);
            flush.add(&outbox);
            let quit = Event::Quit { conn, reason: "SendQ exceeded".into() };
            let at = Stamp::now();
            for d in self.state.apply(&quit).items {
                self.send(d.to, d.bytes, at, true, flush, &mut overflowed);
            }
        }
    }
}

pub fn run(config: Config, listener: TcpListener) -> io::Result<()> {
    let gate = Arc::new(FlowGate::new(Policy::for_sendq(config.sendq_bytes)));
    let shared = Arc::new(Shared {
        hub: Mutex::new(Hub {
            state: State::new(config.info.clone()),
            outboxes: HashMap::new(),
            receivers: Receivers::default(),
        }),
        config,
        flusher: Flusher::start(gate.clone())?,
        gate,
        clients: AtomicUsize::new(0),
        sendq_drops: AtomicU64::new(0),
    });

    const LISTENER: Token = Token(0);
    const SIGNALS: Token = Token(1);
    let mut poll = Poll::new()?;
    let fd = listener.as_raw_fd();
    poll.registry().register(&mut SourceFd(&fd), LISTENER, Interest::READABLE)?;
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    poll.registry().register(&mut signals, SIGNALS, Interest::READABLE)?;

    let next_slot = AtomicU32::new(0);
    let mut events = Events::with_capacity(16);
    let mut backoff: Option<Duration> = None;
    loop {
        if let Err(e) = poll.poll(&mut events, backoff) {
            if e.kind() == ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if signals.pending().next().is_some() {
            shut_down(&shared);
            return Ok(());
        }
        // Accept until the backlog is empty (the poll is edge-triggered), or
        // until descriptors run out: then retry after a pause, not in a spin.
        backoff = None;
        loop {
            match listener.accept() {
                Ok((stream, _)) => {
                    let slot = next_slot.fetch_add(1, Ordering::Relaxed);
                    admit(&shared, stream, slot);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if is_fd_exhaustion(&e) => {
                    tracing::warn!("accept: {e}; retrying in {ACCEPT_BACKOFF:?}");
                    backoff = Some(ACCEPT_BACKOFF);
                    break;
                }
                Err(e) => {
                    tracing::warn!("accept: {e}");
                    break;
                }
            }
        }
    }
}

/// Starts a thread for a new client, or turns it away when the server is full.
fn admit(shared: &Arc<Shared>, stream: TcpStream, slot: u32) {
    let _ = stream.set_nodelay(true);
    if shared.clients.fetch_add(1, Ordering::AcqRel) >= shared.config.max_clients {
        shared.clients.fetch_sub(1, Ordering::AcqRel);
        // A fresh socket's send buffer is empty: this write cannot block.
        let _ = std::io::Write::write(&mut &stream, &server_full_line());
        return;
    }
    let conn = ConnId { worker: 0, slot, generation: 0 };
    let thread_shared = shared.clone();
    let spawned = std::thread::Builder::new()
        .name(format!("client-{slot}"))
        .stack_size(CLIENT_STACK_BYTES)
        .spawn(move || {
            let closing = serve_client(&thread_shared, stream, conn);
            // Gone as far as the client can tell: its place is free even
            // while its thread reads out what it still sends.
            thread_shared.clients.fetch_sub(1, Ordering::AcqRel);
            if let Some(outbox) = closing {
                linger(&outbox);
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot start a client thread: {e}");
        shared.clients.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One client's whole life, on its own thread. Returns its outbox if the
/// connection is closing (rather than closed), for [`linger`].
fn serve_client(shared: &Shared, stream: TcpStream, conn: ConnId) -> Option<Arc<Outbox>> {
    let host = stream.peer_addr().map_or_else(|_| "unknown".into(), |a| a.ip().to_string());
    let _ = stream.set_read_timeout(Some(shared.config.ping_interval));
    // One descriptor per client: the outbox owns the socket, and this
    // thread reads through a shared reference to it.
    let outbox = Arc::new(Outbox::new(stream, shared.config.sendq_bytes, shared.gate.clone()));
    let mut session = Session::new(conn, host, shared.config.info.clone());
    let mut to_flush = ToFlush::default();
    {
        let mut hub = shared.hub();
        hub.outboxes.insert(conn, outbox.clone());
        let at = Stamp::now();
        if outbox.enqueue(session.greeting(None).into(), at.ms, at.now) == Enqueued::Queued {
            to_flush.add(&outbox);
        }
    }
    to_flush.flush(&shared.flusher);

    let ping_interval = shared.config.ping_interval;
    let mut reader = LineReader::default();
    let mut awaiting_pong = false;
    let mut actions = Vec::new();
    let mut read_half = outbox.stream();
    let reason = 'serve: loop {
        match reader.read_from(&mut read_half) {
            Ok(0) => break "Connection closed".to_string(),
            Ok(_) => awaiting_pong = false,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if awaiting_pong {
                    break format!("Ping timeout: {} seconds", 2 * ping_interval.as_secs());
                }
                awaiting_pong = true;
                let mut ping = Vec::new();
                write_line(&mut ping, None, "PING", &[], Some(&shared.config.info.name));
                let hub = shared.hub();
                let at = Stamp::now();
                if outbox.enqueue(ping.into(), at.ms, at.now) == Enqueued::Queued {
                    to_flush.add(&outbox);
                }
                drop(hub);
                to_flush.flush(&shared.flusher);
                continue;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => break format!("Read error: {e}"),
        }
        while let Some(frame) = reader.next_frame() {
            // Not while a reader the server waits for is behind, or our own
            // client is: this line, and all after it, wait in the kernel.
            shared.gate.wait(&outbox);
            if outbox.is_closing() {
                break 'serve "Closing".to_string();
            }
            let mut hub = shared.hub();
            actions.clear();
            match frame {
                Frame::Line(line) => session.on_line(&line, &hub.state, unix_now(), &mut actions),
                Frame::TooLong => session.on_too_long(&hub.state, &mut actions),
            }
            let mut close = false;
            for action in actions.drain(..) {
                match action {
                    Action::Reply(bytes) => hub.deliver(conn, bytes.into(), shared, &mut to_flush),
                    Action::Event(event) => hub.apply(&event, shared, &mut to_flush),
                    Action::Close => close = true,
                }
            }
            drop(hub);
            if close {
                outbox.close_when_flushed(&shared.flusher);
                to_flush.add(&outbox);
            }
            to_flush.flush(&shared.flusher);
            if close {
                break 'serve "Closed".to_string();
            }
        }
    };

    let mut hub = shared.hub();
    if let Some(quit) = session.quit_event(&hub.state, &reason) {
        hub.apply(&quit, shared, &mut to_flush);
        if reason.starts_with("Ping timeout") {
            outbox.begin_close(session.closing_line(&reason), &shared.flusher);
            to_flush.add(&outbox);
        }
    }
    hub.outboxes.remove(&conn);
    drop(hub);
    to_flush.flush(&shared.flusher);
    if outbox.is_closing() {
        return Some(outbox);
    }
    outbox.shut();
    None
}

/// Reads and discards what a closing client still sends until it closes its
/// end (after our closing line and end of stream) or the grace period ends:
/// closing with unread input would reset the connection, and a reset makes
/// the client's kernel discard what it has not yet handed over, the closing
/// line included.
fn linger(outbox: &Outbox) {
    linger_reading(outbox);
    outbox.shut();
}

fn linger_reading(outbox: &Outbox) {
    let deadline = Instant::now() + CLOSE_GRACE;
    let mut stream = outbox.stream();
    let mut sink = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left.min(Duration::from_millis(100)))).is_err() {
            return;
        }
        match std::io::Read::read(&mut stream, &mut sink) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(_) => return,
        }
    }
}

/// SIGINT/SIGTERM: every client gets a closing line, then the process ends.
fn shut_down(shared: &Shared) {
    tracing::info!("shutting down");
    let mut to_flush = ToFlush::default();
    let outboxes: Vec<Arc<Outbox>> = {
        let hub = shared.hub();
        let mut all: Vec<(ConnId, Arc<Outbox>)> = hub.outboxes.iter().map(|(c, o)| (*c, o.clone())).collect();
        all.sort_by_key(|(c, _)| *c);
        for (conn, outbox) in &all {
            outbox.begin_close(hub.closing_line(*conn, "Server shutting down"), &shared.flusher);
            to_flush.add(outbox);
        }
        all.into_iter().map(|(_, o)| o).collect()
    };
    to_flush.flush(&shared.flusher);
    let deadline = Instant::now() + CLOSE_GRACE;
    while Instant::now() < deadline && outboxes.iter().any(|o| !o.is_closed()) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let drops = shared.sendq_drops.load(Ordering::Relaxed);
    tracing::info!(clients = outboxes.len(), sendq_drops = drops, "stopped");
}
