//! WHO's question and its answer lines: which users a mask names, who may
//! see whom, and the reply in classic (352) or WHOX (354) form.
//!
//! WHO is answered from the directory with no event. WHO of a channel or
//! of a mask can name thousands of users, so both are `Listing`s (see
//! `listing`); this module is what they and WHO of one nick share, kept
//! apart so that the listing stays a cursor and nothing more.
//!
//! Everything here is the client's to choose, so it is bounded: a mask
//! longer than [`MASK_LEN`] names no one, masks are matched by the channel
//! code's linear matcher, and WHOX fields are letters from a fixed set
//! with a token of at most three digits.

use std::net::IpAddr;

use crate::chat::channel::{mask_matches, normalize_mask};
use crate::chat::reply::{self, numeric, numeric_bare};
use crate::chat::state::User;

/// Longest WHO mask matched; a longer one names no one.
pub const MASK_LEN: usize = 100;

/// WHOX fields in the order 354 lists them, whatever order they were
/// asked in (IRCv3 `whox`).
const WHOX_ORDER: &str = "tcuihsnfdlaor";

/// What a WHO asked: its mask (as sent, for 315), whether only operators
/// are wanted (the `o` flag), and the WHOX fields, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhoQuery {
    pub mask: String,
    pub operators_only: bool,
    pub whox: Option<Whox>,
    /// When the question was asked: WHOX's idle time (`l`) runs to here.
    pub now: u64,
}

/// `%fields,token`: the fields asked for, in [`WHOX_ORDER`], each once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Whox {
    fields: String,
    token: String,
}

impl WhoQuery {
    /// `WHO <mask> [<options>]`, where options are flags (`o`) then, for
    /// WHOX, `%` and field letters and an optional `,token`.
    pub fn parse(mask: &str, options: Option<&str>, now: u64) -> WhoQuery {
        let options = options.unwrap_or("");
        let (flags, whox) = match options.split_once('%') {
            Some((flags, whox)) => (flags, Some(whox)),
            None => (options, None),
        };
        let whox = whox.map(|spec| {
            let (letters, token) = spec.split_once(',').unwrap_or((spec, ""));
            let fields = WHOX_ORDER.chars().filter(|c| letters.contains(*c)).collect();
            // The token is a number of up to three digits; anything else
            // is not echoed (it would be the client's text in our reply).
            let token = if (1..=3).contains(&token.len()) && token.bytes().all(|b| b.is_ascii_digit()) {
                token.to_string()
            } else {
                "0".to_string()
            };
            Whox { fields, token }
        });
        WhoQuery { mask: mask.to_string(), operators_only: flags.contains('o'), whox, now }
    }

    /// Whether the mask is a pattern rather than one nick.
    pub fn is_pattern(&self) -> bool {
        self.mask.contains(['*', '?', '!', '@']) || self.mask == "0"
    }

    /// Whether `user` is one the mask names: by nick, user name, host,
    /// real name or server, or as `nick!user@host` when the mask has a
    /// `!` or `@`. `0` and `*` name everyone. With the `o` flag, only
    /// operators.
    pub fn names(&self, server: &str, user: &User) -> bool {
        if (self.operators_only && !user.oper) || self.mask.len() > MASK_LEN {
            return false;
        }
        let mask = if self.mask == "0" { "*" } else { self.mask.as_str() };
        if mask.contains(['!', '@']) {
            return normalize_mask(mask).is_some_and(|full| mask_matches(&full, &user.prefix()));
        }
        [user.nick.as_str(), &user.user, &user.host, &user.realname, server]
            .iter()
            .any(|field| mask_matches(mask, field))
    }

