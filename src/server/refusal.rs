//! Turning away a connection when the server is full, in words its client
//! understands.
//!
//! At accept time the server does not know what the client speaks: an IRC
//! client expects `ERROR :Closing Link: ...`, a person at `nc` should read
//! a sentence. IRC clients speak first, at once; a person waits to be told
//! something. So a refused connection is held for a moment: its first line
//! (or first 512 bytes) decides the form, and silence means a person. The
//! refusal is then written, the write side shut, and what the client still
//! sends is read and thrown away until it closes or a grace period ends
//! (closing with unread input would reset the connection and could destroy
//! the refusal before it is read).
//!
//! Holding costs a descriptor for at most [`WAIT`] + [`GRACE`], and at most
//! [`MAX_HELD`] are held at once; a refusal beyond that is written in the
//! IRC form at once, as before. Both models use this from their accept
//! loops (mio), so the poll that accepts also watches the held sockets.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use crate::chat::Protocol;
use crate::chat::reply::closing_link;
use crate::chat::session::opens_irc;
use crate::wire::Message;

/// How long a refused client has to say what it speaks.
pub const WAIT: Duration = Duration::from_secs(1);
/// How long after the refusal is written the connection may linger.
pub const GRACE: Duration = Duration::from_secs(2);
/// Refused connections held at once.
pub const MAX_HELD: usize = 64;
/// The reason every refusal gives.
pub const REASON: &str = "Server is full, try again later";

struct Held {
    stream: TcpStream,
    host: String,
    heard: Vec<u8>,
    /// Until the refusal is written: when silence means a person.
    /// After: when lingering ends.
    deadline: Instant,
    refused: bool,
}

/// The refused connections a model's accept loop holds.
pub struct Refusals {
    held: HashMap<Token, Held>,
    first_token: usize,
    next: usize,
}

impl Refusals {
    /// Refused connections get tokens from `first_token` on, a range the
    /// caller's poll uses for nothing else.
    pub fn new(first_token: usize) -> Self {
        Refusals { held: HashMap::new(), first_token, next: 0 }
    }

    /// Whether `token` is one of ours.
    pub fn owns(&self, token: Token) -> bool {
        self.held.contains_key(&token)
    }

    /// Refuses a new connection: held until it speaks, or at once in the
    /// IRC form if too many are held already.
    pub fn refuse(&mut self, registry: &Registry, mut stream: TcpStream, host: String, now: Instant) {
        let token = Token(self.first_token + self.next % (MAX_HELD * 4));
        if self.held.len() >= MAX_HELD
            || self.held.contains_key(&token)
            || registry.register(&mut stream, token, Interest::READABLE).is_err()
        {
            let _ = stream.write(&refusal_line(Some(Protocol::Irc), &host));
            return;
        }
        self.next += 1;
        let held = Held { stream, host, heard: Vec::new(), deadline: now + WAIT, refused: false };
        self.held.insert(token, held);
    }

    /// The socket behind `token` is readable.
    pub fn ready(&mut self, registry: &Registry, token: Token, now: Instant) {
        let Some(held) = self.held.get_mut(&token) else { return };
        let mut buf = [0u8; 512];
        loop {
            match held.stream.read(&mut buf) {
                Ok(0) => return self.forget(registry, token),
                Ok(n) if !held.refused => {
                    held.heard.extend_from_slice(&buf[..n]);
                    if held.heard.contains(&b'\n') || held.heard.len() >= 512 {
                        let protocol = protocol_of(&held.heard);
                        refuse_now(held, protocol, now);
                    }
                }
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(_) => return self.forget(registry, token),
            }
        }
    }

    /// Refuses the silent ones (in words) and closes those whose grace
    /// period is over.
    pub fn expire(&mut self, registry: &Registry, now: Instant) {
        let due: Vec<Token> = self.held.iter().filter(|(_, h)| h.deadline <= now).map(|(t, _)| *t).collect();
        for token in due {
            let Some(held) = self.held.get_mut(&token) else { continue };
            if held.refused {
                self.forget(registry, token);
            } else {
                refuse_now(held, Some(Protocol::Plain), now);
            }
        }
    }

    /// When [`expire`](Self::expire) next has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.held.values().map(|h| h.deadline).min()
    }

    fn forget(&mut self, registry: &Registry, token: Token) {
        if let Some(mut held) = self.held.remove(&token) {
            let _ = registry.deregister(&mut held.stream);
        }
    }
}

fn refuse_now(held: &mut Held, protocol: Option<Protocol>, now: Instant) {
    // A fresh socket's send buffer is empty: this write is not cut short.
    let _ = held.stream.write(&refusal_line(protocol, &held.host));
    let _ = held.stream.shutdown(Shutdown::Write);
    held.refused = true;
    held.heard = Vec::new();
    held.deadline = now + GRACE;
}

/// IRC if the first line opens IRC as the session decides it; anything
/// else is a person.
fn protocol_of(heard: &[u8]) -> Option<Protocol> {
    let first = heard.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(first);
    let irc = Message::parse(line.trim_end_matches('\r')).is_ok_and(|m| opens_irc(&m.command));
    Some(if irc { Protocol::Irc } else { Protocol::Plain })
}

/// The refusal, in the client's protocol.
pub fn refusal_line(protocol: Option<Protocol>, host: &str) -> Vec<u8> {
    let mut line = Vec::new();
    closing_link(&mut line, protocol, host, REASON);
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_word_decides_the_form() {
        assert_eq!(protocol_of(b"NICK alice\r\n"), Some(Protocol::Irc));
        assert_eq!(protocol_of(b"cap LS 302\r\n"), Some(Protocol::Irc));
        assert_eq!(protocol_of(b"nelly\n"), Some(Protocol::Plain));
        assert_eq!(
            refusal_line(Some(Protocol::Irc), "1.2.3.4"),
            b"ERROR :Closing Link: 1.2.3.4 (Server is full, try again later)\r\n"
        );
        assert_eq!(
            refusal_line(Some(Protocol::Plain), "1.2.3.4"),
            b"*** Disconnected: Server is full, try again later\r\n"
        );
    }
}
