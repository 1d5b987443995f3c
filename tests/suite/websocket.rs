//! IRC over WebSocket (`--ws-listen`, `--wss-listen`) and the page served
//! beside it, under every model and on a cluster: web clients, in either
//! message type, chat with TCP clients through the same sessions and
//! limits; the subprotocol follows the client's preference; what a web
//! client must not send gets the close code RFC 6455 gives it, after an
//! IRC line saying why, and never touches anyone else; HTTP requests for
//! anything but the page get the status that says why.

use crate::common::wire::{self, Frames};
use crate::common::*;

use std::io::{Read, Write};
use std::net::TcpStream;

use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Message, WebSocket};

const TEXT: &str = "text.ircv3.net";
const BINARY: &str = "binary.ircv3.net";

fn web_server(model: Model, extra: &[&str]) -> Server {
    let mut flags = vec!["--ws-listen", "127.0.0.1:0"];
    flags.extend_from_slice(extra);
    Server::start_with(model, &flags)
}

fn ws_addr(server: &Server) -> String {
    server.web_addr(false).expect("a WebSocket listener")
}

/// A raw WebSocket to `addr` offering `protocols`: the socket and the
/// subprotocol the server chose, or the HTTP status it refused with.
fn open(addr: &str, protocols: &[&str]) -> Result<(WebSocket<TcpStream>, Option<String>), u16> {
    let socket = TcpStream::connect(addr).expect("connect");
    socket.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut request =
        tungstenite::client::IntoClientRequest::into_client_request(format!("ws://{addr}/")).unwrap();
    if !protocols.is_empty() {
        request.headers_mut().insert("Sec-WebSocket-Protocol", protocols.join(", ").parse().unwrap());
    }
    match tungstenite::client::client(request, socket) {
        Ok((socket, response)) => {
            let chosen =
                response.headers().get("Sec-WebSocket-Protocol").map(|v| v.to_str().unwrap().to_string());
            Ok((socket, chosen))
        }
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response))) => {
            Err(response.status().as_u16())
        }
        Err(e) => panic!("handshake: {e}"),
    }
}

/// Reads messages until the server closes: the texts of the lines before
/// the close frame, and its code.
fn read_to_close(socket: &mut WebSocket<TcpStream>) -> (Vec<String>, Option<CloseCode>) {
    let mut lines = Vec::new();
    loop {
        match socket.read() {
            Ok(Message::Text(text)) => lines.push(text.to_string()),
            Ok(Message::Binary(bytes)) => lines.push(String::from_utf8_lossy(&bytes).into_owned()),
            Ok(Message::Close(frame)) => return (lines, frame.map(|f| f.code)),
            Ok(_) => {}
            Err(e) => panic!("no close frame; read failed: {e}; lines: {lines:?}"),
        }
    }
}

/// Registers a raw WebSocket as `nick`, reading through the welcome.
fn register_raw(socket: &mut WebSocket<TcpStream>, nick: &str) {
    socket.send(Message::text(format!("NICK {nick}"))).unwrap();
    socket.send(Message::text(format!("USER {nick} 0 * :{nick}"))).unwrap();
    loop {
        match socket.read().expect("the welcome") {
            Message::Text(text) if text.contains(" 422 ") || text.contains(" 376 ") => return,
            _ => {}
        }
    }
}

fn web_clients_chat_with_tcp_clients_in_either_message_type(model: Model) {
    let server = web_server(model, &[]);
    let ws = ws_addr(&server);
    let mut alice = Client::register(&server, "alice");
    let mut text = Client::connect_web(&ws, false, &[TEXT], Frames::Text);
    text.register_as("textual");
    let mut binary = Client::connect_web(&ws, false, &[BINARY], Frames::Binary);
    binary.register_as("binary");
    for client in [&mut alice, &mut text, &mut binary] {
        client.join("#web");
    }
    alice.expect_line(":binary!binary@127.0.0.1 JOIN #web");
    text.send("PRIVMSG #web :from the browser ✓");
    alice.expect_line(":textual!textual@127.0.0.1 PRIVMSG #web :from the browser ✓");
    binary.expect_line(":textual!textual@127.0.0.1 PRIVMSG #web :from the browser ✓");
    alice.send("PRIVMSG #web :from a terminal");
    text.expect_line(":alice!alice@127.0.0.1 PRIVMSG #web :from a terminal");
    binary.expect_line(":alice!alice@127.0.0.1 PRIVMSG #web :from a terminal");
    binary.send("PRIVMSG alice :private");
    alice.expect_line(":binary!binary@127.0.0.1 PRIVMSG alice :private");
    text.send("QUIT :bye");
    alice.expect_line(":textual!textual@127.0.0.1 QUIT :Quit: bye");
}

