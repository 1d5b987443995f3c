//! Questions a client asks about users, channels and the server (WHO and
//! WHOX, WHOIS, WHOWAS, LIST with its filters, NAMES and TOPIC as
//! outsiders, INFO, ADMIN, HELP, LINKS): the normal answers and each
//! error numeric, against every model.

use crate::common::*;

const SERVER: &str = "irc.test";

fn start(model: Model) -> Server {
    Server::start_with(model, &["--server-name", SERVER])
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

    let all = dave.ask("WHO *");
    assert_eq!(who_nicks(&all), ["alice", "bob", "dave"], "{all:?}");
    assert_eq!(numerics(&all, "315"), ["* :End of WHO list"]);
    assert!(all.contains(&format!(":{SERVER} 352 dave * alice 127.0.0.1 {SERVER} alice H :0 alice Test")));
    assert!(all.contains(&format!(":{SERVER} 352 dave * bob 127.0.0.1 {SERVER} bob G :0 bob Test")));

    let some = dave.ask("WHO Al*");
    assert_eq!(who_nicks(&some), ["alice"]);
    assert_eq!(numerics(&some, "315"), ["Al* :End of WHO list"]);
    // +i hides carol from masks but not from her own nick.
    assert!(who_nicks(&dave.ask("WHO car*")).is_empty());
    assert_eq!(who_nicks(&dave.ask("WHO CAROL")), ["carol"]);
    // By real name, user@host and host; `0` is everyone.
    assert_eq!(who_nicks(&dave.ask("WHO :bob Test")), ["bob"]);
    assert_eq!(who_nicks(&dave.ask("WHO *@127.0.0.1")), ["alice", "bob", "dave"]);
    assert_eq!(who_nicks(&dave.ask("WHO 127.0.0.1")), ["alice", "bob", "dave"]);
    assert_eq!(who_nicks(&dave.ask("WHO 0")), ["alice", "bob", "dave"]);
    // Operators only: there are none.
    assert_eq!(dave.ask("WHO * o"), [format!(":{SERVER} 315 dave * :End of WHO list")]);
    assert_eq!(dave.ask("WHO nobody"), [format!(":{SERVER} 315 dave nobody :End of WHO list")]);

    // Sharing a channel shows +i users to masks.
    carol.join("#room");
    assert_eq!(who_nicks(&alice.ask("WHO car*")), ["carol"]);
    // A channel: members see everyone with prefixes; outsiders not the +i.
    let inside = alice.ask("WHO #ROOM");
    assert_eq!(who_nicks(&inside), ["alice", "bob", "carol"]);
    assert!(
        inside
            .contains(&format!(":{SERVER} 352 alice #room alice 127.0.0.1 {SERVER} alice H@ :0 alice Test"))
    );
    assert_eq!(numerics(&inside, "315"), ["#ROOM :End of WHO list"]);
    assert_eq!(who_nicks(&dave.ask("WHO #room")), ["alice", "bob"]);
}

fn whox_fields_and_token(model: Model) {
    let server = start(model);
    let mut alice = Client::register(&server, "alice");
    let mut bob = Client::register(&server, "bob");
    alice.join("#room");
    let isupport = bob.seen.iter().filter(|l| numeric_of(l) == Some("005")).cloned().collect::<Vec<_>>();
    assert!(isupport.iter().any(|l| l.contains(" WHOX ")), "{isupport:?}");

    assert_eq!(
        bob.ask("WHO alice %tnf,42"),
        [format!(":{SERVER} 354 bob 42 alice H"), format!(":{SERVER} 315 bob alice :End of WHO list")]
    );
    let full = bob.ask("WHO alice %tcuihsnfdlaor,123");
    let line = &numerics(&full, "354")[0];
    let fields: Vec<&str> = line.split(' ').collect();
    assert_eq!(&fields[..8], ["123", "*", "alice", "127.0.0.1", "127.0.0.1", SERVER, "alice", "H"], "{line}");
    assert!(fields[9].parse::<u64>().is_ok(), "idle seconds: {line}");
    assert!(line.ends_with(" 0 n/a :alice Test"), "{line}");
    // Of a channel and of a mask, fields in the spec's order whatever the
    // order asked.
    let chan = alice.ask("WHO #room %rnc");
    assert_eq!(numerics(&chan, "354"), ["#room alice :alice Test"]);
    let masked = alice.ask("WHO b* %nu");
    assert_eq!(numerics(&masked, "354"), ["bob bob"]);
}

