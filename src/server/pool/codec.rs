//! A byte encoding of [`Event`] for the slots of the shared-memory event log.
//!
//! The pool models pass events between workers through a log of fixed-size
//! slots in shared memory, so an event has to become a bounded run of bytes
//! and back. Both ends of that log are always the same binary (the log lives
//! only as long as one server run, whose workers all run one executable), so
//! the form is hand-written, compact and versionless: no field names, no
//! schema, no version byte, and no serde dependency for a dozen small
//! structs. Any change to [`Event`] changes this file and both ends at
//! once.
//!
//! The layout is a tag byte naming the variant followed by the variant's
//! fields in declaration order:
//!
//! - [`ConnId`]: `worker` as u16, `slot` as u32, `generation` as u32;
//! - a string: its byte length as u16, then its UTF-8 bytes;
//! - an `Option`: a byte 0 (then nothing) or 1 (then the value);
//! - a `bool`: a byte 0 or 1;
//! - a `u64`: 8 bytes;
//! - [`Protocol`] and [`MessageKind`]: one byte each.
//!
//! Integers are little-endian. Tags start at 1 so that a zeroed slot never
//! decodes as an event. An encoding is never longer than [`MAX_EVENT_BYTES`],
//! which is what lets a slot have a fixed size: [`encode`] cuts strings to
//! fit when an event would be longer (see there), and [`decode`] checks
//! everything, since a slot may hold anything after a bug or a torn write,
//! and never panics.

use crate::chat::{ConnId, Event, MessageKind, Protocol};
use crate::wire::truncate_at_char;

/// Largest encoding of any event. Sessions read lines of at most 512 bytes
/// (510 without CR LF), so every event built from one line plus a host (at
/// most 46 bytes) and a nick fits with room to spare: the largest is a
/// Register, at most about 650 bytes. [`encode`] cuts anything longer.
pub const MAX_EVENT_BYTES: usize = 1000;

// String lengths are written as u16: every string that fits fits in one.
const _: () = assert!(MAX_EVENT_BYTES <= u16::MAX as usize);

const TAG_REGISTER: u8 = 1;
const TAG_NICK: u8 = 2;
const TAG_JOIN: u8 = 3;
const TAG_PART_ALL: u8 = 4;
const TAG_PART: u8 = 5;
const TAG_MESSAGE: u8 = 6;
const TAG_TOPIC: u8 = 7;
const TAG_QUIT: u8 = 8;
const TAG_AWAY: u8 = 9;
const TAG_INVISIBLE: u8 = 10;
const TAG_WORKER_LOST: u8 = 11;

/// Why bytes are not the encoding of an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The bytes end before the event does.
    #[error("event encoding is truncated")]
    Truncated,
    /// The first byte names no variant of `Event`.
    #[error("unknown event tag {0}")]
    UnknownTag(u8),
    /// A string is not valid UTF-8.
    #[error("string in event encoding is not UTF-8")]
    BadUtf8,
    /// An `Option` presence byte or a `bool` is neither 0 nor 1.
    #[error("flag byte {0} in event encoding is neither 0 nor 1")]
    BadFlag(u8),
    /// The byte for a `Protocol` names none.
    #[error("unknown protocol {0} in event encoding")]
    UnknownProtocol(u8),
    /// The byte for a `MessageKind` names none.
    #[error("unknown message kind {0} in event encoding")]
    UnknownKind(u8),
    /// Bytes are left over after a complete event.
    #[error("trailing bytes after event encoding")]
    Trailing,
}

/// One piece of an event's layout; [`encode`] walks these twice, once to
/// size the event and once to write it.
#[derive(Clone, Copy)]
enum Field<'a> {
    U8(u8),
    U16(u16),
    U32(u32),
    U64(u64),
    /// A name (nick, user, host, channel, target): cut only if the event
    /// does not fit even with all its free text removed.
    Name(&'a str),
    /// Free text (message, topic, realname, reason, away message): cut
    /// first when the event does not fit.
    Text(&'a str),
    /// Optional free text: a presence byte, then the text.
    OptText(Option<&'a str>),
}

fn conn_fields<'a>(conn: ConnId, f: &mut impl FnMut(Field<'a>)) {
    f(Field::U16(conn.worker));
    f(Field::U32(conn.slot));
    f(Field::U32(conn.generation));
}

