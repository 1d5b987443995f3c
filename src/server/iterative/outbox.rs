//! The iterative model's outbound side: a thread-safe sendq per connection
//! and one flusher thread for the sockets that could not take everything.
//!
//! How writes are done, and why: the thread that produces a delivery (any
//! client's reader thread, under the directory lock) only queues the bytes;
//! once the lock is released it writes them itself with `MSG_DONTWAIT`, a
//! non-blocking send on an otherwise blocking socket. Nearly always the
//! kernel takes everything and no other thread is involved. When a socket
//! would block, the outbox is *parked*: the flusher thread waits for it to
//! become writable (epoll through mio) and drains it, and until then other
//! threads only append. So no thread ever blocks on a slow client's socket,
//! per-recipient order is the order deliveries were queued under the lock,
//! and the cost is one extra thread in all rather than a writer per client.
//! A client whose queue passes its limit is sent a closing line and shut
//! down, with a grace period for that line to get out; once it is out the
//! write side is shut (the client sees the line, then end of stream) and
//! the client's own thread reads out what it still sends before closing,
//! so the close is never a reset that would throw the line away.
//!
//! Flow control (see `flow`) lives here too, in a [`FlowGate`] every outbox
//! reports to: an outbox whose queue passes the behind mark while the
//! server still waits for it holds the gate shut, and every client thread
//! waits at the gate before handling its next line, so senders stop being
//! read and TCP slows them. Persistently behind outboxes are exactly the
//! parked ones (a queue only stays long when the socket would block), so
//! the flusher, which owns them, is what re-evaluates them every
//! `flow::TICK` and cuts loose the ones that hold everyone up.

use std::collections::HashMap;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};

use crate::server::connection::CLOSE_GRACE;
use crate::server::flow::{self, Census, Change, ConnFlow, Policy};
use crate::server::listener::poll_events;
use crate::server::sendq::{Flush, Overflow, SendQueue};
use crate::server::transport::stream::Shared as SharedStream;

/// The iterative model's flow state, shared by every outbox and client
/// thread: how many outboxes hold the flow, how many are behind, how many
/// were sent to lately, and a condition variable for the threads that wait.
pub struct FlowGate {
    policy: Policy,
    holders: AtomicUsize,
    behind: AtomicUsize,
    receivers: AtomicUsize,
    lock: Mutex<()>,
    released: Condvar,
    /// The flusher's waker: a gate that shuts must start its ticks.
    flusher: std::sync::OnceLock<Arc<Waker>>,
}

impl FlowGate {
    pub fn new(policy: Policy) -> FlowGate {
        FlowGate {
            policy,
            holders: AtomicUsize::new(0),
            behind: AtomicUsize::new(0),
            receivers: AtomicUsize::new(0),
            lock: Mutex::new(()),
            released: Condvar::new(),
            flusher: std::sync::OnceLock::new(),
        }
    }

    pub fn holding(&self) -> bool {
        self.holders.load(Ordering::Acquire) > 0
    }

    pub fn census(&self) -> Census {
        Census {
            behind: self.behind.load(Ordering::Relaxed),
            receivers: self.receivers.load(Ordering::Relaxed),
        }
    }

    /// Records how many connections were sent to lately.
    pub fn set_receivers(&self, count: usize) {
        self.receivers.store(count, Ordering::Relaxed);
    }

    fn apply(&self, change: Change) {
        if change.is_none() {
            return;
        }
        let mut release = false;
        if change.behind != 0 {
            let was = self.behind.fetch_add(change.behind as usize, Ordering::AcqRel);
            release |= change.behind < 0 && was > 0;
        }
        if change.holds != 0 {
            let was = self.holders.fetch_add(change.holds as usize, Ordering::AcqRel);
            tracing::debug!(holders = was.wrapping_add(change.holds as usize), "flow gate");
            release |= change.holds < 0 && was == 1;
            if change.holds > 0
                && was == 0
                && let Some(waker) = self.flusher.get()
            {
                let _ = waker.wake();
            }
        }
        if release {
            // Under the lock, so a thread between its check and its wait
            // cannot miss this.
            let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
            self.released.notify_all();
        }
    }

