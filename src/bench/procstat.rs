//! The server's resource use as seen from outside, through /proc, plus the
//! few facts about this process and machine that the report needs.
//!
//! Why it is shaped so: the server under test may be any process (a chatter
//! model or a peer such as ngircd) and may be a tree (prefork), so nothing
//! is asked of it; its PID is enough. Each reading walks /proc for the
//! PID's descendants and sums over them, because a prefork server's work is
//! spread over its children. The text formats are parsed by pure functions
//! so they can be tested on fixtures; only the thin `sample_tree` and
//! `machine` touch the file system. Readings are best-effort: processes and
//! threads come and go while /proc is read, and whatever vanished mid-read
//! is left out rather than failing the whole reading.
//!
//! A server may also be several trees (the nodes of a cluster, and the
//! nats-server carrying their log): a [`Sampler`] reads all of them at
//! each tick, so a peak of their sum is a peak of one moment's readings,
//! not a sum of peaks from different moments. [`machine_busy_ticks`] reads
//! the whole machine's busy time, so that a run can say how much CPU
//! processes other than the ones it measures took meanwhile (on a shared
//! machine, whether the run was disturbed).
//!
//! What the sums mean, and their limits:
//! - `cpu_ticks` is utime + stime of each live process (all its threads,
//!   including exited ones). A descendant that exits takes its ticks out of
//!   the sum, so deltas over a run assume the tree is stable.
//! - `rss_bytes` adds VmRSS, so pages shared between a prefork parent and
//!   its children are counted once per process: an upper bound.
//! - `context_switches` sums every *live* thread's counters; a thread that
//!   has exited is no longer counted, so the total can go down between
//!   readings (use a saturating difference).

use std::collections::HashMap;
use std::fs;
use std::io;
use std::num::NonZero;
use std::str::FromStr;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use nix::sys::resource::{UsageWho, getrusage};
use nix::sys::time::TimeVal;
use nix::unistd::{SysconfVar, sysconf};

use crate::bench::results::Machine;

/// One reading of a process tree (a PID and all its descendants).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    pub processes: usize,
    pub threads: usize,
    /// utime + stime summed, in clock ticks (see [`ticks_per_second`]).
    pub cpu_ticks: u64,
    /// VmRSS summed.
    pub rss_bytes: u64,
    /// Voluntary + nonvoluntary summed over every live thread.
    pub context_switches: u64,
    pub open_fds: usize,
}

/// The fields of /proc/PID/stat that a reading uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatFields {
    pub ppid: u32,
    /// Clock ticks in user mode.
    pub utime: u64,
    /// Clock ticks in kernel mode.
    pub stime: u64,
    pub num_threads: usize,
}

/// Parses /proc/PID/stat. `None` if the text is not a whole stat line.
///
/// The second field is the command name in parentheses, and the name itself
/// may contain spaces and parentheses; only the *last* ')' is sure to close
/// it, so the numbered fields are counted from there.
pub fn parse_stat(text: &str) -> Option<StatFields> {
    let (head, tail) = text.rsplit_once(')')?;
    head.split_once('(')?;
    let fields: Vec<&str> = tail.split_whitespace().collect();
    // proc(5) numbers fields from 1 and the tail starts at field 3 (state).
    let field = |number: usize| fields.get(number - 3).copied();
    Some(StatFields {
        ppid: field(4)?.parse().ok()?,
        utime: field(14)?.parse().ok()?,
        stime: field(15)?.parse().ok()?,
        num_threads: field(20)?.parse().ok()?,
    })
}

/// The fields of /proc/PID/status (or /proc/PID/task/TID/status) a reading uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatusFields {
    pub vm_rss_kb: u64,
    pub threads: usize,
    pub voluntary: u64,
    pub nonvoluntary: u64,
}

/// Parses /proc/PID/status. Absent or unreadable fields are zero, because
/// some legitimately are absent: kernel threads and zombies have no VmRSS.
pub fn parse_status(text: &str) -> StatusFields {
    let mut out = StatusFields::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else { continue };
        match key {
            "VmRSS" => out.vm_rss_kb = first_number(value),
            "Threads" => out.threads = first_number(value),
            "voluntary_ctxt_switches" => out.voluntary = first_number(value),
            "nonvoluntary_ctxt_switches" => out.nonvoluntary = first_number(value),
            _ => {}
        }
    }
    out
}

fn first_number<T: FromStr + Default>(value: &str) -> T {
    value.split_whitespace().next().and_then(|v| v.parse().ok()).unwrap_or_default()
}

