//! A connection's timers and endings, driven with a made-up clock: what
//! took seconds of real time per model over TCP takes none here.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::chat::{ConnId, ServerInfo, Session, State};

const TIMEOUTS: Timeouts =
    Timeouts { ping_interval: Duration::from_secs(10), registration: Duration::from_secs(60) };
const FLOOD: FloodPolicy = FloodPolicy { burst: 3, rate: 1, recvq_bytes: 64 };

struct Fixture {
    t0: Instant,
    state: State,
    conn: Connection,
}

fn fixture(flood: Option<FloodPolicy>) -> Fixture {
    let info = Arc::new(ServerInfo::new("irc.test"));
    let limits = Arc::new(Limits { timeouts: TIMEOUTS, flood, info: info.clone() });
    let t0 = Instant::now();
    let session = Session::new(ConnId { worker: 0, slot: 1, generation: 0 }, "host", info.clone());
    Fixture { t0, state: State::new(info), conn: Connection::new(session, limits, None, t0) }
}

impl Fixture {
    fn at(&self, secs: u64) -> Instant {
        self.t0 + Duration::from_secs(secs)
    }

    /// Feeds one line and serves it the way a model does.
    fn say(&mut self, line: &str, secs: u64) {
        self.conn.handle_bytes(format!("{line}\r\n").as_bytes()).expect("within limits");
        let now = self.at(secs);
        let LinePoll::Line(frame) = self.conn.poll_line(now) else { panic!("line admitted") };
        let mut actions = Vec::new();
        self.conn.handle_line(frame, &self.state, 0, &mut actions);
        for action in actions {
            if let Action::Event(event) = action {
                self.state.apply(&event, &mut Vec::new());
            }
        }
        self.conn.refresh_standing(&self.state);
    }

    fn transmits(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(t) = self.conn.poll_transmit() {
            out.push(match t {
                Transmit::Send(b) => format!("send {}", String::from_utf8(b).unwrap().trim_end()),
                Transmit::Close(b) => format!("close {}", String::from_utf8(b).unwrap().trim_end()),
            });
        }
        out
    }
}

#[test]
fn the_greeting_is_the_first_transmit() {
    let mut f = fixture(None);
    let sent = f.transmits();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].starts_with("send :irc.test NOTICE * :*** Welcome to chatter!"), "{sent:?}");
}

#[test]
fn an_unregistered_connection_times_out_whatever_it_sends() {
    let mut f = fixture(None);
    f.transmits();
    f.say("PING x", 30);
    f.transmits();
    assert_eq!(f.conn.poll_timeout(), Some(f.at(60)));
    assert_eq!(f.conn.handle_timeout(f.at(59)), TimeoutOutcome::Nothing);
    assert_eq!(f.conn.handle_timeout(f.at(60)), TimeoutOutcome::Drop(DisconnectReason::RegistrationTimeout));
}

#[test]
fn a_silent_irc_client_is_pinged_then_dropped_with_its_closing_line() {
    let mut f = fixture(None);
    f.say("NICK alice", 0);
    f.say("USER a 0 * :Alice", 0);
    assert!(f.conn.is_registered());
    f.transmits();
    assert_eq!(f.conn.poll_timeout(), Some(f.at(10)));
    assert_eq!(f.conn.handle_timeout(f.at(10)), TimeoutOutcome::Nothing);
    assert_eq!(f.transmits(), ["send PING :irc.test"]);
    assert_eq!(f.conn.poll_timeout(), Some(f.at(20)));
    let outcome = f.conn.handle_timeout(f.at(20));
    assert_eq!(outcome, TimeoutOutcome::Drop(DisconnectReason::PingTimeout(20)));
    let TimeoutOutcome::Drop(reason) = outcome else { unreachable!() };
    assert!(f.conn.quit_event(&f.state, &reason).is_some(), "others see it quit");
    f.conn.close(reason, f.at(20));
    assert_eq!(f.transmits(), ["close ERROR :Closing Link: host (Ping timeout: 20 seconds)"]);
    assert_eq!(f.conn.stage(), Stage::Closing { by: f.at(25) });
}

#[test]
fn answering_the_ping_keeps_the_client() {
    let mut f = fixture(None);
    f.say("NICK alice", 0);
    f.say("USER a 0 * :Alice", 0);
    f.conn.handle_timeout(f.at(10));
    f.say("PONG :irc.test", 12);
    assert_eq!(f.conn.handle_timeout(f.at(21)), TimeoutOutcome::Nothing);
    assert_eq!(f.conn.poll_timeout(), Some(f.at(22)));
}

