//! One iterative client's whole life, on its own thread: reading lines at
//! the pace flood control allows, serving them under the directory lock,
//! streaming long replies as the client reads them, the PINGs and timeouts
//! its `Connection` calls for, and a lingering close.
//!
//! Everything here blocks only this client's thread: in `recv` (with a
//! timeout set to the next thing due), at the flow gate, or while a long
//! reply waits for the client to read. No lock is held while blocked.

use std::io::ErrorKind;
use std::net::TcpStream;
use std::os::fd::AsFd;
use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use socket2::SockRef;

use crate::chat::{Action, ConnId, Event, Listing, Nick, ServerInfo, Session};
use crate::server::connection::{
    CLOSE_GRACE, Connection, DisconnectReason, Limits, LinePoll, TimeoutOutcome, Transmit, liveness,
};
use crate::server::reload::Rehash;
use crate::server::transport::Layers;
use crate::server::transport::stream::Shared as SharedStream;
use crate::server::unix_now_ms;

use super::clustered::{await_answer, await_applied};
use super::outbox::{Enqueued, Flusher, Outbox};
use super::{Hub, Shared, Stamp, ToFlush};

/// Bytes read from the client at a time.
const READ_CHUNK: usize = 4096;
/// The longest a registration waits for a nick's holder that has hung up
/// to be quit by its thread (see [`after_leaving_holder`]).
const HOLDER_PATIENCE: Duration = Duration::from_secs(1);
/// The longest a registration waits for a holder from the same address to
/// hang up: its close may reach the server after the new connection's
/// lines (on a loaded machine the kernel does not order packets of two
/// sockets), and then nothing yet says it is leaving.
const RECONNECT_GRACE: Duration = Duration::from_millis(250);
/// The same for a holder on another node of the network.
const REMOTE_GRACE: Duration = crate::server::cluster::REMOTE_HOLDER_PATIENCE;
/// How often it looks meanwhile.
const HOLDER_POLL: Duration = Duration::from_millis(1);

/// How often a thread streaming a long reply looks at its client's queue.
const LISTING_POLL: Duration = Duration::from_millis(2);

/// How a client thread's serving loop ended: for a reason, or (`None`)
/// because it is closing already (its QUIT, or another thread dropped it).
type End = Option<DisconnectReason>;

