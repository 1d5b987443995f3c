//! Tests of snapshots: a restored directory goes on exactly as the one it
//! was taken from, whatever events came before and come after; every kind
//! of bad snapshot is refused with the error that says what is wrong; and
//! no input, random or a real snapshot damaged, makes restore panic.

use std::sync::Arc;

use proptest::prelude::*;

use super::{Dated, Image, SnapshotError, VERSION, WasImage};
use crate::chat::channel::{ListKind, ModeChange};
use crate::chat::event::MonitorChange;
use crate::chat::info::Reloadable;
use crate::chat::reload;
use crate::chat::tests::{any_event, apply_for, conn, info, join, register, whole};
use crate::chat::{ConnId, Event, Protocol, ServerInfo, State};

fn apply_all<'a>(state: &mut State, events: impl IntoIterator<Item = &'a Event>) {
    for event in events {
        apply_for(state, event, |_| true);
    }
}

/// Settings a reload may bring that change what `apply` decides (fewer
/// channels) and what it renders (a MOTD long enough to take several
/// pieces, so a snapshot can fall between them).
fn reloaded(channels_per_client: usize, max_channels: usize) -> Reloadable {
    let mut settings = info().reloadable.clone();
    settings.motd = Some((0..400).map(|n| format!("line {n} of a message of the day, long")).collect());
    settings.channels_per_client = channels_per_client;
    settings.max_channels = max_channels;
    settings
}

fn reload_pieces(from: u16, settings: &Reloadable) -> Vec<Event> {
    reload::pieces(from, &reload::encode(settings).unwrap())
}

/// `a` and `b` in one sequence, each in its own order, `take_a` choosing
/// at each step (either, once the other is used up).
fn merge(a: Vec<Event>, b: Vec<Event>, take_a: &[bool]) -> Vec<Event> {
    let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
    let mut merged = Vec::new();
    let mut choices = take_a.iter().copied().chain(std::iter::repeat(true));
    while a.peek().is_some() || b.peek().is_some() {
        let from_a = b.peek().is_none() || (a.peek().is_some() && choices.next() == Some(true));
        merged.extend(if from_a { a.next() } else { b.next() });
    }
    merged
}

/// MONITOR changes over the nicks `any_event` registers (its own name
/// nicks no one registers), so that watchers are told of users coming and
/// going after a restore.
fn monitor_event() -> impl Strategy<Value = Event> {
    let nicks = prop::collection::vec(prop::sample::select(vec!["ann", "Bob", "cy", "dee"]), 0..3);
    ((0u16..3, 0u32..2), nicks, any::<bool>()).prop_map(|((w, s), nicks, add)| {
        let nicks = nicks.into_iter().map(Into::into).collect();
        let change = if add { MonitorChange::Add(nicks) } else { MonitorChange::Remove(nicks) };
        Event::Monitor { conn: conn(w, s), change }
    })
}

/// Random events with, now and then, the pieces of one or two reloads from
/// writers that `any_event`'s lost workers may be, spread among them.
fn events_with_reloads() -> impl Strategy<Value = Vec<Event>> {
    let reload = prop::option::of((0u16..3, 1usize..3, 1usize..6));
    (
        prop::collection::vec(prop_oneof![4 => any_event(), 1 => monitor_event()], 1..80),
        reload.clone(),
        reload,
        prop::collection::vec(any::<bool>(), 0..120),
    )
        .prop_map(|(events, first, second, take_a)| {
            let pieces = |r: Option<(u16, usize, usize)>| {
                r.map(|(from, per_client, max)| reload_pieces(from, &reloaded(per_client, max)))
                    .unwrap_or_default()
            };
            let reloads = merge(pieces(first), pieces(second), &take_a);
            merge(events, reloads, &take_a[take_a.len() / 2..])
        })
}

proptest! {
    #[test]
    fn a_restored_directory_goes_on_as_the_original(
        events in events_with_reloads(),
        at in any::<prop::sample::Index>(),
    ) {
        let (before, after) = events.split_at(at.index(events.len() + 1));
        let mut original = State::new(info());
        apply_all(&mut original, before);
        let bytes = original.snapshot();
        let mut restored = State::restore(&bytes, info()).unwrap();
        prop_assert_eq!(restored.digest(), original.digest());
        prop_assert_eq!(restored.snapshot(), bytes, "the encoding is canonical");
        for event in after {
            let theirs = apply_for(&mut original, event, |_| true);
            let ours = apply_for(&mut restored, event, |_| true);
            prop_assert_eq!(&ours.items, &theirs.items);
            prop_assert_eq!(&ours.listings, &theirs.listings);
            for ((to, mine), (_, other)) in ours.listings.into_iter().zip(theirs.listings) {
                prop_assert_eq!(whole(mine, &restored, to), whole(other, &original, to));
            }
            prop_assert_eq!(restored.digest(), original.digest());
        }
        prop_assert_eq!(restored.snapshot(), original.snapshot());
    }
}

