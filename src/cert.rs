//! A self-signed certificate and its private key, for trying chatter's TLS
//! out (`chatter cert`) and for the bench's TLS runs, which make a pair of
//! their own for each spawned server and trust exactly that certificate.
//!
//! What it is not: a certificate anyone else trusts. Nobody vouches for a
//! self-signed certificate, so every client must be told to trust this one
//! (or to skip checking, which gives up what TLS is for). A server on the
//! internet wants a certificate from a CA its users' clients already trust.
//!
//! The pair is an ECDSA P-256 key (fast handshakes) and a certificate naming
//! each of the names given as a subjectAltName of its own kind: an IP
//! address as an IP address, anything else as a DNS name, because clients
//! check a connection's name against the entry of that kind only. It is
//! valid from 1975 to 4096 (rcgen's defaults): a try-out certificate that
//! expires under a running test server helps no one.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::net::IpAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair, SanType};
use rustls::pki_types::ServerName;

/// The names `chatter cert` puts in a certificate when given none: this
/// machine, by name and by both loopback addresses.
pub const DEFAULT_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// A certificate and its private key, both PEM.
#[derive(Debug, Clone)]
pub struct SelfSigned {
    pub cert_pem: String,
    pub key_pem: String,
}

#[cfg(test)]
impl SelfSigned {
    /// A rustls server serving this pair, for tests that handshake with it.
    pub(crate) fn server_config(&self) -> std::sync::Arc<rustls::ServerConfig> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let cert = CertificateDer::from_pem_slice(self.cert_pem.as_bytes()).unwrap();
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).unwrap();
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap();
        std::sync::Arc::new(config)
    }
}

/// Why a pair could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("a certificate needs at least one name")]
    NoNames,
    #[error("{0:?} is neither an IP address nor a DNS name")]
    BadName(String),
    #[error("making the certificate: {0}")]
    Generate(#[from] rcgen::Error),
}

/// A name as a subjectAltName of the right kind: an IP address, or a DNS
/// name (checked as clients check the name they connect to).
fn san(name: &str) -> Result<SanType, CertError> {
    let bad = || CertError::BadName(name.to_string());
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    match ServerName::try_from(name) {
        Ok(ServerName::DnsName(_)) => Ok(SanType::DnsName(name.try_into().map_err(|_| bad())?)),
        _ => Err(bad()),
    }
}

/// A new key and a certificate for `names`, signed with that key. The
/// first name is also the certificate's common name.
pub fn self_signed<S: AsRef<str>>(names: &[S]) -> Result<SelfSigned, CertError> {
    let first = names.first().ok_or(CertError::NoNames)?.as_ref();
    let mut params = CertificateParams::default();
    params.subject_alt_names = names.iter().map(|n| san(n.as_ref())).collect::<Result<_, _>>()?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, first);
    params.distinguished_name.push(DnType::OrganizationName, "chatter (self-signed)");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    Ok(SelfSigned { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
}

/// Writes the certificate to `cert` and the key to `key`, the key readable
/// by its owner only (mode 0600, also when an existing file is replaced).
/// Without `force` an existing file is an error and neither file is
/// written.
pub fn write_pair(pair: &SelfSigned, cert: &Path, key: &Path, force: bool) -> io::Result<()> {
    if cert == key {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("the certificate and the key cannot both go to {}", cert.display()),
        ));
    }
    if !force {
        for path in [cert, key] {
            if path.exists() || path.is_symlink() {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} already exists (--force replaces it)", path.display()),
                ));
            }
        }
    }
    // The key first: if it cannot be written, no certificate without its key is left behind.
    write_file(key, &pair.key_pem, 0o600, force)?;
    write_file(cert, &pair.cert_pem, 0o644, force)
}

fn write_file(path: &Path, text: &str, mode: u32, replace: bool) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).mode(mode);
    if replace {
        options.create(true).truncate(true);
    } else {
        // Checked above too; this closes the gap between the check and the write.
        options.create_new(true);
    }
    let mut file = options.open(path).map_err(|e| named(path, e))?;
    // `mode` applies only to a file created here; a replaced one keeps its
    // own permissions unless told, and a key must not stay readable.
    file.set_permissions(fs::Permissions::from_mode(mode)).map_err(|e| named(path, e))?;
    file.write_all(text.as_bytes()).map_err(|e| named(path, e))?;
    file.sync_all().map_err(|e| named(path, e))
}

