//! The chat directory — users, nicks, channels, members, topics — and
//! [`State::apply`], the one function that changes it.
//!
//! `apply` is pure and deterministic: no I/O, no clock, no randomness, and
//! only ordered maps where iteration order could leak into output. Replicas
//! that apply the same events in the same order therefore hold the same
//! directory and list the same [`Change`]s, which is what lets the pool
//! models keep one replica per worker instead of sharing a locked one.
//!
//! `apply` says what happened, not how to say it: turning changes into
//! IRC or plain lines, and choosing whose lines a replica writes, is
//! `render`'s work. So the directory has no protocol branches beyond the
//! one rule that is about state (a plain user has a focus channel), and a
//! replica that only follows the log renders nothing.
//!
//! Errors that depend on the directory (no such nick, nick in use, not on
//! channel) are found here, in log order, rather than in the session: a
//! session's view may be a moment old, the log's order is the truth.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::{Arc, LazyLock};

use rustc_hash::FxHashMap;

use crate::chat::caps::Caps;
use crate::chat::change::{Change, Departure, Refusal};
use crate::chat::channel::Membership;
pub use crate::chat::channel::{Channel, Topic};
use crate::chat::names::{TOPIC_LEN, truncate_at_char};
use crate::chat::reload;
use crate::chat::{ChannelName, ConnId, Event, MessageKind, Nick, Protocol, ServerInfo, Stamp, Target};

pub mod monitor;
mod ops;
mod queries;
mod snapshot;
mod user;
mod users;
pub mod whowas;

pub use snapshot::{SnapshotError, VERSION as SNAPSHOT_VERSION};
pub use user::User;
pub use users::killed_reason;

use whowas::Whowas;

/// The channel plain clients are put in when they arrive.
pub const LOBBY: &str = "#lobby";

/// [`LOBBY`] folded once for the whole run: a plain user's registration
/// joins it with a change that borrows its name, like a JOIN's.
static LOBBY_NAME: LazyLock<ChannelName> = LazyLock::new(|| ChannelName::new(LOBBY));

/// The directory. Clone it for a copy in this process, [`State::snapshot`]
/// it for another node; compare replicas with [`State::digest`].
#[derive(Debug, Clone)]
pub struct State {
    info: Arc<ServerInfo>,
    /// Keyed by server-assigned ids, looked up once per recipient of every
    /// event: a fast hash (no client controls these keys).
    users: FxHashMap<ConnId, User>,
    /// Keyed by client-chosen names: the standard, DoS-resistant hash.
    nicks: HashMap<Nick, ConnId>,
    channels: BTreeMap<ChannelName, Channel>,
    /// The most users there have been at once (LUSERS 265/266).
    peak_users: usize,
    /// Every user's id in order: the cursor of a WHO over all users (a
    /// `Listing`), which the hash map cannot give.
    order: BTreeSet<ConnId>,
    /// Who had the nicks given up lately (WHOWAS).
    whowas: Whowas,
    /// Who monitors which nick (MONITOR).
    watchers: monitor::Watchers,
    /// Pieces of new settings not yet complete (see `reload`).
    reloads: reload::Gathering,
}

impl State {
    pub fn new(info: Arc<ServerInfo>) -> Self {
        State {
            info,
            users: FxHashMap::default(),
            nicks: HashMap::new(),
            channels: BTreeMap::new(),
            peak_users: 0,
            order: BTreeSet::new(),
            whowas: Whowas::default(),
            watchers: monitor::Watchers::default(),
            reloads: reload::Gathering::default(),
        }
    }

    pub fn info(&self) -> &ServerInfo {
        &self.info
    }

    /// The settings as of the last event applied, to share: a session (or
    /// a new connection's limits) holds them until they are reloaded.
    pub fn shared_info(&self) -> &Arc<ServerInfo> {
        &self.info
    }

    pub fn user(&self, conn: ConnId) -> Option<&User> {
        self.users.get(&conn)
    }

    /// The user with `nick` as a client typed it (folded here, once per
    /// query).
    pub fn find_nick(&self, nick: &str) -> Option<ConnId> {
        self.nicks.get(&Nick::new(nick)).copied()
    }

    /// The channel `name` as a client typed it (folded here, once per
    /// query).
    pub fn channel(&self, name: &str) -> Option<&Channel> {
        self.channels.get(&ChannelName::new(name))
    }

