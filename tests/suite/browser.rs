//! The web chat page in a real browser: headless Chromium, driven through
//! chromedriver (WebDriver, the `fantoccini` client), against a chatter
//! that serves the page and IRC over WebSocket on its `--ws-listen` port,
//! under every model and on a cluster (`each_model!`: one test each, the
//! same body).
//!
//! Two browser sessions are two people on the page; a plain IRC client
//! (the harness's `Client`, a TCP stream of IRC lines) is a third person in
//! the same room. On a cluster the two pages are on different nodes, each
//! opened from its own node's `--ws-listen` port, so that everything one
//! says to the other crosses the network. The test reads what each page
//! *shows* (the visible text of the room's lines, its member list, its
//! list of rooms and conversations, its heading and status), never the
//! page's variables: registration and a nickname in use, joining, talking
//! both ways, an action, the topic, markup shown as text, a private
//! conversation each way (with its unread count), a server error, a part
//! and a quit notice, and at the end a restart of the server (every node
//! of a cluster) on the same ports, after which both pages reconnect by
//! themselves and rejoin.
//!
//! Every wait is "until the page shows X", bounded by [`PATIENCE`] only
//! so that a broken page fails instead of hanging; nothing is timed.
//!
//! Chromium and chromedriver come from Debian (`chromium`,
//! `chromium-driver`); `.ci/run` installs them and sets
//! `CHATTER_REQUIRE_BROWSER=1`, so CI cannot skip this. Elsewhere, without
//! them, the test says so and passes without checking anything.
//!
//! `CHATTER_SCREENSHOTS=DIR` also writes pictures of the page mid-talk
//! (the iterative model's test takes them, the others need not):
//! `web-chat.png` (1000×650, the one in `docs/`), and `web-chat-phone.png`
//! and `web-chat-phone-members.png` (390×844) to check the narrow layout.
//!
//! Each test runs a chromedriver of its own, with the browsers it starts:
//! one starts in milliseconds, the browsers (which each test needs fresh
//! anyway) are what costs, and one shared by tests running at once would
//! have to outlive the test that started it. chatter, chromedriver and the
//! browsers are killed when the test ends, however it ends: chromedriver
//! runs in a process group of its own, killed whole on drop, and dies with
//! the test's thread (`PR_SET_PDEATHSIG`).

use std::fmt;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{Model, Server};
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// How long the page may take to show something before the test fails.
const PATIENCE: Duration = Duration::from_secs(30);

/// Set (CI sets it) to make this test fail rather than skip where
/// Chromium or chromedriver is missing.
const REQUIRE_VAR: &str = "CHATTER_REQUIRE_BROWSER";

/// Where the pictures go, if anywhere (see the module comment).
const SCREENSHOTS_VAR: &str = "CHATTER_SCREENSHOTS";

/// Chromium's flags. Without the background-networking ones it waits for
/// the network on a machine without one.
const CHROMIUM_ARGS: [&str; 10] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1000,650",
];

each_model!(two_pages_and_an_irc_client_talk);

fn two_pages_and_an_irc_client_talk(model: Model) {
    let Some((chromium, chromedriver)) = browser() else {
        return;
    };
    // Two threads: the IRC client and the restart block their thread.
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(talk(model, &chromium, &chromedriver));
}

