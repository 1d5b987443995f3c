//! The simulated clients: connect and register N clients, put them all in
//! one channel, have S of them send M numbered, timestamped messages at a
//! given total rate, and account for every delivery.
//!
//! Unpaced runs are an open loop by default: every sender writes as fast as
//! TCP accepts and every client reads as fast as it can, so the server meets
//! more than it can take and what it does then (queue, slow the senders
//! through TCP, or drop readers that fall behind) is what gets measured. A
//! closed loop (`window`) instead caps the messages in flight, which
//! measures the ceiling without ever filling a receiver's queue in the
//! server; it is an option, and every result says which loop it ran.
//!
//! It runs on a single-threaded tokio runtime: one core of load generator
//! (pinned to the core the server is not on) drives thousands of
//! connections, and its own CPU time is measured so that the report can
//! show it is not the bottleneck. Each message's text is
//! `"<sender> <seq> <sent µs>"`, the time measured from one `Instant` in
//! this process, so the latency is send-to-receive through the server and
//! both protocols can be parsed the same way (the last three words of the
//! line). Delayed ACKs distort loopback latency, so every socket has
//! TCP_NODELAY and re-arms TCP_QUICKACK after each read.

use std::cell::{Cell, RefCell};
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use tokio::io::{AsyncReadExt, BufReader};
use tokio::sync::{Mutex, Semaphore, watch};

use crate::bench::accounting::{Tally, new_histogram};
use crate::bench::client::{
    Client, ReadHalf, WriteHalf, closed_by_peer, closing_line, connect_one, join_channel,
    parse_message_bytes, read_error_reason,
};
use crate::bench::format::signed_group;
use crate::bench::results::{Load, Proto};
use crate::bench::tls::ClientTls;

/// The load and how to put it on the servers at `addrs`.
#[derive(Debug, Clone)]
pub(crate) struct LoadConfig {
    /// Where the clients connect: client `i` to `addrs[i % addrs.len()]`,
    /// so with several nodes of one network the clients, the senders
    /// among them and the reference receivers are spread over all of them.
    pub addrs: Vec<SocketAddr>,
    /// With TLS, the client side for each address (client `i` uses
    /// `tls[i % addrs.len()]`); empty: plaintext.
    pub tls: Vec<ClientTls>,
    pub load: Load,
    pub channel: String,
    /// Whether the clients join the channel; idle-memory runs only register.
    pub join: bool,
    /// Prefix of the nicks, so runs against one server never collide.
    pub nick_prefix: String,
    pub progress: bool,
    /// Give up on connecting/registering a client after this long.
    pub connect_timeout: Duration,
    /// After the last message is sent, stop waiting for deliveries once
    /// none has arrived for this long.
    pub quiet_timeout: Duration,
}

/// What happened, for the caller to turn into a `RunResult`.
pub(crate) struct LoadOutcome {
    pub connected: usize,
    /// Seconds to connect and register every client.
    pub connect_secs: f64,
    /// Seconds for every client to join the channel afterwards.
    pub join_secs: f64,
    pub tallies: Vec<Tally>,
    pub latency: Histogram<u64>,
    pub flow_secs: f64,
    pub error: Option<String>,
    /// What the first TLS connection negotiated.
    pub tls_session: Option<String>,
}

/// Hooks into the phases, for resource sampling.
pub(crate) trait Phases {
    /// All clients are connected and in the channel; no message sent yet.
    fn connected(&mut self);
    /// The last delivery arrived (or the run gave up waiting).
    fn flowed(&mut self);
}

/// The closed loop's window when none is given: senders go as fast as the
/// server delivers, but never so far ahead that a receiver's queue in the
/// server overflows because this one-threaded generator reads it late.
pub const DEFAULT_WINDOW: u64 = 1000;

/// Receivers that are not senders and keep their whole sequence, to compare
/// every receiver's order against. More than one, because a reference that
/// was disconnected cannot serve; three, so that with clients spread over
/// up to three nodes each node has one (clients S, S+1, S+2 go to
/// consecutive nodes).
const REFERENCES: usize = 3;

