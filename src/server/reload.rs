//! Rereading the configuration while the server runs: on SIGHUP, or when
//! an IRC operator sends REHASH.
//!
//! A reload builds the whole configuration again, exactly as the start
//! did (`Config::build`: the file under the command line, so a flag given
//! at start still wins), and keeps the running one whole if that fails: a
//! file that does not parse or validate changes nothing, and the error is
//! logged (and told to the operator who asked). What it may change is the
//! [`Reloadable`](crate::chat::info::Reloadable) part of the server's
//! settings: MOTD, operators, description, ADMIN texts, password, channel
//! limits, and the rules for connections accepted from then on. What every
//! client or every replica took in at start (listen address, model,
//! workers, server name, network, sendq) stays as it is, with a warning
//! that the new value needs a restart.
//!
//! Only the process that is asked reads the file. The new settings then
//! reach every replica as events (`chat::reload`), which each installs at
//! the same place in the event order: under the directory lock in the
//! iterative model, through the event log in the pools (appended by the
//! keeper for SIGHUP, by the operator's worker for REHASH), so a worker
//! forked or started later gets them from the keeper's replica like the
//! rest of the directory.

use std::path::PathBuf;
use std::sync::Arc;

use crate::chat::reload;
use crate::chat::reply::{self, numeric};
use crate::chat::{ConnId, Event, State};
use crate::server::config::{Config, ConfigError};
use crate::server::config_file::ConfigFile;
use crate::server::transport::Kind;
use crate::server::transport::tls::TlsFiles;
use crate::wire::message::write_line;

/// Lines of an error told to the operator who asked for the reload (a
/// TOML error shows the line it is about, with a caret under it).
const ERROR_LINES: usize = 8;

/// Where the configuration comes from, kept to read it again.
#[derive(Debug)]
pub struct Reloader {
    /// `--config`, if given.
    path: Option<PathBuf>,
    /// The flags given on the command line, in the file's shape.
    command_line: ConfigFile,
}

/// A configuration reread and checked, ready to be installed.
#[derive(Debug)]
pub struct Reloaded {
    /// The new settings, encoded as they travel (`chat::reload`).
    encoded: Vec<u8>,
    /// What the file now says that only a restart applies, a sentence each.
    pub needs_restart: Vec<String>,
}

impl Reloader {
    pub fn new(path: Option<PathBuf>, command_line: ConfigFile) -> Reloader {
        Reloader { path, command_line }
    }

    /// The configuration to start with, which can reload itself.
    pub fn start(self) -> Result<Config, ConfigError> {
        let created = crate::chat::info::human_time(crate::server::unix_now());
        let mut config = Config::build(&self.settings()?, created)?;
        config.reloader = Some(Arc::new(self));
        Ok(config)
    }

    /// The file REHASH's 382 names (`*` when there is none: the settings
    /// are the command line's, and the MOTD file is still reread).
    pub fn file_name(&self) -> String {
        self.path.as_ref().map_or_else(|| "*".into(), |p| p.display().to_string())
    }

    /// The file's settings under the command line's.
    fn settings(&self) -> Result<ConfigFile, ConfigError> {
        let file = match &self.path {
            Some(path) => ConfigFile::load(path)?,
            None => ConfigFile::default(),
        };
        Ok(file.overridden_by(self.command_line.clone()))
    }

    /// Rereads the configuration `running` was built from, for `cause`
    /// (for the log), and logs how it went.
    pub fn reload(&self, running: &Config, cause: &str) -> Result<Reloaded, ConfigError> {
        let file = self.file_name();
        let read = self.settings().and_then(|s| Config::build(&s, running.info.created.clone()));
        let read = match read {
            Ok(read) => read,
            Err(e) => {
                tracing::error!(cause, file, "reload failed, the running configuration is kept: {e}");
                return Err(e);
            }
        };
        let needs_restart = restart_only_changes(running, &read);
        for change in &needs_restart {
            tracing::warn!(cause, file, "{change}");
        }
        tracing::info!(cause, file, "configuration reloaded");
        let encoded = reload::encode(&read.info.reloadable).expect("Config::build checks the length");
        Ok(Reloaded { encoded, needs_restart })
    }
}

