//! Flood control: a burst is served at once, then lines wait for the
//! sustained rate; far beyond it a client is dropped (Excess Flood); other
//! clients notice nothing; `--no-flood-control` turns it off.

use crate::common::*;

/// `count` PRIVMSGs to `#c` in one write, numbered from 0.
fn burst(count: usize, pad: usize) -> Vec<u8> {
    let padding = "x".repeat(pad);
    (0..count).flat_map(|i| format!("PRIVMSG #c :line {i} {padding}\r\n").into_bytes()).collect()
}

fn lines_from(client: &Client, nick: &str) -> Vec<String> {
    let head = format!(":{nick}!");
    client.seen.iter().filter(|l| l.starts_with(&head) && l.contains(" PRIVMSG #c :line ")).cloned().collect()
}

fn a_burst_is_paced_and_others_notice_nothing(model: Model) {
    let server = Server::start_with(model, &["--flood-burst", "5", "--flood-rate", "4"]);
    let mut observer = Client::register(&server, "observer");
    observer.join("#c");
    let mut flooder = Client::register(&server, "flooder");
    flooder.join("#c");
    let mut bystander = Client::register(&server, "bystander");
    bystander.join("#quiet");
    let mut friend = Client::register(&server, "friend");
    friend.join("#quiet");
    flooder.sync();

    // 40 lines at 4 a second after a burst of 5 take about nine seconds;
    // meanwhile everyone else is served as usual.
    flooder.send_raw(&burst(40, 0));
    observer.expect_line(":flooder!flooder@127.0.0.1 PRIVMSG #c :line 0 ");
    bystander.send("PRIVMSG #quiet :unhindered");
    friend.expect_line("PRIVMSG #quiet :unhindered");
    observer.sync();
    let before = lines_from(&observer, "flooder").len();
    assert!(before < 40, "the flood was not paced: {before} of 40 already relayed");

    // Nothing is lost: every line arrives, in order.
    observer.expect_line(":flooder!flooder@127.0.0.1 PRIVMSG #c :line 39 ");
    let relayed = lines_from(&observer, "flooder");
    let expected: Vec<String> = (0..40).map(|i| format!("line {i} ")).collect();
    let texts: Vec<String> = relayed.iter().map(|l| l.split_once(" :").unwrap().1.to_string()).collect();
    assert_eq!(texts, expected);
    flooder.sync();
}

fn far_beyond_the_allowance_is_excess_flood(model: Model) {
    let server =
        Server::start_with(model, &["--flood-burst", "5", "--flood-rate", "1", "--flood-recvq", "10240"]);
    let mut observer = Client::register(&server, "observer");
    observer.join("#c");
    let mut flooder = Client::register(&server, "flooder");
    flooder.join("#c");

    // 200 lines of about 120 bytes: far more than 10 KiB beyond the burst.
    flooder.send_raw(&burst(200, 100));
    flooder.expect_line("ERROR :Closing Link: 127.0.0.1 (Excess Flood)");
    flooder.read_to_close();
    observer.expect_line(":flooder!flooder@127.0.0.1 QUIT :Excess Flood");
    assert!(lines_from(&observer, "flooder").len() < 200);
    observer.sync();
    let mut later = Client::register(&server, "later");
    later.join("#c");
}

/// A line with a long IRCv3 tag section, or nothing but one, is a line
/// like any other: a burst of them is served whole and in order (their
/// size gets no one dropped), and a flood of them is dropped as any flood
/// is (ignoring a line is no reason not to count it).
fn lines_with_long_tags_count_as_lines(model: Model) {
    let server = Server::start_with(model, &["--flood-burst", "5", "--flood-rate", "2"]);
    let mut observer = Client::register(&server, "observer");
    observer.join("#c");
    let mut talker = Client::register(&server, "talker");
    talker.join("#c");
    let tags = format!("@+data={}", "t".repeat(4000));

    // Registering and joining took three of the five; three of these wait.
    let tagged: Vec<u8> =
        (0..5).flat_map(|i| format!("{tags} PRIVMSG #c :line {i} \r\n").into_bytes()).collect();
    talker.send_raw(&tagged);
    observer.expect_line(":talker!talker@127.0.0.1 PRIVMSG #c :line 4 ");
    assert_eq!(lines_from(&observer, "talker").len(), 5);
    talker.sync();

    let mut flooder = Client::register(&server, "flooder");
    flooder.join("#c");
    let tags_alone: Vec<u8> = (0..40).flat_map(|_| format!("{tags}\r\n").into_bytes()).collect();
    flooder.send_raw(&tags_alone);
    flooder.expect_line("ERROR :Closing Link: 127.0.0.1 (Excess Flood)");
    flooder.read_to_close();
    observer.expect_line(":flooder!flooder@127.0.0.1 QUIT :Excess Flood");
    observer.sync();
}

fn without_flood_control_a_burst_is_served_at_once(model: Model) {
    let server = Server::start_with(model, &["--no-flood-control"]);
    let mut observer = Client::register(&server, "observer");
    observer.join("#c");
    let mut flooder = Client::register(&server, "flooder");
    flooder.join("#c");
    flooder.send_raw(&burst(500, 100));
    flooder.sync();
    observer.expect_line(":flooder!flooder@127.0.0.1 PRIVMSG #c :line 499 ");
    assert_eq!(lines_from(&observer, "flooder").len(), 500);
}

all_models!(
    a_burst_is_paced_and_others_notice_nothing,
    far_beyond_the_allowance_is_excess_flood,
    lines_with_long_tags_count_as_lines,
    without_flood_control_a_burst_is_served_at_once,
);
