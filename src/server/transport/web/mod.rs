//! IRC over WebSocket (the IRCv3 WebSocket transport), and the chat page,
//! on one port.
//!
//! A connection on a WebSocket port starts as an HTTP request. A request
//! to upgrade at `/` becomes a WebSocket speaking one IRC line per
//! message; any other request is answered ([`http`]: the page's files,
//! or a status) and the connection ends. Once open, the layer turns each
//! message the client sends into one line for the client's `Connection`,
//! and each line the server sends into one message, so a WebSocket client
//! goes through the same session, flood control and sendq as a TCP one.
//!
//! The subprotocol decides the message type both ways: `binary.ircv3.net`
//! sends lines as they are, `text.ircv3.net` as text, with bytes that are
//! not UTF-8 replaced by U+FFFD (a browser drops a connection that sends
//! it bad text). A client that asks for neither gets text and may send
//! either (the spec's fallback for older clients); one that asks only for
//! others is refused with 400, since no answer would satisfy it.
//!
//! Frames are read and written by tungstenite's `WebSocketContext` over
//! byte buffers, never a socket, so this layer is sans-IO like the rest.
//! A protocol error is answered with the close code RFC 6455 gives it
//! (1009 for a message over [`MAX_MESSAGE_BYTES`], 1007 for a text
//! message that is not UTF-8, 1002 for the rest), after the IRC closing
//! line says the same in words.

pub mod http;
pub mod page;

use std::io::{self, Read, Write};

use tungstenite::Message;
use tungstenite::handshake::server::create_response;
use tungstenite::protocol::frame::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{Role, WebSocketConfig, WebSocketContext};

use http::Parsed;

/// The subprotocols of the IRCv3 WebSocket spec.
pub const TEXT_SUBPROTOCOL: &str = "text.ircv3.net";
pub const BINARY_SUBPROTOCOL: &str = "binary.ircv3.net";

/// The largest message a client may send: room for the longest line the
/// session takes (tags included) with plenty to spare; a longer line
/// within it is refused line by line (ERR_INPUTTOOLONG) as over TCP.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024;

/// What the server may queue for a client before its WebSocket is open (a
/// greeting): held until then, and no more than this.
const MAX_HELD_BEFORE_OPEN: usize = 16 * 1024;

/// The message type the server sends in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Text,
    Binary,
}

enum Stage {
    /// Reading the HTTP request head.
    Request {
        head: Vec<u8>,
        held: Vec<u8>,
    },
    Open {
        socket: Box<WebSocketContext>,
        mode: Mode,
        partial: Vec<u8>,
        closing: Option<CloseFrame>,
    },
    /// Answered (a page, a status) or closed: nothing more goes either way.
    Done,
}

/// Why the layer ended the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebEnd {
    /// The client closed the WebSocket (or the socket).
    Closed,
    /// An HTTP request was answered, or refused, and the connection is
    /// over; the words say which, for the log.
    Answered(String),
    /// The client broke the protocol; the close frame is sent after the
    /// IRC closing line, which says this.
    Broken(String),
}

/// One connection's WebSocket side.
pub struct WebLayer {
    stage: Stage,
}

impl Default for WebLayer {
    fn default() -> Self {
        WebLayer { stage: Stage::Request { head: Vec::new(), held: Vec::new() } }
    }
}

/// The bytes a `WebSocketContext` reads from and writes to.
struct Buffers<'a> {
    input: &'a [u8],
    output: &'a mut Vec<u8>,
}

impl Read for Buffers<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.input.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.input.read(buf)
    }
}

impl Write for Buffers<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_message_size(Some(MAX_MESSAGE_BYTES))
        .max_frame_size(Some(MAX_MESSAGE_BYTES))
}

impl WebLayer {
    /// Whether the WebSocket is open (IRC flows).
    pub fn is_open(&self) -> bool {
        matches!(self.stage, Stage::Open { .. })
    }

    /// The negotiated message type, once open.
    pub fn mode(&self) -> Option<Mode> {
        match &self.stage {
            Stage::Open { mode, .. } => Some(*mode),
            _ => None,
        }
    }