/// The machine's busy clock ticks since boot, all CPUs, from the first
/// line of /proc/stat: everything but idle and iowait (steal included: a
/// core the hypervisor gave to someone else was not ours either).
pub fn parse_busy_ticks(text: &str) -> Option<u64> {
    let line = text.lines().find(|line| line.starts_with("cpu "))?;
    let fields: Vec<u64> = line.split_whitespace().skip(1).map(|f| f.parse().ok()).collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal [guest guest_nice],
    // where guest time is already counted in user.
    let total: u64 = fields.iter().take(8).sum();
    let idle = fields.get(3)? + fields.get(4).copied().unwrap_or(0);
    Some(total - idle)
}

/// The machine's busy clock ticks since boot (see [`parse_busy_ticks`]);
/// `None` if /proc/stat cannot be read.
pub fn machine_busy_ticks() -> Option<u64> {
    parse_busy_ticks(&fs::read_to_string("/proc/stat").ok()?)
}

/// MemTotal from /proc/meminfo, in bytes (the file says kB, meaning KiB).
pub fn parse_meminfo_total(text: &str) -> Option<u64> {
    let line = text.lines().find_map(|line| line.strip_prefix("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().next()?.parse().ok()?;
    Some(kib * 1024)
}

/// The first "model name" in /proc/cpuinfo. Some architectures (many ARM
/// kernels) have none, hence the `Option`.
pub fn parse_cpu_model(text: &str) -> Option<String> {
    text.lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(key, _)| key.trim() == "model name")
        .map(|(_, value)| value.trim().to_string())
        .filter(|model| !model.is_empty())
}

fn read_stat(pid: u32) -> io::Result<StatFields> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_stat(&text)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("bad /proc/{pid}/stat")))
}

/// `root` and its descendants, each with its stat, root first and every
/// parent before its children.
///
/// /proc has no cheap "children of" that is always there
/// (/proc/PID/task/TID/children depends on a kernel option), so this reads
/// every process's ppid. Listing /proc shows only thread-group leaders, and
/// ppid is the parent's thread-group id, so threads never appear as
/// processes.
fn tree(root: u32) -> io::Result<Vec<(u32, StatFields)>> {
    let root_stat = read_stat(root)?;
    let mut children: HashMap<u32, Vec<(u32, StatFields)>> = HashMap::new();
    for entry in fs::read_dir("/proc")?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else {
            continue;
        };
        if pid == root {
            continue;
        }
        if let Ok(stat) = read_stat(pid) {
            children.entry(stat.ppid).or_default().push((pid, stat));
        }
    }
    let mut out = vec![(root, root_stat)];
    let mut next = 0;
    // Each parent's children are taken out once, so even an inconsistent
    // picture (a PID reused while /proc was being read) cannot loop.
    while let Some(&(pid, _)) = out.get(next) {
        if let Some(kids) = children.remove(&pid) {
            out.extend(kids);
        }
        next += 1;
    }
    Ok(out)
}

/// Reads `root` and all its descendants. Fails only if `root` itself cannot
/// be read (it does not exist, or /proc cannot be opened: note that a load
/// generator at its open-files limit cannot read /proc either).
pub fn sample_tree(root: u32) -> io::Result<Sample> {
    let mut sample = Sample::default();
    for (pid, stat) in tree(root)? {
        // The status read doubles as the "still there?" check, so a process
        // that has gone contributes nothing rather than half a reading.
        let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) else { continue };
        sample.processes += 1;
        sample.threads += stat.num_threads;
        sample.cpu_ticks += stat.utime + stat.stime;
        sample.rss_bytes += parse_status(&status).vm_rss_kb * 1024;
        sample.context_switches += thread_switches(pid);
        sample.open_fds += fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count);
    }
    Ok(sample)
}

/// Context switches summed over a process's threads: the process-level
/// status counts only its main thread.
fn thread_switches(pid: u32) -> u64 {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else { return 0 };
    tasks
        .flatten()
        .filter_map(|task| fs::read_to_string(task.path().join("status")).ok())
        .map(|text| {
            let status = parse_status(&text);
            status.voluntary + status.nonvoluntary
        })
        .sum()
}

/// Clock ticks per second, the unit of [`Sample::cpu_ticks`]:
/// sysconf(_SC_CLK_TCK), or 100 (Linux's value everywhere in practice) if unknown.
pub fn ticks_per_second() -> u64 {
    match sysconf(SysconfVar::CLK_TCK) {
        Ok(Some(ticks)) => u64::try_from(ticks).ok().filter(|&t| t > 0).unwrap_or(100),
        _ => 100,
    }
}

