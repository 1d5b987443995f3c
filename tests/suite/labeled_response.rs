//! IRCv3 labeled-response (with batch), under every model: the answer to a
//! labeled command carries its label exactly once, whether it is one line,
//! many (a batch), none (an ACK), or streamed as the client reads it.

use crate::common::{Client, Model, Server, numeric_of};

const LABELS: &str = "batch labeled-response";

/// The tags of a line, as `key` or `key=value` words.
fn tags(line: &str) -> Vec<&str> {
    match line.strip_prefix('@') {
        Some(tagged) => tagged.split_once(' ').map_or("", |(section, _)| section).split(';').collect(),
        None => Vec::new(),
    }
}

/// The line without its tags.
fn untagged(line: &str) -> &str {
    if line.starts_with('@') { line.split_once(' ').map_or("", |(_, rest)| rest) } else { line }
}

/// Reads a labeled batch: its opening line (which must carry `label`),
/// then every line up to its end. Returns the lines inside, untagged,
/// after checking each carries the batch's reference. Lines of other
/// batches or none (others' messages) are skipped.
fn read_batch(c: &mut Client, label: &str) -> Vec<String> {
    let opening = c.expect_line(" BATCH +");
    assert!(tags(&opening).contains(&format!("label={label}").as_str()), "{opening}");
    let words: Vec<&str> = untagged(&opening).split(' ').collect();
    assert_eq!(words[1..], ["BATCH", words[2], "labeled-response"], "{opening}");
    let reference = words[2].trim_start_matches('+').to_string();
    let mut inside = Vec::new();
    loop {
        let line = c.expect("a line of the batch", |_| true);
        if untagged(&line).split(' ').nth(1) == Some("BATCH") {
            assert_eq!(untagged(&line).split(' ').nth(2), Some(format!("-{reference}").as_str()), "{line}");
            assert!(!tags(&line).iter().any(|t| t.starts_with("label")), "{line}");
            return inside;
        }
        if tags(&line).contains(&format!("batch={reference}").as_str()) {
            assert!(!tags(&line).iter().any(|t| t.starts_with("label")), "the label is on the opening only");
            inside.push(untagged(&line).to_string());
        }
    }
}

fn a_command_with_no_answer_gets_a_labeled_ack(model: Model) {
    let server = Server::start(model);
    let mut c = Client::register_with_caps(&server, "acker", LABELS);
    c.send("@label=p1 PONG :nothing");
    assert_eq!(c.expect_line(" ACK"), "@label=p1 :chatter.local ACK");
    // A message to oneself without echo-message is received, not answered.
    c.send("@label=p2 PRIVMSG acker :to me");
    let received = c.expect_line("PRIVMSG acker :to me");
    assert!(!received.contains("label"), "{received}");
    assert_eq!(c.expect_line(" ACK"), "@label=p2 :chatter.local ACK");
}

fn a_one_line_answer_carries_the_label(model: Model) {
    let server = Server::start(model);
    let mut c = Client::register_with_caps(&server, "single", LABELS);
    c.send("@label=abc PING token");
    assert_eq!(c.expect_line("PONG"), "@label=abc :chatter.local PONG chatter.local :token");
    // An error is an answer too, unknown commands included.
    c.send("@label=e1 NO_SUCH_COMMAND");
    assert_eq!(
        c.expect_line(" 421 "),
        "@label=e1 :chatter.local 421 single NO_SUCH_COMMAND :Unknown command"
    );
    // A label is escaped as any tag value is.
    c.send("@label=a\\sb PING t");
    assert!(c.expect_line("PONG").starts_with("@label=a\\sb :"));
}

fn a_many_line_answer_is_one_batch(model: Model) {
    let server = Server::start(model);
    let mut c = Client::register_with_caps(&server, "asker", LABELS);
    let mut other = Client::register(&server, "other");
    other.join("#here");
    c.send("@label=w1 WHOIS other");
    let inside = read_batch(&mut c, "w1");
    let codes: Vec<_> = inside.iter().filter_map(|l| numeric_of(l)).collect();
    assert_eq!(codes.first(), Some(&"311"), "{inside:?}");
    assert_eq!(codes.last(), Some(&"318"), "{inside:?}");

    // JOIN of two channels: both JOINs, the topic and both member lists
    // (streamed) in one batch, in order.
    c.send("@label=j1 JOIN #a,#here");
    let inside = read_batch(&mut c, "j1");
    let kinds: Vec<&str> = inside.iter().filter_map(|l| l.split(' ').nth(1)).collect();
    assert_eq!(kinds, ["JOIN", "353", "366", "JOIN", "353", "366"], "{inside:?}");
    // What others see of it is not labeled.
    let seen = other.expect_line("JOIN #here");
    assert!(!seen.starts_with('@'), "{seen}");
}

