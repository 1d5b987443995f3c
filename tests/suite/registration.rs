//! Registration as IRC clients do it: with and without CAP negotiation, with
//! PASS right and wrong, nick collisions and bad nicks, the welcome burst and
//! the errors for commands out of place.

use crate::common::*;

fn welcome_burst_without_cap(model: Model) {
    let server = Server::start(model);
    let mut c = server.connect();
    c.expect_line("NOTICE * :*** Welcome to chatter");
    c.send("NICK alice");
    c.send("USER alice 0 * :Alice Liddell");
    let welcome = format!("Welcome to the {} Network, alice!alice@127.0.0.1", server.network);
    assert!(c.expect_numeric("001").contains(&welcome));
    c.expect_numeric("002");
    // A date people read, not a Unix timestamp.
    assert!(c.expect_numeric("003").ends_with(" GMT"));
    assert!(c.expect_numeric("004").contains("chatter.local"));
    let isupport = c.expect_numeric("005");
    let network = format!("NETWORK={}", server.network);
    for token in [
        "CASEMAPPING=rfc1459",
        "CHANTYPES=#",
        "CHANMODES=beI,k,l,Cimnst",
        "PREFIX=(ov)@+",
        "NICKLEN=30",
        "CHANNELLEN=50",
        "TOPICLEN=390",
        &network,
    ] {
        assert!(isupport.split(' ').any(|t| t == token), "005 lacks {token}: {isupport}");
    }
    assert!(c.expect_numeric("251").contains("There are 1 users"));
    c.expect_numeric("254");
    c.expect_numeric("255");
    assert!(c.expect_numeric("265").ends_with(" 265 alice 1 1 :Current local users 1, max 1"));
    assert!(c.expect_numeric("266").ends_with(" 266 alice 1 1 :Current global users 1, max 1"));
    c.expect_numeric("422");
    c.send("TIME");
    assert!(c.expect_numeric("391").ends_with(" GMT"));
}

fn cap_negotiation_holds_registration_until_end(model: Model) {
    let server = Server::start(model);
    let mut c = server.connect();
    c.send("CAP LS 302");
    assert!(c.expect_line("CAP * LS").contains("multi-prefix"));
    c.send("NICK capper");
    c.send("USER capper 0 * :Cap Per");
    c.send("CAP REQ :multi-prefix");
    c.expect_line("CAP capper ACK :multi-prefix");
    c.send("CAP REQ :no-such-cap");
    c.expect_line("CAP capper NAK :no-such-cap");
    c.send("CAP LIST");
    c.expect_line("CAP capper LIST :cap-notify multi-prefix");
    let before_end = c.sync();
    assert!(
        !before_end.iter().any(|l| numeric_of(l) == Some("001")),
        "registered before CAP END: {before_end:?}"
    );
    c.send("CAP END");
    c.expect_numeric("001");
    c.send("CAP BOGUS");
    c.expect_numeric("410");
}

fn password_right_registers(model: Model) {
    let server = Server::start_with(model, &["--password", "sesame"]);
    let mut c = server.connect();
    c.send("PASS sesame");
    c.send("NICK opener");
    c.send("USER opener 0 * :Open Er");
    c.expect_numeric("001");
}

fn password_wrong_or_missing_is_refused(model: Model) {
    let server = Server::start_with(model, &["--password", "sesame"]);
    for pass in [Some("wrong"), None] {
        let mut c = server.connect();
        if let Some(pass) = pass {
            c.send(&format!("PASS {pass}"));
        }
        c.send("NICK guesser");
        c.send("USER guesser 0 * :Guess Er");
        c.expect_numeric("464");
        c.expect_line("ERROR :Closing Link");
        let rest = c.read_to_close();
        assert!(!rest.iter().any(|l| numeric_of(l) == Some("001")), "{rest:?}");
    }
    let mut c = server.connect();
    c.send("PASS");
    c.expect_numeric("461");
}

fn nick_in_use_then_another(model: Model) {
    let server = Server::start(model);
    let _alice = Client::register(&server, "Alice");
    let mut c = server.connect();
    c.send("NICK alice");
    c.send("USER x 0 * :X");
    assert!(c.expect_numeric("433").contains("* alice :Nickname is already in use"));
    // Case folding is rfc1459: [ and { are the same letter.
    let _bracket = Client::register(&server, "nick[1]");
    c.send("NICK NICK{1}");
    c.expect_numeric("433");
    c.send("NICK alice2");
    c.expect_numeric("001");
}

fn bad_nicks_are_refused(model: Model) {
    let server = Server::start(model);
    let mut c = server.connect();
    c.send("NICK");
    c.expect_numeric("431");
    for bad in ["1abc", "-dash", "toolong_toolong_toolong_toolong_x", "a*b"] {
        c.send(&format!("NICK {bad}"));
        assert!(c.expect_numeric("432").contains(bad));
    }
    c.send("NICK good");
    c.send("USER good 0 * :Good");
    c.expect_numeric("001");
    c.send("NICK 9lives");
    c.expect_numeric("432");
    c.send("NICK");
    c.expect_numeric("431");
}

fn commands_out_of_place(model: Model) {
    let server = Server::start(model);
    let mut c = server.connect();
    c.send("NICK early");
    c.send("JOIN #x");
    c.expect_numeric("451");
    c.send("PRIVMSG #x :hi");
    c.expect_numeric("451");
    c.send("USER early");
    c.expect_numeric("461");
    c.send("USER early 0 * :Early Bird");
    c.expect_numeric("001");
    c.send("USER again 0 * :Again");
    c.expect_numeric("462");
    c.send("PASS late");
    c.expect_numeric("462");
    c.send("FROBNICATE now");
    assert!(c.expect_numeric("421").contains("FROBNICATE"));
}

fn motd_from_file_and_queries(model: Model) {
    let dir = std::env::temp_dir().join(format!("chatter-motd-{}-{:?}", std::process::id(), model));
    std::fs::create_dir_all(&dir).unwrap();
    let motd = dir.join("motd.txt");
    std::fs::write(&motd, "Be kind.\nNo spam.\n").unwrap();
    let server =
        Server::start_with(model, &["--motd", motd.to_str().unwrap(), "--server-name", "irc.example"]);
    let mut c = server.connect();
    c.send("NICK reader");
    c.send("USER reader 0 * :Reader");
    assert!(c.expect_numeric("001").starts_with(":irc.example 001"));
    c.expect_numeric("375");
    assert!(c.expect_numeric("372").ends_with("Be kind."));
    assert!(c.expect_numeric("372").ends_with("No spam."));
    c.expect_numeric("376");
    c.send("MOTD");
    c.expect_numeric("375");
    c.expect_numeric("376");
    c.send("LUSERS");
    c.expect_numeric("251");
    c.expect_numeric("255");
    c.send("PING :are you there");
    c.expect_line("PONG irc.example :are you there");
    c.send("PING");
    c.expect_numeric("461");
    c.send("VERSION");
    c.expect_numeric("351");
    std::fs::remove_dir_all(&dir).ok();
}

all_models!(
    welcome_burst_without_cap,
    cap_negotiation_holds_registration_until_end,
    password_right_registers,
    password_wrong_or_missing_is_refused,
    nick_in_use_then_another,
    bad_nicks_are_refused,
    commands_out_of_place,
    motd_from_file_and_queries,
);
