//! The fuzz targets' bodies and their oracles.
//!
//! A fuzzer that only looks for panics would never have found a user name
//! that splits a source prefix: nothing panics, every line is still a line.
//! So each target checks what chatter promises about everything it
//! writes, and that is what fails when a field escapes its place:
//!
//! * every line ends in CR LF, is at most 512 bytes after its IRCv3 tag
//!   section (a section of its own, at most 8191 bytes, for IRC clients
//!   only), and has no CR, LF or NUL before its end;
//! * framing passes on only lines a client may send: a tag section of at
//!   most 4096 bytes (the `@` and the space included), then at most 510;
//! * to an IRC client, every line parses; a line whose source is a user is
//!   `nick!user@host` with a valid nick and user name, and its command is
//!   one a user's action can cause (no client makes others see a QUIT,
//!   KILL or numeric the server did not say);
//! * to a plain client, no line holds a control character (nothing drives
//!   the terminal);
//! * replicas of the directory fed the same events stay identical and
//!   render the same bytes for their own connections.
//!
//! The bodies live here, not in `fuzz_targets/`, so that a crash found by
//! the fuzzer can be replayed from a unit test or a debugger as plain Rust.

use std::collections::HashMap;
use std::sync::Arc;

use chatter::chat::{
    Action, ConnId, Deliveries, Event, Listing, Protocol, ServerInfo, Session, State, render,
};
use chatter::wire::message::write_line;
use chatter::wire::{Frame, LineReader, MAX_LINE_BYTES, Message};

const SERVER: &str = "chatter.local";

/// The most bytes of tags a server may write before a line, `@` and space
/// included, and a client may send (IRCv3 message-tags). Written here,
/// not taken from chatter, so the oracle does not share what it checks.
const SERVER_TAGS_MAX: usize = 8191;
const CLIENT_TAGS_MAX: usize = 4096;

/// The length of the tag section `body` starts with, its space included
/// (0 without one; a line of tags alone is all tag section).
fn tags_len(body: &[u8]) -> usize {
    if body.first() != Some(&b'@') {
        return 0;
    }
    body.iter().position(|&b| b == b' ').map_or(body.len(), |space| space + 1)
}

/// Commands a line whose source is a user may carry.
const USER_COMMANDS: &[&str] =
    &["PRIVMSG", "NOTICE", "TAGMSG", "JOIN", "PART", "QUIT", "NICK", "TOPIC", "MODE", "KICK", "INVITE"];

/// Splits `bytes` into lines, checking the framing of each (a tag section
/// counts apart where `tagged`: output for IRC clients); returns the
/// bodies (without CR LF).
fn lines(bytes: &[u8], tagged: bool) -> Vec<&[u8]> {
    assert!(bytes.is_empty() || bytes.ends_with(b"\r\n"), "output does not end a line: {bytes:?}");
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let end = rest.windows(2).position(|w| w == b"\r\n").expect("each line ends in CR LF");
        let body = &rest[..end];
        let tags = if tagged { tags_len(body) } else { 0 };
        assert!(tags <= SERVER_TAGS_MAX, "{tags} bytes of tags: {:?}", String::from_utf8_lossy(body));
        assert!(
            end - tags + 2 <= MAX_LINE_BYTES,
            "a {}-byte line after its tags: {:?}",
            end - tags + 2,
            String::from_utf8_lossy(body)
        );
        assert!(
            !body.iter().any(|&b| matches!(b, b'\r' | b'\n' | 0)),
            "a line break inside a line: {:?}",
            String::from_utf8_lossy(body)
        );
        out.push(body);
        rest = &rest[end + 2..];
    }
    out
}

/// What every line written to an IRC client must be.
pub fn check_irc_output(bytes: &[u8]) {
    for body in lines(bytes, true) {
        let text = std::str::from_utf8(body).expect("output is UTF-8");
        let message = Message::parse(text).unwrap_or_else(|e| panic!("unparseable output {text:?}: {e}"));
        let Some(source) = &message.prefix else { continue };
        if source == SERVER {
            continue;
        }
        if !source.contains('!') {
            // A user's own mode change is sourced by the bare nick.
            assert!(is_name(source, 30) && message.command == "MODE", "odd source in {text:?}");
            continue;
        }
        let (nick, rest) = source.split_once('!').expect("has '!'");
        let (user, host) = rest.split_once('@').unwrap_or_else(|| panic!("no '@' in source of {text:?}"));
        assert!(is_name(nick, 30), "bad nick in source of {text:?}");
        assert!(is_name(user, 10), "bad user name in source of {text:?}");
        assert!(!host.is_empty() && !host.contains(['!', '@']), "bad host in source of {text:?}");
        assert!(
            USER_COMMANDS.contains(&message.command.as_str()),
            "a user's line carries {}: {text:?}",
            message.command
        );
    }
}