fn whois_shows_channels_away_idle_and_signon(model: Model) {
    let server = start(model);
    let mut alice = Client::register(&server, "alice");
    let mut bob = Client::register(&server, "bob");
    alice.join("#open");
    alice.join("#hidden");
    alice.send("MODE #hidden +s");
    alice.expect_line("MODE #hidden +s");
    bob.join("#open");
    alice.send("AWAY :gone fishing");
    alice.expect_numeric("306");
    // On a cluster, until bob's node has applied alice's AWAY.
    bob.sync();

    let whois = bob.ask("WHOIS Alice");
    let codes: Vec<&str> = whois.iter().filter_map(|l| numeric_of(l)).collect();
    assert_eq!(codes, ["311", "319", "312", "301", "317", "318"], "{whois:?}");
    assert_eq!(numerics(&whois, "311"), ["alice alice 127.0.0.1 * :alice Test"]);
    // The secret channel is hidden from bob, who is not in it.
    assert_eq!(numerics(&whois, "319"), ["alice :@#open"]);
    assert_eq!(numerics(&whois, "312"), [format!("alice {SERVER} :A chatter server")]);
    assert_eq!(numerics(&whois, "301"), ["alice :gone fishing"]);
    let idle = &numerics(&whois, "317")[0];
    let fields: Vec<&str> = idle.split(' ').collect();
    assert!(fields[1].parse::<u64>().unwrap() < 60, "{idle}");
    assert!(fields[2].parse::<u64>().unwrap() > 1_600_000_000, "signon is a Unix time: {idle}");
    assert_eq!(numerics(&whois, "318"), ["Alice :End of /WHOIS list"]);
    // Her own WHOIS shows the secret channel too.
    assert_eq!(numerics(&alice.ask("WHOIS alice"), "319"), ["alice :@#hidden @#open"]);

    // With a server or a nick as target, several nicks, and the errors.
    for line in [format!("WHOIS {SERVER} alice"), "WHOIS bob alice".into(), "WHOIS IRC.TEST alice".into()] {
        assert_eq!(numerics(&bob.ask(&line), "311").len(), 1, "{line}");
    }
    let two = bob.ask("WHOIS alice,nobody,bob");
    assert_eq!(numerics(&two, "311").len(), 2);
    assert_eq!(numerics(&two, "401"), ["nobody :No such nick/channel"]);
    assert_eq!(numerics(&two, "318"), ["alice,nobody,bob :End of /WHOIS list"]);
    assert_eq!(
        bob.ask("WHOIS nobody"),
        [
            format!(":{SERVER} 401 bob nobody :No such nick/channel"),
            format!(":{SERVER} 318 bob nobody :End of /WHOIS list")
        ]
    );
    assert_eq!(
        bob.ask("WHOIS elsewhere.example alice"),
        [format!(":{SERVER} 402 bob elsewhere.example :No such server")]
    );
    assert_eq!(bob.ask("WHOIS"), [format!(":{SERVER} 431 bob :No nickname given")]);

    // +i hides her channels from those who share none of them.
    let mut carol = Client::register(&server, "carol");
    alice.send("MODE alice +i");
    alice.expect_line("MODE alice :+i");
    assert!(numerics(&carol.ask("WHOIS alice"), "319").is_empty());
    assert_eq!(numerics(&bob.ask("WHOIS alice"), "319"), ["alice :@#open"]);
}

fn whois_idle_time_starts_at_the_last_message(model: Model) {
    let server = start(model);
    let mut alice = Client::register(&server, "alice");
    let mut bob = Client::register(&server, "bob");
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let idle = |bob: &mut Client| -> u64 {
        let whois = bob.ask("WHOIS alice");
        numerics(&whois, "317")[0].split(' ').nth(1).unwrap().parse().unwrap()
    };
    assert!(idle(&mut bob) >= 2);
    alice.send("PRIVMSG bob :hi");
    bob.expect_line("PRIVMSG bob :hi");
    assert!(idle(&mut bob) < 2);
}