fn the_subprotocol_follows_the_clients_preference(model: Model) {
    let server = web_server(model, &[]);
    let ws = ws_addr(&server);
    let chosen = |protocols: &[&str]| open(&ws, protocols).map(|(_, chosen)| chosen);
    assert_eq!(chosen(&[BINARY]), Ok(Some(BINARY.into())));
    assert_eq!(chosen(&[TEXT]), Ok(Some(TEXT.into())));
    assert_eq!(chosen(&[BINARY, TEXT]), Ok(Some(BINARY.into())));
    assert_eq!(chosen(&[TEXT, BINARY]), Ok(Some(TEXT.into())));
    assert_eq!(chosen(&["mqtt", TEXT]), Ok(Some(TEXT.into())));
    // None asked for: accepted without one (text), as the spec allows.
    assert_eq!(chosen(&[]), Ok(None));
    // Only others: nothing would satisfy the client.
    assert_eq!(chosen(&["mqtt"]), Err(400));
}

fn a_client_without_a_subprotocol_is_sent_text_and_may_send_either(model: Model) {
    let server = web_server(model, &[]);
    let mut legacy = Client::connect_web(&ws_addr(&server), false, &[], Frames::Binary);
    legacy.register_as("legacy");
    legacy.send("PRIVMSG legacy :to myself");
    legacy.expect_line(":legacy!legacy@127.0.0.1 PRIVMSG legacy :to myself");
}

/// One HTTP request on a fresh connection: the status line and the rest.
fn http(addr: &str, request: &str) -> (String, String) {
    let mut socket = TcpStream::connect(addr).unwrap();
    socket.set_read_timeout(Some(PATIENCE)).unwrap();
    socket.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    socket.read_to_end(&mut response).expect("the response, then the end");
    let response = String::from_utf8_lossy(&response).into_owned();
    let (status, rest) = response.split_once("\r\n").unwrap_or((&response, ""));
    (status.to_string(), rest.to_string())
}

