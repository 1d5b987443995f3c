//! Flow control under a burst: senders that write as fast as TCP takes their
//! lines are slowed to what the readers can take, instead of the readers
//! being dropped; a reader that stops, or reads far slower than everyone
//! else, is cut loose and dropped with its closing line while the others
//! keep everything; and a flood in one channel does not stop a conversation
//! in another.
//!
//! The server runs with a small sendq (`--sendq 65536`) so that the old
//! policy — drop whoever's queue fills — would drop readers within a
//! fraction of the flood. Readers are threads reading their socket in large
//! chunks; senders are threads writing large batches with blocking writes,
//! so they go exactly as fast as the server reads them (open loop).

use crate::common::wire::ClientStream;
use crate::common::*;

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const SENDQ: &str = "65536";
const CHANNEL: &str = "#flood";
/// Padding that makes each flood line about 200 bytes on the wire.
const PAD: &str = "................................................................................................................................";

/// How a reader's connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ending {
    /// It saw every sender's end marker and was still connected.
    Finished,
    /// The server closed the connection (EOF).
    Closed,
    /// The connection was reset or failed.
    Failed(String),
}

/// What one reader thread saw.
#[derive(Debug)]
struct Received {
    nick: String,
    /// (sender, sequence) of every flood line, in arrival order.
    messages: Vec<(usize, usize)>,
    /// Every line that was not a flood line.
    other: Vec<String>,
    ending: Ending,
}

impl Received {
    fn saw(&self, needle: &str) -> bool {
        self.other.iter().any(|l| l.contains(needle))
    }
}

/// Connects, registers `nick` and joins `channel`, with an optional small
/// receive buffer (so a client that reads slowly or not at all falls behind
/// in the server instead of in its own kernel).
/// Over TLS for a TLS model: what a slow reader holds up is then TLS
/// records in the server's sendq path.
fn member(server: &Server, nick: &str, channel: &str, rcvbuf: Option<usize>) -> ClientStream {
    member_over(server, nick, channel, rcvbuf, server.model.is_tls())
}

fn member_over(server: &Server, nick: &str, channel: &str, rcvbuf: Option<usize>, tls: bool) -> ClientStream {
    let secure = if tls {
        wire::Secure::tls(connect_with_rcvbuf(&server.tls_addr().expect("a TLS listener"), rcvbuf))
    } else {
        wire::Secure::Plain(connect_with_rcvbuf(&server.next_addr(), rcvbuf))
    };
    let mut stream = ClientStream::Direct(secure);
    write!(stream, "NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\nJOIN {channel}\r\n").unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + PATIENCE;
    stream.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    while !seen.contains(&format!(" 366 {nick} {channel} ")) {
        assert!(Instant::now() < deadline, "{nick} never got into {channel}: {seen}");
        match stream.read(&mut buf) {
            Ok(0) => panic!("{nick}: closed while joining: {seen}"),
            Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("{nick}: {e} while joining"),
        }
    }
    stream.set_read_timeout(None).unwrap();
    stream
}

/// A TCP connection to `addr` with an optional small receive buffer.
fn connect_with_rcvbuf(addr: &str, rcvbuf: Option<usize>) -> TcpStream {
    let addr: std::net::SocketAddr = addr.parse().expect("server address");
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    if let Some(bytes) = rcvbuf {
        socket.set_recv_buffer_size(bytes).expect("SO_RCVBUF");
    }
    socket.connect(&addr.into()).expect("connect");
    let stream: TcpStream = socket.into();
    stream.set_nodelay(true).unwrap();
    stream
}

/// A sender: [`member`] over plain TCP, always (its socket is read by a
/// second thread while it writes, which a TLS session cannot share).
fn sender(server: &Server, nick: &str) -> TcpStream {
    match member_over(server, nick, CHANNEL, None, false) {
        ClientStream::Direct(wire::Secure::Plain(stream)) => stream,
        _ => unreachable!("a plain member"),
    }
}

/// How a reader reads until it is told to read as fast as it can.
#[derive(Debug, Clone, Copy)]
enum Pace {
    Full,
    /// At most this many bytes per 10 ms: a client on a slow link.
    Slow(usize),
    /// Not at all: a client that stopped reading.
    Never,
}

