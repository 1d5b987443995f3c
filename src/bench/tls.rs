//! The bench's TLS clients (`chatter bench --tls`): what they trust, the
//! name they send and check, and what they say about it in a result.
//!
//! Trust is always said, never assumed: a spawned server gets a pair the
//! bench makes ([`crate::cert`]) and the clients trust exactly that
//! certificate; a running one is checked against the CA file given
//! (`--tls-ca`), or not checked at all (`--tls-insecure`), which every
//! result and report then says. Unchecked, the client still checks the
//! handshake's signature against the certificate it was sent, so it does
//! the same work per handshake either way; only who vouches for the
//! certificate is given up.
//!
//! Every connection is a full handshake: session resumption is off, as a
//! benchmark's clients all share one configuration, which real new clients
//! (other people, other machines) do not, and resumed handshakes would
//! make TLS look cheaper than a crowd of new users makes it.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::bench::results::TlsSpec;

/// How the clients are to trust the server, as the command line says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsPlan {
    /// A spawned server: the bench makes its pair and trusts exactly it.
    Spawned,
    /// A running server, checked against the certificates in this PEM file.
    CaFile(PathBuf),
    /// A running server whose certificate is not checked (`--tls-insecure`).
    Insecure,
}

/// What the clients trust, once the certificate is known.
#[derive(Debug, Clone)]
pub(crate) enum Trust {
    /// These certificates (PEM), and `what` they are, in words for the report.
    Certificates { pem: Vec<u8>, what: String },
    /// Nothing: any certificate is taken.
    Insecure,
}

/// A TLS client side ready to connect: the configuration every client
/// shares, and the server name it sends (SNI) and checks the certificate
/// against.
#[derive(Clone)]
pub(crate) struct ClientTls {
    connector: TlsConnector,
    name: ServerName<'static>,
    spec: TlsSpec,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn invalid(text: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, text)
}

/// The host of a target address ("127.0.0.1:6697", "[::1]:6697",
/// "irc.example.org:6697"), as the name to send and check.
pub(crate) fn host_of(target: &str) -> &str {
    if let Some(rest) = target.strip_prefix('[') {
        return rest.split_once(']').map_or(rest, |(host, _)| host);
    }
    target.rsplit_once(':').map_or(target, |(host, _)| host)
}

/// A host as rustls takes it: an IP address is checked against the
/// certificate's IP entries (and sent as no SNI), a name against its DNS
/// entries.
pub(crate) fn server_name(host: &str) -> io::Result<ServerName<'static>> {
    ServerName::try_from(host.to_string()).map_err(|_| {
        invalid(format!("{host:?} is neither an IP address nor a DNS name to check a certificate against"))
    })
}

impl ClientTls {
    /// A client side trusting `trust`, connecting to `host`.
    pub(crate) fn new(trust: &Trust, host: &str) -> io::Result<ClientTls> {
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?;
        let (config, spec) = match trust {
            Trust::Certificates { pem, what } => {
                let mut roots = RootCertStore::empty();
                let mut found = 0;
                for cert in CertificateDer::pem_slice_iter(pem) {
                    let cert = cert.map_err(|e| invalid(format!("{what}: {e}")))?;
                    roots.add(cert).map_err(|e| invalid(format!("{what}: {e}")))?;
                    found += 1;
                }
                if found == 0 {
                    return Err(invalid(format!("{what}: no certificate in it")));
                }
                let config = builder.with_root_certificates(roots).with_no_client_auth();
                (config, TlsSpec { verified: true, trust: what.clone() })
            }
            Trust::Insecure => {
                let verifier = Arc::new(Unverified(provider().signature_verification_algorithms));
                let config =
                    builder.dangerous().with_custom_certificate_verifier(verifier).with_no_client_auth();
                let spec = TlsSpec {
                    verified: false,
                    trust: "nothing: the server's certificate was not verified (--tls-insecure)".into(),
                };
                (config, spec)
            }
        };
        let mut config = config;
        config.resumption = rustls::client::Resumption::disabled();
        Ok(ClientTls { connector: TlsConnector::from(Arc::new(config)), name: server_name(host)?, spec })
    }

    /// What the clients trusted, for the result.
    pub(crate) fn spec(&self) -> TlsSpec {
        self.spec.clone()
    }

    /// The TLS handshake over a connected socket.
    pub(crate) async fn handshake(&self, tcp: TcpStream) -> io::Result<TlsStream<TcpStream>> {
        self.connector.connect(self.name.clone(), tcp).await
    }
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls").field("name", &self.name).field("spec", &self.spec).finish()
    }
}

/// What a connection negotiated, in words: "TLSv1_3, TLS13_AES_256_GCM_SHA384, X25519".
pub(crate) fn negotiated(connection: &ClientConnection) -> String {
    let version = connection.protocol_version().map_or("?".into(), |v| format!("{v:?}"));
    let suite = connection.negotiated_cipher_suite().map_or("?".into(), |s| format!("{:?}", s.suite()));
    let group = connection.negotiated_key_exchange_group().map_or("?".into(), |g| format!("{:?}", g.name()));
    format!("{version}, {suite}, {group}")
}

