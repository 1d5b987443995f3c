//! The iterative model: the classic thread-per-client server.
//!
//! The main thread runs the accept loop (and listens for SIGINT/SIGTERM,
//! and SIGHUP for a reload, in the same poll). Every accepted client gets
//! its own thread, which blocks in `recv`, turns lines into session
//! actions and applies events to the one directory, a `State` behind a
//! `Mutex` together with the outboxes of all connections. Deliveries are
//! queued while the lock is held, so every recipient gets lines in the
//! order events were applied; the socket writes happen after the lock is
//! released (see `outbox` for how and why).
//!
//! A client thread's read has a timeout set to the next thing due for it
//! (see `liveness` for PINGs and timeouts, `flood` for a client waiting out
//! its flood penalty), and never longer than a ping interval. This file is
//! the shared directory, the accept loop and shutdown; `client` is one
//! client's life.
//!
//! Flow control: before each line a client thread waits at the `FlowGate`
//! (see `outbox`) while some reader the server waits for is behind, or
//! while its own client is. The lines it has not read stay in the kernel,
//! so TCP slows the sender; the wait holds no lock, and every holder is
//! released within bounded time by the flow rule, so it cannot deadlock.

mod client;
mod clustered;
mod outbox;

use std::collections::HashMap;
use std::io;
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use crate::chat::render::Closing;
use crate::chat::reply::closing_link;
use crate::chat::{ConnId, Deliveries, Event, Listing, Protocol, State, render};
use crate::server::cluster::{self, Bridge, Names};
use crate::server::connection::slot::{ClientCount, ClientSlot};
use crate::server::connection::{CLOSE_GRACE, Connection, DisconnectReason};
use crate::server::flow::{self, Policy, Receivers};
use crate::server::listener::{ACCEPT_BACKOFF, AcceptStep, ExhaustionLog, Listening, poll_events};
use crate::server::node::NodeSpace;
use crate::server::pool::log::KEEPER;
use crate::server::refusal::Refusals;
use crate::server::transport::tls::LiveCertificate;
use crate::server::transport::{Kind, Layers};
use crate::server::{Config, Shutdown};
use outbox::{Enqueued, FlowGate, Flusher, Outbox};

use client::{linger, serve_client};

/// Tokens of the accept loop's poll: the listener, the signals, then the
/// refused connections it holds.
const FIRST_REFUSAL: usize = 2;

/// How often a cluster node's accept loop looks whether its bridge ended.
const BRIDGE_CHECK: Duration = Duration::from_millis(500);

/// Client threads need little stack: buffers live on the heap.
const CLIENT_STACK_BYTES: usize = 256 * 1024;

/// The directory and everyone's outbox, under one lock.
struct Hub {
    state: State,
    outboxes: HashMap<ConnId, Arc<Outbox>>,
    receivers: Receivers,
    /// What connections that have not registered yet speak, and their
    /// host, so that their closing line is in their protocol too.
    unregistered: HashMap<ConnId, (Protocol, String)>,
    /// Cluster mode: what the bridge sent connections whose thread waits
    /// for its own event (see `clustered`).
    mailboxes: clustered::Mailboxes,
}

struct Shared {
    /// As the server started: the directory's settings are the current
    /// ones (a reload replaces them there).
    config: Config,
    hub: Mutex<Hub>,
    gate: Arc<FlowGate>,
    flusher: Flusher,
    clients: AtomicUsize,
    sendq_drops: AtomicU64,
    flood_drops: AtomicU64,
    /// Cluster mode: how events reach the bridge (see `clustered`).
    link: Option<clustered::Link>,
    /// Rung when the bridge has applied a waiting thread's event.
    answered: Condvar,
}

impl Shared {
    fn hub(&self) -> MutexGuard<'_, Hub> {
        self.hub.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How this server numbers its connections (alone: as it always did).
    fn space(&self) -> NodeSpace {
        self.link.as_ref().map_or(NodeSpace::ALONE, |l| l.space)
    }

    /// This server as the writer of reload pieces (see `chat::reload`).
    fn writer(&self) -> u16 {
        self.space().worker(KEEPER)
    }
}