    /// A channel by a name folded already, as events and changes carry it
    /// (no folding on the way to a message's members).
    pub fn channel_named(&self, name: &ChannelName) -> Option<&Channel> {
        self.channels.get(name)
    }

    pub fn channels(&self) -> impl Iterator<Item = &Channel> {
        self.channels.values()
    }

    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }

    pub fn users(&self) -> impl Iterator<Item = &User> {
        self.users.values()
    }

    /// Every user's connection, in no particular order.
    pub fn connections(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.users.keys().copied()
    }

    /// Channels in order of folded name, from `from` on (a listing's cursor).
    pub fn channels_from(&self, from: Bound<&ChannelName>) -> impl Iterator<Item = (&ChannelName, &Channel)> {
        self.channels.range::<ChannelName, _>((from, Bound::Unbounded))
    }

    /// The most users there have been at once since the server started.
    pub fn peak_users(&self) -> usize {
        self.peak_users
    }

    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    /// A summary that is equal for equal directories, to check replicas agree.
    pub fn digest(&self) -> String {
        let mut users: Vec<String> = self
            .users
            .iter()
            .map(|(c, u)| {
                let channels: BTreeSet<&str> = u.channels.iter().map(ChannelName::key).collect();
                let times = (u.signon, u.last_active);
                format!("{c:?}={}:{channels:?}:{:?}:{:?}:{times:?}", u.nick, u.invites, u.caps)
            })
            .collect();
        users.sort();
        let channels: Vec<String> = self
            .channels
            .iter()
            .map(|(k, c)| {
                let topic = c.topic.as_ref().map(|t| (&t.text, &t.set_by, t.set_at));
                let lists = (&c.bans, &c.excepts, &c.invite_excepts, &c.invited);
                format!("{}:{:?}:{topic:?}:{}:{:?}:{lists:?}", k.key(), c.members, c.created_at, c.modes)
            })
            .collect();
        format!("{users:?}|{channels:?}|{}|{:?}", self.whowas.digest(), self.info.reloadable)
    }

    /// Records `event` and appends what it did to `changes`, in the order
    /// its consequences are to be sent.
    pub fn apply<'e>(&mut self, event: &'e Event, changes: &mut Vec<Change<'e>>) {
        match event {
            Event::Register { conn, nick, user, realname, host, protocol, at, caps } => {
                self.register(changes, *conn, nick, user, realname, host, *protocol, *at);
                if let Some(user) = self.users.get_mut(conn) {
                    user.caps = *caps;
                }
            }
            Event::Caps { conn, caps } => {
                if let Some(user) = self.users.get_mut(conn) {
                    user.caps = *caps;
                }
            }
            Event::Nick { conn, nick } => self.change_nick(changes, *conn, nick),
            Event::Join { conn, channel, key, at } => self.join(changes, *conn, channel, key.as_deref(), *at),
            Event::PartAll { conn } => {
                let joined: Vec<ChannelName> = match self.users.get(conn) {
                    Some(user) => user.channels.iter().cloned().collect(),
                    None => Vec::new(),
                };
                for channel in joined {
                    self.leave(changes, *conn, &channel, None);
                }
            }
            Event::Part { conn, channel, reason } => {
                if self.joined_channel(changes, *conn, channel).is_some() {
                    self.leave(changes, *conn, channel, reason.as_deref());
                }
            }
            Event::Message { conn, kind, target, text, stamp } => {
                if let Some(user) = self.users.get_mut(conn) {
                    user.last_active = user.last_active.max(stamp.at / 1000);
                }
                self.message(changes, *conn, *kind, target, text, stamp)
            }
            Event::Topic { conn, channel, topic, at } => self.set_topic(changes, *conn, channel, topic, *at),
            Event::Mode { conn, channel, changes: modes, at } => {
                self.set_modes(changes, *conn, channel, modes, *at)
            }
            Event::Kick { conn, channel, nick, reason } => {
                self.kick(changes, *conn, channel, nick, reason.as_deref())
            }
            Event::Invite { conn, nick, channel } => self.invite(changes, *conn, nick, channel),
            Event::Quit { conn, reason } => self.quit(changes, *conn, reason.into()),
            Event::Oper { conn, on } => self.set_oper(changes, *conn, *on),
            Event::UserMode { conn, mode, on } => self.set_user_mode(changes, *conn, *mode, *on),
            Event::SetName { conn, realname } => self.set_realname(changes, *conn, realname),
            Event::WallopsMessage { conn, text } => self.wallops(changes, *conn, text),
            Event::Kill { conn, target, reason } => self.kill(changes, *conn, target, reason),
            Event::Monitor { conn, change } => self.monitor(changes, *conn, change),
            Event::Away { conn, message } => self.set_away(changes, *conn, message.as_deref()),
            Event::Reload { from, part, last, bytes } => {
                if let Some(settings) = self.reloads.take(*from, *part, *last, bytes) {
                    self.info = Arc::new(self.info.reloaded(settings));
                }
            }
            Event::WorkerLost { worker, generation, reason } => {
                self.reloads.forget_writers(|from| from == *worker);
                let gone = |c: &ConnId| c.worker == *worker && c.generation == *generation;
                self.quit_all(changes, gone, reason);
            }
            Event::NodeLost { node, epoch, reason } => {
                self.reloads.forget_writers(|from| from / ConnId::CELLS_PER_NODE == *node);
                let gone = |c: &ConnId| c.node() == *node && c.epoch() == *epoch;
                self.quit_all(changes, gone, reason);
            }
        }
    }

    /// Quits, in id order, every user whose connection `gone` names.
    fn quit_all<'e>(
        &mut self,
        changes: &mut Vec<Change<'e>>,
        gone: impl Fn(&ConnId) -> bool,
        reason: &'e str,
    ) {
        let mut lost: Vec<ConnId> = self.users.keys().copied().filter(|c| gone(c)).collect();
        lost.sort();
        for conn in lost {
            self.quit(changes, conn, reason.into());
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn register<'e>(
        &mut self,
        changes: &mut Vec<Change<'e>>,
        conn: ConnId,
        nick: &'e Nick,
        user: &str,
        realname: &str,
        host: &str,
        protocol: Protocol,
        at: u64,
    ) {
        if self.users.contains_key(&conn) {
            return;
        }
        if self.nicks.contains_key(nick) {
            changes.push(Change::RegistrationRefused { conn, nick: nick.as_str(), protocol });
            return;
        }
        self.nicks.insert(nick.clone(), conn);
        self.users.insert(
            conn,
            User {
                nick: nick.clone(),
                user: user.to_string(),
                realname: realname.to_string(),
                host: host.to_string(),
                protocol,
                channels: BTreeSet::new(),
                focus: None,
                away: None,
                invisible: false,
                oper: false,
                wallops: false,
                bot: false,
                invites: BTreeSet::new(),
                caps: Caps::NONE,
                signon: at,
                last_active: at,
                monitoring: BTreeSet::new(),
            },
        );
        self.order.insert(conn);
        self.peak_users = self.peak_users.max(self.users.len());
        changes.push(Change::Registered { conn });
        self.monitored_online(changes, conn, nick);
        if protocol == Protocol::Plain {
            // The lobby is made by whoever arrives first: its creation
            // time is not worth carrying in every registration.
            self.join(changes, conn, &LOBBY_NAME, None, 0);
        }
    }

    /// Everyone who shares a channel with `conn`, without `conn` itself.
    pub(crate) fn neighbours(&self, conn: ConnId) -> BTreeSet<ConnId> {
        let mut seen = BTreeSet::new();
        if let Some(user) = self.users.get(&conn) {
            for channel in &user.channels {
                if let Some(chan) = self.channels.get(channel) {
                    seen.extend(chan.members.keys().copied());
                }
            }
        }
        seen.remove(&conn);
        seen
    }

    fn change_nick<'e>(&mut self, changes: &mut Vec<Change<'e>>, conn: ConnId, nick: &'e Nick) {
        let Some(user) = self.users.get(&conn) else {
            return;
        };
        // As written, not by key: a change of case is a change of nick.
        if user.nick.as_str() == nick.as_str() {
            return;
        }
        if self.nicks.get(nick).is_some_and(|owner| *owner != conn) {
            changes.push(Change::NickRefused { conn, nick: nick.as_str() });
            return;
        }
        let old_prefix = user.prefix();
        // A change of case keeps the nick: nothing was given up.
        if user.nick != *nick {
            self.whowas.record(user.was());
        }
        let mut recipients = self.neighbours(conn);
        recipients.insert(conn);
        let Some(user) = self.users.get_mut(&conn) else {
            return;
        };
        let old_nick = std::mem::replace(&mut user.nick, nick.clone());
        // Removed first, so that a change of case replaces the written form
        // the map holds too (an insert over an equal key would keep it).
        self.nicks.remove(&old_nick);
        self.nicks.insert(nick.clone(), conn);
        let recipients = recipients.into_iter().collect();
        // A change of case is the same nick to a watcher: nothing to tell.
        let renamed = old_nick != *nick;
        if renamed {
            self.monitored_offline(changes, &old_nick);
        }
        changes.push(Change::NickChanged { conn, old_nick, old_prefix, nick: nick.as_str(), recipients });
        if renamed {
            self.monitored_online(changes, conn, nick);
        }
    }

    fn join<'e>(
        &mut self,
        changes: &mut Vec<Change<'e>>,
        conn: ConnId,
        channel: &'e ChannelName,
        key: Option<&str>,
        at: u64,
    ) {
        if let Some(refusal) = self.join_refusal(conn, channel, key) {
            let subject = Cow::Borrowed(channel.as_str());
            changes.push(Change::Refused { conn, refusal, subject, also: None });
            return;
        }
        let Some(user) = self.users.get_mut(&conn) else {
            return;
        };
        if let Some(joined) = user.channels.get(channel) {
            // A plain client's /join of a room it is in makes it the room its
            // lines go to; for IRC a repeated JOIN is a no-op.
            if user.protocol == Protocol::Plain && user.focus.as_ref() != Some(channel) {
                user.focus = Some(joined.clone());
                changes.push(Change::Focused { conn, channel });
            }
            return;
        }
        if user.channels.len() >= self.info.channels_per_client {
            let subject = Cow::Borrowed(channel.as_str());
            changes.push(Change::Refused { conn, refusal: Refusal::TooManyChannels, subject, also: None });
            return;
        }
        if !self.channels.contains_key(channel) && self.channels.len() >= self.info.max_channels {
            let subject = Cow::Borrowed(channel.as_str());
            changes.push(Change::Refused { conn, refusal: Refusal::Unavailable, subject, also: None });
            return;
        }
        let chan = self.channels.entry(channel.clone()).or_insert_with(|| Channel::new(channel.clone(), at));
        user.channels.insert(chan.name.clone());
        if user.protocol == Protocol::Plain {
            user.focus = Some(chan.name.clone());
        }
        // An invite is spent by joining.
        if chan.invited.remove(&conn) {
            user.invites.remove(channel);
        }
        let first = chan.members.is_empty();
        chan.members.insert(conn, Membership { op: first, voice: false });
        changes.push(Change::Joined { conn, channel });
    }

    /// The channel `conn` is in, or `None` after refusing (403 no such
    /// channel, 442 not on it).
    fn joined_channel<'e>(
        &self,
        changes: &mut Vec<Change<'e>>,
        conn: ConnId,
        channel: &'e ChannelName,
    ) -> Option<&Channel> {
        if !self.users.contains_key(&conn) {
            return None;
        }
        let Some(chan) = self.channels.get(channel) else {
            let subject = Cow::Borrowed(channel.as_str());
            changes.push(Change::Refused { conn, refusal: Refusal::NoSuchChannel, subject, also: None });
            return None;
        };
        if !chan.members.contains_key(&conn) {
            let subject = Cow::Owned(chan.name.as_str().to_string());
            changes.push(Change::Refused { conn, refusal: Refusal::NotOnChannel, subject, also: None });
            return None;
        }
        Some(chan)
    }

    /// Takes `conn` out of `channel`, which it is in.
    fn leave<'e>(
        &mut self,
        changes: &mut Vec<Change<'e>>,
        conn: ConnId,
        channel: &ChannelName,
        reason: Option<&'e str>,
    ) {
        let Some(chan) = self.channels.get(channel) else {
            return;
        };
        let name = chan.name.clone();
        let recipients = chan.members.keys().copied().collect();
        self.remove_member(conn, channel);
        changes.push(Change::Parted { conn, channel: name, reason, recipients });
    }

    /// Takes `conn` out of a channel, drops the channel when it empties and
    /// moves a plain user's focus to a channel it is still in.
    fn remove_member(&mut self, conn: ConnId, channel: &ChannelName) {
        if let Some(chan) = self.channels.get_mut(channel) {
            chan.members.remove(&conn);
            if chan.members.is_empty() {
                self.drop_channel(channel);
            }
        }
        if let Some(user) = self.users.get_mut(&conn) {
            user.channels.remove(channel);
            if user.focus.as_ref() == Some(channel) {
                user.focus = user.channels.iter().next().cloned();
            }
        }
    }

    fn message<'e>(
        &mut self,
        changes: &mut Vec<Change<'e>>,
        conn: ConnId,
        kind: MessageKind,
        target: &'e Target,
        text: &'e str,
        stamp: &'e Stamp,
    ) {
        if !self.users.contains_key(&conn) {
            return;
        }
        // A NOTICE never causes an automatic reply, refusals included.
        let quiet = kind == MessageKind::Notice;
        match target {
            Target::Channel(channel) | Target::Status { channel, .. } => {
                let status = target.status();
                let Some(chan) = self.channels.get(channel) else {
                    if !quiet {
                        let subject = Cow::Borrowed(channel.as_str());
                        changes.push(Change::Refused {
                            conn,
                            refusal: Refusal::NoSuchChannel,
                            subject,
                            also: None,
                        });
                    }
                    return;
                };
                if let Some(refusal) = chan.speech_refusal(conn, &self.users[&conn].prefix(), text) {
                    if !quiet {
                        let subject = Cow::Owned(chan.name.as_str().to_string());
                        changes.push(Change::Refused { conn, refusal, subject, also: None });
                    }
                    return;
                }
                changes.push(Change::ChannelMessage { conn, kind, channel, status, text, stamp });
            }
            Target::Nick(nick) => {
                let Some(&to) = self.nicks.get(nick) else {
                    if !quiet {
                        let subject = Cow::Borrowed(nick.as_str());
                        changes.push(Change::Refused {
                            conn,
                            refusal: Refusal::NoSuchNick,
                            subject,
                            also: None,
                        });
                    }
                    return;
                };
                if kind == MessageKind::Privmsg && self.users[&to].away.is_some() {
                    changes.push(Change::TargetAway { conn, target: to });
                }
                changes.push(Change::PrivateMessage { conn, kind, to, text, stamp });
            }
        }
    }

    fn set_topic<'e>(
        &mut self,
        changes: &mut Vec<Change<'e>>,
        conn: ConnId,
        channel: &'e ChannelName,
        topic: &'e str,
        at: u64,
    ) {
        let Some(chan) = self.joined_channel(changes, conn, channel) else {
            return;
        };
        if chan.modes.topic_ops && !chan.is_op(conn) {
            let subject = Cow::Owned(chan.name.as_str().to_string());
            changes.push(Change::Refused { conn, refusal: Refusal::NotOperator, subject, also: None });
            return;
        }
        let topic = truncate_at_char(topic, TOPIC_LEN);
        let set_by = self.users[&conn].prefix();
        if let Some(chan) = self.channels.get_mut(channel) {
            chan.topic = (!topic.is_empty()).then(|| Topic { text: topic.to_string(), set_by, set_at: at });
        }
        changes.push(Change::TopicSet { conn, channel, topic });
    }

    fn quit<'e>(&mut self, changes: &mut Vec<Change<'e>>, conn: ConnId, reason: Cow<'e, str>) {
        let recipients = self.neighbours(conn).into_iter().collect();
        let Some(user) = self.users.remove(&conn) else {
            return;
        };
        self.order.remove(&conn);
        self.whowas.record(user.was());
        let prefix = user.prefix();
        let mut channels = Vec::with_capacity(user.channels.len());
        // The user's names are the channels' own (see `User::channels`), so
        // the departure takes them as they are.
        for invited in &user.invites {
            if let Some(chan) = self.channels.get_mut(invited) {
                chan.invited.remove(&conn);
            }
        }
        for channel in user.channels {
            if let Some(chan) = self.channels.get_mut(&channel) {
                chan.members.remove(&conn);
                if chan.members.is_empty() {
                    self.drop_channel(&channel);
                }
                channels.push(channel);
            }
        }
        self.nicks.remove(&user.nick);
        self.forget_monitoring(conn, &user.monitoring);
        changes.push(Change::Quit(Departure {
            conn,
            nick: user.nick,
            prefix,
            protocol: user.protocol,
            channels,
            reason,
            recipients,
        }));
        if let Some(Change::Quit(departure)) = changes.last() {
            let nick = departure.nick.clone();
            self.monitored_offline(changes, &nick);
        }
    }
}
