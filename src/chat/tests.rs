//! Tests of the chat core without sockets: the session's decisions, and the
//! property the pool models rely on — replicas that apply the same events in
//! the same order agree, and replicas each rendering only their worker's
//! connections deliver together what one directory rendering every
//! connection delivers. Its generators and helpers (`any_event`,
//! `apply_for`) serve the snapshot's tests too.

use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use crate::chat::channel::{Flag, ListKind, ModeChange};

pub(crate) fn info() -> Arc<ServerInfo> {
    Arc::new(ServerInfo::new("test.server"))
}

pub(crate) fn conn(worker: u16, slot: u32) -> ConnId {
    ConnId { worker, slot, generation: 0 }
}

pub(crate) fn register(c: ConnId, nick: &str, protocol: Protocol) -> Event {
    Event::Register {
        conn: c,
        nick: nick.into(),
        user: nick.into(),
        realname: nick.into(),
        host: "host".into(),
        protocol,
        caps: Caps::NONE,
        at: 0,
    }
}

pub(crate) fn join(c: ConnId, channel: &str) -> Event {
    Event::Join { conn: c, channel: channel.into(), key: None, at: 0 }
}

/// Applies `event` and renders it for the connections `serves` accepts
/// (the renderer's tests use it too).
pub(crate) fn apply_for(state: &mut State, event: &Event, serves: impl Fn(ConnId) -> bool) -> Deliveries {
    let mut changes = Vec::new();
    state.apply(event, &mut changes);
    let mut out = Deliveries::default();
    render(state, &changes, serves, &mut out);
    out
}

/// Applies `event` and renders it for every connection.
fn apply(state: &mut State, event: &Event) -> Deliveries {
    apply_for(state, event, |_| true)
}

fn text(d: &Deliveries, c: ConnId) -> String {
    String::from_utf8(d.bytes_for(c)).unwrap()
}

#[test]
fn the_first_claim_of_a_nick_wins() {
    let mut state = State::new(info());
    let (a, b) = (conn(0, 1), conn(1, 1));
    let first = apply(&mut state, &register(a, "Sam", Protocol::Irc));
    assert!(text(&first, a).contains(" 001 Sam "));
    let second = apply(&mut state, &register(b, "sam", Protocol::Irc));
    assert!(text(&second, b).contains(" 433 * sam :Nickname is already in use"));
    assert!(state.user(b).is_none());
    let plain = apply(&mut state, &register(b, "SAM", Protocol::Plain));
    assert_eq!(text(&plain, b), "! The name SAM is taken. Type another name:\r\n");
}

#[test]
fn quit_reaches_each_neighbour_once() {
    let mut state = State::new(info());
    let (a, b) = (conn(0, 1), conn(0, 2));
    apply(&mut state, &register(a, "a", Protocol::Irc));
    apply(&mut state, &register(b, "b", Protocol::Irc));
    for channel in ["#x", "#y"] {
        apply(&mut state, &join(a, channel));
        apply(&mut state, &join(b, channel));
    }
    let quit = apply(&mut state, &Event::Quit { conn: a, reason: "bye".into() });
    assert_eq!(quit.items.len(), 1);
    assert_eq!(text(&quit, b), ":a!a@host QUIT :bye\r\n");
    assert!(state.channel("#x").unwrap().members.len() == 1);
    assert!(state.find_nick("a").is_none());
}

fn run(session: &mut Session, state: &mut State, line: &str) -> (String, bool) {
    let mut actions = Vec::new();
    session.on_line(line.as_bytes(), state, 0, &mut actions);
    let mut out = String::new();
    let mut closed = false;
    for action in actions {
        match action {
            Action::Reply(bytes) => out.push_str(&String::from_utf8(bytes).unwrap()),
            Action::Event(event) => {
                let deliveries = apply(state, &event);
                out.push_str(&text(&deliveries, session.conn()));
                for (to, listing) in deliveries.listings {
                    if to == session.conn() {
                        out.push_str(&whole(listing, state, to));
                    }
                }
            }
            Action::Listing(listing) => out.push_str(&whole(listing, state, session.conn())),
            Action::Close => closed = true,
            // The model's to carry out: shown, so a test sees it was asked.
            Action::Rehash => out.push_str("(reread the configuration)\n"),
        }
    }
    (out, closed)
}

