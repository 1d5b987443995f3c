//! What the server says about itself: name, network, version, MOTD, the
//! optional connection password, the limits it enforces on the directory
//! and on connections. Shared read-only by every session and state replica
//! (so every replica enforces the same limits in log order).
//!
//! It is two parts because a running server may reread its configuration
//! (SIGHUP, REHASH: see `server::reload`) but not change who it is: the
//! identity (name, network, version, start time) every client was told at
//! registration is fixed for the run, and [`Reloadable`] is everything a
//! reload may replace. A reload replaces the whole `Reloadable` at once, as
//! one value every replica installs at the same log position (see
//! `chat::reload`); `ServerInfo` dereferences to it, so a reader writes
//! `info.motd` whichever part a field is in.

use std::ops::{Deref, DerefMut};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Server identity and settings the chat core needs.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    /// Used as the source of numerics and server notices.
    pub name: String,
    /// Advertised as NETWORK in 005 and in the welcome line.
    pub network: String,
    pub version: String,
    /// Human-readable start time for 003; fixed so replicas agree.
    pub created: String,
    /// The cluster node this server is (`server::node`), 0 on its own:
    /// LUSERS tells this node's users from the network's by it.
    pub node: u16,
    /// What a reload may change.
    pub reloadable: Reloadable,
}

/// The settings a running server may reread (everything in [`ServerInfo`]
/// but its identity). Serde, so that a reload travels through the pools'
/// event log as bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reloadable {
    /// One line about this server, as LINKS (364) and WHOIS (312) show it.
    pub description: String,
    /// MOTD lines; `None` answers MOTD with 422.
    pub motd: Option<Vec<String>>,
    /// Required PASS, if any.
    pub password: Option<String>,
    /// Channels one client may be in at once (advertised as CHANLIMIT).
    pub channels_per_client: usize,
    /// Channels that may exist at once; creating more is refused.
    pub max_channels: usize,
    /// Who may become an IRC operator with OPER, and with what password.
    pub operators: Vec<Operator>,
    /// ADMIN's answers (257, 258, 259): where the server is, who runs it,
    /// how to reach them.
    pub admin_location: String,
    pub admin_description: String,
    pub admin_email: String,
    /// What connections accepted from now on are held to.
    pub connections: ConnectionRules,
}

/// The limits a connection is held to from its start to its end. The chat
/// core never reads them; the server layer does, when it accepts a
/// connection. They live here, with the rest of what a reload changes, so
/// that a reload reaches every pool worker (threads and processes alike,
/// replacements included) in the same event as the rest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionRules {
    /// Connections beyond this are refused with a closing line.
    pub max_clients: usize,
    /// A client silent this long is PINGed; silent as long again, dropped.
    pub ping_interval: Duration,
    /// A connection not registered this long after it opened is closed.
    pub registration_timeout: Duration,
    /// Per-client flood control (`server::connection::flood`); `None`
    /// turns it off (benchmarks).
    pub flood: Option<FloodPolicy>,
}

/// The flood limits (see `server::connection::flood`, which applies them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FloodPolicy {
    /// Lines handled at once before the sustained rate applies.
    pub burst: u32,
    /// Lines per second handled after a burst.
    pub rate: u32,
    /// Unhandled input held for a client beyond which it is dropped.
    pub recvq_bytes: usize,
}

impl Deref for ServerInfo {
    type Target = Reloadable;

    fn deref(&self) -> &Reloadable {
        &self.reloadable
    }
}

impl DerefMut for ServerInfo {
    fn deref_mut(&mut self) -> &mut Reloadable {
        &mut self.reloadable
    }
}

/// One operator's credentials, from the config file: the password only as
/// a hash (argon2's PHC string, made by `chatter passwd`), so the file
/// does not hold it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operator {
    pub name: String,
    pub password_hash: String,
}

impl Operator {
    /// Whether `password` is this operator's.
    pub fn accepts(&self, password: &str) -> bool {
        use argon2::password_hash::{PasswordHash, PasswordVerifier};
        PasswordHash::new(&self.password_hash)
            .is_ok_and(|hash| argon2::Argon2::default().verify_password(password.as_bytes(), &hash).is_ok())
    }
}

/// The hash of `password` that an operator entry holds (a PHC string with
/// a fresh random salt).
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
    let salt = SaltString::generate(&mut OsRng);
    Ok(argon2::Argon2::default().hash_password(password.as_bytes(), &salt)?.to_string())
}

/// Whether `hash` is a password hash [`Operator::accepts`] can check.
pub fn is_password_hash(hash: &str) -> bool {
    argon2::password_hash::PasswordHash::new(hash).is_ok()
}

