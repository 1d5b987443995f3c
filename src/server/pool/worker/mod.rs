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
//!    client cannot starve the others; a client past its flood allowance
//!    (see `flood`) is read but not served until its timer. Before each line the replica is
//!    brought up to everything published (a client never sees less than
//!    another has already been shown); after each line its events are
//!    appended and applied (read-your-writes: `JOIN #a` then `NAMES #a`
//!    sees the join, a NICK claim's outcome is known before the next line).
//! 4. Write to sockets, drop clients that overflowed, account the flow.
//! 5. Poll: not at all if there is more to do, briefly while holding,
//!    waiting for room or holding back a registration (see `held`), else
//!    sleep until woken.
//! 6. Rule on registrations held back (see `held`).
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
//! beating its heartbeat and reading the log, and is evicted by the keeper.
//!
//! Accepts are spread by the kernel: each worker has its own listening
//! socket bound to the same port with SO_REUSEPORT (see `listener`).
//!
//! This file is the loop and the worker's side of the log; `clients` is
//! accepting, reading and ending connections; `outbound` is queueing,
//! writing and the flow book-keeping; `held` is why and when a refused
//! registration waits before its client is told, and `registrations`
//! carries those decisions out.

mod clients;
mod conn;
mod held;
mod outbound;
mod own;
mod registrations;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};
use rustc_hash::FxHashMap;

use crate::chat::change::recycle;
use crate::chat::{Action, Change, ConnId, Deliveries, Event, State, render};
use crate::server::Config;
use crate::server::connection::{DisconnectReason, Limits};
use crate::server::flow::{self, Census, Policy, Receivers};
use crate::server::listener::{ACCEPT_BACKOFF, ExhaustionLog, Listening, poll_events};
use crate::server::node::NodeSpace;
use crate::server::pool::codec;
use crate::server::pool::entry::{self, Entry, EntryRef, Origin};
use crate::server::pool::follow::Follower;
use crate::server::pool::log::{CellId, CellStatus, Log, Wake};
use crate::server::refusal::Refusals;
use crate::server::transport::Kind;
use crate::server::transport::tls::LiveCertificate;
use conn::Conn;
use held::HeldRegistrations;

use outbound::FlowBook;
use own::OwnEvents;

/// Where the caller registers the worker's wake-up source.
pub const WAKE: Token = Token(1);
/// The listening sockets' tokens: one per endpoint, at most four.
const FIRST_LISTENER: usize = 2;
const FIRST_CONN: usize = FIRST_LISTENER + 4;
/// Tokens of refused connections (see `refusal`): far above any slot's.
const FIRST_REFUSAL: usize = 1 << 40;

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
    pub cell: CellId,
    pub generation: u32,
    /// Where this server sits in a cluster (alone: `NodeSpace::ALONE`):
    /// how its connection ids are numbered, and whether its events are
    /// proposed to the network rather than appended as they are (see
    /// `entry`).
    pub space: NodeSpace,
    /// The log position `state` corresponds to.
    pub start: u64,
    /// A replica of the directory at `start`.
    pub state: State,
    /// A listening socket per endpoint.
    pub listeners: Vec<Listening>,
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

struct Worker<'a> {
    cell: CellId,
    generation: u32,
    /// The worker number and generation this worker's connection ids
    /// carry (see `node`).
    conn_worker: u16,
    conn_generation: u32,
    space: NodeSpace,
    log: &'a Log,
    wake: &'a dyn Wake,
    config: Arc<Config>,
    label: String,
    state: State,
    follower: Follower,
    poll: Poll,
    /// What each listening socket's clients speak, by token.
    listeners: Vec<(Kind, TcpListener)>,
    /// The certificate TLS endpoints serve, if any.
    certificate: Option<LiveCertificate>,
    /// Keyed by slot, which the worker assigns: a fast hash is safe.
    conns: FxHashMap<u32, Conn<'a>>,
    /// What a connection accepted now is held to: made again from the
    /// replica's settings when a reload has replaced them.
    limits: Arc<Limits>,
    next_slot: u32,
    /// Connections with bytes to write.
    dirty: Vec<u32>,
    /// Connections whose sendq overflowed; dropped after the current step.
    overflowed: Vec<u32>,
    /// Connections with input to handle, in turn order.
    input: VecDeque<u32>,
    /// Events waiting for room in the ring, in order.
    outgoing: VecDeque<Event>,
    /// Which of this worker's own events its replica has applied: input
    /// waits until all of them are (read-your-writes).
    own: OwnEvents,
    flow: FlowBook,
    /// The time this turn, read once per turn.
    now: Instant,
    now_ms: u32,
    encode_buf: Vec<u8>,
    /// Where socket reads land before their lines are cut out.
    scratch: Box<[u8]>,
    accept_paused_until: Option<Instant>,
    /// Rate-limits the warning while descriptors are exhausted.
    exhaustion: ExhaustionLog,
    /// When clients waiting out a flood penalty may go on, soonest first.
    flood_timers: BinaryHeap<Reverse<(Instant, u32)>>,
    /// Connections turned away because the server is full, until told.
    refusals: Refusals,
    /// Clients dropped for falling a whole sendq behind.
    sendq_drops: u64,
    /// Clients dropped for sending far beyond their flood allowance.
    flood_drops: u64,
    /// Registrations refused while their nick's holder may be leaving.
    held: HeldRegistrations,
    /// Connections whose last line's labeled answer is not ended yet.
    labeling: Vec<u32>,
}

