//! STATUSMSG over TCP: PRIVMSG, NOTICE and TAGMSG to `@#chan` reach the
//! channel's operators, to `+#chan` its voiced members and operators, with
//! the prefix kept in the relayed line; who may send follows the channel's
//! rules; plain clients send and see them too. Under every model.

use crate::common::*;

/// alice (operator), bob (voiced) and carol (neither) in #room; everyone
/// has seen bob get his voice.
fn ranked_room(server: &Server) -> (Client, Client, Client) {
    let (mut alice, mut bob, mut carol) = three_in_room(server);
    alice.send("MODE #room +v bob");
    for c in [&mut alice, &mut bob, &mut carol] {
        c.expect_line(":alice!alice@127.0.0.1 MODE #room +v bob");
    }
    (alice, bob, carol)
}

fn a_status_message_reaches_only_those_with_the_status(model: Model) {
    let server = Server::start(model);
    let (mut alice, mut bob, mut carol) = ranked_room(&server);
    let advertised = |l: &String| numeric_of(l) == Some("005") && l.split(' ').any(|t| t == "STATUSMSG=@+");
    assert!(alice.seen.iter().any(advertised), "no STATUSMSG=@+ in 005");
    carol.send("PRIVMSG @#room :for the operators");
    alice.expect_line(":carol!carol@127.0.0.1 PRIVMSG @#room :for the operators");
    bob.expect_no_line("operators");
    carol.send("NOTICE +#room :for voice and up");
    alice.expect_line(":carol!carol@127.0.0.1 NOTICE +#room :for voice and up");
    bob.expect_line(":carol!carol@127.0.0.1 NOTICE +#room :for voice and up");
    // Of several prefixes the lowest counts: the widest audience named.
    bob.send("PRIVMSG @+#room :both");
    alice.expect_line(":bob!bob@127.0.0.1 PRIVMSG +#room :both");
    // The senders hear nothing back, without echo-message; carol, with
    // no status, nothing at all.
    let seen = carol.sync();
    assert!(seen.is_empty(), "{seen:?}");
    bob.expect_no_line("both");
}

fn echo_message_and_message_tags_carry_to_status_messages(model: Model) {
    let server = Server::start(model);
    let (mut alice, mut bob, mut carol) = ranked_room(&server);
    for c in [&mut alice, &mut carol] {
        c.send("CAP REQ :echo-message message-tags");
        c.expect_line("ACK :echo-message message-tags");
    }
    // The sender's echo comes though carol has no status herself.
    carol.send("@+draft/react=x PRIVMSG @#room :echoed");
    carol.expect_line(":carol!carol@127.0.0.1 PRIVMSG @#room :echoed");
    let line = alice.expect_line(":carol!carol@127.0.0.1 PRIVMSG @#room :echoed");
    assert!(line.starts_with('@') && line.contains("+draft/react=x"), "{line}");
    carol.send("@+typing=active TAGMSG @#room");
    carol.expect_line(":carol!carol@127.0.0.1 TAGMSG @#room");
    assert!(alice.expect_line("TAGMSG @#room").contains("+typing=active"));
    let seen = bob.sync();
    assert!(!seen.iter().any(|l| l.contains("echoed") || l.contains("TAGMSG")), "{seen:?}");
}

fn the_channel_rules_decide_who_may_send(model: Model) {
    let server = Server::start(model);
    let (mut alice, mut bob, mut carol) = ranked_room(&server);
    let mut outsider = Client::register(&server, "outsider");
    outsider.send("PRIVMSG @#room :let me in");
    assert!(outsider.expect_numeric("404").contains(" outsider #room :"));
    outsider.send("PRIVMSG @#nowhere :anyone?");
    assert!(outsider.expect_numeric("403").contains(" #nowhere :"));
    alice.send("MODE #room +m");
    carol.expect_line("MODE #room +m");
    carol.send("PRIVMSG @#room :may I?");
    carol.expect_numeric("404");
    bob.send("PRIVMSG @#room :voiced, so I may");
    alice.expect_line(":bob!bob@127.0.0.1 PRIVMSG @#room :voiced, so I may");
    alice.send("MODE #room -m+bC carol");
    carol.expect_line("MODE #room -m+bC carol!*@*");
    carol.send("PRIVMSG +#room :banned");
    carol.expect_numeric("404");
    bob.send("PRIVMSG @#room :\x01VERSION\x01");
    bob.expect_numeric("404");
    // Refused NOTICEs are dropped without a word.
    carol.send("NOTICE @#room :quietly");
    let seen = carol.sync();
    assert!(!seen.iter().any(|l| numeric_of(l).is_some()), "{seen:?}");
    let seen = alice.sync();
    assert!(
        !seen.iter().any(|l| l.contains("banned") || l.contains("VERSION") || l.contains("quietly")),
        "{seen:?}"
    );
}

fn plain_clients_send_and_see_status_messages(model: Model) {
    let server = Server::start(model);
    let (mut pat, mut ircy) = plain_operator_and_irc_in_lobby(&server);
    ircy.send("PRIVMSG @#lobby :just for you, pat");
    // Tagged even in the room pat types in: not everyone there heard it.
    pat.expect_line("[@#lobby] ircy: just for you, pat");
    pat.send("/msg +#lobby for voice and up");
    ircy.expect_no_line("voice and up");
    pat.send("/mode +v ircy");
    ircy.expect_line("MODE #lobby +v ircy");
    pat.send("/msg +#lobby for voice and up");
    ircy.expect_line(":pat!pat@127.0.0.1 PRIVMSG +#lobby :for voice and up");
}

all_models!(
    a_status_message_reaches_only_those_with_the_status,
    echo_message_and_message_tags_carry_to_status_messages,
    the_channel_rules_decide_who_may_send,
    plain_clients_send_and_see_status_messages,
);