/// Reads `stream` until every one of `senders` has sent its end marker or
/// the connection ends, at `pace` until `fast_again` is set (so a dropped
/// client can read out its closing line). Seeing `odd` quit sets `odd_gone`.
fn read_flood(
    mut stream: ClientStream,
    nick: String,
    senders: usize,
    pace: Pace,
    fast_again: Arc<AtomicBool>,
    odd_gone: Arc<AtomicBool>,
) -> JoinHandle<Received> {
    std::thread::spawn(move || {
        let mut received =
            Received { nick, messages: Vec::new(), other: Vec::new(), ending: Ending::Finished };
        let mut ended = 0;
        let mut pending: Vec<u8> = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        // Bounded: a reader that hears nothing for this long gives up.
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        while ended < senders {
            let want = match pace {
                _ if fast_again.load(Ordering::Relaxed) => buf.len(),
                Pace::Full => buf.len(),
                Pace::Slow(bytes) => {
                    std::thread::sleep(Duration::from_millis(10));
                    bytes
                }
                Pace::Never => {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            };
            match stream.read(&mut buf[..want]) {
                Ok(0) => {
                    received.ending = Ending::Closed;
                    break;
                }
                Ok(n) => pending.extend_from_slice(&buf[..n]),
                Err(e) => {
                    received.ending = Ending::Failed(e.to_string());
                    break;
                }
            }
            let mut start = 0;
            while ended < senders
                && let Some(len) = pending[start..].iter().position(|b| *b == b'\n')
            {
                let line = String::from_utf8_lossy(&pending[start..start + len]).trim_end().to_string();
                start += len + 1;
                if let Some((sender, seq)) = flood_line(&line) {
                    received.messages.push((sender, seq));
                } else {
                    if line.contains(&format!("PRIVMSG {CHANNEL} :end ")) {
                        ended += 1;
                    } else if let Some(token) = line.strip_prefix("PING ") {
                        let _ = stream.write_all(format!("PONG {token}\r\n").as_bytes());
                    } else if line.starts_with(":odd!") && line.contains(" QUIT ") {
                        odd_gone.store(true, Ordering::Relaxed);
                    }
                    received.other.push(line);
                }
            }
            pending.drain(..start);
        }
        received
    })
}

/// `(sender, seq)` from `:s3!... PRIVMSG #flood :f 3 17 ....`.
fn flood_line(line: &str) -> Option<(usize, usize)> {
    let (_, body) = line.split_once(&format!(" PRIVMSG {CHANNEL} :f "))?;
    let mut words = body.split(' ');
    Some((words.next()?.parse().ok()?, words.next()?.parse().ok()?))
}

/// A sender writing `PRIVMSG #flood :f ME SEQ PAD` lines in large batches,
/// as fast as TCP takes them, until it has sent `limit` or `stop` is set;
/// then its end marker. It reads (and ignores) what it is sent meanwhile:
/// it is in the channel, so it gets the other senders' lines, and a sender
/// that never read would be a slow reader itself. Returns how many it sent.
fn flood(mut stream: TcpStream, me: usize, limit: usize, stop: Arc<AtomicBool>) -> JoinHandle<usize> {
    std::thread::spawn(move || {
        let mut incoming = stream.try_clone().expect("clone the sender's socket");
        let listening = std::thread::spawn(move || {
            let mut sink = vec![0u8; 64 * 1024];
            while matches!(incoming.read(&mut sink), Ok(n) if n > 0) {}
        });
        const BATCH: usize = 100;
        let mut sent = 0;
        let mut batch = String::new();
        while sent < limit && !stop.load(Ordering::Relaxed) {
            batch.clear();
            for seq in sent..(sent + BATCH).min(limit) {
                batch.push_str(&format!("PRIVMSG {CHANNEL} :f {me} {seq} {PAD}\r\n"));
            }
            stream.write_all(batch.as_bytes()).expect("sender write");
            sent = (sent + BATCH).min(limit);
        }
        stream.write_all(format!("PRIVMSG {CHANNEL} :end {me}\r\n").as_bytes()).expect("sender end");
        // QUIT once the server has taken everything; the listener ends with the connection.
        stream.write_all(b"QUIT :done\r\n").expect("sender quit");
        listening.join().expect("sender's listener");
        sent
    })
}

/// Asserts that `received` holds every message of every sender, each
/// sender's in order, and nothing twice.
fn assert_complete(received: &Received, sent: &[usize]) {
    let mut next = vec![0usize; sent.len()];
    for &(sender, seq) in &received.messages {
        assert_eq!(
            seq, next[sender],
            "{}: from s{sender} expected #{} got #{seq}",
            received.nick, next[sender]
        );
        next[sender] += 1;
    }
    assert_eq!(next, sent, "{}: messages per sender received vs sent", received.nick);
}

/// Asserts that all readers saw the flood in one order.
fn assert_one_order(readers: &[Received]) {
    for pair in readers.windows(2) {
        assert!(
            pair[0].messages == pair[1].messages,
            "{} and {} disagree on the order",
            pair[0].nick,
            pair[1].nick
        );
    }
}

/// The QUITs `received` saw other than the senders' own when they were done.
fn dropped_seen(received: &Received) -> Vec<&String> {
    received.other.iter().filter(|l| l.contains(" QUIT ") && !l.ends_with(" :Quit: done")).collect()
}

fn assert_not_dropped(received: &Received) {
    assert_eq!(received.ending, Ending::Finished, "{} did not finish: {:?}", received.nick, received.other);
    assert!(!received.saw("ERROR"), "{} got an ERROR: {:?}", received.nick, received.other);
}

/// Everyone reads: every reader gets every message in one order, nobody is
/// disconnected, and the senders were simply slowed down.
fn flood_reaches_every_reader(model: Model) {
    const SENDERS: usize = 4;
    const READERS: usize = 12;
    const MESSAGES: usize = 5000;
    let server = Server::start_with(model, &["--sendq", SENDQ, "--no-flood-control"]);
    let never = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..READERS)
        .map(|i| {
            let nick = format!("r{i}");
            read_flood(
                member(&server, &nick, CHANNEL, None),
                nick,
                SENDERS,
                Pace::Full,
                never.clone(),
                never.clone(),
            )
        })
        .collect();
    let senders: Vec<_> =
        (0..SENDERS).map(|i| flood(sender(&server, &format!("s{i}")), i, MESSAGES, never.clone())).collect();
    let sent: Vec<usize> = senders.into_iter().map(|s| s.join().expect("sender")).collect();
    let received: Vec<Received> = readers.into_iter().map(|r| r.join().expect("reader")).collect();
    for r in &received {
        assert_not_dropped(r);
        assert_complete(r, &sent);
        let quits = dropped_seen(r);
        assert!(quits.is_empty(), "{}: someone was dropped: {quits:?}", r.nick);
    }
    assert_one_order(&received);
}