/// A directory with something in every part a snapshot holds: users of
/// both protocols with modes, away, caps and MONITOR lists; channels with
/// a topic, key, limit, lists and an invite; a WHOWAS history; and a
/// reload half received.
fn busy() -> State {
    let mut state = State::new(info());
    let (ann, bob, cy, gone) = (conn(0, 1), conn(1, 2), conn(2, 3), conn(0, 4));
    let op =
        |c: ConnId, changes: Vec<ModeChange>| Event::Mode { conn: c, channel: "#a".into(), changes, at: 9 };
    let ban = ModeChange::List { kind: ListKind::Ban, mask: "x!*@*".into(), on: true };
    let mut events = vec![
        register(ann, "Ann", Protocol::Irc),
        register(bob, "bob", Protocol::Plain),
        register(cy, "cy", Protocol::Irc),
        register(gone, "gone", Protocol::Irc),
        Event::Quit { conn: gone, reason: "bye".into() },
        join(ann, "#A"),
        join(bob, "#a"),
        Event::Topic { conn: ann, channel: "#a".into(), topic: "hello".into(), at: 3 },
        op(ann, vec![ModeChange::Key(Some("k".into())), ModeChange::Limit(Some(5)), ban]),
        op(ann, vec![ModeChange::Voice { nick: "bob".into(), on: true }]),
        Event::Invite { conn: ann, nick: "cy".into(), channel: "#a".into() },
        Event::Away { conn: cy, message: Some("out".into()) },
        Event::UserMode { conn: cy, mode: crate::chat::UserMode::Invisible, on: true },
        Event::Oper { conn: ann, on: true },
        Event::Caps { conn: ann, caps: crate::chat::Caps::MULTI_PREFIX },
        Event::Monitor { conn: cy, change: MonitorChange::Add(vec!["gone".into(), "Ann".into()]) },
    ];
    let pieces = reload_pieces(2, &reloaded(1, 2));
    events.extend(pieces[..pieces.len() - 1].iter().cloned());
    apply_all(&mut state, &events);
    state
}

/// `snapshot` with `change` made to what it says, encoded again.
fn tampered<'a>(snapshot: &'a [u8], change: impl FnOnce(&mut Image<'a>)) -> Vec<u8> {
    let (mut image, _) = postcard::take_from_bytes::<Image<'a>>(&snapshot[1..]).unwrap();
    change(&mut image);
    postcard::to_extend(&image, vec![VERSION]).unwrap()
}

fn refusal(bytes: &[u8]) -> SnapshotError {
    State::restore(bytes, info()).expect_err("refused")
}

#[test]
fn a_node_keeps_its_identity_and_takes_the_networks_settings() {
    let mut state = busy();
    let last = reload_pieces(2, &reloaded(1, 2)).pop().unwrap();
    apply_all(&mut state, [&last]);
    let mut here = ServerInfo::new("other.node");
    here.network = "othernet".into();
    here.version = "chatter-9".into();
    here.created = "yesterday".into();
    let restored = State::restore(&state.snapshot(), Arc::new(here)).unwrap();
    let info = restored.info();
    assert_eq!(
        (&*info.name, &*info.network, &*info.version, &*info.created),
        ("other.node", "othernet", "chatter-9", "yesterday")
    );
    assert_eq!(info.reloadable, reloaded(1, 2));
    assert_eq!(restored.digest(), state.digest());
}

#[test]
fn settings_the_node_has_already_keep_its_own_info() {
    let here = info();
    let restored = State::restore(&State::new(info()).snapshot(), here.clone()).unwrap();
    assert!(Arc::ptr_eq(restored.shared_info(), &here), "no reload seen where there was none");
}

