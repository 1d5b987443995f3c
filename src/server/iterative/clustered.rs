//! The iterative model as a cluster node (see `server::cluster`): its
//! events are ordered by the network, and applied by the bridge's thread.
//!
//! Alone, a client thread applies its events to the directory itself,
//! under the lock. In a cluster an event is first proposed to the bridge
//! (a channel and a bell), and the bridge's thread applies what the stream
//! orders, in stream order, under the same lock, delivering to every
//! outbox as a client thread would. The proposing thread waits for its
//! event to come back (read-your-writes across the network), one event at
//! a time, so a line's replies and its events' answers keep the order of
//! its actions, as they do alone.
//!
//! What the bridge sends a connection whose thread is waiting goes into
//! that connection's **mailbox**, in order, each piece marked as the
//! answer to the line or not; the thread empties it once its event is
//! applied, passing the answer through its labeler (labeled-response) and
//! queueing the rest as it is. So nothing overtakes anything on its way to
//! a client, and the labeler stays where it lives, with the connection.
//!
//! The bridge holds back (and stops pulling from the stream) while the
//! flow gate holds: readers behind slow the network's deliveries as they
//! slow the node's own clients.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::time::Duration;

use tokio::sync::Notify;

use crate::chat::{ConnId, Event, Listing, Protocol};
use crate::server::cluster::{BridgeSide, Proposal};
use crate::server::connection::{Connection, DisconnectReason};
use crate::server::node::NodeSpace;
use crate::server::pool::entry::Origin;

use super::{Hub, Shared, Stamp, ToFlush};

/// How a client thread reaches the bridge.
pub(super) struct Link {
    pub(super) space: NodeSpace,
    proposals: Sender<Proposal>,
    bell: Arc<Notify>,
    next_id: AtomicU64,
}

/// What the bridge sent a connection while its thread waited for its own
/// event to come back.
#[derive(Default)]
pub(super) struct Mailbox {
    /// In order; `true` marks the answer to the thread's line.
    items: Vec<(Arc<[u8]>, bool)>,
    /// Long replies it started (a joiner's NAMES).
    listings: Vec<Listing>,
    /// Whether the thread's event has been applied.
    applied: bool,
}

impl Link {
    /// A link and the bridge's ends of it.
    pub(super) fn new(space: NodeSpace) -> (Link, Receiver<Proposal>, Arc<Notify>) {
        let (proposals, received) = std::sync::mpsc::channel();
        let bell = Arc::new(Notify::new());
        let link = Link { space, proposals, bell: bell.clone(), next_id: AtomicU64::new(0) };
        (link, received, bell)
    }

    /// Hands `event` to the bridge to be ordered.
    pub(super) fn propose(&self, event: Event) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        // The origin names only the node run: the waiting thread is found
        // by the event's connection (see `Mailbox`).
        let origin = Origin { cell: 0, generation: 0 };
        if self.proposals.send(Proposal { id, origin, event }).is_ok() {
            self.bell.notify_one();
        }
    }
}

impl Hub {
    /// Opens `conn`'s mailbox: until it is taken, what the bridge sends
    /// `conn` waits in it.
    pub(super) fn open_mailbox(&mut self, conn: ConnId) {
        self.mailboxes.insert(conn, Mailbox::default());
    }

    /// Queues bytes for `to`, into its mailbox if its thread waits.
    fn send_or_hold(&mut self, to: ConnId, bytes: Arc<[u8]>, answer: bool, ctx: &mut Sending<'_>) {
        match self.mailboxes.get_mut(&to) {
            Some(mailbox) => mailbox.items.push((bytes, answer)),
            None => self.send(to, bytes, ctx.at, true, ctx.flush, ctx.overflowed),
        }
    }
}

struct Sending<'a> {
    at: Stamp,
    flush: &'a mut ToFlush,
    overflowed: &'a mut Vec<ConnId>,
}

/// Waits, after proposing one of `connection`'s events, until the bridge
/// has applied it, then sends what the bridge held for the connection in
/// order, the answer labeled; returns the long replies it started. Gives
/// up if the connection is closing (shutdown, KILL): nothing more will be
/// sent to it.
pub(super) fn await_applied<'a>(
    shared: &'a Shared,
    mut hub: std::sync::MutexGuard<'a, Hub>,
    conn: ConnId,
) -> std::sync::MutexGuard<'a, Hub> {
    loop {
        let applied = hub.mailboxes.get(&conn).is_none_or(|m| m.applied);
        let closing = hub.outboxes.get(&conn).is_none_or(|o| o.is_closing());
        if applied || closing {
            return hub;
        }
        hub = shared
            .answered
            .wait_timeout(hub, Duration::from_millis(100))
            .map_or_else(|p| p.into_inner().0, |r| r.0);
    }
}

impl Hub {
    /// Forgets what the bridge sent `conn` while its thread waited: the
    /// answer to an event it is about to propose again.
    pub(super) fn discard_mailbox(&mut self, conn: ConnId) {
        self.mailboxes.remove(&conn);
    }
}

