//! `chatter serve --config FILE`: the settings a server is run with, as a
//! TOML file, for what a command line carries badly (a MOTD, a password
//! kept out of the process list and shell history, a whole deployment's
//! choices in one place under version control).
//!
//! Every setting is optional and has the same name and meaning as its
//! command-line flag; a flag given on the command line overrides the file,
//! and what neither says takes the flag's default. The command line is
//! kept in this same shape (only the flags given), so that layering them
//! is one function, [`ConfigFile::overridden_by`], at start and again
//! when SIGHUP or REHASH rereads the file (`server::reload`). Unknown keys
//! are an error, so a misspelt setting is found rather than silently
//! ignored.
//!
//! ```toml
//! [server]
//! listen = "0.0.0.0:6667"
//! model = "prethread"
//! name = "irc.example.org"
//! motd = "motd.txt"        # relative to this file
//!
//! tls_listen = "0.0.0.0:6697"
//! ws_listen = "0.0.0.0:8080"
//!
//! [tls]
//! cert = "fullchain.pem"   # relative to this file
//! key = "privkey.pem"
//!
//! [limits]
//! max_clients = 2000
//!
//! [flood]
//! burst = 10
//!
//! [admin]
//! email = "ops@example.org"
//! ```
//!
//! `chatter.example.toml` at the repository root lists every setting.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::server::Model;

/// The whole file.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConfigFile {
    pub server: ServerSection,
    pub limits: LimitsSection,
    pub flood: FloodSection,
    pub admin: AdminSection,
    /// Who may become an IRC operator (OPER name password).
    pub operators: Vec<OperatorEntry>,
    /// Being one node of a network over NATS JetStream (`server::cluster`).
    pub cluster: ClusterSection,
    /// The certificate TLS listeners serve.
    pub tls: TlsSection,
}

/// `[tls]`: the certificate chain and private key TLS listeners serve, in
/// PEM; relative paths are relative to the file. Reread on every reload.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsSection {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// `[[operators]]`: a name and the hash of its password (`chatter passwd`
/// makes one), never the password itself.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorEntry {
    pub name: String,
    pub password_hash: String,
}

/// Who the server is and where it listens.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSection {
    /// Plain TCP (IRC and plain lines); `"none"` for no plain listener.
    pub listen: Option<String>,
    /// IRC over TLS.
    pub tls_listen: Option<String>,
    /// IRC over WebSocket, and the chat page.
    pub ws_listen: Option<String>,
    /// The same over TLS (wss, https).
    pub wss_listen: Option<String>,
    pub model: Option<Model>,
    pub workers: Option<usize>,
    pub name: Option<String>,
    pub network: Option<String>,
    /// `--server-description`.
    pub description: Option<String>,
    /// The MOTD file; a relative path is relative to the config file.
    pub motd: Option<PathBuf>,
    pub password: Option<String>,
}

/// What one client, and all of them, may hold.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsSection {
    pub max_clients: Option<usize>,
    pub max_channels_per_client: Option<usize>,
    pub max_channels: Option<usize>,
    pub sendq: Option<usize>,
    /// Seconds.
    pub ping_interval: Option<u64>,
    /// Seconds.
    pub registration_timeout: Option<u64>,
}

/// Flood control (see `connection::flood`).
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FloodSection {
    /// `false` turns flood control off (benchmarks only).
    pub enabled: Option<bool>,
    pub burst: Option<u32>,
    pub rate: Option<u32>,
    pub recvq: Option<usize>,
}

/// Who runs the server, as ADMIN tells (257, 258, 259).
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminSection {
    pub location: Option<String>,
    pub description: Option<String>,
    pub email: Option<String>,
}

/// `[cluster]`: the NATS servers and this node's name; without `urls`,
/// the server is on its own.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterSection {
    /// `--cluster`: NATS server URLs, comma-separated.
    pub urls: Option<String>,
    /// `--node`: this node's name, unique in the network.
    pub node: Option<String>,
    /// `--cluster-replicas`: copies JetStream keeps of the event stream.
    pub replicas: Option<usize>,
    /// `--cluster-retention`: how long the stream keeps events (`24h`).
    pub retention: Option<String>,
    /// `--node-timeout`: seconds without a heartbeat before a node is lost.
    pub node_timeout: Option<u64>,
    /// `--snapshot-every`: events between two snapshots of the directory.
    pub snapshot_every: Option<u64>,
}