    /// Takes bytes from the client: IRC lines go to `irc` (each ending in
    /// CR LF), and what the layer itself answers (the handshake, a page,
    /// pongs, a close) to `out`.
    pub fn receive(&mut self, bytes: &[u8], irc: &mut Vec<u8>, out: &mut Vec<u8>) -> Result<(), WebEnd> {
        match &mut self.stage {
            Stage::Request { head, .. } => {
                head.extend_from_slice(bytes);
                self.read_request(irc, out)
            }
            Stage::Open { .. } => self.read_messages(bytes, irc, out),
            Stage::Done => Ok(()),
        }
    }

    fn read_request(&mut self, irc: &mut Vec<u8>, out: &mut Vec<u8>) -> Result<(), WebEnd> {
        let Stage::Request { head, held } = &mut self.stage else { return Ok(()) };
        let parsed = http::parse(head);
        let head = std::mem::take(head);
        let held = std::mem::take(held);
        let request = match parsed {
            Parsed::Partial => {
                self.stage = Stage::Request { head, held };
                return Ok(());
            }
            Parsed::Refused(response) => return self.answer(response, "a request that is not HTTP", out),
            Parsed::Complete(request) => request,
        };
        let path = request.request.uri().path().to_string();
        if !http::is_upgrade(&request.request) {
            let response = http::answer(&request.request);
            return self.answer(response, &format!("{} {path}", request.request.method()), out);
        }
        if path != "/" {
            let response = http::status(404, "Not Found", "IRC over WebSocket is at /.\n");
            return self.answer(response, &format!("an upgrade at {path}"), out);
        }
        let mode = match choose_subprotocol(&request.request) {
            Ok(mode) => mode,
            Err(offered) => {
                let response = http::status(
                    400,
                    "Bad Request",
                    &format!(
                        "No subprotocol offered ({offered}) is spoken here: \
                         ask for {TEXT_SUBPROTOCOL} or {BINARY_SUBPROTOCOL}.\n"
                    ),
                );
                return self.answer(response, "an upgrade for subprotocols not spoken here", out);
            }
        };
        let mut response = match create_response(&request.request) {
            Ok(response) => response,
            Err(e) => {
                let response =
                    http::status(400, "Bad Request", &format!("Not a WebSocket handshake: {e}.\n"));
                return self.answer(response, "a broken WebSocket handshake", out);
            }
        };
        if let Some(mode) = mode {
            let name = if mode == Mode::Binary { BINARY_SUBPROTOCOL } else { TEXT_SUBPROTOCOL };
            response.headers_mut().insert("Sec-WebSocket-Protocol", name.parse().expect("a header value"));
        }
        // Writing to a Vec cannot fail.
        let _ = tungstenite::handshake::server::write_response(&mut *out, &response);
        let rest = head[request.len..].to_vec();
        self.stage = Stage::Open {
            socket: Box::new(WebSocketContext::new(Role::Server, Some(config()))),
            mode: mode.unwrap_or(Mode::Text),
            partial: Vec::new(),
            closing: None,
        };
        self.send(&held, out);
        self.read_messages(&rest, irc, out)
    }

    /// Sends `response` and ends the connection.
    fn answer(&mut self, response: Vec<u8>, what: &str, out: &mut Vec<u8>) -> Result<(), WebEnd> {
        out.extend_from_slice(&response);
        self.stage = Stage::Done;
        let status = String::from_utf8_lossy(&response).lines().next().unwrap_or("").to_string();
        Err(WebEnd::Answered(format!("answered {what} with {status}")))
    }

