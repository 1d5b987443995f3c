//! The prefork model: a supervisor process forks a pool of worker
//! processes that run the same event-loop worker as prethread.
//!
//! What is shared, and how:
//! - **The event log** lives in a `MAP_SHARED` anonymous mapping made
//!   before any fork, so every worker reads and writes the same ring. It is
//!   the only chat state the processes share; each keeps its own replica.
//! - **Listening sockets**: one SO_REUSEPORT socket per worker, bound by the
//!   supervisor and inherited across fork. The supervisor keeps them open,
//!   so a replacement worker inherits its predecessor's socket.
//! - **Wake-ups**: a worker about to sleep says so in its log cell; a writer
//!   sends SIGUSR1 only to workers that said so. SIGUSR1 (and SIGTERM) are
//!   blocked and read from a `signalfd` inside the worker's poll loop, so no
//!   work happens in signal context and no wake-up is lost.
//!
//! The supervisor is the log keeper (cell 0): it follows the log with an
//! observer replica. When a worker dies (SIGCHLD, reaped with `waitpid`), the
//! supervisor repairs what it left in the log, publishes that its users are
//! gone, and forks a replacement, which starts from the supervisor's replica
//! (fork copies it) at the supervisor's log position. A worker evicted for
//! not reading the log is killed and replaced the same way. On SIGHUP the
//! supervisor rereads the configuration and appends the new settings to
//! the log (`reload`): every worker installs them in log order, and a
//! replacement forked later has them in the replica it starts from. On
//! SIGINT or SIGTERM the supervisor asks every worker to stop (each sends
//! its clients a closing line), waits for them with a deadline, kills what
//! is left, reaps every child, unmaps the log and only then exits. Workers
//! ask the kernel for SIGTERM if the supervisor dies (PR_SET_PDEATHSIG).
//!
//! A cluster node (`server::cluster`) also forks a **bridge** process, the
//! log's `BRIDGE` cell, before any worker: it alone runs an async runtime
//! and talks to NATS. The supervisor joins the network first, on a runtime
//! it drops again before forking, so that it stays single-threaded (what
//! makes its forks safe); the bridge connects anew. The bridge ending
//! (this node declared lost, or NATS gone for good) ends the node.

use std::collections::HashMap;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, getpid, getppid};
use tokio::signal::unix::{SignalKind, signal};

use crate::chat::State;
use crate::server::Config;
use crate::server::cluster::{self, Bridge, BridgeError, ClusterConfig, Joined, Names};
use crate::server::connection::CLOSE_GRACE;
use crate::server::listener::{Listening, clone_set};
use crate::server::node::NodeSpace;
use crate::server::pool::bridged::PoolSide;
use crate::server::pool::keeper::Keeper;
use crate::server::pool::log::{BRIDGE, CellId, CellStatus, DEFAULT_CAPACITY, KEEPER, Log, Wake};
use crate::server::pool::worker::{self, WAKE, WorkerSetup};

/// Wakes a cell by sending SIGUSR1 to the process recorded in it.
struct SignalWake<'a>(&'a Log);

impl Wake for SignalWake<'_> {
    fn wake(&self, cell: CellId) {
        // No pid recorded yet: signalling pid 0 would reach our whole
        // process group, so never.
        if let Some(pid) = self.0.pid(cell) {
            let _ = kill(pid, Signal::SIGUSR1);
        }
    }
}

/// Opens a non-blocking signalfd for `signals`, which must be blocked.
fn signal_fd(signals: &[Signal]) -> io::Result<SignalFd> {
    let mut mask = SigSet::empty();
    for s in signals {
        mask.add(*s);
    }
    SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC).map_err(io::Error::from)
}

/// Reads every queued signal number.
fn pending_signals(fd: &SignalFd) -> Vec<i32> {
    let mut got = Vec::new();
    while let Ok(Some(info)) = fd.read_signal() {
        got.push(info.ssi_signo as i32);
    }
    got
}

struct Supervisor {
    config: Arc<Config>,
    log: Log,
    listeners: Vec<Vec<Listening>>,
    keeper: Keeper,
    children: HashMap<Pid, CellId>,
    supervisor_pid: Pid,
}

/// Every signal the supervisor answers. Blocked, and read from a signalfd;
/// children inherit the mask, so SIGHUP sent to a whole process group
/// stays pending in a worker, unharmed, while the supervisor reloads.
const SUPERVISOR_SIGNALS: [Signal; 5] =
    [Signal::SIGCHLD, Signal::SIGINT, Signal::SIGTERM, Signal::SIGUSR1, Signal::SIGHUP];

/// Blocks the supervisor's signals in the calling thread. Before the
/// server says it listens, so that a signal sent by whoever read that
/// waits for the supervisor rather than taking its default action (which,
/// for SIGHUP, would end the process); again in `run`, which a program may
/// call without that.
pub fn block_signals() -> io::Result<()> {
    let mut mask = SigSet::empty();
    for s in SUPERVISOR_SIGNALS {
        mask.add(s);
    }
    mask.thread_block().map_err(io::Error::from)
}

