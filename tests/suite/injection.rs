//! Hostile identity fields and texts: nothing a client chooses (user name,
//! real name, channel name, message text) may split a line or a source,
//! make a relayed line overlong, or drive a plain client's terminal.
//!
//! Besides these tests, the harness itself checks every line any test
//! receives: at most 512 bytes with its CR LF (see `crate::common::Client`).

use crate::common::*;

/// The source of a relayed line: `nick!user@host`.
fn source_of(line: &str) -> &str {
    line.strip_prefix(':').and_then(|l| l.split(' ').next()).unwrap_or("")
}

fn user_names_that_could_forge_a_source_are_refused(model: Model) {
    let server = Server::start(model);
    let mut bob = Client::register(&server, "bob");
    bob.join("#lobby");

    let mut mallory = server.connect();
    mallory.nick = "mallory".into();
    mallory.send("NICK mallory");
    mallory.send_raw(b"USER x\0QUIT\0: 0 * :r\r\n");
    mallory.expect_numeric("468");
    mallory.send("USER alice!x@y 0 * :r");
    mallory.expect_numeric("468");
    mallory.send("USER a:b 0 * :r");
    mallory.expect_numeric("468");
    let before = mallory.sync();
    assert!(
        !before.iter().any(|l| numeric_of(l) == Some("001")),
        "registered with a bad user name: {before:?}"
    );

    // A valid name registers; an overlong one is cut, as USERLEN says.
    mallory.send("USER mallorymallory 0 * :Mallory");
    let welcome = mallory.expect_numeric("001");
    assert!(welcome.ends_with("mallory!mallorymal@127.0.0.1"), "{welcome}");
    mallory.join("#lobby");
    mallory.send("PRIVMSG #lobby :hello");
    let relayed = bob.expect_line("PRIVMSG #lobby :hello");
    assert_eq!(source_of(&relayed), "mallory!mallorymal@127.0.0.1");
}

fn an_empty_real_name_is_not_enough(model: Model) {
    let server = Server::start(model);
    let mut c = server.connect();
    c.send("NICK dora");
    c.send("USER dora 0 * :");
    c.expect_numeric("461");
    c.send("USER dora 0 * :Dora\0Explorer");
    c.expect_numeric("001");
    c.send("WHOIS dora");
    let whois = c.expect_numeric("311");
    assert!(whois.ends_with(":Dora Explorer"), "NUL not neutralised: {whois:?}");
}

fn channel_names_hold_no_control_characters(model: Model) {
    let server = Server::start(model);
    let mut c = Client::register(&server, "carol");
    c.send("JOIN #\x1b[2Jx");
    c.expect_numeric("403");
    c.send("JOIN #a\x07b,#ok");
    c.expect_numeric("403");
    c.expect("end of NAMES for #ok", |l| numeric_of(l) == Some("366") && l.contains("#ok"));
}

fn relayed_lines_are_cut_to_512_bytes(model: Model) {
    let server = Server::start(model);
    let long_nick = "n23456789012345678901234567890";
    let mut sender = Client::register(&server, long_nick);
    sender.join("#c");
    let mut reader = Client::register(&server, "reader");
    reader.join("#c");
    let mut plain = Client::plain(&server, "pam");
    plain.send("/join #c");
    plain.expect_line("*** In #c:");

    let head = "PRIVMSG #c :";
    let text: String = (0..510 - head.len()).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    sender.send(&format!("{head}{text}"));
    // The harness checks the length of every line; here, that the relay is
    // the start of what was sent, cut as late as the limit allows.
    let relayed = reader.expect_line("PRIVMSG #c :abc");
    assert_eq!(relayed.len(), 510, "{relayed}");
    let said = relayed.split_once(" :").expect("trailing").1;
    assert!(text.starts_with(said), "{said}");
    let shown = plain.expect_line(&format!("{long_nick}: abc"));
    assert!(shown.len() <= 510);
}

fn plain_terminals_are_shown_control_characters_not_driven_by_them(model: Model) {
    let server = Server::start(model);
    let mut irc = Client::register(&server, "ircy");
    irc.join("#lobby");
    let mut nelly = Client::plain(&server, "nelly");
    irc.expect_line("JOIN #lobby");

    irc.send("PRIVMSG #lobby :\x1b[2K\x1b[1Gbob: forged \x02bold\x02 \x0304red");
    let shown = nelly.expect_line("ircy: ");
    assert_eq!(shown, "ircy: ^[[2K^[[1Gbob: forged bold red");
    assert!(!nelly.seen.iter().any(|l| l.contains('\x1b')), "{:?}", nelly.seen);
}

fn plain_users_cannot_imitate_server_notices(model: Model) {
    let server = Server::start(model);
    let mut nelly = Client::plain(&server, "nelly");
    let mut pat = Client::plain(&server, "pat");
    nelly.expect_line("pat joined #lobby");

    pat.send("/me joined #lobby");
    let action = nelly.expect_line("pat joined #lobby");
    pat.send("*** otto joined #lobby");
    let speech = nelly.expect_line("otto joined #lobby");
    let mut otto = Client::plain(&server, "otto");
    let notice = nelly.expect_line("otto joined #lobby");
    otto.send("hi");
    nelly.expect_line("otto: hi");

    assert_eq!(notice, "*** otto joined #lobby");
    assert_eq!(action, "* pat joined #lobby");
    assert_eq!(speech, "pat: *** otto joined #lobby");
    // Every line a user's words start is told apart from the server's.
    for line in [&action, &speech] {
        assert!(!line.starts_with("***") && !line.starts_with('!'), "{line}");
    }
}

all_models!(
    user_names_that_could_forge_a_source_are_refused,
    an_empty_real_name_is_not_enough,
    channel_names_hold_no_control_characters,
    relayed_lines_are_cut_to_512_bytes,
    plain_terminals_are_shown_control_characters_not_driven_by_them,
    plain_users_cannot_imitate_server_notices,
);
