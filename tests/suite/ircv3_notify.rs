//! IRCv3 capabilities that tell a client what others change about
//! themselves (away-notify, setname, extended-monitor), how they arrive
//! (extended-join) and whom they invite (invite-notify), and bot mode,
//! under every model. Each is checked with the capability and without it:
//! a client that did not ask must see nothing new.

use crate::common::{Client, Model, Server, numeric_of};

/// `#room` with `watcher` (having `caps`) and a plain IRC `actor`, each
/// having seen the other arrive.
fn watcher_and_actor(server: &Server, caps: &str) -> (Client, Client) {
    let mut watcher = Client::register_with_caps(server, "watcher", caps);
    let mut actor = Client::register(server, "actor");
    watcher.join("#room");
    actor.join("#room");
    watcher.expect_line(":actor!actor@127.0.0.1 JOIN #room");
    (watcher, actor)
}

fn away_notify_tells_channel_neighbours(model: Model) {
    let server = Server::start(model);
    let (mut watcher, mut actor) = watcher_and_actor(&server, "away-notify");
    let mut old = Client::register(&server, "old");
    old.join("#room");
    watcher.expect_line(":old!old@127.0.0.1 JOIN #room");
    actor.expect_line(":old!old@127.0.0.1 JOIN #room");

    actor.send("AWAY :gone fishing");
    actor.expect_numeric("306");
    assert_eq!(watcher.expect_line(" AWAY"), ":actor!actor@127.0.0.1 AWAY :gone fishing");
    actor.send("AWAY");
    actor.expect_numeric("305");
    assert_eq!(watcher.expect_line(" AWAY"), ":actor!actor@127.0.0.1 AWAY");
    // The actor is not told of itself, and a client without the
    // capability is told nothing.
    actor.expect_no_line(" AWAY");
    old.expect_no_line(" AWAY");
}

fn away_notify_tells_a_channel_when_someone_away_joins(model: Model) {
    let server = Server::start(model);
    let mut watcher = Client::register_with_caps(&server, "watcher", "away-notify");
    watcher.join("#room");
    let mut actor = Client::register(&server, "actor");
    actor.send("AWAY :already away");
    actor.expect_numeric("306");
    actor.join("#room");
    watcher.expect_line(":actor!actor@127.0.0.1 JOIN #room");
    assert_eq!(watcher.expect_line(" AWAY"), ":actor!actor@127.0.0.1 AWAY :already away");
    actor.expect_no_line(" AWAY");
}

fn extended_join_adds_account_and_real_name(model: Model) {
    let server = Server::start(model);
    let mut extended = Client::register_with_caps(&server, "ext", "extended-join");
    let mut classic = Client::register(&server, "classic");
    extended.join("#room");
    classic.join("#room");
    extended.expect_line(":classic!classic@127.0.0.1 JOIN #room * :classic Test");
    let mut joiner = Client::register(&server, "joiner");
    joiner.send("JOIN #room");
    // No accounts here: the account is always `*`.
    assert_eq!(extended.expect_line("JOIN #room"), ":joiner!joiner@127.0.0.1 JOIN #room * :joiner Test");
    assert_eq!(classic.expect_line(":joiner"), ":joiner!joiner@127.0.0.1 JOIN #room");
    // The joiner's own JOIN follows its own capabilities.
    assert_eq!(joiner.expect_line("JOIN #room"), ":joiner!joiner@127.0.0.1 JOIN #room");
}

fn invite_notify_tells_those_who_could_invite(model: Model) {
    let server = Server::start(model);
    let mut op = Client::register_with_caps(&server, "op", "invite-notify");
    let mut voter = Client::register_with_caps(&server, "member", "invite-notify");
    let mut classic = Client::register(&server, "classic");
    let mut guest = Client::register(&server, "guest");
    op.join("#room");
    voter.join("#room");
    classic.join("#room");
    op.expect_line(":classic!classic@127.0.0.1 JOIN #room");
    voter.expect_line(":classic!classic@127.0.0.1 JOIN #room");

    // On an open channel any member may invite, so any member may know.
    classic.send("INVITE guest #room");
    classic.expect_numeric("341");
    guest.expect_line(":classic!classic@127.0.0.1 INVITE guest #room");
    assert_eq!(op.expect_line(" INVITE "), ":classic!classic@127.0.0.1 INVITE guest #room");
    assert_eq!(voter.expect_line(" INVITE "), ":classic!classic@127.0.0.1 INVITE guest #room");

    // On +i only operators may, so only they are told.
    op.send("MODE #room +i");
    voter.expect_line("MODE #room +i");
    op.send("INVITE guest #room");
    op.expect_numeric("341");
    guest.expect_line(":op!op@127.0.0.1 INVITE guest #room");
    voter.expect_no_line(" INVITE ");
    op.expect_no_line(" INVITE ");
    classic.expect_no_line(" INVITE ");
}

