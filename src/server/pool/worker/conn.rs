//! One client connection of a pool worker, as the event loop sees it: the
//! socket and the sans-IO [`Connection`] it feeds, the bounded sendq with
//! its flow standing, the client's place under `--max-clients`, and the
//! flags that keep the worker's lists (input, dirty, behind) free of
//! duplicates. What the connection's bytes mean, its timers and how it
//! ends are the `Connection`'s; this is only where they meet the socket.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read};
use std::net::Shutdown;
use std::time::Instant;

use mio::net::TcpStream;

use crate::chat::{Action, Listing};
use crate::server::connection::slot::{ClientCount, ClientSlot};
use crate::server::connection::{Connection, DisconnectReason};
use crate::server::flow::ConnFlow;
use crate::server::pool::log::{CellId, Log};
use crate::server::sendq::SendQueue;
use crate::server::transport::stream::Stream;

/// A worker's share of the server-wide client count, kept in the log so
/// that every worker (thread or process) sees the total.
#[derive(Clone, Copy)]
pub(super) struct CellClients<'a> {
    pub(super) log: &'a Log,
    pub(super) cell: CellId,
}

impl ClientCount for CellClients<'_> {
    fn try_add(&self, max: usize) -> bool {
        if self.log.total_clients() as usize >= max {
            return false;
        }
        self.log.add_client(self.cell);
        true
    }

    fn remove(&self) {
        self.log.remove_client(self.cell);
    }
}

pub(super) struct Conn<'a> {
    /// The socket, through the layers its endpoint speaks.
    pub(super) stream: Stream<TcpStream>,
    pub(super) connection: Connection,
    pub(super) sendq: SendQueue,
    pub(super) flow: ConnFlow,
    /// Its place under `--max-clients`, given back once it lingers.
    place: ClientSlot<CellClients<'a>>,
    /// On the worker's to-flush list.
    pub(super) dirty: bool,
    /// On the worker's input list (its socket may hold more, or lines are ready).
    pub(super) queued_for_input: bool,
    /// Input was skipped because this client is behind; resume when it catches up.
    pub(super) input_parked: bool,
    /// The socket has not reported WouldBlock since it was last readable.
    pub(super) readable: bool,
    /// On the worker's list of behind connections.
    pub(super) listed_behind: bool,
    /// The receiver window this connection was last counted in (`flow::Receivers`).
    pub(super) receiver_window: u32,
    /// Long replies being sent a piece at a time (see `chat::listing`);
    /// the client's next line waits until they are done.
    pub(super) listings: VecDeque<Listing>,
    /// The rest of a line's actions, held back behind a long reply (see
    /// `worker::clients::run_actions`).
    pub(super) pending_actions: VecDeque<Action>,
    /// Its registration's refusal is held back (see `worker::held`): its
    /// next lines wait, to be answered after the outcome.
    pub(super) registration_held: bool,
    /// Cluster mode: its proposals whose ordered copies have not come
    /// back yet; its next line waits for them (read-your-writes), the
    /// worker's other clients do not.
    pub(super) unconfirmed: u32,
}

impl<'a> Conn<'a> {
    pub(super) fn new(
        stream: Stream<TcpStream>,
        connection: Connection,
        sendq: SendQueue,
        place: ClientSlot<CellClients<'a>>,
    ) -> Self {
        Conn {
            stream,
            connection,
            sendq,
            flow: ConnFlow::default(),
            place,
            dirty: false,
            queued_for_input: false,
            input_parked: false,
            readable: true,
            listed_behind: false,
            receiver_window: 0,
            listings: VecDeque::new(),
            pending_actions: VecDeque::new(),
            registration_held: false,
            unconfirmed: 0,
        }
    }

    pub(super) fn is_open(&self) -> bool {
        self.connection.is_open()
    }

    /// Whether it may have input worth visiting now: lines already cut, or
    /// a socket not yet read to WouldBlock; and not waiting out a flood
    /// penalty (its timer brings it back), for a long reply to be sent
    /// (its end brings it back) or for its registration's outcome (its
    /// release brings it back).
    pub(super) fn has_input(&self) -> bool {
        !self.registration_held
            && self.unconfirmed == 0
            && self.connection.waiting_until().is_none()
            && self.listings.is_empty()
            && (self.readable || self.connection.has_line() || !self.pending_actions.is_empty())
    }

    /// Everything queued is written: if that ends its closing, shut the
    /// write side and linger, giving its place back (gone as far as its
    /// client can tell). Returns whether it started lingering.
    pub(super) fn flushed(&mut self, now: Instant) -> bool {
        if !self.connection.flushed(now) {
            return false;
        }
        self.stream.close_layers();
        let _ = self.stream.socket().shutdown(Shutdown::Write);
        self.place.release();
        true
    }

    /// Reads and discards what the client sends; true once it has closed
    /// its end (or the socket failed), when the connection can go.
    pub(super) fn discard_input(&mut self, scratch: &mut [u8]) -> bool {
        loop {
            match self.stream.read(scratch) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return true,
            }
        }
    }

    /// Reads at most `scratch.len()` bytes into the connection. `Ok(false)`
    /// when the socket has nothing now (`readable` is cleared); an error is
    /// why the client must go (it closed, the read failed, or it sent far
    /// past its flood allowance).
    pub(super) fn read_some(&mut self, scratch: &mut [u8]) -> Result<bool, DisconnectReason> {
        loop {
            match self.stream.read(scratch) {
                Ok(0) => return Err(DisconnectReason::PeerClosed),
                Ok(n) => return self.connection.handle_bytes(&scratch[..n]).map(|()| true),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.readable = false;
                    return Ok(false);
                }
                Err(e) => return Err(DisconnectReason::from_read_error(&e)),
            }
        }
    }
}