fn protocol_byte(protocol: Protocol) -> u8 {
    match protocol {
        Protocol::Irc => 0,
        Protocol::Plain => 1,
    }
}

fn kind_byte(kind: MessageKind) -> u8 {
    match kind {
        MessageKind::Privmsg => 0,
        MessageKind::Notice => 1,
    }
}

/// Calls `f` with the fields of `event` in encoding order, tag first.
fn fields<'a>(event: &'a Event, mut f: impl FnMut(Field<'a>)) {
    match event {
        Event::Register { conn, nick, user, realname, host, protocol } => {
            f(Field::U8(TAG_REGISTER));
            conn_fields(*conn, &mut f);
            f(Field::Name(nick));
            f(Field::Name(user));
            f(Field::Text(realname));
            f(Field::Name(host));
            f(Field::U8(protocol_byte(*protocol)));
        }
        Event::Nick { conn, nick } => {
            f(Field::U8(TAG_NICK));
            conn_fields(*conn, &mut f);
            f(Field::Name(nick));
        }
        Event::Join { conn, channel } => {
            f(Field::U8(TAG_JOIN));
            conn_fields(*conn, &mut f);
            f(Field::Name(channel));
        }
        Event::PartAll { conn } => {
            f(Field::U8(TAG_PART_ALL));
            conn_fields(*conn, &mut f);
        }
        Event::Part { conn, channel, reason } => {
            f(Field::U8(TAG_PART));
            conn_fields(*conn, &mut f);
            f(Field::Name(channel));
            f(Field::OptText(reason.as_deref()));
        }
        Event::Message { conn, kind, target, text } => {
            f(Field::U8(TAG_MESSAGE));
            conn_fields(*conn, &mut f);
            f(Field::U8(kind_byte(*kind)));
            f(Field::Name(target));
            f(Field::Text(text));
        }
        Event::Topic { conn, channel, topic, at } => {
            f(Field::U8(TAG_TOPIC));
            conn_fields(*conn, &mut f);
            f(Field::Name(channel));
            f(Field::Text(topic));
            f(Field::U64(*at));
        }
        Event::Quit { conn, reason } => {
            f(Field::U8(TAG_QUIT));
            conn_fields(*conn, &mut f);
            f(Field::Text(reason));
        }
        Event::Away { conn, message } => {
            f(Field::U8(TAG_AWAY));
            conn_fields(*conn, &mut f);
            f(Field::OptText(message.as_deref()));
        }
        Event::Invisible { conn, on } => {
            f(Field::U8(TAG_INVISIBLE));
            conn_fields(*conn, &mut f);
            f(Field::U8(u8::from(*on)));
        }
        Event::WorkerLost { worker, generation, reason } => {
            f(Field::U8(TAG_WORKER_LOST));
            f(Field::U16(*worker));
            f(Field::U32(*generation));
            f(Field::Text(reason));
        }
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let len = u16::try_from(s.len()).expect("strings are cut to MAX_EVENT_BYTES");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Appends the encoding of `event` to `out`; what it appends is never longer
/// than [`MAX_EVENT_BYTES`].
///
/// An event that would be longer has strings cut, each at a char boundary:
/// first the free text (message text, topic, realname, part and quit
/// reasons, away message; an event has at most one), as far as needed and
/// down to nothing; then, only if that is not enough, the names (nick, user,
/// host, channel, target), later fields before earlier ones. The decoded
/// event then holds those prefixes. Sessions never produce an event that
/// needs cutting, because a line is at most 510 bytes and everything else an
/// event holds is short (see [`MAX_EVENT_BYTES`]); cutting only keeps a
/// buggy or hostile producer from overflowing a slot.
pub fn encode(event: &Event, out: &mut Vec<u8>) {
    let (mut fixed, mut names, mut texts) = (0, 0, 0);
    fields(event, |field| match field {
        Field::U8(_) => fixed += 1,
        Field::U16(_) => fixed += 2,
        Field::U32(_) => fixed += 4,
        Field::U64(_) => fixed += 8,
        Field::Name(s) => {
            fixed += 2;
            names += s.len();
        }
        Field::Text(s) => {
            fixed += 2;
            texts += s.len();
        }
        Field::OptText(s) => {
            fixed += 1;
            if let Some(s) = s {
                fixed += 2;
                texts += s.len();
            }
        }
    });
    // Room for string bytes: names get it first, free text what is left.
    let room = MAX_EVENT_BYTES.saturating_sub(fixed);
    let mut name_room = names.min(room);
    let mut text_room = texts.min(room - name_room);
    fields(event, |field| match field {
        Field::U8(b) => out.push(b),
        Field::U16(v) => out.extend_from_slice(&v.to_le_bytes()),
        Field::U32(v) => out.extend_from_slice(&v.to_le_bytes()),
        Field::U64(v) => out.extend_from_slice(&v.to_le_bytes()),
        Field::Name(s) => {
            let s = truncate_at_char(s, name_room);
            name_room -= s.len();
            put_str(out, s);
        }
        Field::Text(s) | Field::OptText(Some(s)) => {
            if matches!(field, Field::OptText(_)) {
                out.push(1);
            }
            let s = truncate_at_char(s, text_room);
            text_room -= s.len();
            put_str(out, s);
        }
        Field::OptText(None) => out.push(0),
    });
}

/// Reads fields off the front of a byte slice, failing instead of panicking
/// when the bytes run out or are malformed.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let (head, rest) = self.rest.split_first_chunk::<N>().ok_or(DecodeError::Truncated)?;
        self.rest = rest;
        Ok(*head)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        self.take::<1>().map(|[b]| b)
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        self.take().map(u16::from_le_bytes)
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        self.take().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        self.take().map(u64::from_le_bytes)
    }

    fn flag(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(DecodeError::BadFlag(b)),
        }
    }

    fn conn(&mut self) -> Result<ConnId, DecodeError> {
        Ok(ConnId { worker: self.u16()?, slot: self.u32()?, generation: self.u32()? })
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        let len = usize::from(self.u16()?);
        let (bytes, rest) = self.rest.split_at_checked(len).ok_or(DecodeError::Truncated)?;
        self.rest = rest;
        std::str::from_utf8(bytes).map(str::to_owned).map_err(|_| DecodeError::BadUtf8)
    }

    fn opt_string(&mut self) -> Result<Option<String>, DecodeError> {
        if self.flag()? { self.string().map(Some) } else { Ok(None) }
    }

    fn protocol(&mut self) -> Result<Protocol, DecodeError> {
        match self.u8()? {
            0 => Ok(Protocol::Irc),
            1 => Ok(Protocol::Plain),
            b => Err(DecodeError::UnknownProtocol(b)),
        }
    }

    fn kind(&mut self) -> Result<MessageKind, DecodeError> {
        match self.u8()? {
            0 => Ok(MessageKind::Privmsg),
            1 => Ok(MessageKind::Notice),
            b => Err(DecodeError::UnknownKind(b)),
        }
    }
}

