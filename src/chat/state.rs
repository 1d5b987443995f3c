//! The chat directory — users, nicks, channels, members, topics — and
//! [`State::apply`], the one function that changes it.
//!
//! `apply` is pure and deterministic: no I/O, no clock, no randomness, and
//! only ordered maps where iteration order could leak into output. Replicas
//! that apply the same events in the same order therefore hold the same
//! directory and produce the same deliveries, which is what lets the pool
//! models keep one replica per worker instead of sharing a locked one. A
//! replica built with [`State::for_worker`] renders deliveries only for its
//! own worker's connections, so fan-out work is not repeated W times.
//!
//! Errors that depend on the directory (no such nick, nick in use, not on
//! channel) are found here, in log order, rather than in the session: a
//! session's view may be a moment old, the log's order is the truth.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;

use rustc_hash::FxHashMap;
use std::sync::Arc;

use crate::chat::names::{TOPIC_LEN, fold, truncate_at_char};
use crate::chat::reply::{self, numeric, numeric_bare, plain};
use crate::chat::{ConnId, Event, Listing, MessageKind, Protocol, ServerInfo};
use crate::wire::message::write_line;

/// The channel plain clients are put in when they arrive.
pub const LOBBY: &str = "#lobby";

/// Bytes for one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub to: ConnId,
    /// Shared so that one line fanned out to many members is built once.
    pub bytes: Arc<[u8]>,
}

/// What applying one event sends, in order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Deliveries {
    pub items: Vec<Delivery>,
    /// Long replies to stream to a connection after its items (a joiner's
    /// NAMES), see `listing`.
    pub listings: Vec<(ConnId, Listing)>,
}

impl Deliveries {
    /// Everything addressed to `conn`, concatenated (handy in tests).
    pub fn bytes_for(&self, conn: ConnId) -> Vec<u8> {
        self.items.iter().filter(|d| d.to == conn).flat_map(|d| d.bytes.iter().copied()).collect()
    }
}

/// A registered user.
#[derive(Debug, Clone)]
pub struct User {
    pub nick: String,
    pub user: String,
    pub realname: String,
    pub host: String,
    pub protocol: Protocol,
    /// Folded names of the channels the user is in.
    pub channels: BTreeSet<String>,
    /// Plain clients only: the folded channel their lines go to.
    pub focus: Option<String>,
    /// The AWAY message, while away.
    pub away: Option<String>,
    /// User mode +i.
    pub invisible: bool,
}

impl User {
    /// `nick!user@host`, the source of everything the user does.
    pub fn prefix(&self) -> String {
        format!("{}!{}@{}", self.nick, self.user, self.host)
    }
}

#[derive(Debug, Clone)]
pub struct Topic {
    pub text: String,
    pub set_by: String,
    pub set_at: u64,
}

#[derive(Debug, Clone)]
pub struct Channel {
    /// The name as first joined, for display.
    pub name: String,
    pub topic: Option<Topic>,
    /// Member → is channel operator. The creator is the first operator.
    pub members: BTreeMap<ConnId, bool>,
}

/// The directory. Clone it to snapshot; compare replicas with [`State::digest`].
#[derive(Debug, Clone)]
pub struct State {
    info: Arc<ServerInfo>,
    local_worker: Option<u16>,
    /// Keyed by server-assigned ids, looked up once per recipient of every
    /// event: a fast hash (no client controls these keys).
    users: FxHashMap<ConnId, User>,
    /// Keyed by client-chosen names: the standard, DoS-resistant hash.
    nicks: HashMap<String, ConnId>,
    channels: BTreeMap<String, Channel>,
}

impl State {
    /// A directory that renders deliveries for every connection (iterative).
    pub fn new(info: Arc<ServerInfo>) -> Self {
        State {
            info,
            local_worker: None,
            users: FxHashMap::default(),
            nicks: HashMap::new(),
            channels: BTreeMap::new(),
        }
    }

