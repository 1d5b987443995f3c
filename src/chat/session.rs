//! One connection's protocol state: which protocol it speaks, how far it has
//! got with registration, and what each of its lines means.
//!
//! A session never changes shared state itself. For each line it produces
//! [`Action`]s in order: bytes for its own client right away (errors, PONG,
//! answers to queries read from a `State`), events for the directory, or a
//! request to close. Syntax is checked here, before anything reaches the
//! directory; whatever depends on other users (nick taken, no such nick) is
//! decided by `State::apply` in event order. The session reads the clock only
//! through the `now` its caller passes, so it is as testable as `State`.
//!
//! A session is registered exactly when the directory has a user for its
//! connection, so it keeps no "registered" flag that could disagree.

use std::sync::Arc;

use crate::chat::listing::Listing;
use crate::chat::names::{
    AWAY_LEN, MAX_TARGETS, REALNAME_LEN, USER_LEN, is_channel_target, is_valid_channel, is_valid_nick,
    same_name, truncate_at_char, valid_user,
};
use crate::chat::reply::{self, closing_link, numeric, numeric_bare, plain};
use crate::chat::state::User;
use crate::chat::{ConnId, Event, MessageKind, Protocol, ServerInfo, State};
use crate::wire::Message;
use crate::wire::message::write_line;

/// Whether a first line with this (upper-case) command is an IRC client
/// registering; anything else starts a plain client. PASS opens IRC too,
/// though a session waits for the next line to decide (a person may type
/// `PASS secret` before a name).
pub fn opens_irc(command: &str) -> bool {
    matches!(command, "CAP" | "NICK" | "USER" | "PASS")
}

/// What the connection's owner must do, in this order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send these bytes to this session's client.
    Reply(Vec<u8>),
    /// Hand this event to the directory (and send what it delivers).
    Event(Event),
    /// Send this long reply, a piece at a time as the client reads it
    /// (see `listing`); the client's next line waits until it is done.
    Listing(Listing),
    /// Close the connection once the bytes before this are sent.
    Close,
}

/// Collects a line's actions, merging consecutive replies into one buffer.
struct Out<'a>(&'a mut Vec<Action>);

impl Out<'_> {
    fn buf(&mut self) -> &mut Vec<u8> {
        if !matches!(self.0.last(), Some(Action::Reply(_))) {
            self.0.push(Action::Reply(Vec::new()));
        }
        match self.0.last_mut() {
            Some(Action::Reply(bytes)) => bytes,
            _ => unreachable!("a reply was just pushed"),
        }
    }

    fn event(&mut self, event: Event) {
        self.0.push(Action::Event(event));
    }

    fn close(&mut self) {
        self.0.push(Action::Close);
    }

    fn listing(&mut self, listing: Listing) {
        self.0.push(Action::Listing(listing));
    }
}

pub struct Session {
    conn: ConnId,
    host: String,
    info: Arc<ServerInfo>,
    /// Decided by the first line that is not PASS.
    protocol: Option<Protocol>,
    password: Option<String>,
    nick: Option<String>,
    user: Option<(String, String)>,
    /// Between CAP LS/REQ and CAP END registration waits, as the spec says.
    cap_negotiating: bool,
}

impl Session {
    pub fn new(conn: ConnId, host: impl Into<String>, info: Arc<ServerInfo>) -> Self {
        Session {
            conn,
            host: host.into(),
            info,
            protocol: None,
            password: None,
            nick: None,
            user: None,
            cap_negotiating: false,
        }
    }

    pub fn conn(&self) -> ConnId {
        self.conn
    }

    pub fn protocol(&self) -> Option<Protocol> {
        self.protocol
    }

    /// The first line every client gets: IRC clients show it as a server
    /// notice, and it tells a person at `nc` what to do. `served_by` names
    /// the pool worker, so people (and tests) can see how clients spread.
    pub fn greeting(&self, served_by: Option<&str>) -> Vec<u8> {
        let mut out = Vec::new();
        let on = served_by.map(|w| format!(" ({w})")).unwrap_or_default();
        let text = if self.info.password.is_some() {
            format!(
                "*** Welcome to chatter{on}! This server needs a password. Using nc or telnet? Type the password and press Enter."
            )
        } else {
            format!(
                "*** Welcome to chatter{on}! Using nc or telnet? Type a name and press Enter to start chatting."
            )
        };
        write_line(&mut out, Some(&self.info.name), "NOTICE", &["*"], Some(&text));
        out
    }