/// This process's user + system CPU seconds, all threads included
/// (getrusage RUSAGE_SELF); 0 if it cannot be read.
pub fn own_cpu_secs() -> f64 {
    let Ok(usage) = getrusage(UsageWho::RUSAGE_SELF) else { return 0.0 };
    let secs = |t: TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    secs(usage.user_time()) + secs(usage.system_time())
}

/// What a [`Sampler`] has seen so far.
#[derive(Debug, Default)]
struct Seen {
    /// Per root, the latest reading and the largest RSS.
    latest: Vec<Sample>,
    peak_rss: Vec<u64>,
    /// The largest sum of the roots' RSS read at one tick.
    total_peak_rss: u64,
}

impl Seen {
    fn new(roots: usize) -> Seen {
        Seen { latest: vec![Sample::default(); roots], peak_rss: vec![0; roots], total_peak_rss: 0 }
    }

    /// One tick's readings, one per root (`None`: that root failed, and its
    /// previous reading stands).
    fn update(&mut self, samples: Vec<Option<Sample>>) {
        for (i, sample) in samples.into_iter().enumerate() {
            if let Some(sample) = sample {
                self.peak_rss[i] = self.peak_rss[i].max(sample.rss_bytes);
                self.latest[i] = sample;
            }
        }
        let total = self.latest.iter().map(|s| s.rss_bytes).sum();
        self.total_peak_rss = self.total_peak_rss.max(total);
    }
}

/// What a [`Sampler`] saw, when it stopped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Readings {
    /// Per root, in the order given: the last reading and the largest RSS.
    pub latest: Vec<Sample>,
    pub peak_rss: Vec<u64>,
    /// The largest sum of all roots' RSS at one moment.
    pub total_peak_rss: u64,
}

/// Samples one or more trees every `period` on a background std thread,
/// keeping the peak RSS and the latest sample of each.
///
/// A std thread rather than a tokio task because /proc reads block and the
/// sampling must keep its pace while the runtime is saturated by the load
/// it is generating. A failed reading (the server gone, or this process out
/// of file descriptors) is skipped and the previous one kept.
pub struct Sampler {
    roots: Vec<u32>,
    seen: Arc<Mutex<Seen>>,
    /// Dropping this wakes the thread at once and ends it, which is how
    /// both `stop` and a plain drop end the sampling.
    _stop: mpsc::Sender<()>,
    thread: Option<JoinHandle<()>>,
}

fn lock(seen: &Mutex<Seen>) -> MutexGuard<'_, Seen> {
    // `Seen::update` cannot leave it half-written, so a poisoned lock
    // still holds good data.
    seen.lock().unwrap_or_else(PoisonError::into_inner)
}

fn sample_all(roots: &[u32]) -> Vec<Option<Sample>> {
    roots.iter().map(|&root| sample_tree(root).ok()).collect()
}

impl Sampler {
    /// Takes the first reading before returning, so `latest` is meaningful
    /// at once. `period` is at least 1 ms. If no thread can be started
    /// (the machine is out of resources, quite possible under load), the
    /// sampler still gives the first and final readings.
    pub fn start(roots: Vec<u32>, period: Duration) -> Sampler {
        let period = period.max(Duration::from_millis(1));
        let seen = Arc::new(Mutex::new(Seen::new(roots.len())));
        lock(&seen).update(sample_all(&roots));
        let (stop, stopped) = mpsc::channel::<()>();
        let (shared, watched) = (Arc::clone(&seen), roots.clone());
        let thread = thread::Builder::new()
            .name("procstat".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(period) {
                    // Read outside the lock: a reading can take milliseconds.
                    let samples = sample_all(&watched);
                    lock(&shared).update(samples);
                }
            })
            .ok();
        Sampler { roots, seen, _stop: stop, thread }
    }

    /// The most recent successful reading of the first root.
    // This and `peak_rss` let the tests look while sampling goes on; a run
    // takes both from `stop`.
    #[cfg(test)]
    pub fn latest(&self) -> Sample {
        lock(&self.seen).latest[0].clone()
    }

    #[cfg(test)]
    pub fn peak_rss(&self) -> u64 {
        lock(&self.seen).total_peak_rss
    }

    /// Ends the sampling and takes one last reading, so the result reflects
    /// the moment of stopping rather than up to one period before.
    pub fn stop(self) -> Readings {
        let Sampler { roots, seen, _stop: stop, thread } = self;
        drop(stop);
        if let Some(thread) = thread {
            // The thread cannot panic short of a bug; its readings so far
            // are in `seen` regardless.
            let _ = thread.join();
        }
        let mut seen = lock(&seen);
        seen.update(sample_all(&roots));
        Readings {
            latest: seen.latest.clone(),
            peak_rss: seen.peak_rss.clone(),
            total_peak_rss: seen.total_peak_rss,
        }
    }
}