/// Floods `#flood` (fast readers plus one `odd` reader) until the odd one
/// is seen leaving, then ends the flood. Returns the fast readers' view,
/// the odd reader's and what was sent.
fn flood_with_odd_reader(model: Model, odd_pace: Pace) -> (Vec<Received>, Received, Vec<usize>) {
    const SENDERS: usize = 3;
    const READERS: usize = 8;
    // Far more than any socket buffers hold: the odd reader must fall out.
    const LIMIT: usize = 200_000;
    let server = Server::start_with(model, &["--sendq", SENDQ, "--no-flood-control"]);
    // Set by the readers when they see the odd reader leave: the flood
    // stops, and the odd one reads out what it was sent, to the end.
    let odd_gone = Arc::new(AtomicBool::new(false));
    let nobody = Arc::new(AtomicBool::new(false));
    let odd_stream = member(&server, "odd", CHANNEL, Some(8192));
    let odd = read_flood(odd_stream, "odd".into(), SENDERS, odd_pace, odd_gone.clone(), nobody.clone());
    let readers: Vec<_> = (0..READERS)
        .map(|i| {
            let nick = format!("r{i}");
            let stream = member(&server, &nick, CHANNEL, None);
            read_flood(stream, nick, SENDERS, Pace::Full, nobody.clone(), odd_gone.clone())
        })
        .collect();
    let senders: Vec<_> =
        (0..SENDERS).map(|i| flood(sender(&server, &format!("s{i}")), i, LIMIT, odd_gone.clone())).collect();
    let sent: Vec<usize> = senders.into_iter().map(|s| s.join().expect("sender")).collect();
    assert!(sent.iter().all(|n| *n < LIMIT), "the flood ran to its limit: {sent:?}");
    let fast: Vec<Received> = readers.into_iter().map(|r| r.join().expect("reader")).collect();
    let odd = odd.join().expect("odd reader");
    (fast, odd, sent)
}

fn assert_dropped_with_closing_line(odd: &Received) {
    assert_eq!(odd.ending, Ending::Closed, "odd: the connection did not end with EOF");
    let last = odd.other.last().map(String::as_str);
    assert_eq!(
        last,
        Some("ERROR :Closing Link: 127.0.0.1 (SendQ exceeded)"),
        "odd ended {:?} after {} messages; its last lines: {:?}",
        odd.ending,
        odd.messages.len(),
        &odd.other[odd.other.len().saturating_sub(3)..]
    );
}