struct Shared {
    base: Instant,
    latency: RefCell<Histogram<u64>>,
    delivered: RefCell<u64>,
    last_delivery: RefCell<Instant>,
    /// Receivers that have everything they expect or were disconnected:
    /// when all are, nothing more can arrive.
    settled: Cell<usize>,
    /// Messages sent so far, over all senders.
    sent: Cell<u64>,
    /// Per receiver: messages it has received plus those it sent itself
    /// (which it never receives), i.e. how far through `sent` it is;
    /// `u64::MAX` once it is disconnected, so the closed loop stops waiting
    /// for it.
    progress: Vec<Rc<Cell<u64>>>,
    /// The slowest receiver's progress, recomputed at most every millisecond.
    slowest: Cell<(u64, Instant)>,
}

impl Shared {
    fn slowest_progress(&self) -> u64 {
        let (value, at) = self.slowest.get();
        if at.elapsed() < Duration::from_millis(1) {
            return value;
        }
        let value = self.progress.iter().map(|p| p.get()).min().unwrap_or(u64::MAX);
        self.slowest.set((value, Instant::now()));
        value
    }

    /// Waits until `count` more messages fit in `window`.
    async fn wait_for_room(&self, count: u64, window: u64) {
        while self.sent.get() + count > self.slowest_progress().saturating_add(window) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

/// Runs one load on the current thread. Returns when every expected
/// delivery arrived, or nothing arrived for `quiet_timeout` after sending.
pub(crate) fn run(config: &LoadConfig, phases: &mut dyn Phases) -> io::Result<LoadOutcome> {
    if config.addrs.is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "no address to connect to"));
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, drive(config, phases))
}

