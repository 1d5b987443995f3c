//! One client connection's life, apart from its socket and its clock: the
//! one place that decides what a connection's bytes mean, when it is
//! PINGed, when it has waited too long or sent too much, and how it ends.
//!
//! A [`Connection`] owns no socket and reads no clock (it is sans-IO, as
//! quinn-proto's connection is): the model that serves it feeds it what it
//! read and the time, and pulls what it must send and when to look again.
//! Both the iterative model (a thread blocking in `recv`) and the pool
//! worker (an event loop) drive the same type, so neither builds a PING,
//! decides a timeout or words a closing line itself, and every timer rule
//! is unit-tested here without sleeping.
//!
//! # Driving a connection
//!
//! - Bytes read from the socket go to [`Connection::handle_bytes`]; an
//!   error means the client sent far beyond its flood allowance and must
//!   be dropped.
//! - [`Connection::poll_line`] hands out the next line when flood control
//!   admits it (or says until when it must wait);
//!   [`Connection::handle_line`] turns it into session actions against
//!   the directory. Between the two the model may do what it must before
//!   a line is served (bring its replica up to date, wait at its flow
//!   gate).
//! - At the moment [`Connection::poll_timeout`] names, the model calls
//!   [`Connection::handle_timeout`]: a PING may become due, or a timeout
//!   that drops the client, or the end of a closing grace.
//! - After any of these, [`Connection::poll_transmit`] yields the bytes
//!   the connection itself wants sent (PINGs, the closing line), in order.
//! - [`Connection::close`] ends it for a [`DisconnectReason`];
//!   [`Connection::flushed`] tells it everything queued went out.
//!
//! # How a connection ends
//!
//! In two steps, so that the last line a dropped client is owed really
//! reaches it. First it is *closing*: whatever it had not started to
//! receive is discarded, its closing line is queued and written as the
//! socket allows. Once that line is out the connection *lingers*: the
//! write side is shut (the client sees the line, then end of stream) and
//! whatever the client still sends is read and thrown away until it closes
//! too, or the grace period ends. Closing a socket with unread input makes
//! the kernel send a reset, and a reset makes the client's kernel throw
//! away data it has not yet handed to the client, the closing line
//! included; lingering avoids that (as Apache's lingering close does).
//!
//! - `liveness`: when to PING and when to give up on a client.
//! - [`flood`]: how fast one client's lines are handled.
//! - `slot`: a connection's place under `--max-clients`, as a value.
//! - [`label`]: the answer to a labeled line as one logical message
//!   (IRCv3 labeled-response).
//!
//! # Answering a labeled line
//!
//! A line with a `label` tag from a client that enabled labeled-response
//! opens an answer ([`Connection::is_labeling`]); the model passes every
//! byte it sends this client *in answer to that line* through
//! [`Connection::label_response`] (its own replies, what the directory
//! sends it for its own events, the pieces of a long reply) and, once the
//! line is fully answered, sends what [`Connection::end_response`] gives.
//! Lines that are not an answer (others' messages, PINGs) go as they are.

pub mod flood;
pub mod label;
pub(crate) mod liveness;
pub(crate) mod slot;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::chat::{Action, Caps, Event, ServerInfo, Session, State};
use crate::wire::message::write_line;
use crate::wire::{Frame, LineReader};

use flood::{FloodPolicy, Penalty};
use label::{LabeledReply, label_of};
use liveness::{Due, Liveness, Standing, Timeouts};

pub use liveness::DEFAULT_REGISTRATION_TIMEOUT;

/// How long a closing client gets to read its last line (and a lingering
/// one to close its end).
pub const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// How long a new connection may stay silent before it is told how to
/// start as a person at `nc` would (see [`Connection::new`]). IRC clients
/// speak at once (CAP LS, NICK), well within it.
pub const FIRST_LINE_HINT_AFTER: Duration = Duration::from_secs(1);