/// Default for [`ServerInfo::network`].
pub const DEFAULT_NETWORK: &str = "chatter";

/// Default for [`Reloadable::description`].
pub const DEFAULT_DESCRIPTION: &str = "A chatter server";

/// Default for [`Reloadable::channels_per_client`]: InspIRCd, as probed
/// for the hardening work, stopped a client at 50 too.
pub const DEFAULT_CHANNELS_PER_CLIENT: usize = 50;
/// Default for [`Reloadable::max_channels`]: as many as the default
/// `--max-clients`, far more than a small server sees, still bounded.
pub const DEFAULT_MAX_CHANNELS: usize = 10_000;

/// Default for [`ConnectionRules::max_clients`].
pub const DEFAULT_MAX_CLIENTS: usize = 10_000;
/// Default for [`ConnectionRules::ping_interval`].
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(120);
/// Default for [`ConnectionRules::registration_timeout`].
pub const DEFAULT_REGISTRATION_TIMEOUT: Duration = Duration::from_secs(60);

/// Default for [`FloodPolicy::burst`].
pub const DEFAULT_BURST: u32 = 20;
/// Default for [`FloodPolicy::rate`].
pub const DEFAULT_RATE: u32 = 5;
/// Default for [`FloodPolicy::recvq_bytes`]: three of the longest lines
/// (an IRCv3 tag section and 512 bytes), or 32 without tags.
pub const DEFAULT_RECVQ_BYTES: usize = 16 * 1024;

impl Default for FloodPolicy {
    fn default() -> Self {
        FloodPolicy { burst: DEFAULT_BURST, rate: DEFAULT_RATE, recvq_bytes: DEFAULT_RECVQ_BYTES }
    }
}

/// Unix seconds as people read a date, in UTC (TIME, 003):
/// `Wed, 25 Nov 2026 17:36:08 GMT`.
pub fn human_time(unix_secs: u64) -> String {
    // The format ends at the year 9999; a clock (or a test) beyond it is
    // shown as the last second it can say, not a panic.
    const LAST_SAYABLE: u64 = 253_402_300_799;
    let at = std::time::Duration::from_secs(unix_secs.min(LAST_SAYABLE));
    httpdate::fmt_http_date(std::time::UNIX_EPOCH + at)
}

impl ServerInfo {
    pub fn new(name: impl Into<String>) -> Self {
        ServerInfo {
            name: name.into(),
            network: DEFAULT_NETWORK.into(),
            version: format!("chatter-{}", env!("CARGO_PKG_VERSION")),
            created: "at start-up".into(),
            node: 0,
            reloadable: Reloadable {
                description: DEFAULT_DESCRIPTION.into(),
                motd: None,
                password: None,
                channels_per_client: DEFAULT_CHANNELS_PER_CLIENT,
                max_channels: DEFAULT_MAX_CHANNELS,
                operators: Vec::new(),
                admin_location: "Location not given".into(),
                admin_description: "Administrator not given".into(),
                admin_email: "E-mail address not given".into(),
                connections: ConnectionRules {
                    max_clients: DEFAULT_MAX_CLIENTS,
                    ping_interval: DEFAULT_PING_INTERVAL,
                    registration_timeout: DEFAULT_REGISTRATION_TIMEOUT,
                    flood: Some(FloodPolicy::default()),
                },
            },
        }
    }

    /// The same server with `reloadable` in place of what it had.
    pub fn reloaded(&self, reloadable: Reloadable) -> ServerInfo {
        ServerInfo {
            name: self.name.clone(),
            network: self.network.clone(),
            version: self.version.clone(),
            created: self.created.clone(),
            node: self.node,
            reloadable,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::human_time;

    #[test]
    fn dates_read_as_dates_at_both_ends() {
        assert_eq!(human_time(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(human_time(1_795_620_968), "Wed, 25 Nov 2026 15:36:08 GMT");
        assert_eq!(human_time(u64::MAX), "Fri, 31 Dec 9999 23:59:59 GMT");
    }

    #[test]
    fn an_operator_is_known_by_the_password_its_hash_was_made_from() {
        let hash = super::hash_password("operpassword").unwrap();
        assert!(super::is_password_hash(&hash) && !super::is_password_hash("operpassword"));
        let op = super::Operator { name: "operuser".into(), password_hash: hash };
        assert!(op.accepts("operpassword"));
        assert!(!op.accepts("operpasswore") && !op.accepts(""));
        let broken = super::Operator { name: "x".into(), password_hash: "not a hash".into() };
        assert!(!broken.accepts("not a hash"), "a hash that does not parse accepts nothing");
    }
}