fn named(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConnection};

    use super::*;

    fn provider() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    fn parsed(pair: &SelfSigned) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
        let cert = CertificateDer::from_pem_slice(pair.cert_pem.as_bytes()).unwrap();
        let key = PrivateKeyDer::from_pem_slice(pair.key_pem.as_bytes()).unwrap();
        (cert, key)
    }

    /// A TLS handshake in memory, from a client that trusts exactly this
    /// certificate and connects to `name`: Ok when the client accepted it.
    fn handshake(pair: &SelfSigned, name: &str) -> Result<(), rustls::Error> {
        let mut roots = RootCertStore::empty();
        roots.add(parsed(pair).0).unwrap();
        let client_config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = ServerName::try_from(name.to_string()).unwrap();
        let mut client = ClientConnection::new(Arc::new(client_config), name).unwrap();
        let mut server = ServerConnection::new(pair.server_config()).unwrap();
        for _ in 0..10 {
            if !client.is_handshaking() && !server.is_handshaking() {
                return Ok(());
            }
            let mut bytes = Vec::new();
            client.write_tls(&mut bytes).unwrap();
            server.read_tls(&mut &bytes[..]).unwrap();
            server.process_new_packets()?;
            bytes.clear();
            server.write_tls(&mut bytes).unwrap();
            client.read_tls(&mut &bytes[..]).unwrap();
            client.process_new_packets()?;
        }
        panic!("the handshake did not finish");
    }

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("chatter-cert-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn the_pair_is_one_rustls_serves() {
        let pair = self_signed(&DEFAULT_NAMES).unwrap();
        assert!(pair.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(pair.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        // The key matches the certificate, or this fails.
        pair.server_config();
    }

    #[test]
    fn every_name_is_a_subject_alt_name_of_its_kind() {
        let pair = self_signed(&["localhost", "chat.example.org", "127.0.0.1", "::1", "10.1.2.3"]).unwrap();
        for name in ["localhost", "chat.example.org", "127.0.0.1", "::1", "10.1.2.3"] {
            handshake(&pair, name).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        // Names not in it are refused; an IP address is checked against the
        // IP entries only, so a DNS entry spelling an address is no match.
        for name in ["example.org", "127.0.0.2", "::2", "other.localhost"] {
            let err = handshake(&pair, name).unwrap_err();
            assert!(
                matches!(
                    err,
                    rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName)
                        | rustls::Error::InvalidCertificate(
                            rustls::CertificateError::NotValidForNameContext { .. }
                        )
                ),
                "{name}: {err:?}"
            );
        }
        let dns_only = self_signed(&["1.2.3.4.example"]).unwrap();
        handshake(&dns_only, "1.2.3.4.example").unwrap();
    }

    #[test]
    fn names_that_are_neither_are_refused() {
        assert!(matches!(self_signed::<&str>(&[]), Err(CertError::NoNames)));
        for bad in ["", "two words", "bad!name", "ünicode.example"] {
            assert!(matches!(self_signed(&[bad]), Err(CertError::BadName(n)) if n == bad), "{bad:?}");
        }
    }

    #[test]
    fn the_key_file_is_the_owners_only() {
        let dir = temp_dir("mode");
        let (cert, key) = (dir.join("c.crt"), dir.join("c.key"));
        let pair = self_signed(&["localhost"]).unwrap();
        write_pair(&pair, &cert, &key, false).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&key), 0o600);
        assert_eq!(fs::read_to_string(&key).unwrap(), pair.key_pem);
        assert_eq!(fs::read_to_string(&cert).unwrap(), pair.cert_pem);
        // A key file that was world-readable is not left so when replaced.
        fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
        write_pair(&pair, &cert, &key, true).unwrap();
        assert_eq!(mode(&key), 0o600);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn existing_files_are_kept_unless_forced() {
        let dir = temp_dir("force");
        let (cert, key) = (dir.join("c.crt"), dir.join("c.key"));
        fs::write(&key, "mine").unwrap();
        let pair = self_signed(&["localhost"]).unwrap();
        let err = write_pair(&pair, &cert, &key, false).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert!(err.to_string().contains("c.key"), "{err}");
        // Neither file was written.
        assert_eq!(fs::read_to_string(&key).unwrap(), "mine");
        assert!(!cert.exists());
        write_pair(&pair, &cert, &key, true).unwrap();
        assert_eq!(fs::read_to_string(&key).unwrap(), pair.key_pem);
        // One path for both is refused, forced or not.
        let err = write_pair(&pair, &cert, &cert, true).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        fs::remove_dir_all(&dir).unwrap();
    }
}