fn the_page_is_served_and_nothing_else(model: Model) {
    let server = web_server(model, &[]);
    let ws = ws_addr(&server);
    let (status, rest) = http(&ws, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(rest.contains("Content-Type: text/html"), "{rest}");
    assert!(rest.to_lowercase().contains("<!doctype html>"), "{rest}");
    let (status, _) = http(&ws, "GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    let (status, rest) = http(&ws, "DELETE / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 405 Method Not Allowed");
    assert!(rest.contains("Allow: GET, HEAD"), "{rest}");
    let (status, _) = http(&ws, "NICK alice\r\nUSER a 0 * :A\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 400 Bad Request");
    let (status, _) = http(&ws, &format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "y".repeat(9000)));
    assert_eq!(status, "HTTP/1.1 431 Request Header Fields Too Large");
    // An upgrade anywhere but the root.
    let (status, _) = http(
        &ws,
        "GET /irc HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    );
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    // None of it touched IRC.
    let mut alice = Client::register(&server, "alice");
    alice.send("LUSERS");
    alice.expect_line("There are 1 users");
}

fn a_message_over_the_limit_is_closed_with_1009_after_a_line_saying_so(model: Model) {
    let server = web_server(model, &[]);
    let mut bystander = Client::register(&server, "bystander");
    bystander.join("#calm");
    let (mut socket, _) = open(&ws_addr(&server), &[TEXT]).unwrap();
    register_raw(&mut socket, "big");
    socket.send(Message::text("JOIN #calm")).unwrap();
    socket.send(Message::text(format!("PRIVMSG #calm :{}", "x".repeat(20_000)))).unwrap();
    let (lines, code) = read_to_close(&mut socket);
    assert_eq!(code, Some(CloseCode::Size));
    let error = lines.iter().find(|l| l.starts_with("ERROR ")).unwrap_or_else(|| panic!("{lines:?}"));
    assert!(error.contains("over 16384 bytes"), "{error}");
    bystander.expect_line(":big!big@127.0.0.1 QUIT :WebSocket message over 16384 bytes");
    bystander.expect_no_line("xxxx");
}

fn a_line_over_irc_limits_within_a_message_is_refused_as_over_tcp(model: Model) {
    let server = web_server(model, &[]);
    let mut web = Client::connect_web(&ws_addr(&server), false, &[TEXT], Frames::Text);
    web.register_as("web");
    web.send(&format!("PRIVMSG web :{}", "x".repeat(1000)));
    web.expect_numeric("417");
    web.send("PRIVMSG web :still here");
    web.expect_line("PRIVMSG web :still here");
}

/// Sends a masked client frame built by hand (tungstenite will not send
/// a text frame that is not UTF-8).
fn send_raw_frame(socket: &mut WebSocket<TcpStream>, opcode: u8, payload: &[u8]) {
    assert!(payload.len() < 126);
    let mut frame = vec![0x80 | opcode, 0x80 | payload.len() as u8, 0, 0, 0, 0];
    frame.extend_from_slice(payload);
    socket.get_mut().write_all(&frame).unwrap();
}

fn a_text_message_that_is_not_utf8_is_closed_with_1007(model: Model) {
    let server = web_server(model, &[]);
    let (mut socket, _) = open(&ws_addr(&server), &[TEXT]).unwrap();
    register_raw(&mut socket, "mangled");
    send_raw_frame(&mut socket, 0x1, b"PRIVMSG mangled :caf\xe9");
    let (lines, code) = read_to_close(&mut socket);
    assert_eq!(code, Some(CloseCode::Invalid), "{lines:?}");
    assert!(lines.iter().any(|l| l.starts_with("ERROR ") && l.contains("not UTF-8")), "{lines:?}");
}

fn a_binary_message_that_is_not_utf8_is_refused_like_a_tcp_line(model: Model) {
    let server = web_server(model, &[]);
    let mut alice = Client::register(&server, "alice");
    let (mut socket, _) = open(&ws_addr(&server), &[TEXT]).unwrap();
    register_raw(&mut socket, "latin");
    socket.send(Message::binary(b"PRIVMSG alice :caf\xe9".to_vec())).unwrap();
    loop {
        match socket.read().expect("an answer") {
            Message::Text(text) if text.contains("FAIL PRIVMSG INVALID_UTF8") => break,
            Message::Text(_) => {}
            other => panic!("{other:?}"),
        }
    }
    alice.expect_no_line("caf");
}

fn a_web_client_is_held_to_flood_control(model: Model) {
    let server = web_server(model, &["--flood-burst", "5", "--flood-rate", "1", "--flood-recvq", "10240"]);
    let mut observer = Client::register(&server, "observer");
    observer.join("#c");
    let (mut socket, _) = open(&ws_addr(&server), &[TEXT]).unwrap();
    register_raw(&mut socket, "flooder");
    for i in 0..400 {
        let sent = socket.write(Message::text(format!("PRIVMSG #c :line {i} {}", "y".repeat(60))));
        if sent.is_err() || socket.flush().is_err() {
            break;
        }
    }
    let (lines, _) = read_to_close(&mut socket);
    assert!(lines.iter().any(|l| l.contains("(Excess Flood)")), "{lines:?}");
}

/// A web client that stops reading is held to its sendq as a TCP one is:
/// dropped with its closing line while a reader beside it loses nothing.
fn a_web_client_that_does_not_read_is_dropped_at_its_sendq(model: Model) {
    let server = web_server(model, &["--sendq", "65536", "--no-flood-control"]);
    let mut sender = Client::register(&server, "sender");
    sender.join("#flood");
    let (mut slow, _) = open(&ws_addr(&server), &[TEXT]).unwrap();
    register_raw(&mut slow, "slow");
    slow.send(Message::text("JOIN #flood")).unwrap();
    sender.expect_line(":slow!slow@127.0.0.1 JOIN #flood");
    let mut reader = Client::register(&server, "reader");
    reader.join("#flood");
    sender.expect_line(":reader!reader@127.0.0.1 JOIN #flood");
    let filler = "w".repeat(400);
    let mut sent = 0;
    // Bounded: 20 MB of lines, far past any socket buffers and the sendq.
    while sent < 50_000 {
        for _ in 0..100 {
            sender.send(&format!("PRIVMSG #flood :msg {sent} {filler}"));
            sent += 1;
        }
        sender.sync();
        let lines = reader.sync();
        if lines.iter().any(|l| l == ":slow!slow@127.0.0.1 QUIT :SendQ exceeded") {
            break;
        }
    }
    assert!(reader.seen.iter().any(|l| l == ":slow!slow@127.0.0.1 QUIT :SendQ exceeded"), "not dropped");
    let received = reader.seen.iter().filter(|l| l.contains("PRIVMSG #flood :msg ")).count();
    assert_eq!(received, sent, "the reader missed messages");
    let (lines, _) = read_to_close(&mut slow);
    assert!(
        lines.iter().any(|l| l == "ERROR :Closing Link: 127.0.0.1 (SendQ exceeded)"),
        "{:?}",
        lines.last()
    );
}

fn secure_websocket_serves_the_same(model: Model) {
    let certificate = wire::certificate();
    let (cert, key) = (certificate.cert.display().to_string(), certificate.key.display().to_string());
    let server =
        Server::start_with(model, &["--wss-listen", "127.0.0.1:0", "--tls-cert", &cert, "--tls-key", &key]);
    let wss = server.web_addr(true).expect("a secure WebSocket listener");
    let mut alice = Client::register(&server, "alice");
    let mut web = Client::connect_web(&wss, true, &[TEXT], Frames::Text);
    web.register_as("secure");
    web.send("PRIVMSG alice :over wss");
    alice.expect_line(":secure!secure@127.0.0.1 PRIVMSG alice :over wss");
    alice.send("PRIVMSG secure :back");
    web.expect_line(":alice!alice@127.0.0.1 PRIVMSG secure :back");
}

fn a_web_client_that_goes_quiet_is_pinged_and_dropped(model: Model) {
    let server = web_server(model, &["--ping-interval", "1"]);
    let (mut socket, _) = open(&ws_addr(&server), &[TEXT]).unwrap();
    register_raw(&mut socket, "quiet");
    // Never answering the PING (a WebSocket ping would not do: the IRC
    // session is what must hear from the client).
    let (lines, code) = read_to_close(&mut socket);
    assert!(lines.iter().any(|l| l.starts_with("PING ")), "{lines:?}");
    assert!(lines.iter().any(|l| l.starts_with("ERROR ") && l.contains("Ping timeout")), "{lines:?}");
    assert_eq!(code, Some(CloseCode::Normal));
}

each_model!(
    web_clients_chat_with_tcp_clients_in_either_message_type,
    the_subprotocol_follows_the_clients_preference,
    a_client_without_a_subprotocol_is_sent_text_and_may_send_either,
    the_page_is_served_and_nothing_else,
    a_message_over_the_limit_is_closed_with_1009_after_a_line_saying_so,
    a_line_over_irc_limits_within_a_message_is_refused_as_over_tcp,
    a_text_message_that_is_not_utf8_is_closed_with_1007,
    a_binary_message_that_is_not_utf8_is_refused_like_a_tcp_line,
    a_web_client_is_held_to_flood_control,
    a_web_client_that_does_not_read_is_dropped_at_its_sendq,
    secure_websocket_serves_the_same,
    a_web_client_that_goes_quiet_is_pinged_and_dropped,
);
