//! Names and texts a client chooses: what is valid, how long each may be,
//! and how names compare.
//!
//! Names compare under the rfc1459 casemapping (advertised in 005), so
//! `Alice`, `alice` and `ALICE` are one nick and `[a]` equals `{a}`. Both the
//! session (to reject bad names before they become events) and the state (to
//! key its maps, through the types in `name`) use these functions, so the
//! two can never disagree.
//!
//! Names end up inside other lines (a source is `nick!user@host`, a channel
//! is a parameter), so their grammars leave out everything that could split
//! a line, a parameter or a source: spaces, controls, `!`, `@`, `:`, `,`.
//! Free texts (real name, topic, away message) are always last on a line,
//! where any character but CR, LF and NUL is safe; they are only bounded.

pub use crate::wire::truncate_at_char;

/// Longest nick accepted (advertised as NICKLEN).
pub const NICK_LEN: usize = 30;
/// Longest channel name accepted, '#' included (advertised as CHANNELLEN).
pub const CHANNEL_LEN: usize = 50;
/// Longest topic kept (advertised as TOPICLEN); longer topics are cut.
pub const TOPIC_LEN: usize = 390;
/// Longest user name kept (advertised as USERLEN); longer ones are cut.
pub const USER_LEN: usize = 10;
/// Longest away message kept (advertised as AWAYLEN); longer ones are cut.
pub const AWAY_LEN: usize = 200;
/// Most targets one PRIVMSG, NOTICE or NAMES may name (advertised as
/// MAXTARGETS); more are refused with 407.
pub const MAX_TARGETS: usize = 20;
/// Longest real name kept; longer ones are cut.
pub const REALNAME_LEN: usize = 100;

/// The rfc1459 case fold: ASCII letters plus `[]\~` ↔ `{}|^`. Names held
/// by the directory fold once, as a [`Nick`](crate::chat::Nick) or
/// [`ChannelName`](crate::chat::ChannelName); this is for names typed in a
/// query.
pub fn fold(name: &str) -> String {
    name.chars().map(fold_char).collect()
}

/// One character's fold. It maps ASCII to ASCII and leaves the rest alone,
/// so a name and its fold have the same length in bytes (`name` relies on
/// that).
pub(crate) fn fold_char(c: char) -> char {
    match c {
        'A'..='Z' => c.to_ascii_lowercase(),
        '[' => '{',
        ']' => '}',
        '\\' => '|',
        '~' => '^',
        _ => c,
    }
}

/// Whether two names are one under the casemapping, without allocating.
pub fn same_name(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.chars().map(fold_char).eq(b.chars().map(fold_char))
}

fn is_special(c: char) -> bool {
    matches!(c, '[' | ']' | '\\' | '`' | '_' | '^' | '{' | '|' | '}')
}

/// RFC 2812 nick grammar: a letter or special first, then letters, digits,
/// specials or '-', at most [`NICK_LEN`] characters.
pub fn is_valid_nick(nick: &str) -> bool {
    let mut chars = nick.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    nick.len() <= NICK_LEN
        && (first.is_ascii_alphabetic() || is_special(first))
        && chars.all(|c| c.is_ascii_alphanumeric() || is_special(c) || c == '-')
}

/// A channel is '#' then at least one character that is not a space, comma,
/// ':' (ambiguous on the wire) or a control character (NUL, CR, LF, BEL,
/// ESC, colour codes: a name is an identifier, not a place for styling).
pub fn is_valid_channel(name: &str) -> bool {
    name.len() > 1
        && name.len() <= CHANNEL_LEN
        && name.starts_with('#')
        && !name[1..].chars().any(|c| matches!(c, ' ' | ',' | ':') || c.is_control())
}

/// The user name from USER, cut to [`USER_LEN`], if it is one: letters,
/// digits and any of ``-.[]\^_`{|}~`` (InspIRCd's ident grammar). Anything else,
/// `!` and `@` above all, would let the name pose as part of another
/// source; ngIRCd and InspIRCd refuse such names too.
pub fn valid_user(user: &str) -> Option<&str> {
    let user = truncate_at_char(user, USER_LEN);
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-.[]\\^_`{|}~".contains(c);
    (!user.is_empty() && user.chars().all(allowed)).then_some(user)
}

/// Whether an IRC target names a channel rather than a nick.
pub fn is_channel_target(target: &str) -> bool {
    target.starts_with('#')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fold_follows_rfc1459() {
        assert_eq!(fold("Alice[]\\~"), "alice{}|^");
        assert_eq!(fold("#Lobby"), "#lobby");
    }

    #[test]
    fn same_name_folds_without_allocating() {
        assert!(same_name("Alice[]", "alice{}"));
        assert!(!same_name("alice", "alicf"));
        assert!(!same_name("a", "ab"));
    }

    #[test]
    fn nick_grammar() {
        for good in ["alice", "a", "[bot]", "x-1", "_under", "A23456789012345678901234567890"] {
            assert!(is_valid_nick(good), "{good}");
        }
        for bad in ["", "1abc", "-x", "a b", "a,b", "#chan", "é", "a*", &"a".repeat(31)] {
            assert!(!is_valid_nick(bad), "{bad}");
        }
    }

    #[test]
    fn channel_grammar() {
        assert!(is_valid_channel("#rust"));
        assert!(is_valid_channel("#a.b-c"));
        for bad in ["#", "rust", "#a b", "#a,b", "#a:b", "&x", "#\x1b[2Jx", "#a\x03", "#a\u{85}"] {
            assert!(!is_valid_channel(bad), "{bad}");
        }
        assert!(!is_valid_channel(&format!("#{}", "a".repeat(50))));
    }

    #[test]
    fn user_grammar() {
        assert_eq!(valid_user("alice"), Some("alice"));
        assert_eq!(valid_user("~j.smith-2"), Some("~j.smith-2"));
        assert_eq!(valid_user("averyverylongname"), Some("averyveryl"));
        for bad in ["", "x\0QUIT\0:", "alice!x@y", "a b", "a:b", "josé", "a@b", "a\x1b"] {
            assert_eq!(valid_user(bad), None, "{bad:?}");
        }
    }
}
