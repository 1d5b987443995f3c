//! Interop with a third-party IRC client: two clients built on the `irc`
//! crate from crates.io (not our own line-based test client) register, join
//! a channel, exchange a channel message and a private message, and one of
//! them quits. This checks that what chatter sends parses the way a real
//! client library expects (prefixes, trailing parameters, numerics), and
//! that what such a library sends (including its `CAP END` before
//! registration) is understood by the server.
//!
//! Every wait is bounded by [`PATIENCE`] and fails with what the client had
//! received so far; nothing asserts how fast anything happens.

use crate::common::*;

use futures::StreamExt;
use futures::channel::mpsc::{UnboundedReceiver, unbounded};
use irc::client::prelude::{Client as IrcClient, Command, Config, Message, Response};
use std::net::SocketAddr;

const CHANNEL: &str = "#interop";
const TO_CHANNEL: &str = "hello #interop: this is libalice, over";
const TO_ALICE: &str = "hi libalice, libbob here: loud and clear";
const QUIT_REASON: &str = "libbob signing off";

/// One `irc` crate client. Its stream (which also flushes what it sends) is
/// driven by a task that forwards every message, or the library's error, to
/// `inbox`.
struct Peer {
    nick: &'static str,
    client: IrcClient,
    inbox: UnboundedReceiver<Result<Message, String>>,
    /// Every message received so far, for failure messages.
    seen: Vec<String>,
}

impl Peer {
    async fn connect(nick: &'static str, port: u16) -> Peer {
        let config = Config {
            nickname: Some(nick.to_owned()),
            server: Some("127.0.0.1".to_owned()),
            port: Some(port),
            // No `use_tls`: the dev-dependency is built without TLS
            // features, which leaves that field out and connects in plain
            // text.
            channels: Vec::new(),
            ..Config::default()
        };
        let mut client = IrcClient::from_config(config)
            .await
            .unwrap_or_else(|e| panic!("{nick}: irc crate could not connect: {e}"));
        let mut stream = client.stream().unwrap_or_else(|e| panic!("{nick}: no stream: {e}"));
        let (tx, inbox) = unbounded();
        tokio::spawn(async move {
            while let Some(item) = stream.next().await {
                let failed = item.is_err();
                if tx.unbounded_send(item.map_err(|e| format!("{e:?}"))).is_err() || failed {
                    break;
                }
            }
        });
        Peer { nick, client, inbox, seen: Vec::new() }
    }

    /// The next message that satisfies `matches`; messages before it are
    /// skipped. Panics, showing what came, if the library reports an error,
    /// the connection closes, or nothing matching arrives within PATIENCE.
    async fn expect(&mut self, what: &str, matches: impl Fn(&Message) -> bool) -> Message {
        let waited = tokio::time::timeout(PATIENCE, async {
            loop {
                match self.inbox.next().await {
                    Some(Ok(message)) => {
                        self.seen.push(message.to_string().trim_end().to_owned());
                        if matches(&message) {
                            return Ok(message);
                        }
                    }
                    Some(Err(error)) => {
                        return Err(format!("the irc crate reported an error: {error}"));
                    }
                    None => return Err("connection closed".to_owned()),
                }
            }
        })
        .await;
        match waited {
            Ok(Ok(message)) => message,
            Ok(Err(why)) => self.fail(what, &why),
            Err(_) => self.fail(what, "timed out"),
        }
    }

    fn fail(&self, what: &str, why: &str) -> ! {
        panic!("{}: expected {what}, {why}; received:\n  {}", self.nick, self.seen.join("\n  "))
    }

    /// Waits for the welcome and then the end of the MOTD (or its absence).
    async fn registered(&mut self) {
        self.expect("RPL_WELCOME (001)", |m| {
            matches!(m.command, Command::Response(Response::RPL_WELCOME, _))
        })
        .await;
        self.expect("end of MOTD (376 or 422)", |m| {
            matches!(m.command, Command::Response(Response::RPL_ENDOFMOTD | Response::ERR_NOMOTD, _))
        })
        .await;
    }

    /// Waits for `who` to JOIN `channel`.
    async fn sees_join(&mut self, who: &str, channel: &str) {
        self.expect(&format!("{who} to JOIN {channel}"), |m| {
            matches!(&m.command, Command::JOIN(chan, _, _) if chan == channel)
                && m.source_nickname() == Some(who)
        })
        .await;
    }

    /// The next PRIVMSG, whoever it is from, as (source, target, text).
    async fn next_privmsg(&mut self) -> (Option<String>, String, String) {
        let message = self.expect("a PRIVMSG", |m| matches!(m.command, Command::PRIVMSG(..))).await;
        let source = message.source_nickname().map(str::to_owned);
        match message.command {
            Command::PRIVMSG(target, text) => (source, target, text),
            _ => unreachable!("matched a PRIVMSG"),
        }
    }
}

fn irc_crate_clients_chat(model: Model) {
    let server = Server::start(model);
    // Each where Server::connect would put it: on a cluster, two nodes.
    let port = || {
        let addr = server.next_addr();
        addr.parse::<SocketAddr>().unwrap_or_else(|e| panic!("server address {addr:?}: {e}")).port()
    };
    let (alice_port, bob_port) = (port(), port());
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(async {
        let mut alice = Peer::connect("libalice", alice_port).await;
        let mut bob = Peer::connect("libbob", bob_port).await;
        alice.client.identify().expect("libalice: identify");
        bob.client.identify().expect("libbob: identify");
        alice.registered().await;
        bob.registered().await;

        // One at a time, so that libbob's JOIN reaches libalice: then both
        // are in the channel before any message is sent.
        alice.client.send_join(CHANNEL).expect("libalice: send JOIN");
        alice.sees_join("libalice", CHANNEL).await;
        bob.client.send_join(CHANNEL).expect("libbob: send JOIN");
        bob.sees_join("libbob", CHANNEL).await;
        alice.sees_join("libbob", CHANNEL).await;

        alice.client.send_privmsg(CHANNEL, TO_CHANNEL).expect("libalice: send PRIVMSG");
        let (source, target, text) = bob.next_privmsg().await;
        assert_eq!(source.as_deref(), Some("libalice"), "source of the channel message");
        assert_eq!(target, CHANNEL, "target of the channel message");
        assert_eq!(text, TO_CHANNEL, "text of the channel message");

        bob.client.send_privmsg("libalice", TO_ALICE).expect("libbob: send PRIVMSG");
        let (source, target, text) = alice.next_privmsg().await;
        assert_eq!(source.as_deref(), Some("libbob"), "source of the private message");
        assert_eq!(target, "libalice", "target of the private message");
        assert_eq!(text, TO_ALICE, "text of the private message");

        bob.client.send_quit(QUIT_REASON).expect("libbob: send QUIT");
        let quit = alice
            .expect("libbob's QUIT", |m| {
                matches!(m.command, Command::QUIT(_)) && m.source_nickname() == Some("libbob")
            })
            .await;
        assert_eq!(
            quit.command,
            Command::QUIT(Some(format!("Quit: {QUIT_REASON}"))),
            "libbob's QUIT as libalice sees it"
        );
    });
}

all_models!(irc_crate_clients_chat);