pub fn run(config: Config, listeners: Vec<Vec<Listening>>) -> io::Result<()> {
    // Before any child exists: children inherit the mask, and each reads
    // its own signals through a signalfd.
    block_signals()?;
    let signals = signal_fd(&SUPERVISOR_SIGNALS)?;

    let config = Arc::new(config);
    let (space, directory, clustered) = match &config.cluster {
        None => (NodeSpace::ALONE, State::new(config.info.clone()), None),
        Some(cluster) => {
            let (joined, directory) = join_single_threaded(cluster, &config)?;
            (joined.space, directory, Some((cluster.clone(), joined)))
        }
    };
    let mut sup = Supervisor {
        keeper: Keeper::new(directory, space),
        config,
        log: Log::shared(DEFAULT_CAPACITY)?,
        listeners,
        children: HashMap::new(),
        supervisor_pid: getpid(),
    };
    sup.log.open_cell(KEEPER, getpid(), 0);
    if let Some((cluster, joined)) = clustered {
        sup.spawn_bridge(cluster, joined)?;
    }
    for n in 1..=sup.listeners.len() {
        sup.spawn(CellId::worker(n))?;
    }

    const SIGNALS: Token = Token(0);
    let mut poll = Poll::new()?;
    poll.registry().register(&mut SourceFd(&signals.as_raw_fd()), SIGNALS, Interest::READABLE)?;
    let mut events = Events::with_capacity(8);
    let mut killed: Vec<Pid> = Vec::new();
    let mut failure = None;
    loop {
        sup.keeper.wait(&sup.log, &mut poll, &mut events)?;
        let got = pending_signals(&signals);
        if got.contains(&(Signal::SIGINT as i32)) || got.contains(&(Signal::SIGTERM as i32)) {
            break;
        }
        if got.contains(&(Signal::SIGHUP as i32)) {
            sup.keeper.reload(&sup.log, &SignalWake(&sup.log), &sup.config);
        }
        if let Err(e) = sup.reap_and_replace() {
            tracing::error!("{e}; stopping");
            failure = Some(e);
            break;
        }
        // A worker that stopped reading the log was evicted by a writer: it
        // may be stopped or stuck, so kill it; reaping replaces it.
        for (pid, cell) in &sup.children {
            if sup.log.status(*cell) == CellStatus::Evicted && !killed.contains(pid) {
                tracing::warn!(%cell, pid = pid.as_raw(), "killing a worker that stopped reading the log");
                let _ = kill(*pid, Signal::SIGKILL);
                killed.push(*pid);
            }
        }
        killed.retain(|pid| sup.children.contains_key(pid));
    }
    sup.shut_down();
    failure.map_or(Ok(()), Err)
}

/// Joins the network on a runtime dropped again before returning: the
/// supervisor forks, and a fork is safe only while it has one thread.
fn join_single_threaded(cluster: &ClusterConfig, config: &Config) -> io::Result<(Joined, State)> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let names = Names::for_network(&config.info.network);
    let (nats, joined, directory) = runtime.block_on(cluster::join(cluster, &names, config.info.clone()))?;
    drop(nats);
    runtime.shutdown_timeout(Duration::from_secs(1));
    Ok((joined, directory))
}

impl Supervisor {
    /// Forks a worker into `cell`, starting from the keeper's replica.
    fn spawn(&mut self, cell: CellId) -> io::Result<()> {
        self.keeper.drain(&self.log);
        let start = self.keeper.cursor();
        let generation = self.log.open_cell(cell, Pid::from_raw(0), start);
        // SAFETY: the supervisor is single-threaded (it never spawns a
        // thread), so the child is a faithful copy with no lock held by a
        // thread that no longer exists; the child never returns into the
        // supervisor's code (it exits from `worker_main`).
        match unsafe { fork() }.map_err(io::Error::from)? {
            ForkResult::Child => self.worker_main(cell, generation, start),
            ForkResult::Parent { child } => {
                self.log.set_pid(cell, child);
                self.children.insert(child, cell);
                tracing::info!(%cell, pid = child.as_raw(), generation, "worker started");
                Ok(())
            }
        }
    }

    /// The child's whole life; never returns.
    fn worker_main(&mut self, cell: CellId, generation: u32, start: u64) -> ! {
        let code = match self.serve_as_worker(cell, generation, start) {
            Ok(()) => 0,
            Err(e) => {
                tracing::error!(%cell, "worker failed: {e}");
                1
            }
        };
        std::process::exit(code)
    }