fn whowas_remembers_who_left_and_who_renamed(model: Model) {
    let server = start(model);
    let mut asker = Client::register(&server, "asker");
    for ident in ["first", "second"] {
        let mut gone = server.connect();
        gone.send("NICK gone");
        gone.send(&format!("USER {ident} 0 * :Gone {ident}"));
        gone.expect_numeric("001");
        gone.send("QUIT :bye");
        gone.read_to_close();
    }
    let mut renamer = Client::register(&server, "oldname");
    renamer.send("NICK newname");
    renamer.expect_line("NICK :newname");

    // Wait until the directory has seen the second quit.
    wait_until("the second quit", || numerics(&asker.ask("WHOWAS gone"), "314").len() == 2);
    let all = asker.ask("WHOWAS GONE");
    assert_eq!(
        numerics(&all, "314"),
        ["gone second 127.0.0.1 * :Gone second", "gone first 127.0.0.1 * :Gone first"],
        "the most recent first"
    );
    assert_eq!(
        numerics(&all, "312"),
        [format!("gone {SERVER} :A chatter server"), format!("gone {SERVER} :A chatter server")]
    );
    assert_eq!(numerics(&all, "369"), ["GONE :End of WHOWAS"]);
    assert_eq!(numerics(&asker.ask("WHOWAS gone 1"), "314"), ["gone second 127.0.0.1 * :Gone second"]);
    for count in ["0", "-1", "x"] {
        assert_eq!(numerics(&asker.ask(&format!("WHOWAS gone {count}")), "314").len(), 2, "{count}");
    }
    assert_eq!(numerics(&asker.ask("WHOWAS oldname"), "314"), ["oldname oldname 127.0.0.1 * :oldname Test"]);
    let both = asker.ask("WHOWAS oldname,newname");
    assert_eq!(numerics(&both, "406"), ["newname :There was no such nickname"]);
    assert_eq!(numerics(&both, "369"), ["oldname :End of WHOWAS", "newname :End of WHOWAS"]);
    assert_eq!(
        asker.ask("WHOWAS nobody"),
        [
            format!(":{SERVER} 406 asker nobody :There was no such nickname"),
            format!(":{SERVER} 369 asker nobody :End of WHOWAS")
        ]
    );
    assert_eq!(asker.ask("WHOWAS"), [format!(":{SERVER} 431 asker :No nickname given")]);
}

/// The channels named by the 322s in `lines`, sorted.
fn listed(lines: &[String]) -> Vec<String> {
    let mut channels: Vec<String> =
        numerics(lines, "322").iter().map(|l| l.split(' ').next().unwrap().to_string()).collect();
    channels.sort();
    channels
}

fn list_with_elist_filters(model: Model) {
    let server = start(model);
    let mut alice = Client::register(&server, "alice");
    let mut bob = Client::register(&server, "bob");
    let mut carol = Client::register(&server, "carol");
    alice.join("#chan1");
    alice.join("#chan2");
    alice.join("#secret");
    alice.send("MODE #secret +s");
    alice.expect_line("MODE #secret +s");
    bob.join("#chan2");
    let isupport: String = carol.seen.iter().filter(|l| numeric_of(l) == Some("005")).cloned().collect();
    assert!(isupport.contains(" ELIST=CMNTU ") && isupport.contains(" SAFELIST"), "{isupport}");

    let all = carol.ask("LIST");
    assert_eq!(listed(&all), ["#chan1", "#chan2"]);
    assert_eq!(numerics(&all, "321").len(), 1);
    assert_eq!(numerics(&all, "323"), [":End of /LIST"]);
    for (filter, expected) in [
        ("*an1", &["#chan1"][..]),
        ("#c*n2", &["#chan2"]),
        ("#chan1,#CHAN2", &["#chan1", "#chan2"]),
        ("*an3", &[]),
        ("!*an1", &["#chan2"]),
        ("!#ch*", &[]),
        (">1", &["#chan2"]),
        ("<2", &["#chan1"]),
        ("* >0,<100", &["#chan1", "#chan2"]),
        ("C<10", &["#chan1", "#chan2"]),
        ("C>10", &[]),
        ("T<10", &[]),
        ("#nonexistent", &[]),
        ("#secret", &[]),
    ] {
        let reply = carol.ask(&format!("LIST {filter}"));
        assert_eq!(listed(&reply), expected, "LIST {filter}");
        assert_eq!(numerics(&reply, "323").len(), 1, "LIST {filter}");
    }
    alice.send("TOPIC #chan1 :hello");
    alice.expect_line("TOPIC #chan1 :hello");
    assert_eq!(listed(&carol.ask("LIST T<10")), ["#chan1"]);
    // Members see their secret channel.
    assert_eq!(listed(&alice.ask("LIST #secret")), ["#secret"]);
}