#[test]
fn what_the_snapshot_leaves_out_comes_back() {
    let state = busy();
    let restored = State::restore(&state.snapshot(), info()).unwrap();
    assert_eq!(restored.find_nick("ANN"), Some(conn(0, 1)), "the nick index, folded");
    let ids: Vec<ConnId> = restored.users_from(std::ops::Bound::Unbounded).map(|(c, _)| c).collect();
    assert_eq!(ids, [conn(0, 1), conn(1, 2), conn(2, 3)], "the id order");
    assert_eq!(restored.watchers_of(&"ann".into()), [conn(2, 3)], "the watchers index");
    let cy = restored.user(conn(2, 3)).unwrap();
    assert_eq!(cy.invites.iter().map(|c| c.as_str()).collect::<Vec<_>>(), ["#A"], "named as the channel is");
    let bob = restored.user(conn(1, 2)).unwrap();
    let channels: Vec<&str> = bob.channels.iter().map(|c| c.as_str()).collect();
    assert_eq!(channels, ["#A", "#lobby"]);
    assert_eq!(bob.focus.as_ref().map(|f| f.as_str()), Some("#A"));
    assert_eq!(restored.whowas(&"GONE".into()).count(), 1);
}

#[test]
fn a_reload_half_received_is_finished_by_the_restored_directory() {
    let state = busy();
    let mut restored = State::restore(&state.snapshot(), info()).unwrap();
    let last = reload_pieces(2, &reloaded(1, 2)).pop().unwrap();
    apply_all(&mut restored, [&last]);
    assert_eq!(restored.info().reloadable, reloaded(1, 2));
}

#[test]
fn another_version_or_nothing_at_all_is_refused() {
    assert_eq!(refusal(&[]), SnapshotError::Empty);
    let mut bytes = busy().snapshot();
    bytes[0] = VERSION + 1;
    assert_eq!(refusal(&bytes), SnapshotError::UnknownVersion(VERSION + 1));
    assert_eq!(refusal(&[0]), SnapshotError::UnknownVersion(0));
}

#[test]
fn every_truncation_is_refused() {
    let bytes = busy().snapshot();
    for len in 1..bytes.len() {
        assert!(
            matches!(refusal(&bytes[..len]), SnapshotError::Malformed(_)),
            "{len} of {} bytes",
            bytes.len()
        );
    }
}

#[test]
fn bytes_after_the_end_are_refused() {
    let mut bytes = busy().snapshot();
    bytes.extend_from_slice(&[0, 1, 2]);
    assert_eq!(refusal(&bytes), SnapshotError::TrailingBytes(3));
}

#[test]
fn a_length_past_the_input_is_malformed_not_an_allocation() {
    // The settings' first string claims 2^63 - 1 bytes.
    let mut bytes = vec![VERSION];
    bytes.extend([0xff; 8]);
    bytes.push(0x7f);
    assert!(matches!(refusal(&bytes), SnapshotError::Malformed(_)));
}

/// Asserts that restoring `bytes` is refused with an error `pattern`
/// matches, showing the error otherwise.
macro_rules! assert_refused {
    ($bytes:expr, $pattern:pat $(if $guard:expr)?) => {{
        let refusal = refusal(&$bytes);
        assert!(matches!(&refusal, $pattern $(if $guard)?), "{refusal:?}");
    }};
}

#[test]
fn corrupted_fields_are_refused_and_named() {
    use SnapshotError::InvalidField;
    let snap = busy().snapshot();
    assert_refused!(tampered(&snap, |i| i.users[0].nick = "1nick"), InvalidField { what: "nick", .. });
    assert_refused!(tampered(&snap, |i| i.users[0].user = "a@b"), InvalidField { what: "user name", .. });
    assert_refused!(tampered(&snap, |i| i.users[1].host = "a b"), InvalidField { what: "host", .. });
    assert_refused!(
        tampered(&snap, |i| i.users[1].modes = 0b1_0000),
        InvalidField { what: "user modes", .. }
    );
    let bytes = tampered(&snap, |i| i.users[2].monitoring[0] = "#x");
    assert_refused!(bytes, InvalidField { what: "monitored nick", .. });
    let bytes = tampered(&snap, |i| i.channels[0].name = "#A b");
    assert_refused!(bytes, InvalidField { what: "channel name", .. });
    let bytes = tampered(&snap, |i| i.channels[0].members[0].1 = 4);
    assert_refused!(bytes, InvalidField { what: "member status", .. });
    let bytes = tampered(&snap, |i| i.channels[0].key = Some("two words"));
    assert_refused!(bytes, InvalidField { what: "channel key", .. });
    let bytes = tampered(&snap, |i| i.channels[0].limit = Some(0));
    assert_refused!(bytes, InvalidField { what: "channel limit", .. });
    let bytes = tampered(&snap, |i| i.channels[0].bans[0].text = "x");
    assert_refused!(bytes, InvalidField { what: "list mask", .. });
    let long = "t".repeat(crate::chat::names::TOPIC_LEN + 1);
    let bytes = tampered(&snap, |i| i.channels[0].topic.as_mut().unwrap().text = &long);
    assert_refused!(bytes, InvalidField { what: "topic", .. });
    assert_refused!(tampered(&snap, |i| i.whowas[0].nick = ""), InvalidField { what: "WHOWAS nick", .. });
    let quoted = refusal(&tampered(&snap, |i| i.users[0].realname = &long));
    assert!(quoted.to_string().ends_with("...\""), "a long value is quoted in part: {quoted}");
}

