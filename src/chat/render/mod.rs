//! Turning [`Change`]s into bytes: who hears each change, and in which
//! protocol's words.
//!
//! This module decides the audience (the actor, a list of recipients, a
//! channel's members) and keeps what fan-out needs to be cheap: an IRC
//! line is built once per change and its `Arc` shared by every IRC
//! recipient, and a channel's members are walked in place. What the words
//! are is each protocol's business: [`irc`] and [`plain`].
//!
//! A model says which connections it writes for with `serves`: the
//! iterative model serves every connection, a pool worker its own
//! incarnation's, the pool keeper renders nothing. A connection not served
//! costs no rendering; a change no one served hears costs nothing but the
//! walk over its audience.
//!
//! Rendering runs after the whole event is applied, against the directory
//! as the event left it. Only one event removes several users at once
//! (`WorkerLost`): a quitter's neighbour may quit later in the same event,
//! and is still told of the earlier quit, as it was a user then; such a
//! neighbour is found among the event's departures.

pub mod irc;
pub mod plain;

use std::borrow::Cow;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::chat::caps::Caps;
use crate::chat::change::{Change, Departure};
use crate::chat::channel::Membership;
use crate::chat::reply;
use crate::chat::state::User;
use crate::chat::state::monitor::MONITOR_LIMIT;
use crate::chat::{ChannelName, ConnId, Listing, MessageKind, Nick, Protocol, State};

/// Bytes for one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub to: ConnId,
    /// Shared so that one line fanned out to many members is built once.
    pub bytes: Arc<[u8]>,
    /// The actor's copy of its own message as its recipient (a PRIVMSG to
    /// itself): what it sends the actor is otherwise the answer to its
    /// command, but this is not, so it is never labeled (labeled-response;
    /// its echo is the answer).
    pub received: bool,
}

/// What applying one event sends, in order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Deliveries {
    pub items: Vec<Delivery>,
    /// Long replies to stream to a connection after its items (a joiner's
    /// NAMES), see `listing`.
    pub listings: Vec<(ConnId, Listing)>,
    /// Connections the directory has ended (KILL): the model serving each
    /// sends the closing line after its items and closes it; its QUIT is
    /// already among the items of those who shared a channel with it.
    pub closes: Vec<Closing>,
}

/// A connection to close, as [`Deliveries::closes`] lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closing {
    pub conn: ConnId,
    /// What it spoke and where it came from, for its closing line (it is
    /// no longer a user by the time the line is written).
    pub protocol: Protocol,
    pub host: String,
    pub reason: String,
}

impl Deliveries {
    /// Everything addressed to `conn`, concatenated (handy in tests).
    pub fn bytes_for(&self, conn: ConnId) -> Vec<u8> {
        self.items.iter().filter(|d| d.to == conn).flat_map(|d| d.bytes.iter().copied()).collect()
    }
}

/// Appends to `out` what `changes` (one event's, as `State::apply` listed
/// them, applied to `state`) send to the connections `serves` accepts.
pub fn render(state: &State, changes: &[Change<'_>], serves: impl Fn(ConnId) -> bool, out: &mut Deliveries) {
    let renderer = Renderer { state, serves, departed: departures(changes) };
    for change in changes {
        renderer.change(change, out);
    }
}

/// The users an event removed, by connection, when it removed more than
/// one: only then can a quit's neighbour be gone (see the module doc), so
/// a single quit, the common case, builds no map.
fn departures<'c, 'e>(changes: &'c [Change<'e>]) -> FxHashMap<ConnId, &'c Departure<'e>> {
    let mut quits = changes.iter().filter_map(|c| match c {
        Change::Quit(d) => Some(d),
        _ => None,
    });
    match (quits.next(), quits.next()) {
        (Some(first), Some(second)) => {
            [first, second].into_iter().chain(quits).map(|d| (d.conn, d)).collect()
        }
        _ => FxHashMap::default(),
    }
}

/// Someone told of a quit: a user, or someone the same event removed later.
#[derive(Clone, Copy)]
pub(crate) enum Neighbour<'a> {
    User(&'a User),
    Departed(&'a Departure<'a>),
}

impl Neighbour<'_> {
    fn protocol(self) -> Protocol {
        match self {
            Neighbour::User(user) => user.protocol,
            Neighbour::Departed(d) => d.protocol,
        }
    }

    /// Whether they are (were) in `channel`.
    pub(crate) fn in_channel(self, channel: &ChannelName) -> bool {
        match self {
            Neighbour::User(user) => user.channels.contains(channel),
            Neighbour::Departed(d) => d.channels.contains(channel),
        }
    }
}

