//! What a test client's bytes travel over: plain TCP, TLS, or a WebSocket
//! (plain or inside TLS), all as one `Read + Write` stream of IRC lines,
//! so that a test body reads the same whatever the server was reached
//! through. And the certificate the tests serve, made once per test
//! binary (the tests make their own: nothing is read from the repository).

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Message, WebSocket};

/// A self-signed certificate for `localhost` and 127.0.0.1, in files.
pub struct TestCertificate {
    pub cert: PathBuf,
    pub key: PathBuf,
    der: CertificateDer<'static>,
}

/// The test binary's certificate (made on first use, in a directory of
/// its own under the system's temporary directory).
pub fn certificate() -> &'static TestCertificate {
    static CERTIFICATE: OnceLock<TestCertificate> = OnceLock::new();
    CERTIFICATE.get_or_init(|| {
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let made = rcgen::generate_simple_self_signed(names).expect("make a certificate");
        let dir = std::env::temp_dir().join(format!("chatter-test-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a directory for the certificate");
        let (cert, key) = (dir.join("test.crt"), dir.join("test.key"));
        std::fs::write(&cert, made.cert.pem()).expect("write the certificate");
        std::fs::write(&key, made.signing_key.serialize_pem()).expect("write the key");
        TestCertificate { cert, key, der: made.cert.der().clone() }
    })
}

/// A client TLS configuration trusting exactly `der`.
pub fn client_config(der: &CertificateDer<'static>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(der.clone()).expect("the test certificate as a root");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// The flags that serve the test certificate.
pub fn tls_args() -> Vec<String> {
    let certificate = certificate();
    vec![
        "--tls-cert".into(),
        certificate.cert.display().to_string(),
        "--tls-key".into(),
        certificate.key.display().to_string(),
    ]
}

/// TCP, or TLS over it.
pub enum Secure {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Secure {
    /// A TLS session with `socket`'s server, trusting the test certificate.
    pub fn tls(socket: TcpStream) -> Secure {
        let name = ServerName::try_from("localhost").expect("a server name");
        let conn = rustls::ClientConnection::new(client_config(&certificate().der), name).expect("a session");
        Secure::Tls(Box::new(rustls::StreamOwned::new(conn, socket)))
    }

    pub fn socket(&self) -> &TcpStream {
        match self {
            Secure::Plain(s) => s,
            Secure::Tls(s) => s.get_ref(),
        }
    }
}

impl Read for Secure {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Secure::Plain(s) => s.read(buf),
            Secure::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Secure {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Secure::Plain(s) => s.write(buf),
            Secure::Tls(s) => patiently(|| s.write(buf)),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Secure::Plain(s) => s.flush(),
            Secure::Tls(s) => patiently(|| s.flush()),
        }
    }
}

/// Retries what a read timeout interrupted: a TLS write may have to read
/// first (the rest of the handshake), and the client's short read
/// timeout is for its own polling, not a limit on the server.
fn patiently<T>(mut attempt: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    let deadline = std::time::Instant::now() + super::PATIENCE;
    loop {
        match attempt() {
            Err(e)
                if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
                    && std::time::Instant::now() < deadline => {}
            result => return result,
        }
    }
}

/// Which WebSocket message type a web client sends lines in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frames {
    Text,
    Binary,
}

/// A client's connection: lines are bytes ending in CR LF, whatever
/// carries them.
pub enum ClientStream {
    Direct(Secure),
    /// One line per message; lines written are sent once complete.
    Web {
        socket: Box<WebSocket<Secure>>,
        frames: Frames,
        partial: Vec<u8>,
        pending: Vec<u8>,
    },
}

impl ClientStream {
    /// A WebSocket over `secure` to `/`, offering `subprotocols`.
    pub fn web(secure: Secure, host: &str, subprotocols: &[&str], frames: Frames) -> ClientStream {
        let scheme = if matches!(secure, Secure::Tls(_)) { "wss" } else { "ws" };
        let mut request =
            tungstenite::client::IntoClientRequest::into_client_request(format!("{scheme}://{host}/"))
                .expect("a request");
        if !subprotocols.is_empty() {
            request
                .headers_mut()
                .insert("Sec-WebSocket-Protocol", subprotocols.join(", ").parse().expect("a header value"));
        }
        let config = WebSocketConfig::default().max_message_size(Some(1 << 20));
        let (socket, _) = tungstenite::client::client_with_config(request, secure, Some(config))
            .expect("a WebSocket handshake");
        ClientStream::Web { socket: Box::new(socket), frames, partial: Vec::new(), pending: Vec::new() }
    }

    pub fn socket(&self) -> &TcpStream {
        match self {
            ClientStream::Direct(secure) => secure.socket(),
            ClientStream::Web { socket, .. } => socket.get_ref().socket(),
        }
    }

    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.socket().set_read_timeout(timeout)
    }

    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.socket().shutdown(how)
    }
}

impl Read for ClientStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            ClientStream::Direct(secure) => secure.read(buf),
            ClientStream::Web { socket, pending, .. } => {
                while pending.is_empty() {
                    match socket.read() {
                        Ok(Message::Text(text)) => pending.extend_from_slice(text.as_bytes()),
                        Ok(Message::Binary(bytes)) => pending.extend_from_slice(&bytes),
                        Ok(Message::Close(_)) => return Ok(0),
                        Ok(_) => continue,
                        Err(tungstenite::Error::Io(e)) => return Err(e),
                        Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                            return Ok(0);
                        }
                        Err(e) => return Err(io::Error::other(e)),
                    }
                    pending.extend_from_slice(b"\r\n");
                }
                let n = buf.len().min(pending.len());
                buf[..n].copy_from_slice(&pending[..n]);
                pending.drain(..n);
                Ok(n)
            }
        }
    }
}

impl Write for ClientStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            ClientStream::Direct(secure) => secure.write(buf),
            ClientStream::Web { socket, frames, partial, .. } => {
                partial.extend_from_slice(buf);
                while let Some(end) = partial.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = partial.drain(..=end).collect();
                    let line = line.strip_suffix(b"\n").unwrap_or(&line);
                    let line = line.strip_suffix(b"\r").unwrap_or(line).to_vec();
                    let message = match frames {
                        Frames::Text => Message::text(String::from_utf8(line).map_err(io::Error::other)?),
                        Frames::Binary => Message::binary(line),
                    };
                    socket.send(message).map_err(io::Error::other)?;
                }
                Ok(buf.len())
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            ClientStream::Direct(secure) => secure.flush(),
            ClientStream::Web { socket, .. } => socket.flush().map_err(io::Error::other),
        }
    }
}
