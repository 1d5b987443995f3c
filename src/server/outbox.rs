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
//! down, with a grace period for that line to get out.

use std::collections::HashMap;
use std::io::{self, IoSlice, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use nix::sys::socket::{MsgFlags, sendmsg};

use crate::server::sendq::{Flush, Overflow, SendQueue};

/// How long a closing client gets to read its last line.
pub const CLOSE_GRACE: Duration = Duration::from_secs(5);

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
    /// A closing line is queued; shut the socket once it is written.
    closing: bool,
    closed: bool,
}

#[derive(Debug)]
pub struct Outbox {
    stream: TcpStream,
    inner: Mutex<Inner>,
    /// Set while this outbox is on some thread's to-flush list.
    listed: AtomicBool,
}

/// Writes with `MSG_DONTWAIT | MSG_NOSIGNAL`: non-blocking for this call
/// only, so the owner's blocking reads are unaffected.
struct DontWait<'a>(&'a TcpStream);

impl Write for DontWait<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL;
        sendmsg::<()>(self.0.as_raw_fd(), bufs, &[], flags, None).map_err(io::Error::from)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Outbox {
    pub fn new(stream: TcpStream, sendq_bytes: usize) -> Self {
        Outbox {
            stream,
            inner: Mutex::new(Inner {
                queue: SendQueue::new(sendq_bytes),
                parked: false,
                closing: false,
                closed: false,
            }),
            listed: AtomicBool::new(false),
        }
    }

    /// The socket, for the owner's (blocking) reads.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues bytes; the caller flushes after releasing the directory lock.
    pub fn enqueue(&self, bytes: Arc<[u8]>) -> Enqueued {
        let mut inner = self.lock();
        if inner.closing || inner.closed {
            return Enqueued::Closed;
        }
        match inner.queue.push(bytes) {
            Ok(()) => Enqueued::Queued,
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
        inner.queue.push_unbounded(closing_line.into());
        inner.closing = true;
        if inner.parked {
            drop(inner);
            flusher.park(self.clone(), Some(Instant::now() + CLOSE_GRACE));
        }
    }

    /// Closes once everything already queued is written.
    pub fn close_when_flushed(self: &Arc<Self>, flusher: &Flusher) {
        let mut inner = self.lock();
        inner.closing = true;
        if inner.parked {
            drop(inner);
            flusher.park(self.clone(), Some(Instant::now() + CLOSE_GRACE));
        }
    }

    pub fn is_closing(&self) -> bool {
        let inner = self.lock();
        inner.closing || inner.closed
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
        if !inner.closed {
            inner.closed = true;
            inner.queue.discard_unstarted();
            let _ = self.stream.shutdown(Shutdown::Both);
        }
    }

    /// One drain attempt; `None` when the socket failed or the outbox closed.
    fn write_queued(&self, inner: &mut Inner) -> Option<Flush> {
        match inner.queue.write_to(&mut DontWait(&self.stream)) {
            Ok(Flush::Drained) => {
                if inner.closing {
                    self.shut_locked(inner);
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
    /// Starts the flusher thread.
    pub fn start() -> io::Result<Flusher> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKE)?);
        let (parked, incoming) = channel();
        std::thread::Builder::new().name("flusher".into()).spawn(move || run_flusher(poll, incoming))?;
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

fn run_flusher(mut poll: Poll, incoming: Receiver<(Arc<Outbox>, Option<Instant>)>) {
    let mut events = Events::with_capacity(256);
    // Keyed by the outbox's address, which is stable while we hold it, so a
    // second park of the same outbox (to set a closing deadline) finds it.
    let mut parked: HashMap<Token, Parked> = HashMap::new();
    loop {
        let now = Instant::now();
        let timeout =
            parked.values().filter_map(|p| p.deadline).min().map(|d| d.saturating_duration_since(now));
        if let Err(e) = poll.poll(&mut events, timeout)
            && e.kind() != io::ErrorKind::Interrupted
        {
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
                    let fd = outbox.stream.as_raw_fd();
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
                let fd = p.outbox.stream.as_raw_fd();
                let _ = poll.registry().deregister(&mut SourceFd(&fd));
            }
            keep
        });
    }
}