    /// Waits while the flow is held, or while `outbox`'s own client is
    /// behind (it may not talk while it is not listening); returns at once
    /// if the outbox is closing.
    pub fn wait(&self, outbox: &Outbox) {
        let mut guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        while (self.holding() || outbox.is_behind()) && !outbox.is_closing() {
            // The timeout only guards against a missed release; releases notify.
            guard = match self.released.wait_timeout(guard, Duration::from_millis(50)) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
    }
}

/// What became of a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    Queued,
    /// The sendq is full: the caller must drop this client.
    Overflow,
    /// The connection is closing; the bytes were not queued.
    Closed,
}

#[derive(Debug)]
struct Inner {
    queue: SendQueue,
    /// The flusher is draining this outbox; others only append.
    parked: bool,
    /// A closing line is queued; shut the write side once it is written.
    closing: bool,
    /// Nothing more is written (the closing line is out, or the socket failed).
    closed: bool,
    flow: ConnFlow,
}

#[derive(Debug)]
pub struct Outbox {
    stream: SharedStream,
    inner: Mutex<Inner>,
    /// Set while this outbox is on some thread's to-flush list.
    listed: AtomicBool,
    gate: Arc<FlowGate>,
    /// Mirrors `inner.flow.is_behind()` and `inner.closing || inner.closed`
    /// for the gate's waiters, which must not take the inner lock: a thread
    /// holding it takes the gate's lock to report a change.
    behind: AtomicBool,
    ending: AtomicBool,
    /// The receiver window it was last counted in (`flow::Receivers`);
    /// touched only under the directory lock.
    pub receiver_window: AtomicU32,
}

impl std::fmt::Debug for FlowGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowGate").field("census", &self.census()).finish()
    }
}

impl Outbox {
    pub fn new(stream: SharedStream, sendq_bytes: usize, gate: Arc<FlowGate>) -> Self {
        Outbox {
            stream,
            inner: Mutex::new(Inner {
                queue: SendQueue::new(sendq_bytes),
                parked: false,
                closing: false,
                closed: false,
                flow: ConnFlow::default(),
            }),
            listed: AtomicBool::new(false),
            gate,
            behind: AtomicBool::new(false),
            ending: AtomicBool::new(false),
            receiver_window: AtomicU32::new(0),
        }
    }

    pub fn is_behind(&self) -> bool {
        self.behind.load(Ordering::Acquire)
    }

    /// Re-reads the queue's length into the flow standing.
    fn account(&self, inner: &mut Inner, now: Instant) {
        let change = inner.flow.queued(inner.queue.queued(), &self.gate.policy, now);
        self.settle_flow(inner, change);
    }

    fn settle_flow(&self, inner: &Inner, change: Change) {
        if !change.is_none() {
            self.behind.store(inner.flow.is_behind(), Ordering::Release);
            self.gate.apply(change);
        }
    }

    /// This outbox is closing: it stops counting for flow control.
    fn leave_flow(&self, inner: &mut Inner) {
        self.ending.store(true, Ordering::Release);
        let change = inner.flow.leave();
        self.settle_flow(inner, change);
    }

    /// Accounts `elapsed` of holding the flow, if this outbox holds it (see
    /// `flow::ConnFlow::held`); called by the flusher while the gate is shut.
    fn held(&self, elapsed: Duration, census: Census, now_ms: u32) {
        let mut inner = self.lock();
        if !inner.flow.holds() || inner.closing {
            return;
        }
        let lag = inner.queue.lag(now_ms);
        let change = inner.flow.held(elapsed, lag, census, &self.gate.policy);
        if change.holds < 0 {
            tracing::info!(?lag, ?census, "no longer waiting for a slow reader");
        }
        self.settle_flow(&inner, change);
    }

    /// Bytes queued and not yet written.
    pub fn queued(&self) -> usize {
        self.lock().queue.queued()
    }

