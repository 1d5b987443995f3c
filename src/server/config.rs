//! What `chatter serve` was asked to do, in one value every model reads,
//! and how that value is built from what says it: the command line over
//! the config file over the defaults (see `config_file`). Building is one
//! function for the start and for a reload (`reload`), so a file the
//! server would refuse at start is refused by a reload too, for the same
//! reason and in the same words.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::chat::info::{ConnectionRules, FloodPolicy, Operator, Reloadable};
use crate::chat::reload::{self, MAX_RELOAD_BYTES};
use crate::chat::{ServerInfo, info};
use crate::server::cluster::ClusterConfig;
use crate::server::config_file::{ConfigFile, ConfigFileError};
use crate::server::connection::flood::MIN_RECVQ_BYTES;
use crate::server::pool::log::MAX_CELLS;
use crate::server::reload::Reloader;
use crate::server::sendq::DEFAULT_SENDQ_BYTES;
use crate::server::transport::tls::{Certificate, TlsError, TlsFiles};
use crate::server::transport::{Endpoint, Kind};

/// Default for `--listen`.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:6667";
/// Default for `--server-name`.
pub const DEFAULT_SERVER_NAME: &str = "chatter.local";

/// The longest MOTD file read: far more than anyone reads at connect, and
/// the settings it is part of must fit [`MAX_RELOAD_BYTES`] anyway.
const MAX_MOTD_FILE_BYTES: u64 = MAX_RELOAD_BYTES as u64;

/// Which concurrency model serves the clients. Also the command line's
/// `--model`/`--spawn` value (the variant docs are its help text) and the
/// bench's name for what it spawns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Model {
    /// One thread per client blocking in recv; one locked directory.
    Iterative,
    /// A pool of event-loop threads sharing an ordered event log.
    Prethread,
    /// A supervisor and a pool of event-loop processes sharing the log in shared memory.
    Prefork,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on for plain TCP, e.g. `127.0.0.1:6667` or
    /// `[::1]:0`; [`NO_LISTENER`] for none.
    pub listen: String,
    /// Every address listened on and what is spoken there: `listen`
    /// first (unless none), then TLS, WebSocket, secure WebSocket.
    pub endpoints: Vec<Endpoint>,
    /// The certificate TLS listeners serve, as read at start.
    pub tls: Option<TlsConfig>,
    pub model: Model,
    /// Pool size for prethread and prefork (1 to 64).
    pub workers: usize,
    /// Who the server is, and what a reload may change, connection rules
    /// included, as the server starts. Once it serves, the directory's
    /// copy is the current one (`State::shared_info`): a reload replaces
    /// that, never this.
    pub info: Arc<ServerInfo>,
    /// Outbound queue limit per connection, in bytes.
    pub sendq_bytes: usize,
    /// What rereads the configuration (SIGHUP, REHASH); `None` when the
    /// server was made in code and has nothing to reread.
    pub reloader: Option<Arc<Reloader>>,
    /// Being one node of a network (`server::cluster`); `None` alone.
    pub cluster: Option<ClusterConfig>,
}

/// `--listen`'s value for no plain listener.
pub const NO_LISTENER: &str = "none";

/// Where the certificate comes from, and what was read there.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    pub files: TlsFiles,
    pub certificate: Certificate,
}

/// Why a configuration cannot be used: the server does not start with it,
/// and a reload keeps what runs.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    File(#[from] ConfigFileError),
    // Not `source`: the reason is part of this error's own words, which a
    // REHASH tells the operator; a source would be said twice in the log.
    #[error("reading MOTD file {path}: {why}")]
    Motd { path: PathBuf, why: std::io::Error },
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    /// The configuration `settings` describe (what they leave out takes
    /// its default), checked as a whole; MOTD file read. `created` is the
    /// start time 003 shows.
    pub fn build(settings: &ConfigFile, created: String) -> Result<Config, ConfigError> {
        let server = &settings.server;
        let name = server.name.as_deref().unwrap_or(DEFAULT_SERVER_NAME);
        // The name is the source of every numeric: a host-name-like word.
        let name_ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
        ensure(
            (1..=63).contains(&name.len()) && name.chars().all(name_ok),
            "--server-name must be 1 to 63 letters, digits, '.', '-' or '_'",
        )?;
        let model = server.model.unwrap_or(Model::Iterative);
        check_workers(model, server.workers)?;
        let cluster = ClusterConfig::from_section(&settings.cluster).map_err(ConfigError::Invalid)?;
        // A clustered pool gives its last cell to the bridge.
        ensure(
            cluster.is_none() || server.workers.is_none_or(|w| w < MAX_CELLS - 1),
            &format!("--workers must be at most {} with --cluster", MAX_CELLS - 2),
        )?;
        let mut info = ServerInfo::new(name);
        if let Some(network) = &server.network {
            info.network = network.clone();
        }
        info.created = created;
        info.reloadable = reloadable(settings)?;
        let listen = server.listen.clone().unwrap_or_else(|| DEFAULT_LISTEN.into());
        let endpoints = endpoints(&listen, server);
        ensure(
            !endpoints.is_empty(),
            "nothing to listen on: --listen none and no --tls-listen, --ws-listen or --wss-listen",
        )?;
        let tls = tls_config(settings)?;
        ensure(
            tls.is_some() || !endpoints.iter().any(|e| e.kind.is_tls()),
            "--tls-listen and --wss-listen need --tls-cert and --tls-key (`chatter cert` makes a \
             self-signed pair to try it with)",
        )?;
        Ok(Config {
            listen,
            endpoints,
            tls,
            model,
            workers: server.workers.unwrap_or_else(|| default_workers().min(MAX_CELLS - 2)),
            info: Arc::new(info),
            sendq_bytes: settings.limits.sendq.unwrap_or(DEFAULT_SENDQ_BYTES),
            reloader: None,
            cluster,
        })
    }
}