async fn talk(model: Model, chromium: &Path, chromedriver: &Path) {
    let mut chatter = Server::start_with(model, &["--ws-listen", "127.0.0.1:0"]);
    // The page of node `i` (the only one but on a cluster).
    let web = chatter.web_addrs();
    let url = |i: usize| format!("http://{}/", web[i % web.len()]);
    let driver = Driver::start(chromedriver, chromium, model);

    // alice joins #web from the form.
    let alice = driver.page("alice").await;
    alice.open(&url(0)).await;
    alice.log_in("alice", "#web").await;
    alice.wait_for("#web with alice in it", |s| s.title == "#web" && s.has_member("alice")).await;

    // bob first asks for alice's name, is told it is taken, and picks another.
    let bob = driver.page("bob").await;
    bob.open(&url(1)).await;
    bob.log_in("alice", "#web").await;
    bob.wait_for("that the name is taken", |s| s.login && s.login_error.contains("in use")).await;
    bob.fill("#nick-input", "bob").await;
    bob.click("#connect").await;
    bob.wait_for("#web with alice and bob", |s| s.title == "#web" && s.has_members(&["alice", "bob"])).await;
    alice.wait_for("bob joining", |s| s.has_member("bob") && s.has_line(&["bob joined #web"])).await;

    // carol, on plain IRC, joins too.
    let mut carol = crate::common::Client::register(&chatter, "carol");
    carol.join("#web");
    for page in [&alice, &bob] {
        page.wait_for("carol joining", |s| {
            s.has_members(&["alice", "bob", "carol"]) && s.has_line(&["carol joined #web"])
        })
        .await;
    }

    // Talk: from a page to the other page and to IRC, and from IRC to both.
    alice.say("hello from alice").await;
    bob.wait_for("alice's message", |s| s.has_line(&["alice", "hello from alice"])).await;
    carol.expect("alice's message", |l| {
        l.starts_with(":alice!") && l.ends_with(" PRIVMSG #web :hello from alice")
    });
    alice.wait_for("her own message", |s| s.has_line(&["alice", "hello from alice"])).await;

    bob.say("/me waves").await;
    alice.wait_for("bob's action", |s| s.has_line(&["* bob waves"])).await;
    carol.expect_line("PRIVMSG #web :\u{1}ACTION waves\u{1}");

    carol.send("PRIVMSG #web :hi both, carol here on IRC");
    for page in [&alice, &bob] {
        page.wait_for("carol's message", |s| s.has_line(&["carol", "hi both, carol here on IRC"])).await;
    }

    // What looks like HTML is shown as the text it is.
    let markup = r#"<b>not bold</b> <img src=x onerror="document.title='owned'">"#;
    carol.send(&format!("PRIVMSG #web :{markup}"));
    alice.wait_for("carol's markup as text", |s| s.has_line(&["carol", markup])).await;

    alice.say("/topic Testing the web page").await;
    bob.wait_for("the topic", |s| s.topic == "Testing the web page").await;
    carol.expect_line("TOPIC #web :Testing the web page");

    bob.say("nice, it works from the browser too").await;
    alice.wait_for("bob's message", |s| s.has_line(&["bob", "nice, it works from the browser too"])).await;

    if let Some(dir) = std::env::var_os(SCREENSHOTS_VAR).filter(|_| model == Model::Iterative) {
        alice.screenshots(Path::new(&dir)).await;
    }

    // A private message from IRC opens a conversation on bob's page, apart
    // from the room.
    carol.send("PRIVMSG bob :psst, bob, just you");
    let shown = bob
        .wait_for("a conversation with carol, one unread", |s| s.rooms.iter().any(|r| r == "carol 1"))
        .await;
    assert!(!shown.has_line(&["psst"]), "carol's private message shows in #web:\n{shown}");
    bob.click(r#"#room-list [data-room="carol"]"#).await;
    bob.wait_for("carol's private message", |s| {
        s.title == "carol" && s.has_line(&["carol", "psst, bob, just you"])
    })
    .await;

    // Clicking a member opens a conversation with them.
    bob.click(r##"#room-list [data-room="#web"]"##).await;
    bob.wait_for("#web again", |s| s.title == "#web" && s.has_member("alice")).await;
    bob.click(r#"#member-list .member[data-nick="alice"]"#).await;
    bob.wait_for("a conversation with alice", |s| s.title == "alice").await;
    bob.say("between us: the page works").await;
    bob.wait_for("his private message", |s| s.has_line(&["bob", "between us: the page works"])).await;
    alice.wait_for("a conversation with bob, one unread", |s| s.rooms.iter().any(|r| r == "bob 1")).await;
    alice.click(r#"#room-list [data-room="bob"]"#).await;
    alice.wait_for("bob's private message", |s| s.has_line(&["bob", "between us: the page works"])).await;
    carol.expect_no_line("between us");
    alice.click(r##"#room-list [data-room="#web"]"##).await;
    bob.click(r##"#room-list [data-room="#web"]"##).await;

    // An error from the server is shown, readably.
    alice.say("/part #nowhere").await;
    alice.wait_for("the error", |s| s.has_line(&["! ", "#nowhere"])).await;

    // Leaving and quitting are shown, and the member lists follow.
    carol.send("PART #web :off to lunch");
    for page in [&alice, &bob] {
        page.wait_for("carol leaving", |s| {
            !s.has_member("carol") && s.has_line(&["carol left #web", "off to lunch"])
        })
        .await;
    }
    carol.join("#web");
    bob.wait_for("carol back", |s| s.has_member("carol")).await;
    carol.send("QUIT :see you");
    for page in [&alice, &bob] {
        page.wait_for("carol quitting", |s| !s.has_member("carol") && s.has_line(&["carol quit", "see you"]))
            .await;
    }
    carol.read_to_close();

    // The server restarts on the same ports: both pages say they lost it,
    // come back by themselves and rejoin #web.
    chatter.kill();
    for page in [&alice, &bob] {
        page.wait_for("that it is reconnecting", |s| s.status.contains("reconnecting")).await;
    }
    chatter.restart();
    for page in [&alice, &bob] {
        page.wait_for("#web rejoined", |s| {
            s.state == "connected"
                && s.title == "#web"
                && s.has_members(&["alice", "bob"])
                && s.joins_of(page.name) >= 2
        })
        .await;
    }
    alice.say("back again").await;
    bob.wait_for("alice after the restart", |s| s.has_line(&["alice", "back again"])).await;

    alice.close().await;
    bob.close().await;
}

/// Chromium and chromedriver, if both are here; otherwise says why and
/// returns None, or panics if [`REQUIRE_VAR`] is set.
fn browser() -> Option<(PathBuf, PathBuf)> {
    let runs = |path: &Path| Command::new(path).arg("--version").output().is_ok_and(|o| o.status.success());
    let find = |name: &str| {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.is_file() && runs(p))
    };
    if let (Some(chromium), Some(driver)) = (find("chromium"), find("chromedriver")) {
        return Some((chromium, driver));
    }
    assert!(
        std::env::var_os(REQUIRE_VAR).is_none(),
        "chromium and chromedriver are required here ({REQUIRE_VAR} is set) but not installed \
         (apt-get install chromium chromium-driver)"
    );
    eprintln!(
        "skipped: chromium or chromedriver is not installed (apt-get install chromium chromium-driver)"
    );
    None
}

/// chromedriver on a port of its own, with a directory for the browsers'
/// profiles; the process group it leads (it and its browsers) is killed
/// and the directory removed on drop.
struct Driver {
    child: Child,
    port: u16,
    chromium: PathBuf,
    dir: PathBuf,
}

impl Driver {
    /// One for `model`'s test (tests run at once, each with its own).
    fn start(chromedriver: &Path, chromium: &Path, model: Model) -> Driver {
        let dir = std::env::temp_dir().join(format!("chatter-browser-{}-{model:?}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the profiles' directory");
        // A port picked free may be taken before chromedriver binds it:
        // then it exits and another is tried.
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a port")
                .port();
            let mut command = Command::new(chromedriver);
            command
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .process_group(0);
            // SAFETY: between fork and exec the child makes only a prctl
            // system call, which is async-signal-safe.
            unsafe {
                command.pre_exec(|| {
                    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)?;
                    Ok(())
                });
            }
            let mut child = command.spawn().expect("start chromedriver");
            let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
            let started = lines.by_ref().map_while(Result::ok).any(|l| l.contains("started successfully"));
            // What it says later is not needed, but its pipe must not fill.
            std::thread::spawn(move || lines.for_each(drop));
            let driver = Driver { child, port, chromium: chromium.to_path_buf(), dir: dir.clone() };
            if started {
                return driver;
            }
        }
        panic!("chromedriver did not start");
    }

    /// A browser session with a fresh profile, as `name` (for messages).
    async fn page(&self, name: &'static str) -> Page {
        let profile = self.dir.join(name);
        std::fs::create_dir_all(&profile).expect("create a profile directory");
        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|a| a.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": self.chromium, "args": args },
        });
        let Value::Object(capabilities) = capabilities else { unreachable!() };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .unwrap_or_else(|e| panic!("open a browser session for {name}: {e}"));
        Page { client, name }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let group = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One person's browser session on the page.
struct Page {
    client: Client,
    name: &'static str,
}

/// What a page shows, read from its rendered text.
#[derive(Debug, Default)]
struct Shown {
    /// The name form is on screen.
    login: bool,
    login_error: String,
    /// The connection banner's text and state (`connected`, `reconnecting`, ...).
    status: String,
    state: String,
    /// The room or conversation on screen, and its topic line.
    title: String,
    topic: String,
    /// The rooms and conversations listed, each with its count of unread
    /// messages if it has any (`carol 1`).
    rooms: Vec<String>,
    /// The member list, without `@`/`+`.
    members: Vec<String>,
    /// The lines on screen, each as shown.
    lines: Vec<String>,
}

/// Reads [`Shown`] in one round trip: the rendered text (`innerText`) of
/// the elements on screen (what `hidden` or `display: none` hides, such as
/// the lines of rooms not on screen, is left out).
const SHOWN_JS: &str = r#"
const $ = (id) => document.getElementById(id);
const texts = (css) => [...document.querySelectorAll(css)]
  .filter((e) => e.checkVisibility())
  .map((e) => e.innerText.replace(/\s+/g, ' ').trim())
  .filter(Boolean);
return {
  login: !$('login').hidden,
  login_error: $('login-error').innerText,
  status: $('status').innerText,
  state: $('status').dataset.state,
  title: $('title').innerText,
  topic: $('topic').innerText,
  rooms: texts('#room-list .room'),
  members: texts('#member-list .member'),
  lines: texts('#log .line'),
};
"#;

impl Shown {
    fn has_member(&self, nick: &str) -> bool {
        self.members.iter().any(|m| m.trim_start_matches(['@', '+', '%', '&', '~']).trim() == nick)
    }

    fn has_members(&self, nicks: &[&str]) -> bool {
        nicks.iter().all(|n| self.has_member(n))
    }

    /// A line holds all of `parts`.
    fn has_line(&self, parts: &[&str]) -> bool {
        self.lines.iter().any(|l| parts.iter().all(|p| l.contains(p)))
    }

    /// How many times the room on screen shows `nick` joining it.
    fn joins_of(&self, nick: &str) -> usize {
        let joined = format!("{nick} joined {}", self.title);
        self.lines.iter().filter(|l| l.contains(&joined)).count()
    }
}

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "  form shown: {} {:?}", self.login, self.login_error)?;
        writeln!(f, "  status: {} {:?}", self.state, self.status)?;
        writeln!(f, "  on screen: {:?} (topic {:?})", self.title, self.topic)?;
        writeln!(f, "  rooms: {:?}", self.rooms)?;
        writeln!(f, "  members: {:?}", self.members)?;
        writeln!(f, "  last lines:")?;
        for line in self.lines.iter().rev().take(25).rev() {
            writeln!(f, "    {line}")?;
        }
        Ok(())
    }
}

impl Page {
    async fn open(&self, url: &str) {
        self.client.goto(url).await.unwrap_or_else(|e| panic!("{} opening {url}: {e}", self.name));
    }

    async fn shown(&self) -> Shown {
        let value = self
            .client
            .execute(SHOWN_JS, vec![])
            .await
            .unwrap_or_else(|e| panic!("reading {}'s page: {e}", self.name));
        let text = |key: &str| value[key].as_str().unwrap_or_default().to_string();
        let list = |key: &str| -> Vec<String> {
            value[key]
                .as_array()
                .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
                .unwrap_or_default()
        };
        Shown {
            login: value["login"].as_bool().unwrap_or_default(),
            login_error: text("login_error"),
            status: text("status"),
            state: text("state"),
            title: text("title"),
            topic: text("topic"),
            rooms: list("rooms"),
            members: list("members"),
            lines: list("lines"),
        }
    }

    /// Waits until the page shows what `ok` looks for; returns what it showed.
    async fn wait_for(&self, what: &str, ok: impl Fn(&Shown) -> bool) -> Shown {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let shown = self.shown().await;
            if ok(&shown) {
                return shown;
            }
            if Instant::now() > deadline {
                panic!("{}'s page did not show {what} within {PATIENCE:?}; it shows:\n{shown}", self.name);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{}'s page has no {css}: {e}", self.name))
    }

    async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap_or_else(|e| panic!("{} clicking {css}: {e}", self.name));
    }

    /// Replaces what an input holds with `text`.
    async fn fill(&self, css: &str, text: &str) {
        let input = self.find(css).await;
        input.clear().await.unwrap_or_else(|e| panic!("{} clearing {css}: {e}", self.name));
        input.send_keys(text).await.unwrap_or_else(|e| panic!("{} typing into {css}: {e}", self.name));
    }

    async fn log_in(&self, nick: &str, rooms: &str) {
        self.fill("#nick-input", nick).await;
        self.fill("#rooms-input", rooms).await;
        self.click("#connect").await;
    }

    /// Types a line into the message box and presses Enter.
    async fn say(&self, line: &str) {
        let keys = format!("{line}{}", char::from(Key::Enter));
        self.find("#message-input")
            .await
            .send_keys(&keys)
            .await
            .unwrap_or_else(|e| panic!("{} typing {line:?}: {e}", self.name));
    }

    /// The pictures described in the module comment, into `dir`.
    async fn screenshots(&self, dir: &Path) {
        std::fs::create_dir_all(dir).expect("create the screenshots' directory");
        let shoot = |file: &'static str| async move {
            let png = self.client.screenshot().await.expect("take a screenshot");
            std::fs::write(dir.join(file), png).expect("write a screenshot");
        };
        self.viewport(1000, 650).await;
        shoot("web-chat.png").await;
        self.viewport(390, 844).await;
        shoot("web-chat-phone.png").await;
        self.click("#toggle-members").await;
        shoot("web-chat-phone-members.png").await;
        self.click("#toggle-members").await;
        self.viewport(1000, 650).await;
    }

    /// Sizes the window so that the page gets `width`×`height`.
    async fn viewport(&self, width: u32, height: u32) {
        let frame = self
            .client
            .execute(
                "return [window.outerWidth - window.innerWidth, window.outerHeight - window.innerHeight]",
                vec![],
            )
            .await
            .expect("measure the window");
        let extra = |i: usize| u32::try_from(frame[i].as_u64().unwrap_or(0)).unwrap_or(0);
        self.client.set_window_size(width + extra(0), height + extra(1)).await.expect("size the window");
    }

    async fn close(self) {
        self.client.close().await.unwrap_or_else(|e| panic!("closing {}'s browser: {e}", self.name));
    }
}
