//! Making text safe to print on a plain client's terminal.
//!
//! An `nc` user's terminal interprets what it is sent: an escape sequence
//! from another user (`\x1b[2K\x1b[1G` erases the line and moves to its
//! start) could redraw the screen, clear it, or paint a line that seems to
//! come from someone else. IRC clients render text themselves; a terminal
//! does not, so every line for a plain client goes through [`push_printable`]:
//!
//! * IRC formatting codes (bold, colours, italics, ...) are removed: they
//!   are styling meant for IRC clients, and mean nothing on a terminal.
//! * Every other control character (C0, DEL, and the C1 range that some
//!   terminals also obey) is shown in caret notation, `^[` for ESC, the way
//!   `cat -v` does, so nothing is hidden and nothing is obeyed.
//! * Bidirectional overrides, which can reorder what is displayed, are
//!   shown as `�`.
//! * The line is cut to 512 bytes with its CR LF, like every IRC line.
//!
//! The caller decides what a line says; server notices start with `***`
//! and errors with `!`, which no user's words can start a line with (every
//! user line starts with a name, a `[room]` tag, `-name-` or `* name`).

use crate::wire::MAX_LINE_BYTES;

/// Appends `text` as one printable line ending in CR LF.
pub fn push_printable(out: &mut Vec<u8>, text: &str) {
    let start = out.len();
    let limit = start + MAX_LINE_BYTES - 2;
    let mut chars = text.chars().peekable();
    let mut buf = [0u8; 4];
    while let Some(c) = chars.next() {
        let shown: &str = match c {
            // Bold, reset, monospace, reverse, italics, strike, underline.
            '\x02' | '\x0f' | '\x11' | '\x16' | '\x1d' | '\x1e' | '\x1f' => "",
            // Colour: ^C then up to two digits, optionally ",NN".
            '\x03' => {
                skip_colour(&mut chars, |c| c.is_ascii_digit(), 2);
                ""
            }
            // Hex colour: ^D then RRGGBB, optionally ",RRGGBB".
            '\x04' => {
                skip_colour(&mut chars, |c| c.is_ascii_hexdigit(), 6);
                ""
            }
            '\t' => " ",
            '\0'..='\x1f' => {
                let caret = [b'^', c as u8 + 0x40];
                if !push_within(out, limit, &caret) {
                    break;
                }
                continue;
            }
            '\x7f' => "^?",
            '\u{80}'..='\u{9f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => "\u{fffd}",
            _ => c.encode_utf8(&mut buf),
        };
        if !push_within(out, limit, shown.as_bytes()) {
            break;
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends `bytes` unless that would pass `limit`; false when it would.
fn push_within(out: &mut Vec<u8>, limit: usize, bytes: &[u8]) -> bool {
    if out.len() + bytes.len() > limit {
        return false;
    }
    out.extend_from_slice(bytes);
    true
}

/// Skips a colour code's arguments: up to `width` digits, then optionally a
/// comma and up to `width` more (the comma only if digits follow it).
fn skip_colour(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    is_digit: impl Fn(char) -> bool + Copy,
    width: usize,
) {
    let mut taken = 0;
    while taken < width && chars.peek().copied().is_some_and(is_digit) {
        chars.next();
        taken += 1;
    }
    if taken == 0 {
        return;
    }
    let mut ahead = chars.clone();
    if ahead.next() == Some(',') && ahead.next().is_some_and(is_digit) {
        chars.next();
        let mut taken = 0;
        while taken < width && chars.peek().copied().is_some_and(is_digit) {
            chars.next();
            taken += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn shown(text: &str) -> String {
        let mut out = Vec::new();
        push_printable(&mut out, text);
        String::from_utf8(out).expect("UTF-8")
    }

    #[test]
    fn escapes_are_shown_not_obeyed() {
        assert_eq!(shown("\x1b[2K\x1b[1Galice: hi"), "^[[2K^[[1Galice: hi\r\n");
        assert_eq!(shown("#\x1b[2Jx"), "#^[[2Jx\r\n");
        assert_eq!(shown("a\x08\x08b\x7f"), "a^H^Hb^?\r\n");
        assert_eq!(shown("a\rb\nc\0d"), "a^Mb^Jc^@d\r\n");
        assert_eq!(shown("x\u{9b}31m \u{202e}olleh"), "x\u{fffd}31m \u{fffd}olleh\r\n");
    }

    #[test]
    fn formatting_is_removed() {
        assert_eq!(shown("\x02bold\x02 \x0304,12red\x03 \x1ditalic\x0f"), "bold red italic\r\n");
        assert_eq!(shown("\x0399 bottles, \x03,5x"), " bottles, ,5x\r\n");
        assert_eq!(shown("\x04ff0000,00ff00hex"), "hex\r\n");
        assert_eq!(shown("tab\there"), "tab here\r\n");
    }

    #[test]
    fn long_lines_are_cut_at_a_character() {
        let line = shown(&"é".repeat(400));
        assert!(line.len() <= MAX_LINE_BYTES);
        assert!(line.ends_with("é\r\n"));
    }

    proptest! {
        /// Whatever the text, a terminal receives one line of printable
        /// characters: no control character but the final CR LF.
        #[test]
        fn output_is_one_printable_line(text in any::<String>()) {
            let line = shown(&text);
            prop_assert!(line.len() <= MAX_LINE_BYTES);
            let body = line.strip_suffix("\r\n").expect("ends the line");
            prop_assert!(!body.chars().any(|c| c.is_control()));
        }
    }
}
