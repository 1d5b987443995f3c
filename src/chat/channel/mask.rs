//! Masks as a channel's ban, exception and invite-exception lists hold
//! them: their normal form (`nick!user@host`, one word, bounded) and how
//! a user's source matches one.

use super::MASK_LEN;
use crate::chat::names::fold_char;

/// A mask as lists keep it: `nick!user@host`, with the parts a client
/// left out as `*` (`bob` is `bob!*@*`, `*@host` is `*!*@host`), or
/// `None` if it is not one word a MODE line can carry back.
pub fn normalize_mask(mask: &str) -> Option<String> {
    let word = |s: &str| s.chars().all(|c| !c.is_control() && !c.is_whitespace() && c != ',');
    if mask.is_empty() || mask.starts_with(':') || !word(mask) {
        return None;
    }
    let full = match (mask.find('!'), mask.find('@')) {
        (Some(bang), Some(at)) if bang < at => mask.to_string(),
        (Some(_), Some(_)) => return None,
        (Some(_), None) => format!("{mask}@*"),
        (None, Some(_)) => format!("*!{mask}"),
        (None, None) => format!("{mask}!*@*"),
    };
    (full.len() <= MASK_LEN).then_some(full)
}

/// Whether `subject` matches `mask`, where `*` is any run of characters
/// and `?` any one, compared case-folded (rfc1459). Linear in practice:
/// the classic backtrack to the last `*` only, never exponential.
pub fn mask_matches(mask: &str, subject: &str) -> bool {
    let mask: Vec<char> = mask.chars().map(fold_char).collect();
    let subject: Vec<char> = subject.chars().map(fold_char).collect();
    let (mut m, mut s) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while s < subject.len() {
        if m < mask.len() && (mask[m] == '?' || mask[m] == subject[s]) {
            m += 1;
            s += 1;
        } else if m < mask.len() && mask[m] == '*' {
            star = Some((m, s));
            m += 1;
        } else if let Some((star_m, star_s)) = star {
            m = star_m + 1;
            s = star_s + 1;
            star = Some((star_m, star_s + 1));
        } else {
            return false;
        }
    }
    mask[m..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_match_with_stars_and_question_marks_case_folded() {
        assert!(mask_matches("*!*@*", "bob!b@host"));
        assert!(mask_matches("bob!*@*", "BOB!b@host"));
        assert!(mask_matches("b?b!*@h*t", "bob!x@host"));
        assert!(mask_matches("[a]!*@*", "{A}!u@h"));
        assert!(!mask_matches("bob!*@*", "bobby!b@host"));
        assert!(!mask_matches("*!*@other", "bob!b@host"));
        assert!(mask_matches("*b*b*", "bxxxbyyy"));
        assert!(!mask_matches("a?", "a"));
        // Many stars against a long subject that does not match: quick.
        let subject = "a".repeat(100);
        assert!(!mask_matches(&format!("{}b", "*a".repeat(40)), &subject));
    }

    #[test]
    fn masks_are_completed_and_validated() {
        assert_eq!(normalize_mask("bob").as_deref(), Some("bob!*@*"));
        assert_eq!(normalize_mask("*@host").as_deref(), Some("*!*@host"));
        assert_eq!(normalize_mask("bob!u").as_deref(), Some("bob!u@*"));
        assert_eq!(normalize_mask("a!b@c").as_deref(), Some("a!b@c"));
        for bad in ["", ":x", "a b", "a,b", "a\x01", "a@b!c", &"x".repeat(MASK_LEN)] {
            assert_eq!(normalize_mask(bad), None, "{bad:?}");
        }
    }
}