/// One client's whole life, on its own thread, under the settings `info`
/// (the directory's when it was accepted). Returns its outbox if the
/// connection is closing (rather than closed), for [`linger`].
pub(super) fn serve_client(
    shared: &Shared,
    stream: TcpStream,
    layers: Option<Layers>,
    conn: ConnId,
    info: Arc<ServerInfo>,
) -> Option<Arc<Outbox>> {
    let host = stream.peer_addr().map_or_else(|_| "unknown".into(), |a| a.ip().to_string());
    let ping_interval = info.connections.ping_interval;
    // Plain clients are never PINGed: TCP finds their dead peers.
    let _ = SockRef::from(&stream).set_tcp_keepalive(&liveness::keepalive(ping_interval));
    // One descriptor per client: the outbox owns the socket, and this
    // thread reads through a shared reference to it.
    let stream = SharedStream::new(stream, layers);
    let outbox = Arc::new(Outbox::new(stream, shared.config.sendq_bytes, shared.gate.clone()));
    let session = Session::new(conn, host.clone(), info.clone());
    let limits = Arc::new(Limits::new(info));
    let mut connection = Connection::new(session, limits, None, Instant::now());
    let mut to_flush = ToFlush::default();
    {
        let mut hub = shared.hub();
        hub.outboxes.insert(conn, outbox.clone());
        send_transmits(&mut connection, &outbox, &shared.flusher, &mut to_flush);
    }
    to_flush.flush(&shared.flusher);

    // On the directory's list of connections that speak but have not
    // registered (for their closing line's protocol).
    let mut listed_unregistered = false;
    let mut actions = Vec::new();
    let mut listings = Vec::new();
    let read_half = outbox.stream();
    let mut read_timeout = ReadTimeout::default();
    let mut scratch = vec![0u8; READ_CHUNK];
    let end: End = 'serve: loop {
        loop {
            let frame = match connection.poll_line(Instant::now()) {
                LinePoll::Line(frame) => frame,
                LinePoll::Empty | LinePoll::WaitUntil(_) => break,
                LinePoll::Drop(reason) => break 'serve Some(reason),
            };
            // Not while a reader the server waits for is behind, or our own
            // client is: this line, and all after it, wait in the kernel.
            shared.gate.wait(&outbox);
            if outbox.is_closing() {
                break 'serve None;
            }
            let mut hub = shared.hub();
            actions.clear();
            connection.handle_line(frame, &hub.state, unix_now_ms(), &mut actions);
            let mut close = false;
            for action in actions.drain(..) {
                match action {
                    Action::Reply(bytes) => hub.answer(&mut connection, bytes, shared, &mut to_flush),
                    Action::Event(event) => {
                        if let Event::Register { nick, host, .. } = &event {
                            hub = after_leaving_holder(shared, hub, nick, host);
                        }
                        match &shared.link {
                            None => {
                                let started =
                                    hub.apply_answering(&event, shared, &mut to_flush, Some(&mut connection));
                                listings.extend(
                                    started.into_iter().filter(|(to, _)| *to == conn).map(|(_, l)| l),
                                );
                            }
                            // The network orders it; the bridge applies it.
                            Some(link) => {
                                hub.open_mailbox(conn);
                                link.propose(event.clone());
                                if let Event::Register { nick, host, .. } = &event {
                                    hub = retry_if_refused_for_remote_holder(
                                        shared, hub, link, &event, nick, host,
                                    );
                                }
                                let started;
                                (hub, started) = await_answer(shared, hub, &mut connection, &mut to_flush);
                                listings.extend(started);
                            }
                        }
                    }
                    Action::Listing(listing) => listings.push(listing),
                    Action::Close => close = true,
                    Action::Rehash => {
                        // The file is read with the directory unlocked;
                        // the settings go in as one locked step.
                        let operator = hub.state.user(conn).map(|u| u.nick.to_string()).unwrap_or_default();
                        drop(hub);
                        let rehash = Rehash::run(&shared.config, &operator);
                        hub = shared.hub();
                        for event in rehash.events(shared.writer()) {
                            hub.commit(&event, shared, &mut to_flush);
                        }
                        let replies = rehash.replies(&hub.state, conn);
                        hub.answer(&mut connection, replies, shared, &mut to_flush);
                    }
                }
                // A long reply goes out before the line's next action, so
                // replies keep the order of requests (JOIN #a,#b).
                if !listings.is_empty() {
                    drop(hub);
                    to_flush.flush(&shared.flusher);
                    for listing in listings.drain(..) {
                        if let Err(end) = stream_listing(shared, &outbox, &mut connection, listing) {
                            break 'serve end;
                        }
                    }
                    hub = shared.hub();
                }
            }
            // The line is answered in full (a closing line included).
            hub.end_answer(&mut connection, shared, &mut to_flush);
            if !connection.is_registered() {
                connection.refresh_standing(&hub.state);
                match (connection.is_registered(), connection.session().protocol()) {
                    (false, Some(protocol)) if !listed_unregistered => {
                        hub.unregistered.insert(conn, (protocol, host.clone()));
                        listed_unregistered = true;
                    }
                    (true, _) if listed_unregistered => {
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
                break 'serve None;
            }
        }

        // Read until the connection's next deadline (the end of a flood
        // wait, a PING, a timeout); never longer than a ping interval, so a
        // connection another thread closed is noticed.
        let now = Instant::now();
        let wait = connection.poll_timeout().map_or(ping_interval, |at| at.saturating_duration_since(now));
        read_timeout.set(read_half.socket(), wait.min(ping_interval));
        let read = read_half.read(&mut scratch);
        // A layer's own answer (a handshake, a pong) the socket did not
        // take at once goes out with the flusher.
        if read_half.holds_output() {
            outbox.flush(&shared.flusher);
        }
        match read {
            Ok(0) => break Some(DisconnectReason::PeerClosed),
            Ok(n) => {
                if let Err(reason) = connection.handle_bytes(&scratch[..n]) {
                    break Some(reason);
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
            Err(e) => break Some(DisconnectReason::from_read_error(&e)),
        }
        if outbox.is_closing() {
            break None;
        }
        match connection.handle_timeout(Instant::now()) {
            TimeoutOutcome::Nothing | TimeoutOutcome::Expired => {}
            TimeoutOutcome::Drop(reason) => break Some(reason),
        }
        if connection.has_transmit() {
            // Queued under the directory lock, like every delivery.
            let hub = shared.hub();
            send_transmits(&mut connection, &outbox, &shared.flusher, &mut to_flush);
            drop(hub);
            to_flush.flush(&shared.flusher);
        }
    };

    if end == Some(DisconnectReason::ExcessFlood) {
        shared.flood_drops.fetch_add(1, Ordering::Relaxed);
        tracing::info!(?conn, "dropping client: excess flood");
    }
    let mut hub = shared.hub();
    let reason = end.unwrap_or(DisconnectReason::Closed);
    if let Some(quit) = connection.quit_event(&hub.state, &reason) {
        hub.commit(&quit, shared, &mut to_flush);
    }
    connection.close(reason, Instant::now());
    send_transmits(&mut connection, &outbox, &shared.flusher, &mut to_flush);
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

/// A client that hangs up and at once reconnects with its nick must get it
/// back (issue 11), but the old connection's thread may not have run since
/// its client hung up (on a busy machine), and its QUIT is applied only
/// when it does. So before a registration is applied, if its nick's holder
/// has hung up (its socket says so: the peer closed, or reset), the lock
/// is let go until that thread has quit it, for at most
/// [`HOLDER_PATIENCE`]. The hang-up itself may not have arrived yet: a
/// holder connected from the registering client's address (a reconnect
/// comes from where the old connection was) is given [`RECONNECT_GRACE`]
/// to show one ([`REMOTE_GRACE`] on another node of the network). A
/// holder elsewhere is refused at once, and any other
/// registration pays one lookup.
fn after_leaving_holder<'a>(
    shared: &'a Shared,
    mut hub: MutexGuard<'a, Hub>,
    nick: &Nick,
    host: &str,
) -> MutexGuard<'a, Hub> {
    let start = Instant::now();
    loop {
        let Some(holder) = hub.state.find_nick(nick.as_str()) else { return hub };
        let outbox = hub.outboxes.get(&holder);
        let leaving = outbox.is_some_and(|outbox| hung_up(outbox.stream().socket()));
        // A holder with no outbox here is another node's: its hang-up comes
        // as its QUIT through the network, so it is given longer.
        let grace = if outbox.is_some() { RECONNECT_GRACE } else { REMOTE_GRACE };
        let same_address = hub.state.user(holder).is_some_and(|user| user.host == host);
        let waited = start.elapsed();
        let wait_more = if leaving { waited < HOLDER_PATIENCE } else { same_address && waited < grace };
        if !wait_more {
            return hub;
        }
        drop(hub);
        std::thread::sleep(HOLDER_POLL);
        hub = shared.hub();
    }
}

/// In a network, this node's replica may not yet have applied the
/// registration of a holder on another node when [`after_leaving_holder`]
/// looks (its client got 001 there, hung up, and reconnected here): the
/// registration proposed here is then refused. So once it comes back, if
/// it was refused for a holder on another node from the same address, the
/// refusal is dropped unsent, the holder is waited for as above, and the
/// registration proposed once more, its outcome told whatever it is.
fn retry_if_refused_for_remote_holder<'a>(
    shared: &'a Shared,
    mut hub: MutexGuard<'a, Hub>,
    link: &super::clustered::Link,
    register: &Event,
    nick: &Nick,
    host: &str,
) -> MutexGuard<'a, Hub> {
    let Some(conn) = register.conn() else { return hub };
    hub = await_applied(shared, hub, conn);
    let refused = hub.state.user(conn).is_none();
    let remote_holder =
        hub.state.find_nick(nick.as_str()).filter(|holder| !hub.outboxes.contains_key(holder));
    let same_address =
        remote_holder.and_then(|holder| hub.state.user(holder)).is_some_and(|u| u.host == host);
    if !refused || !same_address || hub.outboxes.get(&conn).is_none_or(|o| o.is_closing()) {
        return hub;
    }
    hub.discard_mailbox(conn);
    hub = after_leaving_holder(shared, hub, nick, host);
    hub.open_mailbox(conn);
    link.propose(register.clone());
    hub
}