    /// A replica that renders deliveries only for `worker`'s connections.
    pub fn for_worker(info: Arc<ServerInfo>, worker: u16) -> Self {
        State { local_worker: Some(worker), ..State::new(info) }
    }

    /// A replica that renders nothing: it only follows the directory (the
    /// pool keeper's, from which new workers are started).
    pub fn observer(info: Arc<ServerInfo>) -> Self {
        State::for_worker(info, u16::MAX)
    }

    /// Makes this replica render for `worker` from now on (a new worker
    /// starting from the keeper's copy).
    pub fn set_local_worker(&mut self, worker: u16) {
        self.local_worker = Some(worker);
    }

    pub fn info(&self) -> &ServerInfo {
        &self.info
    }

    pub fn user(&self, conn: ConnId) -> Option<&User> {
        self.users.get(&conn)
    }

    pub fn find_nick(&self, nick: &str) -> Option<ConnId> {
        self.nicks.get(&fold(nick)).copied()
    }

    pub fn channel(&self, name: &str) -> Option<&Channel> {
        self.channels.get(&fold(name))
    }

    pub fn channels(&self) -> impl Iterator<Item = &Channel> {
        self.channels.values()
    }

    /// Channels by folded name, in order, from `from` on (a listing's cursor).
    pub fn channels_from(&self, from: Bound<&str>) -> impl Iterator<Item = (&String, &Channel)> {
        self.channels.range::<str, _>((from, Bound::Unbounded))
    }

    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    /// Connections of users registered through `worker`, for cleaning up
    /// after a worker that died.
    pub fn users_of_worker(&self, worker: u16) -> Vec<ConnId> {
        let mut conns: Vec<ConnId> = self.users.keys().copied().filter(|c| c.worker == worker).collect();
        conns.sort();
        conns
    }

    /// A summary that is equal for equal directories, to check replicas agree.
    pub fn digest(&self) -> String {
        let mut users: Vec<String> =
            self.users.iter().map(|(c, u)| format!("{c:?}={}:{:?}", u.nick, u.channels)).collect();
        users.sort();
        let channels: Vec<String> = self
            .channels
            .iter()
            .map(|(k, c)| format!("{k}:{:?}:{:?}", c.members, c.topic.as_ref().map(|t| &t.text)))
            .collect();
        format!("{users:?}|{channels:?}")
    }

    /// Records `event` and returns what it sends to whom.
    pub fn apply(&mut self, event: &Event) -> Deliveries {
        let mut out = Deliveries::default();
        match event {
            Event::Register { conn, nick, user, realname, host, protocol } => {
                self.register(&mut out, *conn, nick, user, realname, host, *protocol)
            }
            Event::Nick { conn, nick } => self.change_nick(&mut out, *conn, nick),
            Event::Join { conn, channel } => self.join(&mut out, *conn, channel),
            Event::PartAll { conn } => {
                let joined: Vec<String> = match self.users.get(conn) {
                    Some(user) => user.channels.iter().cloned().collect(),
                    None => Vec::new(),
                };
                for channel in joined {
                    self.part(&mut out, *conn, &channel, None);
                }
            }
            Event::Part { conn, channel, reason } => self.part(&mut out, *conn, channel, reason.as_deref()),
            Event::Message { conn, kind, target, text } => self.message(&mut out, *conn, *kind, target, text),
            Event::Topic { conn, channel, topic, at } => self.set_topic(&mut out, *conn, channel, topic, *at),
            Event::Quit { conn, reason } => self.quit(&mut out, *conn, reason),
            Event::Away { conn, message } => self.set_away(&mut out, *conn, message.as_deref()),
            Event::Invisible { conn, on } => self.set_invisible(&mut out, *conn, *on),
            Event::WorkerLost { worker, generation, reason } => {
                let mut lost: Vec<ConnId> = self
                    .users
                    .keys()
                    .copied()
                    .filter(|c| c.worker == *worker && c.generation == *generation)
                    .collect();
                lost.sort();
                for conn in lost {
                    self.quit(&mut out, conn, reason);
                }
            }
        }
        out
    }