/// Why a connection ends. Its text is what the client's closing line and
/// the QUIT others see say, worded as the classic servers word them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The client closed its end.
    PeerClosed,
    /// Reading the socket failed.
    ReadError(String),
    /// Writing the socket failed.
    WriteError,
    /// The connection ended after a closing line it was owed (its own QUIT).
    Closed,
    /// Not registered within the registration timeout.
    RegistrationTimeout,
    /// Silent after a PING; the seconds of silence allowed.
    PingTimeout(u64),
    /// Sent far more than its flood allowance.
    ExcessFlood,
    /// Fell a whole sendq behind.
    SendQExceeded,
    /// The server is stopping.
    ServerShutdown,
    /// The pool worker serving it was evicted for not keeping up.
    WorkerFellBehind,
    /// The cluster declared this node lost (it was cut off from NATS
    /// longer than the node timeout): its users have quit everywhere.
    NodeLost,
    /// An operator's KILL: `Killed (operator (words))`.
    Killed(String),
    /// What the client's TLS or WebSocket layer refused, in its words
    /// (see `transport`): told where it can be, before the layer closes.
    Transport(String),
}

impl DisconnectReason {
    /// Why a client goes whose socket read failed with `error`: a layer's
    /// refusal is told, the end of its TLS or WebSocket session is its
    /// close, anything else a read error.
    pub fn from_read_error(error: &std::io::Error) -> DisconnectReason {
        if let Some(words) = crate::server::transport::refusal(error) {
            return DisconnectReason::Transport(words.to_string());
        }
        match error.kind() {
            std::io::ErrorKind::UnexpectedEof => DisconnectReason::PeerClosed,
            _ => DisconnectReason::ReadError(error.to_string()),
        }
    }

    /// Whether the client is sent a closing line: not when the socket is
    /// already gone, or when it asked to go and has had its answer.
    pub fn tells_client(&self) -> bool {
        !matches!(self, Self::PeerClosed | Self::ReadError(_) | Self::WriteError | Self::Closed)
    }
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PeerClosed => f.write_str("Connection closed"),
            Self::ReadError(e) => write!(f, "Read error: {e}"),
            Self::WriteError => f.write_str("Write error"),
            Self::Closed => f.write_str("Closed"),
            Self::RegistrationTimeout => f.write_str("Registration timed out"),
            Self::PingTimeout(secs) => write!(f, "Ping timeout: {secs} seconds"),
            Self::ExcessFlood => f.write_str("Excess Flood"),
            Self::SendQExceeded => f.write_str("SendQ exceeded"),
            Self::ServerShutdown => f.write_str("Server shutting down"),
            Self::WorkerFellBehind => f.write_str("Server worker fell behind"),
            Self::NodeLost => f.write_str(
                "Node lost: this server was cut off from the network; what you sent since was not delivered",
            ),
            Self::Killed(reason) | Self::Transport(reason) => f.write_str(reason),
        }
    }
}

/// The limits a connection is held to, from the settings it was accepted
/// under (a reload changes them for connections accepted after it).
#[derive(Debug, Clone)]
pub struct Limits {
    pub timeouts: Timeouts,
    /// `None`: flood control is off (benchmarks).
    pub flood: Option<FloodPolicy>,
    /// Who PINGs (the server's name), and the settings these came from.
    pub info: Arc<ServerInfo>,
}

impl Limits {
    /// What a connection accepted under `info` is held to.
    pub fn new(info: Arc<ServerInfo>) -> Limits {
        let rules = &info.connections;
        let timeouts =
            Timeouts { ping_interval: rules.ping_interval, registration: rules.registration_timeout };
        Limits { timeouts, flood: rules.flood, info }
    }
}

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
    /// Nothing more to do: the model forgets the connection.
    Done,
}

