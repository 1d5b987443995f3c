//! The open-files limit. Every client is a descriptor on both ends of a
//! connection, so the server and the load generator each raise their own
//! soft limit before they start; one function, so that both read the same
//! kernel quirks the same way.

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// Raises this process's open-files soft limit towards `wanted` (up to the
/// hard limit); returns the soft limit now in force. Never lowers it.
/// Returns 0 only if the limit cannot be read at all.
pub fn raise_open_files(wanted: u64) -> u64 {
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else { return 0 };
    if soft >= wanted {
        return soft;
    }
    // With an unlimited hard limit Linux still refuses a soft limit above
    // fs.nr_open, and would then leave the limit where it was.
    let nr_open =
        std::fs::read_to_string("/proc/sys/fs/nr_open").ok().and_then(|s| s.trim().parse::<u64>().ok());
    let target = wanted.min(nr_open.map_or(hard, |n| n.min(hard)));
    if target > soft {
        // A refusal is not an error for the caller: the limit in force,
        // read back below, is what it needs either way.
        let _ = setrlimit(Resource::RLIMIT_NOFILE, target, hard);
    }
    getrlimit(Resource::RLIMIT_NOFILE).map_or(soft, |(now, _)| now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raises_within_the_hard_limit_and_never_lowers() {
        let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        assert_eq!(raise_open_files(0), soft, "never lowers");
        let raised = raise_open_files(soft.saturating_add(1).min(hard));
        assert!(raised >= soft && raised <= hard);
    }
}
