//! Reading a MODE line: its mode string and parameters become
//! [`ModeChange`]s in parameter order, with what could not be read set
//! aside for the session to answer (unknown letters, list queries, bad
//! parameters).
//!
//! This is syntax only, before anything is an event, so it is bounded
//! here: at most [`MAX_MODE_PARAMS`] modes with a parameter and
//! [`MAX_MODE_CHANGES`] changes in all, keys and masks validated, so the
//! `Event::Mode` a session builds always fits a log slot.

use super::mask::normalize_mask;
use super::{Flag, KEY_LEN, ListKind, MAX_MODE_CHANGES, MAX_MODE_PARAMS, ModeChange};
use crate::chat::Nick;

/// What [`parse_modes`] made of a MODE line's modes and parameters.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ParsedModes {
    /// For the directory to apply, in order.
    pub changes: Vec<ModeChange>,
    /// Lists asked for (a list mode without a parameter), each once.
    pub queries: Vec<ListKind>,
    /// Letters that are no mode here (472), each once.
    pub unknown: Vec<char>,
    /// A mode whose parameter is missing or invalid (696): the letter,
    /// the parameter (`*` when missing) and why.
    pub invalid: Vec<(char, String, &'static str)>,
}

/// Parses `modestring` and its `params` (the rest of the MODE line) as
/// the spec says: `+`/`-` switch direction, o v b e I k take a parameter
/// both ways, l when set, and parameters are taken in order.
pub fn parse_modes(modestring: &str, params: &[String]) -> ParsedModes {
    let mut parsed = ParsedModes::default();
    let mut params = params.iter();
    let mut on = true;
    let mut with_param = 0;
    for c in modestring.chars() {
        match c {
            '+' => {
                on = true;
                continue;
            }
            '-' => {
                on = false;
                continue;
            }
            _ => {}
        }
        if parsed.changes.len() == MAX_MODE_CHANGES {
            break;
        }
        if let Some(flag) = Flag::from_letter(c) {
            parsed.changes.push(ModeChange::Flag { flag, on });
            continue;
        }
        let takes_param = matches!(c, 'o' | 'v' | 'k' | 'b' | 'e' | 'I') || (c == 'l' && on);
        if !takes_param {
            if c == 'l' {
                parsed.changes.push(ModeChange::Limit(None));
            } else if !parsed.unknown.contains(&c) {
                parsed.unknown.push(c);
            }
            continue;
        }
        let param = params.next().filter(|p| !p.is_empty());
        if let Some(kind) = ListKind::from_letter(c) {
            match param {
                None if !parsed.queries.contains(&kind) => parsed.queries.push(kind),
                None => {}
                Some(_) if with_param == MAX_MODE_PARAMS => {}
                Some(mask) => match normalize_mask(mask) {
                    Some(mask) => {
                        with_param += 1;
                        parsed.changes.push(ModeChange::List { kind, mask, on });
                    }
                    None => parsed.invalid.push((c, mask.clone(), "Invalid mask")),
                },
            }
            continue;
        }
        // -k takes a parameter if one is there (clients send the key back)
        // and means the same without one.
        let Some(param) = param else {
            if c == 'k' && !on {
                parsed.changes.push(ModeChange::Key(None));
            } else {
                parsed.invalid.push((c, "*".into(), "You must specify a parameter for this mode"));
            }
            continue;
        };
        if with_param == MAX_MODE_PARAMS {
            continue;
        }
        with_param += 1;
        match c {
            'o' => parsed.changes.push(ModeChange::Op { nick: Nick::new(param), on }),
            'v' => parsed.changes.push(ModeChange::Voice { nick: Nick::new(param), on }),
            'k' if !on => parsed.changes.push(ModeChange::Key(None)),
            'k' if is_valid_key(param) => parsed.changes.push(ModeChange::Key(Some(param.clone()))),
            // Not echoed: a key that is invalid may be one a client should
            // not see repeated (spaces, any length), and the spec's example
            // shows '*'.
            'k' => parsed.invalid.push((c, "*".into(), "Invalid key")),
            _ => match param.parse::<u32>() {
                Ok(limit) if limit > 0 => parsed.changes.push(ModeChange::Limit(Some(limit))),
                _ => parsed.invalid.push((c, param.clone(), "Invalid limit: a positive number is needed")),
            },
        }
    }
    parsed
}

/// A key is one word a JOIN can carry: no comma, no leading ':', nothing
/// that is not a printable character, at most [`KEY_LEN`] bytes.
pub fn is_valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= KEY_LEN
        && !key.starts_with(':')
        && key.chars().all(|c| !c.is_control() && !c.is_whitespace() && c != ',')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parameters_are_taken_in_order() {
        let parsed = parse_modes("+ov-k+lb", &params(&["alice", "bob", "old", "10", "*!*@bad"]));
        assert_eq!(
            parsed.changes,
            vec![
                ModeChange::Op { nick: Nick::new("alice"), on: true },
                ModeChange::Voice { nick: Nick::new("bob"), on: true },
                ModeChange::Key(None),
                ModeChange::Limit(Some(10)),
                ModeChange::List { kind: ListKind::Ban, mask: "*!*@bad".into(), on: true },
            ]
        );
        assert!(parsed.unknown.is_empty() && parsed.invalid.is_empty() && parsed.queries.is_empty());
    }

    #[test]
    fn flags_unknown_letters_queries_and_bad_parameters() {
        let parsed = parse_modes("+tZmZb-l", &[]);
        assert_eq!(
            parsed.changes,
            vec![
                ModeChange::Flag { flag: Flag::TopicOps, on: true },
                ModeChange::Flag { flag: Flag::Moderated, on: true },
                ModeChange::Limit(None),
            ]
        );
        assert_eq!(parsed.unknown, ['Z']);
        assert_eq!(parsed.queries, [ListKind::Ban]);
        let parsed = parse_modes("+lkoI", &params(&["0", "a,b"]));
        assert!(parsed.changes.is_empty());
        assert_eq!(parsed.queries, [ListKind::InviteExcept]);
        let letters: Vec<char> = parsed.invalid.iter().map(|(c, _, _)| *c).collect();
        assert_eq!(letters, ['l', 'k', 'o']);
        assert_eq!(parse_modes("+l", &params(&["-3"])).invalid.len(), 1);
    }

    #[test]
    fn a_line_is_bounded() {
        let many = params(&["a", "b", "c", "d", "e", "f", "g", "h"]);
        let parsed = parse_modes("+oooooooo", &many);
        assert_eq!(parsed.changes.len(), MAX_MODE_PARAMS);
        let parsed = parse_modes(&format!("+{}", "t".repeat(400)), &[]);
        assert_eq!(parsed.changes.len(), MAX_MODE_CHANGES);
    }
}
