//! One connection's protocol state: which protocol it speaks, how far it has
//! got with registration, and what each of its lines means.
//!
//! A session never changes shared state itself. For each line it produces
//! [`Action`]s in order: bytes for its own client right away (errors, PONG,
//! answers to queries read from a `State`), events for the directory, or a
//! request to close. Syntax is checked here, before anything reaches the
//! directory; whatever depends on other users (nick taken, no such nick) is
//! decided by `State::apply` in event order. The session reads the clock only
//! through the `now` its caller passes, so it is as testable as `State`.
//!
//! A session is registered exactly when the directory has a user for its
//! connection, so it keeps no "registered" flag that could disagree.
//!
//! The meaning of each line lives in the submodules, one function per
//! command, because the IRC command set is large and grows by whole
//! commands: `registration` (IRC before registration, with `cap` beside it
//! since IRCv3 capability negotiation grows on its own), `irc` (registered
//! IRC, a table from command name to handler) and `plain` (people typing
//! lines, with `/commands`). This file keeps what every protocol shares:
//! the session's state, how a line is routed to the right submodule, and
//! the few helpers more than one of them needs.

use std::cell::Cell;
use std::sync::Arc;

use crate::chat::caps::Caps;
use crate::chat::listing::Listing;
use crate::chat::reply::{self, closing_link, numeric};
use crate::chat::{ConnId, Event, Nick, Protocol, ServerInfo, Stamp, State};
use crate::wire::message::ParseError;
use crate::wire::message::write_line;
use crate::wire::{MAX_LINE_BYTES, Message};

mod cap;
mod irc;
mod plain;
mod registration;

/// Whether a first line with this (upper-case) command is an IRC client
/// registering; anything else starts a plain client. PASS opens IRC too,
/// though a session waits for the next line to decide (a person may type
/// `PASS secret` before a name).
pub fn opens_irc(command: &str) -> bool {
    matches!(command, "CAP" | "NICK" | "USER" | "PASS")
}

/// What the connection's owner must do, in this order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send these bytes to this session's client.
    Reply(Vec<u8>),
    /// Hand this event to the directory (and send what it delivers).
    Event(Event),
    /// Send this long reply, a piece at a time as the client reads it
    /// (see `listing`); the client's next line waits until it is done.
    Listing(Listing),
    /// Close the connection once the bytes before this are sent.
    Close,
    /// An operator's REHASH: reread the configuration (I/O, so the
    /// model's) and tell the client how it went (see `server::reload`).
    Rehash,
}

/// Collects a line's actions, merging consecutive replies into one buffer.
struct Out<'a>(&'a mut Vec<Action>);

impl Out<'_> {
    fn buf(&mut self) -> &mut Vec<u8> {
        if !matches!(self.0.last(), Some(Action::Reply(_))) {
            self.0.push(Action::Reply(Vec::new()));
        }
        match self.0.last_mut() {
            Some(Action::Reply(bytes)) => bytes,
            _ => unreachable!("a reply was just pushed"),
        }
    }

    fn event(&mut self, event: Event) {
        self.0.push(Action::Event(event));
    }

    fn close(&mut self) {
        self.0.push(Action::Close);
    }

    fn listing(&mut self, listing: Listing) {
        self.0.push(Action::Listing(listing));
    }

    fn rehash(&mut self) {
        self.0.push(Action::Rehash);
    }
}

pub struct Session {
    conn: ConnId,
    host: String,
    info: Arc<ServerInfo>,
    /// Decided by the first line that is not PASS.
    protocol: Option<Protocol>,
    password: Option<String>,
    nick: Option<String>,
    user: Option<(String, String)>,
    /// Between CAP LS/REQ and CAP END registration waits, as the spec says.
    cap_negotiating: bool,
    /// Wrong OPER credentials given so far (see `irc::operators`).
    oper_attempts: u8,
    /// The IRCv3 capabilities this client has enabled (see `cap`).
    caps: Caps,
    /// Whether the client said `CAP LS 302`: it may get continuation lines.
    cap_302: bool,
    /// When the line being handled arrived, in Unix milliseconds (see
    /// [`Stamp`]); registration, wherever it completes (NICK, USER, CAP
    /// END), dates the user's signon from it.
    line_at_ms: u64,
    /// Messages sent so far: the next one's id (see [`Stamp`]). A `Cell`
    /// because plain handlers only borrow the session.
    sent: Cell<u64>,
}

impl Session {
    pub fn new(conn: ConnId, host: impl Into<String>, info: Arc<ServerInfo>) -> Self {
        Session {
            conn,
            host: host.into(),
            info,
            protocol: None,
            password: None,
            nick: None,
            user: None,
            cap_negotiating: false,
            oper_attempts: 0,
            caps: Caps::NONE,
            cap_302: false,
            line_at_ms: 0,
            sent: Cell::new(0),
        }
    }