/// A long reply, all of it.
pub(crate) fn whole(mut listing: Listing, state: &State, conn: ConnId) -> String {
    let mut bytes = Vec::new();
    while !listing.write_next(state, conn, &mut bytes, 4096) {}
    String::from_utf8(bytes).unwrap()
}

#[test]
fn cap_negotiation_delays_registration() {
    let mut state = State::new(info());
    let mut s = Session::new(conn(0, 1), "host", info());
    assert!(run(&mut s, &mut state, "CAP LS 302").0.contains("CAP * LS :"));
    run(&mut s, &mut state, "NICK n");
    assert_eq!(run(&mut s, &mut state, "USER u 0 * :R").0, "");
    assert_eq!(s.protocol(), Some(Protocol::Irc));
    assert!(run(&mut s, &mut state, "CAP END").0.contains(" 001 n "));
}

#[test]
fn first_line_decides_the_protocol() {
    let mut state = State::new(info());
    let mut plain = Session::new(conn(0, 1), "host", info());
    let (out, _) = run(&mut plain, &mut state, "hello there");
    assert_eq!(plain.protocol(), Some(Protocol::Plain));
    assert!(out.contains("is not a valid name"));
    let (out, _) = run(&mut plain, &mut state, "nelly");
    assert!(out.contains("* nelly joined #lobby"));
    let mut irc = Session::new(conn(0, 2), "host", info());
    run(&mut irc, &mut state, "PASS whatever");
    assert_eq!(irc.protocol(), None);
    run(&mut irc, &mut state, "NICK ircy");
    assert_eq!(irc.protocol(), Some(Protocol::Irc));
}

#[test]
fn a_line_that_is_not_utf8_is_refused_and_only_decides_the_protocol() {
    let state = State::new(info());
    let mut s = Session::new(conn(0, 1), "host", info());
    let mut actions = Vec::new();
    s.on_line(b"NICK n\xe9", &state, 0, &mut actions);
    let fail = ":test.server FAIL NICK INVALID_UTF8 :Message rejected, your IRC software MUST use UTF-8 encoding on this network\r\n";
    assert_eq!(actions, [Action::Reply(fail.as_bytes().to_vec())]);
    assert_eq!(s.protocol(), Some(Protocol::Irc), "a first line decides by its command");
    assert!(state.user(conn(0, 1)).is_none());
}

#[test]
fn wrong_password_closes() {
    let mut locked = ServerInfo::new("test.server");
    locked.password = Some("pw".into());
    let locked = Arc::new(locked);
    let mut state = State::new(locked.clone());
    let mut s = Session::new(conn(0, 1), "host", locked);
    run(&mut s, &mut state, "PASS nope");
    run(&mut s, &mut state, "NICK n");
    let (out, closed) = run(&mut s, &mut state, "USER u 0 * :R");
    assert!(out.contains(" 464 n :Password incorrect"));
    assert!(closed);
    assert!(state.user(conn(0, 1)).is_none());
}

