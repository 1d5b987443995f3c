//! IRCv3 over TCP: capability negotiation and each capability chatter
//! offers, under every model. Each capability is tested with the
//! capability and without it, since a client that did not ask must see
//! exactly what it saw before IRCv3.

mod common;

use common::{Client, Model, Server, numeric_of};

/// The names in the 353 lines of `NAMES channel`.
fn names(c: &mut Client, channel: &str) -> Vec<String> {
    c.send(&format!("NAMES {channel}"));
    let mut names = Vec::new();
    loop {
        let line = c.expect("NAMES reply", |l| matches!(numeric_of(l), Some("353" | "366")));
        if numeric_of(&line) == Some("366") {
            return names;
        }
        let text = line.split_once(" :").map(|(_, t)| t).unwrap_or_default().to_string();
        names.extend(text.split(' ').filter(|n| !n.is_empty()).map(str::to_string));
    }
}

fn cap_ls_lists_what_is_offered(model: Model) {
    let server = Server::start(model);
    let mut c = server.connect();
    c.send("CAP LS");
    let ls = c.expect_line("CAP * LS :");
    for cap in ["multi-prefix", "userhost-in-names", "cap-notify"] {
        assert!(ls.split(' ').any(|w| w.trim_start_matches(':') == cap), "{cap} missing: {ls}");
    }
    // Without 302, cap-notify is offered but not enabled.
    c.send("CAP LIST");
    assert!(c.expect_line("CAP * LIST").ends_with("LIST :"));
    c.send("CAP LS 302");
    c.expect_line("CAP * LS :");
    c.send("CAP LIST");
    c.expect_line("CAP * LIST :cap-notify");
    c.send("CAP END");
    // Registration still waits for NICK and USER.
    c.send("NICK lister");
    c.send("USER lister 0 * :L");
    c.expect_numeric("001");
}

fn cap_req_is_granted_whole_or_not_at_all(model: Model) {
    let server = Server::start(model);
    let mut c = server.connect();
    c.send("CAP LS 302");
    c.send("NICK req");
    c.send("USER req 0 * :R");
    c.send("CAP REQ :foo multi-prefix bar");
    c.expect_line("CAP req NAK :foo multi-prefix bar");
    c.send("CAP REQ :multi-prefix userhost-in-names");
    c.expect_line("CAP req ACK :multi-prefix userhost-in-names");
    c.send("CAP REQ :-multi-prefix");
    c.expect_line("CAP req ACK :-multi-prefix");
    c.send("CAP LIST");
    c.expect_line("CAP req LIST :cap-notify userhost-in-names");
    let before_end = c.sync();
    assert!(!before_end.iter().any(|l| numeric_of(l) == Some("001")), "{before_end:?}");
    c.send("CAP END");
    c.expect_numeric("001");
    // After registration, a REQ changes the set at once, and END is a no-op.
    c.send("CAP REQ :multi-prefix");
    c.expect_line("CAP req ACK :multi-prefix");
    c.send("CAP LIST");
    c.expect_line("CAP req LIST :cap-notify multi-prefix userhost-in-names");
    c.send("CAP END");
    c.send("CAP REQ :sasl");
    c.expect_line("CAP req NAK :sasl");
    let after = c.sync();
    assert!(!after.iter().any(|l| numeric_of(l) == Some("001")), "{after:?}");
}

fn multi_prefix_shows_every_prefix_to_those_who_ask(model: Model) {
    let server = Server::start(model);
    let mut op = Client::register(&server, "op");
    op.join("#mp");
    op.send("MODE #mp +v op");
    op.expect_line("MODE #mp +v op");
    let mut asker = Client::register_with_caps(&server, "asker", "multi-prefix");
    let mut old = Client::register(&server, "old");
    assert_eq!(names(&mut asker, "#mp"), ["@+op"]);
    assert_eq!(names(&mut old, "#mp"), ["@op"]);
    asker.send("WHO #mp");
    assert!(asker.expect_numeric("352").contains(" H@+ :"));
    old.send("WHO #mp");
    assert!(old.expect_numeric("352").contains(" H@ :"));
    // Enabled after registration, it applies from the next line on.
    old.send("CAP REQ multi-prefix");
    old.expect_line("ACK :multi-prefix");
    assert_eq!(names(&mut old, "#mp"), ["@+op"]);
}

fn userhost_in_names_shows_full_masks_to_those_who_ask(model: Model) {
    let server = Server::start(model);
    let mut op = Client::register(&server, "op");
    op.join("#uh");
    let mut asker = Client::register_with_caps(&server, "asker", "userhost-in-names");
    let mut old = Client::register(&server, "old");
    assert_eq!(names(&mut asker, "#uh"), ["@op!op@127.0.0.1"]);
    assert_eq!(names(&mut old, "#uh"), ["@op"]);
    // Both capabilities at once.
    asker.send("CAP REQ :multi-prefix");
    asker.expect_line("ACK");
    op.send("MODE #uh +v op");
    op.expect_line("MODE #uh +v op");
    assert_eq!(names(&mut asker, "#uh"), ["@+op!op@127.0.0.1"]);
}

/// Whether `line` starts with a `time` tag in server-time's format.
fn has_server_time(line: &str) -> bool {
    let Some(tags) = line.strip_prefix('@').and_then(|l| l.split(' ').next()) else { return false };
    tags.split(';').any(|t| {
        t.strip_prefix("time=").is_some_and(|v| {
            v.len() == 24 && v.ends_with('Z') && v.as_bytes()[10] == b'T' && v.as_bytes()[19] == b'.'
        })
    })
}