struct Renderer<'a, 'c, 'e, S> {
    state: &'a State,
    serves: S,
    departed: FxHashMap<ConnId, &'c Departure<'e>>,
}

impl<S: Fn(ConnId) -> bool> Renderer<'_, '_, '_, S> {
    fn change(&self, change: &Change<'_>, out: &mut Deliveries) {
        let state = self.state;
        let server = state.info().name.as_str();
        match change {
            Change::Registered { conn } => self.reply(out, *conn, |user| match user.protocol {
                Protocol::Irc => irc::welcome(state, user),
                Protocol::Plain => plain::line(&plain::welcome(state, user)),
            }),
            Change::RegistrationRefused { conn, nick, protocol } => {
                if (self.serves)(*conn) {
                    let bytes = match protocol {
                        Protocol::Irc => irc::registration_refused(server, nick),
                        Protocol::Plain => plain::line(&plain::registration_refused(nick)),
                    };
                    send(out, *conn, bytes);
                }
            }
            Change::NickRefused { conn, nick } => self.reply(out, *conn, |user| match user.protocol {
                Protocol::Irc => irc::nick_refused(server, user, nick),
                Protocol::Plain => plain::line(&plain::nick_refused(nick)),
            }),
            Change::NickChanged { old_nick, old_prefix, nick, recipients, .. } => self.fan_out(
                out,
                recipients.iter().copied(),
                || irc::nick_changed(old_prefix, nick),
                |to| plain::nick_changed(to, old_nick.as_str(), nick),
            ),
            Change::Joined { conn, channel } => self.joined(out, *conn, channel),
            Change::Focused { conn, channel } => self.reply(out, *conn, |user| match user.protocol {
                Protocol::Irc => Vec::new(),
                Protocol::Plain => plain::line(&plain::focused(state, channel)),
            }),
            Change::Parted { conn, channel, reason, recipients } => {
                let Some(user) = state.user(*conn) else { return };
                self.fan_out(
                    out,
                    recipients.iter().copied(),
                    || irc::parted(user, channel.as_str(), *reason),
                    |_| plain::parted(user, channel.as_str(), *reason),
                );
            }
            Change::ChannelMessage { conn, kind, channel, status, text, stamp } => {
                let (Some(user), Some(chan)) = (state.user(*conn), state.channel_named(channel)) else {
                    return;
                };
                let echo = user.caps.has(Caps::ECHO_MESSAGE);
                let hears = |(member, membership): (&ConnId, &Membership)| {
                    let hears =
                        if member == conn { echo } else { status.is_none_or(|s| s.admits(*membership)) };
                    hears.then_some(*member)
                };
                // A STATUSMSG keeps its prefix, so its hearers see who else did.
                let target = match status {
                    Some(status) => Cow::Owned(format!("{}{}", status.symbol(), chan.name)),
                    None => Cow::Borrowed(chan.name.as_str()),
                };
                self.fan_out_by_caps(
                    out,
                    chan.members.iter().filter_map(hears),
                    irc::MESSAGE_CAPS,
                    |caps| irc::tagged_message(user, *conn, *kind, &target, text, stamp, caps),
                    |to| {
                        let shown = *kind != MessageKind::Tagmsg;
                        shown.then(|| plain::channel_message(user, *kind, text, &chan.name, &target, to))
                    },
                );
            }
            Change::PrivateMessage { conn, kind, to, text, stamp } => {
                let (Some(user), Some(target)) = (state.user(*conn), state.user(*to)) else {
                    return;
                };
                let irc_line =
                    |caps| irc::tagged_message(user, *conn, *kind, target.nick.as_str(), text, stamp, caps);
                let plain_text = |_: &User| {
                    (*kind != MessageKind::Tagmsg).then(|| plain::private_message(user, *kind, text))
                };
                let first = out.items.len();
                self.fan_out_by_caps(out, [*to], irc::MESSAGE_CAPS, irc_line, plain_text);
                if to == conn {
                    out.items[first..].iter_mut().for_each(|d| d.received = true);
                }
                // The echo comes after, even to oneself: it is the answer.
                if user.caps.has(Caps::ECHO_MESSAGE) {
                    self.fan_out_by_caps(out, [*conn], irc::MESSAGE_CAPS, irc_line, plain_text);
                }
            }
            Change::TargetAway { conn, target } => {
                let Some(them) = state.user(*target) else { return };
                let away = them.away.as_deref().unwrap_or_default();
                self.reply(out, *conn, |user| match user.protocol {
                    Protocol::Irc => irc::target_away(server, user, them, away),
                    Protocol::Plain => plain::line(&plain::target_away(them, away)),
                })
            }
            Change::TopicSet { conn, channel, topic } => {
                let (Some(user), Some(chan)) = (state.user(*conn), state.channel_named(channel)) else {
                    return;
                };
                self.fan_out(
                    out,
                    chan.members.keys().copied(),
                    || irc::topic_set(user, chan.name.as_str(), topic),
                    |_| plain::topic_set(user, chan.name.as_str(), topic),
                );
            }
            Change::Quit(departure) => self.quit(out, departure),
            Change::AwayChanged { conn, away } => {
                self.reply(out, *conn, |user| match user.protocol {
                    Protocol::Irc => irc::away_changed(server, user, *away),
                    Protocol::Plain => plain::line(&plain::away_changed(*away)),
                });
                let Some(user) = state.user(*conn) else { return };
                self.tell_observers(out, *conn, Caps::AWAY_NOTIFY, || irc::away_notify(user));
            }
            Change::RealnameChanged { conn } => {
                let Some(user) = state.user(*conn) else { return };
                // The user is told too: its confirmation of the change.
                let line = || irc::setname(user);
                self.fan_out_to_caps(out, [*conn], Caps::SETNAME, line);
                self.tell_observers(out, *conn, Caps::SETNAME, line);
            }
            // Only IRC clients can set user modes, and the answer is IRC's
            // MODE line whoever asked.
            Change::UserModeChanged { conn, mode, on } => self.reply(out, *conn, |user| {
                let sign = if *on { '+' } else { '-' };
                irc::user_mode(user, &format!("{sign}{}", mode.letter()))
            }),
            Change::MonitorStatus { conn, online, offline, full } => self.reply(out, *conn, |user| {
                let mut bytes = Vec::new();
                let nick = user.nick.as_str();
                let online: Vec<String> =
                    online.iter().filter_map(|c| state.user(*c)).map(User::prefix).collect();
                let on = online.iter().map(String::as_str);
                reply::numeric_joined(&mut bytes, server, reply::RPL_MONONLINE, nick, &[], on, ',');
                let off = offline.iter().map(Nick::as_str);
                reply::numeric_joined(&mut bytes, server, reply::RPL_MONOFFLINE, nick, &[], off, ',');
                if !full.is_empty() {
                    let limit = MONITOR_LIMIT.to_string();
                    let targets: Vec<&str> = full.iter().map(Nick::as_str).collect();
                    let text = "Monitor list is full.";
                    reply::numeric(
                        &mut bytes,
                        server,
                        reply::ERR_MONLISTFULL,
                        nick,
                        &[&limit, &targets.join(",")],
                        text,
                    );
                }
                bytes
            }),
            Change::MonitorOnline { watchers, who } => {
                let Some(them) = state.user(*who) else { return };
                let prefix = them.prefix();
                for &watcher in watchers {
                    self.reply(out, watcher, |user| {
                        let mut bytes = Vec::new();
                        reply::numeric(
                            &mut bytes,
                            server,
                            reply::RPL_MONONLINE,
                            user.nick.as_str(),
                            &[],
                            &prefix,
                        );
                        bytes
                    });
                }
            }
            Change::MonitorOffline { watchers, nick } => {
                for &watcher in watchers {
                    self.reply(out, watcher, |user| {
                        let mut bytes = Vec::new();
                        let client = user.nick.as_str();
                        reply::numeric(&mut bytes, server, reply::RPL_MONOFFLINE, client, &[], nick.as_str());
                        bytes
                    });
                }
            }
            Change::OperChanged { conn, on } => self.reply(out, *conn, |user| match user.protocol {
                Protocol::Irc => irc::oper_changed(server, user, *on),
                Protocol::Plain => plain::line(&plain::oper_changed(*on)),
            }),
            Change::Wallops { conn, text, recipients } => {
                let Some(from) = state.user(*conn) else { return };
                self.fan_out(
                    out,
                    recipients.iter().copied(),
                    || irc::wallops(from, text),
                    |_| plain::wallops(from, text),
                );
            }
            // Its closing line says who and why (a KILL line before it would
            // be replaced by it, as whatever a closing client has not
            // started to receive is).
            Change::Killed { target, by, words, protocol, host } => {
                if (self.serves)(*target) {
                    out.closes.push(Closing {
                        conn: *target,
                        protocol: *protocol,
                        host: host.clone(),
                        reason: crate::chat::state::killed_reason(by, words),
                    });
                }
            }
            Change::ModeChanged { conn, channel, modes, params } => {
                let (Some(user), Some(chan)) = (state.user(*conn), state.channel_named(channel)) else {
                    return;
                };
                self.fan_out(
                    out,
                    chan.members.keys().copied(),
                    || irc::mode_changed(user, chan.name.as_str(), modes, params),
                    |_| plain::mode_changed(user, chan.name.as_str(), modes, params),
                );
            }
            Change::Kicked { conn, channel, nick, reason, recipients } => {
                let Some(user) = state.user(*conn) else { return };
                self.fan_out(
                    out,
                    recipients.iter().copied(),
                    || irc::kicked(user, channel.as_str(), nick.as_str(), reason),
                    |to| plain::kicked(user, channel.as_str(), nick, reason, to),
                );
            }
            Change::Invited { conn, to, channel } => {
                let (Some(user), Some(them)) = (state.user(*conn), state.user(*to)) else { return };
                self.reply(out, *conn, |me| match me.protocol {
                    Protocol::Irc => irc::inviting(server, me, them, channel.as_str()),
                    Protocol::Plain => plain::line(&plain::inviting(them, channel.as_str())),
                });
                let invite = || irc::invited(user, them, channel.as_str());
                self.fan_out(out, [*to], invite, |_| plain::invited(user, channel.as_str()));
                // invite-notify: the members who could have invited them
                // too (on +i only operators may).
                let Some(chan) = state.channel_named(channel) else { return };
                let witnesses = chan
                    .members
                    .keys()
                    .copied()
                    .filter(|m| m != conn && (!chan.modes.invite_only || chan.is_op(*m)));
                self.fan_out_to_caps(out, witnesses, Caps::INVITE_NOTIFY, invite);
            }
            Change::Refused { conn, refusal, subject, also } => self.reply(out, *conn, |user| {
                let mut bytes = Vec::new();
                let (code, text) = (refusal.code(), refusal.text());
                let nick = user.nick.as_str();
                match (user.protocol, also) {
                    (Protocol::Irc, Some(also)) => {
                        reply::numeric(&mut bytes, server, code, nick, &[subject, also], text)
                    }
                    (Protocol::Plain, Some(also)) => {
                        reply::plain(&mut bytes, &format!("! {text}: {subject} {also}"))
                    }
                    (protocol, None) => {
                        reply::error(&mut bytes, protocol, server, code, nick, Some(subject), text)
                    }
                }
                bytes
            }),
        }
    }

    /// Bytes for the user on `conn` alone, if served.
    fn reply(&self, out: &mut Deliveries, conn: ConnId, bytes: impl FnOnce(&User) -> Vec<u8>) {
        if !(self.serves)(conn) {
            return;
        }
        if let Some(user) = self.state.user(conn) {
            send(out, conn, bytes(user));
        }
    }

    /// One change to many users: the IRC line is built at most once, when
    /// the first served IRC user is met, and shared; plain users get their
    /// own line (it may depend on who they are).
    fn fan_out(
        &self,
        out: &mut Deliveries,
        recipients: impl IntoIterator<Item = ConnId>,
        irc_line: impl Fn() -> Vec<u8>,
        plain_text: impl Fn(&User) -> String,
    ) {
        // No capability changes these lines: one IRC line for everyone.
        self.fan_out_by_caps(out, recipients, Caps::NONE, |_| irc_line(), |user| Some(plain_text(user)));
    }

    /// Like `fan_out`, for a change whose IRC line depends on the
    /// recipient's capabilities in `mask`: at most one line is built per
    /// distinct set of those (a channel message to clients with and
    /// without server-time is two lines, however many members), each
    /// shared by every recipient with that set. An empty line, or no
    /// plain text, means that recipient gets nothing.
    fn fan_out_by_caps(
        &self,
        out: &mut Deliveries,
        recipients: impl IntoIterator<Item = ConnId>,
        mask: Caps,
        irc_line: impl Fn(Caps) -> Vec<u8>,
        plain_text: impl Fn(&User) -> Option<String>,
    ) {
        let mut built: Vec<(Caps, Option<Arc<[u8]>>)> = Vec::new();
        for to in recipients {
            if !(self.serves)(to) {
                continue;
            }
            let Some(user) = self.state.user(to) else {
                continue;
            };
            let bytes = match user.protocol {
                Protocol::Irc => {
                    let caps = user.caps.only(mask);
                    let line = match built.iter().find(|(c, _)| *c == caps) {
                        Some((_, line)) => line.clone(),
                        None => {
                            let line = Some(irc_line(caps)).filter(|l| !l.is_empty()).map(Arc::from);
                            built.push((caps, line.clone()));
                            line
                        }
                    };
                    let Some(line) = line else { continue };
                    line
                }
                Protocol::Plain => match plain_text(user) {
                    Some(text) => plain::line(&text).into(),
                    None => continue,
                },
            };
            out.items.push(Delivery { to, bytes, received: false });
        }
    }

    /// One IRC line, built once, to those of `recipients` served who have
    /// every capability in `cap` (plain users never have one).
    fn fan_out_to_caps(
        &self,
        out: &mut Deliveries,
        recipients: impl IntoIterator<Item = ConnId>,
        cap: Caps,
        irc_line: impl Fn() -> Vec<u8>,
    ) {
        let with_cap =
            recipients.into_iter().filter(|to| self.state.user(*to).is_some_and(|u| u.caps.has(cap)));
        self.fan_out_by_caps(out, with_cap, Caps::NONE, |_| irc_line(), |_| None);
    }

    /// A change to `conn`'s profile (away, real name) told, as `cap`
    /// asks, to who keeps track of it: those sharing a channel with it,
    /// and (extended-monitor) those monitoring its nick.
    fn tell_observers(&self, out: &mut Deliveries, conn: ConnId, cap: Caps, irc_line: impl Fn() -> Vec<u8>) {
        let state = self.state;
        let Some(user) = state.user(conn) else { return };
        let mut observers = state.neighbours(conn);
        let monitoring = state.watchers_of(&user.nick).into_iter();
        observers
            .extend(monitoring.filter(|w| {
                *w != conn && state.user(*w).is_some_and(|u| u.caps.has(Caps::EXTENDED_MONITOR))
            }));
        self.fan_out_to_caps(out, observers, cap, irc_line);
    }

    /// A JOIN to every member, then to the joiner the topic and (streamed)
    /// the member list.
    fn joined(&self, out: &mut Deliveries, conn: ConnId, channel: &ChannelName) {
        let state = self.state;
        let (Some(user), Some(chan)) = (state.user(conn), state.channel_named(channel)) else {
            return;
        };
        self.fan_out_by_caps(
            out,
            chan.members.keys().copied(),
            Caps::EXTENDED_JOIN,
            |caps| irc::joined(user, chan.name.as_str(), caps),
            |_| Some(plain::joined(user, chan.name.as_str())),
        );
        // away-notify: the members learn at once that the joiner is away.
        if user.away.is_some() {
            let others = chan.members.keys().copied().filter(|m| *m != conn);
            self.fan_out_to_caps(out, others, Caps::AWAY_NOTIFY, || irc::away_notify(user));
        }
        if !(self.serves)(conn) {
            return;
        }
        if let Some(topic) = &chan.topic {
            let bytes = match user.protocol {
                Protocol::Irc => {
                    let mut bytes = Vec::new();
                    irc::write_topic(state, &mut bytes, user.nick.as_str(), chan);
                    bytes
                }
                Protocol::Plain => plain::line(&plain::topic_on_join(chan.name.as_str(), topic)),
            };
            send(out, conn, bytes);
        }
        // The member list can be long: it is streamed (see `listing`).
        out.listings.push((conn, Listing::names(chan.name.as_str())));
    }

    /// Like `fan_out`, but a neighbour may be gone already (see the module
    /// doc), so their protocol and channels may come from their departure.
    fn quit(&self, out: &mut Deliveries, departure: &Departure<'_>) {
        let mut shared: Option<Arc<[u8]>> = None;
        for &to in &departure.recipients {
            if !(self.serves)(to) {
                continue;
            }
            let neighbour = match self.state.user(to) {
                Some(user) => Neighbour::User(user),
                None => match self.departed.get(&to) {
                    Some(d) => Neighbour::Departed(d),
                    None => continue,
                },
            };
            let bytes = match neighbour.protocol() {
                Protocol::Irc => shared.get_or_insert_with(|| irc::quit(departure).into()).clone(),
                Protocol::Plain => plain::line(&plain::quit(departure, neighbour)).into(),
            };
            out.items.push(Delivery { to, bytes, received: false });
        }
    }
}

/// What 305/306 say, in both protocols.
fn away_words(away: bool) -> &'static str {
    if away { "You have been marked as being away" } else { "You are no longer marked as being away" }
}

fn send(out: &mut Deliveries, to: ConnId, bytes: Vec<u8>) {
    if !bytes.is_empty() {
        out.items.push(Delivery { to, bytes: bytes.into(), received: false });
    }
}

#[cfg(test)]
mod tests;