    /// The last line before the server drops this client for `reason`.
    pub fn closing_line(&self, reason: &str) -> Vec<u8> {
        let mut out = Vec::new();
        closing_link(&mut out, self.protocol, &self.host, reason);
        out
    }

    /// The event that tells others this client is gone, if it had registered.
    pub fn quit_event(&self, state: &State, reason: &str) -> Option<Event> {
        state.user(self.conn).map(|_| Event::Quit { conn: self.conn, reason: reason.to_string() })
    }

    /// A line longer than the protocol allows was dropped.
    pub fn on_too_long(&self, state: &State, actions: &mut Vec<Action>) {
        let mut out = Out(actions);
        let client = self.client_name(state);
        reply::error(
            out.buf(),
            self.protocol.unwrap_or(Protocol::Irc),
            &self.info.name,
            reply::ERR_INPUTTOOLONG,
            &client,
            None,
            "Input line was too long",
        );
    }

    /// Handles one line from the client. `now` is Unix seconds.
    pub fn on_line(&mut self, line: &[u8], state: &State, now: u64, actions: &mut Vec<Action>) {
        let text = String::from_utf8_lossy(line);
        let mut out = Out(actions);
        match (self.protocol, state.user(self.conn)) {
            (Some(Protocol::Plain), Some(user)) => self.plain_line(&text, user, state, now, &mut out),
            (Some(Protocol::Irc), Some(user)) => {
                if let Ok(msg) = Message::parse(&text) {
                    self.irc_command(&msg, user, state, now, &mut out);
                }
            }
            (Some(Protocol::Plain), None) => self.plain_name(&text, &mut out),
            (Some(Protocol::Irc), None) => {
                if let Ok(msg) = Message::parse(&text) {
                    self.irc_registration(&msg, state, &mut out);
                }
            }
            (None, _) => {
                let msg = Message::parse(&text).ok();
                match msg.as_ref().map(|m| m.command.as_str()) {
                    Some("PASS") => self.irc_registration(msg.as_ref().expect("parsed"), state, &mut out),
                    Some(command) if opens_irc(command) => {
                        self.protocol = Some(Protocol::Irc);
                        self.irc_registration(msg.as_ref().expect("parsed"), state, &mut out);
                    }
                    _ => {
                        self.protocol = Some(Protocol::Plain);
                        self.plain_name(&text, &mut out);
                    }
                }
            }
        }
    }

    fn client_name(&self, state: &State) -> String {
        state
            .user(self.conn)
            .map(|u| u.nick.clone())
            .or_else(|| self.nick.clone())
            .unwrap_or_else(|| "*".into())
    }

    fn numeric(&self, out: &mut Out, client: &str, code: u16, middle: &[&str], text: &str) {
        numeric(out.buf(), &self.info.name, code, client, middle, text);
    }

    fn password_ok(&self) -> bool {
        match &self.info.password {
            None => true,
            Some(wanted) => self.password.as_deref() == Some(wanted.as_str()),
        }
    }

    // ---- IRC, before registration ----

    fn irc_registration(&mut self, msg: &Message, state: &State, out: &mut Out) {
        let client = self.client_name(state);
        match msg.command.as_str() {
            "CAP" => self.cap(msg, &client, out),
            "PASS" => match msg.param(0) {
                Some(pass) => self.password = Some(pass.to_string()),
                None => {
                    self.numeric(out, &client, reply::ERR_NEEDMOREPARAMS, &["PASS"], "Not enough parameters")
                }
            },
            "NICK" => match msg.param(0).filter(|n| !n.is_empty()) {
                None => self.numeric(out, &client, reply::ERR_NONICKNAMEGIVEN, &[], "No nickname given"),
                Some(nick) if !is_valid_nick(nick) => {
                    self.numeric(out, &client, reply::ERR_ERRONEUSNICKNAME, &[nick], "Erroneous nickname")
                }
                Some(nick) => {
                    self.nick = Some(nick.to_string());
                    self.try_register(out);
                }
            },
            "USER" => {
                if msg.params.len() < 4 || msg.params[0].is_empty() || msg.params[3].is_empty() {
                    self.numeric(out, &client, reply::ERR_NEEDMOREPARAMS, &["USER"], "Not enough parameters");
                } else if let Some(user) = valid_user(&msg.params[0]) {
                    let realname = truncate_at_char(&msg.params[3], REALNAME_LEN);
                    self.user = Some((user.to_string(), realname.to_string()));
                    self.try_register(out);
                } else {
                    // As InspIRCd: the client may send USER again.
                    self.numeric(out, &client, reply::ERR_INVALIDUSERNAME, &[], "Your username is not valid");
                }
            }
            "PING" => self.pong(msg, &client, out),
            "PONG" => {}
            "QUIT" => {
                out.buf().extend(self.closing_line("Quit"));
                out.close();
            }
            _ => self.numeric(out, &client, reply::ERR_NOTREGISTERED, &[], "You have not registered"),
        }
    }