/// A small alphabet of events over 6 connections on 3 workers, so that
/// random sequences collide on nicks and channels often.
pub(crate) fn any_event() -> impl Strategy<Value = Event> {
    let conns = (0u16..3, 0u32..2).prop_map(|(w, s)| conn(w, s));
    let nicks = prop::sample::select(vec!["ann", "ANN", "bob", "cy", "dee"]);
    let chans = prop::sample::select(vec!["#a", "#A", "#b", "#lobby"]);
    let protocol = prop::sample::select(vec![Protocol::Irc, Protocol::Plain]);
    let keys = prop::sample::select(vec!["k1".to_string(), "k2".to_string()]);
    // Channels, and some of their members (STATUSMSG), for messages.
    let audiences = prop::sample::select(vec!["#a", "@#A", "+#a", "#b", "@+#b", "#lobby"]);
    // Now and then a CTCP, which a +C channel refuses unless an ACTION.
    let texts = "\x01VERSION\x01|\x01ACTION [a-z]{0,3}\x01|[a-z ]{0,8}";
    prop_oneof![
        (conns.clone(), nicks.clone(), protocol, any::<u32>(), 0u64..100).prop_map(|(c, n, p, bits, at)| {
            let mut event = register(c, n, p);
            if let Event::Register { caps, at: signon, .. } = &mut event {
                *caps = Caps::from_bits(bits);
                *signon = at;
            }
            event
        }),
        (conns.clone(), any::<u32>())
            .prop_map(|(c, bits)| Event::Caps { conn: c, caps: Caps::from_bits(bits) }),
        (conns.clone(), nicks.clone()).prop_map(|(c, n)| Event::Nick { conn: c, nick: n.into() }),
        (conns.clone(), chans.clone(), prop::option::of(keys.clone()), 0u64..3)
            .prop_map(|(c, ch, key, at)| Event::Join { conn: c, channel: ch.into(), key, at }),
        (conns.clone(), chans.clone(), prop::collection::vec(mode_change(), 1..4), 0u64..3)
            .prop_map(|(c, ch, changes, at)| Event::Mode { conn: c, channel: ch.into(), changes, at }),
        (conns.clone(), chans.clone(), nicks.clone(), prop::option::of("[a-z]{1,5}")).prop_map(
            |(c, ch, n, reason)| Event::Kick { conn: c, channel: ch.into(), nick: n.into(), reason }
        ),
        (conns.clone(), nicks.clone(), chans.clone()).prop_map(|(c, n, ch)| Event::Invite {
            conn: c,
            nick: n.into(),
            channel: ch.into()
        }),
        (conns.clone(), chans.clone()).prop_map(|(c, ch)| Event::Part {
            conn: c,
            channel: ch.into(),
            reason: None
        }),
        conns.clone().prop_map(|c| Event::PartAll { conn: c }),
        (conns.clone(), audiences.clone(), texts, stamp()).prop_map(|(c, ch, t, stamp)| Event::Message {
            conn: c,
            kind: MessageKind::Privmsg,
            target: ch.into(),
            text: t,
            stamp,
        }),
        (conns.clone(), audiences, stamp()).prop_map(|(c, ch, stamp)| Event::Message {
            conn: c,
            kind: MessageKind::Tagmsg,
            target: ch.into(),
            text: String::new(),
            stamp,
        }),
        (conns.clone(), nicks.clone(), "[a-z]{1,8}", stamp()).prop_map(|(c, n, t, stamp)| Event::Message {
            conn: c,
            kind: MessageKind::Notice,
            target: n.into(),
            text: t,
            stamp,
        }),
        (conns.clone(), chans, "[a-z]{0,8}").prop_map(|(c, ch, t)| Event::Topic {
            conn: c,
            channel: ch.into(),
            topic: t,
            at: 7,
        }),
        conns.clone().prop_map(|c| Event::Quit { conn: c, reason: "gone".into() }),
        (conns.clone(), prop::option::of("[a-z]{1,5}"))
            .prop_map(|(c, m)| Event::Away { conn: c, message: m }),
        (conns.clone(), prop::sample::select(UserMode::ALL.to_vec()), any::<bool>())
            .prop_map(|(c, mode, on)| Event::UserMode { conn: c, mode, on }),
        (conns.clone(), "[a-z]{1,5}").prop_map(|(c, realname)| Event::SetName { conn: c, realname }),
        (conns.clone(), any::<bool>()).prop_map(|(c, on)| Event::Oper { conn: c, on }),
        conns.clone().prop_map(|c| Event::WallopsMessage { conn: c, text: "hear ye".into() }),
        (conns.clone(), prop::collection::vec("[a-e]", 0..4), 0u8..3).prop_map(|(c, nicks, how)| {
            let nicks: Vec<crate::chat::Nick> = nicks.iter().map(|n| n.as_str().into()).collect();
            let change = match how {
                0 => crate::chat::event::MonitorChange::Add(nicks),
                1 => crate::chat::event::MonitorChange::Remove(nicks),
                _ => crate::chat::event::MonitorChange::Clear,
            };
            Event::Monitor { conn: c, change }
        }),
        (conns, "[a-e]").prop_map(|(c, n)| Event::Kill {
            conn: c,
            target: n.as_str().into(),
            reason: "out".into()
        }),
        (0u16..3).prop_map(|w| Event::WorkerLost { worker: w, generation: 0, reason: "lost".into() }),
        (0u16..2).prop_map(|node| Event::NodeLost { node, epoch: 0, reason: "Node lost".into() }),
    ]
}

/// A message's stamp, with or without a client-only tag.
fn stamp() -> impl Strategy<Value = Stamp> {
    let tags = prop::collection::vec(("\\+[a-z]{1,3}", "[a-z; ]{0,4}"), 0..2);
    (0u64..5_000, 0u64..3, tags).prop_map(|(at, id, tags)| Stamp { at, id, tags })
}