/// Reads the machine's facts; what cannot be read is 0 or "unknown", since
/// a report with a gap beats no report. `cores` is the parallelism
/// available to this process (affinity and cgroup quotas included), which
/// is what bounds a run, rather than the socket count.
pub fn machine() -> Machine {
    let read = |path: &str| fs::read_to_string(path).unwrap_or_default();
    let kernel = read("/proc/sys/kernel/osrelease").trim().to_string();
    Machine {
        cores: thread::available_parallelism().map_or(1, NonZero::get),
        memory_bytes: parse_meminfo_total(&read("/proc/meminfo")).unwrap_or(0),
        kernel: if kernel.is_empty() { "unknown".into() } else { kernel },
        cpu_model: parse_cpu_model(&read("/proc/cpuinfo")).unwrap_or_else(|| "unknown".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    use std::process::Command;
    use std::time::Instant;

    const STAT: &str = "4242 (my (weird) proc) S 17 4242 4242 0 -1 4194560 1200 0 3 0 250 75 9 4 20 0 6 0 \
                        987654 123456789 2048 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 3 0 0 0 0 0\n";

    #[test]
    fn stat_is_read_after_the_last_parenthesis() {
        assert_eq!(parse_stat(STAT), Some(StatFields { ppid: 17, utime: 250, stime: 75, num_threads: 6 }));
        // A name that itself looks like the start of the fields.
        let tricky = "9 (x) S 1 2 3) R 5 9 9 0 -1 0 0 0 0 0 11 22 0 0 20 0 1 0 5 6 7\n";
        assert_eq!(parse_stat(tricky), Some(StatFields { ppid: 5, utime: 11, stime: 22, num_threads: 1 }));
    }

    #[test]
    fn truncated_or_garbled_stat_is_none() {
        assert_eq!(parse_stat(""), None);
        assert_eq!(parse_stat("4242 (my proc"), None);
        assert_eq!(parse_stat("4242 my proc) S 17"), None);
        assert_eq!(parse_stat("4242 (a) S 17 4242 4242 0 -1 4194560 1200 0 3 0 250"), None);
        assert_eq!(parse_stat(&STAT.replace(" 250 ", " -1 ")), None);
    }

    #[test]
    fn status_fields() {
        let text = "Name:\tchatter: worker\nState:\tS (sleeping)\nPid:\t4242\nPPid:\t17\n\
                    VmPeak:\t  20000 kB\nVmRSS:\t    5432 kB\nRssAnon:\t    1000 kB\nThreads:\t6\n\
                    voluntary_ctxt_switches:\t120\nnonvoluntary_ctxt_switches:\t7\n";
        assert_eq!(
            parse_status(text),
            StatusFields { vm_rss_kb: 5432, threads: 6, voluntary: 120, nonvoluntary: 7 }
        );
        // A kernel thread: no VmRSS.
        let kthread = "Name:\tkworker/0:1\nThreads:\t1\nvoluntary_ctxt_switches:\t3\n\
                       nonvoluntary_ctxt_switches:\t0\n";
        assert_eq!(
            parse_status(kthread),
            StatusFields { vm_rss_kb: 0, threads: 1, voluntary: 3, nonvoluntary: 0 }
        );
        assert_eq!(parse_status(""), StatusFields::default());
    }

    #[test]
    fn meminfo_and_cpuinfo() {
        let meminfo = "MemTotal:       16318136 kB\nMemFree:         1234567 kB\n";
        assert_eq!(parse_meminfo_total(meminfo), Some(16318136 * 1024));
        assert_eq!(parse_meminfo_total("MemFree: 1 kB\n"), None);
        let cpuinfo = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\n\
                       \nprocessor\t: 1\nmodel name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\n";
        assert_eq!(parse_cpu_model(cpuinfo).as_deref(), Some("Intel(R) Xeon(R) CPU @ 2.20GHz"));
        assert_eq!(parse_cpu_model("processor\t: 0\nBogoMIPS\t: 50.00\n"), None);
    }

    #[test]
    fn samples_this_process() {
        let sample = sample_tree(std::process::id()).unwrap();
        assert!(sample.processes >= 1, "{sample:?}");
        assert!(sample.threads >= 1, "{sample:?}");
        assert!(sample.rss_bytes > 0, "{sample:?}");
        assert!(sample.open_fds > 0, "{sample:?}");
    }

    #[test]
    fn a_missing_root_is_an_error() {
        // Above the kernel's PID_MAX_LIMIT (2^22), so never a live process.
        assert!(sample_tree(1 << 30).is_err());
    }

    #[test]
    fn samples_a_child_tree() {
        let mut child = Command::new("sh").args(["-c", "sleep 5 & sleep 5"]).spawn().unwrap();
        let sh = child.id();
        // The shell needs a moment to fork.
        let deadline = Instant::now() + Duration::from_secs(3);
        let sample = loop {
            let sample = sample_tree(sh).unwrap_or_default();
            if sample.processes >= 2 || Instant::now() > deadline {
                break sample;
            }
            thread::sleep(Duration::from_millis(10));
        };
        // Clean up before asserting, deepest first, so nothing outlives a failure.
        let pids: Vec<u32> =
            tree(sh).map(|t| t.into_iter().map(|(pid, _)| pid).collect()).unwrap_or_default();
        for &pid in pids.iter().rev() {
            let _ = kill(Pid::from_raw(i32::try_from(pid).unwrap()), Signal::SIGKILL);
        }
        let _ = child.kill();
        child.wait().unwrap();
        assert!(sample.processes >= 2, "{sample:?}");
        assert!(sample.threads >= 2, "{sample:?}");
        assert!(pids.len() >= 2 && pids[0] == sh, "{pids:?}");
    }

    #[test]
    fn sampler_keeps_peaks_and_a_final_reading() {
        let sampler = Sampler::start(vec![std::process::id()], Duration::from_millis(5));
        assert!(sampler.latest().processes >= 1);
        thread::sleep(Duration::from_millis(30));
        assert!(sampler.peak_rss() > 0);
        let readings = sampler.stop();
        let last = &readings.latest[0];
        assert!(last.processes >= 1 && last.rss_bytes > 0);
        assert!(readings.peak_rss[0] >= last.rss_bytes);
        assert_eq!(readings.total_peak_rss, readings.peak_rss[0]);
    }

    #[test]
    fn several_roots_are_read_apart_and_summed_at_one_moment() {
        let mut seen = Seen::new(2);
        let rss = |rss_bytes| Some(Sample { processes: 1, rss_bytes, ..Sample::default() });
        seen.update(vec![rss(10), rss(1)]);
        seen.update(vec![rss(2), rss(5)]);
        // A root that could not be read keeps its last reading.
        seen.update(vec![None, rss(3)]);
        assert_eq!(seen.peak_rss, [10, 5]);
        // 11 at the first tick: never 10 + 5, which no moment had.
        assert_eq!(seen.total_peak_rss, 11);
        assert_eq!((seen.latest[0].rss_bytes, seen.latest[1].rss_bytes), (2, 3));

        // A root that is not there reads as nothing, beside one that is.
        let sampler = Sampler::start(vec![std::process::id(), 1 << 30], Duration::from_millis(5));
        let readings = sampler.stop();
        assert!(readings.latest[0].processes >= 1);
        assert_eq!(readings.latest[1], Sample::default());
    }

    #[test]
    fn busy_ticks_leave_out_idle_and_iowait() {
        let stat = "cpu  100 5 50 1000 20 3 2 7 11 0\ncpu0 50 2 25 500 10 1 1 3 0 0\nintr 1 2 3\n";
        assert_eq!(parse_busy_ticks(stat), Some(100 + 5 + 50 + 3 + 2 + 7));
        assert_eq!(parse_busy_ticks("cpu0 1 2 3 4\n"), None);
        assert_eq!(parse_busy_ticks("cpu  1 2 x 4\n"), None);
        assert!(machine_busy_ticks().is_some_and(|t| t > 0));
    }

    #[test]
    fn process_and_machine_facts() {
        assert!(ticks_per_second() > 0);
        let start = Instant::now();
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(30) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        assert!(own_cpu_secs() > 0.0);

        let m = machine();
        assert!(m.cores >= 1 && m.memory_bytes > 0, "{m:?}");
        assert!(!m.kernel.is_empty() && !m.cpu_model.is_empty(), "{m:?}");
    }
}