/// Whether the peer of `stream` has closed its end (or reset it): its
/// reader will see the end of stream, whatever data comes before.
fn hung_up(stream: &TcpStream) -> bool {
    // nix names no POLLRDHUP (Linux's "peer closed its end"), and would
    // not decode it in `revents`: asked for nothing else, the socket is
    // ready exactly when it is that, or a hang-up or error (always told).
    let rdhup = PollFlags::from_bits_retain(nix::libc::POLLRDHUP);
    let mut fds = [PollFd::new(stream.as_fd(), rdhup)];
    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(1))
}

/// Queues what the connection itself wants sent: its greeting and PINGs
/// after what is queued, its closing line in place of what the client has
/// not started to receive. The caller holds the directory lock.
fn send_transmits(
    connection: &mut Connection,
    outbox: &Arc<Outbox>,
    flusher: &Flusher,
    to_flush: &mut ToFlush,
) {
    while let Some(transmit) = connection.poll_transmit() {
        match transmit {
            Transmit::Send(bytes) => {
                let at = Stamp::now();
                if outbox.enqueue(bytes.into(), at.ms, at.now) == Enqueued::Queued {
                    to_flush.add(outbox);
                }
            }
            Transmit::Close(line) => {
                outbox.begin_close(line, flusher);
                to_flush.add(outbox);
            }
        }
    }
}

/// Sends a long reply (see `chat::listing`) a piece at a time: each piece
/// once the client has read its queue down to the caught-up mark, and no
/// bigger than keeps it under the behind mark, so the asker gets it whole
/// and is never behind for it. A client that reads none of it for the
/// flow's `max_lag` is dropped as a slow consumer.
fn stream_listing(
    shared: &Shared,
    outbox: &Arc<Outbox>,
    connection: &mut Connection,
    mut listing: Listing,
) -> Result<(), End> {
    let conn = connection.session().conn();
    let policy = outbox.policy();
    loop {
        let mut lowest = usize::MAX;
        let mut progress_at = Instant::now();
        let queued = loop {
            if outbox.is_closing() {
                return Err(None);
            }
            let queued = outbox.queued();
            if queued <= policy.caught_up_at {
                break queued;
            }
            if queued < lowest {
                lowest = queued;
                progress_at = Instant::now();
            } else if progress_at.elapsed() > policy.max_lag {
                return Err(Some(DisconnectReason::SendQExceeded));
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
                hub.answer(connection, piece, shared, &mut to_flush);
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
    let stream = outbox.stream();
    let mut sink = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero()
            || stream.socket().set_read_timeout(Some(left.min(Duration::from_millis(100)))).is_err()
        {
            return;
        }
        match stream.read(&mut sink) {
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