    /// The flow policy whose marks a long reply is paced by.
    pub fn policy(&self) -> &Policy {
        &self.gate.policy
    }

    /// The socket, for the owner's (blocking) reads.
    pub fn stream(&self) -> &SharedStream {
        &self.stream
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues bytes (queued at `stamp`, `flow::millis`; `now` is the same
    /// moment); the caller flushes after releasing the directory lock.
    pub fn enqueue(&self, bytes: Arc<[u8]>, stamp: u32, now: Instant) -> Enqueued {
        let mut inner = self.lock();
        if inner.closing || inner.closed {
            return Enqueued::Closed;
        }
        match inner.queue.push(bytes, stamp) {
            Ok(()) => {
                self.account(&mut inner, now);
                Enqueued::Queued
            }
            Err(Overflow) => Enqueued::Overflow,
        }
    }

    /// Drops what the client has not started to receive, queues its closing
    /// line and closes once that is written (or the grace period ends).
    /// The caller flushes afterwards, as after any enqueue.
    pub fn begin_close(self: &Arc<Self>, closing_line: Vec<u8>, flusher: &Flusher) {
        let mut inner = self.lock();
        if inner.closing || inner.closed {
            return;
        }
        inner.queue.discard_unstarted();
        inner.queue.push_unbounded(closing_line.into(), flow::millis());
        inner.closing = true;
        self.leave_flow(&mut inner);
        if inner.parked {
            drop(inner);
            flusher.park(self.clone(), Some(Instant::now() + CLOSE_GRACE));
        }
    }

    /// Closes once everything already queued is written.
    pub fn close_when_flushed(self: &Arc<Self>, flusher: &Flusher) {
        let mut inner = self.lock();
        inner.closing = true;
        self.leave_flow(&mut inner);
        if inner.parked {
            drop(inner);
            flusher.park(self.clone(), Some(Instant::now() + CLOSE_GRACE));
        }
    }

    pub fn is_closing(&self) -> bool {
        self.ending.load(Ordering::Acquire)
    }

    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Marks this outbox as needing a flush; true if the caller should add
    /// it to its to-flush list (it was not listed yet).
    pub fn mark_listed(&self) -> bool {
        !self.listed.swap(true, Ordering::AcqRel)
    }

    /// Writes what it can without blocking; parks the rest with the flusher.
    pub fn flush(self: &Arc<Self>, flusher: &Flusher) {
        self.listed.store(false, Ordering::Release);
        let mut inner = self.lock();
        if inner.parked || inner.closed {
            return;
        }
        match self.write_queued(&mut inner) {
            Some(Flush::Blocked) => {
                inner.parked = true;
                let deadline = inner.closing.then(|| Instant::now() + CLOSE_GRACE);
                drop(inner);
                flusher.park(self.clone(), deadline);
            }
            Some(Flush::Drained) | None => {}
        }
    }

    /// Shuts the socket (waking its reader thread) and forgets the queue.
    pub fn shut(&self) {
        let mut inner = self.lock();
        self.shut_locked(&mut inner);
    }

    fn shut_locked(&self, inner: &mut Inner) {
        inner.closed = true;
        inner.queue.discard_unstarted();
        self.leave_flow(inner);
        self.stream.shutdown();
    }

    /// One drain attempt; `None` when the socket failed or the outbox closed.
    fn write_queued(&self, inner: &mut Inner) -> Option<Flush> {
        let written = inner.queue.write_to(&mut self.stream.writer());
        if !inner.closing {
            self.account(inner, Instant::now());
        }
        match written {
            Ok(Flush::Drained) => {
                if inner.closing {
                    // The closing line is out: end of stream after it. The
                    // client's thread reads out the rest and closes.
                    inner.closed = true;
                    self.stream.shutdown_write();
                    return None;
                }
                Some(Flush::Drained)
            }
            Ok(Flush::Blocked) => Some(Flush::Blocked),
            Err(_) => {
                self.shut_locked(inner);
                None
            }
        }
    }
}

/// Hands parked outboxes to the flusher thread.
#[derive(Clone)]
pub struct Flusher {
    parked: Sender<(Arc<Outbox>, Option<Instant>)>,
    waker: Arc<Waker>,
}

impl Flusher {
    /// Starts the flusher thread, which also keeps `gate`'s holders honest.
    pub fn start(gate: Arc<FlowGate>) -> io::Result<Flusher> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKE)?);
        let _ = gate.flusher.set(waker.clone());
        let (parked, incoming) = channel();
        std::thread::Builder::new()
            .name("flusher".into())
            .spawn(move || run_flusher(poll, incoming, &gate))?;
        Ok(Flusher { parked, waker })
    }

    fn park(&self, outbox: Arc<Outbox>, deadline: Option<Instant>) {
        if self.parked.send((outbox, deadline)).is_ok() {
            let _ = self.waker.wake();
        }
    }
}