/// The addresses to listen on, `listen` first.
fn endpoints(listen: &str, server: &crate::server::config_file::ServerSection) -> Vec<Endpoint> {
    let plain = (listen != NO_LISTENER).then(|| listen.to_string());
    [
        (Kind::Plain, plain),
        (Kind::Tls, server.tls_listen.clone()),
        (Kind::WebSocket, server.ws_listen.clone()),
        (Kind::SecureWebSocket, server.wss_listen.clone()),
    ]
    .into_iter()
    .filter_map(|(kind, addr)| Some(Endpoint { kind, addr: addr? }))
    .collect()
}

/// The certificate `[tls]` names, read and checked.
fn tls_config(settings: &ConfigFile) -> Result<Option<TlsConfig>, ConfigError> {
    match (&settings.tls.cert, &settings.tls.key) {
        (Some(cert), Some(key)) => {
            let files = TlsFiles { cert: cert.clone(), key: key.clone() };
            let certificate = Certificate::load(&files)?;
            Ok(Some(TlsConfig { files, certificate }))
        }
        (None, None) => Ok(None),
        _ => Err(ConfigError::Invalid("--tls-cert and --tls-key go together".into())),
    }
}

/// What a reload may change, from `settings`, checked.
fn reloadable(settings: &ConfigFile) -> Result<Reloadable, ConfigError> {
    let (server, limits, admin) = (&settings.server, &settings.limits, &settings.admin);
    let mut live = ServerInfo::new(DEFAULT_SERVER_NAME).reloadable;
    // Each text is one line in a numeric: no line breaks.
    let one_line = |text: &String| text.lines().next().unwrap_or("").to_string();
    for (value, text) in [
        (&mut live.description, &server.description),
        (&mut live.admin_location, &admin.location),
        (&mut live.admin_description, &admin.description),
        (&mut live.admin_email, &admin.email),
    ] {
        if let Some(text) = text {
            *value = one_line(text);
        }
    }
    live.password = server.password.clone();
    live.motd = server.motd.as_deref().map(read_motd).transpose()?;
    live.channels_per_client = limits.max_channels_per_client.unwrap_or(live.channels_per_client);
    live.max_channels = limits.max_channels.unwrap_or(live.max_channels);
    live.operators = settings
        .operators
        .iter()
        .map(|o| Operator { name: o.name.clone(), password_hash: o.password_hash.clone() })
        .collect();
    live.connections = connection_rules(settings, &live.connections)?;
    if let Err(len) = reload::encode(&live) {
        return Err(ConfigError::Invalid(format!(
            "the MOTD, operators and texts take {len} bytes, more than the {MAX_RELOAD_BYTES} a reload can \
             carry"
        )));
    }
    Ok(live)
}

/// The rules for connections, from `settings` over `defaults`, checked.
fn connection_rules(
    settings: &ConfigFile,
    defaults: &ConnectionRules,
) -> Result<ConnectionRules, ConfigError> {
    let (limits, flood) = (&settings.limits, &settings.flood);
    let ping_interval = limits.ping_interval.map_or(defaults.ping_interval, std::time::Duration::from_secs);
    let registration_timeout =
        limits.registration_timeout.map_or(defaults.registration_timeout, std::time::Duration::from_secs);
    ensure(!ping_interval.is_zero(), "--ping-interval must be at least 1 second")?;
    ensure(!registration_timeout.is_zero(), "--registration-timeout must be at least 1 second")?;
    let policy = FloodPolicy {
        burst: flood.burst.unwrap_or(info::DEFAULT_BURST),
        rate: flood.rate.unwrap_or(info::DEFAULT_RATE),
        recvq_bytes: flood.recvq.unwrap_or(info::DEFAULT_RECVQ_BYTES),
    };
    ensure(
        policy.burst > 0 && policy.rate > 0,
        "--flood-burst and --flood-rate must be at least 1 (--no-flood-control turns it off)",
    )?;
    ensure(
        policy.recvq_bytes >= MIN_RECVQ_BYTES,
        &format!(
            "--flood-recvq must be at least {MIN_RECVQ_BYTES} bytes (two of the longest lines, tags included, and some)"
        ),
    )?;
    Ok(ConnectionRules {
        max_clients: limits.max_clients.unwrap_or(defaults.max_clients),
        ping_interval,
        registration_timeout,
        flood: flood.enabled.unwrap_or(true).then_some(policy),
    })
}

