//! Layers over a socket, as `Read` and `Write` with a socket's meaning, so
//! the code that reads, queues and flushes a client's bytes is the same
//! for every kind of endpoint.
//!
//! - A read returns what the client said (decoded), `Ok(0)` at its end,
//!   `WouldBlock` only when the socket itself has nothing: an
//!   edge-triggered loop that reads until `WouldBlock` misses nothing the
//!   layers hold. A layer's refusal ([`Ending`]) is an error whose
//!   [`refusal`](super::refusal) says why; it is reported once, and
//!   reads after it go to the socket as they are (a lingering close only
//!   reads to discard).
//! - A write takes IRC bytes, encodes them, and writes what the socket
//!   takes; what it does not take is held, and while anything is held a
//!   write takes nothing (`WouldBlock`). `flush` writes what is held and
//!   says `WouldBlock` while some remains, so a sendq is drained only
//!   when its bytes are on the socket, not in a layer.
//! - What a layer answers on its own (handshakes, pongs) is written when
//!   it is made, or held for the next write or flush.
//!
//! [`Stream`] is a pool worker's: one owner, a non-blocking socket.
//! [`Shared`] is the iterative model's: the client's thread reads (in
//! blocking `recv`, no lock held), any thread writes with `MSG_DONTWAIT`,
//! and the layers sit under a lock taken only for work that never blocks.

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::{Mutex, MutexGuard};

use nix::sys::socket::{MsgFlags, sendmsg};

use super::{Ending, Layers};

/// The most IRC bytes one write encodes: what the layers hold beyond what
/// the socket took stays small, and the sendq keeps the rest.
const MAX_ENCODED_PER_WRITE: usize = 64 * 1024;

/// The layers of one connection and the bytes on their way through them.
struct Layered {
    layers: Layers,
    /// Decoded input not yet read, from `decoded_at`.
    decoded: Vec<u8>,
    decoded_at: usize,
    /// Bytes for the socket not yet written, from `out_at`.
    out: Vec<u8>,
    out_at: usize,
    /// Why the layers ended it, until a read reports it.
    ending: Option<Ending>,
    /// Reported: reads go to the socket as they are.
    ended: bool,
    /// A write's slices, gathered to be encoded at once.
    gathered: Vec<u8>,
}

impl Layered {
    fn new(layers: Layers) -> Layered {
        Layered {
            layers,
            decoded: Vec::new(),
            decoded_at: 0,
            out: Vec::new(),
            out_at: 0,
            ending: None,
            ended: false,
            gathered: Vec::new(),
        }
    }

    /// Decoded input into `buf`, or the ending, if either is waiting.
    fn take_decoded(&mut self, buf: &mut [u8]) -> Option<io::Result<usize>> {
        if self.decoded_at < self.decoded.len() {
            let n = buf.len().min(self.decoded.len() - self.decoded_at);
            buf[..n].copy_from_slice(&self.decoded[self.decoded_at..self.decoded_at + n]);
            self.decoded_at += n;
            return Some(Ok(n));
        }
        let ending = self.ending.take()?;
        self.ended = true;
        Some(Err(ending.into_io()))
    }

    fn receive(&mut self, wire: &[u8]) {
        self.decoded.clear();
        self.decoded_at = 0;
        if let Err(ending) = self.layers.receive(wire, &mut self.decoded, &mut self.out) {
            self.ending = Some(ending);
        }
    }

    fn holds_output(&self) -> bool {
        self.out_at < self.out.len()
    }

