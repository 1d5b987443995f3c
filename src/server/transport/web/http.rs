//! The HTTP request that opens a connection on a WebSocket port, and the
//! answers to it that are not a WebSocket: the page's files, and the
//! statuses for everything else.
//!
//! Only the request head is read (bounded by [`MAX_HEAD_BYTES`]; a body
//! is never read, since nothing here takes one). Each connection serves
//! one request and closes (`Connection: close`): a page is three small
//! files, and a connection that stays open for more would be one more
//! thing to time out.

use tungstenite::http;

use super::page;

/// The longest request head taken: browsers send well under 2 KiB.
pub const MAX_HEAD_BYTES: usize = 8 * 1024;
/// The most headers a request may have.
const MAX_HEADERS: usize = 48;

/// A request head, as much as the answer depends on.
#[derive(Debug)]
pub struct Head {
    pub request: http::Request<()>,
    /// Bytes of the head, including its blank line.
    pub len: usize,
}

/// What the bytes received so far hold.
#[derive(Debug)]
pub enum Parsed {
    /// The head is not complete yet.
    Partial,
    Complete(Box<Head>),
    /// Not an HTTP request this server answers; the response says why.
    Refused(Vec<u8>),
}

/// Parses the request head at the start of `bytes`.
pub fn parse(bytes: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    match parsed.parse(bytes) {
        Ok(httparse::Status::Partial) if bytes.len() >= MAX_HEAD_BYTES => {
            Parsed::Refused(status(431, "Request Header Fields Too Large", "The request head is too long.\n"))
        }
        Ok(httparse::Status::Partial) => Parsed::Partial,
        Ok(httparse::Status::Complete(len)) => match to_request(&parsed) {
            Some(request) => Parsed::Complete(Box::new(Head { request, len })),
            None => Parsed::Refused(status(400, "Bad Request", "The request could not be read.\n")),
        },
        Err(httparse::Error::TooManyHeaders) => Parsed::Refused(status(
            431,
            "Request Header Fields Too Large",
            "The request has too many headers.\n",
        )),
        Err(_) => Parsed::Refused(status(400, "Bad Request", "The request could not be read.\n")),
    }
}

fn to_request(parsed: &httparse::Request<'_, '_>) -> Option<http::Request<()>> {
    let version = match parsed.version? {
        0 => http::Version::HTTP_10,
        _ => http::Version::HTTP_11,
    };
    let mut builder = http::Request::builder().method(parsed.method?).uri(parsed.path?).version(version);
    for header in parsed.headers.iter() {
        builder = builder.header(header.name, header.value);
    }
    builder.body(()).ok()
}

/// Whether `request` asks to become a WebSocket.
pub fn is_upgrade(request: &http::Request<()>) -> bool {
    request
        .headers()
        .get(http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|p| p.trim().eq_ignore_ascii_case("websocket")))
}

/// The answer to a request that is not an upgrade: a file of the page,
/// or the status saying why not.
pub fn answer(request: &http::Request<()>) -> Vec<u8> {
    let head_only = request.method() == http::Method::HEAD;
    if request.method() != http::Method::GET && !head_only {
        let mut response = status(405, "Method Not Allowed", "Only GET and HEAD are served here.\n");
        insert_header(&mut response, "Allow: GET, HEAD");
        return response;
    }
    match page::asset(request.uri().path()) {
        Some(asset) => {
            let mut response = head(200, "OK", asset.content_type, asset.body.len());
            if !head_only {
                response.extend_from_slice(asset.body);
            }
            response
        }
        None => status(404, "Not Found", "There is nothing here: the chat page is at /.\n"),
    }
}

/// A complete response with a short text body.
pub fn status(code: u16, reason: &str, body: &str) -> Vec<u8> {
    let mut response = head(code, reason, "text/plain; charset=utf-8", body.len());
    response.extend_from_slice(body.as_bytes());
    response
}

fn head(code: u16, reason: &str, content_type: &str, length: usize) -> Vec<u8> {
    format!(
        "HTTP/1.1 {code} {reason}\r\n\
         Content-Type: {content_type}\r\n\
         Content-Length: {length}\r\n\
         Cache-Control: no-cache\r\n\
         X-Content-Type-Options: nosniff\r\n\
         Content-Security-Policy: default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:\r\n\
         Connection: close\r\n\r\n"
    )
    .into_bytes()
}

/// Adds a header line to a response made by [`status`].
fn insert_header(response: &mut Vec<u8>, line: &str) {
    let end = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(response.len());
    let at = end + 2;
    response.splice(at..at, format!("{line}\r\n").into_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(text: &str) -> http::Request<()> {
        match parse(text.as_bytes()) {
            Parsed::Complete(head) => head.request,
            other => panic!("{other:?}"),
        }
    }

    fn status_line(response: &[u8]) -> String {
        String::from_utf8_lossy(response).lines().next().unwrap_or("").to_string()
    }

    #[test]
    fn the_page_is_served_at_the_root() {
        let response = answer(&request("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert_eq!(status_line(&response), "HTTP/1.1 200 OK");
        assert!(String::from_utf8_lossy(&response).contains("Content-Type: text/html"));
    }

    #[test]
    fn an_unknown_path_is_not_found() {
        let response = answer(&request("GET /etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert_eq!(status_line(&response), "HTTP/1.1 404 Not Found");
    }

    #[test]
    fn a_post_is_not_allowed_and_says_what_is() {
        let response = answer(&request("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"));
        let text = String::from_utf8_lossy(&response);
        assert_eq!(status_line(&response), "HTTP/1.1 405 Method Not Allowed");
        assert!(text.contains("\r\nAllow: GET, HEAD\r\n"), "{text}");
    }

    #[test]
    fn a_head_request_gets_no_body() {
        let response = answer(&request("HEAD / HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert!(String::from_utf8_lossy(&response).ends_with("\r\n\r\n"));
    }

    #[test]
    fn a_head_that_never_ends_is_refused_once_too_long() {
        let endless = format!("GET / HTTP/1.1\r\nX: {}", "a".repeat(MAX_HEAD_BYTES));
        match parse(endless.as_bytes()) {
            Parsed::Refused(response) => assert!(status_line(&response).contains(" 431 ")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn not_http_is_a_bad_request() {
        match parse(b"NICK alice\r\nUSER a 0 * :A\r\n\r\n") {
            Parsed::Refused(response) => assert!(status_line(&response).contains(" 400 ")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_upgrade_is_recognised() {
        let upgrade =
            request("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
        assert!(is_upgrade(&upgrade));
        assert!(!is_upgrade(&request("GET / HTTP/1.1\r\nHost: x\r\n\r\n")));
    }
}
