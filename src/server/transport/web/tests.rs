//! The WebSocket layer against tungstenite's client side, byte buffer to
//! byte buffer: handshakes, subprotocols, lines both ways, and the close
//! codes for what a client must not send.

use super::*;

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

fn upgrade(protocols: Option<&str>) -> String {
    let mut request = format!(
        "GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n"
    );
    if let Some(p) = protocols {
        request.push_str(&format!("Sec-WebSocket-Protocol: {p}\r\n"));
    }
    request.push_str("\r\n");
    request
}

/// A client's side of an open WebSocket.
struct Client {
    socket: WebSocketContext,
}

impl Client {
    fn new() -> Client {
        Client { socket: WebSocketContext::new(Role::Client, None) }
    }

    fn frame(&mut self, message: Message) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buffers = Buffers { input: &[], output: &mut out };
        self.socket.write(&mut buffers, message).unwrap();
        self.socket.flush(&mut buffers).unwrap();
        out
    }

    fn messages(&mut self, bytes: &[u8]) -> Vec<Message> {
        let mut sink = Vec::new();
        let mut buffers = Buffers { input: bytes, output: &mut sink };
        let mut messages = Vec::new();
        while let Ok(message) = self.socket.read(&mut buffers) {
            messages.push(message);
        }
        messages
    }
}

/// A layer opened with `protocols` offered: the response, and the layer.
fn open(protocols: Option<&str>) -> (String, WebLayer) {
    let mut layer = WebLayer::default();
    let (mut irc, mut out) = (Vec::new(), Vec::new());
    layer.receive(upgrade(protocols).as_bytes(), &mut irc, &mut out).unwrap();
    assert!(irc.is_empty());
    (String::from_utf8(out).unwrap(), layer)
}

#[test]
fn the_clients_first_choice_of_subprotocol_is_taken() {
    let (response, layer) = open(Some("binary.ircv3.net, text.ircv3.net"));
    assert!(response.starts_with("HTTP/1.1 101"), "{response}");
    assert!(response.contains("sec-websocket-protocol: binary.ircv3.net\r\n"), "{response}");
    assert_eq!(layer.mode(), Some(Mode::Binary));
    let (response, layer) = open(Some("text.ircv3.net, binary.ircv3.net"));
    assert!(response.contains("sec-websocket-protocol: text.ircv3.net\r\n"), "{response}");
    assert_eq!(layer.mode(), Some(Mode::Text));
}

#[test]
fn a_client_asking_for_no_subprotocol_gets_text_and_no_header() {
    let (response, layer) = open(None);
    assert!(response.starts_with("HTTP/1.1 101"), "{response}");
    assert!(!response.to_lowercase().contains("sec-websocket-protocol"), "{response}");
    assert_eq!(layer.mode(), Some(Mode::Text));
}

#[test]
fn a_client_asking_only_for_other_subprotocols_is_refused() {
    let mut layer = WebLayer::default();
    let (mut irc, mut out) = (Vec::new(), Vec::new());
    let end = layer.receive(upgrade(Some("mqtt")).as_bytes(), &mut irc, &mut out).unwrap_err();
    let response = String::from_utf8(out).unwrap();
    assert!(response.starts_with("HTTP/1.1 400 Bad Request"), "{response}");
    assert!(response.contains("text.ircv3.net"), "{response}");
    assert!(matches!(end, WebEnd::Answered(_)));
}

#[test]
fn an_upgrade_elsewhere_than_the_root_is_not_found() {
    let mut layer = WebLayer::default();
    let request = upgrade(Some("text.ircv3.net")).replacen("GET / ", "GET /irc ", 1);
    let (mut irc, mut out) = (Vec::new(), Vec::new());
    assert!(layer.receive(request.as_bytes(), &mut irc, &mut out).is_err());
    assert!(String::from_utf8(out).unwrap().starts_with("HTTP/1.1 404"));
}

#[test]
fn an_upgrade_missing_its_key_is_a_bad_request() {
    let mut layer = WebLayer::default();
    let request = upgrade(Some("text.ircv3.net")).replace(&format!("Sec-WebSocket-Key: {KEY}\r\n"), "");
    let (mut irc, mut out) = (Vec::new(), Vec::new());
    assert!(layer.receive(request.as_bytes(), &mut irc, &mut out).is_err());
    assert!(String::from_utf8(out).unwrap().starts_with("HTTP/1.1 400"));
}

#[test]
fn a_request_arriving_a_byte_at_a_time_is_read_whole() {
    let mut layer = WebLayer::default();
    let (mut irc, mut out) = (Vec::new(), Vec::new());
    for byte in upgrade(Some("text.ircv3.net")).as_bytes() {
        layer.receive(std::slice::from_ref(byte), &mut irc, &mut out).unwrap();
    }
    assert!(layer.is_open());
}

