//! Channel modes over TCP: operators and voice, MODE queries and changes
//! with their error numerics, and each mode enforced (+m +n +C +t +i +k +l
//! +b/+e +I +s), under every model.

use crate::common::*;

/// alice made #room (so she is its operator) and bob joined it; each has
/// seen everything up to bob's JOIN.
fn room(server: &Server) -> (Client, Client) {
    let mut alice = Client::register(server, "alice");
    let mut bob = Client::register(server, "bob");
    alice.join("#room");
    bob.join("#room");
    alice.expect_line(":bob!bob@127.0.0.1 JOIN #room");
    (alice, bob)
}

/// The names of the first 353 after asking NAMES, sorted.
fn names(client: &mut Client, channel: &str) -> Vec<String> {
    client.send(&format!("NAMES {channel}"));
    let line = client.expect_numeric("353");
    client.expect_numeric("366");
    let mut names: Vec<String> = line.rsplit_once(" :").unwrap().1.split(' ').map(str::to_string).collect();
    names.sort();
    names
}

/// Everything `client` received up to a PING's answer: nothing, here.
fn nothing_for(client: &mut Client) {
    let seen = client.sync();
    assert!(seen.is_empty(), "{}: {seen:?}", client.nick);
}

fn operators_and_voice_show_as_prefixes(model: Model) {
    let server = Server::start(model);
    let (mut alice, mut bob) = room(&server);
    assert_eq!(names(&mut bob, "#room"), ["@alice", "bob"]);
    alice.send("MODE #room +v bob");
    for c in [&mut alice, &mut bob] {
        c.expect_line(":alice!alice@127.0.0.1 MODE #room +v bob");
    }
    assert_eq!(names(&mut alice, "#room"), ["+bob", "@alice"]);
    alice.send("MODE #room +o bob");
    bob.expect_line(":alice!alice@127.0.0.1 MODE #room +o bob");
    // The highest prefix only: multi-prefix is not offered.
    assert_eq!(names(&mut alice, "#room"), ["@alice", "@bob"]);
    alice.send("WHO #room");
    let who = [alice.expect_numeric("352"), alice.expect_numeric("352")];
    assert!(who.iter().all(|l| l.contains(" H@ :0 ")), "{who:?}");
    alice.send("WHOIS bob");
    assert!(alice.expect_numeric("319").ends_with(":@#room"));
    // Now an operator, bob may take alice's status away.
    bob.send("MODE #room -o+v alice alice");
    alice.expect_line(":bob!bob@127.0.0.1 MODE #room -o+v alice alice");
    assert_eq!(names(&mut bob, "#room"), ["+alice", "@bob"]);
}

fn mode_query_gives_modes_then_creation_time(model: Model) {
    let server = Server::start(model);
    let (mut alice, mut bob) = room(&server);
    alice.send("MODE #room +kl sesame 10");
    alice.expect_line("MODE #room +kl sesame 10");
    alice.send("MODE #room");
    assert!(alice.expect_numeric("324").ends_with(" #room +nkl sesame 10"));
    let created = alice.expect_numeric("329");
    let time = created.rsplit(' ').next().unwrap();
    assert!(created.contains(" #room ") && time.parse::<u64>().unwrap() > 1_600_000_000, "{created}");
    // Outsiders see that there is a key, not what it is.
    let mut outsider = Client::register(&server, "outsider");
    outsider.send("MODE #room");
    assert!(outsider.expect_numeric("324").ends_with(" #room +nkl * 10"));
    bob.send("MODE #nowhere");
    bob.expect_numeric("403");
}

fn changing_modes_needs_an_operator(model: Model) {
    let server = Server::start(model);
    let (mut alice, mut bob) = room(&server);
    bob.send("MODE #room +m");
    assert!(bob.expect_numeric("482").contains(" #room :"));
    nothing_for(&mut alice);
    // Lists may be read by anyone.
    bob.send("MODE #room +b");
    bob.expect_numeric("368");
}