#[test]
fn a_byte_that_names_no_variant_is_malformed() {
    let snap = busy().snapshot();
    // The last user's protocol sits right after its host; find it by
    // writing the user with each protocol.
    let irc = tampered(&snap, |i| i.users[2].protocol = Protocol::Irc);
    let plain = tampered(&snap, |i| i.users[2].protocol = Protocol::Plain);
    let at = irc.iter().zip(&plain).position(|(a, b)| a != b).unwrap();
    let mut bytes = irc;
    bytes[at] = 7;
    assert_refused!(bytes, SnapshotError::Malformed(_));
}

#[test]
fn keys_out_of_order_or_twice_are_refused() {
    use SnapshotError::OutOfOrder;
    let snap = busy().snapshot();
    assert_refused!(tampered(&snap, |i| i.users.swap(0, 1)), OutOfOrder { what: "user", .. });
    assert_refused!(tampered(&snap, |i| i.channels[1].name = "#A"), OutOfOrder { what: "channel", .. });
    let twice = |i: &mut Image<'_>| {
        let first = i.channels[0].members[0];
        i.channels[0].members.push(first);
    };
    assert_refused!(tampered(&snap, twice), OutOfOrder { what: "member", .. });
    let bytes = tampered(&snap, |i| i.users[2].monitoring.reverse());
    assert_refused!(bytes, OutOfOrder { what: "monitored nick", .. });
}

#[test]
fn two_users_with_one_nick_are_refused() {
    let snap = busy().snapshot();
    let bytes = tampered(&snap, |i| i.users[1].nick = "ANN");
    assert_eq!(refusal(&bytes), SnapshotError::NickTaken { nick: "ANN".into() });
}

#[test]
fn a_channel_that_names_no_user_is_refused() {
    let snap = busy().snapshot();
    let stranger = conn(9, 9);
    let bytes = tampered(&snap, |i| i.channels[0].members.push((stranger, 0)));
    assert_eq!(
        refusal(&bytes),
        SnapshotError::NoSuchUser { channel: "#A".into(), conn: stranger, role: "member" }
    );
    let bytes = tampered(&snap, |i| i.channels[0].invited = vec![stranger]);
    assert_eq!(
        refusal(&bytes),
        SnapshotError::NoSuchUser { channel: "#A".into(), conn: stranger, role: "invitee" }
    );
}

#[test]
fn contents_that_disagree_are_refused() {
    use SnapshotError::Inconsistent;
    let snap = busy().snapshot();
    let bytes = tampered(&snap, |i| i.channels[0].members.clear());
    assert_refused!(bytes, Inconsistent(why) if why == "#A has no members");
    let bytes = tampered(&snap, |i| i.channels[0].invited = vec![i.channels[0].members[0].0]);
    assert_refused!(bytes, Inconsistent(why) if why.ends_with(" is in #A and invited to it"));
    let bytes = tampered(&snap, |i| i.users[1].focus = Some("#elsewhere"));
    assert_refused!(bytes, Inconsistent(why) if why.ends_with(" speaks to #elsewhere and is not in it"));
    let bytes = tampered(&snap, |i| i.users[0].focus = Some("#a"));
    assert_refused!(bytes, Inconsistent(why) if why.ends_with(" (Irc, in 1 channels) has a channel its lines go to"));
    let bytes = tampered(&snap, |i| i.users[1].focus = None);
    assert_refused!(bytes, Inconsistent(why) if why.ends_with(" (Plain, in 2 channels) has no channel its lines go to"));
    let bytes = tampered(&snap, |i| i.peak_users = 2);
    assert_refused!(bytes, Inconsistent(why) if why == "at most 2 users at once, and 3 now");
    let bytes = tampered(&snap, |i| i.users[0].signon = i.users[0].last_active + 1);
    assert_refused!(bytes, Inconsistent(why) if why.ends_with(" was last active before it signed on"));
    let bytes = tampered(&snap, |i| i.reloads[0].next_part = 0);
    assert_refused!(bytes, Inconsistent(why) if why == "writer 2's reload waits for its first piece again");
    let bytes = tampered(&snap, |i| {
        let ban = i.channels[0].bans.pop().unwrap();
        i.channels[0].bans.extend([Dated { text: "X!*@*", ..ban }, ban]);
    });
    assert_refused!(bytes, Inconsistent(why) if why == "bans hold x!*@* twice");
}

