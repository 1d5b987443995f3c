//! IRC operators from the config file: OPER with the right and wrong
//! credentials, KILL and WALLOPS for operators only, +o/+w user modes, and
//! the operator count in LUSERS. One body per behaviour, every model.

use std::path::PathBuf;

use crate::common::{Client, Model, Server, numeric_of};

/// A config directory whose file names one operator, `boss`, password
/// `letmein` (stored as its hash, as a real config holds it).
fn operator_config(test: &str, model: Model) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("chatter-oper-{test}-{model:?}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create the config directory");
    let hash = chatter::chat::info::hash_password("letmein").expect("hash the password");
    let text = format!("[[operators]]\nname = \"boss\"\npassword_hash = \"{hash}\"\n");
    std::fs::write(dir.join("chatter.toml"), text).expect("write the config");
    dir
}

fn start(test: &str, model: Model) -> (Server, PathBuf) {
    let dir = operator_config(test, model);
    let path = dir.join("chatter.toml");
    (Server::start_with(model, &["--config", path.to_str().expect("a UTF-8 path")]), dir)
}

fn oper_with_the_right_credentials_and_not(model: Model) {
    let (server, dir) = start("oper", model);
    let mut c = Client::register(&server, "carol");
    c.send("OPER boss");
    c.expect_numeric("461");
    c.send("OPER nobody letmein");
    c.expect_numeric("491");
    c.send("OPER boss wrong");
    c.expect_numeric("464");
    c.send("LUSERS");
    assert!(c.expect_numeric("252").contains(" 252 carol 0 "), "no operator yet");
    c.send("OPER boss letmein");
    assert!(c.expect_numeric("381").ends_with(":You are now an IRC operator"));
    c.expect_line(":carol MODE carol :+o");
    c.send("MODE carol");
    assert!(c.expect_numeric("221").contains("o"));
    c.send("LUSERS");
    assert!(c.expect_numeric("252").contains(" 252 carol 1 "), "one operator online");
    let mut other = Client::register(&server, "dave");
    other.send("WHOIS carol");
    assert!(other.expect_numeric("313").ends_with(" 313 dave carol :is an IRC operator"));
    other.send("WHO carol");
    assert!(other.expect_numeric("352").contains(" H* :0 "), "an operator's WHO flags have '*'");
    other.send("WHO * o");
    assert!(other.expect_numeric("352").contains(" carol "), "WHO's o flag names operators");
    other.expect_numeric("315");
    c.send("MODE carol -o");
    c.expect_line(":carol MODE carol :-o");
    std::fs::remove_dir_all(&dir).ok();
}

fn oper_tries_are_bounded(model: Model) {
    let (server, dir) = start("tries", model);
    let mut c = Client::register(&server, "mallory");
    for _ in 0..3 {
        c.send("OPER boss guess");
        c.expect_numeric("464");
    }
    // The right password is no use now: no more hashing for this connection.
    c.send("OPER boss letmein");
    c.expect_numeric("491");
    c.sync();
    assert!(!c.seen.iter().any(|l| numeric_of(l) == Some("381")));
    std::fs::remove_dir_all(&dir).ok();
}

fn kill_ends_a_connection_and_its_neighbours_see_why(model: Model) {
    let (server, dir) = start("kill", model);
    let mut op = Client::register(&server, "op");
    let mut victim = Client::register(&server, "victim");
    let mut witness = Client::register(&server, "witness");
    victim.join("#room");
    witness.join("#room");
    witness.send("KILL victim :no reason");
    witness.expect_numeric("481");
    op.send("OPER boss letmein");
    op.expect_numeric("381");
    op.send("KILL ghost :boo");
    op.expect_numeric("401");
    op.send("KILL victim");
    op.expect_numeric("461");
    op.send("KILL victim :spamming");
    victim.expect_line("ERROR :Closing Link: 127.0.0.1 (Killed (op (spamming)))");
    victim.read_to_close();
    witness.expect_line(":victim!victim@127.0.0.1 QUIT :Killed (op (spamming))");
    // The nick is free again.
    let mut again = Client::register(&server, "victim");
    again.sync();
    std::fs::remove_dir_all(&dir).ok();
}

fn wallops_reach_those_who_asked(model: Model) {
    let (server, dir) = start("wallops", model);
    let mut op = Client::register(&server, "op");
    let mut listener = Client::register(&server, "listener");
    let mut other = Client::register(&server, "other");
    listener.send("MODE listener +w");
    listener.expect_line(":listener MODE listener :+w");
    other.send("WALLOPS :not allowed");
    other.expect_numeric("481");
    op.send("OPER boss letmein");
    op.expect_numeric("381");
    op.send("WALLOPS :server going down at noon");
    listener.expect_line(":op!op@127.0.0.1 WALLOPS :server going down at noon");
    other.sync();
    assert!(!other.seen.iter().any(|l| l.contains("WALLOPS")), "{:?}", other.seen);
    std::fs::remove_dir_all(&dir).ok();
}

all_models!(
    oper_with_the_right_credentials_and_not,
    oper_tries_are_bounded,
    kill_ends_a_connection_and_its_neighbours_see_why,
    wallops_reach_those_who_asked,
);
