//! One client connection of a pool worker: the socket, its line reader and
//! session, its bounded sendq with its flow standing, its liveness and
//! flood penalty, and how it ends.
//!
//! A connection ends in two steps, so that the last line a dropped client
//! is owed really reaches it. First it is *closing*: whatever it had not
//! started to receive is discarded, its closing line is queued and written
//! as the socket allows. Once that line is out the connection *lingers*:
//! the write side is shut (the client sees the line, then end of stream)
//! and whatever the client still sends is read and thrown away until it
//! closes too, or the grace period ends. Closing a socket with unread input
//! makes the kernel send a reset, and a reset makes the client's kernel
//! throw away data it has not yet handed to the client, the closing line
//! included; lingering avoids that (as Apache's lingering close does).

use std::collections::VecDeque;
use std::io::{self, ErrorKind, Read};
use std::net::Shutdown;
use std::time::Instant;

use mio::net::TcpStream;

use crate::chat::{Action, Listing, Session};
use crate::server::connection::CLOSE_GRACE;
use crate::server::connection::flood::Penalty;
use crate::server::connection::liveness::Liveness;
use crate::server::flow::{self, ConnFlow};
use crate::server::sendq::SendQueue;
use crate::wire::LineReader;

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Open,
    /// The closing line is queued; close when it is written, or by then.
    Closing {
        by: Instant,
    },
    /// The closing line is out and the write side shut; reading and
    /// discarding until the client closes, or until then.
    Lingering {
        by: Instant,
    },
}

pub struct Conn {
    pub stream: TcpStream,
    pub session: Session,
    pub reader: LineReader,
    pub sendq: SendQueue,
    pub flow: ConnFlow,
    pub stage: Stage,
    pub liveness: Liveness,
    /// Flood control's clock for this client.
    pub penalty: Penalty,
    /// Over its flood allowance: its lines wait until then (it is read,
    /// but not served, meanwhile).
    pub waiting_until: Option<Instant>,
    /// On the worker's to-flush list.
    pub dirty: bool,
    /// On the worker's input list (its socket may hold more, or lines are ready).
    pub queued_for_input: bool,
    /// Input was skipped because this client is behind; resume when it catches up.
    pub input_parked: bool,
    /// The socket has not reported WouldBlock since it was last readable.
    pub readable: bool,
    /// On the worker's list of behind connections.
    pub listed_behind: bool,
    /// The receiver window this connection was last counted in (`flow::Receivers`).
    pub receiver_window: u32,
    /// Long replies being sent a piece at a time (see `chat::listing`);
    /// the client's next line waits until they are done.
    pub listings: VecDeque<Listing>,
    /// The rest of a line's actions, held back behind a long reply (see
    /// `worker::clients::run_actions`).
    pub pending_actions: VecDeque<Action>,
}

impl Conn {
    pub fn new(stream: TcpStream, session: Session, sendq: SendQueue, now: Instant) -> Conn {
        Conn {
            stream,
            session,
            reader: LineReader::default(),
            sendq,
            flow: ConnFlow::default(),
            stage: Stage::Open,
            liveness: Liveness::new(now),
            penalty: Penalty::new(),
            waiting_until: None,
            dirty: false,
            queued_for_input: false,
            input_parked: false,
            readable: true,
            listed_behind: false,
            receiver_window: 0,
            listings: VecDeque::new(),
            pending_actions: VecDeque::new(),
        }
    }

    pub fn is_open(&self) -> bool {
        self.stage == Stage::Open
    }

    /// Whether it still counts against `--max-clients`: until it lingers,
    /// when it is gone as far as the client can tell.
    pub fn counts_as_client(&self) -> bool {
        !matches!(self.stage, Stage::Lingering { .. })
    }

    /// Whether it may have input worth visiting now: lines already cut, or
    /// a socket not yet read to WouldBlock; and not waiting out a flood
    /// penalty (its timer brings it back) or for a long reply to be sent
    /// (its end brings it back).
    pub fn has_input(&self) -> bool {
        self.waiting_until.is_none()
            && self.listings.is_empty()
            && (self.readable || self.reader.has_frames() || !self.pending_actions.is_empty())
    }

    /// Replaces what it has not started to receive by its closing line.
    pub fn begin_close(&mut self, closing_line: Vec<u8>, now: Instant) {
        self.sendq.discard_unstarted();
        self.sendq.push_unbounded(closing_line.into(), flow::millis());
        self.stage = Stage::Closing { by: now + CLOSE_GRACE };
    }

    /// Closes once what is queued is written (a client's own QUIT).
    pub fn close_when_flushed(&mut self, now: Instant) {
        if self.is_open() {
            self.stage = Stage::Closing { by: now + CLOSE_GRACE };
        }
    }

    /// Everything queued is written: shut the write side and linger.
    pub fn linger(&mut self, now: Instant) {
        let _ = self.stream.shutdown(Shutdown::Write);
        self.stage = Stage::Lingering { by: now + CLOSE_GRACE };
    }

    /// Reads and discards what the client sends; true once it has closed
    /// its end (or the socket failed), when the connection can go.
    pub fn discard_input(&mut self, scratch: &mut [u8]) -> bool {
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

    /// Reads at most `scratch.len()` bytes into the line reader. `Ok(0)`
    /// is end of stream; `WouldBlock` clears `readable`. Bytes are not
    /// hearing from the client: only a complete line is (see `liveness`).
    pub fn read_some(&mut self, scratch: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.stream.read(scratch) {
                Ok(n) => {
                    self.reader.push(&scratch[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    if e.kind() == ErrorKind::WouldBlock {
                        self.readable = false;
                    }
                    return Err(e);
                }
            }
        }
    }
}