#[test]
fn what_no_directory_keeps_so_much_of_is_refused() {
    use SnapshotError::TooMany;
    let snap = busy().snapshot();
    let masks: Vec<String> =
        (0..=crate::chat::channel::MAX_LIST_ENTRIES).map(|n| format!("n{n}!*@*")).collect();
    let bytes = tampered(&snap, |i| {
        let ban = i.channels[0].bans.pop().unwrap();
        i.channels[0].bans = masks.iter().map(|m| Dated { text: m, ..ban }).collect();
    });
    assert_refused!(bytes, TooMany { what: "bans", count: 101, limit: 100 });
    let nicks: Vec<String> =
        (0..=crate::chat::state::monitor::MONITOR_LIMIT).map(|n| format!("n{n:03}")).collect();
    let bytes = tampered(&snap, |i| i.users[2].monitoring = nicks.iter().map(String::as_str).collect());
    assert_refused!(bytes, TooMany { what: "monitored nicks", count: 101, limit: 100 });
    let bytes = tampered(&snap, |i| {
        let was = i.whowas.pop().unwrap();
        i.whowas = (0..=crate::chat::state::whowas::PER_NICK).map(|_| WasImage { ..was }).collect();
    });
    assert_refused!(bytes, TooMany { what: "WHOWAS entries for one nick", count: 6, limit: 5 });
    let mut huge = info().reloadable.clone();
    huge.motd = Some(vec!["x".repeat(reload::MAX_RELOAD_BYTES)]);
    let bytes = tampered(&snap, |i| i.settings = std::borrow::Cow::Owned(huge));
    assert_refused!(bytes, TooMany { what: "bytes of settings", count, limit } if count > limit);
}

#[test]
fn a_thousand_users_in_a_hundred_channels_take_a_few_dozen_bytes_each() {
    let mut state = State::new(info());
    for n in 0..1000u32 {
        let c = conn((n % 4) as u16, n);
        apply_all(&mut state, [&register(c, &format!("user{n}"), Protocol::Irc)]);
        for k in 0..3 {
            apply_all(&mut state, [&join(c, &format!("#channel{}", (n + 37 * k) % 100))]);
        }
    }
    let bytes = state.snapshot();
    assert_eq!(state.channel_count(), 100);
    assert!(bytes.len() < 1000 * 64, "{} bytes", bytes.len());
    assert_eq!(State::restore(&bytes, info()).unwrap().digest(), state.digest());
}

/// One change to a byte string: overwrite, insert or remove at a place.
fn mutate(bytes: &mut Vec<u8>, (at, byte, how): (prop::sample::Index, u8, u8)) {
    match how {
        0 if !bytes.is_empty() => {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        1 => bytes.insert(at.index(bytes.len() + 1), byte),
        _ if !bytes.is_empty() => {
            bytes.remove(at.index(bytes.len()));
        }
        _ => {}
    }
}

proptest! {
    #[test]
    fn random_bytes_never_panic(mut bytes in prop::collection::vec(any::<u8>(), 0..400), versioned: bool) {
        if versioned {
            bytes.insert(0, VERSION);
        }
        let _ = State::restore(&bytes, info());
    }

    #[test]
    fn damaged_snapshots_are_refused_or_a_directory_that_works(
        events in prop::collection::vec(any_event(), 1..40),
        damage in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6),
        later in prop::collection::vec(any_event(), 0..20),
    ) {
        let mut state = busy();
        apply_all(&mut state, &events);
        let mut bytes = state.snapshot();
        for change in damage {
            mutate(&mut bytes, change);
        }
        if let Ok(mut restored) = State::restore(&bytes, info()) {
            // What was accepted is a directory: it encodes and restores
            // again to itself, and goes on applying events.
            let again = restored.snapshot();
            let twice = State::restore(&again, info()).unwrap();
            prop_assert_eq!(twice.digest(), restored.digest());
            prop_assert_eq!(twice.snapshot(), again);
            apply_all(&mut restored, &later);
        }
    }
}