    fn serve_as_worker(&mut self, cell: CellId, generation: u32, start: u64) -> io::Result<()> {
        nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).map_err(io::Error::from)?;
        if getppid() != self.supervisor_pid {
            // The supervisor died before we could ask to be told.
            return Ok(());
        }
        self.log.set_pid(cell, getpid());
        let signals = signal_fd(&[Signal::SIGUSR1, Signal::SIGTERM])?;
        let poll = Poll::new()?;
        poll.registry().register(&mut SourceFd(&signals.as_raw_fd()), WAKE, Interest::READABLE)?;
        let state = self.keeper.state.clone();
        let setup = WorkerSetup {
            cell,
            generation,
            space: self.keeper.space(),
            start,
            state,
            listeners: clone_set(&self.listeners[cell.index() - 1])?,
            config: self.config.clone(),
            label: format!("worker {cell}, pid {}", getpid()),
        };
        let exit = worker::run(setup, &self.log, &SignalWake(&self.log), poll, || {
            pending_signals(&signals).contains(&(Signal::SIGTERM as i32))
        })?;
        tracing::debug!(%cell, ?exit, "worker stopped");
        Ok(())
    }

    /// Forks the bridge (cluster mode) into the log's `BRIDGE` cell; its
    /// replica starts from the keeper's (the directory the node joined).
    fn spawn_bridge(&mut self, cluster: ClusterConfig, joined: Joined) -> io::Result<()> {
        self.log.open_cell(BRIDGE, Pid::from_raw(0), 0);
        // SAFETY: as for a worker (`spawn`): the supervisor has one thread
        // (it joined the network on a runtime it has dropped), and the
        // child never returns into the supervisor's code.
        match unsafe { fork() }.map_err(io::Error::from)? {
            ForkResult::Child => {
                let code = match self.serve_as_bridge(cluster, joined) {
                    Ok(()) => 0,
                    Err(e) => {
                        tracing::error!("bridge: {e}");
                        1
                    }
                };
                std::process::exit(code)
            }
            ForkResult::Parent { child } => {
                self.log.set_pid(BRIDGE, child);
                self.children.insert(child, BRIDGE);
                tracing::info!(pid = child.as_raw(), "bridge started");
                Ok(())
            }
        }
    }

    /// The bridge process's life: its own runtime, a new connection to
    /// NATS, woken by SIGUSR1 and stopped by SIGTERM, which its runtime
    /// handles (they are unblocked only once its handlers are in place, so
    /// one sent earlier waits rather than killing the bridge).
    fn serve_as_bridge(&mut self, cluster: ClusterConfig, joined: Joined) -> Result<(), BridgeError> {
        nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).map_err(io::Error::from)?;
        if getppid() != self.supervisor_pid {
            return Ok(());
        }
        self.log.set_pid(BRIDGE, getpid());
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        runtime.block_on(async {
            let names = Names::for_network(&self.config.info.network);
            let nats = cluster::connect(&cluster, &names).await?;
            let bell = signal(SignalKind::user_defined1())?;
            let mut stop = signal(SignalKind::terminate())?;
            let mut handled = SigSet::empty();
            handled.add(Signal::SIGUSR1);
            handled.add(Signal::SIGTERM);
            handled.thread_unblock().map_err(io::Error::from)?;
            let wake = SignalWake(&self.log);
            let side = PoolSide::new(&self.log, &wake, 0, bell);
            let state = self.keeper.state.clone();
            tokio::select! {
                ended = Bridge::new(nats, cluster, joined, state, side).run() => ended,
                _ = stop.recv() => Ok(()),
            }
        })
    }

    /// Reaps every exited child; each dead worker is buried and replaced.
    /// The bridge's end is the node's: an error.
    fn reap_and_replace(&mut self) -> io::Result<()> {
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, _)) | Ok(WaitStatus::Signaled(pid, _, _)) => {
                    let Some(cell) = self.children.remove(&pid) else { continue };
                    if cell == BRIDGE {
                        return Err(io::Error::other("the bridge to the network ended"));
                    }
                    tracing::warn!(%cell, pid = pid.as_raw(), "worker died; replacing it");
                    self.keeper.bury(&self.log, &SignalWake(&self.log), cell, "Worker lost");
                    self.spawn(cell)?;
                }
                Ok(WaitStatus::StillAlive) | Err(nix::errno::Errno::ECHILD) => return Ok(()),
                Ok(_) => continue,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Stops every worker (SIGTERM, then SIGKILL after a deadline) and
    /// reaps them all.
    fn shut_down(&mut self) {
        tracing::info!(workers = self.children.len(), "shutting down");
        for pid in self.children.keys() {
            let _ = kill(*pid, Signal::SIGTERM);
        }
        // Workers need up to CLOSE_GRACE to get their closing lines out.
        let deadline = Instant::now() + CLOSE_GRACE + Duration::from_secs(1);
        while !self.children.is_empty() && Instant::now() < deadline {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, _)) | Ok(WaitStatus::Signaled(pid, _, _)) => {
                    self.children.remove(&pid);
                }
                Ok(WaitStatus::StillAlive) => std::thread::sleep(Duration::from_millis(10)),
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(_) => break,
            }
            // Keep following the log so no worker waits on the keeper.
            self.keeper.drain(&self.log);
        }
        for (pid, cell) in self.children.drain() {
            tracing::warn!(%cell, pid = pid.as_raw(), "worker did not stop in time; killing it");
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
        }
        tracing::info!("all workers stopped");
    }
}