    fn is_local(&self, conn: ConnId) -> bool {
        self.local_worker.is_none_or(|w| w == conn.worker)
    }

    fn send(&self, out: &mut Deliveries, to: ConnId, bytes: Vec<u8>) {
        if self.is_local(to) && !bytes.is_empty() {
            out.items.push(Delivery { to, bytes: bytes.into() });
        }
    }

    /// Sends one event to many users: the IRC line is built once and shared;
    /// plain users get their own rendering (which may depend on their focus,
    /// and may be nothing).
    fn fan_out(
        &self,
        out: &mut Deliveries,
        recipients: impl IntoIterator<Item = ConnId>,
        irc_line: &[u8],
        plain_line: impl Fn(&User) -> Option<String>,
    ) {
        let mut shared: Option<Arc<[u8]>> = None;
        for to in recipients {
            if !self.is_local(to) {
                continue;
            }
            let Some(user) = self.users.get(&to) else {
                continue;
            };
            match user.protocol {
                Protocol::Irc => {
                    let bytes = shared.get_or_insert_with(|| irc_line.into()).clone();
                    out.items.push(Delivery { to, bytes });
                }
                Protocol::Plain => {
                    if let Some(text) = plain_line(user) {
                        let mut bytes = Vec::new();
                        plain(&mut bytes, &text);
                        out.items.push(Delivery { to, bytes: bytes.into() });
                    }
                }
            }
        }
    }

    fn error_to(&self, out: &mut Deliveries, conn: ConnId, code: u16, subject: &str, text: &str) {
        let Some(user) = self.users.get(&conn) else {
            return;
        };
        let mut bytes = Vec::new();
        reply::error(&mut bytes, user.protocol, &self.info.name, code, &user.nick, Some(subject), text);
        self.send(out, conn, bytes);
    }

    #[allow(clippy::too_many_arguments)]
    fn register(
        &mut self,
        out: &mut Deliveries,
        conn: ConnId,
        nick: &str,
        user: &str,
        realname: &str,
        host: &str,
        protocol: Protocol,
    ) {
        if self.users.contains_key(&conn) {
            return;
        }
        let key = fold(nick);
        if self.nicks.contains_key(&key) {
            let mut bytes = Vec::new();
            match protocol {
                Protocol::Irc => numeric(
                    &mut bytes,
                    &self.info.name,
                    reply::ERR_NICKNAMEINUSE,
                    "*",
                    &[nick],
                    "Nickname is already in use",
                ),
                Protocol::Plain => {
                    plain(&mut bytes, &format!("! The name {nick} is taken. Type another name:"))
                }
            }
            self.send(out, conn, bytes);
            return;
        }
        self.nicks.insert(key, conn);
        self.users.insert(
            conn,
            User {
                nick: nick.to_string(),
                user: user.to_string(),
                realname: realname.to_string(),
                host: host.to_string(),
                protocol,
                channels: BTreeSet::new(),
                focus: None,
                away: None,
                invisible: false,
            },
        );
        let mut bytes = Vec::new();
        match protocol {
            Protocol::Irc => {
                self.write_welcome(&mut bytes, conn);
                self.send(out, conn, bytes);
            }
            Protocol::Plain => {
                plain(
                    &mut bytes,
                    &format!(
                        "*** Welcome to {}, {nick}! What you type goes to {LOBBY}; /help lists commands.",
                        self.info.network
                    ),
                );
                self.send(out, conn, bytes);
                self.join(out, conn, LOBBY);
            }
        }
    }