/// The server-wide client count, for `--max-clients`.
impl ClientCount for Arc<Shared> {
    fn try_add(&self, max: usize) -> bool {
        if self.clients.fetch_add(1, Ordering::AcqRel) >= max {
            self.clients.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        true
    }

    fn remove(&self) {
        self.clients.fetch_sub(1, Ordering::AcqRel);
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
    fn closing_line(&self, conn: ConnId, reason: &DisconnectReason) -> Vec<u8> {
        let (protocol, host) = match (self.state.user(conn), self.unregistered.get(&conn)) {
            (Some(user), _) => (Some(user.protocol), user.host.as_str()),
            (None, Some((protocol, host))) => (Some(*protocol), host.as_str()),
            (None, None) => (None, ""),
        };
        let mut line = Vec::new();
        closing_link(&mut line, protocol, host, &reason.to_string());
        line
    }

    /// Queues bytes that answer `connection`'s line: labeled if the line
    /// was (see `connection::label`).
    fn answer(&mut self, connection: &mut Connection, bytes: Vec<u8>, shared: &Shared, flush: &mut ToFlush) {
        let to = connection.session().conn();
        let bytes = if connection.is_labeling() { connection.label_response(&bytes) } else { bytes };
        if !bytes.is_empty() {
            self.deliver(to, bytes.into(), shared, flush);
        }
    }

    /// Ends the labeled answer to `connection`'s line, if it was labeled.
    fn end_answer(&mut self, connection: &mut Connection, shared: &Shared, flush: &mut ToFlush) {
        if let Some(end) = connection.end_response() {
            self.deliver(connection.session().conn(), end.into(), shared, flush);
        }
    }

    /// Queues bytes for one connection, dropping it if its sendq overflows.
    fn deliver(&mut self, to: ConnId, bytes: Arc<[u8]>, shared: &Shared, flush: &mut ToFlush) {
        let mut overflowed = Vec::new();
        self.send(to, bytes, Stamp::now(), false, flush, &mut overflowed);
        self.drop_overflowed(overflowed, shared, flush);
    }

    /// Applies `event` and queues its deliveries; returns the long replies
    /// it starts (a joiner's NAMES), which the actor's thread streams.
    fn apply(&mut self, event: &Event, shared: &Shared, flush: &mut ToFlush) -> Vec<(ConnId, Listing)> {
        self.apply_answering(event, shared, flush, None)
    }

    /// [`apply`](Self::apply) for an event of the line `actor` is
    /// answering: what the event sends the actor goes through it (a
    /// labeled answer, see `connection::label`).
    fn apply_answering(
        &mut self,
        event: &Event,
        shared: &Shared,
        flush: &mut ToFlush,
        mut actor: Option<&mut Connection>,
    ) -> Vec<(ConnId, Listing)> {
        let mut overflowed = Vec::new();
        let at = Stamp::now();
        let deliveries = self.apply_and_render(event);
        for d in deliveries.items {
            let answering = actor.as_deref_mut().filter(|c| c.is_labeling() && Some(d.to) == event.conn());
            match answering {
                Some(connection) if !d.received => {
                    let bytes = connection.label_response(&d.bytes);
                    if !bytes.is_empty() {
                        self.send(d.to, bytes.into(), at, false, flush, &mut overflowed);
                    }
                }
                _ => self.send(d.to, d.bytes, at, true, flush, &mut overflowed),
            }
        }
        self.close_killed(&deliveries.closes, shared, flush);
        shared.gate.set_receivers(self.receivers.count(at.ms));
        self.drop_overflowed(overflowed, shared, flush);
        deliveries.listings
    }

    /// Ended by the directory (KILL): its thread sees its outbox closing
    /// and ends; it is no user any more, so no QUIT follows.
    fn close_killed(&mut self, closes: &[Closing], shared: &Shared, flush: &mut ToFlush) {
        for closing in closes {
            if let Some(outbox) = self.outboxes.get(&closing.conn).filter(|o| !o.is_closing()) {
                let mut line = Vec::new();
                closing_link(&mut line, Some(closing.protocol), &closing.host, &closing.reason);
                outbox.begin_close(line, &shared.flusher);
                flush.add(outbox);
            }
        }
    }

    /// Sends every connection its closing line for `reason`, in id order.
    fn close_all(
        &mut self,
        shared: &Shared,
        reason: &DisconnectReason,
        flush: &mut ToFlush,
    ) -> Vec<Arc<Outbox>> {
        let mut all: Vec<(ConnId, Arc<Outbox>)> =
            self.outboxes.iter().map(|(c, o)| (*c, o.clone())).collect();
        all.sort_by_key(|(c, _)| *c);
        for (conn, outbox) in &all {
            outbox.begin_close(self.closing_line(*conn, reason), &shared.flusher);
            flush.add(outbox);
        }
        all.into_iter().map(|(_, o)| o).collect()
    }

    /// Records `event`: alone, applies it now; in a cluster, proposes it
    /// to the network (the bridge applies it when the stream orders it).
    fn commit(&mut self, event: &Event, shared: &Shared, flush: &mut ToFlush) {
        match &shared.link {
            None => {
                self.apply(event, shared, flush);
            }
            Some(link) => link.propose(event.clone()),
        }
    }

    /// The one directory renders for every connection.
    fn apply_and_render(&mut self, event: &Event) -> Deliveries {
        let mut changes = Vec::new();
        self.state.apply(event, &mut changes);
        let mut deliveries = Deliveries::default();
        render(&self.state, &changes, |_| true, &mut deliveries);
        deliveries
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
            outbox.begin_close(self.closing_line(conn, &DisconnectReason::SendQExceeded), &shared.flusher);
            flush.add(&outbox);
            let quit = Event::Quit { conn, reason: DisconnectReason::SendQExceeded.to_string() };
            if let Some(link) = &shared.link {
                link.propose(quit);
                continue;
            }
            let at = Stamp::now();
            for d in self.apply_and_render(&quit).items {
                self.send(d.to, d.bytes, at, true, flush, &mut overflowed);
            }
        }
    }
}

pub fn run(config: Config, listeners: Vec<Listening>, mut shutdown: Shutdown) -> io::Result<()> {
    let gate = Arc::new(FlowGate::new(Policy::for_sendq(config.sendq_bytes)));
    // A cluster node joins the network first: that gives it its numbering
    // and the network's directory.
    let mut joining = None;
    let (state, link) = match &config.cluster {
        None => (State::new(config.info.clone()), None),
        Some(cluster) => {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let names = Names::for_network(&config.info.network);
            let (nats, joined, state) =
                runtime.block_on(cluster::join(cluster, &names, config.info.clone()))?;
            let (link, proposals, bell) = clustered::Link::new(joined.space);
            joining = Some((runtime, nats, joined, cluster.clone(), state.clone(), proposals, bell));
            (state, Some(link))
        }
    };
    let shared = Arc::new(Shared {
        hub: Mutex::new(Hub {
            state,
            outboxes: HashMap::new(),
            receivers: Receivers::default(),
            unregistered: HashMap::new(),
            mailboxes: HashMap::new(),
        }),
        config,
        flusher: Flusher::start(gate.clone())?,
        gate,
        clients: AtomicUsize::new(0),
        sendq_drops: AtomicU64::new(0),
        flood_drops: AtomicU64::new(0),
        link,
        answered: Condvar::new(),
    });
    let mut bridge = match joining {
        None => None,
        Some((runtime, nats, joined, cluster, directory, proposals, bell)) => {
            let side = clustered::IterativeSide::new(shared.clone(), proposals, bell);
            let thread = std::thread::Builder::new()
                .name("bridge".into())
                .spawn(move || runtime.block_on(Bridge::new(nats, cluster, joined, directory, side).run()))?;
            Some(thread)
        }
    };

    const SHUTDOWN: Token = Token(1);
    const FIRST_LISTENER: usize = 2;
    let mut poll = Poll::new()?;
    for (n, listening) in listeners.iter().enumerate() {
        let fd = listening.listener.as_raw_fd();
        poll.registry().register(&mut SourceFd(&fd), Token(FIRST_LISTENER + n), Interest::READABLE)?;
    }
    shutdown.register(poll.registry(), SHUTDOWN)?;
    let mut certificate = shared.config.tls.as_ref().map(|tls| {
        LiveCertificate::new(tls.files.clone(), tls.certificate.clone(), shared.config.info.clone())
    });

    let next_slot = AtomicU32::new(0);
    let mut events = Events::with_capacity(16);
    let mut backoff: Option<Duration> = None;
    let mut exhaustion = ExhaustionLog::default();
    // Connections refused because the server is full, until they are told.
    let mut refusals = Refusals::new(FIRST_REFUSAL);
    loop {
        let now = Instant::now();
        let refusal_due = refusals.next_deadline().map(|at| at.saturating_duration_since(now));
        // A cluster node looks at its bridge now and then: its end is
        // the node's.
        let bridge_check = bridge.is_some().then_some(BRIDGE_CHECK);
        let timeout = [backoff, refusal_due, bridge_check].into_iter().flatten().min();
        poll_events(&mut poll, &mut events, timeout)?;
        if shutdown.requested() {
            shut_down(&shared);
            return Ok(());
        }
        if bridge.as_ref().is_some_and(|b| b.is_finished()) {
            let why = match bridge.take().expect("checked").join() {
                Ok(Ok(())) => "it stopped".to_string(),
                Ok(Err(e)) => e.to_string(),
                Err(_) => "it panicked".to_string(),
            };
            tracing::error!("the bridge to the network ended: {why}; stopping");
            shut_down(&shared);
            return Err(io::Error::other(format!("the bridge to the network ended: {why}")));
        }
        if shutdown.reload_requested() {
            reload(&shared);
        }
        let now = Instant::now();
        for event in events.iter() {
            if refusals.owns(event.token()) {
                refusals.ready(poll.registry(), event.token(), now);
            }
        }
        refusals.expire(poll.registry(), now);
        // Accept until the backlog is empty (the poll is edge-triggered), or
        // until descriptors run out: then retry after a pause, not in a spin.
        backoff = None;
        'listeners: for listening in &listeners {
            loop {
                match exhaustion.step(listening.listener.accept(), now) {
                    AcceptStep::Accepted(stream, addr) => {
                        let slot = next_slot.fetch_add(1, Ordering::Relaxed);
                        // The refusal is a plain line: a client of another
                        // kind is only closed.
                        if let Err(stream) =
                            admit(&shared, stream, listening.kind, certificate.as_mut(), slot)
                            && listening.kind == Kind::Plain
                            && stream.set_nonblocking(true).is_ok()
                        {
                            let stream = mio::net::TcpStream::from_std(stream);
                            refusals.refuse(poll.registry(), stream, addr.ip().to_string(), now);
                        }
                    }
                    AcceptStep::Again => continue,
                    AcceptStep::Drained => break,
                    AcceptStep::Pause => {
                        backoff = Some(ACCEPT_BACKOFF);
                        break 'listeners;
                    }
                }
            }
        }
    }
}

