//! Tests of what `apply` reports and how `render` says it: the promises
//! the hot path and the pool models rely on (one shared IRC line, nothing
//! rendered for a connection not served) and the words each protocol gets.

use std::borrow::Cow;
use std::sync::Arc;

use crate::chat::change::{Change, Refusal};
use crate::chat::{ConnId, Deliveries, Event, MessageKind, Protocol, ServerInfo, Stamp, State, Target};

fn conn(worker: u16, slot: u32) -> ConnId {
    ConnId { worker, slot, generation: 0 }
}

fn register(state: &mut State, c: ConnId, nick: &str, protocol: Protocol) {
    let event = Event::Register {
        conn: c,
        nick: nick.into(),
        user: "u".into(),
        realname: "r".into(),
        host: "h".into(),
        protocol,
        caps: crate::chat::Caps::NONE,
        at: 0,
    };
    state.apply(&event, &mut Vec::new());
}

fn join(state: &mut State, c: ConnId, channel: &str) {
    state.apply(&Event::Join { conn: c, channel: channel.into(), key: None, at: 0 }, &mut Vec::new());
}

fn say(c: ConnId, target: &str, text: &str) -> Event {
    let stamp = Stamp::default();
    Event::Message { conn: c, kind: MessageKind::Privmsg, target: target.into(), text: text.into(), stamp }
}

use crate::chat::tests::apply_for;

fn text(d: &Deliveries, c: ConnId) -> String {
    String::from_utf8(d.bytes_for(c)).unwrap()
}

/// `#room` with an IRC speaker, two IRC listeners and a plain listener
/// who types in `#room`, and a plain one who types in `#other`.
fn room() -> (State, [ConnId; 5]) {
    let mut state = State::new(Arc::new(ServerInfo::new("srv")));
    let conns = [conn(0, 1), conn(0, 2), conn(1, 3), conn(1, 4), conn(2, 5)];
    let protocols = [Protocol::Irc, Protocol::Irc, Protocol::Irc, Protocol::Plain, Protocol::Plain];
    for (i, (&c, p)) in conns.iter().zip(protocols).enumerate() {
        register(&mut state, c, &format!("n{i}"), p);
        join(&mut state, c, "#room");
    }
    join(&mut state, conns[4], "#other");
    (state, conns)
}

#[test]
fn a_channel_message_is_one_shared_line_for_every_irc_member() {
    let (mut state, [speaker, irc1, irc2, plain_here, plain_away]) = room();
    let out = apply_for(&mut state, &say(speaker, "#Room", "hi"), |_| true);
    let to: Vec<ConnId> = out.items.iter().map(|d| d.to).collect();
    assert_eq!(to, [irc1, irc2, plain_here, plain_away], "every member but the speaker, in order");
    assert!(Arc::ptr_eq(&out.items[0].bytes, &out.items[1].bytes), "the IRC line is built once");
    assert_eq!(text(&out, irc1), ":n0!u@h PRIVMSG #room :hi\r\n");
    assert_eq!(text(&out, plain_here), "n0: hi\r\n");
    assert_eq!(text(&out, plain_away), "[#room] n0: hi\r\n");
}