#[test]
fn plain_clients_are_never_pinged() {
    let mut f = fixture(None);
    f.say("alice", 0);
    assert!(f.conn.is_registered());
    assert_eq!(f.conn.poll_timeout(), None);
    assert_eq!(f.conn.handle_timeout(f.at(100_000)), TimeoutOutcome::Nothing);
    assert!(f.transmits().iter().all(|t| !t.contains("PING")));
}

#[test]
fn a_burst_is_served_then_lines_wait_for_their_time() {
    let mut f = fixture(Some(FLOOD));
    f.conn.handle_bytes(b"a\r\nb\r\nc\r\nd\r\n").unwrap();
    let now = f.at(0);
    for _ in 0..3 {
        assert!(matches!(f.conn.poll_line(now), LinePoll::Line(_)));
    }
    assert_eq!(f.conn.poll_line(now), LinePoll::WaitUntil(f.at(1)));
    assert_eq!(f.conn.poll_timeout(), Some(f.at(1)), "the wait's end is the next deadline");
    assert_eq!(f.conn.poll_line(f.at(1)), LinePoll::Line(Frame::Line(b"d".to_vec())));
}

#[test]
fn a_client_sending_far_past_its_allowance_is_dropped() {
    let mut f = fixture(Some(FLOOD));
    f.conn.handle_bytes(b"1\r\n2\r\n3\r\n4\r\n").unwrap();
    while let LinePoll::Line(_) = f.conn.poll_line(f.at(0)) {}
    assert_eq!(f.conn.handle_bytes(&[b'x'; 32]), Ok(()));
    assert_eq!(f.conn.handle_bytes(&[b'x'; 64]), Err(DisconnectReason::ExcessFlood));
}

#[test]
fn a_closing_connection_lingers_after_its_line_then_expires() {
    let mut f = fixture(None);
    f.transmits();
    f.conn.close(DisconnectReason::SendQExceeded, f.at(0));
    assert_eq!(f.transmits(), ["close *** Disconnected: SendQ exceeded"]);
    assert!(f.conn.counts_as_client());
    assert!(f.conn.flushed(f.at(1)), "the line is out: shut the write side");
    assert_eq!(f.conn.stage(), Stage::Lingering { by: f.at(6) });
    assert!(!f.conn.counts_as_client(), "gone as far as the client can tell");
    assert_eq!(f.conn.handle_timeout(f.at(5)), TimeoutOutcome::Nothing);
    assert_eq!(f.conn.handle_timeout(f.at(6)), TimeoutOutcome::Expired);
    assert!(f.conn.is_done());
}

#[test]
fn a_lost_socket_ends_at_once_and_only_the_first_reason_counts() {
    let mut f = fixture(None);
    f.transmits();
    f.conn.close(DisconnectReason::PeerClosed, f.at(0));
    assert!(f.conn.is_done());
    assert!(f.transmits().is_empty(), "nobody to tell");
    f.conn.close(DisconnectReason::ExcessFlood, f.at(0));
    assert_eq!(f.conn.reason(), Some(&DisconnectReason::PeerClosed));
}

#[test]
fn reasons_read_as_the_classic_servers_word_them() {
    let cases = [
        (DisconnectReason::PeerClosed, "Connection closed"),
        (DisconnectReason::ReadError("boom".into()), "Read error: boom"),
        (DisconnectReason::RegistrationTimeout, "Registration timed out"),
        (DisconnectReason::PingTimeout(240), "Ping timeout: 240 seconds"),
        (DisconnectReason::ExcessFlood, "Excess Flood"),
        (DisconnectReason::SendQExceeded, "SendQ exceeded"),
        (DisconnectReason::ServerShutdown, "Server shutting down"),
    ];
    for (reason, text) in cases {
        assert_eq!(reason.to_string(), text);
    }
}

#[test]
fn a_silent_connection_is_told_what_to_type_a_moment_after_the_greeting() {
    let mut f = fixture(None);
    f.transmits();
    assert_eq!(f.conn.poll_timeout(), Some(f.t0 + FIRST_LINE_HINT_AFTER));
    assert_eq!(f.conn.handle_timeout(f.t0 + FIRST_LINE_HINT_AFTER), TimeoutOutcome::Nothing);
    assert_eq!(
        f.transmits(),
        ["send :irc.test NOTICE * :*** Using nc or telnet? Type a name and press Enter to start chatting."]
    );
    assert_eq!(f.conn.poll_timeout(), Some(f.at(60)), "told once; the registration timeout is next");
}

#[test]
fn a_client_that_speaks_first_is_never_told() {
    let mut f = fixture(None);
    f.transmits();
    f.say("CAP LS 302", 0);
    f.transmits();
    f.conn.handle_timeout(f.at(2));
    assert!(f.transmits().iter().all(|t| !t.contains("Using nc")), "an IRC client sees no nc hint");
}
