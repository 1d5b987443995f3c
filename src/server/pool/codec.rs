//! Events as bytes, for the records of the pool's event log: serde's derive
//! on [`Event`] and postcard's encoding.
//!
//! Postcard is compact (variable-length integers, no field names, a
//! variant index and then the fields in declaration order), its decoder
//! checks everything and fails instead of panicking, and it needs nothing
//! hand-written per event: a new event is a new variant, nothing else. The
//! same encoding will carry events between machines, where both ends may
//! not be one binary; there a version byte in front will be needed, here
//! (one log, one server run, one executable) it is not.
//!
//! A log record is bounded (it spans at most a few fixed-size slots), so
//! an encoding may be at most [`MAX_EVENT_BYTES`]. Events are built to fit
//! (a session builds them from one line, its tag section and the rest
//! bounded apart, plus names that the session bounds, see `chat::names`;
//! the property test below drives sessions with arbitrary lines and checks
//! every event they build encodes within the limit; the settings a reload
//! sends are cut into pieces that fit, see `chat::reload`). [`encode`] still
//! refuses anything longer rather than cutting it silently: whoever built
//! it is told (see the worker's `append_outgoing`).

#[cfg(test)]
use crate::chat::Event;

pub use crate::chat::MAX_EVENT_BYTES;

// Every event the codec lets through must be a record the log takes.
const _: () = assert!(MAX_EVENT_BYTES <= crate::server::pool::log::MAX_RECORD_BYTES);

/// Why an event did not become bytes, or bytes an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The encoding does not fit a log record.
    #[error("event encoding is {0} bytes, more than a log record's {MAX_EVENT_BYTES}")]
    TooLarge(usize),
    /// The bytes are not an event (truncated, unknown variant, bad UTF-8...).
    #[error("undecodable event: {0}")]
    Malformed(#[from] postcard::Error),
    /// Bytes are left over after a complete event.
    #[error("trailing bytes after an event")]
    Trailing,
}

/// Appends the encoding of `event` to `out`, unless it would be longer
/// than [`MAX_EVENT_BYTES`] (then `out` is left as it was). The log's
/// records are entries (`entry`), which hold an event encoded just so;
/// the bound's tests are written against the event alone.
#[cfg(test)]
pub fn encode(event: &Event, out: &mut Vec<u8>) -> Result<(), CodecError> {
    let start = out.len();
    *out = postcard::to_extend(event, std::mem::take(out))?;
    let len = out.len() - start;
    if len > MAX_EVENT_BYTES {
        out.truncate(start);
        return Err(CodecError::TooLarge(len));
    }
    Ok(())
}