impl Reloaded {
    /// The events that install the new settings, written by `from` (its
    /// pool cell; 0 for the keeper and the iterative model).
    pub fn events(&self, from: u16) -> Vec<Event> {
        reload::pieces(from, &self.encoded)
    }
}

/// The settings only a restart changes, that `read` has other than `running`.
fn restart_only_changes(running: &Config, read: &Config) -> Vec<String> {
    let pool = |c: &Config| c.model != crate::server::Model::Iterative;
    let workers = |c: &Config| if pool(c) { c.workers.to_string() } else { "none".into() };
    let model = |c: &Config| format!("{:?}", c.model).to_lowercase();
    let endpoint = |c: &Config, kind| {
        c.endpoints.iter().find(|e| e.kind == kind).map_or_else(|| "none".into(), |e| e.addr.clone())
    };
    // The files are reread at every reload; where they are is read once.
    let tls_file = |c: &Config, which: fn(&TlsFiles) -> &std::path::Path| {
        c.tls.as_ref().map_or_else(|| "none".into(), |t| which(&t.files).display().to_string())
    };
    [
        ("listen", running.listen.clone(), read.listen.clone()),
        ("tls_listen", endpoint(running, Kind::Tls), endpoint(read, Kind::Tls)),
        ("ws_listen", endpoint(running, Kind::WebSocket), endpoint(read, Kind::WebSocket)),
        ("wss_listen", endpoint(running, Kind::SecureWebSocket), endpoint(read, Kind::SecureWebSocket)),
        ("tls cert", tls_file(running, |f| &f.cert), tls_file(read, |f| &f.cert)),
        ("tls key", tls_file(running, |f| &f.key), tls_file(read, |f| &f.key)),
        ("model", model(running), model(read)),
        ("workers", workers(running), workers(read)),
        ("name", running.info.name.clone(), read.info.name.clone()),
        ("network", running.info.network.clone(), read.info.network.clone()),
        ("sendq", running.sendq_bytes.to_string(), read.sendq_bytes.to_string()),
    ]
    .into_iter()
    .filter(|(_, was, is)| was != is)
    .map(|(setting, was, is)| format!("{setting} = {is} takes a restart; still {was}"))
    .collect()
}

/// What SIGHUP does: the events that install the reread settings, written
/// by `from`, or none if the reload failed (it is logged).
pub(crate) fn on_hangup(config: &Config, from: u16) -> Vec<Event> {
    let Some(reloader) = &config.reloader else {
        tracing::warn!("SIGHUP: this server has no configuration to reread");
        return Vec::new();
    };
    reloader.reload(config, "SIGHUP").map(|r| r.events(from)).unwrap_or_default()
}

/// An operator's REHASH, read and checked but not yet installed.
pub(crate) struct Rehash {
    file: String,
    outcome: Result<Reloaded, String>,
}

impl Rehash {
    /// Rereads the configuration for the operator named `operator` (the
    /// file is read here: not under a lock other clients wait for).
    pub(crate) fn run(config: &Config, operator: &str) -> Rehash {
        let Some(reloader) = &config.reloader else {
            let outcome = Err("this server has no configuration to reread".to_string());
            return Rehash { file: "*".into(), outcome };
        };
        let cause = format!("REHASH by {operator}");
        let outcome = reloader.reload(config, &cause).map_err(|e| e.to_string());
        Rehash { file: reloader.file_name(), outcome }
    }

    /// The events that install the settings, written by `from`: none if
    /// the reload failed.
    pub(crate) fn events(&self, from: u16) -> Vec<Event> {
        self.outcome.as_ref().map(|r| r.events(from)).unwrap_or_default()
    }