    fn read_messages(&mut self, bytes: &[u8], irc: &mut Vec<u8>, out: &mut Vec<u8>) -> Result<(), WebEnd> {
        let Stage::Open { socket, closing, .. } = &mut self.stage else { return Ok(()) };
        if closing.is_some() {
            return Ok(());
        }
        let mut buffers = Buffers { input: bytes, output: out };
        loop {
            let broken = |code: CloseCode, words: &str| (code, words.to_string());
            let failure = match socket.read(&mut buffers) {
                Ok(Message::Text(text)) => {
                    irc.extend_from_slice(text.as_bytes());
                    irc.extend_from_slice(b"\r\n");
                    continue;
                }
                Ok(Message::Binary(bytes)) => {
                    irc.extend_from_slice(&bytes);
                    irc.extend_from_slice(b"\r\n");
                    continue;
                }
                // Pongs are queued by tungstenite and written with the
                // next read or write; a pong received needs nothing.
                Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => continue,
                Ok(Message::Close(_)) => {
                    // tungstenite has queued the answering close.
                    let _ = socket.flush(&mut buffers);
                    self.stage = Stage::Done;
                    return Err(WebEnd::Closed);
                }
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    let _ = socket.flush(&mut buffers);
                    return Ok(());
                }
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    self.stage = Stage::Done;
                    return Err(WebEnd::Closed);
                }
                Err(tungstenite::Error::Capacity(_)) => {
                    broken(CloseCode::Size, &format!("WebSocket message over {MAX_MESSAGE_BYTES} bytes"))
                }
                Err(tungstenite::Error::Utf8(_)) => {
                    broken(CloseCode::Invalid, "WebSocket text message not UTF-8")
                }
                Err(e) => broken(CloseCode::Protocol, &format!("WebSocket protocol error: {e}")),
            };
            let (code, words) = failure;
            *closing = Some(CloseFrame { code, reason: words.clone().into() });
            return Err(WebEnd::Broken(words));
        }
    }

    /// Sends IRC bytes (whole lines, or pieces of them) to the client: one
    /// message per line, once the WebSocket is open.
    pub fn send(&mut self, irc: &[u8], out: &mut Vec<u8>) {
        match &mut self.stage {
            Stage::Request { held, .. } => {
                let room = MAX_HELD_BEFORE_OPEN.saturating_sub(held.len());
                held.extend_from_slice(&irc[..irc.len().min(room)]);
            }
            Stage::Open { socket, mode, partial, .. } => {
                partial.extend_from_slice(irc);
                let mut buffers = Buffers { input: &[], output: out };
                let mut start = 0;
                while let Some(end) = partial[start..].iter().position(|b| *b == b'\n') {
                    let mut line = &partial[start..start + end];
                    start += end + 1;
                    if let Some(stripped) = line.strip_suffix(b"\r") {
                        line = stripped;
                    }
                    let message = match mode {
                        Mode::Text => Message::text(String::from_utf8_lossy(line).into_owned()),
                        Mode::Binary => Message::binary(line.to_vec()),
                    };
                    // Buffers never block, and a closed socket takes nothing.
                    let _ = socket.write(&mut buffers, message);
                }
                partial.drain(..start);
                let _ = socket.flush(&mut buffers);
            }
            Stage::Done => {}
        }
    }

    /// Ends the WebSocket: a close frame (with the code of the protocol
    /// error, if that is why) into `out`.
    pub fn close(&mut self, out: &mut Vec<u8>) {
        if let Stage::Open { socket, closing, .. } = &mut self.stage {
            let frame = closing.take().unwrap_or(CloseFrame { code: CloseCode::Normal, reason: "".into() });
            let mut buffers = Buffers { input: &[], output: out };
            let _ = socket.close(&mut buffers, Some(frame));
            let _ = socket.flush(&mut buffers);
        }
        self.stage = Stage::Done;
    }
}

/// The message type for the subprotocols the client offers, in its order
/// of preference: `Ok(None)` when it offers none, `Err` with what it
/// offered when none of them is spoken here.
fn choose_subprotocol(request: &tungstenite::http::Request<()>) -> Result<Option<Mode>, String> {
    let offered: Vec<String> = request
        .headers()
        .get_all("Sec-WebSocket-Protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect();
    if offered.is_empty() {
        return Ok(None);
    }
    for name in &offered {
        match name.as_str() {
            TEXT_SUBPROTOCOL => return Ok(Some(Mode::Text)),
            BINARY_SUBPROTOCOL => return Ok(Some(Mode::Binary)),
            _ => {}
        }
    }
    Err(offered.join(", "))
}

#[cfg(test)]
mod tests;