    fn cap(&mut self, msg: &Message, client: &str, out: &mut Out) {
        let sub = msg.param(0).unwrap_or("").to_ascii_uppercase();
        let server = self.info.name.clone();
        match sub.as_str() {
            // No capabilities are offered yet: the lists are empty and every
            // request is refused, which clients handle by carrying on.
            "LS" | "LIST" => {
                if sub == "LS" {
                    self.cap_negotiating = true;
                }
                write_line(out.buf(), Some(&server), "CAP", &[client, &sub], Some(""));
            }
            "REQ" => {
                self.cap_negotiating = true;
                let wanted = msg.param(1).unwrap_or("");
                write_line(out.buf(), Some(&server), "CAP", &[client, "NAK"], Some(wanted));
            }
            "END" => {
                self.cap_negotiating = false;
                self.try_register(out);
            }
            _ => self.numeric(out, client, reply::ERR_INVALIDCAPCMD, &[&sub], "Invalid CAP command"),
        }
    }

    fn try_register(&mut self, out: &mut Out) {
        let (Some(nick), Some((user, realname))) = (&self.nick, &self.user) else {
            return;
        };
        if self.cap_negotiating {
            return;
        }
        if !self.password_ok() {
            let nick = nick.clone();
            self.numeric(out, &nick, reply::ERR_PASSWDMISMATCH, &[], "Password incorrect");
            out.buf().extend(self.closing_line("Bad password"));
            out.close();
            return;
        }
        let event = self.register_event(nick, user, realname, Protocol::Irc);
        out.event(event);
    }

    fn register_event(&self, nick: &str, user: &str, realname: &str, protocol: Protocol) -> Event {
        Event::Register {
            conn: self.conn,
            nick: nick.to_string(),
            user: user.to_string(),
            realname: realname.to_string(),
            host: self.host.clone(),
            protocol,
        }
    }

    fn pong(&self, msg: &Message, client: &str, out: &mut Out) {
        match msg.param(0) {
            Some(token) => {
                let server = self.info.name.as_str();
                write_line(out.buf(), Some(server), "PONG", &[server], Some(token));
            }
            None => self.numeric(out, client, reply::ERR_NEEDMOREPARAMS, &["PING"], "Not enough parameters"),
        }
    }

    // ---- IRC, registered ----