/// Why a config file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {source}")]
    Parse { path: PathBuf, source: Box<toml::de::Error> },
    #[error(
        "{path}: operator {name:?}: password_hash is not a password hash (make one with `chatter passwd`)"
    )]
    BadOperator { path: PathBuf, name: String },
}

impl ConfigFile {
    /// Reads and parses `path`; a relative MOTD path is made relative to
    /// the file's directory, where its author meant it.
    pub fn load(path: &Path) -> Result<ConfigFile, ConfigFileError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigFileError::Read { path: path.to_path_buf(), source })?;
        let mut file = ConfigFile::parse(&text).map_err(|source| ConfigFileError::Parse {
            path: path.to_path_buf(),
            source: Box::new(source),
        })?;
        if let Some(dir) = path.parent() {
            for file_path in
                [&mut file.server.motd, &mut file.tls.cert, &mut file.tls.key].into_iter().flatten()
            {
                if file_path.is_relative() {
                    *file_path = dir.join(&*file_path);
                }
            }
        }
        if let Some(bad) =
            file.operators.iter().find(|o| !crate::chat::info::is_password_hash(&o.password_hash))
        {
            return Err(ConfigFileError::BadOperator { path: path.to_path_buf(), name: bad.name.clone() });
        }
        Ok(file)
    }

    pub fn parse(text: &str) -> Result<ConfigFile, toml::de::Error> {
        toml::from_str(text)
    }

    /// These settings with every one `top` says in place of this one's.
    /// Operators are only ever in the file, so `top`'s, if it has any,
    /// replace the list whole.
    pub fn overridden_by(self, top: ConfigFile) -> ConfigFile {
        let (s, t) = (self.server, top.server);
        let server = ServerSection {
            listen: t.listen.or(s.listen),
            tls_listen: t.tls_listen.or(s.tls_listen),
            ws_listen: t.ws_listen.or(s.ws_listen),
            wss_listen: t.wss_listen.or(s.wss_listen),
            model: t.model.or(s.model),
            workers: t.workers.or(s.workers),
            name: t.name.or(s.name),
            network: t.network.or(s.network),
            description: t.description.or(s.description),
            motd: t.motd.or(s.motd),
            password: t.password.or(s.password),
        };
        let (l, t) = (self.limits, top.limits);
        let limits = LimitsSection {
            max_clients: t.max_clients.or(l.max_clients),
            max_channels_per_client: t.max_channels_per_client.or(l.max_channels_per_client),
            max_channels: t.max_channels.or(l.max_channels),
            sendq: t.sendq.or(l.sendq),
            ping_interval: t.ping_interval.or(l.ping_interval),
            registration_timeout: t.registration_timeout.or(l.registration_timeout),
        };
        let (f, t) = (self.flood, top.flood);
        let flood = FloodSection {
            enabled: t.enabled.or(f.enabled),
            burst: t.burst.or(f.burst),
            rate: t.rate.or(f.rate),
            recvq: t.recvq.or(f.recvq),
        };
        let (a, t) = (self.admin, top.admin);
        let admin = AdminSection {
            location: t.location.or(a.location),
            description: t.description.or(a.description),
            email: t.email.or(a.email),
        };
        let operators = if top.operators.is_empty() { self.operators } else { top.operators };
        let (c, t) = (self.cluster, top.cluster);
        let cluster = ClusterSection {
            urls: t.urls.or(c.urls),
            node: t.node.or(c.node),
            replicas: t.replicas.or(c.replicas),
            retention: t.retention.or(c.retention),
            node_timeout: t.node_timeout.or(c.node_timeout),
            snapshot_every: t.snapshot_every.or(c.snapshot_every),
        };
        let (c, t) = (self.tls, top.tls);
        let tls = TlsSection { cert: t.cert.or(c.cert), key: t.key.or(c.key) };
        ConfigFile { server, limits, flood, admin, operators, cluster, tls }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_is_optional() {
        assert_eq!(ConfigFile::parse("").unwrap(), ConfigFile::default());
    }

    #[test]
    fn the_example_in_the_repository_parses_and_says_everything() {
        let text = include_str!("../../chatter.example.toml");
        let file = ConfigFile::parse(text).expect("the example parses");
        let s = &file.server;
        assert!(s.listen.is_some() && s.model.is_some() && s.workers.is_some() && s.name.is_some());
        assert!(s.network.is_some() && s.motd.is_some() && s.description.is_some());
        let l = &file.limits;
        assert!(l.max_clients.is_some() && l.max_channels_per_client.is_some() && l.max_channels.is_some());
        assert!(l.sendq.is_some() && l.ping_interval.is_some() && l.registration_timeout.is_some());
        let f = &file.flood;
        assert!(f.enabled.is_some() && f.burst.is_some() && f.rate.is_some() && f.recvq.is_some());
        let a = &file.admin;
        assert!(a.location.is_some() && a.description.is_some() && a.email.is_some());
        // Its operator is there, commented out: no server starts with a
        // password everyone can read.
        assert!(file.operators.is_empty());
        let operator = text.lines().filter_map(|l| l.strip_prefix("# ")).filter(|l| {
            l.starts_with("[[operators]]") || l.starts_with("name =") || l.starts_with("password_hash =")
        });
        let operator =
            ConfigFile::parse(&operator.collect::<Vec<_>>().join("\n")).expect("the operator parses");
        assert_eq!(operator.operators.len(), 1);
        assert!(crate::chat::info::is_password_hash(&operator.operators[0].password_hash));
    }

    #[test]
    fn an_operator_without_a_real_hash_stops_the_start() {
        let dir = std::env::temp_dir().join(format!("chatter-config-op-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("chatter.toml");
        std::fs::write(&path, "[[operators]]\nname = \"root\"\npassword_hash = \"hunter2\"\n").unwrap();
        let err = ConfigFile::load(&path).expect_err("a plain password is refused");
        assert!(err.to_string().contains("chatter passwd"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn what_the_top_layer_says_wins_and_the_rest_shows_through() {
        let file = ConfigFile::parse(
            "[server]\nname = \"file.name\"\nnetwork = \"FileNet\"\n[flood]\nburst = 3\n\
             [[operators]]\nname = \"op\"\npassword_hash = \"x\"\n",
        )
        .unwrap();
        let command_line =
            ConfigFile::parse("[server]\nnetwork = \"FlagNet\"\n[flood]\nenabled = false\n").unwrap();
        let both = file.overridden_by(command_line);
        assert_eq!(both.server.name.as_deref(), Some("file.name"));
        assert_eq!(both.server.network.as_deref(), Some("FlagNet"));
        assert_eq!((both.flood.enabled, both.flood.burst), (Some(false), Some(3)));
        assert_eq!(both.operators.len(), 1, "the file's operators show through a command line");
        assert_eq!(ConfigFile::default().overridden_by(both.clone()), both);
    }

    #[test]
    fn a_misspelt_setting_is_an_error_not_ignored() {
        let err = ConfigFile::parse("[limits]\nmax_client = 5\n").expect_err("unknown key");
        assert!(err.to_string().contains("max_client"), "{err}");
        assert!(ConfigFile::parse("[server]\nmodel = \"threads\"\n").is_err());
    }

    #[test]
    fn a_relative_motd_is_found_beside_the_file() {
        let dir = std::env::temp_dir().join(format!("chatter-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("chatter.toml");
        std::fs::write(&path, "[server]\nmotd = \"motd.txt\"\nmodel = \"prefork\"\n").unwrap();
        let file = ConfigFile::load(&path).unwrap();
        assert_eq!(file.server.motd, Some(dir.join("motd.txt")));
        assert_eq!(file.server.model, Some(Model::Prefork));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