fn unknown_letters_and_bad_parameters_are_refused(model: Model) {
    let server = Server::start(model);
    let (mut alice, mut bob) = room(&server);
    alice.send("MODE #room +Z");
    assert!(alice.expect_numeric("472").contains(" Z :"));
    for line in ["MODE #room +k", "MODE #room +l", "MODE #room +o", "MODE #room +l 0", "MODE #room +l many"] {
        alice.send(line);
        alice.expect_numeric("696");
    }
    alice.send("MODE #room +b bad,mask");
    alice.expect_numeric("696");
    alice.send("MODE #room +o ghost");
    alice.expect_numeric("401");
    let mut carol = Client::register(&server, "carol");
    alice.send("MODE #room +v carol");
    assert!(alice.expect_numeric("441").contains(" carol #room :"));
    // The good changes of a line are made, the unknown letter refused.
    alice.send("MODE #room +mZ");
    alice.expect_numeric("472");
    bob.expect_line(":alice!alice@127.0.0.1 MODE #room +m");
    alice.send("MODE");
    alice.expect_numeric("461");
    nothing_for(&mut carol);
}

fn only_real_changes_are_broadcast(model: Model) {
    let server = Server::start(model);
    let (mut alice, mut bob) = room(&server);
    alice.send("MODE #room +n");
    nothing_for(&mut alice);
    alice.send("MODE #room +mt-n+n");
    bob.expect_line(":alice!alice@127.0.0.1 MODE #room +mt-n+n");
    alice.send("MODE #room +m-s");
    nothing_for(&mut bob);
    alice.send("MODE #room +o alice");
    nothing_for(&mut bob);
}

fn moderated_channels_hear_only_voice_and_operators(model: Model) {
    let server = Server::start(model);
    let (mut alice, mut bob) = room(&server);
    alice.send("MODE #room +m");
    bob.expect_line("MODE #room +m");
    bob.send("PRIVMSG #room :may I?");
    assert!(bob.expect_numeric("404").contains(" #room :"));
    alice.send("PRIVMSG #room :ops speak");
    bob.expect_line("PRIVMSG #room :ops speak");
    alice.send("MODE #room +v bob");
    bob.expect_line("MODE #room +v bob");
    bob.send("PRIVMSG #room :voiced now");
    alice.expect_line(":bob!bob@127.0.0.1 PRIVMSG #room :voiced now");
}

fn no_external_messages_unless_minus_n(model: Model) {
    let server = Server::start(model);
    let (mut alice, _bob) = room(&server);
    let mut outsider = Client::register(&server, "outsider");
    outsider.send("PRIVMSG #room :from outside");
    outsider.expect_numeric("404");
    alice.send("MODE #room -n");
    alice.expect_line("MODE #room -n");
    outsider.send("PRIVMSG #room :from outside again");
    alice.expect_line(":outsider!outsider@127.0.0.1 PRIVMSG #room :from outside again");
}

fn no_ctcp_but_actions_reach_a_plus_c_channel(model: Model) {
    let server = Server::start(model);
    let (mut alice, mut bob) = room(&server);
    bob.send("PRIVMSG #room :\x01VERSION\x01");
    alice.expect_line(":bob!bob@127.0.0.1 PRIVMSG #room :\x01VERSION\x01");
    alice.send("MODE #room +C");
    bob.expect_line(":alice!alice@127.0.0.1 MODE #room +C");
    alice.send("MODE #room");
    assert!(alice.expect_numeric("324").ends_with(" #room +Cn"));
    bob.send("PRIVMSG #room :\x01ACTION waves\x01");
    alice.expect_line(":bob!bob@127.0.0.1 PRIVMSG #room :\x01ACTION waves\x01");
    bob.send("PRIVMSG #room :\x01PING 12345\x01");
    assert!(bob.expect_numeric("404").contains(" bob #room :Cannot send CTCP to channel (+C)"));
    // A CTCP reply is a NOTICE: refused too, without a word.
    bob.send("NOTICE #room :\x01VERSION chatter-test\x01");
    // Operators are held to it as well.
    alice.send("PRIVMSG #room :\x01TIME\x01");
    alice.expect_numeric("404");
    let seen = bob.sync();
    assert!(!seen.iter().any(|l| l.contains("404") || l.contains("TIME")), "{seen:?}");
    let seen = alice.sync();
    assert!(!seen.iter().any(|l| l.contains("PING") || l.contains("VERSION")), "{seen:?}");
    // Text that only holds a CTCP frame somewhere else is no CTCP.
    bob.send("PRIVMSG #room :see \x01VERSION\x01");
    alice.expect_line(":bob!bob@127.0.0.1 PRIVMSG #room :see \x01VERSION\x01");
    alice.send("MODE #room -C");
    bob.expect_line("MODE #room -C");
    bob.send("PRIVMSG #room :\x01PING 6789\x01");
    alice.expect_line(":bob!bob@127.0.0.1 PRIVMSG #room :\x01PING 6789\x01");
}