/// Takes any certificate (`--tls-insecure`), but still checks that the
/// handshake was signed with the key of the certificate sent, so a client
/// does the same work as one that verifies.
#[derive(Debug)]
struct Unverified(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// A temporary directory holding the pair made for a spawned server;
/// removed when dropped.
pub(crate) struct PairDir {
    pub dir: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub cert_pem: Vec<u8>,
}

impl PairDir {
    /// A fresh pair for 127.0.0.1 (and localhost, ::1) in a new directory.
    pub(crate) fn make() -> io::Result<PairDir> {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("chatter-bench-tls-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let pair = crate::cert::self_signed(&crate::cert::DEFAULT_NAMES).map_err(io::Error::other)?;
        let (cert, key) = (dir.join("bench.crt"), dir.join("bench.key"));
        let made = PairDir { dir, cert, key, cert_pem: pair.cert_pem.clone().into_bytes() };
        crate::cert::write_pair(&pair, &made.cert, &made.key, false)?;
        Ok(made)
    }

    /// Trust exactly this certificate.
    pub(crate) fn trust(&self) -> Trust {
        Trust::Certificates {
            pem: self.cert_pem.clone(),
            what: "exactly the certificate the bench made for the server it started".into(),
        }
    }
}

impl Drop for PairDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::TlsAcceptor;

    #[test]
    fn the_host_is_the_target_without_its_port() {
        assert_eq!(host_of("127.0.0.1:6697"), "127.0.0.1");
        assert_eq!(host_of("[::1]:6697"), "::1");
        assert_eq!(host_of("irc.example.org:6697"), "irc.example.org");
        assert_eq!(host_of("localhost"), "localhost");
        assert!(matches!(server_name("127.0.0.1").unwrap(), ServerName::IpAddress(_)));
        assert!(matches!(server_name("::1").unwrap(), ServerName::IpAddress(_)));
        assert!(matches!(server_name("irc.example.org").unwrap(), ServerName::DnsName(_)));
        assert_eq!(server_name("not a host").unwrap_err().kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let trust = Trust::Certificates { pem: b"hello\n".to_vec(), what: "CA file x.pem".into() };
        let err = ClientTls::new(&trust, "127.0.0.1").err().unwrap();
        assert_eq!(err.to_string(), "CA file x.pem: no certificate in it");
        let spec = ClientTls::new(&Trust::Insecure, "127.0.0.1").ok().unwrap().spec();
        assert!(!spec.verified);
        assert!(spec.trust.contains("not verified"));
    }

    /// A TLS server on loopback with `pair`, answering one line per
    /// connection; its address.
    async fn echo_server(pair: &crate::cert::SelfSigned) -> std::net::SocketAddr {
        let acceptor = TlsAcceptor::from(pair.server_config());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(mut tls) = acceptor.accept(tcp).await {
                        let _ = tls.write_all(b"hello\r\n").await;
                        let _ = tls.shutdown().await;
                    }
                });
            }
        });
        addr
    }

    async fn greeting(tls: &ClientTls, addr: std::net::SocketAddr) -> io::Result<(String, String)> {
        let tcp = TcpStream::connect(addr).await?;
        let mut stream = tls.handshake(tcp).await?;
        let said = negotiated(stream.get_ref().1);
        let mut text = String::new();
        stream.read_to_string(&mut text).await?;
        Ok((text, said))
    }

    /// Trusting one certificate is trusting that one: the server's is
    /// taken, another self-signed one for the same names is refused, and
    /// unverified clients take either.
    #[test]
    fn clients_trust_exactly_the_certificate_they_are_given() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let pair = crate::cert::self_signed(&crate::cert::DEFAULT_NAMES).unwrap();
            let other = crate::cert::self_signed(&crate::cert::DEFAULT_NAMES).unwrap();
            let addr = echo_server(&pair).await;
            let trusting = |p: &crate::cert::SelfSigned| Trust::Certificates {
                pem: p.cert_pem.clone().into_bytes(),
                what: "test".into(),
            };
            let good = ClientTls::new(&trusting(&pair), "127.0.0.1").unwrap();
            let (text, said) = greeting(&good, addr).await.unwrap();
            assert_eq!(text, "hello\r\n");
            assert!(said.starts_with("TLSv1_3, TLS13_"), "{said}");
            let wrong = ClientTls::new(&trusting(&other), "127.0.0.1").unwrap();
            let err = greeting(&wrong, addr).await.unwrap_err();
            assert!(err.to_string().contains("invalid peer certificate"), "{err}");
            // The right certificate, the wrong name.
            let misnamed = ClientTls::new(&trusting(&pair), "chat.example.org").unwrap();
            let err = greeting(&misnamed, addr).await.unwrap_err();
            assert!(err.to_string().contains("not valid for name"), "{err}");
            let insecure = ClientTls::new(&Trust::Insecure, "chat.example.org").unwrap();
            assert_eq!(greeting(&insecure, addr).await.unwrap().0, "hello\r\n");
        });
    }

    #[test]
    fn a_pair_dir_holds_a_pair_and_goes_away() {
        let made = PairDir::make().unwrap();
        let dir = made.dir.clone();
        assert!(made.cert.is_file() && made.key.is_file());
        assert!(matches!(made.trust(), Trust::Certificates { .. }));
        drop(made);
        assert!(!dir.exists());
    }
}