fn setname_changes_the_real_name_and_tells_who_asked(model: Model) {
    let server = Server::start(model);
    let mut watcher = Client::register_with_caps(&server, "watcher", "setname");
    let mut actor = Client::register_with_caps(&server, "actor", "setname");
    let mut classic = Client::register(&server, "classic");
    for c in [&mut watcher, &mut actor, &mut classic] {
        c.join("#room");
    }
    watcher.expect_line(":classic!classic@127.0.0.1 JOIN #room");
    actor.expect_line(":classic!classic@127.0.0.1 JOIN #room");

    actor.send("SETNAME :Bruce Wayne <bruce@wayne.example>");
    let confirm = ":actor!actor@127.0.0.1 SETNAME :Bruce Wayne <bruce@wayne.example>";
    assert_eq!(actor.expect_line(" SETNAME "), confirm);
    assert_eq!(watcher.expect_line(" SETNAME "), confirm);
    classic.expect_no_line("SETNAME");
    classic.send("WHOIS actor");
    assert!(classic.expect_numeric("311").ends_with(":Bruce Wayne <bruce@wayne.example>"));

    // Refused whole, never cut: an empty name, or one over NAMELEN.
    actor.send("SETNAME :");
    assert!(actor.expect_line("FAIL").starts_with(":"), "a server's reply");
    actor.send(&format!("SETNAME :{}", "x".repeat(101)));
    let fail = actor.expect_line("FAIL");
    assert!(fail.contains(" FAIL SETNAME INVALID_REALNAME :"), "{fail}");
    classic.send("WHOIS actor");
    assert!(classic.expect_numeric("311").ends_with(":Bruce Wayne <bruce@wayne.example>"));

    // A client without the capability may still change its name; it is
    // not told (as the spec asks), but others are.
    classic.send("SETNAME :Plain Old");
    assert_eq!(watcher.expect_line(" SETNAME "), ":classic!classic@127.0.0.1 SETNAME :Plain Old");
    classic.expect_no_line("SETNAME");
}

fn extended_monitor_tells_watchers_of_away_and_setname(model: Model) {
    let server = Server::start(model);
    let mut extended = Client::register_with_caps(&server, "ext", "extended-monitor away-notify setname");
    let mut bare = Client::register_with_caps(&server, "bare", "away-notify setname");
    let mut actor = Client::register(&server, "actor");
    for watcher in [&mut extended, &mut bare] {
        watcher.send("MONITOR + actor");
        watcher.expect_numeric("730");
    }
    // They share no channel: only extended-monitor tells.
    actor.send("AWAY :out");
    actor.expect_numeric("306");
    actor.send("SETNAME :New Name");
    actor.sync();
    assert_eq!(extended.expect_line(" AWAY"), ":actor!actor@127.0.0.1 AWAY :out");
    assert_eq!(extended.expect_line(" SETNAME "), ":actor!actor@127.0.0.1 SETNAME :New Name");
    let seen = bare.sync();
    assert!(!seen.iter().any(|l| l.contains(" AWAY") || l.contains("SETNAME")), "{seen:?}");
}

fn bot_mode_marks_a_bot_everywhere(model: Model) {
    let server = Server::start(model);
    let mut bot = Client::register_with_caps(&server, "robo", "echo-message message-tags");
    let isupport = bot.seen.iter().find(|l| l.contains(" BOT=")).cloned().unwrap_or_default();
    assert!(isupport.split(' ').any(|t| t == "BOT=B"), "{isupport}");
    let mut tagged = Client::register_with_caps(&server, "tagged", "message-tags");
    let mut classic = Client::register(&server, "classic");

    bot.send("MODE robo +B");
    assert_eq!(bot.expect_line(" MODE "), ":robo MODE robo :+B");
    bot.send("MODE robo");
    assert!(bot.expect_numeric("221").ends_with(" +B"));

    classic.send("WHOIS robo");
    let whois = classic.expect_numeric("335");
    assert!(whois.contains(" 335 classic robo :"), "{whois}");

    for c in [&mut bot, &mut tagged, &mut classic] {
        c.join("#chan");
    }
    bot.expect_line(":classic!classic@127.0.0.1 JOIN #chan");
    tagged.expect_line(":classic!classic@127.0.0.1 JOIN #chan");
    classic.send("WHO #chan");
    let who = classic
        .expect("robo's WHO line", |l| numeric_of(l) == Some("352") && l.split(' ').nth(7) == Some("robo"));
    assert!(who.split(' ').nth(8).is_some_and(|flags| flags.contains('B')), "{who}");

    bot.send("PRIVMSG #chan :beep boop");
    let relay = tagged.expect_line("PRIVMSG #chan :beep boop");
    assert!(relay.starts_with('@') && relay.split(' ').next().unwrap()[1..].split(';').any(|t| t == "bot"));
    let echo = bot.expect_line("PRIVMSG #chan :beep boop");
    assert!(echo.split(' ').next().unwrap()[1..].split(';').any(|t| t == "bot"), "{echo}");
    // Tags go only to those who asked for them.
    assert_eq!(classic.expect_line("PRIVMSG #chan"), ":robo!robo@127.0.0.1 PRIVMSG #chan :beep boop");

    bot.send("MODE robo -B");
    assert_eq!(bot.expect_line(" MODE "), ":robo MODE robo :-B");
    bot.send("PRIVMSG tagged :human again");
    let relay = tagged.expect_line("PRIVMSG tagged :human again");
    assert!(!relay.split(' ').next().unwrap().split(';').any(|t| t.trim_start_matches('@') == "bot"));
}

all_models!(
    away_notify_tells_channel_neighbours,
    away_notify_tells_a_channel_when_someone_away_joins,
    extended_join_adds_account_and_real_name,
    invite_notify_tells_those_who_could_invite,
    setname_changes_the_real_name_and_tells_who_asked,
    extended_monitor_tells_watchers_of_away_and_setname,
    bot_mode_marks_a_bot_everywhere,
);
