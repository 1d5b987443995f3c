//! CTCP, as far as the server needs to read it: whether a message's text
//! is a CTCP frame (`\x01COMMAND params\x01`), and the action of an
//! ACTION (`/me`).
//!
//! CTCP rides inside PRIVMSG and NOTICE text, so it is clients' business;
//! the server looks inside only where a channel's rules do (+C refuses
//! CTCP other than ACTION) and where a plain client is shown `/me` as a
//! sentence. Both read frames here, the way Modern IRC's CTCP document
//! writes them: the command ends at a space or the closing `\x01`, which
//! may be missing.

/// The delimiter that opens (and closes) a CTCP frame.
const DELIM: char = '\u{1}';

/// The command of the CTCP frame `text` is, if it is one.
fn command(text: &str) -> Option<&str> {
    let body = text.strip_prefix(DELIM)?;
    let end = body.find([' ', DELIM]).unwrap_or(body.len());
    Some(&body[..end])
}

/// What a CTCP ACTION says (`waves` for `\x01ACTION waves\x01`), if
/// `text` is one.
pub fn action(text: &str) -> Option<&str> {
    if command(text)? != "ACTION" {
        return None;
    }
    let params = &text[DELIM.len_utf8() + "ACTION".len()..];
    let params = params.strip_prefix(' ').unwrap_or(params);
    Some(params.strip_suffix(DELIM).unwrap_or(params))
}

/// Whether `text` is a CTCP frame other than ACTION (a query such as
/// VERSION or PING, or its reply): what a +C channel refuses.
pub fn is_other_than_action(text: &str) -> bool {
    command(text).is_some_and(|command| command != "ACTION")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_action_is_read_with_or_without_its_closing_delimiter() {
        assert_eq!(action("\u{1}ACTION waves\u{1}"), Some("waves"));
        assert_eq!(action("\u{1}ACTION waves"), Some("waves"));
        assert_eq!(action("\u{1}ACTION\u{1}"), Some(""));
        assert_eq!(action("\u{1}ACTIONS x\u{1}"), None);
        assert_eq!(action("ACTION waves"), None);
        assert_eq!(action("\u{1}VERSION\u{1}"), None);
    }

    #[test]
    fn other_ctcp_is_told_from_actions_and_plain_text() {
        for ctcp in ["\u{1}VERSION\u{1}", "\u{1}PING 123\u{1}", "\u{1}ACTIONS\u{1}", "\u{1}", "\u{1}\u{1}"] {
            assert!(is_other_than_action(ctcp), "{ctcp:?}");
        }
        for not in ["\u{1}ACTION waves\u{1}", "\u{1}ACTION", "hello", "", "hi \u{1}VERSION\u{1}"] {
            assert!(!is_other_than_action(not), "{not:?}");
        }
    }
}
