//! IRCv3 over TCP: capability negotiation and each capability chatter
//! offers, under every model. Each capability is tested with the
//! capability and without it, since a client that did not ask must see
//! exactly what it saw before IRCv3.

mod common;

use common::{Client, Model, Server, numeric_of};

/// Registers `nick` having negotiated `caps` (space-separated; none if
/// empty) with `CAP LS 302`.
fn register_with(server: &Server, nick: &str, caps: &str) -> Client {
    let mut c = server.connect();
    c.nick = nick.to_string();
    c.send("CAP LS 302");
    c.expect_line("CAP * LS");
    c.send(&format!("NICK {nick}"));
    c.send(&format!("USER {nick} 0 * :{nick} Test"));
    if !caps.is_empty() {
        c.send(&format!("CAP REQ :{caps}"));
        c.expect_line(&format!("CAP {nick} ACK :{caps}"));
    }
    c.send("CAP END");
    c.expect_numeric("001");
    c.expect("end of MOTD", |l| matches!(numeric_of(l), Some("376" | "422")));
    c
}

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
    let mut asker = register_with(&server, "asker", "multi-prefix");
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
    let mut asker = register_with(&server, "asker", "userhost-in-names");
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

all_models!(
    cap_ls_lists_what_is_offered,
    cap_req_is_granted_whole_or_not_at_all,
    multi_prefix_shows_every_prefix_to_those_who_ask,
    userhost_in_names_shows_full_masks_to_those_who_ask,
);
