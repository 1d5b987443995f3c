//! TLS for clients: loading the certificate and key a server is given, and
//! one client's TLS session as a sans-IO layer.
//!
//! The files are read into a [`Certificate`]: an `Arc<rustls::ServerConfig>`
//! that every new TLS session of a process starts from, made again from the
//! same paths when the settings are reloaded (SIGHUP, REHASH), so a renewed
//! certificate is served to clients that connect after the reload while the
//! ones already connected keep the session they have. Reading and checking
//! happen before anything is served: a missing file, a file with no
//! certificate or key in it, or a key that is not the certificate's, is an
//! error that says which and where, at start-up (and a reload that meets
//! one keeps the certificate it had).
//!
//! [`TlsLayer`] is rustls's `ServerConnection` fed from and drained into
//! byte buffers (never a socket), so the models drive it the way they
//! drive a `Connection` and the iterative model can share it between the
//! client's reader thread and whoever writes to it, under a lock.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Where a server's certificate chain and private key are, in PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Why a certificate cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading TLS certificate {path}: {why}")]
    ReadCert { path: PathBuf, why: String },
    #[error("TLS certificate {path} holds no PEM certificate")]
    NoCert { path: PathBuf },
    #[error("reading TLS key {path}: {why}")]
    ReadKey { path: PathBuf, why: String },
    #[error("TLS key {key} does not belong to certificate {cert}: {why}")]
    Mismatch { cert: PathBuf, key: PathBuf, why: String },
}

/// A certificate and key, read and checked, ready to start sessions with.
#[derive(Debug, Clone)]
pub struct Certificate {
    config: Arc<rustls::ServerConfig>,
}

impl Certificate {
    /// Reads and checks `files`.
    pub fn load(files: &TlsFiles) -> Result<Certificate, TlsError> {
        let chain = read_chain(&files.cert)?;
        let key = PrivateKeyDer::from_pem_file(&files.key)
            .map_err(|e| TlsError::ReadKey { path: files.key.clone(), why: pem_error(e) })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mismatch = |e: rustls::Error| TlsError::Mismatch {
            cert: files.cert.clone(),
            key: files.key.clone(),
            why: e.to_string(),
        };
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(mismatch)?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(mismatch)?;
        Ok(Certificate { config: Arc::new(config) })
    }

    /// A new client's session.
    pub fn session(&self) -> io::Result<TlsLayer> {
        let mut conn = rustls::ServerConnection::new(self.config.clone()).map_err(io::Error::other)?;
        // What a client may be sent is bounded by its sendq before it gets
        // here; rustls must not cut a write short on a limit of its own.
        conn.set_buffer_limit(None);
        Ok(TlsLayer { conn })
    }
}

/// The certificate one process (or pool worker) serves: read again from
/// its files for the first connection after the settings were reloaded.
/// A reload is noticed as the directory's settings being replaced (the
/// same way connection rules are), so SIGHUP and REHASH reach every
/// worker, process or thread, in the order of the log, each reading the
/// files itself: a private key never travels through the log. If the new
/// files cannot be served, the old certificate stays, with an error in
/// the log.
#[derive(Debug)]
pub struct LiveCertificate {
    files: TlsFiles,
    current: Certificate,
    /// The settings `current` was read under.
    read_under: Arc<crate::chat::ServerInfo>,
}

impl LiveCertificate {
    pub fn new(files: TlsFiles, current: Certificate, settings: Arc<crate::chat::ServerInfo>) -> Self {
        LiveCertificate { files, current, read_under: settings }
    }

    /// The certificate for a connection accepted under `settings`.
    pub fn under(&mut self, settings: &Arc<crate::chat::ServerInfo>) -> &Certificate {
        if !Arc::ptr_eq(&self.read_under, settings) {
            self.read_under = settings.clone();
            match Certificate::load(&self.files) {
                Ok(certificate) => {
                    tracing::info!(cert = %self.files.cert.display(), "TLS certificate reread");
                    self.current = certificate;
                }
                Err(e) => tracing::error!("{e}; still serving the certificate read before"),
            }
        }
        &self.current
    }
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let read = |why: String| TlsError::ReadCert { path: path.to_owned(), why };
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(|e| read(pem_error(e)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| read(pem_error(e)))?;
    if chain.is_empty() {
        return Err(TlsError::NoCert { path: path.to_owned() });
    }
    Ok(chain)
}

/// A PEM error in words: the I/O error it wraps as the OS says it
/// ("No such file or directory"), the rest as rustls does.
fn pem_error(e: rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(io) => io.to_string(),
        rustls::pki_types::pem::Error::NoItemsFound => "no PEM item of the right kind in it".into(),
        other => format!("{other:?}"),
    }
}

/// One client's TLS session, between the socket's bytes and the plaintext.
pub struct TlsLayer {
    conn: rustls::ServerConnection,
}

/// What the peer's bytes came to.
#[derive(Debug, PartialEq, Eq)]
pub enum TlsInput {
    /// More may come.
    Open,
    /// The client ended the session (close_notify).
    Closed,
}