    /// One reply line about `user`, seen in `channel` (`*` for none) with
    /// `prefix` (`@`, `+` or none): 352, or 354 for WHOX.
    pub fn write_line(
        &self,
        out: &mut Vec<u8>,
        server: &str,
        client: &str,
        channel: &str,
        user: &User,
        prefix: &str,
    ) {
        let Some(whox) = &self.whox else {
            reply::who_line(out, server, client, channel, user, prefix);
            return;
        };
        let flags = reply::who_flags(user, prefix);
        let ip = match user.host.parse::<IpAddr>() {
            Ok(_) => user.host.clone(),
            Err(_) => "255.255.255.255".to_string(),
        };
        let idle = user.idle(self.now).to_string();
        let mut fields: Vec<&str> = Vec::with_capacity(whox.fields.len());
        for field in whox.fields.chars() {
            fields.push(match field {
                't' => &whox.token,
                'c' => channel,
                'u' => &user.user,
                'i' => &ip,
                'h' => &user.host,
                's' => server,
                'n' => user.nick.as_str(),
                'f' => &flags,
                'd' => "0",
                'l' => &idle,
                // No accounts: "0" is WHOX's "not logged in".
                'a' => "0",
                'o' => "n/a",
                _ => &user.realname,
            });
        }
        // The real name is last and may hold spaces: it is the text.
        match whox.fields.ends_with('r') {
            true => {
                let (text, middle) = fields.split_last().expect("r was asked for");
                numeric(out, server, reply::RPL_WHOSPCRPL, client, middle, text);
            }
            false => numeric_bare(out, server, reply::RPL_WHOSPCRPL, client, &fields),
        }
    }

    /// The 315 that ends every WHO.
    pub fn write_end(&self, out: &mut Vec<u8>, server: &str, client: &str) {
        numeric(out, server, reply::RPL_ENDOFWHO, client, &[&self.mask], "End of WHO list");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::{Nick, Protocol};
    use std::collections::BTreeSet;

    fn user(nick: &str) -> User {
        User {
            nick: Nick::new(nick),
            user: "ident".into(),
            realname: "Real Name".into(),
            host: "127.0.0.1".into(),
            protocol: Protocol::Irc,
            channels: BTreeSet::new(),
            focus: None,
            away: None,
            invisible: false,
            invites: BTreeSet::new(),
            oper: false,
            wallops: false,
            bot: false,
            caps: crate::chat::Caps::NONE,
            signon: 10,
            last_active: 40,
            monitoring: BTreeSet::new(),
        }
    }

    fn line(query: &WhoQuery, user: &User) -> String {
        let mut out = Vec::new();
        query.write_line(&mut out, "srv", "me", "#c", user, "@");
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn masks_name_users_by_any_field() {
        let alice = user("Alice");
        let names = |mask: &str| WhoQuery::parse(mask, None, 0).names("srv", &alice);
        for mask in
            ["*", "0", "ali*", "ALICE", "ident", "127.*", "*real name*", "srv", "a*!*@127.0.0.1", "*@127.*"]
        {
            assert!(names(mask), "{mask}");
        }
        for mask in ["bob*", "x@127.0.0.1", "alice!other@*", &"*".repeat(MASK_LEN + 1)] {
            assert!(!names(mask), "{mask}");
        }
        assert!(!WhoQuery::parse("*", Some("o"), 0).names("srv", &alice), "no one is an operator");
    }

    #[test]
    fn whox_fields_come_in_the_spec_order_with_the_token() {
        let alice = user("alice");
        let all = WhoQuery::parse("alice", Some("%rolaldfnshiuct,123"), 45);
        assert_eq!(
            line(&all, &alice),
            ":srv 354 me 123 #c ident 127.0.0.1 127.0.0.1 srv alice H@ 0 5 0 n/a :Real Name\r\n"
        );
        let some = WhoQuery::parse("alice", Some("%tn,321"), 0);
        assert_eq!(line(&some, &alice), ":srv 354 me 321 alice\r\n");
        let bad_token = WhoQuery::parse("alice", Some("%tn,:x y"), 0);
        assert_eq!(line(&bad_token, &alice), ":srv 354 me 0 alice\r\n");
        let classic = WhoQuery::parse("alice", None, 0);
        assert_eq!(line(&classic, &alice), ":srv 352 me #c ident 127.0.0.1 srv alice H@ :0 Real Name\r\n");
    }
}