async fn drive(config: &LoadConfig, phases: &mut dyn Phases) -> io::Result<LoadOutcome> {
    let load = &config.load;
    let bars = MultiProgress::with_draw_target(if config.progress {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    });
    // Whole numbers with separators, like every other figure the bench prints.
    let style = ProgressStyle::with_template("{prefix:>12} [{bar:40}] {human_pos}/{human_len} {rate}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key("rate", |state: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{}/s", signed_group(state.per_sec().round()));
        })
        .progress_chars("=> ");
    let senders = load.senders.min(load.clients);
    let expected_total = (senders * load.messages) as u64 * (load.clients as u64).saturating_sub(1);
    let progress: Vec<Rc<Cell<u64>>> = (0..load.clients).map(|_| Rc::new(Cell::new(0))).collect();
    let shared = Rc::new(Shared {
        base: Instant::now(),
        latency: RefCell::new(new_histogram()),
        delivered: RefCell::new(0),
        last_delivery: RefCell::new(Instant::now()),
        settled: Cell::new(0),
        sent: Cell::new(0),
        progress: progress.clone(),
        slowest: Cell::new((0, Instant::now())),
    });
    let failed = |connected, connect_secs, join_secs, error| LoadOutcome {
        connected,
        connect_secs,
        join_secs,
        tallies: Vec::new(),
        latency: new_histogram(),
        flow_secs: 0.0,
        error,
        tls_session: None,
    };

    // Phase 1: connect and register, `connect_concurrency` at a time.
    let connect_bar = bars.add(ProgressBar::new(load.clients as u64).with_style(style.clone()));
    connect_bar.set_prefix("registered");
    let started = Instant::now();
    let permits = Arc::new(Semaphore::new(load.connect_concurrency.max(1)));
    let mut tasks = Vec::with_capacity(load.clients);
    for i in 0..load.clients {
        let permits = permits.clone();
        let addr = config.addrs[i % config.addrs.len()];
        let (proto, timeout) = (load.proto, config.connect_timeout);
        let nick = format!("{}{i}", config.nick_prefix);
        let bar = connect_bar.clone();
        let tls = config.tls.get(i % config.addrs.len()).cloned();
        tasks.push(tokio::task::spawn_local(async move {
            let _permit = permits.acquire_owned().await.map_err(io::Error::other)?;
            let client = tokio::time::timeout(timeout, connect_one(addr, tls.as_ref(), proto, &nick))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "registration timed out"))??;
            bar.inc(1);
            Ok::<_, io::Error>(client)
        }));
    }
    let (clients, error) = gather(tasks, "connect or register").await;
    let tls_session = clients.iter().find_map(|(_, said)| said.clone());
    let clients: Vec<Client> = clients.into_iter().map(|(client, _)| client).collect();
    let connect_secs = started.elapsed().as_secs_f64();
    connect_bar.finish();
    let connected = clients.len();
    if connected < load.clients {
        return Ok(failed(connected, connect_secs, 0.0, error));
    }
    if !config.join {
        phases.connected();
        phases.flowed();
        return Ok(LoadOutcome { tls_session, ..failed(connected, connect_secs, 0.0, None) });
    }

    // Phase 2: join the channel, the same number at a time. Each client
    // starts reading as soon as it is in, so the JOIN lines of everyone after
    // it never pile up unread.
    let join_bar = bars.add(ProgressBar::new(load.clients as u64).with_style(style.clone()));
    join_bar.set_prefix("joined");
    let (stop_tx, stop_rx) = watch::channel(false);
    let joining = Instant::now();
    let mut tasks = Vec::with_capacity(connected);
    for (i, client) in clients.into_iter().enumerate() {
        let permits = permits.clone();
        let channel = config.channel.clone();
        let proto = load.proto;
        let timeout = config.connect_timeout;
        let bar = join_bar.clone();
        let me = (i < senders).then_some(i as u32);
        // Senders and a few reference receivers keep the whole order: the
        // order check needs one reference that stayed connected.
        let keep = me.is_some() || (senders..senders + REFERENCES).contains(&i);
        let tally =
            Tally::new(senders as u32, load.messages as u32, me, keep).on_node(i % config.addrs.len());
        let progress = progress[i].clone();
        let shared = shared.clone();
        let stop = stop_rx.clone();
        tasks.push(tokio::task::spawn_local(async move {
            let _permit = permits.acquire_owned().await.map_err(io::Error::other)?;
            let Client { mut reader, writer } = client;
            tokio::time::timeout(timeout, join_channel(&mut reader, &writer, proto, &channel))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "join timed out"))??;
            bar.inc(1);
            let receiving =
                tokio::task::spawn_local(receive(reader, writer.clone(), tally, progress, shared, stop));
            Ok::<_, io::Error>((writer, receiving))
        }));
    }
    let (joined, error) = gather(tasks, "join").await;
    let join_secs = joining.elapsed().as_secs_f64();
    join_bar.finish();
    if joined.len() < connected {
        let _ = stop_tx.send(true);
        return Ok(LoadOutcome { tls_session, ..failed(connected, connect_secs, join_secs, error) });
    }
    let (writers, readers): (Vec<_>, Vec<_>) = joined.into_iter().unzip();
    phases.connected();
    // Made only now: a bar outside `bars` would draw to stderr on its own.
    let deliveries_bar = bars.add(ProgressBar::new(expected_total).with_style(style));
    deliveries_bar.set_prefix("delivered");
    // The bar moves while messages flow, not only once the senders are done.
    let ticking = {
        let (bar, shared) = (deliveries_bar.clone(), shared.clone());
        tokio::task::spawn_local(async move {
            loop {
                bar.set_position(*shared.delivered.borrow());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    // Senders.
    let flow_start = Instant::now();
    let prefix = match load.proto {
        Proto::Irc => format!("PRIVMSG {} :", config.channel),
        Proto::Line => String::new(),
    };
    let mut sending = Vec::with_capacity(senders);
    for (id, writer) in writers.iter().take(senders).enumerate() {
        let pace = (load.rate > 0.0).then(|| Duration::from_secs_f64(senders as f64 / load.rate));
        // Stagger paced senders so the total rate is smooth.
        let offset = pace.map(|p| p.mul_f64(id as f64 / senders as f64));
        sending.push(tokio::task::spawn_local(send(
            writer.clone(),
            progress[id].clone(),
            prefix.clone(),
            id,
            load.messages,
            Pacing { pace, offset, window: load.window },
            shared.clone(),
        )));
    }
    let mut error = None;
    for task in sending {
        match task.await {
            Ok(Ok(())) => {}
            // Its receiving half counts the disconnect and the reason.
            Ok(Err(e)) if closed_by_peer(&e) => {}
            Ok(Err(e)) => {
                error.get_or_insert_with(|| format!("a sender failed: {e}"));
            }
            Err(e) => {
                error.get_or_insert_with(|| format!("a sender task failed: {e}"));
            }
        }
    }
    // Wait for the deliveries: done when every receiver has all it expects
    // or was disconnected, or when none has arrived for a while after the
    // last send. The quiet period counts from the last send, not from the
    // last delivery before it.
    let sent_all = Instant::now();
    let latest = (*shared.last_delivery.borrow()).max(sent_all);
    *shared.last_delivery.borrow_mut() = latest;
    loop {
        if shared.settled.get() >= connected {
            break;
        }
        if shared.last_delivery.borrow().elapsed() >= config.quiet_timeout {
            error.get_or_insert_with(|| {
                format!("deliveries stopped for {:?} before all arrived", config.quiet_timeout)
            });
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    phases.flowed();
    let flow_secs = shared.last_delivery.borrow().saturating_duration_since(flow_start).as_secs_f64();
    ticking.abort();
    deliveries_bar.set_position(*shared.delivered.borrow());
    deliveries_bar.finish();
    let _ = stop_tx.send(true);
    let mut tallies = Vec::with_capacity(connected);
    for reader in readers {
        match reader.await {
            Ok(tally) => tallies.push(tally),
            Err(e) => {
                error.get_or_insert_with(|| format!("a receiver task failed: {e}"));
            }
        }
    }
    for writer in &writers {
        let mut w = writer.lock().await;
        let _ = w.send(b"QUIT :bench done\r\n").await;
    }
    let latency = shared.latency.borrow().clone();
    Ok(LoadOutcome { connected, connect_secs, join_secs, tallies, latency, flow_secs, error, tls_session })
}

/// Awaits tasks; keeps the successes and the first failure's text.
async fn gather<T>(
    tasks: Vec<tokio::task::JoinHandle<io::Result<T>>>,
    what: &str,
) -> (Vec<T>, Option<String>) {
    let mut done = Vec::with_capacity(tasks.len());
    let mut error = None;
    for task in tasks {
        match task.await {
            Ok(Ok(value)) => done.push(value),
            Ok(Err(e)) => {
                error.get_or_insert_with(|| format!("a client failed to {what}: {e}"));
            }
            Err(e) => {
                error.get_or_insert_with(|| format!("a client task failed: {e}"));
            }
        }
    }
    (done, error)
}

/// Reads one client's deliveries until the run stops it or the server
/// closes the connection, which is recorded in the tally with its reason.
async fn receive(
    reader: BufReader<ReadHalf>,
    writer: Rc<Mutex<WriteHalf>>,
    mut tally: Tally,
    progress: Rc<Cell<u64>>,
    shared: Rc<Shared>,
    mut stop: watch::Receiver<bool>,
) -> Tally {
    let mut settled = false;
    let mut settle = || {
        if !std::mem::replace(&mut settled, true) {
            shared.settled.set(shared.settled.get() + 1);
        }
    };
    // The server's closing line, if it sent one before closing.
    let mut closing: Option<String> = None;
    // Read in large chunks and parse lines in place: the generator must stay
    // cheaper per delivery than the server, or it is what gets measured.
    let mut buf = vec![0u8; 64 * 1024];
    let leftover = reader.buffer();
    buf[..leftover.len()].copy_from_slice(leftover);
    let mut end = leftover.len();
    let mut half = reader.into_inner();
    let mut pongs = Vec::new();
    loop {
        let mut start = 0;
        let now_us = shared.base.elapsed().as_micros() as u64;
        let mut arrived = 0u64;
        while let Some(len) = buf[start..end].iter().position(|b| *b == b'\n') {
            let line = &buf[start..start + len];
            start += len + 1;
            if let Some((sender, seq, sent_us)) = parse_message_bytes(line) {
                let _ = shared.latency.borrow_mut().record(now_us.saturating_sub(sent_us).max(1));
                tally.record(sender, seq);
                arrived += 1;
            } else if let Some(token) = line.strip_prefix(b"PING ") {
                pongs.extend_from_slice(b"PONG ");
                pongs.extend_from_slice(token.strip_suffix(b"\r").unwrap_or(token));
                pongs.extend_from_slice(b"\r\n");
            } else if closing.is_none() {
                closing = closing_line(line);
            }
        }
        if arrived > 0 {
            progress.set(progress.get().saturating_add(arrived));
            *shared.delivered.borrow_mut() += arrived;
            *shared.last_delivery.borrow_mut() = Instant::now();
        }
        if tally.delivered() >= tally.expected() {
            settle();
        }
        if !pongs.is_empty() {
            let _ = writer.lock().await.send(&pongs).await;
            pongs.clear();
        }
        // Keep the unfinished line; a line longer than the buffer is dropped.
        buf.copy_within(start..end, 0);
        end -= start;
        if end == buf.len() {
            end = 0;
        }
        let read = tokio::select! {
            read = half.read(&mut buf[end..]) => read,
            _ = stop.changed() => break,
        };
        let gone = match read {
            Ok(n) if n > 0 => {
                end += n;
                half.quickack();
                continue;
            }
            Ok(_) => closing.take().unwrap_or_else(|| "closed without an ERROR line".to_string()),
            Err(e) => closing.take().unwrap_or_else(|| read_error_reason(&e)),
        };
        tally.disconnect(gone);
        progress.set(u64::MAX);
        settle();
        break;
    }
    tally
}

/// When a sender may send: every `pace` from `offset` on (paced), and no
/// further than `window` ahead of the slowest receiver (closed loop).
struct Pacing {
    pace: Option<Duration>,
    offset: Option<Duration>,
    window: Option<u64>,
}

/// Sends `messages` lines, each `prefix` followed by the message's numbers.
async fn send(
    writer: Rc<Mutex<WriteHalf>>,
    own_progress: Rc<Cell<u64>>,
    prefix: String,
    id: usize,
    messages: usize,
    pacing: Pacing,
    shared: Rc<Shared>,
) -> io::Result<()> {
    let mut ticker = match (pacing.pace, pacing.offset) {
        (Some(pace), Some(offset)) => {
            let mut t = tokio::time::interval_at(tokio::time::Instant::now() + offset, pace);
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            Some(t)
        }
        _ => None,
    };
    // Unpaced senders write in batches (one system call per few dozen
    // lines), paced ones a line per tick.
    let batch = if ticker.is_some() { 1 } else { 32 };
    let mut buf = String::with_capacity(64 * batch);
    for seq in 0..messages {
        if let Some(ticker) = ticker.as_mut() {
            ticker.tick().await;
        }
        if seq % batch == 0 {
            // Room for the whole batch first, so no timestamp includes our own wait.
            let count = batch.min(messages - seq) as u64;
            if let Some(window) = pacing.window {
                shared.wait_for_room(count, window).await;
            }
            shared.sent.set(shared.sent.get() + count);
            // A sender never receives its own messages: count them as seen.
            own_progress.set(own_progress.get().saturating_add(count));
        }
        let sent = shared.base.elapsed().as_micros();
        use std::fmt::Write as _;
        let _ = write!(buf, "{prefix}{id} {seq} {sent}\r\n");
        if (seq + 1) % batch == 0 || seq + 1 == messages {
            writer.lock().await.send(buf.as_bytes()).await?;
            buf.clear();
        }
    }
    Ok(())
}

/// How to measure the rate of new clients (see [`handshakes`]).
#[derive(Clone)]
pub(crate) struct HandshakeConfig {
    /// New client `i` connects to `addrs[i % addrs.len()]`.
    pub addrs: Vec<SocketAddr>,
    /// As in [`LoadConfig::tls`].
    pub tls: Vec<ClientTls>,
    pub proto: Proto,
    /// New clients to attempt.
    pub count: usize,
    /// The most attempts left unfinished at once.
    pub in_flight: usize,
    pub nick_prefix: String,
    pub progress: bool,
    /// Give up on one client after this long.
    pub timeout: Duration,
}

/// What the new clients met.
pub(crate) struct HandshakeOutcome {
    pub completed: usize,
    /// Failures by reason ("TLS handshake: ..."), in the order first seen.
    pub failures: Vec<(String, usize)>,
    /// From the first attempt to the last registration.
    pub secs: f64,
    /// Per completed client, µs from its TCP connect's start to 001.
    pub latency: Histogram<u64>,
    /// Per completed client, µs of the TLS handshake alone.
    pub tls_latency: Option<Histogram<u64>>,
    pub peak_in_flight: usize,
    pub tls_session: Option<String>,
}

/// Where a new client got to, for its failure's reason.
#[derive(Clone, Copy)]
enum Stage {
    Connect,
    Tls,
    Register,
}

impl Stage {
    fn name(self) -> &'static str {
        match self {
            Stage::Connect => "TCP connect",
            Stage::Tls => "TLS handshake",
            Stage::Register => "registration",
        }
    }
}

/// An I/O error in a few words, for counting failures by reason.
fn failure_text(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".into(),
        io::ErrorKind::ConnectionReset => "connection reset".into(),
        io::ErrorKind::TimedOut => "timed out".into(),
        io::ErrorKind::UnexpectedEof => "server closed the connection".into(),
        _ => e.to_string(),
    }
}

/// Measures how fast new clients get in: `count` clients, each a new TCP
/// connection, a TLS handshake when configured, and a registration up to
/// 001, after which it quits. The next attempt starts as soon as the
/// previous one's TCP connect is accepted (the rest of a client goes on
/// in its own task), so the server's acceptance sets the pace; at most
/// `in_flight` clients are unfinished at once, which keeps the count of
/// open connections bounded and below the server's listen backlog. A
/// client that fails is counted with its stage and reason, and the
/// measurement goes on.
pub(crate) fn handshakes(config: &HandshakeConfig) -> io::Result<HandshakeOutcome> {
    if config.addrs.is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "no address to connect to"));
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let local = tokio::task::LocalSet::new();
    Ok(local.block_on(&runtime, drive_handshakes(config)))
}

/// What the new clients' tasks share.
struct Arrivals {
    in_flight: Cell<usize>,
    peak_in_flight: Cell<usize>,
    completed: Cell<usize>,
    failures: RefCell<Vec<(String, usize)>>,
    latency: RefCell<Histogram<u64>>,
    tls_latency: RefCell<Histogram<u64>>,
    last_done: Cell<Instant>,
    tls_session: RefCell<Option<String>>,
}

impl Arrivals {
    fn fail(&self, stage: Stage, e: &io::Error) {
        let reason = format!("{}: {}", stage.name(), failure_text(e));
        let mut failures = self.failures.borrow_mut();
        match failures.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, n)) => *n += 1,
            None => failures.push((reason, 1)),
        }
    }

    fn started(&self) {
        self.in_flight.set(self.in_flight.get() + 1);
        self.peak_in_flight.set(self.peak_in_flight.get().max(self.in_flight.get()));
    }

    fn finished(&self) {
        self.in_flight.set(self.in_flight.get() - 1);
    }
}

