//! IRCv3 over TCP: capability negotiation and each capability chatter
//! offers, under every model. Each capability is tested with the
//! capability and without it, since a client that did not ask must see
//! exactly what it saw before IRCv3.

use crate::common::{Client, Model, Server, numeric_of};

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
    // On a cluster asker's node may not have applied op's MODE yet.
    asker.sync();
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
    assert!(tag(&echo, "+r") == Some("1") && tag(&echo, "msgid").is_some(), "{echo}");
    let relay = echoer.expect_line("PRIVMSG echoer :three");
    assert!(!relay.starts_with('@'), "echoer has no message-tags: {relay}");
    // Without echo-message, nothing comes back.
    old.send("PRIVMSG #e :four");
    let seen = old.sync();
    assert!(!seen.iter().any(|l| l.contains("four")), "{seen:?}");
}

/// The value of tag `key` in a line received (escaped, as sent; empty if
/// the tag has none).
fn tag<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let section = line.strip_prefix('@')?.split(' ').next()?;
    section.split(';').find_map(|t| match t.split_once('=') {
        Some((k, v)) => (k == key).then_some(v),
        None => (t == key).then_some(""),
    })
}

/// `@foo=bar;+baz=` with a value of `value_len` bytes, then a space and
/// `rest`: irctest's lines, whose tag section is 4096 bytes at 4081.
fn with_tags(value_len: usize, rest: &str) -> String {
    format!("@foo=bar;+baz={} {rest}", "a".repeat(value_len))
}

/// alice (with `alice_caps`) and bob (with message-tags) in `channel`,
/// alice past bob's JOIN.
fn alice_and_bob_in(server: &Server, channel: &str, alice_caps: &str) -> (Client, Client) {
    let mut alice = Client::register_with_caps(server, "alice", alice_caps);
    let mut bob = Client::register_with_caps(server, "bob", "message-tags");
    alice.join(channel);
    bob.join(channel);
    alice.expect_line(&format!(":bob!bob@127.0.0.1 JOIN {channel}"));
    (alice, bob)
}

/// IRCv3 message-tags' size limit, as irctest's `testLengthLimits` checks
/// it: up to 4094 bytes of tag data come before the usual 512-byte line,
/// are relayed and echoed intact with one msgid; a byte more is 417 and
/// nothing is relayed; the rest of the line keeps its own 512 bytes.
fn a_full_tag_section_is_relayed_whole_and_one_byte_more_refused(model: Model) {
    let server = Server::start(model);
    let (mut alice, mut bob) = alice_and_bob_in(&server, "#test", "message-tags echo-message");
    let value = "a".repeat(4081);

    let max_tagmsg = with_tags(4081, "TAGMSG #test");
    assert_eq!(max_tagmsg.find("TAGMSG"), Some(4096));
    alice.send(&max_tagmsg);
    let echo = alice.expect_line("TAGMSG #test");
    let relay = bob.expect_line("TAGMSG #test");
    for line in [&echo, &relay] {
        assert_eq!(tag(line, "+baz"), Some(value.as_str()), "the tag arrives whole");
        assert_eq!(tag(line, "foo"), None, "a tag that is not client-only is not relayed");
    }
    assert!(tag(&echo, "msgid").is_some_and(|id| !id.is_empty()));
    assert_eq!(tag(&echo, "msgid"), tag(&relay, "msgid"));

    alice.send(&with_tags(4082, "TAGMSG #test"));
    assert!(alice.expect_numeric("417").ends_with(":Input line was too long"));
    let seen = bob.sync();
    assert!(!seen.iter().any(|l| l.contains("TAGMSG")), "{seen:?}");

    // The longest line there is: 4096 bytes of tags and 510 of the rest.
    let max_privmsg = with_tags(4081, &format!("PRIVMSG #test {}", "b".repeat(496)));
    assert_eq!(max_privmsg.len(), 4096 + 510);
    alice.send(&max_privmsg);
    let echo = alice.expect_line("PRIVMSG #test :bbbb");
    let relay = bob.expect_line("PRIVMSG #test :bbbb");
    for line in [&echo, &relay] {
        assert_eq!(tag(line, "+baz"), Some(value.as_str()), "the tag arrives whole");
        let text = line.rsplit_once(" :").unwrap().1;
        assert!(text.len() >= 400 && text.bytes().all(|b| b == b'b'), "cut only at the end: {text}");
    }
    assert_eq!(tag(&echo, "msgid"), tag(&relay, "msgid"));

    // Within the line's overall length, but the tag section is too long.
    let excess_privmsg = with_tags(4082, &format!("PRIVMSG #test {}", "b".repeat(495)));
    assert_eq!(excess_privmsg.len(), 4096 + 510);
    alice.send(&excess_privmsg);
    alice.expect_numeric("417");
    // And the rest is held to 512 bytes however short the tags are.
    alice.send(&format!("@+a=b PRIVMSG #test :{}", "c".repeat(500)));
    alice.expect_numeric("417");
    alice.send("PRIVMSG #test :still here");
    bob.expect_line("PRIVMSG #test :still here");
    let relayed =
        |text: &str| bob.seen.iter().filter(|l| l.contains(&format!("PRIVMSG #test :{text}"))).count();
    assert_eq!((relayed("b"), relayed("c")), (1, 0), "the refused lines reached no one");
}