/// Bytes the connection itself wants sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transmit {
    /// Queue after what is queued (a PING).
    Send(Vec<u8>),
    /// The closing line: replaces whatever the client has not started to
    /// receive, and goes out past the sendq limit (it is the last line).
    Close(Vec<u8>),
}

/// What [`Connection::poll_line`] has.
#[derive(Debug, PartialEq, Eq)]
pub enum LinePoll {
    /// No complete line is waiting (or the connection is not open).
    Empty,
    /// The next line, admitted by flood control and counted as hearing
    /// from the client.
    Line(Frame),
    /// Lines wait until then: the client is past its flood allowance.
    WaitUntil(Instant),
    /// The client must be dropped (it held more than a waiting client may).
    Drop(DisconnectReason),
}

/// What [`Connection::handle_timeout`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum TimeoutOutcome {
    /// Nothing, or only something to send (see `poll_transmit`).
    Nothing,
    /// The client must be dropped for this reason.
    Drop(DisconnectReason),
    /// A closing or lingering grace ran out: forget the connection now.
    Expired,
}

/// One client connection: framing, session, liveness, flood control and
/// its closing, driven by the model that owns its socket.
pub struct Connection {
    session: Session,
    reader: LineReader,
    limits: Arc<Limits>,
    liveness: Liveness,
    penalty: Penalty,
    /// Over its flood allowance: its lines wait until then.
    waiting_until: Option<Instant>,
    /// Only registering changes it (a user stays one until the end).
    standing: Standing,
    stage: Stage,
    reason: Option<DisconnectReason>,
    transmit: VecDeque<Transmit>,
    /// When to tell a silent connection what to type; `None` once it has
    /// said a line (or been told).
    hint_at: Option<Instant>,
    /// The answer to a labeled line, while it is being sent.
    labeled_reply: Option<LabeledReply>,
    /// Labeled answers so far: numbers their batches.
    labeled_replies: u64,
}

impl Connection {
    /// A new connection; its greeting is its first transmit. `served_by`
    /// names the pool worker in the greeting. What a person at `nc` should
    /// type first follows only if the connection is still silent
    /// [`FIRST_LINE_HINT_AFTER`] later: an IRC client has spoken by then,
    /// and is spared instructions meant for someone else.
    pub fn new(session: Session, limits: Arc<Limits>, served_by: Option<&str>, now: Instant) -> Self {
        let greeting = session.greeting(served_by);
        Connection {
            session,
            reader: LineReader::default(),
            limits,
            liveness: Liveness::new(now),
            penalty: Penalty::new(),
            waiting_until: None,
            standing: Standing::Unregistered,
            stage: Stage::Open,
            reason: None,
            transmit: VecDeque::from([Transmit::Send(greeting)]),
            hint_at: Some(now + FIRST_LINE_HINT_AFTER),
            labeled_reply: None,
            labeled_replies: 0,
        }
    }

    pub fn session(&self) -> &Session {
        &self.session
    }

    pub fn stage(&self) -> Stage {
        self.stage
    }

    pub fn is_open(&self) -> bool {
        self.stage == Stage::Open
    }

    pub fn is_done(&self) -> bool {
        self.stage == Stage::Done
    }

    /// Whether it still counts against `--max-clients`: until it lingers,
    /// when it is gone as far as the client can tell.
    pub fn counts_as_client(&self) -> bool {
        matches!(self.stage, Stage::Open | Stage::Closing { .. })
    }

    /// Past its flood allowance, until then.
    pub fn waiting_until(&self) -> Option<Instant> {
        self.waiting_until
    }

    /// Whether complete lines are waiting (admitted or not).
    pub fn has_line(&self) -> bool {
        self.reader.has_frames()
    }

    /// Why it is ending, once it is.
    pub fn reason(&self) -> Option<&DisconnectReason> {
        self.reason.as_ref()
    }

