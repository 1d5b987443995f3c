//! IRC before registration: the lines a client sends until the directory
//! has a user for it (PASS, NICK, USER, CAP, PING/PONG, QUIT).
//!
//! Registration collects a nick and a user name on the session, then asks
//! the directory for them in one `Register` event; whether the nick is free
//! is decided there, in event order, not here. Anything else is refused
//! with 451 until then. CAP has its own file (`cap`) because IRCv3
//! capability negotiation will grow well beyond the rest of this.

use crate::chat::names::{REALNAME_LEN, is_valid_nick, truncate_at_char, valid_user};
use crate::chat::reply;
use crate::chat::{Protocol, State};
use crate::wire::Message;

use super::{Out, Session};

impl Session {
    pub(super) fn irc_registration(&mut self, msg: &Message, state: &State, out: &mut Out) {
        let client = self.client_name(state);
        match msg.command.as_str() {
            "CAP" => self.cap(msg, &client, false, out),
            "PASS" => self.take_password(msg, &client, out),
            "NICK" => self.take_nick(msg, &client, out),
            "USER" => self.take_user(msg, &client, out),
            "PING" => self.pong(msg, &client, out),
            "PONG" => {}
            "QUIT" => self.close_with(out, "Quit"),
            _ => self.numeric(out, &client, reply::ERR_NOTREGISTERED, &[], "You have not registered"),
        }
    }

    /// The password is only checked once registration is complete, so a
    /// wrong one costs the client no more than a right one until then.
    fn take_password(&mut self, msg: &Message, client: &str, out: &mut Out) {
        match msg.param(0) {
            Some(pass) => self.password = Some(pass.to_string()),
            None => self.numeric(out, client, reply::ERR_NEEDMOREPARAMS, &["PASS"], "Not enough parameters"),
        }
    }

    fn take_nick(&mut self, msg: &Message, client: &str, out: &mut Out) {
        match msg.param(0).filter(|n| !n.is_empty()) {
            None => self.numeric(out, client, reply::ERR_NONICKNAMEGIVEN, &[], "No nickname given"),
            Some(nick) if !is_valid_nick(nick) => {
                self.numeric(out, client, reply::ERR_ERRONEUSNICKNAME, &[nick], "Erroneous nickname")
            }
            Some(nick) => {
                self.nick = Some(nick.to_string());
                self.try_register(out);
            }
        }
    }

    fn take_user(&mut self, msg: &Message, client: &str, out: &mut Out) {
        if msg.params.len() < 4 || msg.params[0].is_empty() || msg.params[3].is_empty() {
            self.numeric(out, client, reply::ERR_NEEDMOREPARAMS, &["USER"], "Not enough parameters");
        } else if let Some(user) = valid_user(&msg.params[0]) {
            let realname = truncate_at_char(&msg.params[3], REALNAME_LEN);
            self.user = Some((user.to_string(), realname.to_string()));
            self.try_register(out);
        } else {
            // As InspIRCd: the client may send USER again.
            self.numeric(out, client, reply::ERR_INVALIDUSERNAME, &[], "Your username is not valid");
        }
    }

    /// Registers once NICK and USER are both in and CAP negotiation is
    /// over, whichever of those comes last.
    pub(super) fn try_register(&mut self, out: &mut Out) {
        let (Some(nick), Some((user, realname))) = (&self.nick, &self.user) else {
            return;
        };
        if self.cap_negotiating {
            return;
        }
        if !self.password_ok() {
            let nick = nick.clone();
            self.numeric(out, &nick, reply::ERR_PASSWDMISMATCH, &[], "Password incorrect");
            self.close_with(out, "Bad password");
            return;
        }
        let event = self.register_event(nick, user, realname, Protocol::Irc);
        out.event(event);
    }
}