/// SIGHUP: the settings reread, installed in the directory in one locked
/// step (see `reload`).
fn reload(shared: &Shared) {
    let events = crate::server::reload::on_hangup(&shared.config, shared.writer());
    let mut to_flush = ToFlush::default();
    let mut hub = shared.hub();
    for event in &events {
        hub.commit(event, shared, &mut to_flush);
    }
    drop(hub);
    to_flush.flush(&shared.flusher);
}

/// Starts a thread for a new client; hands the stream back when the server
/// is full (it is refused, see `refusal`).
fn admit(
    shared: &Arc<Shared>,
    stream: TcpStream,
    kind: Kind,
    certificate: Option<&mut LiveCertificate>,
    slot: u32,
) -> Result<(), TcpStream> {
    let _ = stream.set_nodelay(true);
    // The settings as of now: a reload changes them for later connections.
    let info = shared.hub().state.shared_info().clone();
    let Some(mut place) = ClientSlot::try_take(shared.clone(), info.connections.max_clients) else {
        return Err(stream);
    };
    let layers = match Layers::new(kind, certificate.map(|c| c.under(&info))) {
        Ok(layers) => layers,
        Err(e) => {
            tracing::warn!("cannot start a {kind} connection: {e}");
            return Ok(());
        }
    };
    let space = shared.space();
    let conn = ConnId { worker: space.worker(KEEPER), slot, generation: space.generation(0) };
    let thread_shared = shared.clone();
    let spawned = std::thread::Builder::new()
        .name(format!("client-{slot}"))
        .stack_size(CLIENT_STACK_BYTES)
        .spawn(move || {
            let closing = serve_client(&thread_shared, stream, layers, conn, info);
            // Gone as far as the client can tell: its place is free even
            // while its thread reads out what it still sends.
            place.release();
            if let Some(outbox) = closing {
                linger(&outbox);
            }
        });
    if let Err(e) = spawned {
        // The closure, and the place in it, are dropped: the place is free.
        tracing::warn!("cannot start a client thread: {e}");
    }
    Ok(())
}

/// SIGINT/SIGTERM: every client gets a closing line, then the process ends.
fn shut_down(shared: &Shared) {
    tracing::info!("shutting down");
    let mut to_flush = ToFlush::default();
    let outboxes = shared.hub().close_all(shared, &DisconnectReason::ServerShutdown, &mut to_flush);
    to_flush.flush(&shared.flusher);
    let deadline = Instant::now() + CLOSE_GRACE;
    while Instant::now() < deadline && outboxes.iter().any(|o| !o.is_closed()) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let sendq_drops = shared.sendq_drops.load(Ordering::Relaxed);
    let flood_drops = shared.flood_drops.load(Ordering::Relaxed);
    tracing::info!(clients = outboxes.len(), sendq_drops, flood_drops, "stopped");
}