fn plain_clients_keep_to_plus_c_too(model: Model) {
    let server = Server::start(model);
    let (mut pat, mut ircy) = plain_operator_and_irc_in_lobby(&server);
    pat.send("/mode +C");
    pat.expect_line("*** pat sets mode +C on #lobby");
    ircy.expect_line(":pat!pat@127.0.0.1 MODE #lobby +C");
    pat.send_raw(b"\x01VERSION\x01\r\n");
    pat.expect_line("! Cannot send CTCP to channel (+C): #lobby");
    pat.send("/me waves");
    ircy.expect_line(":pat!pat@127.0.0.1 PRIVMSG #lobby :\x01ACTION waves\x01");
    ircy.send("PRIVMSG #lobby :\x01ACTION waves back\x01");
    pat.expect_line("* ircy waves back");
    ircy.expect_no_line("VERSION");
}

fn protected_topic_is_for_operators(model: Model) {
    let server = Server::start(model);
    let (mut alice, mut bob) = room(&server);
    alice.send("MODE #room +t");
    bob.expect_line("MODE #room +t");
    bob.send("TOPIC #room :mine");
    assert!(bob.expect_numeric("482").contains(" #room :"));
    alice.send("TOPIC #room :the ops' topic");
    bob.expect_line(":alice!alice@127.0.0.1 TOPIC #room :the ops' topic");
    bob.send("TOPIC #room");
    bob.expect_numeric("332");
    assert!(bob.expect_numeric("333").contains(" #room alice!alice@127.0.0.1 "));
}

fn invite_only_needs_an_invite_or_an_exception(model: Model) {
    let server = Server::start(model);
    let (mut alice, _bob) = room(&server);
    let mut carol = Client::register(&server, "carol");
    alice.send("MODE #room +i");
    alice.expect_line("MODE #room +i");
    carol.send("JOIN #room");
    assert!(carol.expect_numeric("473").contains(" #room :"));
    alice.send("MODE #room +I carol");
    alice.expect_line("MODE #room +I carol!*@*");
    alice.send("MODE #room I");
    assert!(alice.expect_numeric("346").contains(" #room carol!*@* alice!alice@127.0.0.1 "));
    alice.expect_numeric("347");
    carol.join("#room");
    alice.expect_line(":carol!carol@127.0.0.1 JOIN #room");
}

fn a_key_is_needed_to_join(model: Model) {
    let server = Server::start(model);
    let (mut alice, _bob) = room(&server);
    let mut carol = Client::register(&server, "carol");
    alice.send("MODE #room +k sesame");
    alice.expect_line("MODE #room +k sesame");
    carol.send("JOIN #room");
    assert!(carol.expect_numeric("475").contains(" #room :"));
    carol.send("JOIN #room wrong");
    carol.expect_numeric("475");
    carol.send("JOIN #other,#room x,sesame");
    carol.expect_line(":carol!carol@127.0.0.1 JOIN #other");
    carol.expect_line(":carol!carol@127.0.0.1 JOIN #room");
    alice.send("MODE #room -k *");
    carol.expect_line(":alice!alice@127.0.0.1 MODE #room -k *");
}

fn a_full_channel_refuses_joins(model: Model) {
    let server = Server::start(model);
    let (mut alice, mut bob) = room(&server);
    let mut carol = Client::register(&server, "carol");
    alice.send("MODE #room +l 2");
    bob.expect_line("MODE #room +l 2");
    carol.send("JOIN #room");
    assert!(carol.expect_numeric("471").contains(" #room :"));
    alice.send("MODE #room -l");
    bob.expect_line("MODE #room -l");
    carol.join("#room");
}