    /// 001–005, LUSERS and MOTD: what an IRC client gets on registering.
    fn write_welcome(&self, out: &mut Vec<u8>, conn: ConnId) {
        let Some(user) = self.users.get(&conn) else {
            return;
        };
        let info = &self.info;
        let server = info.name.as_str();
        let nick = user.nick.as_str();
        numeric(
            out,
            server,
            reply::RPL_WELCOME,
            nick,
            &[],
            &format!("Welcome to the {} Network, {}", info.network, user.prefix()),
        );
        numeric(
            out,
            server,
            reply::RPL_YOURHOST,
            nick,
            &[],
            &format!("Your host is {server}, running version {}", info.version),
        );
        numeric(
            out,
            server,
            reply::RPL_CREATED,
            nick,
            &[],
            &format!("This server was created {}", info.created),
        );
        numeric_bare(out, server, reply::RPL_MYINFO, nick, &[server, &info.version, "i", "no"]);
        reply::isupport(out, info, nick);
        self.write_lusers(out, nick);
        self.write_motd(out, nick);
    }

    /// The LUSERS replies (251, 252, 254, 255).
    pub fn write_lusers(&self, out: &mut Vec<u8>, client: &str) {
        let server = self.info.name.as_str();
        let users = self.users.len();
        let invisible = self.users.values().filter(|u| u.invisible).count();
        numeric(
            out,
            server,
            reply::RPL_LUSERCLIENT,
            client,
            &[],
            &format!("There are {} users and {invisible} invisible on 1 servers", users - invisible),
        );
        numeric(out, server, reply::RPL_LUSEROP, client, &["0"], "operator(s) online");
        let channels = self.channels.len().to_string();
        numeric(out, server, reply::RPL_LUSERCHANNELS, client, &[&channels], "channels formed");
        numeric(
            out,
            server,
            reply::RPL_LUSERME,
            client,
            &[],
            &format!("I have {users} clients and 0 servers"),
        );
    }

    /// The MOTD (375, 372…, 376) or 422 when there is none.
    pub fn write_motd(&self, out: &mut Vec<u8>, client: &str) {
        let server = self.info.name.as_str();
        match &self.info.motd {
            None => numeric(out, server, reply::ERR_NOMOTD, client, &[], "MOTD File is missing"),
            Some(lines) => {
                numeric(
                    out,
                    server,
                    reply::RPL_MOTDSTART,
                    client,
                    &[],
                    &format!("- {server} Message of the day - "),
                );
                for line in lines {
                    numeric(out, server, reply::RPL_MOTD, client, &[], &format!("- {line}"));
                }
                numeric(out, server, reply::RPL_ENDOFMOTD, client, &[], "End of /MOTD command.");
            }
        }
    }

    /// 332 + 333, or 331 when no topic is set.
    pub fn write_topic(&self, out: &mut Vec<u8>, client: &str, chan: &Channel) {
        let server = self.info.name.as_str();
        match &chan.topic {
            Some(topic) => {
                numeric(out, server, reply::RPL_TOPIC, client, &[&chan.name], &topic.text);
                let at = topic.set_at.to_string();
                numeric_bare(out, server, reply::RPL_TOPICWHOTIME, client, &[&chan.name, &topic.set_by, &at]);
            }
            None => numeric(out, server, reply::RPL_NOTOPIC, client, &[&chan.name], "No topic is set"),
        }
    }

    /// Everyone who shares a channel with `conn`, without `conn` itself.
    fn neighbours(&self, conn: ConnId) -> BTreeSet<ConnId> {
        let mut seen = BTreeSet::new();
        if let Some(user) = self.users.get(&conn) {
            for key in &user.channels {
                if let Some(chan) = self.channels.get(key) {
                    seen.extend(chan.members.keys().copied());
                }
            }
        }
        seen.remove(&conn);
        seen
    }