/// Runs a worker until shutdown or eviction. `poll` must already have the
/// wake-up source registered at [`WAKE`]; `on_wake` is called once at the
/// start and for each event on it, and returns true when the worker must
/// shut down.
pub fn run(
    setup: WorkerSetup,
    log: &Log,
    wake: &dyn Wake,
    poll: Poll,
    mut on_wake: impl FnMut() -> bool,
) -> io::Result<Exit> {
    let mut listeners = Vec::new();
    for (n, listening) in setup.listeners.into_iter().enumerate() {
        let mut listener = TcpListener::from_std(listening.listener);
        poll.registry().register(&mut listener, Token(FIRST_LISTENER + n), Interest::READABLE)?;
        listeners.push((listening.kind, listener));
    }
    let certificate = setup.config.tls.as_ref().map(|tls| {
        LiveCertificate::new(tls.files.clone(), tls.certificate.clone(), setup.state.shared_info().clone())
    });
    let now = Instant::now();
    let limits = Arc::new(Limits::new(setup.state.shared_info().clone()));
    let mut worker = Worker {
        cell: setup.cell,
        generation: setup.generation,
        conn_worker: setup.space.worker(setup.cell),
        conn_generation: setup.space.generation(setup.generation),
        space: setup.space,
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
        follower: Follower::new(setup.cell, setup.start),
        own: OwnEvents::new(setup.space.clustered(), setup.start),
        poll,
        listeners,
        certificate,
        conns: FxHashMap::default(),
        limits,
        next_slot: 0,
        dirty: Vec::new(),
        overflowed: Vec::new(),
        input: VecDeque::new(),
        outgoing: VecDeque::new(),
        now,
        now_ms: flow::millis(),
        encode_buf: Vec::new(),
        scratch: vec![0; 16 * 1024].into_boxed_slice(),
        accept_paused_until: None,
        exhaustion: ExhaustionLog::default(),
        flood_timers: BinaryHeap::new(),
        refusals: Refusals::new(FIRST_REFUSAL),
        sendq_drops: 0,
        flood_drops: 0,
        held: HeldRegistrations::default(),
        labeling: Vec::new(),
    };
    let mut events = Events::with_capacity(1024);
    let mut last_housekeeping = now;
    // A stop asked for before this worker's wake-up source was installed
    // woke no one: ask once now (the caller installed it before calling).
    let mut shutdown = on_wake();
    loop {
        log.beat(worker.cell);
        worker.clock();
        worker.end_flood_waits();
        worker.drain_log();
        worker.append_outgoing();
        worker.handle_input();
        worker.end_answers();
        worker.settle();
        worker.flow_tick();
        worker.publish_census();
        if shutdown {
            worker.close_all(DisconnectReason::ServerShutdown);
            tracing::info!(
                cell = %worker.cell,
                sendq_drops = worker.sendq_drops,
                flood_drops = worker.flood_drops,
                "worker stopped"
            );
            return Ok(Exit::Shutdown);
        }
        if log.status(worker.cell) != CellStatus::Live {
            worker.close_all(DisconnectReason::WorkerFellBehind);
            return Ok(Exit::Evicted);
        }
        let (timeout, sleeping) = worker.poll_timeout();
        let polled = poll_events(&mut worker.poll, &mut events, Some(timeout));
        if sleeping {
            log.awake(worker.cell);
        }
        polled?;
        worker.clock();
        let mut accept = false;
        for event in events.iter() {
            match event.token() {
                Token(t) if (FIRST_LISTENER..FIRST_CONN).contains(&t) => accept = true,
                WAKE => shutdown |= on_wake(),
                token if worker.refusals.owns(token) => {
                    worker.refusals.ready(worker.poll.registry(), token, worker.now)
                }
                Token(t) => {
                    let readable = event.is_readable() || event.is_read_closed() || event.is_error();
                    worker.socket_ready((t - FIRST_CONN) as u32, readable, event.is_writable());
                }
            }
        }
        worker.refusals.expire(worker.poll.registry(), worker.now);
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
        if !worker.held.is_empty() {
            worker.release_registrations();
        }
    }
}

