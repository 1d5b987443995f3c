//! One simulated client's side of the conversation: connecting (over TCP,
//! or TLS with `--tls`) and registering, joining the channel, and reading
//! what the server says — the bench's own message lines, and the lines a
//! server sends before it closes a connection. Kept apart from
//! [`super::load`], which drives thousands of these at once, so the
//! protocol details can be read (and tested) without the concurrency
//! around them.

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, ReadBuf};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::Mutex;

use crate::bench::results::Proto;
use crate::bench::tls::ClientTls;

type TlsConnection = tokio_rustls::client::TlsStream<TcpStream>;

/// The reading half of a client's connection. A TLS connection is one
/// state machine both halves use; they take turns on it within a poll
/// (the bench runs on one thread), never across an await.
pub enum ReadHalf {
    Plain(OwnedReadHalf),
    Tls(Rc<RefCell<TlsConnection>>),
}

/// The writing half; see [`ReadHalf`].
pub enum WriteHalf {
    Plain(OwnedWriteHalf),
    Tls(Rc<RefCell<TlsConnection>>),
}

/// The two halves of a connection.
pub fn split_plain(stream: TcpStream) -> (ReadHalf, WriteHalf) {
    let (read, write) = stream.into_split();
    (ReadHalf::Plain(read), WriteHalf::Plain(write))
}

/// The two halves of a TLS connection.
pub fn split_tls(stream: TlsConnection) -> (ReadHalf, WriteHalf) {
    let shared = Rc::new(RefCell::new(stream));
    (ReadHalf::Tls(shared.clone()), WriteHalf::Tls(shared))
}

impl ReadHalf {
    /// Re-arms TCP_QUICKACK on the socket underneath.
    pub fn quickack(&self) {
        match self {
            ReadHalf::Plain(half) => quickack(half.as_ref()),
            ReadHalf::Tls(shared) => quickack(shared.borrow().get_ref().0),
        }
    }
}

impl AsyncRead for ReadHalf {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ReadHalf::Plain(half) => Pin::new(half).poll_read(cx, buf),
            ReadHalf::Tls(shared) => Pin::new(&mut *shared.borrow_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for WriteHalf {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            WriteHalf::Plain(half) => Pin::new(half).poll_write(cx, buf),
            WriteHalf::Tls(shared) => Pin::new(&mut *shared.borrow_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WriteHalf::Plain(half) => Pin::new(half).poll_flush(cx),
            WriteHalf::Tls(shared) => Pin::new(&mut *shared.borrow_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WriteHalf::Plain(half) => Pin::new(half).poll_shutdown(cx),
            WriteHalf::Tls(shared) => Pin::new(&mut *shared.borrow_mut()).poll_shutdown(cx),
        }
    }
}

impl WriteHalf {
    /// Writes all of `bytes` and flushes: TLS keeps what the socket did not
    /// take at once in its own buffer, which only a flush (or a later
    /// write) sends, and a sender's last batch has no later write.
    pub async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.write_all(bytes).await?;
        self.flush().await
    }
}

/// A registered client: its buffered reading half, and its writing half,
/// shared between the task that sends and the one that answers PINGs.
pub struct Client {
    pub reader: BufReader<ReadHalf>,
    pub writer: Rc<Mutex<WriteHalf>>,
}

/// Asks for immediate ACKs. Linux clears the flag again after a while, so
/// it is set after every read: delayed ACKs would add tens of milliseconds
/// to loopback latency.
pub fn quickack(stream: &TcpStream) {
    let _ = socket2::SockRef::from(stream).set_tcp_quickack(true);
}

/// Makes the TCP connection (TCP_NODELAY, quick ACKs).
pub async fn tcp_connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    quickack(&stream);
    Ok(stream)
}

/// Secures a connected socket with TLS when `tls` says so, and splits it.
/// Also returns what TLS negotiated.
pub async fn secure(
    stream: TcpStream,
    tls: Option<&ClientTls>,
) -> io::Result<(ReadHalf, WriteHalf, Option<String>)> {
    match tls {
        None => {
            let (read, write) = split_plain(stream);
            Ok((read, write, None))
        }
        Some(tls) => {
            let stream = tls.handshake(stream).await?;
            let said = crate::bench::tls::negotiated(stream.get_ref().1);
            let (read, write) = split_tls(stream);
            Ok((read, write, Some(said)))
        }
    }
}

/// The lines that register a client as `nick`.
pub fn hello(proto: Proto, nick: &str) -> String {
    match proto {
        Proto::Irc => format!("NICK {nick}\r\nUSER {nick} 0 * :chatter bench\r\n"),
        Proto::Line => format!("{nick}\r\n"),
    }
}

/// Connects a client (with TLS when `tls` is given) and registers it as
/// `nick`, up to the end of the welcome. Also returns what TLS negotiated.
pub async fn connect_one(
    addr: SocketAddr,
    tls: Option<&ClientTls>,
    proto: Proto,
    nick: &str,
) -> io::Result<(Client, Option<String>)> {
    let stream = tcp_connect(addr).await?;
    let (read, mut write, negotiated) = secure(stream, tls).await?;
    write.send(hello(proto, nick).as_bytes()).await?;
    let mut reader = BufReader::new(read);
    let writer = Rc::new(Mutex::new(write));
    let registered = |line: &str| match proto {
        Proto::Irc => is_numeric(line, "376") || is_numeric(line, "422"),
        Proto::Line => line.starts_with("*** In #lobby"),
    };
    read_until(&mut reader, &writer, registered).await?;
    Ok((Client { reader, writer }, negotiated))
}