    fn change_nick(&mut self, out: &mut Deliveries, conn: ConnId, nick: &str) {
        let Some(user) = self.users.get(&conn) else {
            return;
        };
        let old_nick = user.nick.clone();
        if old_nick == nick {
            return;
        }
        let key = fold(nick);
        if self.nicks.get(&key).is_some_and(|owner| *owner != conn) {
            let mut bytes = Vec::new();
            match user.protocol {
                Protocol::Irc => numeric(
                    &mut bytes,
                    &self.info.name,
                    reply::ERR_NICKNAMEINUSE,
                    &old_nick,
                    &[nick],
                    "Nickname is already in use",
                ),
                Protocol::Plain => plain(&mut bytes, &format!("! The name {nick} is taken")),
            }
            self.send(out, conn, bytes);
            return;
        }
        let mut line = Vec::new();
        write_line(&mut line, Some(&user.prefix()), "NICK", &[], Some(nick));
        let mut recipients = self.neighbours(conn);
        recipients.insert(conn);
        self.nicks.remove(&fold(&old_nick));
        self.nicks.insert(key, conn);
        if let Some(user) = self.users.get_mut(&conn) {
            user.nick = nick.to_string();
        }
        self.fan_out(out, recipients, &line, |to| {
            Some(if to.nick == nick {
                format!("*** You are now known as {nick}")
            } else {
                format!("*** {old_nick} is now known as {nick}")
            })
        });
    }

    fn join(&mut self, out: &mut Deliveries, conn: ConnId, channel: &str) {
        let key = fold(channel);
        let Some(user) = self.users.get_mut(&conn) else {
            return;
        };
        if user.channels.contains(&key) {
            // A plain client's /join of a room it is in makes it the room its
            // lines go to; for IRC a repeated JOIN is a no-op.
            if user.protocol == Protocol::Plain && user.focus.as_deref() != Some(key.as_str()) {
                user.focus = Some(key.clone());
                let name = self.channels.get(&key).map_or(channel, |c| c.name.as_str());
                let mut bytes = Vec::new();
                plain(&mut bytes, &format!("*** Your lines now go to {name}"));
                self.send(out, conn, bytes);
            }
            return;
        }
        if user.channels.len() >= self.info.channels_per_client {
            self.error_to(
                out,
                conn,
                reply::ERR_TOOMANYCHANNELS,
                channel,
                "You have joined too many channels",
            );
            return;
        }
        if !self.channels.contains_key(&key) && self.channels.len() >= self.info.max_channels {
            let text = "Channel is temporarily unavailable: the server has all the channels it can hold";
            self.error_to(out, conn, reply::ERR_UNAVAILRESOURCE, channel, text);
            return;
        }
        let Some(user) = self.users.get_mut(&conn) else {
            return;
        };
        user.channels.insert(key.clone());
        if user.protocol == Protocol::Plain {
            user.focus = Some(key.clone());
        }
        let nick = user.nick.clone();
        let protocol = user.protocol;
        let prefix = user.prefix();
        let chan = self.channels.entry(key.clone()).or_insert_with(|| Channel {
            name: channel.to_string(),
            topic: None,
            members: BTreeMap::new(),
        });
        let first = chan.members.is_empty();
        chan.members.insert(conn, first);
        let chan_name = chan.name.clone();
        let members: Vec<ConnId> = chan.members.keys().copied().collect();

        let mut line = Vec::new();
        write_line(&mut line, Some(&prefix), "JOIN", &[&chan_name], None);
        self.fan_out(out, members, &line, |_| Some(format!("*** {nick} joined {chan_name}")));

        if !self.is_local(conn) {
            return;
        }
        let chan = &self.channels[&key];
        let mut bytes = Vec::new();
        match (protocol, &chan.topic) {
            (Protocol::Irc, Some(_)) => self.write_topic(&mut bytes, &nick, chan),
            (Protocol::Plain, Some(topic)) => {
                plain(&mut bytes, &format!("*** Topic of {chan_name}: {}", topic.text))
            }
            (_, None) => {}
        }
        self.send(out, conn, bytes);
        // The member list can be long: it is streamed (see `listing`).
        out.listings.push((conn, Listing::names(&chan_name)));
    }