/// A name that can sit in a source: printable ASCII without the
/// characters that delimit a source or a parameter. Written here, not
/// taken from chatter, so the oracle does not share the code it checks.
fn is_name(name: &str, max: usize) -> bool {
    !name.is_empty()
        && name.len() <= max
        && name.bytes().all(|b| b.is_ascii_graphic() && !matches!(b, b'!' | b'@' | b':' | b','))
}

/// What every line written to a plain client must be.
pub fn check_plain_output(bytes: &[u8]) {
    for body in lines(bytes, false) {
        let text = std::str::from_utf8(body).expect("output is UTF-8");
        assert!(!text.chars().any(char::is_control), "a control character for a terminal: {text:?}");
    }
}

/// The wire target: framing in arbitrary chunks, parsing, and writing
/// back, plus `write_line` with fields carved from the input.
pub fn wire(data: &[u8]) {
    let Some((&chunk, rest)) = data.split_first() else { return };
    let chunk = usize::from(chunk).max(1);
    let mut reader = LineReader::default();
    for piece in rest.chunks(chunk) {
        reader.push(piece);
        assert!(reader.buffered() <= CLIENT_TAGS_MAX + MAX_LINE_BYTES + 4096, "framing holds too much");
        while let Some(frame) = reader.next_frame() {
            let Frame::Line(line) = frame else { continue };
            let tags = tags_len(&line);
            assert!(tags <= CLIENT_TAGS_MAX, "{tags} bytes of tags passed on");
            assert!(line.len() - tags <= MAX_LINE_BYTES - 2 && !line.contains(&b'\n'));
            if let Ok(message) = Message::from_line(&line) {
                let mut out = Vec::new();
                message.write_to(&mut out);
                lines(&out, false);
                let again = Message::parse(std::str::from_utf8(&out[..out.len() - 2]).unwrap()).unwrap();
                // Written back, a line can grow (an invalid byte read as
                // U+FFFD is three) and be cut; an uncut one keeps its command.
                if out.len() < MAX_LINE_BYTES - 3 {
                    assert_eq!(again.command, message.command);
                }
            }
        }
    }
    // Fields separated by NUL bytes in the input, whatever they hold.
    let text = String::from_utf8_lossy(rest);
    let fields: Vec<&str> = text.split('\u{0}').collect();
    if fields.len() >= 3 {
        let (prefix, middle, trailing) = (fields[0], &fields[1..fields.len() - 1], fields[fields.len() - 1]);
        let mut out = Vec::new();
        write_line(&mut out, Some(prefix), "PRIVMSG", middle, Some(trailing));
        let body = lines(&out, false)[0];
        let parsed = Message::parse(std::str::from_utf8(body).unwrap()).unwrap();
        assert!(parsed.prefix.is_some() && parsed.command == "PRIVMSG");
        // A cut line keeps at least 507 bytes of body (the cut backs off at
        // most three bytes of a character): anything shorter was not cut,
        // and must hold exactly the fields it was given.
        if out.len() < MAX_LINE_BYTES - 3 {
            assert_eq!(parsed.params.len(), middle.len() + 1, "a field split: {body:?}");
        }
    }
}

struct Conn {
    id: ConnId,
    session: Session,
    reader: LineReader,
    closed: bool,
}