fn a_long_streamed_answer_stays_in_its_batch(model: Model) {
    let server = Server::start(model);
    // 200 channels, more than one piece of a streamed LIST (their owners
    // stay connected, or the channels would go).
    let mut owners = Vec::new();
    for owner in 0..4 {
        let mut c = Client::register(&server, &format!("owner{owner}"));
        let channels: Vec<String> = (0..50).map(|i| format!("#channel-number-{owner}-{i:02}")).collect();
        for ten in channels.chunks(10) {
            c.send(&format!("JOIN {}", ten.join(",")));
        }
        c.expect("the last NAMES", |l| numeric_of(l) == Some("366") && l.contains(&channels[49]));
        owners.push(c);
    }
    let mut c = Client::register_with_caps(&server, "lister", LABELS);
    c.send("@label=l1 LIST");
    let inside = read_batch(&mut c, "l1");
    let entries = inside.iter().filter(|l| numeric_of(l) == Some("322")).count();
    assert_eq!(entries, 200);
    assert_eq!(inside.last().and_then(|l| numeric_of(l)), Some("323"));
}

fn echo_message_is_the_labeled_answer(model: Model) {
    let server = Server::start(model);
    let mut c = Client::register_with_caps(&server, "talker", "batch labeled-response echo-message");
    let mut listener = Client::register(&server, "listener");
    c.join("#room");
    listener.join("#room");
    c.expect_line(":listener!listener@127.0.0.1 JOIN #room");
    c.send("@label=m1 PRIVMSG #room :hello");
    assert_eq!(c.expect_line("PRIVMSG #room"), "@label=m1 :talker!talker@127.0.0.1 PRIVMSG #room :hello");
    assert_eq!(listener.expect_line("PRIVMSG #room"), ":talker!talker@127.0.0.1 PRIVMSG #room :hello");
    // To oneself: the message as received, then its echo, which alone is
    // the answer (labeled-response's rule for echo-message).
    c.send("@label=m2 PRIVMSG talker :me");
    let first = c.expect_line("PRIVMSG talker :me");
    let second = c.expect_line("PRIVMSG talker :me");
    assert!(!first.contains("label"), "{first}");
    assert!(second.starts_with("@label=m2 "), "{second}");
    c.expect_no_line("label=");
}

fn labels_need_both_capabilities_and_a_sane_value(model: Model) {
    let server = Server::start(model);
    // labeled-response without batch: the spec requires both.
    let mut without_batch = Client::register_with_caps(&server, "nobatch", "labeled-response");
    without_batch.send("@label=x PING t");
    assert_eq!(without_batch.expect_line("PONG"), ":chatter.local PONG chatter.local :t");
    let mut plain = Client::register(&server, "nocaps");
    plain.send("@label=x PING t");
    assert_eq!(plain.expect_line("PONG"), ":chatter.local PONG chatter.local :t");
    // A label longer than the spec allows is not honoured.
    let mut c = Client::register_with_caps(&server, "longlabel", LABELS);
    c.send(&format!("@label={} PING t", "x".repeat(65)));
    assert_eq!(c.expect_line("PONG"), ":chatter.local PONG chatter.local :t");
    c.send(&format!("@label={} PING t", "y".repeat(64)));
    assert!(c.expect_line("PONG").starts_with(&format!("@label={} ", "y".repeat(64))));
}

fn a_labeled_nick_change_and_quit_are_answered(model: Model) {
    let server = Server::start(model);
    let mut c = Client::register_with_caps(&server, "before", LABELS);
    c.send("@label=n1 NICK after");
    assert_eq!(c.expect_line(" NICK "), "@label=n1 :before!before@127.0.0.1 NICK :after");
    c.nick = "after".into();
    c.send("@label=q1 QUIT :bye");
    let lines = c.read_to_close();
    let error = lines.iter().find(|l| l.contains("ERROR")).expect("a closing line");
    assert!(error.starts_with("@label=q1 ERROR :Closing Link"), "{lines:?}");
}

all_models!(
    a_command_with_no_answer_gets_a_labeled_ack,
    a_one_line_answer_carries_the_label,
    a_many_line_answer_is_one_batch,
    a_long_streamed_answer_stays_in_its_batch,
    echo_message_is_the_labeled_answer,
    labels_need_both_capabilities_and_a_sane_value,
    a_labeled_nick_change_and_quit_are_answered,
);