/// Mode changes over the same few nicks and masks, so that bans, keys,
/// limits, invite-only and status changes meet the joins and messages.
fn mode_change() -> impl Strategy<Value = ModeChange> {
    let nicks = prop::sample::select(vec!["ann", "bob", "cy", "zed"]);
    let masks = prop::sample::select(vec!["ann!*@*", "*!*@host", "b*!*@*"]);
    let kinds = prop::sample::select(vec![ListKind::Ban, ListKind::Except, ListKind::InviteExcept]);
    prop_oneof![
        (prop::sample::select(Flag::ALL.to_vec()), any::<bool>())
            .prop_map(|(flag, on)| ModeChange::Flag { flag, on }),
        prop::option::of(prop::sample::select(vec!["k1".to_string(), "k2".to_string()]))
            .prop_map(ModeChange::Key),
        prop::option::of(1u32..3).prop_map(ModeChange::Limit),
        (nicks.clone(), any::<bool>()).prop_map(|(n, on)| ModeChange::Op { nick: n.into(), on }),
        (nicks, any::<bool>()).prop_map(|(n, on)| ModeChange::Voice { nick: n.into(), on }),
        (kinds, masks, any::<bool>()).prop_map(|(kind, m, on)| ModeChange::List { kind, mask: m.into(), on }),
    ]
}

proptest! {
    #[test]
    fn per_worker_replicas_agree_with_one_directory(events in prop::collection::vec(any_event(), 1..80)) {
        let mut whole = State::new(info());
        let mut replicas: Vec<State> = (0..3).map(|_| State::new(info())).collect();
        for event in &events {
            let everything = apply(&mut whole, event);
            let mut from_replicas: Vec<Delivery> = Vec::new();
            let mut listings: Vec<(ConnId, Listing)> = Vec::new();
            for (worker, replica) in (0u16..).zip(&mut replicas) {
                let mine = apply_for(replica, event, |c| c.worker == worker);
                prop_assert!(mine.items.iter().all(|d| d.to.worker == worker), "rendered for another worker");
                from_replicas.extend(mine.items);
                listings.extend(mine.listings);
            }
            for worker in 0..3u16 {
                let mine: Vec<&Delivery> = everything.items.iter().filter(|d| d.to.worker == worker).collect();
                let theirs: Vec<&Delivery> = from_replicas.iter().filter(|d| d.to.worker == worker).collect();
                prop_assert_eq!(mine, theirs);
                let mine: Vec<_> = everything.listings.iter().filter(|(to, _)| to.worker == worker).collect();
                let theirs: Vec<_> = listings.iter().filter(|(to, _)| to.worker == worker).collect();
                prop_assert_eq!(mine, theirs);
            }
        }
        for replica in &replicas {
            prop_assert_eq!(replica.digest(), whole.digest());
        }
    }
}

fn registered(protocol: Protocol) -> (Session, State) {
    let mut state = State::new(info());
    let mut s = Session::new(conn(0, 1), "host", info());
    match protocol {
        Protocol::Irc => {
            run(&mut s, &mut state, "NICK n");
            run(&mut s, &mut state, "USER u 0 * :R");
        }
        Protocol::Plain => {
            run(&mut s, &mut state, "n");
        }
    }
    assert!(state.user(conn(0, 1)).is_some());
    (s, state)
}

/// Framing lets an IRC tag section stretch a line past 512 bytes (see
/// `wire::framing`); to a plain client `@` is text, so its lines are held
/// to 512 bytes whole, from the first.
#[test]
fn a_plain_line_is_held_to_512_bytes_whatever_it_starts_with() {
    let long = format!("@{} {}", "t".repeat(300), "x".repeat(300));
    let (mut s, mut state) = registered(Protocol::Plain);
    assert_eq!(run(&mut s, &mut state, &long).0, "! Input line was too long\r\n");
    let at_limit = format!("@{} x", "t".repeat(507));
    let mut actions = Vec::new();
    s.on_line(at_limit.as_bytes(), &state, 0, &mut actions);
    assert!(
        matches!(&actions[..], [Action::Event(Event::Message { text, .. })] if *text == at_limit),
        "510 bytes are said as they are: {actions:?}"
    );
    let mut first = Session::new(conn(0, 2), "host", info());
    assert_eq!(run(&mut first, &mut state, &long).0, "! Input line was too long\r\n");
    assert_eq!(first.protocol(), Some(Protocol::Plain), "the line decided the protocol");
    assert!(run(&mut first, &mut state, "ann").0.contains("*** ann joined #lobby"));
}