/// Decodes one event from exactly `bytes`, as [`encode`] wrote it. Bytes
/// left over after the event are an error ([`DecodeError::Trailing`]), as is
/// anything malformed; no input makes this panic.
pub fn decode(bytes: &[u8]) -> Result<Event, DecodeError> {
    let mut r = Reader { rest: bytes };
    let event = match r.u8()? {
        TAG_REGISTER => Event::Register {
            conn: r.conn()?,
            nick: r.string()?,
            user: r.string()?,
            realname: r.string()?,
            host: r.string()?,
            protocol: r.protocol()?,
        },
        TAG_NICK => Event::Nick { conn: r.conn()?, nick: r.string()? },
        TAG_JOIN => Event::Join { conn: r.conn()?, channel: r.string()? },
        TAG_PART_ALL => Event::PartAll { conn: r.conn()? },
        TAG_PART => Event::Part { conn: r.conn()?, channel: r.string()?, reason: r.opt_string()? },
        TAG_MESSAGE => {
            Event::Message { conn: r.conn()?, kind: r.kind()?, target: r.string()?, text: r.string()? }
        }
        TAG_TOPIC => Event::Topic { conn: r.conn()?, channel: r.string()?, topic: r.string()?, at: r.u64()? },
        TAG_QUIT => Event::Quit { conn: r.conn()?, reason: r.string()? },
        TAG_AWAY => Event::Away { conn: r.conn()?, message: r.opt_string()? },
        TAG_INVISIBLE => Event::Invisible { conn: r.conn()?, on: r.flag()? },
        TAG_WORKER_LOST => Event::WorkerLost { worker: r.u16()?, generation: r.u32()?, reason: r.string()? },
        tag => return Err(DecodeError::UnknownTag(tag)),
    };
    if r.rest.is_empty() { Ok(event) } else { Err(DecodeError::Trailing) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encoded(event: &Event) -> Vec<u8> {
        let mut out = Vec::new();
        encode(event, &mut out);
        out
    }

    /// Any chars, at most `max_chars` of them and at most `max_bytes` bytes.
    fn text(max_chars: usize, max_bytes: usize) -> impl Strategy<Value = String> {
        prop::collection::vec(any::<char>(), 0..=max_chars)
            .prop_map(move |chars| truncate_at_char(&String::from_iter(chars), max_bytes).to_owned())
    }

    fn nick() -> impl Strategy<Value = String> {
        text(30, usize::MAX)
    }

    fn user() -> impl Strategy<Value = String> {
        text(10, usize::MAX)
    }

    fn channel() -> impl Strategy<Value = String> {
        text(50, usize::MAX)
    }

    fn line_text() -> impl Strategy<Value = String> {
        text(510, 510)
    }

    fn host() -> impl Strategy<Value = String> {
        text(46, 46)
    }

    fn conn() -> impl Strategy<Value = ConnId> {
        (any::<u16>(), any::<u32>(), any::<u32>()).prop_map(|(worker, slot, generation)| ConnId {
            worker,
            slot,
            generation,
        })
    }

    /// Every variant, with strings of the sizes sessions make.
    fn event() -> impl Strategy<Value = Event> {
        let protocol = prop_oneof![Just(Protocol::Irc), Just(Protocol::Plain)];
        let kind = prop_oneof![Just(MessageKind::Privmsg), Just(MessageKind::Notice)];
        prop_oneof![
            (conn(), nick(), user(), line_text(), host(), protocol).prop_map(
                |(conn, nick, user, realname, host, protocol)| Event::Register {
                    conn,
                    nick,
                    user,
                    realname,
                    host,
                    protocol,
                }
            ),
            (conn(), nick()).prop_map(|(conn, nick)| Event::Nick { conn, nick }),
            (conn(), channel()).prop_map(|(conn, channel)| Event::Join { conn, channel }),
            conn().prop_map(|conn| Event::PartAll { conn }),
            (conn(), channel(), prop::option::of(line_text()))
                .prop_map(|(conn, channel, reason)| Event::Part { conn, channel, reason }),
            (conn(), kind, prop_oneof![nick(), channel()], line_text())
                .prop_map(|(conn, kind, target, text)| Event::Message { conn, kind, target, text }),
            (conn(), channel(), line_text(), any::<u64>())
                .prop_map(|(conn, channel, topic, at)| Event::Topic { conn, channel, topic, at }),
            (conn(), line_text()).prop_map(|(conn, reason)| Event::Quit { conn, reason }),
            (conn(), prop::option::of(line_text())).prop_map(|(conn, message)| Event::Away { conn, message }),
            (conn(), any::<bool>()).prop_map(|(conn, on)| Event::Invisible { conn, on }),
            (any::<u16>(), any::<u32>(), line_text()).prop_map(|(worker, generation, reason)| {
                Event::WorkerLost { worker, generation, reason }
            }),
        ]
    }

    /// The strings of an event, in encoding order.
    fn strings(event: &Event) -> Vec<String> {
        let mut all = Vec::new();
        fields(event, |field| match field {
            Field::Name(s) | Field::Text(s) | Field::OptText(Some(s)) => all.push(s.to_owned()),
            _ => {}
        });
        all
    }

    #[test]
    fn long_message_text_is_cut_at_a_char_boundary_and_decodes() {
        // 'é' is two bytes; with an odd number of bytes before it, no
        // multiple of two lands on a boundary by chance.
        let long = format!("x{}", "é".repeat(2500));
        assert_eq!(long.len(), 5001);
        let conn = ConnId { worker: 3, slot: 7, generation: 9 };
        let event = Event::Message {
            conn,
            kind: MessageKind::Privmsg,
            target: "#rust".to_string(),
            text: long.clone(),
        };
        let bytes = encoded(&event);
        assert!(bytes.len() <= MAX_EVENT_BYTES);
        assert!(bytes.len() >= MAX_EVENT_BYTES - 1, "cut no more than a char: {}", bytes.len());
        let Ok(Event::Message { conn: c, kind, target, text }) = decode(&bytes) else {
            panic!("does not decode as a message");
        };
        assert_eq!((c, kind, target.as_str()), (conn, MessageKind::Privmsg, "#rust"));
        assert!(text.len() < long.len());
        assert!(long.starts_with(&text));
    }

    #[test]
    fn free_text_is_cut_before_names() {
        let event = Event::Register {
            conn: ConnId { worker: 0, slot: 1, generation: 2 },
            nick: "alice".to_string(),
            user: "al".to_string(),
            realname: "r".repeat(5000),
            host: "h".repeat(46),
            protocol: Protocol::Plain,
        };
        let bytes = encoded(&event);
        assert_eq!(bytes.len(), MAX_EVENT_BYTES);
        let Ok(Event::Register { nick, user, realname, host, protocol, .. }) = decode(&bytes) else {
            panic!("does not decode as a register");
        };
        assert_eq!((nick.as_str(), user.as_str(), protocol), ("alice", "al", Protocol::Plain));
        assert_eq!(host, "h".repeat(46));
        assert!(!realname.is_empty() && realname.bytes().all(|b| b == b'r'));
    }

    #[test]
    fn names_are_cut_when_text_is_not_enough() {
        let event = Event::Register {
            conn: ConnId { worker: 0, slot: 1, generation: 2 },
            nick: "n".repeat(600),
            user: "u".repeat(600),
            realname: "some text".to_string(),
            host: "h".repeat(600),
            protocol: Protocol::Irc,
        };
        let bytes = encoded(&event);
        assert_eq!(bytes.len(), MAX_EVENT_BYTES);
        let Ok(Event::Register { nick, user, realname, host, .. }) = decode(&bytes) else {
            panic!("does not decode as a register");
        };
        assert_eq!(nick.len(), 600);
        assert!(!user.is_empty() && user.len() < 600);
        assert_eq!((realname.as_str(), host.as_str()), ("", ""));
    }

    #[test]
    fn appends_to_what_is_there() {
        let event = Event::PartAll { conn: ConnId { worker: 1, slot: 2, generation: 3 } };
        let mut out = vec![0xAA; 5];
        encode(&event, &mut out);
        assert_eq!(out[..5], [0xAA; 5]);
        assert_eq!(out[5..], [TAG_PART_ALL, 1, 0, 2, 0, 0, 0, 3, 0, 0, 0]);
        assert_eq!(decode(&out[5..]), Ok(event));
    }

    #[test]
    fn malformed_input_is_an_error() {
        assert_eq!(decode(&[]), Err(DecodeError::Truncated));
        assert_eq!(decode(&[0]), Err(DecodeError::UnknownTag(0)));
        assert_eq!(decode(&[0; MAX_EVENT_BYTES]), Err(DecodeError::UnknownTag(0)));
        assert_eq!(decode(&[12]), Err(DecodeError::UnknownTag(12)));
        let conn = [0; 10];
        let with = |tag: u8, tail: &[u8]| [&[tag][..], &conn, tail].concat();
        assert_eq!(decode(&with(TAG_INVISIBLE, &[2])), Err(DecodeError::BadFlag(2)));
        assert_eq!(decode(&with(TAG_AWAY, &[7])), Err(DecodeError::BadFlag(7)));
        assert_eq!(decode(&with(TAG_MESSAGE, &[2])), Err(DecodeError::UnknownKind(2)));
        assert_eq!(decode(&with(TAG_JOIN, &[2, 0, 0xC3, 0x28])), Err(DecodeError::BadUtf8));
        assert_eq!(decode(&with(TAG_JOIN, &[3, 0, b'#', b'a'])), Err(DecodeError::Truncated));
        let register = with(TAG_REGISTER, &[0, 0, 0, 0, 0, 0, 0, 0, 9]);
        assert_eq!(decode(&register), Err(DecodeError::UnknownProtocol(9)));
        assert_eq!(decode(&with(TAG_PART_ALL, &[0])), Err(DecodeError::Trailing));
    }

    proptest! {
        #[test]
        fn round_trip(event in event()) {
            let bytes = encoded(&event);
            prop_assert!(bytes.len() <= MAX_EVENT_BYTES);
            prop_assert_eq!(decode(&bytes), Ok(event));
        }

        #[test]
        fn every_strict_prefix_is_truncated_and_extra_bytes_are_trailing(event in event(), extra in any::<u8>()) {
            let mut bytes = encoded(&event);
            for len in 0..bytes.len() {
                prop_assert_eq!(decode(&bytes[..len]), Err(DecodeError::Truncated));
            }
            bytes.push(extra);
            prop_assert_eq!(decode(&bytes), Err(DecodeError::Trailing));
        }

        #[test]
        fn oversized_events_fit_and_keep_prefixes(
            event in event(),
            extra in prop::collection::vec(text(1500, usize::MAX), 5),
        ) {
            // Lengthen every string of a session-sized event, then check that
            // it still fits and each string decodes as a prefix of its own.
            let mut extra = extra.into_iter().cycle();
            let mut grow = |s: &mut String| s.push_str(&extra.next().unwrap_or_default());
            let mut event = event;
            match &mut event {
                Event::Register { nick, user, realname, host, .. } => {
                    for s in [nick, user, realname, host] {
                        grow(s);
                    }
                }
                Event::Nick { nick: s, .. }
                | Event::Join { channel: s, .. }
                | Event::Quit { reason: s, .. }
                | Event::WorkerLost { reason: s, .. } => grow(s),
                Event::Part { channel, reason, .. } => {
                    grow(channel);
                    if let Some(reason) = reason {
                        grow(reason);
                    }
                }
                Event::Message { target, text, .. } => {
                    grow(target);
                    grow(text);
                }
                Event::Topic { channel, topic, .. } => {
                    grow(channel);
                    grow(topic);
                }
                Event::Away { message: Some(message), .. } => grow(message),
                Event::Away { message: None, .. } | Event::PartAll { .. } | Event::Invisible { .. } => {}
            }
            let bytes = encoded(&event);
            prop_assert!(bytes.len() <= MAX_EVENT_BYTES);
            let decoded = decode(&bytes);
            prop_assert!(decoded.is_ok(), "{:?}", decoded);
            let decoded = decoded.unwrap();
            prop_assert_eq!(decoded.conn(), event.conn());
            let (before, after) = (strings(&event), strings(&decoded));
            prop_assert_eq!(before.len(), after.len());
            for (b, a) in before.iter().zip(&after) {
                prop_assert!(b.starts_with(a.as_str()));
            }
            if before != after {
                // Cut only as much as needed: one more char would not fit.
                prop_assert!(bytes.len() + 4 > MAX_EVENT_BYTES);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..1200)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn corrupted_encodings_never_panic(
            event in event(),
            flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..8),
            cut_at in any::<usize>(),
        ) {
            let mut bytes = encoded(&event);
            for (at, byte) in flips {
                let at = at % bytes.len();
                bytes[at] = byte;
            }
            let _ = decode(&bytes);
            let _ = decode(&bytes[..cut_at % (bytes.len() + 1)]);
        }
    }
}