fn assert_others_unaffected(fast: &[Received], sent: &[usize]) {
    for r in fast {
        assert_not_dropped(r);
        assert_complete(r, sent);
        // The odd reader's is the only QUIT but the senders' when they are done.
        let quits = dropped_seen(r);
        assert_eq!(quits, [":odd!odd@127.0.0.1 QUIT :SendQ exceeded"], "{}: quits seen", r.nick);
    }
    assert_one_order(fast);
}

/// A client that never reads is cut loose: it gets its closing line and the
/// readers lose nothing.
fn never_reading_client_is_dropped(model: Model) {
    let (fast, odd, sent) = flood_with_odd_reader(model, Pace::Never);
    assert_dropped_with_closing_line(&odd);
    assert_others_unaffected(&fast, &sent);
}

/// A client reading about 100 KB/s while the others read as fast as they
/// can is dropped; the others lose nothing.
fn reader_far_slower_than_the_channel_is_dropped(model: Model) {
    let (fast, odd, sent) = flood_with_odd_reader(model, Pace::Slow(1024));
    assert_dropped_with_closing_line(&odd);
    // What it did receive before it fell out was in order.
    let mut next: HashMap<usize, usize> = HashMap::new();
    for &(sender, seq) in &odd.messages {
        let expected = next.entry(sender).or_default();
        assert_eq!(seq, *expected, "odd: from s{sender}");
        *expected += 1;
    }
    assert_others_unaffected(&fast, &sent);
}

/// A flood in one channel does not stop a conversation in another channel
/// on the same worker: a question-and-answer exchange completes while the
/// flooder is still flooding.
fn flood_does_not_stop_another_channel(model: Model) {
    const ROUNDS: usize = 20;
    let server = Server::start_with(model, &["--sendq", SENDQ, "--no-flood-control"]);
    // Everyone on one worker (pools): connect until enough land together.
    let mut same: Vec<Client> = Vec::new();
    let mut worker = None;
    for _ in 0..200 {
        if same.len() == 5 {
            break;
        }
        // The flooder (the first) over plain TCP: see `sender`.
        let mut client =
            if same.is_empty() { Client::connect(&server.next_addr()) } else { server.connect() };
        let greeting = client.expect_line("Welcome to chatter");
        let on = worker_of(&greeting);
        if worker.is_none() {
            worker = Some(on);
        }
        if on == worker.unwrap() {
            same.push(client);
        }
    }
    assert_eq!(same.len(), 5, "not enough clients landed on one worker");
    let names = ["flooder", "r0", "r1", "alice", "bob"];
    for (client, name) in same.iter_mut().zip(names) {
        client.register_as(name);
    }
    let mut bob = same.pop().unwrap();
    let mut alice = same.pop().unwrap();
    alice.join("#quiet");
    bob.join("#quiet");
    let mut streams = Vec::new();
    for mut client in same {
        client.join(CHANNEL);
        streams.push(client);
    }
    let flooder_client = streams.remove(0);
    let stop = Arc::new(AtomicBool::new(false));
    let never = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = streams
        .into_iter()
        .map(|c| {
            let nick = c.nick.clone();
            read_flood(c.into_stream(), nick, 1, Pace::Full, never.clone(), never.clone())
        })
        .collect();
    let flooder = match flooder_client.into_stream() {
        ClientStream::Direct(wire::Secure::Plain(stream)) => stream,
        _ => unreachable!("the flooder connected over plain TCP"),
    };
    let flooder = flood(flooder, 0, 50_000_000, stop.clone());
    for round in 0..ROUNDS {
        alice.send(&format!("PRIVMSG #quiet :question {round}"));
        bob.expect_line(&format!("PRIVMSG #quiet :question {round}"));
        bob.send(&format!("PRIVMSG #quiet :answer {round}"));
        alice.expect_line(&format!("PRIVMSG #quiet :answer {round}"));
    }
    assert!(!flooder.is_finished(), "the flood ended before the conversation did");
    stop.store(true, Ordering::Relaxed);
    let sent = flooder.join().expect("flooder");
    for received in readers.into_iter().map(|r| r.join().expect("reader")) {
        assert_not_dropped(&received);
        assert_complete(&received, &[sent]);
    }
}

all_models!(
    flood_reaches_every_reader,
    never_reading_client_is_dropped,
    reader_far_slower_than_the_channel_is_dropped,
    flood_does_not_stop_another_channel,
);