/// A line of nothing but a tag section is no command: an IRC client's is
/// ignored, as any line that does not parse; as a first line it opens no
/// IRC session, so it is a plain client's (too long) name.
#[test]
fn a_line_of_tags_alone_is_no_command() {
    let tags_alone = format!("@+a={};+b", "v".repeat(4000));
    let mut fresh = Session::new(conn(0, 2), "host", info());
    let mut state = State::new(info());
    assert_eq!(run(&mut fresh, &mut state, &tags_alone).0, "! Input line was too long\r\n");
    assert_eq!(fresh.protocol(), Some(Protocol::Plain), "no IRC command opened it");
    let (mut s, mut state) = registered(Protocol::Irc);
    assert_eq!(run(&mut s, &mut state, &tags_alone), (String::new(), false));
    assert_eq!(run(&mut s, &mut state, &format!("{tags_alone}   ")), (String::new(), false));
}

#[test]
fn a_command_without_a_handler_is_unknown() {
    let (mut s, mut state) = registered(Protocol::Irc);
    assert_eq!(run(&mut s, &mut state, "FROB x").0, ":test.server 421 n FROB :Unknown command\r\n");
    assert_eq!(run(&mut s, &mut state, "knock #a").0, ":test.server 421 n KNOCK :Unknown command\r\n");
    let (mut s, mut state) = registered(Protocol::Plain);
    assert_eq!(run(&mut s, &mut state, "/Frob x").0, "! Unknown command /Frob; /help lists commands\r\n");
    // "/me" says nothing without an action, so it is no command either.
    assert_eq!(run(&mut s, &mut state, "/ME").0, "! Unknown command /ME; /help lists commands\r\n");
}

#[test]
fn handlers_share_the_not_enough_parameters_answer() {
    let (mut s, mut state) = registered(Protocol::Irc);
    for command in ["JOIN", "PART", "TOPIC", "USERHOST", "ISON"] {
        let expected = format!(":test.server 461 n {command} :Not enough parameters\r\n");
        assert_eq!(run(&mut s, &mut state, command).0, expected);
        assert_eq!(run(&mut s, &mut state, &format!("{command} :")).0, expected);
    }
}

#[test]
fn commands_are_found_in_any_case() {
    let (mut s, mut state) = registered(Protocol::Irc);
    assert_eq!(
        run(&mut s, &mut state, "time").0,
        ":test.server 391 n test.server :Thu, 01 Jan 1970 00:00:00 GMT\r\n"
    );
    let (mut s, mut state) = registered(Protocol::Plain);
    let help = run(&mut s, &mut state, "/HeLp").0;
    assert!(help.starts_with("*** Lines you type go to your current room. Commands:\r\n"));
}

fn mode(c: ConnId, channel: &str, changes: Vec<ModeChange>) -> Event {
    Event::Mode { conn: c, channel: channel.into(), changes, at: 5 }
}

#[test]
fn lists_hold_at_most_their_limit() {
    let mut state = State::new(info());
    let op = conn(0, 1);
    apply(&mut state, &register(op, "op", Protocol::Irc));
    apply(&mut state, &join(op, "#c"));
    let ban = |i: usize| ModeChange::List { kind: ListKind::Ban, mask: format!("n{i}!*@*"), on: true };
    for i in 0..crate::chat::channel::MAX_LIST_ENTRIES {
        apply(&mut state, &mode(op, "#c", vec![ban(i)]));
    }
    let full = apply(&mut state, &mode(op, "#c", vec![ban(1000)]));
    assert_eq!(text(&full, op), ":test.server 478 op #c b :Channel list is full\r\n");
    assert_eq!(state.channel("#c").unwrap().bans.len(), crate::chat::channel::MAX_LIST_ENTRIES);
    // A mask already there, in another case, changes nothing.
    let upper = ModeChange::List { kind: ListKind::Ban, mask: "N3!*@*".into(), on: true };
    let again = apply(&mut state, &mode(op, "#c", vec![ban(1000), upper]));
    assert!(text(&again, op).contains(" 478 "));
    assert!(!text(&again, op).contains("MODE"));
}