    /// The user and a channel they are in, or `None` after telling them
    /// why not (403 no such channel, 442 not on it).
    fn joined_channel(&self, out: &mut Deliveries, conn: ConnId, channel: &str) -> Option<(&User, &Channel)> {
        let user = self.users.get(&conn)?;
        let Some(chan) = self.channels.get(&fold(channel)) else {
            self.error_to(out, conn, reply::ERR_NOSUCHCHANNEL, channel, "No such channel");
            return None;
        };
        if !chan.members.contains_key(&conn) {
            self.error_to(out, conn, reply::ERR_NOTONCHANNEL, &chan.name, "You're not on that channel");
            return None;
        }
        Some((user, chan))
    }

    fn part(&mut self, out: &mut Deliveries, conn: ConnId, channel: &str, reason: Option<&str>) {
        let key = fold(channel);
        let Some((user, chan)) = self.joined_channel(out, conn, channel) else {
            return;
        };
        let nick = user.nick.clone();
        let chan_name = chan.name.clone();
        let mut line = Vec::new();
        write_line(&mut line, Some(&user.prefix()), "PART", &[&chan_name], reason);
        let members: Vec<ConnId> = chan.members.keys().copied().collect();
        self.fan_out(out, members, &line, |_| {
            Some(match reason {
                Some(reason) => format!("*** {nick} left {chan_name} ({reason})"),
                None => format!("*** {nick} left {chan_name}"),
            })
        });
        self.remove_member(conn, &key);
    }

    /// Takes `conn` out of a channel, drops the channel when it empties and
    /// moves a plain user's focus to a channel it is still in.
    fn remove_member(&mut self, conn: ConnId, key: &str) {
        if let Some(chan) = self.channels.get_mut(key) {
            chan.members.remove(&conn);
            if chan.members.is_empty() {
                self.channels.remove(key);
            }
        }
        if let Some(user) = self.users.get_mut(&conn) {
            user.channels.remove(key);
            if user.focus.as_deref() == Some(key) {
                user.focus = user.channels.iter().next().cloned();
            }
        }
    }

    fn message(&mut self, out: &mut Deliveries, conn: ConnId, kind: MessageKind, target: &str, text: &str) {
        let Some(user) = self.users.get(&conn) else {
            return;
        };
        let quiet = kind == MessageKind::Notice;
        let nick = user.nick.as_str();
        let mut line = Vec::new();
        if target.starts_with('#') {
            let Some(chan) = self.channels.get(&fold(target)) else {
                if !quiet {
                    self.error_to(out, conn, reply::ERR_NOSUCHCHANNEL, target, "No such channel");
                }
                return;
            };
            if !chan.members.contains_key(&conn) {
                if !quiet {
                    self.error_to(
                        out,
                        conn,
                        reply::ERR_CANNOTSENDTOCHAN,
                        &chan.name,
                        "Cannot send to channel",
                    );
                }
                return;
            }
            write_line(&mut line, Some(&user.prefix()), kind.command(), &[&chan.name], Some(text));
            let key = fold(target);
            let recipients = chan.members.keys().copied().filter(|m| *m != conn);
            self.fan_out(out, recipients, &line, |to| {
                let said = plain_speech(nick, kind, text);
                Some(if to.focus.as_deref() == Some(key.as_str()) {
                    said
                } else {
                    format!("[{}] {said}", chan.name)
                })
            });
        } else {
            let Some(to) = self.find_nick(target) else {
                if !quiet {
                    self.error_to(out, conn, reply::ERR_NOSUCHNICK, target, "No such nick/channel");
                }
                return;
            };
            let to_nick = self.users[&to].nick.as_str();
            if let (Some(away), MessageKind::Privmsg) = (&self.users[&to].away, kind) {
                let mut bytes = Vec::new();
                match user.protocol {
                    Protocol::Irc => {
                        numeric(&mut bytes, &self.info.name, reply::RPL_AWAY, nick, &[to_nick], away)
                    }
                    Protocol::Plain => plain(&mut bytes, &format!("*** {to_nick} is away: {away}")),
                }
                self.send(out, conn, bytes);
            }
            write_line(&mut line, Some(&user.prefix()), kind.command(), &[to_nick], Some(text));
            self.fan_out(out, [to], &line, |_| Some(format!("[private] {}", plain_speech(nick, kind, text))));
        }
    }