impl Worker<'_> {
    fn conn_id(&self, slot: u32) -> ConnId {
        ConnId { worker: self.conn_worker, slot, generation: self.conn_generation }
    }

    /// Whether `conn` is one of this worker incarnation's connections (not
    /// another worker's, another node's, nor an earlier one's in this cell).
    fn is_mine(&self, conn: ConnId) -> bool {
        conn.worker == self.conn_worker && conn.generation == self.conn_generation
    }

    /// Whether every event this worker appended has been applied to its
    /// replica (see `own`; in a cluster, every event of no connection's:
    /// a connection's own are counted with it).
    fn own_applied(&self) -> bool {
        self.own.applied(self.follower.cursor())
    }

    /// Whether what `slot`'s lines asked has been applied: the worker's
    /// own events, and in a cluster the connection's proposals.
    fn answered(&self, slot: u32) -> bool {
        self.own_applied() && self.conns.get(&slot).is_none_or(|c| c.unconfirmed == 0)
    }

    fn clock(&mut self) {
        self.now = Instant::now();
        self.now_ms = flow::millis();
    }

    /// Input is handled only while nothing holds it back: see the module doc.
    fn admitting(&self) -> bool {
        !self.flow.holding() && self.outgoing.is_empty() && self.own_applied()
    }

    fn poll_timeout(&self) -> (Duration, bool) {
        if self.flow.holding() {
            // Woken by writable sockets; the timeout re-evaluates patience.
            return (flow::TICK, false);
        }
        if !self.input.is_empty() && self.admitting() {
            return (Duration::ZERO, false);
        }
        // An own event still to come back from the network wakes this
        // worker when the bridge appends it: no need to poll for it.
        let own_pending = !self.own_applied() && !self.space.clustered();
        if !self.outgoing.is_empty() || own_pending || !self.held.is_empty() {
            return (ROOM_POLL, false);
        }
        let mut timeout = if self.accept_paused_until.is_some() { ACCEPT_BACKOFF } else { TICK };
        let flood_due = self.flood_timers.peek().map(|Reverse((at, _))| *at);
        for at in flood_due.into_iter().chain(self.refusals.next_deadline()) {
            timeout = timeout.min(at.saturating_duration_since(self.now));
        }
        if self.log.prepare_sleep(self.cell, self.follower.cursor()) {
            (timeout, true)
        } else {
            (Duration::ZERO, false)
        }
    }

    // ---- the log ----

    /// Applies published events this worker has not seen yet and queues the
    /// deliveries for its own connections; stops as soon as a connection it
    /// waits for falls behind (it is holding the flow: see `flow`).
    fn drain_log(&mut self) {
        let mut spare: Vec<Change<'static>> = Vec::new();
        while !self.flow.holding() {
            let Some(entry) = self.follower.next_entry(self.log, false) else { break };
            let event = match entry {
                Entry::Event(event) => event,
                Entry::Ordered { origin, event, .. } => {
                    if origin == Some(self.origin()) {
                        self.confirmed(&event);
                    }
                    event
                }
                Entry::Notice(text) => {
                    self.notice_all(&text);
                    continue;
                }
                Entry::Proposed { .. } => continue,
            };
            if let Event::NodeLost { node, epoch, .. } = event
                && self.space.clustered()
                && (node, epoch) == (self.space.node, self.space.epoch)
            {
                // The network has given up on this node run: its users are
                // gone, and its clients are told before the node stops.
                self.close_all(DisconnectReason::NodeLost);
            }
            let mut changes = recycle(std::mem::take(&mut spare));
            self.state.apply(&event, &mut changes);
            if let Event::Register { conn, .. } = &event
                && self.is_mine(*conn)
            {
                self.read_back_registration(&event, &mut changes);
            }
            let mut deliveries = Deliveries::default();
            let (worker, generation) = (self.conn_worker, self.conn_generation);
            render(
                &self.state,
                &changes,
                |to| to.worker == worker && to.generation == generation,
                &mut deliveries,
            );
            spare = recycle(changes);
            self.deliver(deliveries, event.conn());
        }
        self.follower.report(self.log);
    }

    /// The ordered copy of one of this worker's proposals came back: its
    /// connection (or, for an event of none, the worker) may go on.
    fn confirmed(&mut self, event: &Event) {
        let Some(conn) = event.conn().filter(|c| self.is_mine(*c)) else {
            self.own.confirmed();
            return;
        };
        let Some(client) = self.conns.get_mut(&conn.slot) else { return };
        client.unconfirmed = client.unconfirmed.saturating_sub(1);
        if client.unconfirmed == 0 {
            self.requeue_input(conn.slot);
        }
    }

    /// This worker as the proposer of an event (cluster mode).
    fn origin(&self) -> Origin {
        Origin { cell: self.cell.as_u16(), generation: self.generation }
    }

    /// A notice from this node to every client of this worker (cluster
    /// mode: the network is out of reach, or back).
    fn notice_all(&mut self, text: &str) {
        let slots: Vec<u32> = self.conns.keys().copied().collect();
        for slot in slots {
            let Some(conn) = self.conns.get(&slot).filter(|c| c.is_open()) else { continue };
            let line = conn.connection.session().notice(&self.state, text);
            self.reply(slot, line);
        }
    }

    /// Queues what `render` wrote for this worker's connections; what it
    /// sends `actor`, whose event it was, answers that actor's line.
    fn deliver(&mut self, deliveries: Deliveries, actor: Option<ConnId>) {
        for d in deliveries.items {
            let labeled = Some(d.to) == actor
                && !d.received
                && self.conns.get(&d.to.slot).is_some_and(|c| c.connection.is_labeling());
            if labeled {
                self.answer(d.to.slot, d.bytes.to_vec());
            } else {
                self.queue(d.to.slot, d.bytes, true);
            }
        }
        for (to, listing) in deliveries.listings {
            if let Some(conn) = self.conns.get_mut(&to.slot) {
                conn.listings.push_back(listing);
                self.mark_dirty(to.slot);
            }
        }
        // Ended by the directory (KILL): it is no user any more, so no QUIT
        // is published for it; it gets its closing line.
        for closing in deliveries.closes {
            self.drop_client(closing.conn.slot, DisconnectReason::Killed(closing.reason));
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
        let (clustered, origin) = (self.space.clustered(), self.origin());
        while let Some(event) = self.outgoing.front() {
            record.clear();
            // In a cluster the network orders it: it goes in as a proposal.
            let entry = if clustered { EntryRef::Proposed { origin, event } } else { EntryRef::Event(event) };
            if let Err(e) = entry::encode(&entry, &mut record) {
                let event = self.outgoing.pop_front().expect("the front event");
                self.refuse(event, e);
                continue;
            }
            match self.log.try_append(self.cell, &record, self.wake) {
                Some(sequences) => {
                    // A connection's proposal holds that connection alone
                    // (see `answered`); any other event, the worker.
                    let client = event.conn().filter(|c| clustered && self.is_mine(*c));
                    match client.and_then(|c| self.conns.get_mut(&c.slot)) {
                        Some(client) => client.unconfirmed += 1,
                        None if client.is_some() => {}
                        None => self.own.appended(sequences),
                    }
                    self.outgoing.pop_front();
                }
                None => break,
            }
        }
        self.encode_buf = record;
        self.catch_up();
    }

    /// An event that cannot enter the log (it does not fit a slot: sessions
    /// never build one, see `codec`) is not dropped silently: its client is
    /// told its input was too long, and it is logged as the bug it is.
    fn refuse(&mut self, event: Event, error: codec::CodecError) {
        tracing::error!(cell = %self.cell, ?event, "event refused: {error}");
        let Some(to) = event.conn().filter(|c| self.is_mine(*c)) else {
            return;
        };
        let Some(conn) = self.conns.get_mut(&to.slot) else { return };
        let mut actions = Vec::new();
        conn.connection.session().on_too_long(&self.state, &mut actions);
        for action in actions {
            if let Action::Reply(bytes) = action {
                self.answer(to.slot, bytes);
            }
        }
    }

    /// Applies the log up to this worker's own last event, so that its
    /// client's next line sees its effect, unless a reader falls behind on
    /// the way (input is not admitted until then anyway). Waits a bounded
    /// while for earlier sequences other writers have claimed but not yet
    /// published; if they are still missing, the loop retries next turn.
    fn catch_up(&mut self) {
        // In a cluster an own event comes back after a round trip to the
        // network: the worker goes on with its loop, and the bridge's
        // append wakes it.
        if self.space.clustered() {
            self.drain_log();
            return;
        }
        let mut rounds = 0u32;
        while !self.own_applied() && rounds < CATCH_UP_ROUNDS {
            self.drain_log();
            if self.own_applied() || self.flow.holding() {
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
}