#[test]
fn invites_are_spent_by_joining_and_forgotten_with_the_channel() {
    let mut state = State::new(info());
    let (op, guest) = (conn(0, 1), conn(1, 1));
    apply(&mut state, &register(op, "op", Protocol::Irc));
    apply(&mut state, &register(guest, "guest", Protocol::Irc));
    apply(&mut state, &join(op, "#c"));
    apply(&mut state, &mode(op, "#c", vec![ModeChange::Flag { flag: Flag::InviteOnly, on: true }]));
    let invite = Event::Invite { conn: op, nick: "GUEST".into(), channel: "#C".into() };
    let out = apply(&mut state, &invite);
    assert_eq!(text(&out, op), ":test.server 341 op guest #c\r\n");
    assert_eq!(text(&out, guest), ":op!op@host INVITE guest #c\r\n");
    assert_eq!(state.user(guest).unwrap().invites.len(), 1);
    apply(&mut state, &join(guest, "#c"));
    assert!(state.user(guest).unwrap().invites.is_empty());
    assert!(state.channel("#c").unwrap().invited.is_empty());
    // Invited again, then the channel empties: the invite goes with it.
    apply(&mut state, &Event::Part { conn: guest, channel: "#c".into(), reason: None });
    apply(&mut state, &invite);
    apply(&mut state, &Event::Part { conn: op, channel: "#c".into(), reason: None });
    assert!(state.channel("#c").is_none());
    assert!(state.user(guest).unwrap().invites.is_empty());
}

#[test]
fn kicking_yourself_out_of_your_own_channel_removes_it() {
    let mut state = State::new(info());
    let op = conn(0, 1);
    apply(&mut state, &register(op, "op", Protocol::Irc));
    apply(&mut state, &join(op, "#c"));
    let kick = Event::Kick { conn: op, channel: "#c".into(), nick: "op".into(), reason: None };
    let out = apply(&mut state, &kick);
    assert_eq!(text(&out, op), ":op!op@host KICK #c op :op\r\n");
    assert!(state.channel("#c").is_none());
    assert!(state.user(op).unwrap().channels.is_empty());
}

#[test]
fn rehash_is_for_operators_and_asks_the_model_to_reread() {
    let mut state = State::new(info());
    let mut s = Session::new(conn(0, 1), "host", info());
    run(&mut s, &mut state, "NICK op");
    run(&mut s, &mut state, "USER op 0 * :Op");
    assert!(run(&mut s, &mut state, "REHASH").0.contains(" 481 op :Permission Denied"));
    apply(&mut state, &Event::Oper { conn: conn(0, 1), on: true });
    assert!(run(&mut s, &mut state, "REHASH elsewhere.example").0.contains(" 402 op elsewhere.example "));
    assert_eq!(run(&mut s, &mut state, "REHASH").0, "(reread the configuration)\n");
    assert_eq!(run(&mut s, &mut state, "REHASH test.server").0, "(reread the configuration)\n");
}

#[test]
fn reloaded_settings_count_from_the_event_that_completes_them() {
    let mut state = State::new(info());
    let me = conn(0, 1);
    let mut s = Session::new(me, "host", info());
    run(&mut s, &mut state, "NICK n");
    run(&mut s, &mut state, "USER n 0 * :N");
    let mut new = state.info().reloadable.clone();
    new.motd = Some((0..400).map(|n| format!("line {n} of a message of the day that is long")).collect());
    new.admin_email = "new@example.org".into();
    new.channels_per_client = 1;
    let pieces = reload::pieces(0, &reload::encode(&new).unwrap());
    let (last, init) = pieces.split_last().unwrap();
    assert!(!init.is_empty(), "the MOTD takes more than one piece");
    for piece in init {
        assert!(apply(&mut state, piece).items.is_empty(), "a reload tells no one");
    }
    assert!(run(&mut s, &mut state, "MOTD").0.contains(" 422 n :MOTD File is missing"));
    apply(&mut state, last);
    assert!(run(&mut s, &mut state, "MOTD").0.contains(" 372 n :- line 49 of a message"));
    // The session answers from the settings the directory has now.
    assert!(run(&mut s, &mut state, "ADMIN").0.contains(" 259 n :new@example.org"));
    // So does the directory, for what it decides.
    apply(&mut state, &join(me, "#a"));
    assert!(text(&apply(&mut state, &join(me, "#b")), me).contains(" 405 n #b "));
    assert_eq!((state.info().name.as_str(), state.info().network.as_str()), ("test.server", "chatter"));
}