    fn set_topic(&mut self, out: &mut Deliveries, conn: ConnId, channel: &str, topic: &str, at: u64) {
        let key = fold(channel);
        let Some((user, chan)) = self.joined_channel(out, conn, channel) else {
            return;
        };
        let topic = truncate_at_char(topic, TOPIC_LEN);
        let nick = user.nick.clone();
        let mut line = Vec::new();
        write_line(&mut line, Some(&user.prefix()), "TOPIC", &[&chan.name], Some(topic));
        let members: Vec<ConnId> = chan.members.keys().copied().collect();
        let chan_name = chan.name.clone();
        self.fan_out(out, members, &line, |_| {
            Some(if topic.is_empty() {
                format!("*** {nick} cleared the topic of {chan_name}")
            } else {
                format!("*** {nick} set the topic of {chan_name} to: {topic}")
            })
        });
        if let Some(chan) = self.channels.get_mut(&key) {
            chan.topic =
                (!topic.is_empty()).then(|| Topic { text: topic.to_string(), set_by: nick, set_at: at });
        }
    }

    fn set_away(&mut self, out: &mut Deliveries, conn: ConnId, message: Option<&str>) {
        let Some(user) = self.users.get_mut(&conn) else { return };
        user.away = message.map(str::to_string);
        let (nick, protocol) = (user.nick.clone(), user.protocol);
        let mut bytes = Vec::new();
        let (code, text) = match message {
            Some(_) => (reply::RPL_NOWAWAY, "You have been marked as being away"),
            None => (reply::RPL_UNAWAY, "You are no longer marked as being away"),
        };
        match protocol {
            Protocol::Irc => numeric(&mut bytes, &self.info.name, code, &nick, &[], text),
            Protocol::Plain => plain(&mut bytes, &format!("*** {text}")),
        }
        self.send(out, conn, bytes);
    }

    fn set_invisible(&mut self, out: &mut Deliveries, conn: ConnId, on: bool) {
        let Some(user) = self.users.get_mut(&conn) else { return };
        if user.invisible == on {
            return;
        }
        user.invisible = on;
        let mut bytes = Vec::new();
        let change = if on { "+i" } else { "-i" };
        write_line(&mut bytes, Some(&user.nick), "MODE", &[&user.nick], Some(change));
        self.send(out, conn, bytes);
    }

    fn quit(&mut self, out: &mut Deliveries, conn: ConnId, reason: &str) {
        let Some(user) = self.users.get(&conn) else {
            return;
        };
        let nick = user.nick.clone();
        let mut line = Vec::new();
        write_line(&mut line, Some(&user.prefix()), "QUIT", &[], Some(reason));
        let recipients = self.neighbours(conn);
        let quitter_channels = user.channels.clone();
        self.fan_out(out, recipients, &line, |to| {
            let shared = to.channels.intersection(&quitter_channels).next();
            let name = shared.and_then(|k| self.channels.get(k)).map_or("", |c| c.name.as_str());
            Some(format!("*** {nick} left {name} ({reason})"))
        });
        for key in quitter_channels {
            self.remove_member(conn, &key);
        }
        self.nicks.remove(&fold(&nick));
        self.users.remove(&conn);
    }
}

/// How a plain client sees someone speak: `alice: hi`, `-alice- hi` for a
/// notice, `* alice waves` for a CTCP ACTION.
fn plain_speech(nick: &str, kind: MessageKind, text: &str) -> String {
    if let Some(action) = text.strip_prefix("\u{1}ACTION ") {
        return format!("* {nick} {}", action.trim_end_matches('\u{1}'));
    }
    match kind {
        MessageKind::Privmsg => format!("{nick}: {text}"),
        MessageKind::Notice => format!("-{nick}- {text}"),
    }
}