/// Joins `channel` and waits for the end of the member list.
pub async fn join_channel(
    reader: &mut BufReader<ReadHalf>,
    writer: &Rc<Mutex<WriteHalf>>,
    proto: Proto,
    channel: &str,
) -> io::Result<()> {
    let join = match proto {
        Proto::Irc => format!("JOIN {channel}\r\n"),
        Proto::Line => format!("/join {channel}\r\n"),
    };
    writer.lock().await.send(join.as_bytes()).await?;
    let names_done = format!("*** In {channel}");
    read_until(reader, writer, |line: &str| match proto {
        Proto::Irc => is_numeric(line, "366"),
        Proto::Line => line.starts_with(&names_done),
    })
    .await
}

pub fn is_numeric(line: &str, code: &str) -> bool {
    line.split(' ').nth(1) == Some(code)
}

/// Reads lines (answering PINGs, refusing errors) until `done` matches.
pub async fn read_until(
    reader: &mut BufReader<ReadHalf>,
    writer: &Rc<Mutex<WriteHalf>>,
    done: impl Fn(&str) -> bool,
) -> io::Result<()> {
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "server closed the connection"));
        }
        let text = line.trim_end();
        if done(text) {
            return Ok(());
        }
        if let Some(token) = text.strip_prefix("PING ") {
            writer.lock().await.send(format!("PONG {token}\r\n").as_bytes()).await?;
        } else if text.starts_with("ERROR")
            || ["432", "433", "464", "465"].iter().any(|c| is_numeric(text, c))
        {
            return Err(io::Error::other(format!("server refused: {text}")));
        }
    }
}

/// The three numbers (sender, seq, sent µs) at the end of a bench message
/// line, if it is one; read from the raw bytes without allocating, as this
/// is the hot path.
pub fn parse_message_bytes(line: &[u8]) -> Option<(u32, u32, u64)> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut words = line.rsplit(|b| *b == b' ');
    let sent = number(words.next()?)?;
    let seq = number(words.next()?)?;
    let sender_word = words.next()?;
    // IRC puts the text after " :"; a plain line after "name: ".
    let sender = number(sender_word.strip_prefix(b":").unwrap_or(sender_word))?;
    Some((u32::try_from(sender).ok()?, u32::try_from(seq).ok()?, sent))
}

fn number(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(digits.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

/// The reason in a line a server sends before it closes a connection: an
/// IRC `ERROR` or chatter's plain-line `*** Disconnected: ...`.
pub fn closing_line(line: &[u8]) -> Option<String> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    (line.starts_with(b"ERROR") || line.starts_with(b"*** Disconnected"))
        .then(|| String::from_utf8_lossy(line).into_owned())
}

/// A connection that failed while reading, in a few words.
pub fn read_error_reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionReset => "connection reset".to_string(),
        io::ErrorKind::ConnectionAborted => "connection aborted".to_string(),
        _ => format!("read failed: {e}"),
    }
}

/// A write failed because the server had closed the connection.
pub fn closed_by_peer(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_message(line: &str) -> Option<(u32, u32, u64)> {
        parse_message_bytes(line.trim_end().as_bytes())
    }

    #[test]
    fn closing_lines_and_read_errors_give_a_reason() {
        assert_eq!(
            closing_line(b"ERROR :Closing Link: 127.0.0.1 (SendQ exceeded)\r").as_deref(),
            Some("ERROR :Closing Link: 127.0.0.1 (SendQ exceeded)")
        );
        assert_eq!(
            closing_line(b"*** Disconnected: Server shutting down").as_deref(),
            Some("*** Disconnected: Server shutting down")
        );
        assert_eq!(closing_line(b":b1!b1@127.0.0.1 PRIVMSG #bench :ERROR"), None);
        assert_eq!(closing_line(b"b1: *** Disconnected"), None);
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        assert_eq!(read_error_reason(&reset), "connection reset");
        assert!(read_error_reason(&io::Error::other("boom")).contains("boom"));
        assert!(closed_by_peer(&io::Error::from(io::ErrorKind::BrokenPipe)));
        assert!(!closed_by_peer(&io::Error::from(io::ErrorKind::TimedOut)));
    }

    #[test]
    fn messages_parse_in_both_protocols() {
        assert_eq!(parse_message(":b3!b3@127.0.0.1 PRIVMSG #bench :3 17 123456\r\n"), Some((3, 17, 123456)));
        assert_eq!(parse_message("b3: 3 17 123456\r\n"), Some((3, 17, 123456)));
        assert_eq!(parse_message("[#bench] b3: 3 17 123456"), Some((3, 17, 123456)));
        assert_eq!(parse_message("* b3 joined #bench"), None);
        assert_eq!(parse_message(":server 353 b1 = #bench :b1 b2 b3"), None);
    }
}
