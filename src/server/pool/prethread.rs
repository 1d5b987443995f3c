//! The prethread model: a pool of worker threads made at start-up, each
//! running the event-loop worker (`worker.rs`) with its own `mio::Poll`, its
//! own SO_REUSEPORT listening socket and its own connections. Workers share
//! chat state only through the event log, which lives on the heap; a worker
//! about to sleep is woken by a `mio::Waker` when another appends.
//!
//! The main thread is the keeper (`keeper.rs`): it follows the log, catches
//! SIGINT/SIGTERM (and SIGHUP, to reload), and replaces a worker whose thread ended (evicted for not
//! reading the log, or panicked) with a new thread started from the
//! keeper's replica, after publishing that the old one's users are gone.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token, Waker};
use tokio::sync::Notify;

use crate::chat::State;
use crate::server::node::NodeSpace;
use crate::server::pool::keeper::Keeper;
use nix::unistd::getpid;

use crate::server::cluster::{self, Bridge, BridgeError, ClusterConfig, Joined, Names};
use crate::server::listener::{Listening, clone_set};
use crate::server::pool::bridged::PoolSide;
use crate::server::pool::log::{BRIDGE, CellId, DEFAULT_CAPACITY, KEEPER, Log, MAX_CELLS, Wake};
use crate::server::pool::worker::{self, Exit, WAKE, WorkerSetup};
use crate::server::{Config, Shutdown};

/// One waker per cell; a worker installs its own when its poll exists.
/// A cluster node's bridge (an async task) is woken through its own bell.
struct Wakers(RwLock<Vec<Option<Arc<Waker>>>>, Arc<Notify>);

impl Wakers {
    fn set(&self, cell: CellId, waker: Option<Arc<Waker>>) {
        self.0.write().unwrap_or_else(|p| p.into_inner())[cell.index()] = waker;
    }
}

impl Wake for Wakers {
    fn wake(&self, cell: CellId) {
        if cell == BRIDGE {
            self.1.notify_one();
            return;
        }
        if let Some(waker) = &self.0.read().unwrap_or_else(|p| p.into_inner())[cell.index()] {
            let _ = waker.wake();
        }
    }
}

struct Shared {
    log: Log,
    wakers: Wakers,
    config: Arc<Config>,
    shutdown: AtomicBool,
}

pub fn run(config: Config, listeners: Vec<Vec<Listening>>, mut shutdown: Shutdown) -> io::Result<()> {
    let shared = Arc::new(Shared {
        log: Log::on_heap(DEFAULT_CAPACITY),
        wakers: Wakers(RwLock::new(vec![None; MAX_CELLS]), Arc::new(Notify::new())),
        config: Arc::new(config),
        shutdown: AtomicBool::new(false),
    });
    let log = &shared.log;

    const SHUTDOWN: Token = Token(0);
    let mut poll = Poll::new()?;
    shutdown.register(poll.registry(), SHUTDOWN)?;
    shared.wakers.set(KEEPER, Some(Arc::new(Waker::new(poll.registry(), WAKE)?)));
    log.open_cell(KEEPER, getpid(), 0);
    // A cluster node joins the network first: that gives its numbering.
    let (space, directory, mut bridge) = match &shared.config.cluster {
        None => (NodeSpace::ALONE, State::new(shared.config.info.clone()), None),
        Some(cluster) => {
            let (joined, directory, bridge) = start_bridge(&shared, cluster)?;
            (joined.space, directory, Some(bridge))
        }
    };
    let mut keeper = Keeper::new(directory, space);

    // The listening sockets stay here; each worker thread gets its own
    // handle on one, so a replacement can take over its predecessor's socket
    // (and the connections queued on it). Every worker's descriptors are
    // taken before any worker accepts a client, which could use them up.
    let mut threads: Vec<Option<JoinHandle<io::Result<Exit>>>> = (0..MAX_CELLS).map(|_| None).collect();
    let provisions = listeners.iter().map(|set| Provisions::take(set)).collect::<io::Result<Vec<_>>>()?;
    for (n, provisions) in provisions.into_iter().enumerate() {
        let cell = CellId::worker(n + 1);
        threads[cell.index()] = Some(spawn_worker(&shared, &keeper, cell, provisions)?);
    }

    let mut events = Events::with_capacity(16);
    let mut starved = StarvedWarning::default();
    let mut failure = None;
    loop {
        keeper.wait(log, &mut poll, &mut events)?;
        if shutdown.requested() {
            break;
        }
        if bridge.as_ref().is_some_and(|b| b.is_finished()) {
            let why = match bridge.take().expect("checked").join() {
                Ok(Ok(())) => "it stopped".to_string(),
                Ok(Err(e)) => e.to_string(),
                Err(_) => "it panicked".to_string(),
            };
            tracing::error!("the bridge to the network ended: {why}; stopping");
            failure = Some(io::Error::other(format!("the bridge to the network ended: {why}")));
            break;
        }
        if shutdown.reload_requested() {
            keeper.reload(log, &shared.wakers, &shared.config);
        }
        for (n, listener) in listeners.iter().enumerate() {
            let cell = CellId::worker(n + 1);
            let thread = &mut threads[cell.index()];
            if let Some(running) = thread {
                if !running.is_finished() {
                    continue;
                }
                match thread.take().expect("checked").join() {
                    Ok(Ok(exit)) => tracing::warn!(%cell, ?exit, "worker thread ended; replacing it"),
                    Ok(Err(e)) => tracing::error!(%cell, "worker thread failed: {e}; replacing it"),
                    Err(_) => tracing::error!(%cell, "worker thread panicked; replacing it"),
                }
                keeper.bury(log, &shared.wakers, cell, "Worker lost");
            }
            // Out of descriptors (other workers' clients hold them all),
            // the replacement waits for some to be given back: the server
            // goes on with the workers it has.
            match Provisions::take(listener).and_then(|p| spawn_worker(&shared, &keeper, cell, p)) {
                Ok(started) => *thread = Some(started),
                Err(e) => starved.note(cell, &e),
            }
        }
    }

    tracing::info!("shutting down");
    shared.shutdown.store(true, Ordering::SeqCst);
    for cell in CellId::workers() {
        shared.wakers.wake(cell);
    }
    for thread in threads.into_iter().flatten() {
        let _ = thread.join();
    }
    failure.map_or(Ok(()), Err)
}

