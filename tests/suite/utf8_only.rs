//! UTF8ONLY over TCP: a line that is not UTF-8 is refused whole (IRC
//! clients get `FAIL <command> INVALID_UTF8`, labeled if the line was;
//! plain clients a sentence)
//! and nothing of it is acted on or relayed, registration fields
//! included; UTF-8 beyond ASCII passes untouched. Under every model.

use crate::common::*;

/// The standard reply an IRC client gets for a line that is not UTF-8.
fn fail_for(command: &str) -> String {
    format!(":chatter.local FAIL {command} INVALID_UTF8 :")
}

fn irc_lines_that_are_not_utf8_are_refused_and_not_relayed(model: Model) {
    let server = Server::start(model);
    let (mut alice, mut bob, _carol) = three_in_room(&server);
    let advertised = |l: &String| numeric_of(l) == Some("005") && l.split(' ').any(|t| t == "UTF8ONLY");
    assert!(alice.seen.iter().any(advertised), "no UTF8ONLY in 005");
    bob.send_raw(b"PRIVMSG #room :hi\xaa\r\n");
    bob.expect_line(&fail_for("PRIVMSG"));
    bob.send_raw(b"privmsg alice :\xe9t\xe9\r\n");
    bob.expect_line(&fail_for("PRIVMSG"));
    bob.send_raw(b"@+draft/x=\xff NOTICE #room :tagged\r\n");
    bob.expect_line(&fail_for("NOTICE"));
    bob.send_raw(b"TOPIC #room :\xe9t\xe9\r\n");
    bob.expect_line(&fail_for("TOPIC"));
    // No command to name: `*`.
    bob.send_raw(b"\xff\xfe\r\n");
    bob.expect_line(&fail_for("*"));
    let seen = alice.sync();
    assert!(seen.is_empty(), "alice heard something: {seen:?}");
    bob.send("TOPIC #room");
    bob.expect_numeric("331");
    // UTF-8 beyond ASCII is text like any other.
    bob.send("PRIVMSG #room :héllo ✓ 日本");
    alice.expect_line(":bob!bob@127.0.0.1 PRIVMSG #room :héllo ✓ 日本");
}

fn registration_fields_that_are_not_utf8_are_refused(model: Model) {
    let server = Server::start(model);
    let mut c = server.connect();
    c.send_raw(b"NICK b\xe9r\r\n");
    c.expect_line(&fail_for("NICK"));
    c.send("NICK bar");
    c.send_raw(b"USER username * * :i\xe8rc\xe9\r\n");
    c.expect_line(&fail_for("USER"));
    c.send_raw(b"USER \xe8rc\xe9 * * :realname\r\n");
    c.expect_line(&fail_for("USER"));
    c.expect_no_line(" 001 ");
    c.send("USER username * * :Ir\u{e8}ne");
    c.expect_numeric("001");
    c.send("WHOIS bar");
    assert!(c.expect_numeric("311").ends_with(" :Ir\u{e8}ne"));
}

fn a_labeled_line_gets_its_fail_labeled(model: Model) {
    let server = Server::start(model);
    let mut c = Client::register_with_caps(&server, "lab", "batch labeled-response");
    c.send_raw(b"@label=xyz PRIVMSG lab :hi\xaa\r\n");
    let fail = c.expect_line(&fail_for("PRIVMSG"));
    assert!(fail.starts_with("@label=xyz :chatter.local FAIL "), "{fail}");
}

fn plain_clients_are_told_in_words(model: Model) {
    let server = Server::start(model);
    let mut person = server.connect();
    person.expect_line("Welcome to chatter");
    // A first line that is not UTF-8 is no name, but it tells that a
    // person is typing: the answer is in words.
    person.send_raw(b"n\xe9lly\r\n");
    person.expect_line("! That line was not UTF-8 text, so it was not sent");
    person.send("nelly");
    person.expect_line("*** nelly joined #lobby");
    let mut ircy = Client::register(&server, "ircy");
    ircy.join("#lobby");
    person.expect_line("*** ircy joined #lobby");
    person.send_raw(b"caf\xe9 anyone?\r\n");
    person.expect_line("! That line was not UTF-8 text, so it was not sent");
    person.send("café, anyone?");
    ircy.expect_line(":nelly!nelly@127.0.0.1 PRIVMSG #lobby :café, anyone?");
    // Lines from one client are handled in order: had the refused one
    // gone out, ircy would have had it first.
    let heard: Vec<&String> = ircy.seen.iter().filter(|l| l.contains("anyone")).collect();
    assert_eq!(heard.len(), 1, "{heard:?}");
}

all_models!(
    irc_lines_that_are_not_utf8_are_refused_and_not_relayed,
    registration_fields_that_are_not_utf8_are_refused,
    a_labeled_line_gets_its_fail_labeled,
    plain_clients_are_told_in_words,
);