fn names_alone_and_topic_from_outside(model: Model) {
    let server = start(model);
    let mut alice = Client::register(&server, "alice");
    let mut loner = Client::register(&server, "loner");
    assert_eq!(loner.ask("NAMES"), [format!(":{SERVER} 366 loner * :End of /NAMES list")]);
    alice.join("#open");
    alice.join("#hidden");
    alice.send("TOPIC #open :all welcome");
    alice.expect_line("TOPIC #open :all welcome");
    alice.send("MODE #hidden +s");
    alice.expect_line("MODE #hidden +s");
    let topic = loner.ask("TOPIC #open");
    assert_eq!(numerics(&topic, "332"), ["#open :all welcome"]);
    // Several channels: each one's 353s, then one 366 naming what was
    // asked (RFC 2812); a secret channel shows nothing to an outsider.
    let names = loner.ask("NAMES #open,#hidden");
    assert_eq!(numerics(&names, "353"), ["= #open :@alice"]);
    assert_eq!(numerics(&names, "366"), ["#open,#hidden :End of /NAMES list"]);
    let names = alice.ask("NAMES #open,#hidden");
    assert_eq!(numerics(&names, "353"), ["= #open :@alice", "@ #hidden :@alice"]);
    assert_eq!(numerics(&names, "366"), ["#open,#hidden :End of /NAMES list"]);
    assert_eq!(numerics(&topic, "333").len(), 1);
    assert_eq!(
        loner.ask("TOPIC #hidden"),
        [format!(":{SERVER} 442 loner #hidden :You're not on that channel")]
    );
    alice.send("PART #open");
    alice.expect_line("PART #open");
    alice.join("#open");
    assert_eq!(numerics(&loner.ask("TOPIC #open"), "331"), ["#open :No topic is set"]);
}

fn info_admin_links_and_help(model: Model) {
    let server = Server::start_with(
        model,
        &["--server-name", SERVER, "--admin-location", "Lab 3", "--admin-email", "ops@irc.test"],
    );
    let mut alice = Client::register(&server, "alice");

    let info = alice.ask("INFO");
    assert!(numerics(&info, "371").len() >= 3, "{info:?}");
    assert!(numerics(&info, "371")[0].contains("chatter"), "{info:?}");
    assert_eq!(info.last().unwrap(), &format!(":{SERVER} 374 alice :End of INFO list"));
    assert_eq!(alice.ask(&format!("INFO {SERVER}")).len(), info.len());
    assert_eq!(
        alice.ask("INFO other.example"),
        [format!(":{SERVER} 402 alice other.example :No such server")]
    );

    assert_eq!(
        alice.ask("ADMIN"),
        [
            format!(":{SERVER} 256 alice {SERVER} :Administrative info"),
            format!(":{SERVER} 257 alice :Lab 3"),
            format!(":{SERVER} 258 alice :Administrator not given"),
            format!(":{SERVER} 259 alice :ops@irc.test"),
        ]
    );
    assert_eq!(alice.ask("ADMIN alice").len(), 4, "a nick names its server");
    assert_eq!(numerics(&alice.ask("ADMIN nowhere"), "402"), ["nowhere :No such server"]);

    assert_eq!(
        alice.ask("LINKS"),
        [
            format!(":{SERVER} 364 alice {SERVER} {SERVER} :0 A chatter server"),
            format!(":{SERVER} 365 alice * :End of /LINKS list")
        ]
    );
    assert_eq!(alice.ask("LINKS *.other"), [format!(":{SERVER} 365 alice *.other :End of /LINKS list")]);

    for command in ["HELP", "HELPOP"] {
        let overview = alice.ask(command);
        assert_eq!(numeric_of(&overview[0]), Some("704"), "{overview:?}");
        assert_eq!(overview.last().unwrap(), &format!(":{SERVER} 706 alice * :End of /HELP"));
        assert!(numerics(&overview, "705").iter().any(|l| l.contains("WHOWAS")), "{overview:?}");
        let privmsg = alice.ask(&format!("{command} privmsg"));
        assert_eq!(
            privmsg[0],
            format!(":{SERVER} 704 alice PRIVMSG :PRIVMSG <target>[,<target>...] :<text>")
        );
        assert!(privmsg[1..privmsg.len() - 1].iter().all(|l| numeric_of(l) == Some("705")));
        assert_eq!(numeric_of(privmsg.last().unwrap()), Some("706"));
        assert_eq!(
            alice.ask(&format!("{command} NOTACOMMAND")),
            [format!(":{SERVER} 524 alice NOTACOMMAND :No help available on this topic")]
        );
    }
}

all_models!(
    info_admin_links_and_help,
    list_with_elist_filters,
    names_alone_and_topic_from_outside,
    who_masks_flags_and_invisibility,
    whox_fields_and_token,
    whois_shows_channels_away_idle_and_signon,
    whois_idle_time_starts_at_the_last_message,
    whowas_remembers_who_left_and_who_renamed,
);