impl TlsLayer {
    /// Takes `wire` (bytes from the socket), appends the plaintext they
    /// held to `plain` and what must be sent back (handshake, alerts) to
    /// `out`. An error ends the session; any alert saying why is in `out`.
    pub fn receive(
        &mut self,
        mut wire: &[u8],
        plain: &mut Vec<u8>,
        out: &mut Vec<u8>,
    ) -> Result<TlsInput, String> {
        let mut closed = false;
        while !wire.is_empty() {
            if let Err(e) = self.conn.read_tls(&mut wire) {
                return Err(e.to_string());
            }
            let state = match self.conn.process_new_packets() {
                Ok(state) => state,
                Err(e) => {
                    self.write_out(out);
                    return Err(e.to_string());
                }
            };
            let mut left = state.plaintext_bytes_to_read();
            while left > 0 {
                let start = plain.len();
                plain.resize(start + left, 0);
                let n = self.conn.reader().read(&mut plain[start..]).unwrap_or(0);
                plain.truncate(start + n);
                if n == 0 {
                    break;
                }
                left -= n;
            }
            closed |= state.peer_has_closed();
        }
        self.write_out(out);
        Ok(if closed { TlsInput::Closed } else { TlsInput::Open })
    }

    /// Encrypts `plain` for the client into `out` (held until the handshake
    /// is done if it is not yet).
    pub fn send(&mut self, plain: &[u8], out: &mut Vec<u8>) {
        // With no buffer limit the writer takes everything.
        let _ = self.conn.writer().write_all(plain);
        self.write_out(out);
    }

    /// Ends the session: a close_notify into `out`.
    pub fn close(&mut self, out: &mut Vec<u8>) {
        self.conn.send_close_notify();
        self.write_out(out);
    }

    /// Whether the handshake is still under way.
    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    fn write_out(&mut self, out: &mut Vec<u8>) {
        while self.conn.wants_write() {
            // Writing to a Vec cannot fail.
            if self.conn.write_tls(out).unwrap_or(0) == 0 {
                break;
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A certificate for `localhost` and its key, written to `dir`.
    pub(crate) fn pair_in(dir: &Path, name: &str) -> TlsFiles {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let files = TlsFiles { cert: dir.join(format!("{name}.crt")), key: dir.join(format!("{name}.key")) };
        std::fs::write(&files.cert, made.cert.pem()).unwrap();
        std::fs::write(&files.key, made.signing_key.serialize_pem()).unwrap();
        files
    }

    pub(crate) fn scratch_dir(test: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("chatter-tls-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_matching_pair_loads() {
        let dir = scratch_dir("loads");
        assert!(Certificate::load(&pair_in(&dir, "a")).is_ok());
    }

    #[test]
    fn a_missing_file_is_named_in_the_error() {
        let dir = scratch_dir("missing");
        let files = TlsFiles { cert: dir.join("nowhere.crt"), key: dir.join("nowhere.key") };
        let error = Certificate::load(&files).unwrap_err().to_string();
        assert!(error.contains("nowhere.crt") && error.contains("No such file"), "{error}");
    }

    #[test]
    fn a_key_that_is_not_the_certificates_is_refused() {
        let dir = scratch_dir("mismatch");
        let a = pair_in(&dir, "a");
        let b = pair_in(&dir, "b");
        let crossed = TlsFiles { cert: a.cert, key: b.key };
        let error = Certificate::load(&crossed).unwrap_err();
        assert!(matches!(error, TlsError::Mismatch { .. }), "{error}");
    }

    #[test]
    fn a_key_file_in_place_of_the_certificate_is_refused() {
        let dir = scratch_dir("swapped");
        let a = pair_in(&dir, "a");
        let swapped = TlsFiles { cert: a.key.clone(), key: a.key };
        let error = Certificate::load(&swapped).unwrap_err();
        assert!(matches!(error, TlsError::NoCert { .. } | TlsError::ReadCert { .. }), "{error}");
    }

    /// A client session trusting exactly `files`' certificate.
    pub(crate) fn client_for(files: &TlsFiles) -> rustls::ClientConnection {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(&files.cert).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        rustls::ClientConnection::new(Arc::new(config), "localhost".try_into().unwrap()).unwrap()
    }

    #[test]
    fn plaintext_sent_before_the_handshake_ends_reaches_the_client_after_it() {
        let dir = scratch_dir("handshake");
        let files = pair_in(&dir, "a");
        let mut server = Certificate::load(&files).unwrap().session().unwrap();
        let mut client = client_for(&files);
        let mut to_client = Vec::new();
        server.send(b"hello\r\n", &mut to_client);
        let mut seen = Vec::new();
        for _ in 0..10 {
            let mut to_server = Vec::new();
            client.write_tls(&mut to_server).unwrap();
            let mut plain = Vec::new();
            server.receive(&to_server, &mut plain, &mut to_client).unwrap();
            client.read_tls(&mut to_client.as_slice()).unwrap();
            to_client.clear();
            client.process_new_packets().unwrap();
            let _ = client.reader().read_to_end(&mut seen);
        }
        assert!(!server.is_handshaking());
        assert_eq!(seen, b"hello\r\n");
    }

    #[test]
    fn garbage_instead_of_a_handshake_is_an_error_with_an_alert() {
        let dir = scratch_dir("garbage");
        let mut server = Certificate::load(&pair_in(&dir, "a")).unwrap().session().unwrap();
        let (mut plain, mut out) = (Vec::new(), Vec::new());
        let error = server.receive(b"NICK alice\r\nUSER a 0 * :A\r\n", &mut plain, &mut out);
        assert!(error.is_err());
        assert!(plain.is_empty());
        assert!(!out.is_empty(), "an alert is sent");
    }
}
