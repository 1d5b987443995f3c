//! Registered IRC: one handler function per command, found by name.
//!
//! The IRC command set is large and grows a command at a time (channel
//! modes, KICK, INVITE, OPER, MONITOR...), so each command is a function of
//! its own, grouped by theme in the files beside this one, and [`COMMANDS`]
//! maps names to them. Adding a command is a function and a row; no match
//! that every command passes through grows with it. Every handler takes the
//! same [`Ctx`], so a handler reaches whatever its command needs without
//! each signature listing it.

use crate::chat::reply::{self, numeric};
use crate::chat::state::User;
use crate::chat::{ConnId, State};
use crate::wire::Message;

use super::{Out, Session};

mod about;
mod channels;
mod connection;
mod help;
mod messaging;
mod mode;
mod monitor;
mod operators;
mod queries;
mod users;

/// What a registered IRC command is handed: the session and its user, the
/// directory to read, the clock, the message, and where its actions go.
pub(super) struct Ctx<'a> {
    session: &'a mut Session,
    /// This connection's user in the directory; registered means it exists.
    user: &'a User,
    state: &'a State,
    /// Unix seconds, as the caller of `Session::on_line` passed them.
    now: u64,
    message: &'a Message,
    out: Out<'a>,
}

/// Handles one registered IRC command.
pub(super) type Handler = fn(&mut Ctx<'_>);

/// Every registered IRC command, by name as `Message::parse` gives it
/// (upper case). Lookup walks the table, so the busiest come first.
const COMMANDS: &[(&str, Handler)] = &[
    ("PRIVMSG", messaging::privmsg),
    ("PING", connection::ping),
    ("PONG", connection::pong),
    ("NOTICE", messaging::notice),
    ("TAGMSG", messaging::tagmsg),
    ("JOIN", channels::join),
    ("PART", channels::part),
    ("MODE", mode::mode),
    ("WHO", queries::who),
    ("NICK", users::nick),
    ("AWAY", users::away),
    ("SETNAME", users::setname),
    ("TOPIC", channels::topic),
    ("KICK", channels::kick),
    ("INVITE", channels::invite),
    ("NAMES", channels::names),
    ("LIST", channels::list),
    ("WHOIS", queries::whois),
    ("WHOWAS", queries::whowas),
    ("USERHOST", queries::userhost),
    ("ISON", queries::ison),
    ("MOTD", queries::motd),
    ("LUSERS", queries::lusers),
    ("VERSION", queries::version),
    ("TIME", queries::time),
    ("INFO", about::info),
    ("ADMIN", about::admin),
    ("LINKS", about::links),
    ("HELP", about::help),
    ("HELPOP", about::help),
    ("CAP", connection::cap),
    ("PASS", connection::reregister),
    ("USER", connection::reregister),
    ("QUIT", connection::quit),
    ("MONITOR", monitor::monitor),
    ("OPER", operators::oper),
    ("KILL", operators::kill),
    ("WALLOPS", operators::wallops),
    ("REHASH", operators::rehash),
];

/// The handler for a registered client's `command`, if there is one.
pub(super) fn handler(command: &str) -> Option<Handler> {
    COMMANDS.iter().find(|(name, _)| *name == command).map(|&(_, handler)| handler)
}

impl Session {
    pub(super) fn irc_command(&mut self, message: &Message, user: &User, state: &State, now: u64, out: Out) {
        let mut ctx = Ctx { session: self, user, state, now, message, out };
        match handler(&message.command) {
            Some(handle) => handle(&mut ctx),
            None => ctx.numeric(reply::ERR_UNKNOWNCOMMAND, &[&message.command], "Unknown command"),
        }
    }
}

impl<'a> Ctx<'a> {
    /// The client's nick, for the client field of every reply. It lives
    /// as long as the context, not one borrow of it, so a handler can hold
    /// it while writing.
    fn nick(&self) -> &'a str {
        let user: &'a User = self.user;
        user.nick.as_str()
    }

    fn conn(&self) -> ConnId {
        self.session.conn
    }

    /// A numeric reply to this client from this server.
    fn numeric(&mut self, code: u16, middle: &[&str], text: &str) {
        numeric(self.out.buf(), &self.session.info.name, code, self.user.nick.as_str(), middle, text);
    }

    /// Whether the first `count` parameters are there and not empty;
    /// if not, says so (461) and the handler stops.
    fn need_params(&mut self, count: usize) -> bool {
        let params = &self.message.params;
        let missing = params.len() < count || params[..count].iter().any(|p| p.is_empty());
        if missing {
            let command: &str = &self.message.command;
            self.numeric(reply::ERR_NEEDMOREPARAMS, &[command], "Not enough parameters");
        }
        !missing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_upper_case_and_listed_once() {
        for (i, (name, _)) in COMMANDS.iter().enumerate() {
            assert_eq!(
                *name,
                name.to_ascii_uppercase(),
                "parse upper-cases commands, so {name} is unreachable"
            );
            assert!(COMMANDS[..i].iter().all(|(earlier, _)| earlier != name), "{name} is listed twice");
        }
    }

    #[test]
    fn every_command_a_registered_client_may_send_has_a_handler() {
        for name in [
            "PING", "PONG", "CAP", "PASS", "USER", "NICK", "JOIN", "PART", "PRIVMSG", "NOTICE", "NAMES",
            "TOPIC", "QUIT", "MOTD", "LUSERS", "VERSION", "TIME", "MODE", "WHO", "WHOIS", "AWAY", "USERHOST",
            "ISON", "LIST", "KICK", "INVITE", "OPER", "KILL", "WALLOPS", "TAGMSG", "MONITOR", "WHOWAS",
            "INFO", "ADMIN", "LINKS", "HELP", "HELPOP", "SETNAME", "REHASH",
        ] {
            assert!(handler(name).is_some(), "no handler for {name}");
        }
        for name in ["", "KNOCK", "privmsg", "PRIVMSGX", "001"] {
            assert!(handler(name).is_none(), "{name:?} should be unknown");
        }
    }
}
