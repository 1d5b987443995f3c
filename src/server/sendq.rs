//! A connection's bounded outbound queue (sendq).
//!
//! Deliveries are queued as shared chunks (one fanned-out line is one
//! allocation, however many members receive it) and written with vectored
//! writes, so a burst of small lines costs one system call. The queue is
//! bounded in bytes: a client that stops reading fills it, and the owner then
//! drops that client instead of letting its backlog grow or delay anyone.
//! Each chunk carries the coarse time it was queued (`flow::millis`), so
//! the owner can tell how late the oldest unsent line is (the lag rule of
//! `flow`).

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};
use std::sync::Arc;

/// Default sendq limit per connection.
pub const DEFAULT_SENDQ_BYTES: usize = 256 * 1024;

/// Queue slots an idle connection may keep allocated.
const IDLE_CHUNKS: usize = 16;

/// How many chunks one vectored write gathers.
const MAX_SLICES: usize = 64;

/// The queue would exceed its limit; nothing was queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflow;

/// Where a flush stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flush {
    /// Everything queued has been written.
    Drained,
    /// The socket would block; the rest stays queued.
    Blocked,
}

#[derive(Debug)]
pub struct SendQueue {
    /// Lines to send, each with the time it was queued.
    chunks: VecDeque<(Arc<[u8]>, u32)>,
    /// Bytes of the front chunk already written.
    front_written: usize,
    queued: usize,
    limit: usize,
}

impl SendQueue {
    pub fn new(limit: usize) -> Self {
        SendQueue { chunks: VecDeque::new(), front_written: 0, queued: 0, limit }
    }

    /// Bytes waiting to be written.
    pub fn queued(&self) -> usize {
        self.queued
    }

    pub fn is_empty(&self) -> bool {
        self.queued == 0
    }

    /// When the oldest line still (partly) unsent was queued.
    pub fn oldest_stamp(&self) -> Option<u32> {
        self.chunks.front().map(|(_, stamp)| *stamp)
    }

    /// How long the oldest line still (partly) unsent has waited at
    /// `now_ms` (`flow::millis`); zero when nothing is queued.
    pub fn lag(&self, now_ms: u32) -> std::time::Duration {
        self.oldest_stamp().map_or(std::time::Duration::ZERO, |s| crate::server::flow::age(s, now_ms))
    }

    /// Queues `bytes`, queued at `stamp`, unless that would take the queue
    /// past its limit.
    pub fn push(&mut self, bytes: Arc<[u8]>, stamp: u32) -> Result<(), Overflow> {
        if self.queued + bytes.len() > self.limit {
            return Err(Overflow);
        }
        self.push_unbounded(bytes, stamp);
        Ok(())
    }

    /// Queues `bytes` whatever the limit: for the one closing line a dropped
    /// client is still owed.
    pub fn push_unbounded(&mut self, bytes: Arc<[u8]>, stamp: u32) {
        if bytes.is_empty() {
            return;
        }
        self.queued += bytes.len();
        self.chunks.push_back((bytes, stamp));
    }

    /// Forgets everything not yet started, keeping the rest of a line that is
    /// half written so the client never sees a torn line.
    pub fn discard_unstarted(&mut self) {
        let keep = if self.front_written > 0 { 1 } else { 0 };
        while self.chunks.len() > keep {
            if let Some((chunk, _)) = self.chunks.pop_back() {
                self.queued -= chunk.len();
            }
        }
    }

    /// Writes until the queue is empty or the writer would block. Other
    /// errors are returned; the queue is then left as it was.
    pub fn write_to(&mut self, writer: &mut impl Write) -> io::Result<Flush> {
        while !self.chunks.is_empty() {
            let written = {
                let mut slices = Vec::with_capacity(self.chunks.len().min(MAX_SLICES));
                for (i, (chunk, _)) in self.chunks.iter().take(MAX_SLICES).enumerate() {
                    let start = if i == 0 { self.front_written } else { 0 };
                    slices.push(IoSlice::new(&chunk[start..]));
                }
                match writer.write_vectored(&slices) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Flush::Blocked),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            };
            self.consume(written);
        }
        // A writer that encodes (TLS, WebSocket) may hold bytes the socket
        // has not taken: the queue is drained only once they are out.
        match writer.flush() {
            Ok(()) => Ok(Flush::Drained),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Flush::Blocked),
            Err(e) => Err(e),
        }
    }

    fn consume(&mut self, mut written: usize) {
        self.queued -= written;
        if self.queued == 0 {
            self.chunks.clear();
            self.front_written = 0;
            // A burst (say, thousands of JOINs) can leave a large ring
            // behind; an idle connection should not keep it.
            if self.chunks.capacity() > IDLE_CHUNKS {
                self.chunks = VecDeque::new();
            }
            return;
        }
        while written > 0 {
            let Some((front, _)) = self.chunks.front() else {
                break;
            };
            let left = front.len() - self.front_written;
            if written >= left {
                written -= left;
                self.chunks.pop_front();
                self.front_written = 0;
            } else {
                self.front_written += written;
                written = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that takes at most `room` bytes, then would block.
    struct Throttled {
        taken: Vec<u8>,
        room: usize,
    }

    impl Write for Throttled {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(self.room).min(3);
            self.room -= n;
            self.taken.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn chunk(s: &str) -> Arc<[u8]> {
        s.as_bytes().into()
    }

    #[test]
    fn drains_in_order_across_partial_writes() {
        let mut q = SendQueue::new(100);
        q.push(chunk("hello "), 1).unwrap();
        q.push(chunk("world\r\n"), 2).unwrap();
        let mut w = Throttled { taken: Vec::new(), room: 5 };
        assert_eq!(q.oldest_stamp(), Some(1));
        assert_eq!(q.write_to(&mut w).unwrap(), Flush::Blocked);
        assert_eq!(q.queued(), 8);
        assert_eq!(q.oldest_stamp(), Some(1), "a line partly sent is still the oldest");
        w.room = 100;
        assert_eq!(q.write_to(&mut w).unwrap(), Flush::Drained);
        assert_eq!(w.taken, b"hello world\r\n");
        assert!(q.is_empty());
        assert_eq!(q.oldest_stamp(), None);
    }

    #[test]
    fn refuses_past_the_limit_but_takes_the_closing_line() {
        let mut q = SendQueue::new(10);
        q.push(chunk("12345678"), 0).unwrap();
        assert_eq!(q.push(chunk("abc"), 0), Err(Overflow));
        assert_eq!(q.queued(), 8);
        q.push_unbounded(chunk("ERROR\r\n"), 0);
        assert_eq!(q.queued(), 15);
    }

    #[test]
    fn discard_keeps_a_half_written_line_whole() {
        let mut q = SendQueue::new(100);
        q.push(chunk("first\r\n"), 0).unwrap();
        q.push(chunk("second\r\n"), 0).unwrap();
        let mut w = Throttled { taken: Vec::new(), room: 3 };
        q.write_to(&mut w).unwrap();
        q.discard_unstarted();
        q.push_unbounded(chunk("bye\r\n"), 0);
        w.room = 100;
        q.write_to(&mut w).unwrap();
        assert_eq!(w.taken, b"first\r\nbye\r\n");
    }
}
