//! CAP, the IRCv3 capability negotiation, before and after registration.
//!
//! It is its own file because it is where IRCv3 support will grow
//! (capability lists, REQ/ACK, per-session enabled capabilities). Today no
//! capability is offered; what matters is that CAP LS/REQ hold
//! registration until CAP END, as the spec says, so clients that negotiate
//! first still register.

use crate::chat::reply;
use crate::wire::Message;
use crate::wire::message::write_line;

use super::{Out, Session};

impl Session {
    pub(super) fn cap(&mut self, msg: &Message, client: &str, out: &mut Out) {
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
}