/// The MOTD's lines, from a file of at most [`MAX_MOTD_FILE_BYTES`].
fn read_motd(path: &Path) -> Result<Vec<String>, ConfigError> {
    use std::io::Read;
    let failed = |why| ConfigError::Motd { path: path.to_path_buf(), why };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_MOTD_FILE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(failed)?;
    if bytes.len() as u64 > MAX_MOTD_FILE_BYTES {
        return Err(failed(std::io::Error::other(format!("longer than {MAX_MOTD_FILE_BYTES} bytes"))));
    }
    let text = String::from_utf8(bytes)
        .map_err(|e| failed(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
    Ok(text.lines().map(str::to_string).collect())
}

fn ensure(ok: bool, why: &str) -> Result<(), ConfigError> {
    if ok { Ok(()) } else { Err(ConfigError::Invalid(why.to_string())) }
}

/// The pool size when `--workers` is not given: one worker per CPU, within
/// the 64 the event log has cells for. The bench passes it to the servers
/// it spawns explicitly, so the figure it prints is the one that ran.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get()).min(64)
}

/// `--workers` given to a model without a pool is a mistake worth stopping for.
pub fn check_workers(model: Model, workers: Option<usize>) -> Result<(), ConfigError> {
    ensure(
        workers.is_none() || model != Model::Iterative,
        "--workers applies only to the prethread and prefork models",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(toml: &str) -> Result<Config, ConfigError> {
        Config::build(&ConfigFile::parse(toml).expect("parses"), "today".into())
    }

    #[test]
    fn the_example_config_file_is_one_the_server_takes() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("chatter.example.toml");
        let file = ConfigFile::load(&path).expect("chatter.example.toml parses");
        let config = Config::build(&file, "today".into()).expect("and makes a configuration");
        assert_eq!(config.info.connections.flood.map(|f| f.recvq_bytes), Some(info::DEFAULT_RECVQ_BYTES));
        let mut clustered = file.clone();
        clustered.cluster.urls = Some("nats://127.0.0.1:4222".into());
        clustered.cluster.node = Some("node-1".into());
        assert!(Config::build(&clustered, "today".into()).unwrap().cluster.is_some());
    }

    #[test]
    fn what_nothing_says_takes_the_flags_defaults() {
        let config = build("").unwrap();
        assert_eq!((config.listen.as_str(), config.model), (DEFAULT_LISTEN, Model::Iterative));
        assert_eq!(
            (config.info.name.as_str(), config.info.network.as_str()),
            (DEFAULT_SERVER_NAME, "chatter")
        );
        assert_eq!(config.sendq_bytes, DEFAULT_SENDQ_BYTES);
        assert_eq!(config.info.reloadable, ServerInfo::new(DEFAULT_SERVER_NAME).reloadable);
        assert!(config.reloader.is_none());
    }

    #[test]
    fn settings_are_checked_as_the_flags_were() {
        let error = |toml: &str| build(toml).expect_err(toml).to_string();
        assert!(error("[limits]\nping_interval = 0").contains("--ping-interval"));
        assert!(error("[flood]\nrate = 0").contains("--flood-rate"));
        assert!(error("[flood]\nrecvq = 10").contains("--flood-recvq"));
        assert!(error("[server]\nname = \"no spaces\"").contains("--server-name"));
        assert!(error("[server]\nworkers = 2").contains("--workers"));
        assert!(error("[server]\nmotd = \"/nonexistent/motd.txt\"").contains("/nonexistent/motd.txt"));
        assert_eq!(build("[flood]\nenabled = false").unwrap().info.connections.flood, None);
    }

    #[test]
    fn settings_too_long_for_a_reload_are_refused_at_start_too() {
        let long = "x".repeat(MAX_RELOAD_BYTES);
        let error = build(&format!("[server]\ndescription = {long:?}")).unwrap_err();
        assert!(error.to_string().contains("a reload can carry"), "{error}");
        let dir = std::env::temp_dir().join(format!("chatter-config-motd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let motd = dir.join("motd.txt");
        std::fs::write(&motd, "x".repeat(MAX_RELOAD_BYTES + 10)).unwrap();
        let error = build(&format!("[server]\nmotd = {:?}", motd.to_str().unwrap())).unwrap_err();
        assert!(error.to_string().contains("longer than"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
