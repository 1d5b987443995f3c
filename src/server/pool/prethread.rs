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
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;

use mio::{Events, Poll, Token, Waker};

use crate::server::pool::keeper::Keeper;
use nix::unistd::getpid;

use crate::server::pool::log::{CellId, DEFAULT_CAPACITY, KEEPER, Log, MAX_CELLS, Wake};
use crate::server::pool::worker::{self, Exit, WAKE, WorkerSetup};
use crate::server::{Config, Shutdown};

/// One waker per cell; a worker installs its own when its poll exists.
struct Wakers(RwLock<Vec<Option<Arc<Waker>>>>);

impl Wakers {
    fn set(&self, cell: CellId, waker: Option<Arc<Waker>>) {
        self.0.write().unwrap_or_else(|p| p.into_inner())[cell.index()] = waker;
    }
}

impl Wake for Wakers {
    fn wake(&self, cell: CellId) {
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

pub fn run(config: Config, listeners: Vec<TcpListener>, mut shutdown: Shutdown) -> io::Result<()> {
    let shared = Arc::new(Shared {
        log: Log::on_heap(DEFAULT_CAPACITY),
        wakers: Wakers(RwLock::new(vec![None; MAX_CELLS])),
        config: Arc::new(config),
        shutdown: AtomicBool::new(false),
    });
    let log = &shared.log;

    const SHUTDOWN: Token = Token(0);
    let mut poll = Poll::new()?;
    shutdown.register(poll.registry(), SHUTDOWN)?;
    shared.wakers.set(KEEPER, Some(Arc::new(Waker::new(poll.registry(), WAKE)?)));
    log.open_cell(KEEPER, getpid(), 0);
    let mut keeper = Keeper::new(shared.config.info.clone());

    // The listening sockets stay here; each worker thread gets its own
    // handle on one, so a replacement can take over its predecessor's socket
    // (and the connections queued on it).
    let mut threads: Vec<Option<JoinHandle<io::Result<Exit>>>> = (0..MAX_CELLS).map(|_| None).collect();
    for (n, listener) in listeners.iter().enumerate() {
        let cell = CellId::worker(n + 1);
        threads[cell.index()] = Some(spawn_worker(&shared, &keeper, cell, listener.try_clone()?)?);
    }

    let mut events = Events::with_capacity(16);
    loop {
        keeper.wait(log, &mut poll, &mut events)?;
        if shutdown.requested() {
            break;
        }
        if shutdown.reload_requested() {
            keeper.reload(log, &shared.wakers, &shared.config);
        }
        for (n, listener) in listeners.iter().enumerate() {
            let cell = CellId::worker(n + 1);
            let thread = &mut threads[cell.index()];
            if !thread.as_ref().is_some_and(|t| t.is_finished()) {
                continue;
            }
            match thread.take().expect("checked").join() {
                Ok(Ok(exit)) => tracing::warn!(%cell, ?exit, "worker thread ended; replacing it"),
                Ok(Err(e)) => tracing::error!(%cell, "worker thread failed: {e}; replacing it"),
                Err(_) => tracing::error!(%cell, "worker thread panicked; replacing it"),
            }
            keeper.bury(log, &shared.wakers, cell, "Worker lost");
            *thread = Some(spawn_worker(&shared, &keeper, cell, listener.try_clone()?)?);
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
    Ok(())
}

fn spawn_worker(
    shared: &Arc<Shared>,
    keeper: &Keeper,
    cell: CellId,
    listener: TcpListener,
) -> io::Result<JoinHandle<io::Result<Exit>>> {
    let generation = shared.log.open_cell(cell, getpid(), keeper.cursor());
    let state = keeper.state.clone();
    let setup = WorkerSetup {
        cell,
        generation,
        start: keeper.cursor(),
        state,
        listener,
        config: shared.config.clone(),
        label: format!("worker {cell}, pid {}", getpid()),
    };
    let shared = shared.clone();
    std::thread::Builder::new().name(format!("worker-{cell}")).spawn(move || {
        let poll = Poll::new()?;
        shared.wakers.set(cell, Some(Arc::new(Waker::new(poll.registry(), WAKE)?)));
        let exit =
            worker::run(setup, &shared.log, &shared.wakers, poll, || shared.shutdown.load(Ordering::SeqCst));
        shared.wakers.set(cell, None);
        exit
    })
}