/// The bridge's thread, which ends only when the node must stop.
type BridgeThread = JoinHandle<Result<(), BridgeError>>;

/// Joins the network (on a runtime of its own) and starts the bridge's
/// thread on it, as the log's `BRIDGE` cell, before any worker appends.
fn start_bridge(shared: &Arc<Shared>, cluster: &ClusterConfig) -> io::Result<(Joined, State, BridgeThread)> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let names = Names::for_network(&shared.config.info.network);
    let (nats, joined, state) =
        runtime.block_on(cluster::join(cluster, &names, shared.config.info.clone()))?;
    shared.log.open_cell(BRIDGE, getpid(), 0);
    let (shared, cluster, directory) = (shared.clone(), cluster.clone(), state.clone());
    let thread = std::thread::Builder::new().name("bridge".into()).spawn(move || {
        let bell = shared.wakers.1.clone();
        let side = PoolSide::new(&shared.log, &shared.wakers, 0, bell);
        runtime.block_on(Bridge::new(nats, cluster, joined, directory, side).run())
    })?;
    Ok((joined, state, thread))
}

/// What a worker thread holds that takes descriptors: its handle on the
/// listening socket, its poll and its waker. Taken by the keeper before the
/// thread starts, so that running out of descriptors is the keeper's to
/// handle (at start-up, fail; when replacing a worker, try again later),
/// not a thread that dies as it starts.
struct Provisions {
    listeners: Vec<Listening>,
    poll: Poll,
    waker: Arc<Waker>,
}

impl Provisions {
    fn take(listeners: &[Listening]) -> io::Result<Provisions> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKE)?);
        Ok(Provisions { listeners: clone_set(listeners)?, poll, waker })
    }
}

/// Says, at most every [`STARVED_WARNING_EVERY`], that a worker could not
/// be started for want of descriptors (the keeper retries every turn).
#[derive(Default)]
struct StarvedWarning {
    last: Option<Instant>,
}

const STARVED_WARNING_EVERY: Duration = Duration::from_secs(10);

impl StarvedWarning {
    fn note(&mut self, cell: CellId, error: &io::Error) {
        let now = Instant::now();
        if self.last.is_none_or(|at| now.duration_since(at) >= STARVED_WARNING_EVERY) {
            self.last = Some(now);
            tracing::warn!(%cell, "cannot start a worker yet: {error}; retrying");
        }
    }
}

fn spawn_worker(
    shared: &Arc<Shared>,
    keeper: &Keeper,
    cell: CellId,
    provisions: Provisions,
) -> io::Result<JoinHandle<io::Result<Exit>>> {
    let generation = shared.log.open_cell(cell, getpid(), keeper.cursor());
    let state = keeper.state.clone();
    let Provisions { listeners, poll, waker } = provisions;
    let setup = WorkerSetup {
        cell,
        generation,
        space: keeper.space(),
        start: keeper.cursor(),
        state,
        listeners,
        config: shared.config.clone(),
        label: format!("worker {cell}, pid {}", getpid()),
    };
    // Installed before the thread runs: a stop asked for from now on
    // wakes it.
    shared.wakers.set(cell, Some(waker));
    let spawned = std::thread::Builder::new().name(format!("worker-{cell}")).spawn({
        let shared = shared.clone();
        move || {
            let exit = worker::run(setup, &shared.log, &shared.wakers, poll, || {
                shared.shutdown.load(Ordering::SeqCst)
            });
            shared.wakers.set(cell, None);
            exit
        }
    });
    if spawned.is_err() {
        // No thread reads the cell: it must not gate writers.
        shared.wakers.set(cell, None);
        shared.log.vacate(cell);
    }
    spawned
}