    pub fn conn(&self) -> ConnId {
        self.conn
    }

    pub fn protocol(&self) -> Option<Protocol> {
        self.protocol
    }

    /// The IRCv3 capabilities the client has enabled so far.
    pub fn caps(&self) -> Caps {
        self.caps
    }

    /// The first line every client gets, at once: a server notice that
    /// reads well in an IRC client and at `nc` alike. `served_by` names the
    /// pool worker, so people (and tests) can see how clients spread.
    pub fn greeting(&self, served_by: Option<&str>) -> Vec<u8> {
        let mut out = Vec::new();
        let on = served_by.map(|w| format!(" ({w})")).unwrap_or_default();
        let text = format!("*** Welcome to chatter{on}!");
        write_line(&mut out, Some(&self.info.name), "NOTICE", &["*"], Some(&text));
        out
    }

    /// What a person at `nc` must do next, for a connection that has said
    /// nothing a moment after the greeting. IRC clients speak first, so
    /// they never see it (see `server::connection`).
    pub fn first_line_hint(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let text = if self.info.password.is_some() {
            "*** This server needs a password. Using nc or telnet? Type the password and press Enter."
        } else {
            "*** Using nc or telnet? Type a name and press Enter to start chatting."
        };
        write_line(&mut out, Some(&self.info.name), "NOTICE", &["*"], Some(text));
        out
    }

    /// A server notice to this client, `*** text`, in its protocol's
    /// words (a NOTICE to an IRC client, a line to a plain one): for what
    /// the server must tell every client, such as a cluster node losing
    /// the network.
    pub fn notice(&self, state: &State, text: &str) -> Vec<u8> {
        let mut out = Vec::new();
        let text = format!("*** {text}");
        match self.protocol {
            Some(Protocol::Plain) => reply::plain(&mut out, &text),
            _ => {
                let client = self.client_name(state);
                write_line(&mut out, Some(&self.info.name), "NOTICE", &[&client], Some(&text));
            }
        }
        out
    }

    /// The last line before the server drops this client for `reason`.
    pub fn closing_line(&self, reason: &str) -> Vec<u8> {
        let mut out = Vec::new();
        closing_link(&mut out, self.protocol, &self.host, reason);
        out
    }

    /// The event that tells others this client is gone, if it had registered.
    pub fn quit_event(&self, state: &State, reason: &str) -> Option<Event> {
        state.user(self.conn).map(|_| Event::Quit { conn: self.conn, reason: reason.to_string() })
    }

    /// A line longer than the protocol allows was dropped.
    pub fn on_too_long(&self, state: &State, actions: &mut Vec<Action>) {
        self.too_long(state, &mut Out(actions));
    }

    fn too_long(&self, state: &State, out: &mut Out) {
        let client = self.client_name(state);
        reply::error(
            out.buf(),
            self.protocol.unwrap_or(Protocol::Irc),
            &self.info.name,
            reply::ERR_INPUTTOOLONG,
            &client,
            None,
            "Input line was too long",
        );
    }

    /// Handles one line from the client (as framing passed it: within
    /// IRC's limits, see `wire::framing`). `now_ms` is Unix milliseconds;
    /// handlers see seconds, and messages are stamped with the milliseconds.
    pub fn on_line(&mut self, line: &[u8], state: &State, now_ms: u64, actions: &mut Vec<Action>) {
        // The settings as the directory has them now: a reload may have
        // replaced the ones this session started with.
        if !Arc::ptr_eq(&self.info, state.shared_info()) {
            self.info = state.shared_info().clone();
        }
        self.line_at_ms = now_ms;
        let now = now_ms / 1000;
        let mut out = Out(actions);
        let Ok(text) = std::str::from_utf8(line) else {
            self.refuse_non_utf8(line, &mut out);
            return;
        };
        let parsed = match self.protocol {
            Some(Protocol::Plain) => None,
            _ => Some(Message::from_line(line)),
        };
        let message = parsed.as_ref().and_then(|p| p.as_ref().ok());
        if self.protocol.is_none() {
            // The first line that is not PASS decides (see `opens_irc`).
            match message.as_ref().map(|m| m.command.as_str()) {
                Some("PASS") => {}
                Some(command) if opens_irc(command) => self.protocol = Some(Protocol::Irc),
                _ => self.protocol = Some(Protocol::Plain),
            }
        }
        match (self.protocol, state.user(self.conn)) {
            // To a plain client `@` is text, so no tag section extends its
            // line: the whole of it is held to IRC's classic 512 bytes.
            (Some(Protocol::Plain), _) if line.len() > MAX_LINE_BYTES - 2 => self.too_long(state, &mut out),
            (Some(Protocol::Plain), Some(user)) => self.plain_line(text, user, state, now, out),
            (Some(Protocol::Plain), None) => self.plain_name(text, &mut out),
            (_, Some(user)) => match parsed {
                Some(Ok(message)) => self.irc_command(&message, user, state, now, out),
                // A command no client could mean is unknown all the same
                // (write_line keeps the word it echoes one word).
                Some(Err(ParseError::BadCommand(command))) => {
                    let (mut out, client) = (out, user.nick.as_str());
                    self.numeric(&mut out, client, reply::ERR_UNKNOWNCOMMAND, &[&command], "Unknown command")
                }
                _ => {}
            },
            (_, None) => {
                if let Some(message) = message {
                    self.irc_registration(message, state, &mut out);
                }
            }
        }
    }