    /// Writes what is held while `socket` takes it.
    fn push(&mut self, socket: &mut impl Write) -> io::Result<()> {
        while self.holds_output() {
            match socket.write(&self.out[self.out_at..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.out_at += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        self.out.clear();
        self.out_at = 0;
        Ok(())
    }

    /// A write of IRC bytes: see the module doc.
    fn write_vectored(&mut self, socket: &mut impl Write, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.push(socket)?;
        if self.holds_output() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        // The slices (a client's queued lines) are encoded as one: TLS
        // then makes a record of many lines, not one per line, each with
        // its own header, tag and encryption call.
        self.gathered.clear();
        for buf in bufs {
            let take = buf.len().min(MAX_ENCODED_PER_WRITE - self.gathered.len());
            self.gathered.extend_from_slice(&buf[..take]);
            if self.gathered.len() == MAX_ENCODED_PER_WRITE {
                break;
            }
        }
        self.layers.send(&self.gathered, &mut self.out);
        self.push(socket)?;
        Ok(self.gathered.len())
    }

    fn flush(&mut self, socket: &mut impl Write) -> io::Result<()> {
        self.push(socket)?;
        if self.holds_output() { Err(io::ErrorKind::WouldBlock.into()) } else { Ok(()) }
    }

    fn close(&mut self, socket: &mut impl Write) {
        self.layers.close(&mut self.out);
        let _ = self.push(socket);
    }
}

/// A pool worker's connection: its non-blocking socket and its layers.
pub struct Stream<S> {
    socket: S,
    layered: Option<Box<Layered>>,
}

impl<S: Read + Write> Stream<S> {
    pub fn new(socket: S, layers: Option<Layers>) -> Self {
        Stream { socket, layered: layers.map(|l| Box::new(Layered::new(l))) }
    }

    pub fn socket(&self) -> &S {
        &self.socket
    }

    pub fn socket_mut(&mut self) -> &mut S {
        &mut self.socket
    }

    /// Closes the layers (close frame, close_notify), writing what the
    /// socket takes now: the caller shuts the write side next.
    pub fn close_layers(&mut self) {
        if let Some(layered) = &mut self.layered {
            layered.close(&mut self.socket);
        }
    }
}

impl<S: Read + Write> Read for Stream<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(layered) = &mut self.layered else { return self.socket.read(buf) };
        loop {
            if layered.ended {
                return self.socket.read(buf);
            }
            if let Some(result) = layered.take_decoded(buf) {
                return result;
            }
            let n = self.socket.read(buf)?;
            if n == 0 {
                return Ok(0);
            }
            layered.receive(&buf[..n]);
            // A failed write shows at the next write, where it is handled.
            let _ = layered.push(&mut self.socket);
        }
    }
}

impl<S: Read + Write> Write for Stream<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match &mut self.layered {
            None => self.socket.write_vectored(bufs),
            Some(layered) => layered.write_vectored(&mut self.socket, bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.layered {
            None => Ok(()),
            Some(layered) => layered.flush(&mut self.socket),
        }
    }
}

/// Writes with `MSG_DONTWAIT | MSG_NOSIGNAL`: non-blocking for this call
/// only, so the owner's blocking reads are unaffected.
pub struct DontWait<'a>(pub &'a TcpStream);

impl Write for DontWait<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL;
        sendmsg::<()>(self.0.as_raw_fd(), bufs, &[], flags, None).map_err(io::Error::from)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The iterative model's connection: a blocking socket its client's
/// thread reads and any thread writes to without blocking.
#[derive(Debug)]
pub struct Shared {
    socket: TcpStream,
    layered: Option<Mutex<Layered>>,
}

impl std::fmt::Debug for Layered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Layered").field("held", &(self.out.len() - self.out_at)).finish()
    }
}

impl Shared {
    pub fn new(socket: TcpStream, layers: Option<Layers>) -> Self {
        Shared { socket, layered: layers.map(|l| Mutex::new(Layered::new(l))) }
    }

    pub fn socket(&self) -> &TcpStream {
        &self.socket
    }

    fn lock(mutex: &Mutex<Layered>) -> MutexGuard<'_, Layered> {
        mutex.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads as `recv` does on the socket (blocking, within its read
    /// timeout), decoded: see the module doc.
    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(layered) = &self.layered else { return (&self.socket).read(buf) };
        loop {
            {
                let mut layered = Self::lock(layered);
                if layered.ended {
                    drop(layered);
                    return (&self.socket).read(buf);
                }
                if let Some(result) = layered.take_decoded(buf) {
                    return result;
                }
            }
            let n = (&self.socket).read(buf)?;
            if n == 0 {
                return Ok(0);
            }
            let mut layered = Self::lock(layered);
            layered.receive(&buf[..n]);
            let _ = layered.push(&mut DontWait(&self.socket));
        }
    }

    /// Whether the layers hold bytes the socket did not take yet.
    pub fn holds_output(&self) -> bool {
        self.layered.as_ref().is_some_and(|l| Self::lock(l).holds_output())
    }

    /// A writer that never blocks (see [`DontWait`]).
    pub fn writer(&self) -> SharedWriter<'_> {
        SharedWriter(self)
    }

    /// Closes the layers and shuts the write side.
    pub fn shutdown_write(&self) {
        if let Some(layered) = &self.layered {
            Self::lock(layered).close(&mut DontWait(&self.socket));
        }
        let _ = self.socket.shutdown(Shutdown::Write);
    }

    pub fn shutdown(&self) {
        let _ = self.socket.shutdown(Shutdown::Both);
    }
}

/// Writes to a [`Shared`] connection without blocking.
pub struct SharedWriter<'a>(&'a Shared);