    fn irc_command(&mut self, msg: &Message, user: &User, state: &State, now: u64, out: &mut Out) {
        let nick = user.nick.as_str();
        let conn = self.conn;
        let need_params = |out: &mut Out, count: usize| {
            let missing = msg.params.len() < count || msg.params[..count].iter().any(|p| p.is_empty());
            if missing {
                numeric(
                    out.buf(),
                    &self.info.name,
                    reply::ERR_NEEDMOREPARAMS,
                    nick,
                    &[&msg.command],
                    "Not enough parameters",
                );
            }
            !missing
        };
        match msg.command.as_str() {
            "PING" => self.pong(msg, nick, out),
            "PONG" => {}
            "CAP" => self.cap(msg, nick, out),
            "PASS" | "USER" => {
                self.numeric(out, nick, reply::ERR_ALREADYREGISTERED, &[], "You may not reregister")
            }
            "NICK" => match msg.param(0).filter(|n| !n.is_empty()) {
                None => self.numeric(out, nick, reply::ERR_NONICKNAMEGIVEN, &[], "No nickname given"),
                Some(new) if !is_valid_nick(new) => {
                    self.numeric(out, nick, reply::ERR_ERRONEUSNICKNAME, &[new], "Erroneous nickname")
                }
                Some(new) => out.event(Event::Nick { conn, nick: new.to_string() }),
            },
            "JOIN" => {
                if !need_params(out, 1) {
                    return;
                }
                if msg.params[0] == "0" {
                    out.event(Event::PartAll { conn });
                    return;
                }
                for channel in msg.params[0].split(',').filter(|c| !c.is_empty()) {
                    if is_valid_channel(channel) {
                        out.event(Event::Join { conn, channel: channel.to_string() });
                    } else {
                        self.numeric(out, nick, reply::ERR_NOSUCHCHANNEL, &[channel], "No such channel");
                    }
                }
            }
            "PART" => {
                if !need_params(out, 1) {
                    return;
                }
                let reason = msg.param(1).filter(|r| !r.is_empty()).map(str::to_string);
                for channel in msg.params[0].split(',').filter(|c| !c.is_empty()) {
                    out.event(Event::Part { conn, channel: channel.to_string(), reason: reason.clone() });
                }
            }
            "PRIVMSG" | "NOTICE" => {
                let kind = if msg.command == "PRIVMSG" { MessageKind::Privmsg } else { MessageKind::Notice };
                let quiet = kind == MessageKind::Notice;
                let Some(targets) = msg.param(0).filter(|t| !t.is_empty()) else {
                    if !quiet {
                        let text = format!("No recipient given ({})", msg.command);
                        self.numeric(out, nick, reply::ERR_NORECIPIENT, &[], &text);
                    }
                    return;
                };
                let Some(text) = msg.param(1).filter(|t| !t.is_empty()) else {
                    if !quiet {
                        self.numeric(out, nick, reply::ERR_NOTEXTTOSEND, &[], "No text to send");
                    }
                    return;
                };
                // Each target once, at most MAX_TARGETS of them (as ngIRCd:
                // the first ones are served, the first one too many gets 407).
                // Earlier targets are compared in place: the usual message
                // has one target and costs no allocation for this.
                let mut served = 0;
                for (i, target) in targets.split(',').enumerate().filter(|(_, t)| !t.is_empty()) {
                    if targets.split(',').take(i).any(|earlier| same_name(earlier, target)) {
                        continue;
                    }
                    if served == MAX_TARGETS {
                        if !quiet {
                            self.numeric(
                                out,
                                nick,
                                reply::ERR_TOOMANYTARGETS,
                                &[target],
                                "Too many recipients",
                            );
                        }
                        break;
                    }
                    served += 1;
                    out.event(Event::Message {
                        conn,
                        kind,
                        target: target.to_string(),
                        text: text.to_string(),
                    });
                }
            }
            "NAMES" => match msg.param(0).filter(|p| !p.is_empty()) {
                Some(list) => {
                    for (i, channel) in list.split(',').enumerate() {
                        if i == MAX_TARGETS {
                            self.numeric(
                                out,
                                nick,
                                reply::ERR_TOOMANYTARGETS,
                                &[channel],
                                "Too many recipients",
                            );
                            break;
                        }
                        out.listing(Listing::names(channel));
                    }
                }
                None => {
                    for key in &user.channels {
                        out.listing(Listing::names(key));
                    }
                }
            },
            "TOPIC" => {
                if !need_params(out, 1) {
                    return;
                }
                let channel = msg.params[0].as_str();
                if let Some(topic) = msg.param(1) {
                    out.event(Event::Topic {
                        conn,
                        channel: channel.to_string(),
                        topic: topic.to_string(),
                        at: now,
                    });
                    return;
                }
                match state.channel(channel) {
                    None => self.numeric(out, nick, reply::ERR_NOSUCHCHANNEL, &[channel], "No such channel"),
                    Some(chan) if !chan.members.contains_key(&conn) => self.numeric(
                        out,
                        nick,
                        reply::ERR_NOTONCHANNEL,
                        &[&chan.name],
                        "You're not on that channel",
                    ),
                    Some(chan) => crate::chat::render::irc::write_topic(state, out.buf(), nick, chan),
                }
            }
            "QUIT" => {
                let reason = match msg.param(0).filter(|r| !r.is_empty()) {
                    Some(reason) => format!("Quit: {reason}"),
                    None => "Quit".to_string(),
                };
                out.event(Event::Quit { conn, reason: reason.clone() });
                out.buf().extend(self.closing_line(&reason));
                out.close();
            }
            "MOTD" => crate::chat::render::irc::write_motd(state, out.buf(), nick),
            "LUSERS" => crate::chat::render::irc::write_lusers(state, out.buf(), nick),
            "VERSION" => {
                let server = self.info.name.as_str();
                numeric(
                    out.buf(),
                    server,
                    reply::RPL_VERSION,
                    nick,
                    &[&self.info.version, server],
                    "chatter IRC server",
                );
                reply::isupport(out.buf(), &self.info, nick);
            }
            "TIME" => {
                let server = self.info.name.clone();
                let text = format!("{now} (Unix time)");
                numeric(out.buf(), &server, reply::RPL_TIME, nick, &[&server], &text);
            }
            "MODE" => self.mode(msg, user, state, out),
            "WHO" => self.who(msg, nick, state, out),
            "WHOIS" => self.whois(msg, nick, state, out),
            "AWAY" => {
                let message =
                    msg.param(0).filter(|m| !m.is_empty()).map(|m| truncate_at_char(m, AWAY_LEN).to_string());
                out.event(Event::Away { conn, message });
            }
            // USERHOST and ISON answer about nicks that exist, in one line each.
            "USERHOST" | "ISON" => {
                if !need_params(out, 1) {
                    return;
                }
                // USERHOST answers at most five nicks (RFC 2812); ISON as many
                // as fit the line, answered over as many lines as it takes.
                let most = if msg.command == "USERHOST" { 5 } else { usize::MAX };
                let asked = msg.params.iter().flat_map(|p| p.split(' ')).filter(|n| !n.is_empty()).take(most);
                let found: Vec<String> = asked
                    .filter_map(|n| state.find_nick(n).and_then(|c| state.user(c)))
                    .map(|u| match msg.command.as_str() {
                        "ISON" => u.nick.clone(),
                        _ => format!(
                            "{}={}{}@{}",
                            u.nick,
                            if u.away.is_some() { '-' } else { '+' },
                            u.user,
                            u.host
                        ),
                    })
                    .collect();
                let code = if msg.command == "ISON" { reply::RPL_ISON } else { reply::RPL_USERHOST };
                if found.is_empty() {
                    numeric(out.buf(), &self.info.name, code, nick, &[], "");
                } else {
                    reply::numeric_list(
                        out.buf(),
                        &self.info.name,
                        code,
                        nick,
                        &[],
                        found.iter().map(String::as_str),
                    );
                }
            }
            "LIST" => out.listing(Listing::channels()),
            other => self.numeric(out, nick, reply::ERR_UNKNOWNCOMMAND, &[other], "Unknown command"),
        }
    }

