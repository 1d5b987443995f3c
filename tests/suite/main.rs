//! Every integration test, in one test binary: the test files are its
//! modules, and `common` (the servers, clients and NATS they drive) is
//! compiled once for all of them. One binary instead of one per file
//! because each of those compiled and linked `common` again, and cargo
//! ran them one after another, so a file's slowest test left the other
//! test thread idle; here the whole suite shares one pool of test
//! threads. `cargo test flow::` runs one file's tests.

#[macro_use]
mod common;

mod bench_tls;
mod browser;
mod cert;
mod channel_modes;
mod channels;
mod cluster_faults;
mod config_file;
mod flood;
mod flow;
mod in_process;
mod injection;
mod interop;
mod ircv3;
mod ircv3_notify;
mod irssi;
mod kick_invite;
mod labeled_response;
mod limits;
mod liveness;
mod monitor;
mod nats_harness;
mod operators;
mod order;
mod plain;
mod pools;
mod prefork;
mod queries;
mod reconnect;
mod registration;
mod rehash;
mod robustness;
mod statusmsg;
mod tls;
mod utf8_only;
mod websocket;
