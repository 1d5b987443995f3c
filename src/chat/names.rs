//! Nick and channel names: what is valid and how names compare.
//!
//! Names compare under the rfc1459 casemapping (advertised in 005), so
//! `Alice`, `alice` and `ALICE` are one nick and `[a]` equals `{a}`. Both the
//! session (to reject bad names before they become events) and the state (to
//! key its maps) use these functions, so the two can never disagree.

/// Longest nick accepted (advertised as NICKLEN).
pub const NICK_LEN: usize = 30;
/// Longest channel name accepted, '#' included (advertised as CHANNELLEN).
pub const CHANNEL_LEN: usize = 50;
/// Longest topic kept (advertised as TOPICLEN); longer topics are cut.
pub const TOPIC_LEN: usize = 390;

/// The rfc1459 case fold: ASCII letters plus `[]\~` ↔ `{}|^`.
pub fn fold(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            'A'..='Z' => c.to_ascii_lowercase(),
            '[' => '{',
            ']' => '}',
            '\\' => '|',
            '~' => '^',
            _ => c,
        })
        .collect()
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
/// BEL, NUL, CR, LF or ':' (':' would be ambiguous on the wire).
pub fn is_valid_channel(name: &str) -> bool {
    name.len() > 1
        && name.len() <= CHANNEL_LEN
        && name.starts_with('#')
        && !name[1..].chars().any(|c| matches!(c, ' ' | ',' | '\x07' | '\0' | '\r' | '\n' | ':'))
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
        for bad in ["#", "rust", "#a b", "#a,b", "#a:b", "&x"] {
            assert!(!is_valid_channel(bad), "{bad}");
        }
        assert!(!is_valid_channel(&format!("#{}", "a".repeat(50))));
    }
}
