//! Questions a client asks about users, channels and the server (WHO and
//! WHOX, WHOIS, WHOWAS, LIST with its filters, NAMES and TOPIC as
//! outsiders, INFO, ADMIN, HELP, LINKS): the normal answers and each
//! error numeric, against every model.

mod common;
use common::*;

const SERVER: &str = "irc.test";

fn start(model: Model) -> Server {
    Server::start_with(model, &["--server-name", SERVER])
}

/// The whole answer to `line`: everything the server sent before the PONG
/// of a PING sent after it (a client's lines are answered in order, long
/// replies included).
fn ask(client: &mut Client, line: &str) -> Vec<String> {
    client.send(line);
    client.sync()
}

/// The numerics `code` in `lines`, without the `:server CODE client ` head.
fn numerics(lines: &[String], code: &str) -> Vec<String> {
    lines
        .iter()
        .filter(|l| numeric_of(l) == Some(code))
        .map(|l| l.splitn(4, ' ').nth(3).unwrap_or("").to_string())
        .collect()
}

/// The nicks (sixth parameter) of the 352s in `lines`, sorted.
fn who_nicks(lines: &[String]) -> Vec<String> {
    let mut nicks: Vec<String> =
        numerics(lines, "352").iter().map(|l| l.split(' ').nth(4).unwrap().to_string()).collect();
    nicks.sort();
    nicks
}

fn who_masks_flags_and_invisibility(model: Model) {
    let server = start(model);
    let mut alice = Client::register(&server, "alice");
    let mut bob = Client::register(&server, "bob");
    let mut carol = Client::register(&server, "carol");
    let mut dave = Client::register(&server, "dave");
    carol.send("MODE carol +i");
    carol.expect_line("MODE carol :+i");
    alice.join("#room");
    bob.join("#room");
    bob.send("AWAY :lunch");
    bob.expect_numeric("306");

    let all = ask(&mut dave, "WHO *");
    assert_eq!(who_nicks(&all), ["alice", "bob", "dave"], "{all:?}");
    assert_eq!(numerics(&all, "315"), ["* :End of WHO list"]);
    assert!(all.contains(&format!(":{SERVER} 352 dave * alice 127.0.0.1 {SERVER} alice H :0 alice Test")));
    assert!(all.contains(&format!(":{SERVER} 352 dave * bob 127.0.0.1 {SERVER} bob G :0 bob Test")));

    let some = ask(&mut dave, "WHO Al*");
    assert_eq!(who_nicks(&some), ["alice"]);
    assert_eq!(numerics(&some, "315"), ["Al* :End of WHO list"]);
    // +i hides carol from masks but not from her own nick.
    assert!(who_nicks(&ask(&mut dave, "WHO car*")).is_empty());
    assert_eq!(who_nicks(&ask(&mut dave, "WHO CAROL")), ["carol"]);
    // By real name, user@host and host; `0` is everyone.
    assert_eq!(who_nicks(&ask(&mut dave, "WHO :bob Test")), ["bob"]);
    assert_eq!(who_nicks(&ask(&mut dave, "WHO *@127.0.0.1")), ["alice", "bob", "dave"]);
    assert_eq!(who_nicks(&ask(&mut dave, "WHO 127.0.0.1")), ["alice", "bob", "dave"]);
    assert_eq!(who_nicks(&ask(&mut dave, "WHO 0")), ["alice", "bob", "dave"]);
    // Operators only: there are none.
    assert_eq!(ask(&mut dave, "WHO * o"), [format!(":{SERVER} 315 dave * :End of WHO list")]);
    assert_eq!(ask(&mut dave, "WHO nobody"), [format!(":{SERVER} 315 dave nobody :End of WHO list")]);

    // Sharing a channel shows +i users to masks.
    carol.join("#room");
    assert_eq!(who_nicks(&ask(&mut alice, "WHO car*")), ["carol"]);
    // A channel: members see everyone with prefixes; outsiders not the +i.
    let inside = ask(&mut alice, "WHO #ROOM");
    assert_eq!(who_nicks(&inside), ["alice", "bob", "carol"]);
    assert!(
        inside
            .contains(&format!(":{SERVER} 352 alice #room alice 127.0.0.1 {SERVER} alice H@ :0 alice Test"))
    );
    assert_eq!(numerics(&inside, "315"), ["#ROOM :End of WHO list"]);
    assert_eq!(who_nicks(&ask(&mut dave, "WHO #room")), ["alice", "bob"]);
}

fn whox_fields_and_token(model: Model) {
    let server = start(model);
    let mut alice = Client::register(&server, "alice");
    let mut bob = Client::register(&server, "bob");
    alice.join("#room");
    let isupport = bob.seen.iter().filter(|l| numeric_of(l) == Some("005")).cloned().collect::<Vec<_>>();
    assert!(isupport.iter().any(|l| l.contains(" WHOX ")), "{isupport:?}");

    assert_eq!(
        ask(&mut bob, "WHO alice %tnf,42"),
        [format!(":{SERVER} 354 bob 42 alice H"), format!(":{SERVER} 315 bob alice :End of WHO list")]
    );
    let full = ask(&mut bob, "WHO alice %tcuihsnfdlaor,123");
    let line = &numerics(&full, "354")[0];
    let fields: Vec<&str> = line.split(' ').collect();
    assert_eq!(&fields[..8], ["123", "*", "alice", "127.0.0.1", "127.0.0.1", SERVER, "alice", "H"], "{line}");
    assert!(fields[9].parse::<u64>().is_ok(), "idle seconds: {line}");
    assert!(line.ends_with(" 0 n/a :alice Test"), "{line}");
    // Of a channel and of a mask, fields in the spec's order whatever the
    // order asked.
    let chan = ask(&mut alice, "WHO #room %rnc");
    assert_eq!(numerics(&chan, "354"), ["#room alice :alice Test"]);
    let masked = ask(&mut alice, "WHO b* %nu");
    assert_eq!(numerics(&masked, "354"), ["bob bob"]);
}

all_models!(who_masks_flags_and_invisibility, whox_fields_and_token);