fn server_time_stamps_messages_for_those_who_ask(model: Model) {
    let server = Server::start(model);
    let mut timed = Client::register_with_caps(&server, "timed", "server-time");
    let mut old = Client::register(&server, "old");
    let mut talker = Client::register(&server, "talker");
    for c in [&mut timed, &mut old, &mut talker] {
        c.join("#t");
    }
    talker.send("PRIVMSG #t :hello");
    let line = timed.expect_line("PRIVMSG #t :hello");
    assert!(has_server_time(&line), "{line}");
    // No other tag: message-tags was not asked for.
    assert!(!line.contains("msgid") && line.split(' ').next().unwrap().matches(';').count() == 0, "{line}");
    assert_eq!(old.expect_line("PRIVMSG #t :hello"), ":talker!talker@127.0.0.1 PRIVMSG #t :hello");
    talker.send("NOTICE timed :psst");
    assert!(has_server_time(&timed.expect_line("NOTICE timed :psst")));
}

fn message_tags_relay_client_tags_to_those_who_ask(model: Model) {
    let server = Server::start(model);
    let mut alice = Client::register_with_caps(&server, "alice", "message-tags");
    let mut bob = Client::register_with_caps(&server, "bob", "message-tags");
    let mut carol = Client::register(&server, "carol");
    let mut dave = Client::register_with_caps(&server, "dave", "server-time");
    for c in [&mut alice, &mut bob, &mut carol, &mut dave] {
        c.join("#t");
    }
    alice.send(r"@+baz=b\sa\:t;fizz=buzz;+bad!key=x PRIVMSG #t hi");
    let line = bob.expect_line("PRIVMSG #t :hi");
    let tags = line.split(' ').next().unwrap();
    assert!(tags.starts_with('@') && tags.contains(r"+baz=b\sa\:t") && tags.contains("msgid="), "{line}");
    assert!(!tags.contains("fizz") && !tags.contains("bad"), "only well-formed client-only tags: {line}");
    assert_eq!(carol.expect_line("PRIVMSG #t :hi"), ":alice!alice@127.0.0.1 PRIVMSG #t :hi");
    let dave_line = dave.expect_line("PRIVMSG #t :hi");
    assert!(has_server_time(&dave_line) && !dave_line.contains("+baz"), "{dave_line}");
    // TAGMSG: to message-tags clients only.
    alice.send("@+typing=active TAGMSG #t");
    let tagmsg = bob.expect_line("TAGMSG #t");
    assert!(tagmsg.starts_with("@") && tagmsg.contains("+typing=active"), "{tagmsg}");
    for c in [&mut carol, &mut dave] {
        let seen = c.sync();
        assert!(!seen.iter().any(|l| l.contains("TAGMSG")), "{seen:?}");
    }
    // A sender without message-tags has its tags dropped.
    carol.send("@+x=y PRIVMSG #t :plain");
    let line = bob.expect_line("PRIVMSG #t :plain");
    assert!(!line.contains("+x"), "{line}");
    // Tags never make a line too long for the 512-byte rest of it.
    let long = "y".repeat(300);
    alice.send(&format!("@+long={long} PRIVMSG bob :{}", "z".repeat(150)));
    let line = bob.expect_line("PRIVMSG bob :zzz");
    assert!(line.contains(&long));
}

fn echo_message_returns_a_senders_own_messages(model: Model) {
    let server = Server::start(model);
    let mut echoer = Client::register_with_caps(&server, "echoer", "echo-message");
    let mut both = Client::register_with_caps(&server, "both", "echo-message message-tags");
    let mut old = Client::register(&server, "old");
    for c in [&mut echoer, &mut both, &mut old] {
        c.join("#e");
    }
    echoer.send("PRIVMSG #e :one");
    assert_eq!(echoer.expect_line("PRIVMSG #e :one"), ":echoer!echoer@127.0.0.1 PRIVMSG #e :one");
    old.expect_line("PRIVMSG #e :one");
    echoer.send("NOTICE old :two");
    assert_eq!(echoer.expect_line("NOTICE old :two"), ":echoer!echoer@127.0.0.1 NOTICE old :two");
    // The echo and the relay carry the same msgid.
    both.send("@+r=1 PRIVMSG echoer :three");
    let echo = both.expect_line("PRIVMSG echoer :three");
    let msgid = |l: &str| {
        l.split([';', ' ']).find(|t| t.starts_with("msgid=") || t.starts_with("@msgid=")).map(str::to_string)
    };
    assert!(echo.contains("+r=1") && msgid(&echo).is_some(), "{echo}");
    let relay = echoer.expect_line("PRIVMSG echoer :three");
    assert!(!relay.starts_with('@'), "echoer has no message-tags: {relay}");
    // Without echo-message, nothing comes back.
    old.send("PRIVMSG #e :four");
    let seen = old.sync();
    assert!(!seen.iter().any(|l| l.contains("four")), "{seen:?}");
}

all_models!(
    server_time_stamps_messages_for_those_who_ask,
    message_tags_relay_client_tags_to_those_who_ask,
    echo_message_returns_a_senders_own_messages,
    cap_ls_lists_what_is_offered,
    cap_req_is_granted_whole_or_not_at_all,
    multi_prefix_shows_every_prefix_to_those_who_ask,
    userhost_in_names_shows_full_masks_to_those_who_ask,
);
