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
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::Cursor;

    fn drain(reader: &mut LineReader) -> Vec<Frame> {
        std::iter::from_fn(|| reader.next_frame()).collect()
    }

    fn line(s: &str) -> Frame {
        Frame::Line(s.as_bytes().to_vec())
    }

    #[test]
    fn held_counts_waiting_lines_and_the_unfinished_one() {
        let mut r = LineReader::default();
        r.push(b"one\r\ntwo\ntail");
        assert_eq!(r.held(), 5 + 5 + 4);
        r.next_frame();
        assert_eq!(r.held(), 5 + 4);
        r.next_frame();
        assert_eq!(r.held(), 4);
        r.push(&[b'x'; 600]);
        r.push(b"\n");
        assert_eq!(r.next_frame(), Some(Frame::TooLong));
        assert_eq!(r.held(), 0);
    }

    #[test]
    fn crlf_and_lf_endings() {
        let mut r = LineReader::default();
        r.push(b"NICK a\r\nUSER b\n");
        assert_eq!(drain(&mut r), vec![line("NICK a"), line("USER b")]);
        assert_eq!(r.buffered(), 0);
    }

    #[test]
    fn several_lines_in_one_push_and_partial_tail() {
        let mut r = LineReader::default();
        r.push(b"one\r\ntwo\r\nthree\r\nfou");
        assert_eq!(drain(&mut r), vec![line("one"), line("two"), line("three")]);
        assert_eq!(r.buffered(), 3);
        r.push(b"r\r\n");
        assert_eq!(drain(&mut r), vec![line("four")]);
    }

    #[test]
    fn line_split_byte_by_byte() {
        let mut r = LineReader::default();
        let input = b"PRIVMSG #c :hello there\r\nPING x\n";
        let mut got = Vec::new();
        for b in input {
            r.push(std::slice::from_ref(b));
            got.extend(drain(&mut r));
        }
        assert_eq!(got, vec![line("PRIVMSG #c :hello there"), line("PING x")]);
    }

    #[test]
    fn crlf_split_between_pushes() {
        let mut r = LineReader::default();
        r.push(b"abc\r");
        assert_eq!(r.next_frame(), None);
        r.push(b"\n");
        assert_eq!(drain(&mut r), vec![line("abc")]);
    }

    #[test]
    fn empty_lines_skipped_and_lone_cr_kept() {
        let mut r = LineReader::default();
        r.push(b"\r\n\n\r\na\rb\r\n\r\r\n");
        assert_eq!(drain(&mut r), vec![Frame::Line(b"a\rb".to_vec()), Frame::Line(b"\r".to_vec())]);
    }

    #[test]
    fn body_exactly_at_limit_is_accepted() {
        for ending in [&b"\r\n"[..], b"\n"] {
            let mut r = LineReader::default();
            let body = vec![b'x'; MAX_LINE_BYTES - 2];
            r.push(&body);
            r.push(ending);
            assert_eq!(drain(&mut r), vec![Frame::Line(body)]);
        }
    }

    #[test]
    fn body_one_over_limit_is_too_long_then_recovers() {
        for ending in [&b"\r\n"[..], b"\n"] {
            let mut r = LineReader::default();
            r.push(&[b'x'; MAX_LINE_BYTES - 1]);
            r.push(ending);
            r.push(b"NEXT\r\n");
            assert_eq!(drain(&mut r), vec![Frame::TooLong, line("NEXT")]);
        }
    }

    #[test]
    fn overlong_in_single_push_keeps_order() {
        let mut r = LineReader::default();
        let mut input = b"before\r\n".to_vec();
        input.extend(vec![b'y'; 600]);
        input.extend(b"\r\nafter\r\n");
        r.push(&input);
        assert_eq!(drain(&mut r), vec![line("before"), Frame::TooLong, line("after")]);
    }

    #[test]
    fn huge_line_without_lf_stays_bounded() {
        let mut r = LineReader::default();
        let piece = vec![b'z'; 1000];
        let mut frames = Vec::new();
        for _ in 0..100 {
            r.push(&piece);
            assert!(r.buffered() < MAX_LINE_BYTES);
            frames.extend(drain(&mut r));
        }
        assert_eq!(frames, vec![Frame::TooLong]);
        r.push(b"zzz\r\nok\r\n");
        assert_eq!(drain(&mut r), vec![line("ok")]);
    }

    #[test]
    fn huge_single_push_stays_bounded() {
        let mut r = LineReader::default();
        r.push(&vec![b'z'; 100_000]);
        assert_eq!(r.buffered(), 0);
        assert_eq!(drain(&mut r), vec![Frame::TooLong]);
    }

    #[test]
    fn overlong_lines_back_to_back_without_draining() {
        let mut r = LineReader::new(LineLimits { tags: 8, rest: 8 });
        r.push(b"aaaaaaaaaa");
        r.push(b"\nbbbbbbbbbbbb");
        r.push(b"\nok\n");
        assert_eq!(drain(&mut r), vec![Frame::TooLong, Frame::TooLong, line("ok")]);
    }

    #[test]
    fn tiny_limits_do_not_panic() {
        for max in 0..4 {
            let limits = LineLimits { tags: max, rest: max };
            let mut r = LineReader::new(limits);
            r.push(b"a\n\r\nbb\r\n@\n@ x\n");
            let frames = drain(&mut r);
            assert!(frames.iter().all(|f| match f {
                Frame::Line(l) => l.len() <= limits.longest_body(),
                Frame::TooLong => true,
            }));
        }
        let mut r = LineReader::new(LineLimits { tags: usize::MAX, rest: usize::MAX });
        r.push(b"fine\n@tags fine\n");
        assert_eq!(drain(&mut r), vec![line("fine"), line("@tags fine")]);
    }

    /// `@`, `tag_data` bytes of tags, a space, then `rest` bytes.
    fn tagged(tag_data: usize, rest: usize) -> Vec<u8> {
        let mut line = b"@".to_vec();
        line.resize(1 + tag_data, b't');
        line.push(b' ');
        line.resize(line.len() + rest, b'r');
        line
    }

    #[test]
    fn a_tag_section_has_a_limit_of_its_own() {
        let max_tag_data = MAX_CLIENT_TAGS_BYTES - 2;
        let max_rest = MAX_LINE_BYTES - 2;
        for ending in [&b"\r\n"[..], b"\n"] {
            let mut r = LineReader::default();
            for line in [tagged(max_tag_data, max_rest), tagged(max_tag_data + 1, 1), tagged(1, max_rest + 1)]
            {
                r.push(&line);
                r.push(ending);
            }
            r.push(b"NEXT\r\n");
            assert_eq!(
                drain(&mut r),
                vec![
                    Frame::Line(tagged(max_tag_data, max_rest)),
                    Frame::TooLong,
                    Frame::TooLong,
                    line("NEXT")
                ]
            );
        }
    }

    #[test]
    fn a_line_of_tags_alone_is_held_to_the_tag_limit() {
        let mut r = LineReader::default();
        let mut most = b"@".to_vec();
        most.resize(MAX_CLIENT_TAGS_BYTES - 1, b't');
        r.push(&most);
        r.push(b"\r\n");
        let mut over = most.clone();
        over.push(b't');
        r.push(&over);
        r.push(b"\r\n");
        assert_eq!(drain(&mut r), vec![Frame::Line(most), Frame::TooLong]);
    }

    #[test]
    fn only_a_leading_at_starts_a_tag_section() {
        let mut r = LineReader::default();
        let mut line = b" @".to_vec();
        line.resize(600, b't');
        r.push(&line);
        r.push(b"\n");
        assert_eq!(drain(&mut r), vec![Frame::TooLong], "a line that does not start with @ is all rest");
    }

    #[test]
    fn a_long_tag_section_trickling_in_is_dropped_as_it_comes() {
        let mut r = LineReader::default();
        r.push(b"@");
        for _ in 0..10_000 {
            r.push(b"t");
            assert!(r.buffered() <= LineLimits::IRC.longest_body() + 1);
        }
        assert_eq!(drain(&mut r), vec![Frame::TooLong]);
        let mut r = LineReader::default();
        r.push(b"@t ");
        for _ in 0..10_000 {
            r.push(b"r");
            assert!(r.buffered() < MAX_LINE_BYTES + 3, "the rest after a short tag section is held to 512");
        }
        r.push(b"\nok\n");
        assert_eq!(drain(&mut r), vec![Frame::TooLong, line("ok")]);
    }

    #[test]
    fn read_from_cursor() {
        let mut r = LineReader::default();
        let mut src = Cursor::new(b"JOIN #a\r\nPART #a\r\nQU".to_vec());
        assert_eq!(r.read_from(&mut src).unwrap(), 20);
        assert_eq!(drain(&mut r), vec![line("JOIN #a"), line("PART #a")]);
        assert_eq!(r.buffered(), 2);
        assert_eq!(r.read_from(&mut src).unwrap(), 0);
        assert_eq!(r.buffered(), 2);
    }

    #[test]
    fn read_from_large_source_discards_overlong() {
        let mut r = LineReader::default();
        let mut data = vec![b'q'; 50_000];
        data.extend(b"\r\nafter\r\n");
        let mut src = Cursor::new(data);
        let mut frames = Vec::new();
        while r.read_from(&mut src).unwrap() > 0 {
            assert!(r.buffered() < MAX_LINE_BYTES);
            frames.extend(drain(&mut r));
        }
        assert_eq!(frames, vec![Frame::TooLong, line("after")]);
    }

    struct WouldBlock;
    impl Read for WouldBlock {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::ErrorKind::WouldBlock.into())
        }
    }

    #[test]
    fn read_from_passes_would_block_through() {
        let mut r = LineReader::default();
        r.push(b"part");
        let err = r.read_from(&mut WouldBlock).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        assert_eq!(r.buffered(), 4);
        r.push(b"ial\n");
        assert_eq!(drain(&mut r), vec![line("partial")]);
    }

    struct Liar;
    impl Read for Liar {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            buf.fill(b'a');
            Ok(usize::MAX)
        }
    }

    #[test]
    fn read_from_survives_reader_overclaiming() {
        let mut r = LineReader::default();
        assert_eq!(r.read_from(&mut Liar).unwrap(), READ_CHUNK);
        assert_eq!(drain(&mut r), vec![Frame::TooLong]);
    }

    /// What the frames must be for the whole input, however it is split.
    fn reference(input: &[u8], limits: LineLimits) -> Vec<Frame> {
        let mut pieces: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
        let tail = pieces.pop().unwrap_or_default();
        let mut frames: Vec<Frame> = pieces.into_iter().filter_map(|l| cut(l, limits)).collect();
        if unfinished_too_long(tail, tag_end(tail, 0), limits) {
            frames.push(Frame::TooLong);
        }
        frames
    }

    fn split_points(len: usize, cuts: &[usize]) -> Vec<usize> {
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (len + 1)).collect();
        points.push(0);
        points.push(len);
        points.sort_unstable();
        points.dedup();
        points
    }

    fn stream_byte() -> impl Strategy<Value = u8> {
        prop_oneof![
            6 => any::<u8>(),
            2 => Just(b'\n'),
            1 => Just(b'\r'),
            3 => Just(b'a'),
            1 => Just(b'@'),
            1 => Just(b' ')
        ]
    }

    fn limits() -> impl Strategy<Value = LineLimits> {
        prop_oneof![
            Just(LineLimits { tags: 0, rest: 0 }),
            Just(LineLimits { tags: 3, rest: 3 }),
            Just(LineLimits { tags: 0, rest: 16 }),
            Just(LineLimits { tags: 24, rest: 16 }),
            Just(LineLimits { tags: 100, rest: MAX_LINE_BYTES }),
            Just(LineLimits::IRC),
        ]
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_bounded_and_split_independent(
            input in prop::collection::vec(stream_byte(), 0..3000),
            cuts in prop::collection::vec(any::<usize>(), 0..20),
            limits in limits(),
        ) {
            let mut r = LineReader::new(limits);
            let mut got = Vec::new();
            for w in split_points(input.len(), &cuts).windows(2) {
                r.push(&input[w[0]..w[1]]);
                prop_assert!(r.buffered() <= limits.longest_body() + 1 + READ_CHUNK);
                got.extend(drain(&mut r));
                prop_assert!(r.buffered() <= limits.longest_body() + 1);
            }
            for f in &got {
                if let Frame::Line(l) = f {
                    prop_assert!(!l.is_empty());
                    prop_assert!(l.len() <= limits.longest_body());
                    prop_assert!(!limits.exceeded_by(l, tag_end(l, 0)));
                    prop_assert!(!l.contains(&b'\n'));
                }
            }
            prop_assert_eq!(got, reference(&input, limits));
        }

        #[test]
        fn valid_lines_survive_any_split(
            lines in prop::collection::vec(
                (
                    proptest::option::of(prop::collection::vec(
                        any::<u8>().prop_filter("no LF or space", |&b| b != b'\n' && b != b' '),
                        0..=MAX_CLIENT_TAGS_BYTES - 2,
                    )),
                    prop::collection::vec(any::<u8>().prop_filter("no LF", |&b| b != b'\n'), 1..=510),
                    any::<bool>(),
                ),
                0..12,
            ),
            cuts in prop::collection::vec(any::<usize>(), 0..30),
        ) {
            // A tag section (`@`, the data, a space) in front of the rest.
            let lines: Vec<(Vec<u8>, bool)> = lines
                .into_iter()
                .map(|(tags, rest, crlf)| match tags {
                    Some(data) => ([&b"@"[..], &data, b" ", &rest].concat(), crlf),
                    None => (rest, crlf),
                })
                .filter(|(l, _)| l.as_slice() != b"\r")
                .collect();
            let mut input = Vec::new();
            let mut expected = Vec::new();
            for (l, crlf) in &lines {
                input.extend_from_slice(l);
                input.extend_from_slice(if *crlf { b"\r\n" } else { b"\n" });
                // With a bare LF a body ending in CR loses that CR, as the
                // client would then have sent a CR LF after all.
                let body = if *crlf { l.as_slice() } else { l.strip_suffix(b"\r").unwrap_or(l) };
                expected.push(Frame::Line(body.to_vec()));
            }
            let mut r = LineReader::default();
            let mut got = Vec::new();
            for w in split_points(input.len(), &cuts).windows(2) {
                r.push(&input[w[0]..w[1]]);
                got.extend(drain(&mut r));
            }
            prop_assert_eq!(r.buffered(), 0);
            prop_assert_eq!(got, expected);
        }
    }
}