/// The session target. The input is records `[selector][length][bytes]`:
/// the bytes are what connection `selector % 4` sends next. Lines go
/// through each connection's framing and session; events are applied to
/// a full directory and to two worker replicas; everything written is
/// checked against the oracles for its receiver's protocol.
pub fn sessions(data: &[u8]) {
    let mut info = ServerInfo::new(SERVER);
    // Small limits, so that the fuzzer reaches them.
    info.channels_per_client = 4;
    info.max_channels = 6;
    let info = Arc::new(info);
    let mut full = State::new(info.clone());
    let mut replicas = [State::new(info.clone()), State::new(info.clone())];
    let mut conns: Vec<Conn> = (0..4u32)
        .map(|slot| {
            let id = ConnId { worker: (slot % 2) as u16, slot, generation: 0 };
            Conn {
                id,
                session: Session::new(id, "10.0.0.1", info.clone()),
                reader: LineReader::default(),
                closed: false,
            }
        })
        .collect();
    let now = 1_700_000_000;
    let mut rest = data;
    while let [selector, length, tail @ ..] = rest {
        let take = usize::from(*length).min(tail.len());
        let (bytes, next) = tail.split_at(take);
        rest = next;
        let index = usize::from(*selector) % conns.len();
        if conns[index].closed {
            continue;
        }
        conns[index].reader.push(bytes);
        while let Some(frame) = conns[index].reader.next_frame() {
            let mut actions = Vec::new();
            let conn = &mut conns[index];
            match frame {
                Frame::Line(line) => conn.session.on_line(&line, &full, now, &mut actions),
                Frame::TooLong => conn.session.on_too_long(&full, &mut actions),
            }
            let id = conn.id;
            for action in actions {
                match action {
                    Action::Reply(bytes) => check_for(&full, &conns, id, &bytes),
                    Action::Event(event) => apply(&mut full, &mut replicas, &conns, &event),
                    Action::Listing(listing) => stream(&full, &conns, id, listing),
                    Action::Close => conns[index].closed = true,
                    // Rereading a file is the model's, and no one here
                    // is an operator (the fuzzed server has none).
                    Action::Rehash => {}
                }
            }
            if conns[index].closed {
                break;
            }
        }
    }
    for replica in &replicas {
        assert_eq!(replica.digest(), full.digest(), "a replica disagrees");
    }
}

/// The protocol `conn`'s bytes are checked against.
fn protocol_of(state: &State, conns: &[Conn], conn: ConnId) -> Protocol {
    state
        .user(conn)
        .map(|u| u.protocol)
        .or_else(|| conns.iter().find(|c| c.id == conn).and_then(|c| c.session.protocol()))
        .unwrap_or(Protocol::Irc)
}

fn check_for(state: &State, conns: &[Conn], conn: ConnId, bytes: &[u8]) {
    match protocol_of(state, conns, conn) {
        Protocol::Irc => check_irc_output(bytes),
        Protocol::Plain => check_plain_output(bytes),
    }
}

/// Applies `event` everywhere; checks what it delivers and that each
/// worker replica renders exactly the full directory's bytes for its own
/// connections.
fn apply(full: &mut State, replicas: &mut [State; 2], conns: &[Conn], event: &Event) {
    // Protocols before the event: a QUIT's lines go to users it removes.
    let protocols: HashMap<ConnId, Protocol> =
        conns.iter().map(|c| (c.id, protocol_of(full, conns, c.id))).collect();
    let everything = apply_for(full, event, |_| true);
    for d in &everything.items {
        let protocol = full.user(d.to).map(|u| u.protocol).unwrap_or(protocols[&d.to]);
        match protocol {
            Protocol::Irc => check_irc_output(&d.bytes),
            Protocol::Plain => check_plain_output(&d.bytes),
        }
    }
    for (worker, replica) in replicas.iter_mut().enumerate() {
        let rendered = apply_for(replica, event, |c| usize::from(c.worker) == worker);
        for c in conns.iter().filter(|c| usize::from(c.id.worker) == worker) {
            assert_eq!(
                rendered.bytes_for(c.id),
                everything.bytes_for(c.id),
                "replica {worker} renders differently"
            );
        }
    }
    for (to, listing) in everything.listings {
        stream(full, conns, to, listing);
    }
}

/// Applies `event` and renders it for the connections `serves` accepts.
fn apply_for(state: &mut State, event: &Event, serves: impl Fn(ConnId) -> bool) -> Deliveries {
    let mut changes = Vec::new();
    state.apply(event, &mut changes);
    let mut out = Deliveries::default();
    render(state, &changes, serves, &mut out);
    out
}

/// Streams a long reply in small pieces, checking each.
fn stream(state: &State, conns: &[Conn], conn: ConnId, mut listing: Listing) {
    for _ in 0..10_000 {
        let mut piece = Vec::new();
        let done = listing.write_next(state, conn, &mut piece, 700);
        check_for(state, conns, conn, &piece);
        if done {
            return;
        }
    }
    panic!("a listing never ended");
}
