//! One iterative client's whole life, on its own thread: reading lines at
//! the pace flood control allows, serving them under the directory lock,
//! streaming long replies as the client reads them, the PINGs and timeouts
//! `liveness` calls for, and a lingering close.
//!
//! Everything here blocks only this client's thread: in `recv` (with a
//! timeout set to the next thing due), at the flow gate, or while a long
//! reply waits for the client to read. No lock is held while blocked.

use std::io::ErrorKind;
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use socket2::SockRef;

use super::outbox::{Enqueued, Outbox};
use crate::chat::{Action, ConnId, Listing, Session};
use crate::server::connection::CLOSE_GRACE;
use crate::server::connection::flood::Penalty;
use crate::server::connection::liveness::{self, Due, Liveness, Standing};
use crate::server::unix_now;
use crate::wire::message::write_line;
use crate::wire::{Frame, LineReader};

use super::{Shared, Stamp, ToFlush};

/// How often a thread streaming a long reply looks at its client's queue.
const LISTING_POLL: Duration = Duration::from_millis(2);

/// How a client thread's serving loop ended.
enum End {
    /// The client went away (end of stream, read error): nothing to tell it.
    Gone(String),
    /// The server ends it for this reason: the client gets its closing line.
    Dropped(String),
    /// It is closing already (its QUIT, or another thread dropped it).
    Closing,
}

/// One client's whole life, on its own thread. Returns its outbox if the
/// connection is closing (rather than closed), for [`linger`].
pub(super) fn serve_client(shared: &Shared, stream: TcpStream, conn: ConnId) -> Option<Arc<Outbox>> {
    let host = stream.peer_addr().map_or_else(|_| "unknown".into(), |a| a.ip().to_string());
    let config = &shared.config;
    // Plain clients are never PINGed: TCP finds their dead peers.
    let _ = SockRef::from(&stream).set_tcp_keepalive(&liveness::keepalive(config.ping_interval));
    // One descriptor per client: the outbox owns the socket, and this
    // thread reads through a shared reference to it.
    let outbox = Arc::new(Outbox::new(stream, config.sendq_bytes, shared.gate.clone()));
    let mut session = Session::new(conn, host.clone(), config.info.clone());
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

    let timeouts = config.timeouts();
    let flood = config.flood.as_ref();
    let mut liveness = Liveness::new(Instant::now());
    let mut penalty = Penalty::new();
    let mut standing = Standing::Unregistered;
    // On the directory's list of connections that speak but have not
    // registered (for their closing line's protocol).
    let mut listed_unregistered = false;
    // Over its flood allowance: its lines wait until then, it is still read.
    let mut waiting_until: Option<Instant> = None;
    let mut reader = LineReader::default();
    let mut actions = Vec::new();
    let mut listings = Vec::new();
    let mut read_half = outbox.stream();
    let mut read_timeout = ReadTimeout::default();
    let end = 'serve: loop {
        while reader.has_frames() {
            let now = Instant::now();
            if let Err(until) = penalty.admit(now, flood) {
                waiting_until = Some(until);
                break;
            }
            let Some(frame) = reader.next_frame() else { break };
            liveness.heard(now);
            // Not while a reader the server waits for is behind, or our own
            // client is: this line, and all after it, wait in the kernel.
            shared.gate.wait(&outbox);
            if outbox.is_closing() {
                break 'serve End::Closing;
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
                    Action::Event(event) => {
                        let started = hub.apply(&event, shared, &mut to_flush);
                        listings.extend(started.into_iter().filter(|(to, _)| *to == conn).map(|(_, l)| l));
                    }
                    Action::Listing(listing) => listings.push(listing),
                    Action::Close => close = true,
                }
                // A long reply goes out before the line's next action, so
                // replies keep the order of requests (JOIN #a,#b).
                if !listings.is_empty() {
                    drop(hub);
                    to_flush.flush(&shared.flusher);
                    for listing in listings.drain(..) {
                        if let Err(end) = stream_listing(shared, &outbox, conn, listing) {
                            break 'serve end;
                        }
                    }
                    hub = shared.hub();
                }
            }
            // Only registering changes the standing (a user stays one until
            // its connection ends), so nothing is looked up once registered.
            if standing == Standing::Unregistered {
                standing = liveness::standing(&session, &hub.state);
                match (standing, session.protocol()) {
                    (Standing::Unregistered, Some(protocol)) if !listed_unregistered => {
                        hub.unregistered.insert(conn, (protocol, host.clone()));
                        listed_unregistered = true;
                    }
                    (Standing::Irc | Standing::Plain, _) if listed_unregistered => {
                        hub.unregistered.remove(&conn);
                        listed_unregistered = false;
                    }
                    _ => {}
                }
            }
            drop(hub);
            to_flush.flush(&shared.flusher);
            if close {
                outbox.close_when_flushed(&shared.flusher);
                to_flush.add(&outbox);
                to_flush.flush(&shared.flusher);
                break 'serve End::Closing;
            }
        }

        // Read until the next thing due: the end of a flood wait, a PING or
        // a timeout; never longer than a ping interval, so a connection
        // another thread closed is noticed.
        let now = Instant::now();
        let due = [waiting_until, liveness.next_check(standing, &timeouts)].into_iter().flatten().min();
        let wait = due.map_or(config.ping_interval, |at| at.saturating_duration_since(now));
        read_timeout.set(read_half, wait.min(config.ping_interval));
        match reader.read_from(&mut read_half) {
            Ok(0) => break End::Gone("Connection closed".into()),
            Ok(_) => {
                if waiting_until.is_some() && Penalty::is_excess(reader.held(), flood) {
                    shared.flood_drops.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(?conn, "dropping client: excess flood");
                    break End::Dropped("Excess Flood".into());
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
            Err(e) => break End::Gone(format!("Read error: {e}")),
        }
        if outbox.is_closing() {
            break End::Closing;
        }
        let now = Instant::now();
        if waiting_until.is_some_and(|until| until <= now) {
            waiting_until = None;
        }
        match liveness.check(now, standing, &timeouts) {
            Due::Nothing => {}
            Due::Close(reason) => break End::Dropped(reason),
            Due::Ping => {
                let mut ping = Vec::new();
                write_line(&mut ping, None, "PING", &[], Some(&config.info.name));
                // Queued under the directory lock, like every delivery.
                let hub = shared.hub();
                let at = Stamp::now();
                if outbox.enqueue(ping.into(), at.ms, at.now) == Enqueued::Queued {
                    to_flush.add(&outbox);
                }
                drop(hub);
                to_flush.flush(&shared.flusher);
            }
        }
    };

    let mut hub = shared.hub();
    let reason = match &end {
        End::Gone(reason) | End::Dropped(reason) => reason.as_str(),
        End::Closing => "Closed",
    };
    if let Some(quit) = session.quit_event(&hub.state, reason) {
        hub.apply(&quit, shared, &mut to_flush);
    }
    if let End::Dropped(reason) = &end {
        outbox.begin_close(session.closing_line(reason), &shared.flusher);
        to_flush.add(&outbox);
    }
    hub.outboxes.remove(&conn);
    hub.unregistered.remove(&conn);
    drop(hub);
    to_flush.flush(&shared.flusher);
    if outbox.is_closing() {
        return Some(outbox);
    }
    outbox.shut();
    None
}