const WAKE: Token = Token(usize::MAX);

struct Parked {
    outbox: Arc<Outbox>,
    deadline: Option<Instant>,
}

fn run_flusher(mut poll: Poll, incoming: Receiver<(Arc<Outbox>, Option<Instant>)>, gate: &FlowGate) {
    let mut events = Events::with_capacity(256);
    // Keyed by the outbox's address, which is stable while we hold it, so a
    // second park of the same outbox (to set a closing deadline) finds it.
    let mut parked: HashMap<Token, Parked> = HashMap::new();
    let mut last_tick = Instant::now();
    loop {
        let now = Instant::now();
        let mut timeout =
            parked.values().filter_map(|p| p.deadline).min().map(|d| d.saturating_duration_since(now));
        if gate.holding() {
            timeout = Some(timeout.map_or(flow::TICK, |t| t.min(flow::TICK)));
        }
        if let Err(e) = poll_events(&mut poll, &mut events, timeout) {
            tracing::error!("flusher poll failed: {e}");
            return;
        }
        let mut ready: Vec<Token> = events.iter().map(|e| e.token()).filter(|t| *t != WAKE).collect();
        loop {
            match incoming.try_recv() {
                Ok((outbox, deadline)) => {
                    let token = Token(Arc::as_ptr(&outbox) as usize);
                    if let Some(p) = parked.get_mut(&token) {
                        p.deadline = p.deadline.or(deadline);
                        continue;
                    }
                    let fd = outbox.stream.socket().as_raw_fd();
                    if poll.registry().register(&mut SourceFd(&fd), token, Interest::WRITABLE).is_err() {
                        outbox.shut();
                        continue;
                    }
                    parked.insert(token, Parked { outbox, deadline });
                    // The socket may have drained between the failed write
                    // and the registration; one more try costs little.
                    ready.push(token);
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return,
            }
        }
        let now = Instant::now();
        for p in parked.values() {
            if p.deadline.is_some_and(|d| d <= now) {
                p.outbox.shut();
            }
        }
        // Holders that persist are parked here: account their holding.
        let elapsed = now.saturating_duration_since(last_tick);
        if !gate.holding() {
            last_tick = now;
        } else if elapsed >= flow::TICK {
            last_tick = now;
            let (census, now_ms) = (gate.census(), flow::millis());
            for p in parked.values() {
                p.outbox.held(elapsed.min(4 * flow::TICK), census, now_ms);
            }
        }
        for token in ready {
            let Some(p) = parked.get(&token) else {
                continue;
            };
            let mut inner = p.outbox.lock();
            if !inner.closed && p.outbox.write_queued(&mut inner) == Some(Flush::Drained) {
                inner.parked = false;
            }
        }
        parked.retain(|_, p| {
            let inner = p.outbox.lock();
            let keep = inner.parked && !inner.closed;
            drop(inner);
            if !keep {
                let fd = p.outbox.stream.socket().as_raw_fd();
                let _ = poll.registry().deregister(&mut SourceFd(&fd));
            }
            keep
        });
    }
}