    /// Takes bytes read from the client. While the client waits out a
    /// flood penalty its input is still taken, so that one sending far
    /// beyond its allowance is noticed: that is the error.
    pub fn handle_bytes(&mut self, bytes: &[u8]) -> Result<(), DisconnectReason> {
        if self.is_open() {
            self.reader.push(bytes);
            if self.waiting_until.is_some() {
                self.check_excess()?;
            }
        }
        Ok(())
    }

    fn check_excess(&self) -> Result<(), DisconnectReason> {
        if Penalty::is_excess(self.reader.held(), self.limits.flood.as_ref()) {
            return Err(DisconnectReason::ExcessFlood);
        }
        Ok(())
    }

    /// The next line, if one is complete and flood control admits it now.
    pub fn poll_line(&mut self, now: Instant) -> LinePoll {
        if !self.is_open() || !self.reader.has_frames() {
            return LinePoll::Empty;
        }
        if let Some(until) = self.waiting_until {
            if now < until {
                return LinePoll::WaitUntil(until);
            }
            self.waiting_until = None;
        }
        if let Err(until) = self.penalty.admit(now, self.limits.flood.as_ref()) {
            self.waiting_until = Some(until);
            if let Err(reason) = self.check_excess() {
                return LinePoll::Drop(reason);
            }
            return LinePoll::WaitUntil(until);
        }
        match self.reader.next_frame() {
            Some(frame) => {
                self.liveness.heard(now);
                self.hint_at = None;
                LinePoll::Line(frame)
            }
            None => LinePoll::Empty,
        }
    }

    /// What a line means, as actions for the model to carry out in order.
    /// `unix_now_ms` is the wall clock (Unix milliseconds) for events that
    /// record when.
    /// If the line has a label and the client enabled labeled-response
    /// (with batch, which it requires), its answer is labeled: see the
    /// module doc. The model must have ended the previous line's answer.
    pub fn handle_line(&mut self, frame: Frame, state: &State, unix_now_ms: u64, actions: &mut Vec<Action>) {
        debug_assert!(self.labeled_reply.is_none(), "the previous line's answer was not ended");
        match frame {
            Frame::Line(line) => {
                let labels = Caps::BATCH.with(Caps::LABELED_RESPONSE);
                if self.session.caps().has(labels)
                    && let Some(label) = label_of(&line)
                {
                    self.labeled_replies += 1;
                    self.labeled_reply = Some(LabeledReply::new(label, self.labeled_replies));
                }
                self.session.on_line(&line, state, unix_now_ms, actions)
            }
            Frame::TooLong => self.session.on_too_long(state, actions),
        }
    }

    /// Whether the line being answered was labeled: what the model sends
    /// in answer must go through [`label_response`](Self::label_response).
    pub fn is_labeling(&self) -> bool {
        self.labeled_reply.is_some()
    }

    /// What to send for `bytes` (whole lines) of the answer to the labeled
    /// line: possibly nothing yet, or more than was given (a batch opens).
    pub fn label_response(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        match &mut self.labeled_reply {
            Some(reply) => reply.respond(&self.limits.info.name, bytes, &mut out),
            None => out.extend_from_slice(bytes),
        }
        out
    }

    /// The line has been answered in full: what ends its labeled answer
    /// (the held line, the batch's end, or an ACK), if it was labeled.
    pub fn end_response(&mut self) -> Option<Vec<u8>> {
        let reply = self.labeled_reply.take()?;
        let mut out = Vec::new();
        reply.finish(&self.limits.info.name, &mut out);
        Some(out)
    }

    /// Notes whether the client has registered, from the directory its
    /// events were applied to. Free once registered.
    pub fn refresh_standing(&mut self, state: &State) {
        if self.standing == Standing::Unregistered {
            self.standing = liveness::standing(&self.session, state);
        }
    }

    /// Whether the directory has the client as a user (as of the last
    /// [`refresh_standing`](Self::refresh_standing)).
    pub fn is_registered(&self) -> bool {
        self.standing != Standing::Unregistered
    }

