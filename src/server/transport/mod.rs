//! What lies between a client's socket and its `Connection`: nothing (plain
//! TCP), TLS, a WebSocket, or a WebSocket inside TLS — the four kinds of
//! [`Endpoint`] a server listens on.
//!
//! The layers are sans-IO, like the `Connection` they feed: bytes read
//! from the socket go into [`Layers::receive`] and come out as the IRC
//! bytes the client sent; IRC bytes for the client go into
//! [`Layers::send`] and come out as bytes for the socket. A layer's own
//! traffic (a TLS handshake, a WebSocket handshake, pongs, the chat
//! page) joins the bytes for the socket. So the client's session, flood
//! control, sendq and timeouts are the same whatever it connected
//! through, both models drive the same code, and the layers' rules are
//! unit-tested without sockets.
//!
//! [`stream`] puts layers over a socket as `Read` and `Write`: for a pool
//! worker's non-blocking socket, and for the iterative model's socket
//! shared between the client's reader thread and the threads that write
//! to it. A plain connection has no layers and costs nothing extra.
//!
//! A layer that ends the connection ([`Ending`]) — the client's TLS
//! handshake failed, it broke the WebSocket protocol, or it asked for a
//! page and was answered — ends it the way the server ends any other:
//! the client is sent its closing line (through the layers: nothing goes
//! out on a connection that never became IRC), and then the layers close
//! (a WebSocket close frame with the code that says why, a TLS
//! close_notify) before the socket's write side is shut.

pub mod stream;
pub mod tls;
pub mod web;

use std::fmt;
use std::io;

use tls::{Certificate, TlsInput, TlsLayer};
use web::{WebEnd, WebLayer};

/// What a listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// IRC or plain lines over TCP.
    Plain,
    /// The same inside TLS.
    Tls,
    /// IRC over WebSocket, and the chat page, over HTTP.
    WebSocket,
    /// The same inside TLS (wss, https).
    SecureWebSocket,
}

impl Kind {
    /// Whether its clients speak TLS.
    pub fn is_tls(self) -> bool {
        matches!(self, Kind::Tls | Kind::SecureWebSocket)
    }

    /// Whether its clients speak WebSocket.
    pub fn is_web(self) -> bool {
        matches!(self, Kind::WebSocket | Kind::SecureWebSocket)
    }

    /// How the server announces a listener of this kind on `addr`:
    /// the bare address for plain TCP (as always), a URL for the others.
    pub fn announce(self, addr: std::net::SocketAddr) -> String {
        match self {
            Kind::Plain => addr.to_string(),
            Kind::Tls => format!("tls://{addr}"),
            Kind::WebSocket => format!("ws://{addr}/"),
            Kind::SecureWebSocket => format!("wss://{addr}/"),
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Plain => "plain",
            Kind::Tls => "tls",
            Kind::WebSocket => "websocket",
            Kind::SecureWebSocket => "secure websocket",
        })
    }
}

/// One address a server listens on, and what it speaks there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub kind: Kind,
    pub addr: String,
}

/// Why the layers ended a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The client closed its end (TLS close_notify, WebSocket close).
    PeerClosed,
    /// The layers refused the client or are done with it; the words say
    /// why (its closing line carries them where it can be sent).
    Refused(String),
}

impl Ending {
    /// As an I/O error, the way `stream` reports it from a read.
    pub(crate) fn into_io(self) -> io::Error {
        match self {
            Ending::PeerClosed => io::Error::from(io::ErrorKind::UnexpectedEof),
            Ending::Refused(words) => io::Error::new(io::ErrorKind::InvalidData, LayerRefusal(words)),
        }
    }
}

/// The error payload of a read the layers refused (see [`Ending::into_io`]).
#[derive(Debug)]
pub struct LayerRefusal(pub String);

impl fmt::Display for LayerRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LayerRefusal {}

/// The words of a refusal, if `error` is one.
pub fn refusal(error: &io::Error) -> Option<&str> {
    error.get_ref()?.downcast_ref::<LayerRefusal>().map(|r| r.0.as_str())
}

/// The layers of one connection, outermost (TLS) first.
pub struct Layers {
    tls: Option<TlsLayer>,
    web: Option<WebLayer>,
    /// Scratch between the two layers.
    between: Vec<u8>,
}

impl Layers {
    /// The layers a connection accepted on a `kind` listener needs; `None`
    /// for plain TCP. `certificate` is the one to serve, for TLS kinds.
    pub fn new(kind: Kind, certificate: Option<&Certificate>) -> io::Result<Option<Layers>> {
        if kind == Kind::Plain {
            return Ok(None);
        }
        let tls = match (kind.is_tls(), certificate) {
            (false, _) => None,
            (true, Some(certificate)) => Some(certificate.session()?),
            (true, None) => return Err(io::Error::other("a TLS listener without a certificate")),
        };
        let web = kind.is_web().then(WebLayer::default);
        Ok(Some(Layers { tls, web, between: Vec::new() }))
    }

    /// Takes bytes from the socket: what the client said in IRC is
    /// appended to `irc`, what the layers answer to `out`.
    pub fn receive(&mut self, wire: &[u8], irc: &mut Vec<u8>, out: &mut Vec<u8>) -> Result<(), Ending> {
        let mut tls_closed = false;
        let plain: &[u8] = match &mut self.tls {
            Some(tls) => {
                self.between.clear();
                match tls.receive(wire, &mut self.between, out) {
                    Ok(TlsInput::Open) => {}
                    Ok(TlsInput::Closed) => tls_closed = true,
                    Err(why) => return Err(Ending::Refused(format!("TLS: {why}"))),
                }
                &self.between
            }
            None => wire,
        };
        let result = match &mut self.web {
            Some(web) => {
                let mut answer = Vec::new();
                let result = web.receive(plain, irc, &mut answer);
                match &mut self.tls {
                    Some(tls) => tls.send(&answer, out),
                    None => out.extend_from_slice(&answer),
                }
                result.map_err(|end| match end {
                    WebEnd::Closed => Ending::PeerClosed,
                    WebEnd::Answered(words) | WebEnd::Broken(words) => Ending::Refused(words),
                })
            }
            None => {
                irc.extend_from_slice(plain);
                Ok(())
            }
        };
        result?;
        if tls_closed { Err(Ending::PeerClosed) } else { Ok(()) }
    }

    /// Takes IRC bytes for the client; what goes on the socket is
    /// appended to `out`.
    pub fn send(&mut self, irc: &[u8], out: &mut Vec<u8>) {
        match (&mut self.web, &mut self.tls) {
            (Some(web), Some(tls)) => {
                self.between.clear();
                web.send(irc, &mut self.between);
                tls.send(&self.between, out);
            }
            (Some(web), None) => web.send(irc, out),
            (None, Some(tls)) => tls.send(irc, out),
            (None, None) => out.extend_from_slice(irc),
        }
    }

    /// Closes the layers, innermost first: the WebSocket's close frame,
    /// then TLS's close_notify, into `out`.
    pub fn close(&mut self, out: &mut Vec<u8>) {
        if let Some(web) = &mut self.web {
            self.between.clear();
            web.close(&mut self.between);
            match &mut self.tls {
                Some(tls) => tls.send(&self.between, out),
                None => out.extend_from_slice(&self.between),
            }
        }
        if let Some(tls) = &mut self.tls {
            tls.close(out);
        }
    }
}
