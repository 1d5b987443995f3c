//! Plain-line clients (what `nc` gives): the name prompt, #lobby, slash
//! commands, readable errors, and plain and IRC clients seeing each other as
//! ordinary users.

use crate::common::*;

fn plain_and_irc_clients_talk_in_the_lobby(model: Model) {
    let server = Server::start(model);
    let mut irc = Client::register(&server, "ircy");
    irc.join("#lobby");
    let mut plain = Client::plain(&server, "nelly");
    irc.expect_line(":nelly!nelly@127.0.0.1 JOIN #lobby");

    plain.send("hello from nc");
    irc.expect_line(":nelly!nelly@127.0.0.1 PRIVMSG #lobby :hello from nc");
    irc.send("PRIVMSG #lobby :hello from irc");
    plain.expect_line("ircy: hello from irc");
    irc.send("PRIVMSG #lobby :\u{1}ACTION waves\u{1}");
    plain.expect_line("* ircy waves");
    irc.send("PRIVMSG nelly :private hello");
    plain.expect_line("[private] ircy: private hello");
    plain.send("/msg ircy private reply");
    irc.expect_line(":nelly!nelly@127.0.0.1 PRIVMSG ircy :private reply");

    let mut other = Client::plain(&server, "otto");
    plain.expect_line("*** otto joined #lobby");
    other.send("hi nelly");
    plain.expect_line("otto: hi nelly");
    irc.expect_line(":otto!otto@127.0.0.1 PRIVMSG #lobby :hi nelly");

    irc.send("PART #lobby :bye plain folk");
    plain.expect_line("*** ircy left #lobby (bye plain folk)");
    other.send("/quit off to lunch");
    other.expect_line("*** Disconnected: Quit: off to lunch");
    other.read_to_close();
    plain.expect_line("*** otto left #lobby (Quit: off to lunch)");
}

fn taken_or_invalid_names_can_be_retried(model: Model) {
    let server = Server::start(model);
    let _irc = Client::register(&server, "taken");
    let mut plain = server.connect();
    plain.expect_line("Type a name");
    plain.send("Taken");
    plain.expect_line("! The name Taken is taken. Type another name:");
    plain.send("not a name");
    plain.expect_line("is not a valid name");
    plain.send("free");
    plain.expect_line(&format!("*** Welcome to {}, free!", server.network));
    plain.expect_line("*** free joined #lobby");
}

fn slash_commands(model: Model) {
    let server = Server::start(model);
    let mut pat = Client::plain(&server, "pat");
    let mut irc = Client::register(&server, "watcher");
    irc.join("#lobby");
    irc.join("#side");

    pat.send("/names");
    let names = pat.expect_line("*** In #lobby:");
    assert!(names.contains("pat") && names.contains("watcher"), "{names}");

    pat.send("/nick patricia");
    pat.expect_line("*** You are now known as patricia");
    irc.expect_line(":pat!pat@127.0.0.1 NICK :patricia");

    pat.send("/join #side");
    pat.expect_line("*** patricia joined #side");
    irc.expect_line(":patricia!pat@127.0.0.1 JOIN #side");
    pat.send("now in side");
    irc.expect_line(":patricia!pat@127.0.0.1 PRIVMSG #side :now in side");
    irc.send("PRIVMSG #lobby :lobby chatter");
    pat.expect_line("[#lobby] watcher: lobby chatter");
    irc.send("PRIVMSG #side :side chatter");
    pat.expect_line("watcher: side chatter");

    pat.send("/join #lobby");
    pat.expect_line("*** Your lines now go to #lobby");
    pat.send("back in lobby");
    irc.expect_line(":patricia!pat@127.0.0.1 PRIVMSG #lobby :back in lobby");

    pat.send("/msg nobody hello");
    pat.expect_line("! No such nick/channel: nobody");
    pat.send("/msg");
    pat.expect_line("! Usage: /msg NAME text");
    pat.send("/nick 1bad");
    pat.expect_line("is not a valid name");
    pat.send("/nick watcher");
    pat.expect_line("! The name watcher is taken");
    pat.send("/frob");
    pat.expect_line("! Unknown command /frob");
    pat.send("/help");
    pat.expect_line("/msg NAME text");
    pat.send("//slash at start");
    irc.expect_line(":patricia!pat@127.0.0.1 PRIVMSG #lobby :/slash at start");
    pat.send("/topic plain topic");
    irc.expect_line(":patricia!pat@127.0.0.1 TOPIC #lobby :plain topic");
    pat.expect_line("*** patricia set the topic of #lobby to: plain topic");

    pat.send("/quit");
    pat.expect_line("*** Disconnected: Quit");
    pat.read_to_close();
    irc.expect_line(":patricia!pat@127.0.0.1 QUIT :Quit");
}

fn plain_client_with_password(model: Model) {
    let server = Server::start_with(model, &["--password", "sesame"]);
    // The greeting asks for the password, and the first line is taken as it.
    let mut c = server.connect();
    c.expect_line("This server needs a password. Using nc or telnet? Type the password and press Enter.");
    c.send("sesame");
    c.expect_line("*** Password accepted. Type a name");
    c.send("dora");
    c.expect_line("*** dora joined #lobby");
    // "PASS secret" first, as an IRC client would, works too.
    let mut p = server.connect();
    p.send("PASS sesame");
    p.send("pia");
    p.expect_line("*** pia joined #lobby");

    let mut wrong = server.connect();
    wrong.send("nope");
    wrong.expect_line("! Wrong password");
    wrong.expect_line("*** Disconnected: Bad password");
    wrong.read_to_close();
    let mut wrong = server.connect();
    wrong.send("PASS nope");
    wrong.send("eve");
    wrong.expect_line("! Wrong password");
    wrong.read_to_close();
    // After the greeting (and the hint a silent connection gets), no line
    // the server sent these plain clients was IRC protocol.
    let greeting = |l: &&String| l.contains("*** Welcome to chatter") || l.contains("Using nc or telnet?");
    for line in c.seen.iter().chain(&wrong.seen).filter(|l| !greeting(l)) {
        assert!(!line.starts_with(':') && !line.starts_with("ERROR"), "{line}");
    }
}

all_models!(
    plain_and_irc_clients_talk_in_the_lobby,
    taken_or_invalid_names_can_be_retried,
    slash_commands,
    plain_client_with_password,
);