    /// The next moment [`handle_timeout`](Self::handle_timeout) may have
    /// something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.stage {
            Stage::Open => {
                let due = self.liveness.next_check(self.standing, &self.limits.timeouts);
                [due, self.waiting_until, self.hint_at].into_iter().flatten().min()
            }
            Stage::Closing { by } | Stage::Lingering { by } => Some(by),
            Stage::Done => None,
        }
    }

    /// Whatever is due at `now`: a flood wait ending, a PING (queued for
    /// [`poll_transmit`](Self::poll_transmit)), a timeout, a grace ending.
    pub fn handle_timeout(&mut self, now: Instant) -> TimeoutOutcome {
        match self.stage {
            Stage::Open => {
                if self.waiting_until.is_some_and(|until| until <= now) {
                    self.waiting_until = None;
                }
                if self.hint_at.is_some_and(|at| at <= now) {
                    self.hint_at = None;
                    self.transmit.push_back(Transmit::Send(self.session.first_line_hint()));
                }
                match self.liveness.check(now, self.standing, &self.limits.timeouts) {
                    Due::Nothing => TimeoutOutcome::Nothing,
                    Due::Ping => {
                        let mut ping = Vec::new();
                        write_line(&mut ping, None, "PING", &[], Some(&self.limits.info.name));
                        self.transmit.push_back(Transmit::Send(ping));
                        TimeoutOutcome::Nothing
                    }
                    Due::Close(reason) => TimeoutOutcome::Drop(reason),
                }
            }
            Stage::Closing { by } | Stage::Lingering { by } if now >= by => {
                self.stage = Stage::Done;
                TimeoutOutcome::Expired
            }
            Stage::Closing { .. } | Stage::Lingering { .. } | Stage::Done => TimeoutOutcome::Nothing,
        }
    }

    /// Whether [`poll_transmit`](Self::poll_transmit) has something.
    pub fn has_transmit(&self) -> bool {
        !self.transmit.is_empty()
    }

    /// Bytes the connection wants sent, in order.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmit.pop_front()
    }

    /// The QUIT others must see if this client leaves for `reason` now (it
    /// had registered, as `state` knows).
    pub fn quit_event(&self, state: &State, reason: &DisconnectReason) -> Option<Event> {
        self.session.quit_event(state, &reason.to_string())
    }

    /// Ends the connection. A reason the client is told about queues its
    /// closing line and waits (a grace at most) for it to be written; any
    /// other ends it at once. Only the first reason counts.
    pub fn close(&mut self, reason: DisconnectReason, now: Instant) {
        if !self.is_open() {
            if !reason.tells_client() {
                // The socket is gone: nothing more can be written or read.
                self.stage = Stage::Done;
            }
            return;
        }
        if reason.tells_client() {
            self.transmit.clear();
            self.transmit.push_back(Transmit::Close(self.session.closing_line(&reason.to_string())));
            self.stage = Stage::Closing { by: now + CLOSE_GRACE };
        } else {
            self.stage = Stage::Done;
        }
        self.reason = Some(reason);
    }

    /// The client asked to go and has its answer queued: close once it is
    /// written.
    pub fn close_when_flushed(&mut self, now: Instant) {
        if self.is_open() {
            self.stage = Stage::Closing { by: now + CLOSE_GRACE };
            self.reason = Some(DisconnectReason::Closed);
        }
    }

    /// Everything queued has been written. Returns true when that ends the
    /// closing: the model shuts the write side and reads out what the
    /// client still sends until it closes (see the module doc).
    pub fn flushed(&mut self, now: Instant) -> bool {
        if let Stage::Closing { .. } = self.stage {
            self.stage = Stage::Lingering { by: now + CLOSE_GRACE };
            return true;
        }
        false
    }

    /// The client closed its end while lingering (or the socket failed):
    /// the connection is over.
    pub fn finish(&mut self) {
        self.stage = Stage::Done;
    }
}