/// A line of nothing but tags is no command: ignored, as any line that
/// does not parse, and the client goes on; one over the tag limit is 417.
fn a_line_of_tags_alone_is_ignored(model: Model) {
    let server = Server::start(model);
    let (mut alice, mut bob) = alice_and_bob_in(&server, "#t", "message-tags");
    let tags = format!("@+a={};+b", "v".repeat(4000));
    alice.send(&tags);
    alice.send(&format!("{tags}      "));
    assert_eq!(alice.sync(), Vec::<String>::new(), "nothing to answer");
    alice.send(&format!("@+a={}", "v".repeat(4100)));
    alice.expect_numeric("417");
    alice.send("PRIVMSG #t :after");
    bob.expect_line(":alice!alice@127.0.0.1 PRIVMSG #t :after");
    assert!(!bob.seen.iter().any(|l| l.contains("vvvv")), "{:?}", bob.seen);
}

/// The tag section's room is IRC's: to a plain client `@` is text, and a
/// line is 512 bytes at most however it starts.
fn a_plain_client_keeps_the_512_byte_line(model: Model) {
    let server = Server::start(model);
    let mut ircer = Client::register_with_caps(&server, "ircer", "message-tags");
    ircer.join("#lobby");
    let mut pia = Client::plain(&server, "pia");
    pia.send(&"x".repeat(600));
    pia.expect_line("! Input line was too long");
    pia.send(&format!("@{} {}", "t".repeat(300), "u".repeat(300)));
    pia.expect_line("! Input line was too long");
    pia.send("@tags are words here");
    ircer.expect_line(":pia!pia@127.0.0.1 PRIVMSG #lobby :@tags are words here");
    assert!(!ircer.seen.iter().any(|l| l.contains("xxxx") || l.contains("tttt")), "{:?}", ircer.seen);
    // A first line too, unless an IRC command follows the tags: then it
    // is an IRC client's, and the tags are its to send.
    let mut fresh = server.connect();
    fresh.expect_line("Welcome to chatter");
    fresh.send(&format!("@{} quinn", "t".repeat(600)));
    fresh.expect_line("! Input line was too long");
    fresh.send("quinn");
    fresh.expect_line("*** quinn joined #lobby");
    let mut irc = server.connect();
    irc.send(&format!("@+{} CAP LS 302", "t".repeat(600)));
    irc.expect_line("CAP * LS :");
}

all_models!(
    a_full_tag_section_is_relayed_whole_and_one_byte_more_refused,
    a_line_of_tags_alone_is_ignored,
    a_plain_client_keeps_the_512_byte_line,
    server_time_stamps_messages_for_those_who_ask,
    message_tags_relay_client_tags_to_those_who_ask,
    echo_message_returns_a_senders_own_messages,
    cap_ls_lists_what_is_offered,
    cap_req_is_granted_whole_or_not_at_all,
    multi_prefix_shows_every_prefix_to_those_who_ask,
    userhost_in_names_shows_full_masks_to_those_who_ask,
);