async fn drive_handshakes(config: &HandshakeConfig) -> HandshakeOutcome {
    let bar = if config.progress {
        ProgressBar::new(config.count as u64)
    } else {
        ProgressBar::with_draw_target(Some(config.count as u64), ProgressDrawTarget::hidden())
    };
    bar.set_style(
        ProgressStyle::with_template("{prefix:>12} [{bar:40}] {human_pos}/{human_len} {per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix("registered");
    let arrivals = Rc::new(Arrivals {
        in_flight: Cell::new(0),
        peak_in_flight: Cell::new(0),
        completed: Cell::new(0),
        failures: RefCell::new(Vec::new()),
        latency: RefCell::new(new_histogram()),
        tls_latency: RefCell::new(new_histogram()),
        last_done: Cell::new(Instant::now()),
        tls_session: RefCell::new(None),
    });
    let permits = Arc::new(Semaphore::new(config.in_flight.max(1)));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(config.count);
    for i in 0..config.count {
        let Ok(permit) = permits.clone().acquire_owned().await else { break };
        arrivals.started();
        let begun = Instant::now();
        let addr = config.addrs[i % config.addrs.len()];
        let tcp = match tokio::time::timeout(config.timeout, crate::bench::client::tcp_connect(addr)).await {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(e)) => {
                arrivals.fail(Stage::Connect, &e);
                arrivals.finished();
                continue;
            }
            Err(_) => {
                arrivals.fail(Stage::Connect, &io::Error::from(io::ErrorKind::TimedOut));
                arrivals.finished();
                continue;
            }
        };
        let tls = config.tls.get(i % config.addrs.len()).cloned();
        let (arrivals, bar) = (arrivals.clone(), bar.clone());
        let (proto, timeout) = (config.proto, config.timeout);
        let nick = format!("{}{i}", config.nick_prefix);
        tasks.push(tokio::task::spawn_local(async move {
            let stage = Cell::new(Stage::Tls);
            let attempt = async {
                let handshake_start = Instant::now();
                let (read, write, session) = crate::bench::client::secure(tcp, tls.as_ref()).await?;
                let tls_us = tls.is_some().then(|| handshake_start.elapsed().as_micros() as u64);
                stage.set(Stage::Register);
                let mut reader = BufReader::new(read);
                let writer = Rc::new(Mutex::new(write));
                writer.lock().await.send(crate::bench::client::hello(proto, &nick).as_bytes()).await?;
                crate::bench::client::read_until(&mut reader, &writer, |line| match proto {
                    Proto::Irc => crate::bench::client::is_numeric(line, "001"),
                    Proto::Line => line.starts_with("*** Welcome"),
                })
                .await?;
                Ok::<_, io::Error>((reader, writer, tls_us, session))
            };
            let result = tokio::time::timeout(timeout, attempt).await;
            arrivals.finished();
            drop(permit);
            match result {
                Ok(Ok((reader, writer, tls_us, session))) => {
                    let now = Instant::now();
                    let _ =
                        arrivals.latency.borrow_mut().record(now.duration_since(begun).as_micros() as u64);
                    if let Some(us) = tls_us {
                        let _ = arrivals.tls_latency.borrow_mut().record(us.max(1));
                    }
                    if arrivals.tls_session.borrow().is_none() {
                        *arrivals.tls_session.borrow_mut() = session;
                    }
                    arrivals.completed.set(arrivals.completed.get() + 1);
                    arrivals.last_done.set(now);
                    bar.inc(1);
                    // Leave as a client does, outside the measurement: QUIT,
                    // then read until the server closes.
                    let _ = writer.lock().await.send(b"QUIT :bench done\r\n").await;
                    let mut half = reader.into_inner();
                    let mut sink = vec![0u8; 4096];
                    let _ = tokio::time::timeout(Duration::from_secs(5), async {
                        while matches!(half.read(&mut sink).await, Ok(n) if n > 0) {}
                    })
                    .await;
                }
                Ok(Err(e)) => arrivals.fail(stage.get(), &e),
                Err(_) => arrivals.fail(stage.get(), &io::Error::from(io::ErrorKind::TimedOut)),
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    bar.finish();
    let secs = arrivals.last_done.get().saturating_duration_since(started).as_secs_f64();
    let tls_latency = (!config.tls.is_empty()).then(|| arrivals.tls_latency.borrow().clone());
    HandshakeOutcome {
        completed: arrivals.completed.get(),
        failures: arrivals.failures.borrow().clone(),
        secs,
        latency: arrivals.latency.borrow().clone(),
        tls_latency,
        peak_in_flight: arrivals.peak_in_flight.get(),
        tls_session: arrivals.tls_session.borrow().clone(),
    }
}