/// Sends a long reply (see `chat::listing`) a piece at a time: each piece
/// once the client has read its queue down to the caught-up mark, and no
/// bigger than keeps it under the behind mark, so the asker gets it whole
/// and is never behind for it. A client that reads none of it for the
/// flow's `max_lag` is dropped as a slow consumer.
fn stream_listing(
    shared: &Shared,
    outbox: &Arc<Outbox>,
    conn: ConnId,
    mut listing: Listing,
) -> Result<(), End> {
    let policy = outbox.policy();
    loop {
        let mut lowest = usize::MAX;
        let mut progress_at = Instant::now();
        let queued = loop {
            if outbox.is_closing() {
                return Err(End::Closing);
            }
            let queued = outbox.queued();
            if queued <= policy.caught_up_at {
                break queued;
            }
            if queued < lowest {
                lowest = queued;
                progress_at = Instant::now();
            } else if progress_at.elapsed() > policy.max_lag {
                return Err(End::Dropped("SendQ exceeded".into()));
            }
            std::thread::sleep(LISTING_POLL);
        };
        let mut piece = Vec::new();
        let mut to_flush = ToFlush::default();
        let done = {
            let mut hub = shared.hub();
            let room = policy.behind_at.saturating_sub(queued);
            let done = listing.write_next(&hub.state, conn, &mut piece, room);
            if !piece.is_empty() {
                hub.deliver(conn, piece.into(), shared, &mut to_flush);
            }
            done
        };
        to_flush.flush(&shared.flusher);
        if done {
            return Ok(());
        }
    }
}

/// A socket's read timeout, changed only when it must be: shortened when
/// something is due sooner, lengthened when it has become much too short
/// (each change is a system call, and most reads need none).
#[derive(Default)]
struct ReadTimeout {
    current: Option<Duration>,
}

impl ReadTimeout {
    /// Shortening by less than this is not worth a system call: the read
    /// returns at most this late.
    const SLACK: Duration = Duration::from_millis(50);

    fn set(&mut self, stream: &TcpStream, wanted: Duration) {
        // A zero timeout would mean "block for ever".
        let wanted = wanted.max(Duration::from_millis(1));
        let change = match self.current {
            None => true,
            Some(current) => wanted + Self::SLACK < current || wanted > current * 2,
        };
        if change && stream.set_read_timeout(Some(wanted)).is_ok() {
            self.current = Some(wanted);
        }
    }
}

/// Reads and discards what a closing client still sends until it closes its
/// end (after our closing line and end of stream) or the grace period ends:
/// closing with unread input would reset the connection, and a reset makes
/// the client's kernel discard what it has not yet handed over, the closing
/// line included.
pub(super) fn linger(outbox: &Outbox) {
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