    /// Mode queries answer truthfully (every channel is +n, users have no
    /// modes); changes are refused with the numeric that says why.
    fn mode(&self, msg: &Message, user: &User, state: &State, out: &mut Out) {
        let nick = user.nick.as_str();
        let server = self.info.name.as_str();
        let Some(target) = msg.param(0).filter(|t| !t.is_empty()) else {
            numeric(out.buf(), server, reply::ERR_NEEDMOREPARAMS, nick, &["MODE"], "Not enough parameters");
            return;
        };
        if is_channel_target(target) {
            let Some(chan) = state.channel(target) else {
                numeric(out.buf(), server, reply::ERR_NOSUCHCHANNEL, nick, &[target], "No such channel");
                return;
            };
            match msg.param(1) {
                None => numeric_bare(out.buf(), server, reply::RPL_CHANNELMODEIS, nick, &[&chan.name, "+n"]),
                // A ban-list query (what irssi sends on join): the list is empty.
                Some("b" | "+b") if msg.params.len() == 2 => numeric(
                    out.buf(),
                    server,
                    reply::RPL_ENDOFBANLIST,
                    nick,
                    &[&chan.name],
                    "End of channel ban list",
                ),
                Some(_) if !chan.members.get(&self.conn).copied().unwrap_or(false) => numeric(
                    out.buf(),
                    server,
                    reply::ERR_CHANOPRIVSNEEDED,
                    nick,
                    &[&chan.name],
                    "You're not channel operator",
                ),
                Some(modes) => {
                    let mode = modes.trim_start_matches(['+', '-']).chars().next().unwrap_or('?').to_string();
                    numeric(
                        out.buf(),
                        server,
                        reply::ERR_UNKNOWNMODE,
                        nick,
                        &[&mode],
                        "is unknown mode char to me",
                    )
                }
            }
        } else if state.find_nick(target) != Some(self.conn) {
            if state.find_nick(target).is_none() {
                numeric(out.buf(), server, reply::ERR_NOSUCHNICK, nick, &[target], "No such nick/channel");
            } else {
                numeric(
                    out.buf(),
                    server,
                    reply::ERR_USERSDONTMATCH,
                    nick,
                    &[],
                    "Cant change mode for other users",
                );
            }
        } else {
            match msg.param(1) {
                None => {
                    let modes = if user.invisible { "+i" } else { "+" };
                    numeric_bare(out.buf(), server, reply::RPL_UMODEIS, nick, &[modes]);
                }
                // +i is the one user mode kept (clients set it on connect);
                // +w (wallops) is accepted and means nothing on one server.
                Some(modes) if modes.chars().all(|c| matches!(c, '+' | '-' | 'i' | 'w')) => {
                    let mut adding = true;
                    for c in modes.chars() {
                        match c {
                            '+' => adding = true,
                            '-' => adding = false,
                            'i' => out.event(Event::Invisible { conn: self.conn, on: adding }),
                            _ => {}
                        }
                    }
                }
                Some(_) => {
                    numeric(out.buf(), server, reply::ERR_UMODEUNKNOWNFLAG, nick, &[], "Unknown MODE flag")
                }
            }
        }
    }

