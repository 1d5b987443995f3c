//! Framing under test: line endings, limits (the tag section and the rest
//! apart), bounded memory whatever arrives, and the same frames however
//! the bytes are split.

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
        for line in [tagged(max_tag_data, max_rest), tagged(max_tag_data + 1, 1), tagged(1, max_rest + 1)] {
            r.push(&line);
            r.push(ending);
        }
        r.push(b"NEXT\r\n");
        assert_eq!(
            drain(&mut r),
            vec![Frame::Line(tagged(max_tag_data, max_rest)), Frame::TooLong, Frame::TooLong, line("NEXT")]
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
