//! Framing: splitting a client's byte stream into lines.
//!
//! A chat server reads whatever the kernel hands it, which may be half a
//! line, many lines, or an endless line from a hostile client. This module
//! turns those chunks into [`Frame`]s while keeping memory bounded: the only
//! bytes it ever holds are the unfinished line (at most the line limit) plus
//! one read's worth of fresh data, and lines that are already complete.
//!
//! The limit is IRC's, with IRCv3 message tags: a line may start with a
//! tag section (`@` up to the first space) of at most
//! [`MAX_CLIENT_TAGS_BYTES`], and what follows it is held to the classic
//! [`MAX_LINE_BYTES`] on its own ([`LineLimits`]). A line that does not
//! start with `@` is all "rest". Framing runs before anyone knows whether
//! the client speaks IRC at all, so it allows what IRC allows; a plain
//! client's tighter limit is its session's to apply.
//!
//! The shape follows from that goal:
//! * Lines are cut as soon as bytes arrive, not when a frame is asked for, so
//!   an overlong line is noticed and dropped while it streams in instead of
//!   after it has been buffered whole: the unfinished line is judged as if
//!   it ended now, which is the shortest it can still turn out to be.
//! * The unfinished line never contains an LF, and where its tag section
//!   ends is remembered once seen, so nothing is ever scanned twice for
//!   either: each received byte is looked at once for each.
//! * [`LineReader::read_from`] reads straight into the spare end of the same
//!   buffer, so the hot path copies each byte only into the frame handed out.
//!
//! It performs no I/O of its own beyond that optional read helper and never
//! panics, whatever the bytes or the configured limit.

use std::collections::VecDeque;
use std::io::{self, Read};

pub use crate::wire::tags::MAX_CLIENT_TAGS_BYTES;

/// Longest IRC line, including the CR LF (RFC 1459 / Modern IRC), not
/// counting an IRCv3 tag section before it.
pub const MAX_LINE_BYTES: usize = 512;

/// How long a line may be, in its two parts, each bounded on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineLimits {
    /// The tag section: its `@`, the tag data and the space after it.
    pub tags: usize,
    /// The rest, counting the line ending as CR LF whatever was sent.
    pub rest: usize,
}

impl LineLimits {
    /// What an IRC client may send (IRCv3 message-tags' "size limit").
    pub const IRC: LineLimits = LineLimits { tags: MAX_CLIENT_TAGS_BYTES, rest: MAX_LINE_BYTES };

    /// Whether `body` (a line without its ending) is longer than allowed.
    /// `tag_end` is where its tag section's space is, if it starts with `@`
    /// and has one (see [`tag_end`]).
    fn exceeded_by(&self, body: &[u8], tag_end: Option<usize>) -> bool {
        let (tag_word, rest) = match (body.first(), tag_end) {
            (Some(b'@'), Some(space)) => (space, body.len() - space - 1),
            (Some(b'@'), None) => (body.len(), 0),
            _ => (0, body.len()),
        };
        tag_word > self.tags.saturating_sub(1) || rest > self.rest.saturating_sub(2)
    }

    /// The longest body (a line without its ending) these limits accept.
    pub fn longest_body(&self) -> usize {
        self.tags.saturating_sub(1).saturating_add(1).saturating_add(self.rest.saturating_sub(2))
    }
}

/// Where the tag section of `line` ends (its first space), looking from
/// `from` on (the bytes before it are known to hold none); `None` if the
/// line does not start with `@` or has no space there.
fn tag_end(line: &[u8], from: usize) -> Option<usize> {
    if line.first() != Some(&b'@') {
        return None;
    }
    let from = from.min(line.len());
    line[from..].iter().position(|&b| b == b' ').map(|i| from + i)
}

/// Buffer capacity an idle reader may keep; more is released once empty.
const IDLE_CAPACITY: usize = 1024;

/// How much [`LineReader::read_from`] asks for at once; also the chunk size
/// [`LineReader::push`] works in, so both share the same memory bound.
const READ_CHUNK: usize = 4096;

/// One unit produced by the [`LineReader`].
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// One line's bytes without the trailing LF or CR LF. Never empty.
    Line(Vec<u8>),
    /// A line longer than the limit was seen; its bytes are dropped up to and including its LF.
    TooLong,
}

/// Splits a byte stream into lines, dropping overlong ones as they arrive.
#[derive(Debug)]
pub struct LineReader {
    limits: LineLimits,
    /// The start of the line still waiting for its LF. Never holds an LF
    /// between calls, so scanning can always start at the fresh bytes.
    partial: Vec<u8>,
    /// Where `partial`'s tag section ends, once seen: a long tag section
    /// trickling in is scanned for its space only once.
    partial_tag_end: Option<usize>,
    /// Set while the rest of an overlong line is being skipped; `partial` is
    /// empty then, because those bytes are of no use to anyone.
    discarding: bool,
    /// Frames already cut but not yet taken. Kept in arrival order so a
    /// `TooLong` sits exactly where its line was.
    ready: VecDeque<Frame>,
    /// Bytes of the lines in `ready` (flood control bounds what a client
    /// may have waiting, see [`held`](Self::held)).
    ready_bytes: usize,
}