    /// UTF8ONLY: a line that is not UTF-8 is not acted on (no event, no
    /// registration field taken), so nothing chatter relays or shows can
    /// hold anything else. An IRC client is told with the standard reply
    /// `FAIL <command> INVALID_UTF8`, a person at `nc` in words. As a
    /// first line it still decides the protocol, as any first line does
    /// by its command alone (a person typing a Latin-1 name is at `nc`),
    /// so the answer and everything after it are in that protocol's words.
    fn refuse_non_utf8(&mut self, line: &[u8], out: &mut Out) {
        // Only to name the command: a command is ASCII letters or digits
        // (`Message::parse` checks), so the lossy reading cannot add to it.
        let lossy = String::from_utf8_lossy(line);
        let command = Message::parse(&lossy).ok().map(|m| m.command);
        if self.protocol.is_none() && command.as_deref() != Some("PASS") {
            let irc = command.as_deref().is_some_and(opens_irc);
            self.protocol = Some(if irc { Protocol::Irc } else { Protocol::Plain });
        }
        // PASS leaves the protocol open, and opens IRC.
        if self.protocol != Some(Protocol::Plain) {
            let command = command.as_deref().unwrap_or("*");
            let text = "Message rejected, your IRC software MUST use UTF-8 encoding on this network";
            reply::fail(out.buf(), &self.info.name, command, "INVALID_UTF8", &[], text);
        } else {
            let text = "! That line was not UTF-8 text, so it was not sent: set your terminal to UTF-8";
            reply::plain(out.buf(), text);
        }
    }

    /// Who the client is in replies: its nick once it has one, `*` before.
    fn client_name(&self, state: &State) -> String {
        state
            .user(self.conn)
            .map(|u| u.nick.as_str().to_string())
            .or_else(|| self.nick.clone())
            .unwrap_or_else(|| "*".into())
    }

    fn numeric(&self, out: &mut Out, client: &str, code: u16, middle: &[&str], text: &str) {
        numeric(out.buf(), &self.info.name, code, client, middle, text);
    }

    fn password_ok(&self) -> bool {
        match &self.info.password {
            None => true,
            Some(wanted) => self.password.as_deref() == Some(wanted.as_str()),
        }
    }

    /// Both protocols register through the same event, so the directory
    /// alone decides whether the name is free.
    fn register_event(&self, nick: &str, user: &str, realname: &str, protocol: Protocol) -> Event {
        Event::Register {
            conn: self.conn,
            nick: Nick::new(nick),
            user: user.to_string(),
            realname: realname.to_string(),
            host: self.host.clone(),
            protocol,
            caps: self.caps,
            // The line that completes registration dates the signon.
            at: self.line_at_ms / 1000,
        }
    }

    /// The stamp of a message sent now with the sender's client-only
    /// `tags` (each call is a new message, with its own id).
    fn stamp(&self, tags: Vec<(String, String)>) -> Stamp {
        let id = self.sent.get();
        self.sent.set(id.wrapping_add(1));
        Stamp { at: self.line_at_ms, id, tags }
    }

    /// Says goodbye for `reason` and asks for the connection to be closed.
    fn close_with(&self, out: &mut Out, reason: &str) {
        out.buf().extend(self.closing_line(reason));
        out.close();
    }

    /// PING is answered the same before and after registration (clients
    /// ping while they wait for CAP or a free nick).
    fn pong(&self, msg: &Message, client: &str, out: &mut Out) {
        match msg.param(0) {
            Some(token) => {
                let server = self.info.name.as_str();
                write_line(out.buf(), Some(server), "PONG", &[server], Some(token));
            }
            None => self.numeric(out, client, reply::ERR_NEEDMOREPARAMS, &["PING"], "Not enough parameters"),
        }
    }
}