fn bans_keep_out_and_silence_unless_excepted(model: Model) {
    let server = Server::start(model);
    let (mut alice, mut bob) = room(&server);
    let mut carol = Client::register(&server, "carol");
    alice.send("MODE #room +b CAROL");
    bob.expect_line(":alice!alice@127.0.0.1 MODE #room +b CAROL!*@*");
    carol.send("JOIN #room");
    assert!(carol.expect_numeric("474").contains(" #room :"));
    alice.send("MODE #room b");
    assert!(alice.expect_numeric("367").contains(" #room CAROL!*@* alice!alice@127.0.0.1 "));
    alice.expect_numeric("368");
    // A banned member stays, but may not speak.
    alice.send("MODE #room +b *!bob@*");
    bob.expect_line("MODE #room +b *!bob@*");
    bob.send("PRIVMSG #room :hello?");
    bob.expect_numeric("404");
    alice.send("MODE #room +e *!*@127.0.0.1");
    bob.expect_line("MODE #room +e *!*@127.0.0.1");
    alice.send("MODE #room e");
    assert!(alice.expect_numeric("348").contains(" #room *!*@127.0.0.1 "));
    alice.expect_numeric("349");
    bob.send("PRIVMSG #room :excepted");
    alice.expect_line("PRIVMSG #room :excepted");
    carol.join("#room");
    alice.send("MODE #room -eb *!*@127.0.0.1 carol!*@*");
    bob.expect_line(":alice!alice@127.0.0.1 MODE #room -eb *!*@127.0.0.1 CAROL!*@*");
}

fn secret_channels_are_hidden_from_outsiders(model: Model) {
    let server = Server::start(model);
    let (mut alice, _bob) = room(&server);
    alice.send("MODE #room +s");
    alice.expect_line("MODE #room +s");
    let mut outsider = Client::register(&server, "outsider");
    outsider.join("#open");
    outsider.send("LIST");
    outsider.expect_numeric("321");
    let listed = outsider.expect_numeric("322");
    assert!(listed.contains("#open"), "{listed}");
    outsider.expect_numeric("323");
    outsider.send("NAMES #room");
    let reply = outsider.expect("353 or 366", |l| matches!(numeric_of(l), Some("353" | "366")));
    assert_eq!(numeric_of(&reply), Some("366"), "{reply}");
    outsider.send("WHOIS alice");
    let seen = outsider.expect("318", |l| numeric_of(l) == Some("318"));
    assert!(!seen.contains("#room"));
    assert!(!outsider.seen.iter().any(|l| l.contains("#room") && numeric_of(l) == Some("319")));
    alice.send("NAMES #room");
    assert!(alice.expect_numeric("353").contains(" @ #room :"));
}

fn isupport_advertises_channel_modes(model: Model) {
    let server = Server::start(model);
    let mut c = server.connect();
    c.send("NICK ann");
    c.send("USER ann 0 * :Ann");
    let mut tokens = Vec::new();
    loop {
        let line = c.expect("005 or 251", |l| matches!(numeric_of(l), Some("005" | "251")));
        if numeric_of(&line) == Some("251") {
            break;
        }
        let middle = line.split_once(" :").unwrap().0;
        tokens.extend(middle.split(' ').skip(3).map(str::to_string));
    }
    for token in [
        "PREFIX=(ov)@+",
        "CHANMODES=beI,k,l,Cimnst",
        "EXCEPTS=e",
        "INVEX=I",
        "MODES=6",
        "MAXLIST=b:100,e:100,I:100",
        "TARGMAX=KICK:4,NAMES:20,NOTICE:20,PRIVMSG:20",
    ] {
        assert!(tokens.iter().any(|t| t == token), "005 lacks {token}: {tokens:?}");
    }
}

all_models!(
    operators_and_voice_show_as_prefixes,
    mode_query_gives_modes_then_creation_time,
    changing_modes_needs_an_operator,
    unknown_letters_and_bad_parameters_are_refused,
    only_real_changes_are_broadcast,
    moderated_channels_hear_only_voice_and_operators,
    no_external_messages_unless_minus_n,
    no_ctcp_but_actions_reach_a_plus_c_channel,
    plain_clients_keep_to_plus_c_too,
    protected_topic_is_for_operators,
    invite_only_needs_an_invite_or_an_exception,
    a_key_is_needed_to_join,
    a_full_channel_refuses_joins,
    bans_keep_out_and_silence_unless_excepted,
    secret_channels_are_hidden_from_outsiders,
    isupport_advertises_channel_modes,
);
