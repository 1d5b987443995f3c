//! CAP, the IRCv3 capability negotiation, before and after registration.
//!
//! `CAP LS` lists [`OFFERED`]; `CAP REQ` enables or (`-name`) disables a
//! list of them, all or nothing; `CAP LIST` shows what is enabled; `CAP
//! END` ends negotiation. LS and REQ before registration hold it until
//! END, as the spec says, so clients that negotiate first still register.
//!
//! The session keeps the enabled set, but rendering for this client
//! happens on every replica (see `caps`): a set negotiated before
//! registration travels in `Register`, a change after it in
//! `Event::Caps`, sent right after its ACK.

use crate::chat::Event;
use crate::chat::caps::{Caps, MAX_REQ_CAPS, OFFERED};
use crate::chat::reply;
use crate::wire::Message;
use crate::wire::message::write_line;

use super::{Out, Session};

/// Longest list of capability names on one `CAP LS` line; with the
/// source, client and `* LS *` words it stays well inside 512 bytes.
const LS_LINE_BYTES: usize = 400;

impl Session {
    pub(super) fn cap(&mut self, msg: &Message, client: &str, registered: bool, out: &mut Out) {
        let sub = msg.param(0).unwrap_or("").to_ascii_uppercase();
        match sub.as_str() {
            "LS" => {
                if !registered {
                    self.cap_negotiating = true;
                }
                // 302 (or later) implies cap-notify, and allows values and
                // continuation lines.
                let version: u32 = msg.param(1).and_then(|v| v.parse().ok()).unwrap_or(0);
                if version >= 302 {
                    self.cap_302 = true;
                    self.set_caps(self.caps.with(Caps::CAP_NOTIFY), registered, out);
                }
                let names: Vec<&str> = OFFERED.iter().map(|&(name, _)| name).collect();
                self.cap_list(out, client, "LS", &names);
            }
            "LIST" => {
                let names: Vec<&str> = self.caps.names().collect();
                self.cap_list(out, client, "LIST", &names);
            }
            "REQ" => {
                if !registered {
                    self.cap_negotiating = true;
                }
                let wanted = msg.param(1).unwrap_or("");
                let server = self.info.name.clone();
                match requested(self.caps, wanted) {
                    Some(caps) => {
                        write_line(out.buf(), Some(&server), "CAP", &[client, "ACK"], Some(wanted.trim()));
                        self.set_caps(caps, registered, out);
                    }
                    None => write_line(out.buf(), Some(&server), "CAP", &[client, "NAK"], Some(wanted)),
                }
            }
            "END" => {
                if !registered {
                    self.cap_negotiating = false;
                    self.try_register(out);
                }
            }
            _ => self.numeric(out, client, reply::ERR_INVALIDCAPCMD, &[&sub], "Invalid CAP command"),
        }
    }

    /// Records the enabled set; once registered, tells the directory too.
    fn set_caps(&mut self, caps: Caps, registered: bool, out: &mut Out) {
        if caps == self.caps {
            return;
        }
        self.caps = caps;
        if registered {
            out.event(Event::Caps { conn: self.conn, caps });
        }
    }

    /// `CAP <client> <sub> :names`, split over several lines when long,
    /// every one but the last marked `*` (only 302 clients understand the
    /// mark; the list is short enough that others never need it).
    fn cap_list(&self, out: &mut Out, client: &str, sub: &str, names: &[&str]) {
        let server = self.info.name.as_str();
        let mut lines: Vec<String> = vec![String::new()];
        for name in names {
            let last = lines.last_mut().expect("one line at least");
            if !last.is_empty() && last.len() + 1 + name.len() > LS_LINE_BYTES && self.cap_302 {
                lines.push(name.to_string());
            } else {
                if !last.is_empty() {
                    last.push(' ');
                }
                last.push_str(name);
            }
        }
        let count = lines.len();
        for (i, line) in lines.iter().enumerate() {
            let middle: &[&str] = if i + 1 < count { &[client, sub, "*"] } else { &[client, sub] };
            write_line(out.buf(), Some(server), "CAP", middle, Some(line));
        }
    }
}

/// The set `caps` becomes with the request `wanted` (`name` enables,
/// `-name` disables), or `None` if any name is not offered or there are
/// too many: a REQ is granted whole or not at all.
fn requested(caps: Caps, wanted: &str) -> Option<Caps> {
    let mut result = caps;
    let mut count = 0;
    for word in wanted.split(' ').filter(|w| !w.is_empty()) {
        count += 1;
        if count > MAX_REQ_CAPS {
            return None;
        }
        let (off, name) = match word.strip_prefix('-') {
            Some(name) => (true, name),
            None => (false, word),
        };
        let cap = Caps::named(name)?;
        result = if off { result.without(cap) } else { result.with(cap) };
    }
    (count > 0).then_some(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_granted_whole_or_not_at_all() {
        let mp = Caps::MULTI_PREFIX;
        assert_eq!(requested(Caps::NONE, "multi-prefix"), Some(mp));
        let both = mp.with(Caps::USERHOST_IN_NAMES);
        assert_eq!(requested(Caps::NONE, " multi-prefix  userhost-in-names "), Some(both));
        assert_eq!(requested(mp, "-multi-prefix"), Some(Caps::NONE));
        assert_eq!(requested(Caps::NONE, "foo multi-prefix"), None);
        assert_eq!(requested(Caps::NONE, "multi-prefix -bar"), None);
        assert_eq!(requested(Caps::NONE, ""), None);
        assert_eq!(requested(Caps::NONE, "-"), None);
        let many = vec!["multi-prefix"; MAX_REQ_CAPS + 1].join(" ");
        assert_eq!(requested(Caps::NONE, &many), None);
    }
}