    /// What the operator on `conn` is told: 382, then notices saying what
    /// came of it (the error, or what takes a restart).
    pub(crate) fn replies(&self, state: &State, conn: ConnId) -> Vec<u8> {
        let server = state.info().name.as_str();
        let nick = state.user(conn).map_or("*", |u| u.nick.as_str());
        let mut out = Vec::new();
        numeric(&mut out, server, reply::RPL_REHASHING, nick, &[&self.file], "Rehashing");
        let mut notice = |text: &str| write_line(&mut out, Some(server), "NOTICE", &[nick], Some(text));
        match &self.outcome {
            Ok(reloaded) => {
                notice("*** Configuration reloaded");
                for change in &reloaded.needs_restart {
                    notice(&format!("*** {change}"));
                }
            }
            Err(error) => {
                notice("*** REHASH failed; the running configuration is kept:");
                for line in error.lines().filter(|l| !l.trim().is_empty()).take(ERROR_LINES) {
                    notice(&format!("*** {line}"));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::reload::Gathering;

    /// A config file in a directory of its own, removed on drop.
    struct File(PathBuf);

    impl File {
        fn new(test: &str) -> File {
            let dir = std::env::temp_dir().join(format!("chatter-reload-{test}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            File(dir.join("chatter.toml"))
        }

        fn says(&self, toml: &str) -> &Self {
            std::fs::write(&self.0, toml).unwrap();
            self
        }
    }

    impl Drop for File {
        fn drop(&mut self) {
            std::fs::remove_dir_all(self.0.parent().unwrap()).ok();
        }
    }

    /// The settings `reloaded` installs, as a replica gathers them.
    fn installed(reloaded: &Reloaded) -> crate::chat::info::Reloadable {
        let mut gathering = Gathering::default();
        let settings = reloaded.events(1).into_iter().filter_map(|event| match event {
            Event::Reload { from, part, last, bytes } => gathering.take(from, part, last, &bytes),
            _ => None,
        });
        settings.last().expect("the pieces make settings")
    }

    #[test]
    fn a_reload_reads_the_file_under_the_command_line() {
        let file = File::new("layers");
        file.says("[server]\ndescription = \"one\"\n[admin]\nemail = \"file@example.org\"\n");
        let command_line = ConfigFile::parse("[admin]\nemail = \"cli@example.org\"\n").unwrap();
        let running = Reloader::new(Some(file.0.clone()), command_line).start().unwrap();
        assert_eq!(
            (running.info.description.as_str(), running.info.admin_email.as_str()),
            ("one", "cli@example.org")
        );
        let reloader = running.reloader.clone().unwrap();

        file.says(
            "[server]\ndescription = \"two\"\nlisten = \"127.0.0.1:1\"\n[admin]\nemail = \"x@example.org\"\n",
        );
        let reloaded = reloader.reload(&running, "a test").unwrap();
        let settings = installed(&reloaded);
        assert_eq!(
            (settings.description.as_str(), settings.admin_email.as_str()),
            ("two", "cli@example.org")
        );
        assert_eq!(reloaded.needs_restart, ["listen = 127.0.0.1:1 takes a restart; still 127.0.0.1:6667"]);

        file.says("[server]\ndescription = \"three\"\nmotd = \"gone.txt\"\n");
        assert!(reloader.reload(&running, "a test").unwrap_err().to_string().contains("gone.txt"));
    }

    #[test]
    fn the_operator_is_told_the_error_a_line_at_a_time_and_no_more_than_a_few() {
        let file = File::new("error");
        file.says("");
        let running = Reloader::new(Some(file.0.clone()), ConfigFile::default()).start().unwrap();
        file.says(&"[server]\nname = \"x\"\n".repeat(20));
        let mut state = State::new(running.info.clone());
        let op = ConnId { worker: 0, slot: 1, generation: 0 };
        let register = Event::Register {
            conn: op,
            nick: "op".into(),
            user: "op".into(),
            realname: "Op".into(),
            host: "host".into(),
            protocol: crate::chat::Protocol::Irc,
            caps: crate::chat::Caps::NONE,
            at: 0,
        };
        state.apply(&register, &mut Vec::new());
        let rehash = Rehash::run(&running, "op");
        assert!(rehash.events(1).is_empty(), "nothing to install");
        let replies = String::from_utf8(rehash.replies(&state, op)).unwrap();
        let lines: Vec<&str> = replies.split_terminator("\r\n").collect();
        let file_name = file.0.display().to_string();
        assert_eq!(lines[0], format!(":chatter.local 382 op {file_name} :Rehashing"));
        assert_eq!(
            lines[1],
            ":chatter.local NOTICE op :*** REHASH failed; the running configuration is kept:"
        );
        assert!(lines[2..].iter().all(|l| l.starts_with(":chatter.local NOTICE op :*** ")), "{lines:?}");
        assert!(lines.len() <= 2 + ERROR_LINES && replies.contains("duplicate key"), "{replies}");
    }
}