    fn who(&self, msg: &Message, nick: &str, state: &State, out: &mut Out) {
        let server = self.info.name.as_str();
        let mask = msg.param(0).unwrap_or("*");
        if is_channel_target(mask) {
            out.listing(Listing::who(mask, mask));
            return;
        }
        if let Some(user) = state.find_nick(mask).and_then(|c| state.user(c)) {
            reply::who_line(out.buf(), server, nick, "*", user, false);
        }
        numeric(out.buf(), server, reply::RPL_ENDOFWHO, nick, &[mask], "End of WHO list");
    }

    fn whois(&self, msg: &Message, nick: &str, state: &State, out: &mut Out) {
        let server = self.info.name.as_str();
        let Some(target) = msg.params.last().filter(|t| !t.is_empty()) else {
            numeric(out.buf(), server, reply::ERR_NONICKNAMEGIVEN, nick, &[], "No nickname given");
            return;
        };
        match state.find_nick(target).and_then(|c| state.user(c)) {
            None => {
                numeric(out.buf(), server, reply::ERR_NOSUCHNICK, nick, &[target], "No such nick/channel")
            }
            Some(user) => {
                numeric(
                    out.buf(),
                    server,
                    reply::RPL_WHOISUSER,
                    nick,
                    &[&user.nick, &user.user, &user.host, "*"],
                    &user.realname,
                );
                let channels = user.channels.iter().filter_map(|k| state.channel(k).map(|c| c.name.as_str()));
                reply::numeric_list(
                    out.buf(),
                    server,
                    reply::RPL_WHOISCHANNELS,
                    nick,
                    &[&user.nick],
                    channels,
                );
                numeric(
                    out.buf(),
                    server,
                    reply::RPL_WHOISSERVER,
                    nick,
                    &[&user.nick, server],
                    &self.info.network,
                );
            }
        }
        numeric(out.buf(), server, reply::RPL_ENDOFWHOIS, nick, &[target], "End of /WHOIS list");
    }

    // ---- plain lines ----

    fn plain_name(&mut self, line: &str, out: &mut Out) {
        let name = line.trim();
        if !self.password_ok() {
            // With a password set, a person's first line is the password
            // (as the greeting asks); "PASS secret" works too.
            let given = name.strip_prefix("PASS ").unwrap_or(name).trim();
            self.password = Some(given.to_string());
            if self.password_ok() {
                plain(out.buf(), "*** Password accepted. Type a name and press Enter to start chatting.");
            } else {
                plain(out.buf(), "! Wrong password");
                out.buf().extend(self.closing_line("Bad password"));
                out.close();
            }
            return;
        }
        if !is_valid_nick(name) {
            plain(
                out.buf(),
                &format!(
                    "! {name:?} is not a valid name: use up to 30 letters, digits or -_[]{{}}\\`^|, starting with a letter. Type another name:"
                ),
            );
            return;
        }
        // A plain client's name is its user name too, cut as USERLEN says.
        let user = truncate_at_char(name, USER_LEN);
        out.event(self.register_event(name, user, name, Protocol::Plain));
    }