#[test]
fn each_message_is_one_line_and_each_line_one_message() {
    let (_, mut layer) = open(Some("text.ircv3.net"));
    let mut client = Client::new();
    let (mut irc, mut out) = (Vec::new(), Vec::new());
    let mut bytes = client.frame(Message::text("NICK alice"));
    bytes.extend(client.frame(Message::binary(b"USER a 0 * :Alice".to_vec())));
    layer.receive(&bytes, &mut irc, &mut out).unwrap();
    assert_eq!(irc, b"NICK alice\r\nUSER a 0 * :Alice\r\n");

    let mut out = Vec::new();
    layer.send(b":srv 001 alice :Welcome\r\n:srv 002 al", &mut out);
    layer.send(b"ice :Host\r\n", &mut out);
    let messages = client.messages(&out);
    assert_eq!(
        messages,
        vec![Message::text(":srv 001 alice :Welcome"), Message::text(":srv 002 alice :Host")]
    );
}

#[test]
fn text_mode_replaces_what_is_not_utf8_and_binary_mode_keeps_it() {
    let (_, mut text) = open(Some("text.ircv3.net"));
    let mut out = Vec::new();
    text.send(b"PRIVMSG web :caf\xe9\r\n", &mut out);
    assert_eq!(Client::new().messages(&out), vec![Message::text("PRIVMSG web :caf\u{FFFD}")]);

    let (_, mut binary) = open(Some("binary.ircv3.net"));
    let mut out = Vec::new();
    binary.send(b"PRIVMSG web :caf\xe9\r\n", &mut out);
    assert_eq!(Client::new().messages(&out), vec![Message::binary(b"PRIVMSG web :caf\xe9".to_vec())]);
}

#[test]
fn what_the_server_says_before_the_socket_opens_follows_the_handshake() {
    let mut layer = WebLayer::default();
    let mut out = Vec::new();
    layer.send(b"NOTICE * :hello\r\n", &mut out);
    assert!(out.is_empty());
    let mut irc = Vec::new();
    layer.receive(upgrade(Some("text.ircv3.net")).as_bytes(), &mut irc, &mut out).unwrap();
    let text = String::from_utf8_lossy(&out);
    let body = text.find("\r\n\r\n").unwrap() + 4;
    assert_eq!(Client::new().messages(&out[body..]), vec![Message::text("NOTICE * :hello")]);
}

/// What closing after `bytes` from the client sends: the close frame's code.
fn close_code_after(bytes: &[u8]) -> (WebEnd, CloseCode) {
    let (_, mut layer) = open(Some("text.ircv3.net"));
    let (mut irc, mut out) = (Vec::new(), Vec::new());
    let end = layer.receive(bytes, &mut irc, &mut out).unwrap_err();
    let mut out = Vec::new();
    layer.send(b"ERROR :Closing link\r\n", &mut out);
    layer.close(&mut out);
    let messages = Client::new().messages(&out);
    assert_eq!(messages.first(), Some(&Message::text("ERROR :Closing link")), "the closing line comes first");
    match messages.last() {
        Some(Message::Close(Some(frame))) => (end, frame.code),
        other => panic!("no close frame: {other:?}"),
    }
}

#[test]
fn a_message_over_the_limit_is_closed_with_1009() {
    let big = Client::new().frame(Message::text("x".repeat(MAX_MESSAGE_BYTES + 1)));
    let (end, code) = close_code_after(&big);
    assert!(matches!(end, WebEnd::Broken(_)));
    assert_eq!(code, CloseCode::Size);
}

#[test]
fn a_text_message_that_is_not_utf8_is_closed_with_1007() {
    // A text frame, by hand: FIN + opcode 1, masked, with a zero mask.
    let payload = b"PRIVMSG x :caf\xe9";
    let mut frame = vec![0x81, 0x80 | payload.len() as u8, 0, 0, 0, 0];
    frame.extend_from_slice(payload);
    let (_, code) = close_code_after(&frame);
    assert_eq!(code, CloseCode::Invalid);
}

#[test]
fn an_unmasked_frame_from_a_client_is_closed_with_1002() {
    let frame = [0x81, 0x02, b'h', b'i'];
    let (_, code) = close_code_after(&frame);
    assert_eq!(code, CloseCode::Protocol);
}

#[test]
fn a_binary_message_that_is_not_utf8_goes_to_the_session_as_it_is() {
    let (_, mut layer) = open(Some("text.ircv3.net"));
    let bytes = Client::new().frame(Message::binary(b"PRIVMSG x :caf\xe9".to_vec()));
    let (mut irc, mut out) = (Vec::new(), Vec::new());
    layer.receive(&bytes, &mut irc, &mut out).unwrap();
    assert_eq!(irc, b"PRIVMSG x :caf\xe9\r\n");
}

#[test]
fn a_ping_is_answered_and_a_close_ends_it() {
    let (_, mut layer) = open(Some("text.ircv3.net"));
    let mut client = Client::new();
    let (mut irc, mut out) = (Vec::new(), Vec::new());
    layer.receive(&client.frame(Message::Ping(b"p".to_vec().into())), &mut irc, &mut out).unwrap();
    assert_eq!(client.messages(&out), vec![Message::Pong(b"p".to_vec().into())]);
    let mut out = Vec::new();
    let close = client.frame(Message::Close(None));
    assert_eq!(layer.receive(&close, &mut irc, &mut out), Err(WebEnd::Closed));
    assert!(!layer.is_open());
}