#[test]
fn a_message_change_borrows_its_text_and_names_the_channel_by_key() {
    let (mut state, [speaker, ..]) = room();
    let event = say(speaker, "#ROOM", "hello");
    let mut changes = Vec::new();
    state.apply(&event, &mut changes);
    let Event::Message { target: Target::Channel(sent_to), text, .. } = &event else { unreachable!() };
    match changes.as_slice() {
        [Change::ChannelMessage { channel, text: said, .. }] => {
            assert_eq!(channel.key(), "#room");
            assert!(std::ptr::eq(*channel, sent_to), "the channel is the event's, not a copy");
            assert!(std::ptr::eq(*said, text.as_str()), "the text is the event's, not a copy");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn nothing_is_rendered_for_connections_not_served() {
    let (mut state, [speaker, _, irc2, plain_here, _]) = room();
    let none = apply_for(&mut state, &say(speaker, "#room", "a"), |_| false);
    assert_eq!(none, Deliveries::default());
    let worker1 = apply_for(&mut state, &say(speaker, "#room", "b"), |c| c.worker == 1);
    let to: Vec<ConnId> = worker1.items.iter().map(|d| d.to).collect();
    assert_eq!(to, [irc2, plain_here]);
    // A joiner's NAMES is streamed only by whoever serves the joiner.
    let joiner = conn(2, 9);
    register(&mut state, joiner, "late", Protocol::Irc);
    let join = Event::Join { conn: joiner, channel: "#room".into(), key: None, at: 0 };
    let out = apply_for(&mut state.clone(), &join, |c| c.worker == 0);
    assert!(out.listings.is_empty());
    let out = apply_for(&mut state, &join, |c| c.worker == 2);
    assert_eq!(out.listings.len(), 1);
    assert!(text(&out, joiner).starts_with(":late!u@h JOIN #room\r\n"));
}

#[test]
fn refusals_go_to_the_actor_in_their_protocol() {
    let (mut state, [speaker, _, _, plain_here, _]) = room();
    let part = Event::Part { conn: speaker, channel: "#nowhere".into(), reason: None };
    let mut changes = Vec::new();
    state.apply(&part, &mut changes);
    let subject = Cow::Borrowed("#nowhere");
    assert_eq!(
        changes,
        [Change::Refused { conn: speaker, refusal: Refusal::NoSuchChannel, subject, also: None }]
    );
    let out = apply_for(&mut state, &part, |_| true);
    assert_eq!(text(&out, speaker), ":srv 403 n0 #nowhere :No such channel\r\n");
    let out = apply_for(&mut state, &say(plain_here, "nobody", "x"), |_| true);
    assert_eq!(text(&out, plain_here), "! No such nick/channel: nobody\r\n");
    // A NOTICE is never answered, not even with a refusal.
    let notice = Event::Message {
        conn: speaker,
        kind: MessageKind::Notice,
        target: "nobody".into(),
        text: "x".into(),
        stamp: Stamp::default(),
    };
    let mut changes = Vec::new();
    state.apply(&notice, &mut changes);
    assert!(changes.is_empty());
}

#[test]
fn a_quit_is_rendered_from_what_the_quitter_was() {
    let (mut state, [speaker, irc1, _, plain_here, plain_away]) = room();
    let out = apply_for(&mut state, &Event::Quit { conn: speaker, reason: "bye".into() }, |_| true);
    assert!(state.user(speaker).is_none());
    assert_eq!(text(&out, irc1), ":n0!u@h QUIT :bye\r\n");
    assert_eq!(text(&out, plain_here), "*** n0 left #room (bye)\r\n");
    assert_eq!(text(&out, plain_away), "*** n0 left #room (bye)\r\n");
    assert_eq!(out.bytes_for(speaker), b"");
}

#[test]
fn a_lost_worker_s_users_hear_each_other_leave_before_they_go() {
    let mut state = State::new(Arc::new(ServerInfo::new("srv")));
    let (a, b, c) = (conn(1, 1), conn(1, 2), conn(2, 3));
    register(&mut state, a, "a", Protocol::Irc);
    register(&mut state, b, "b", Protocol::Plain);
    register(&mut state, c, "c", Protocol::Irc);
    join(&mut state, a, "#gone");
    join(&mut state, b, "#gone");
    join(&mut state, c, "#stays");
    join(&mut state, b, "#stays");
    let lost = Event::WorkerLost { worker: 1, generation: 0, reason: "lost".into() };
    let out = apply_for(&mut state, &lost, |_| true);
    // b quits after a, so b was still there to hear a leave #gone, which
    // neither user is in any more by the time the event is rendered.
    assert!(state.channel("#gone").is_none());
    assert_eq!(text(&out, b), "*** a left #gone (lost)\r\n");
    assert_eq!(text(&out, c), ":b!u@h QUIT :lost\r\n");
    assert_eq!(out.bytes_for(a), b"");
}

#[test]
fn a_nick_change_reads_differently_to_whoever_made_it() {
    let (mut state, [_, _, _, plain_here, plain_away]) = room();
    let out = apply_for(&mut state, &Event::Nick { conn: plain_here, nick: "new".into() }, |_| true);
    assert_eq!(text(&out, plain_here), "*** You are now known as new\r\n");
    assert_eq!(text(&out, plain_away), "*** n3 is now known as new\r\n");
    assert_eq!(text(&out, conn(0, 1)), ":n3!u@h NICK :new\r\n");
}

#[test]
fn registering_over_irc_gets_the_welcome_burst_with_current_counts() {
    let (mut state, _) = room();
    let joiner = conn(0, 7);
    let event = Event::Register {
        conn: joiner,
        nick: "w".into(),
        user: "u".into(),
        realname: "r".into(),
        host: "h".into(),
        protocol: Protocol::Irc,
        caps: crate::chat::Caps::NONE,
        at: 0,
    };
    let out = text(&apply_for(&mut state, &event, |_| true), joiner);
    assert!(out.starts_with(":srv 001 w :Welcome to the chatter Network, w!u@h\r\n"), "{out}");
    assert!(out.contains(" 251 w :There are 6 users and 0 invisible on 1 servers\r\n"), "{out}");
    // #room, #other and #lobby, where the plain users were put.
    assert!(out.contains(" 254 w 3 :channels formed\r\n"), "{out}");
    assert!(out.ends_with(" 422 w :MOTD File is missing\r\n"), "{out}");
}

/// IRCv3: a tagged message is built once per distinct set of the
/// capabilities that change it, shared within each, and old clients get
/// exactly the line they always did.
#[test]
fn messages_are_tagged_per_capability_and_shared_per_tag_set() {
    use crate::chat::Caps;
    let (mut state, [speaker, a, b, plain, _]) = room();
    let tagged = Caps::MESSAGE_TAGS.with(Caps::SERVER_TIME);
    for (c, caps) in [(speaker, Caps::ECHO_MESSAGE), (a, tagged), (b, tagged)] {
        state.apply(&Event::Caps { conn: c, caps }, &mut Vec::new());
    }
    let stamp = Stamp { at: 1_700_000_000_123, id: 7, tags: vec![("+draft/react".into(), "a b;c".into())] };
    let event = Event::Message {
        conn: speaker,
        kind: MessageKind::Privmsg,
        target: "#room".into(),
        text: "hi".into(),
        stamp,
    };
    let out = apply_for(&mut state, &event, |_| true);
    let line =
        "@time=2023-11-14T22:13:20.123Z;msgid=0-1-0-7;+draft/react=a\\sb\\:c :n0!u@h PRIVMSG #room :hi\r\n";
    assert_eq!(text(&out, a), line);
    assert_eq!(text(&out, b), line);
    let shared: Vec<_> = out.items.iter().filter(|d| d.to == a || d.to == b).collect();
    assert!(Arc::ptr_eq(&shared[0].bytes, &shared[1].bytes), "one line for one tag set");
    // The sender has echo-message and nothing else: the plain line.
    assert_eq!(text(&out, speaker), ":n0!u@h PRIVMSG #room :hi\r\n");
    assert_eq!(text(&out, plain), "n0: hi\r\n");

    // TAGMSG reaches message-tags clients only.
    let stamp = Stamp { at: 0, id: 8, tags: vec![("+typing".into(), "active".into())] };
    let event = Event::Message {
        conn: a,
        kind: MessageKind::Tagmsg,
        target: "#room".into(),
        text: String::new(),
        stamp,
    };
    let out = apply_for(&mut state, &event, |_| true);
    assert_eq!(
        text(&out, b),
        "@time=1970-01-01T00:00:00.000Z;msgid=0-2-0-8;+typing=active :n1!u@h TAGMSG #room\r\n"
    );
    assert_eq!(out.items.len(), 1, "{out:?}");
}

#[test]
fn server_time_is_rfc_3339_with_milliseconds() {
    use crate::chat::render::irc::server_time;
    assert_eq!(server_time(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(server_time(951_782_400_007), "2000-02-29T00:00:00.007Z");
    assert_eq!(server_time(u64::MAX), "9999-12-31T23:59:59.999Z");
}