/// Waits for the connection's event to come back applied, then sends
/// what its mailbox holds.
pub(super) fn await_answer<'a>(
    shared: &'a Shared,
    mut hub: std::sync::MutexGuard<'a, Hub>,
    connection: &mut Connection,
    flush: &mut ToFlush,
) -> (std::sync::MutexGuard<'a, Hub>, Vec<Listing>) {
    let conn = connection.session().conn();
    hub = await_applied(shared, hub, conn);
    let Some(mailbox) = hub.mailboxes.remove(&conn) else { return (hub, Vec::new()) };
    let at = Stamp::now();
    let mut overflowed = Vec::new();
    for (bytes, answer) in mailbox.items {
        let bytes: Arc<[u8]> =
            if answer && connection.is_labeling() { connection.label_response(&bytes).into() } else { bytes };
        if !bytes.is_empty() {
            hub.send(conn, bytes, at, !answer, flush, &mut overflowed);
        }
    }
    hub.drop_overflowed(overflowed, shared, flush);
    (hub, mailbox.listings)
}

/// The iterative model's side of the bridge.
pub(super) struct IterativeSide {
    shared: Arc<Shared>,
    proposals: Receiver<Proposal>,
    bell: Arc<Notify>,
}

impl IterativeSide {
    pub(super) fn new(shared: Arc<Shared>, proposals: Receiver<Proposal>, bell: Arc<Notify>) -> Self {
        IterativeSide { shared, proposals, bell }
    }
}

impl BridgeSide for IterativeSide {
    fn next_proposal(&mut self) -> Option<Proposal> {
        self.proposals.try_recv().ok()
    }

    fn deliver(&mut self, _seq: u64, origin: Option<Origin>, event: &Event) -> bool {
        if self.shared.gate.holding() {
            return false;
        }
        let shared = &*self.shared;
        let mut flush = ToFlush::default();
        let mut hub = shared.hub();
        let space = shared.link.as_ref().map_or(NodeSpace::ALONE, |l| l.space);
        if let Event::NodeLost { node, epoch, .. } = event
            && (*node, *epoch) == (space.node, space.epoch)
        {
            hub.close_all(shared, &DisconnectReason::NodeLost, &mut flush);
        }
        // This node run's own event: its connection's thread waits for it.
        let actor = origin.and(event.conn()).filter(|c| hub.mailboxes.contains_key(c));
        let deliveries = hub.apply_and_render(event);
        let (mut overflowed, at) = (Vec::new(), Stamp::now());
        let mut ctx = Sending { at, flush: &mut flush, overflowed: &mut overflowed };
        for d in deliveries.items {
            let answer = Some(d.to) == actor && !d.received;
            hub.send_or_hold(d.to, d.bytes, answer, &mut ctx);
        }
        for (to, listing) in deliveries.listings {
            if let Some(mailbox) = hub.mailboxes.get_mut(&to) {
                mailbox.listings.push(listing);
            }
        }
        hub.close_killed(&deliveries.closes, shared, &mut flush);
        if let Some(actor) = actor
            && let Some(mailbox) = hub.mailboxes.get_mut(&actor)
        {
            mailbox.applied = true;
            shared.answered.notify_all();
        }
        shared.gate.set_receivers(hub.receivers.count(at.ms));
        hub.drop_overflowed(overflowed, shared, &mut flush);
        drop(hub);
        flush.flush(&shared.flusher);
        true
    }

    fn notice(&mut self, text: &str) -> bool {
        let shared = &*self.shared;
        let mut flush = ToFlush::default();
        let mut hub = shared.hub();
        let server = hub.state.info().name.clone();
        let (at, mut overflowed) = (Stamp::now(), Vec::new());
        let mut conns: Vec<ConnId> = hub.outboxes.keys().copied().collect();
        conns.sort();
        for conn in conns {
            let user = hub.state.user(conn);
            let protocol = user.map(|u| u.protocol).or(hub.unregistered.get(&conn).map(|u| u.0));
            let nick = user.map_or("*", |u| u.nick.as_str());
            let line = notice_line(&server, protocol, nick, text);
            hub.send(conn, line.into(), at, false, &mut flush, &mut overflowed);
        }
        hub.drop_overflowed(overflowed, shared, &mut flush);
        drop(hub);
        flush.flush(&shared.flusher);
        true
    }

    fn wait(&mut self, at_most: Duration) -> impl Future<Output = ()> {
        let bell = self.bell.clone();
        async move {
            let _ = tokio::time::timeout(at_most, bell.notified()).await;
        }
    }
}

/// `*** text` as a client of `protocol` is told things by the server.
fn notice_line(server: &str, protocol: Option<Protocol>, nick: &str, text: &str) -> Vec<u8> {
    let mut line = Vec::new();
    let text = format!("*** {text}");
    match protocol {
        Some(Protocol::Plain) => crate::chat::reply::plain(&mut line, &text),
        _ => crate::wire::message::write_line(&mut line, Some(server), "NOTICE", &[nick], Some(&text)),
    }
    line
}

/// Mailboxes by connection, for the hub.
pub(super) type Mailboxes = HashMap<ConnId, Mailbox>;