    fn plain_line(&mut self, line: &str, user: &User, state: &State, now: u64, out: &mut Out) {
        let conn = self.conn;
        let focus = user.focus.as_deref().and_then(|key| state.channel(key)).map(|c| c.name.clone());
        let Some(command) = line.strip_prefix('/').filter(|rest| !rest.starts_with('/')) else {
            // "//text" sends "/text" as it is.
            let text = line.strip_prefix('/').unwrap_or(line);
            if text.trim().is_empty() {
                return;
            }
            match focus {
                Some(channel) => out.event(Event::Message {
                    conn,
                    kind: MessageKind::Privmsg,
                    target: channel,
                    text: text.to_string(),
                }),
                None => plain(out.buf(), "! You are in no room: /join #room first"),
            }
            return;
        };
        let (verb, rest) = command.split_once(' ').unwrap_or((command, ""));
        let rest = rest.trim();
        match verb.to_ascii_lowercase().as_str() {
            "nick" if is_valid_nick(rest) => out.event(Event::Nick { conn, nick: rest.to_string() }),
            "nick" => plain(out.buf(), &format!("! {rest:?} is not a valid name")),
            "join" => {
                let channel = if rest.starts_with('#') { rest.to_string() } else { format!("#{rest}") };
                if !is_valid_channel(&channel) {
                    plain(out.buf(), &format!("! {channel:?} is not a valid room name"));
                } else {
                    out.event(Event::Join { conn, channel });
                }
            }
            "part" | "leave" => match (rest.is_empty(), &focus) {
                (true, None) => plain(out.buf(), "! You are in no room"),
                (true, Some(channel)) => {
                    out.event(Event::Part { conn, channel: channel.clone(), reason: None })
                }
                (false, _) => {
                    let (channel, reason) = rest.split_once(' ').unwrap_or((rest, ""));
                    out.event(Event::Part {
                        conn,
                        channel: channel.to_string(),
                        reason: (!reason.is_empty()).then(|| reason.to_string()),
                    });
                }
            },
            "msg" => match rest.split_once(' ') {
                Some((target, text)) if !text.trim().is_empty() => out.event(Event::Message {
                    conn,
                    kind: MessageKind::Privmsg,
                    target: target.to_string(),
                    text: text.to_string(),
                }),
                _ => plain(out.buf(), "! Usage: /msg NAME text"),
            },
            "me" if !rest.is_empty() => match focus {
                Some(channel) => out.event(Event::Message {
                    conn,
                    kind: MessageKind::Privmsg,
                    target: channel,
                    text: format!("\u{1}ACTION {rest}\u{1}"),
                }),
                None => plain(out.buf(), "! You are in no room: /join #room first"),
            },
            "topic" => match &focus {
                Some(channel) if !rest.is_empty() => out.event(Event::Topic {
                    conn,
                    channel: channel.clone(),
                    topic: rest.to_string(),
                    at: now,
                }),
                Some(channel) => match state.channel(channel).and_then(|c| c.topic.as_ref()) {
                    Some(topic) => plain(out.buf(), &format!("*** Topic of {channel}: {}", topic.text)),
                    None => plain(out.buf(), &format!("*** {channel} has no topic")),
                },
                None => plain(out.buf(), "! You are in no room"),
            },
            "names" | "who" => {
                let channel = if rest.is_empty() { focus.clone() } else { Some(rest.to_string()) };
                match channel {
                    Some(channel) => out.listing(Listing::names(&channel)),
                    None => plain(out.buf(), "! You are in no room"),
                }
            }
            "quit" => {
                let reason = if rest.is_empty() { "Quit".to_string() } else { format!("Quit: {rest}") };
                out.event(Event::Quit { conn, reason: reason.clone() });
                out.buf().extend(self.closing_line(&reason));
                out.close();
            }
            "help" => {
                for help in [
                    "*** Lines you type go to your current room. Commands:",
                    "***   /nick NAME        change your name",
                    "***   /join #room       join a room; your lines then go there",
                    "***   /part [#room]     leave a room",
                    "***   /msg NAME text    send a private message",
                    "***   /me action        describe an action",
                    "***   /topic [text]     show or set the room's topic",
                    "***   /names [#room]    who is in the room",
                    "***   /quit [reason]    leave the chat",
                    "***   //text            send a line that starts with /",
                ] {
                    plain(out.buf(), help);
                }
            }
            _ => plain(out.buf(), &format!("! Unknown command /{verb}; /help lists commands")),
        }
    }
}