/// The event `bytes` encode: all of them, or an error.
#[cfg(test)]
pub fn decode(bytes: &[u8]) -> Result<Event, CodecError> {
    let (event, rest) = postcard::take_from_bytes(bytes)?;
    if !rest.is_empty() {
        return Err(CodecError::Trailing);
    }
    Ok(event)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::chat::channel::{Flag, ListKind, MAX_MODE_CHANGES, ModeChange};
    use crate::chat::{Caps, ConnId, MessageKind, Protocol, Stamp, UserMode};

    fn encoded(event: &Event) -> Vec<u8> {
        let mut out = Vec::new();
        encode(event, &mut out).expect("fits");
        out
    }

    fn text(max_chars: usize) -> impl Strategy<Value = String> {
        prop::collection::vec(any::<char>(), 0..=max_chars).prop_map(|c| c.into_iter().collect())
    }

    fn conn() -> impl Strategy<Value = ConnId> {
        (any::<u16>(), any::<u32>(), any::<u32>()).prop_map(|(worker, slot, generation)| ConnId {
            worker,
            slot,
            generation,
        })
    }

    /// Events of the sizes sessions build: a line's worth of text at most.
    fn event() -> impl Strategy<Value = Event> {
        let protocol = prop_oneof![Just(Protocol::Irc), Just(Protocol::Plain)];
        let kind =
            prop_oneof![Just(MessageKind::Privmsg), Just(MessageKind::Notice), Just(MessageKind::Tagmsg)];
        prop_oneof![
            (
                conn(),
                text(30),
                text(10),
                text(50),
                text(20),
                protocol,
                any::<u32>().prop_map(Caps::from_bits),
                any::<u64>(),
            )
                .prop_map(|(conn, nick, user, realname, host, protocol, caps, at)| {
                    Event::Register { conn, nick: nick.into(), user, realname, host, protocol, caps, at }
                }),
            (conn(), any::<u32>()).prop_map(|(conn, bits)| Event::Caps { conn, caps: Caps::from_bits(bits) }),
            (conn(), text(30)).prop_map(|(conn, nick)| Event::Nick { conn, nick: nick.into() }),
            (conn(), text(50), proptest::option::of(text(23)), any::<u64>()).prop_map(
                |(conn, channel, key, at)| { Event::Join { conn, channel: channel.into(), key, at } }
            ),
            (conn(), text(50), prop::collection::vec(mode_change(), 0..=MAX_MODE_CHANGES), any::<u64>())
                .prop_map(|(conn, channel, changes, at)| Event::Mode {
                    conn,
                    channel: channel.into(),
                    changes,
                    at
                }),
            (conn(), text(50), text(30), proptest::option::of(text(100))).prop_map(
                |(conn, channel, nick, reason)| {
                    Event::Kick { conn, channel: channel.into(), nick: nick.into(), reason }
                }
            ),
            (conn(), text(30), text(50)).prop_map(|(conn, nick, channel)| Event::Invite {
                conn,
                nick: nick.into(),
                channel: channel.into()
            }),
            conn().prop_map(|conn| Event::PartAll { conn }),
            (conn(), text(50), proptest::option::of(text(100)))
                .prop_map(|(conn, channel, reason)| Event::Part { conn, channel: channel.into(), reason }),
            (
                conn(),
                kind,
                text(50),
                text(100),
                any::<u64>(),
                any::<u64>(),
                prop::collection::vec((text(10), text(40)), 0..3)
            )
                .prop_map(|(conn, kind, target, text, at, id, tags)| Event::Message {
                    conn,
                    kind,
                    target: target.into(),
                    text,
                    stamp: Stamp { at, id, tags },
                }),
            (conn(), text(50), text(100), any::<u64>()).prop_map(|(conn, channel, topic, at)| Event::Topic {
                conn,
                channel: channel.into(),
                topic,
                at
            }),
            (conn(), text(100)).prop_map(|(conn, reason)| Event::Quit { conn, reason }),
            (conn(), proptest::option::of(text(100)))
                .prop_map(|(conn, message)| Event::Away { conn, message }),
            (conn(), prop::sample::select(UserMode::ALL.to_vec()), any::<bool>())
                .prop_map(|(conn, mode, on)| Event::UserMode { conn, mode, on }),
            (conn(), text(100)).prop_map(|(conn, realname)| Event::SetName { conn, realname }),
            (conn(), any::<bool>()).prop_map(|(conn, on)| Event::Oper { conn, on }),
            (conn(), text(100)).prop_map(|(conn, text)| Event::WallopsMessage { conn, text }),
            (conn(), text(30), text(100)).prop_map(|(conn, target, reason)| Event::Kill {
                conn,
                target: target.into(),
                reason
            }),
            (conn(), prop::collection::vec(text(30), 0..8)).prop_map(|(conn, nicks)| Event::Monitor {
                conn,
                change: crate::chat::event::MonitorChange::Add(nicks.into_iter().map(Into::into).collect()),
            }),
            (any::<u16>(), any::<u32>(), text(40))
                .prop_map(|(worker, generation, reason)| Event::WorkerLost { worker, generation, reason }),
            (any::<u16>(), any::<u32>(), text(40)).prop_map(|(node, epoch, reason)| Event::NodeLost {
                node,
                epoch,
                reason
            }),
        ]
    }

    /// One change of a MODE line; masks and keys as long as a line could
    /// hold among the few parameters a line may carry.
    fn mode_change() -> impl Strategy<Value = ModeChange> {
        let flag = prop::sample::select(Flag::ALL.to_vec());
        let kind = prop::sample::select(vec![ListKind::Ban, ListKind::Except, ListKind::InviteExcept]);
        prop_oneof![
            (flag, any::<bool>()).prop_map(|(flag, on)| ModeChange::Flag { flag, on }),
            proptest::option::of(text(23)).prop_map(ModeChange::Key),
            proptest::option::of(any::<u32>()).prop_map(ModeChange::Limit),
            (text(30), any::<bool>()).prop_map(|(nick, on)| ModeChange::Op { nick: nick.into(), on }),
            (text(30), any::<bool>()).prop_map(|(nick, on)| ModeChange::Voice { nick: nick.into(), on }),
            (kind, text(20), any::<bool>()).prop_map(|(kind, mask, on)| ModeChange::List { kind, mask, on }),
        ]
    }

    #[test]
    fn an_event_too_large_for_a_record_is_refused_and_leaves_the_buffer_alone() {
        let event = Event::Message {
            conn: ConnId { worker: 1, slot: 2, generation: 3 },
            kind: MessageKind::Privmsg,
            target: "#rust".into(),
            text: "x".repeat(MAX_EVENT_BYTES),
            stamp: Stamp::default(),
        };
        let mut out = vec![0xAA; 3];
        assert!(matches!(encode(&event, &mut out), Err(CodecError::TooLarge(n)) if n > MAX_EVENT_BYTES));
        assert_eq!(out, [0xAA; 3]);
    }

    #[test]
    fn appends_to_what_is_there() {
        let event = Event::PartAll { conn: ConnId { worker: 1, slot: 2, generation: 3 } };
        let mut out = vec![0xAA; 5];
        encode(&event, &mut out).unwrap();
        assert_eq!(out[..5], [0xAA; 5]);
        assert_eq!(decode(&out[5..]), Ok(event));
    }

    #[test]
    fn malformed_input_is_an_error() {
        assert!(matches!(decode(&[]), Err(CodecError::Malformed(_))));
        assert!(matches!(decode(&[200]), Err(CodecError::Malformed(_))), "no such variant");
        let mut bytes = encoded(&Event::PartAll { conn: ConnId { worker: 1, slot: 2, generation: 3 } });
        bytes.push(0);
        assert_eq!(decode(&bytes), Err(CodecError::Trailing));
    }

    /// A line as the line reader passes it on: maybe a tag section (up to
    /// 4094 bytes of tag data, see `tag_data`), then at most 510 bytes that
    /// start like a command that builds an event, IRC or plain, and need
    /// not be UTF-8 (a session reads each stray byte as a 3-byte U+FFFD).
    fn line() -> impl Strategy<Value = Vec<u8>> {
        let command = prop::sample::select(vec![
            "PRIVMSG ",
            "NOTICE ",
            "PRIVMSG #a,b,#c :",
            "NOTICE @#a,+#b,@+#c :",
            "@+a=b;+c=d\\s;label=x PRIVMSG #a,b :",
            "@+reply=1;+x= TAGMSG #a,b,c,#d ",
            "@+",
            "TOPIC #a :",
            "PART #a,#b :",
            "QUIT :",
            "AWAY :",
            "NICK ",
            "JOIN ",
            "MODE me +i",
            "MONITOR + ",
            "JOIN #a ",
            "MODE #a +ooooookbeIl ",
            "MODE #a ",
            "KICK #a ",
            "INVITE ",
            "/mode +bbbbbbk ",
            "/kick ",
            "/invite ",
            "/msg ",
            "/me ",
            "/topic ",
            "/part ",
            "/quit ",
            "/join ",
            "/nick ",
            "",
        ]);
        // Spaces more often than any::<char>() gives them, so that lines
        // have several parameters (MODE's masks, JOIN's keys).
        let piece = prop_oneof![
            4 => any::<char>().prop_map(|c| c.to_string().into_bytes()),
            1 => Just(b" ".to_vec()),
            1 => (0x80u8..=0xff).prop_map(|b| vec![b]),
        ];
        let tags = proptest::option::of(tag_data());
        (tags, command, prop::collection::vec(piece, 0..600)).prop_map(|(tags, command, rest)| {
            let mut line = command.as_bytes().to_vec();
            line.extend(rest.concat().into_iter().filter(|b| !matches!(b, b'\r' | b'\n')));
            line.truncate(510);
            match tags {
                Some(data) => [&b"@"[..], &data, b" ", &line].concat(),
                None => line,
            }
        })
    }

    /// The data of a tag section a client may send, up to 4094 bytes: a
    /// few client-only tags with long values (escapes and any characters,
    /// or any bytes: not UTF-8, such a tag is dropped) or very many short
    /// ones.
    fn tag_data() -> impl Strategy<Value = Vec<u8>> {
        let text = prop_oneof![
            4 => any::<char>().prop_map(|c| c.to_string().into_bytes()),
            1 => Just(b"\\:".to_vec()),
        ];
        let value = prop_oneof![
            3 => prop::collection::vec(text, 0..1400).prop_map(|pieces| pieces.concat()),
            1 => prop::collection::vec(any::<u8>(), 0..4000),
        ];
        let long = ("\\+[a-z]{1,8}", value).prop_map(|(key, value)| [key.as_bytes(), b"=", &value].concat());
        let short = (any::<u16>(), 0..3usize)
            .prop_map(|(key, value)| format!("+{:x}={}", key % 4096, &"ab"[..value.min(2)]).into_bytes());
        let tags = prop_oneof![prop::collection::vec(long, 1..4), prop::collection::vec(short, 1..1400),];
        tags.prop_map(|tags| {
            let mut data = tags.join(&b';');
            data.retain(|&b| !matches!(b, b' ' | b'\r' | b'\n'));
            data.truncate(4094);
            // Not in the middle of a character: a long valid value is
            // what makes the event largest.
            if let Err(e) = std::str::from_utf8(&data)
                && e.error_len().is_none()
            {
                data.truncate(e.valid_up_to());
            }
            data
        })
    }

    fn registration() -> impl Strategy<Value = Vec<String>> {
        let name = "[a-zA-Z][a-zA-Z0-9_]{0,29}";
        // With message-tags most often: then a message carries its tags.
        prop_oneof![
            1 => (name, text(600)).prop_map(|(nick, real)| vec![
                format!("NICK {nick}"),
                format!("USER {} 0 * :{real}", "u".repeat(20))
            ]),
            1 => name.prop_map(|nick| vec![nick]),
            2 => (name, text(600)).prop_map(|(nick, real)| registered_with_tags(&nick, &real)),
        ]
    }

    #[test]
    fn every_piece_of_the_longest_reload_fits_a_record() {
        use crate::chat::reload::{MAX_RELOAD_BYTES, pieces};
        let events = pieces(u16::MAX, &vec![0xff; MAX_RELOAD_BYTES]);
        for event in &events {
            assert_eq!(decode(&encoded(event)).as_ref(), Ok(event));
        }
    }

    fn registered_with_tags(nick: &str, realname: &str) -> Vec<String> {
        vec![
            "CAP REQ :message-tags echo-message server-time".to_string(),
            format!("NICK {nick}"),
            format!("USER {} 0 * :{realname}", "u".repeat(20)),
            "CAP END".to_string(),
        ]
    }

    /// The events a session registered with message-tags builds from
    /// `line`, applied as it goes.
    fn events_from(line: &[u8]) -> Vec<Event> {
        use crate::chat::{Action, ServerInfo, Session, State};
        use std::sync::Arc;
        let info = Arc::new(ServerInfo::new("irc.test"));
        let mut state = State::new(info.clone());
        let mut session = Session::new(ConnId { worker: 1, slot: 2, generation: 3 }, "host", info);
        let lines = registered_with_tags("n", "r").into_iter().map(String::into_bytes);
        let mut events = Vec::new();
        for line in lines.chain([line.to_vec()]) {
            let mut actions = Vec::new();
            session.on_line(&line, &state, u64::MAX, &mut actions);
            for action in actions {
                if let Action::Event(event) = action {
                    state.apply(&event, &mut Vec::new());
                    events.push(event);
                }
            }
        }
        events
    }

    /// The largest event a line can make: a full tag section of one long
    /// value (which the session relays whole) and 510 bytes of rest (UTF-8
    /// by then: a line that is not is refused whole, see UTF8ONLY). It
    /// fits, with room.
    #[test]
    fn the_largest_message_a_session_builds_fits() {
        let value = format!("a{}", "\u{e9}".repeat(2045));
        let tags = [&b"@+k="[..], value.as_bytes(), b" "].concat();
        assert_eq!(tags.len(), 4096);
        let text = |n: usize| "\u{20ac}".repeat(n / 3).into_bytes();
        for rest in [
            [&b"PRIVMSG #c :"[..], &text(510 - 12)].concat(),
            [&b"NOTICE #c :"[..], &text(510 - 11), b"x"].concat(),
            [&b"TAGMSG #x"[..], &text(510 - 9)].concat(),
        ] {
            assert_eq!(rest.len(), 510);
            let events = events_from(&[&tags[..], &rest].concat());
            let message = events.last().expect("the line made an event");
            let Event::Message { stamp, .. } = message else { panic!("not a message: {message:?}") };
            assert_eq!(stamp.tags, [("+k".to_string(), value.clone())], "the tag is carried whole");
            let mut out = Vec::new();
            encode(message, &mut out).expect("fits");
            assert!(out.len() < 6 * 1024, "{} bytes", out.len());
        }
    }

    proptest! {
        /// Every event a session builds, from any line a client may send,
        /// fits a log record: the limit holds where events are built.
        #[test]
        fn sessions_build_only_events_that_fit(register in registration(), lines in prop::collection::vec(line(), 1..20)) {
            use std::sync::Arc;
            use crate::chat::{Action, ServerInfo, Session, State};
            let info = Arc::new(ServerInfo::new("irc.test"));
            let mut state = State::new(info.clone());
            // The longest host a connection can have: an IPv6 address.
            let host = "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255";
            let mut session = Session::new(ConnId { worker: 1, slot: 2, generation: 3 }, host, info);
            let lines = register.into_iter().map(String::into_bytes).chain(lines);
            for line in lines {
                let mut actions = Vec::new();
                session.on_line(&line, &state, u64::MAX, &mut actions);
                for action in actions {
                    if let Action::Event(event) = action {
                        let mut out = Vec::new();
                        prop_assert_eq!(encode(&event, &mut out), Ok(()));
                        state.apply(&event, &mut Vec::new());
                    }
                }
            }
        }

        #[test]
        fn round_trip(event in event()) {
            let bytes = encoded(&event);
            prop_assert!(bytes.len() <= MAX_EVENT_BYTES);
            let decoded = decode(&bytes);
            // Names are equal by their folded keys; Debug shows them as
            // written, which must come back too.
            prop_assert_eq!(format!("{decoded:?}"), format!("{:?}", Ok::<_, CodecError>(&event)));
            prop_assert_eq!(decoded, Ok(event));
        }

        #[test]
        fn every_strict_prefix_and_any_extra_byte_is_an_error(event in event(), extra in any::<u8>()) {
            let mut bytes = encoded(&event);
            for len in 0..bytes.len() {
                prop_assert!(decode(&bytes[..len]).is_err());
            }
            bytes.push(extra);
            prop_assert_eq!(decode(&bytes), Err(CodecError::Trailing));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..1200)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn corrupted_encodings_never_panic(
            event in event(),
            flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        ) {
            let mut bytes = encoded(&event);
            for (at, byte) in flips {
                let at = at % bytes.len();
                bytes[at] = byte;
            }
            let _ = decode(&bytes);
        }
    }
}