impl Write for SharedWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let shared = self.0;
        match &shared.layered {
            None => DontWait(&shared.socket).write_vectored(bufs),
            Some(layered) => Shared::lock(layered).write_vectored(&mut DontWait(&shared.socket), bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        let shared = self.0;
        match &shared.layered {
            None => Ok(()),
            Some(layered) => Shared::lock(layered).flush(&mut DontWait(&shared.socket)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::transport::Kind;
    use crate::server::transport::tls::Certificate;
    use crate::server::transport::tls::tests::{client_for, pair_in, scratch_dir};
    use std::collections::VecDeque;

    /// A socket in memory: what the peer sent, what was written, and how
    /// much more a write may take before it would block.
    #[derive(Default)]
    struct Pipe {
        input: VecDeque<u8>,
        output: Vec<u8>,
        room: usize,
    }

    impl Read for Pipe {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.input.is_empty() {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.input.read(buf)
        }
    }

    impl Write for Pipe {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            self.output.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A TLS stream over a pipe, its handshake with a rustls client done.
    fn handshaken(test: &str) -> (Stream<Pipe>, rustls::ClientConnection) {
        let files = pair_in(&scratch_dir(&format!("stream-{test}")), "s");
        let layers = Layers::new(Kind::Tls, Some(&Certificate::load(&files).unwrap())).unwrap();
        let mut server = Stream::new(Pipe { room: usize::MAX, ..Pipe::default() }, layers);
        let mut client = client_for(&files);
        let mut sink = [0u8; 4096];
        // Until both ends are through: the client's Finished must reach
        // the server too.
        for _ in 0..4 {
            let mut to_server = Vec::new();
            client.write_tls(&mut to_server).unwrap();
            server.socket_mut().input.extend(to_server);
            assert!(matches!(server.read(&mut sink), Err(e) if e.kind() == io::ErrorKind::WouldBlock));
            let from_server = std::mem::take(&mut server.socket_mut().output);
            client.read_tls(&mut from_server.as_slice()).unwrap();
            client.process_new_packets().unwrap();
        }
        (server, client)
    }

    /// The TLS records in `bytes` (5-byte headers).
    fn records(mut bytes: &[u8]) -> usize {
        let mut count = 0;
        while bytes.len() >= 5 {
            let len = u16::from_be_bytes([bytes[3], bytes[4]]) as usize;
            bytes = &bytes[(5 + len).min(bytes.len())..];
            count += 1;
        }
        count
    }

    #[test]
    fn a_write_of_many_lines_is_one_record_not_one_per_line() {
        let (mut server, mut client) = handshaken("records");
        server.socket_mut().output.clear();
        let lines: Vec<String> = (0..200).map(|i| format!(":a!a@h PRIVMSG #c :line {i}\r\n")).collect();
        let slices: Vec<IoSlice<'_>> = lines.iter().map(|l| IoSlice::new(l.as_bytes())).collect();
        let total: usize = lines.iter().map(String::len).sum();
        assert_eq!(server.write_vectored(&slices).unwrap(), total);
        let wire = std::mem::take(&mut server.socket_mut().output);
        assert!(records(&wire) <= 2, "{} records for {} lines", records(&wire), lines.len());
        let mut plain = Vec::new();
        let mut rest = wire.as_slice();
        while !rest.is_empty() {
            client.read_tls(&mut rest).unwrap();
            client.process_new_packets().unwrap();
            let _ = client.reader().read_to_end(&mut plain);
        }
        assert!(plain == lines.concat().as_bytes(), "{} bytes of {total} came through", plain.len());
    }

    #[test]
    fn what_the_socket_does_not_take_is_held_and_flushed_later() {
        let (mut server, _client) = handshaken("held");
        server.socket_mut().room = 10;
        let line = b"PRIVMSG #c :a line long enough not to fit ten bytes\r\n";
        // Taken whole by the layers; the socket took ten bytes of it.
        assert_eq!(server.write(line).unwrap(), line.len());
        // While bytes are held, nothing more is taken, and the queue is not
        // drained: flush says so.
        assert_eq!(server.write(line).unwrap_err().kind(), io::ErrorKind::WouldBlock);
        assert_eq!(server.flush().unwrap_err().kind(), io::ErrorKind::WouldBlock);
        server.socket_mut().room = usize::MAX;
        server.flush().unwrap();
        assert_eq!(server.write(line).unwrap(), line.len());
    }

    #[test]
    fn a_plain_stream_is_the_socket_itself() {
        let mut plain = Stream::new(Pipe { room: 4, ..Pipe::default() }, None);
        assert_eq!(plain.write(b"NICK alice\r\n").unwrap(), 4);
        plain.flush().unwrap();
        plain.socket_mut().input.extend(b"PING x\r\n");
        let mut buf = [0u8; 64];
        let n = plain.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"PING x\r\n");
    }
}