impl LineReader {
    /// A reader that passes lines within `limits` on and reports longer
    /// ones as [`Frame::TooLong`].
    pub fn new(limits: LineLimits) -> Self {
        Self {
            limits,
            // Allocated lazily: a caller-chosen limit must not be able to
            // trigger a huge (or failing) allocation up front.
            partial: Vec::new(),
            partial_tag_end: None,
            discarding: false,
            ready: VecDeque::new(),
            ready_bytes: 0,
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        // Working in read-sized chunks keeps the buffer's high-water mark the
        // same as with `read_from`, even if a caller pushes megabytes at once.
        for chunk in bytes.chunks(READ_CHUNK) {
            let old_len = self.partial.len();
            self.partial.extend_from_slice(chunk);
            self.absorb(old_len);
        }
    }

    /// Reads once from `source` straight into the internal buffer (no extra copy), returns the byte count
    /// (0 = end of stream); passes io errors (including WouldBlock) through unchanged.
    pub fn read_from(&mut self, source: &mut impl Read) -> io::Result<usize> {
        let old_len = self.partial.len();
        // Zero-filling the spare area is what lets safe code hand it to
        // `read`; 4 KiB of memset is cheap next to a syscall.
        self.partial.resize(old_len.saturating_add(READ_CHUNK), 0);
        match source.read(&mut self.partial[old_len..]) {
            Ok(n) => {
                // A misbehaving reader may claim more than it was given;
                // never trust it beyond the area it could have filled.
                let n = n.min(READ_CHUNK);
                self.partial.truncate(old_len + n);
                self.absorb(old_len);
                Ok(n)
            }
            Err(e) => {
                self.partial.truncate(old_len);
                Err(e)
            }
        }
    }

    /// The next complete frame, or None when more bytes are needed.
    pub fn next_frame(&mut self) -> Option<Frame> {
        let frame = self.ready.pop_front();
        self.ready_bytes -= frame.as_ref().map_or(0, frame_bytes);
        if frame.is_none() && self.ready.capacity() > IDLE_CAPACITY / 64 {
            self.ready = VecDeque::new();
        }
        frame
    }

    /// Whether complete frames are waiting to be taken.
    pub fn has_frames(&self) -> bool {
        !self.ready.is_empty()
    }

    /// Every byte received and not yet taken: complete lines waiting in
    /// the reader plus the unfinished one.
    pub fn held(&self) -> usize {
        self.ready_bytes + self.partial.len()
    }

    /// Bytes held waiting for a line end (never more than the longest line
    /// plus one read's worth; see below).
    ///
    /// Between calls it is in fact at most the longest body plus one byte
    /// (a CR whose LF has not arrived yet); the extra read's worth only exists
    /// inside [`read_from`](Self::read_from). Complete lines not yet taken
    /// with [`next_frame`](Self::next_frame) are not counted, so callers
    /// should drain frames after each read.
    pub fn buffered(&self) -> usize {
        self.partial.len()
    }

    /// Cuts every complete line out of `partial`, whose bytes from `fresh`
    /// on have just arrived, and leaves only the unfinished tail behind.
    fn absorb(&mut self, fresh: usize) {
        let mut line_start = 0;
        let mut scan = fresh;
        while let Some(offset) = self.partial[scan..].iter().position(|&b| b == b'\n') {
            let lf = scan + offset;
            if self.discarding {
                // The LF ends the overlong line already reported.
                self.discarding = false;
            } else {
                if let Some(frame) = cut(&self.partial[line_start..lf], self.limits) {
                    self.ready_bytes += frame_bytes(&frame);
                    self.ready.push_back(frame);
                }
            }
            line_start = lf + 1;
            scan = line_start;
        }

        if line_start > 0 {
            // The unfinished line is a new one, all of it fresh.
            self.partial_tag_end = None;
        }
        if !self.discarding {
            let tail = &self.partial[line_start..];
            if self.partial_tag_end.is_none() {
                self.partial_tag_end = tag_end(tail, fresh.saturating_sub(line_start));
            }
            if unfinished_too_long(tail, self.partial_tag_end, self.limits) {
                self.ready.push_back(Frame::TooLong);
                self.ready_bytes += frame_bytes(&Frame::TooLong);
                self.discarding = true;
            }
        }
        if self.discarding {
            self.partial.clear();
            self.partial_tag_end = None;
        } else {
            self.partial.drain(..line_start);
        }
        // An idle connection should hold no buffer: servers keep thousands
        // of readers, and nearly all of them sit between lines.
        if self.partial.is_empty() && self.partial.capacity() > IDLE_CAPACITY {
            self.partial = Vec::new();
        }
    }
}

impl Default for LineReader {
    fn default() -> Self {
        Self::new(LineLimits::IRC)
    }
}

/// What a waiting frame counts for in [`LineReader::held`]: its line with
/// the ending (an overlong line's bytes are already gone: one byte).
fn frame_bytes(frame: &Frame) -> usize {
    match frame {
        Frame::Line(body) => body.len() + 2,
        Frame::TooLong => 1,
    }
}

/// Turns one line (without its LF) into a frame, or nothing for an empty
/// line, which the protocol says to ignore silently.
fn cut(line: &[u8], limits: LineLimits) -> Option<Frame> {
    let body = line.strip_suffix(b"\r").unwrap_or(line);
    if body.is_empty() {
        None
    } else if limits.exceeded_by(body, tag_end(body, 0)) {
        Some(Frame::TooLong)
    } else {
        Some(Frame::Line(body.to_vec()))
    }
}

/// Whether the line `tail` begins is too long already, whatever follows:
/// judged as if it ended now (a last CR then being its CR LF's), the
/// shortest it can turn out to be, since more bytes only lengthen the tag
/// section or the rest.
fn unfinished_too_long(tail: &[u8], tag_end: Option<usize>, limits: LineLimits) -> bool {
    let shortest = tail.strip_suffix(b"\r").unwrap_or(tail);
    limits.exceeded_by(shortest, tag_end)
}

#[cfg(test)]
mod tests;
