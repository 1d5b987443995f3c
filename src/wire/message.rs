//! IRC messages: parsing one framed line and serialising replies.
//!
//! Parsing is deliberately forgiving where real clients differ (repeated
//! spaces, lower-case commands, message tags the server does not support)
//! and strict only where a mistake would change meaning: the command must be
//! letters or a three-digit numeric. Everything is kept as owned strings so a
//! parsed [`Message`] can outlive the read buffer it came from.
//!
//! Serialising is where safety matters most, because parameters often carry
//! text chosen by another user. A CR, LF or NUL written verbatim would end
//! the line early and let that user inject a command of their own into
//! someone else's stream, so every such byte is written as a space instead;
//! a space inside a word (the source, a middle param) would split it and
//! shift every field after it, so words are kept whole; and a line longer
//! than 512 bytes is cut, so no relay is overlong for its receivers. The
//! session validates names before they are ever stored; these rules hold
//! even if a check there is missed. [`write_line`] exists beside [`Message::write_to`] so that the hot path
//! (relaying one PRIVMSG to many members) can build lines from borrowed
//! pieces without allocating a `Message` for each.

use std::fmt;

use crate::wire::framing::MAX_LINE_BYTES;
use crate::wire::tags::{self, Tag};

/// One IRC message: optional source, command, and parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Source without the leading ':' (e.g. "nick!user@host" or "server.name").
    pub prefix: Option<String>,
    /// The command as sent; `parse` upper-cases it (ASCII) so callers can match on "PRIVMSG", numerics stay as digits.
    pub command: String,
    /// Middle params and the trailing param, in order; the trailing param's ':' is removed.
    pub params: Vec<String>,
    /// IRCv3 tags the line began with, unescaped, well-formed keys only
    /// (see `tags`); `write_to` does not write them.
    pub tags: Vec<Tag>,
}

/// Why a line is not a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// The line is empty or holds only spaces.
    Empty,
    /// The line holds only tags and/or a prefix.
    NoCommand,
    /// The command (given) is neither letters nor exactly three digits.
    BadCommand(String),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ParseError::Empty => "empty message",
            ParseError::NoCommand => "message has no command",
            ParseError::BadCommand(_) => "command is not letters or a three-digit numeric",
        })
    }
}

impl std::error::Error for ParseError {}

impl Message {
    /// A message without prefix. The command is stored exactly as given.
    pub fn new(command: impl Into<String>, params: Vec<String>) -> Self {
        Self { prefix: None, command: command.into(), params, tags: Vec::new() }
    }

    /// The same message with its source set.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// Parses one line (no CR LF). Message tags ("@a=b;c ") are read into
    /// `tags` (see `tags::parse`). Multiple spaces between parts are tolerated.
    /// A command is letters or exactly 3 digits; anything else is BadCommand. A line of only tags/prefix is NoCommand.
    ///
    /// Only the ASCII space separates parts; other bytes, including stray
    /// CR or NUL, are kept as data. An empty prefix (": CMD") counts as none.
    pub fn parse(line: &str) -> Result<Message, ParseError> {
        Self::from_line(line.as_bytes())
    }

    /// Parses one line as a client sent it, which need not be UTF-8: the
    /// tag section from its bytes (a tag whose value is not UTF-8 is
    /// dropped, never altered), the rest as [`parse`](Self::parse) says
    /// once bytes that are not UTF-8 are read as U+FFFD.
    pub fn from_line(line: &[u8]) -> Result<Message, ParseError> {
        let mut rest = trim_spaces(line);
        if rest.is_empty() {
            return Err(ParseError::Empty);
        }

        // Tags are kept whoever sent them; what is done with them (relayed
        // if client-only and negotiated, or ignored) is the session's call.
        let mut tags = Vec::new();
        if let Some(section) = rest.strip_prefix(b"@") {
            let end = section.iter().position(|&b| b == b' ').unwrap_or(section.len());
            tags = tags::parse(&section[..end]);
            rest = trim_spaces(&section[end..]);
            if rest.is_empty() {
                return Err(ParseError::NoCommand);
            }
        }
        let text = String::from_utf8_lossy(rest);
        let mut rest: &str = &text;

        let mut prefix = None;
        if let Some(stripped) = rest.strip_prefix(':') {
            let (source, tail) = split_word(stripped);
            if !source.is_empty() {
                prefix = Some(source.to_owned());
            }
            rest = tail.trim_start_matches(' ');
        }

        let (command, mut rest) = split_word(rest);
        if command.is_empty() {
            return Err(ParseError::NoCommand);
        }
        let is_numeric = command.len() == 3 && command.bytes().all(|b| b.is_ascii_digit());
        if !is_numeric && !command.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(ParseError::BadCommand(command.to_owned()));
        }

        let mut params = Vec::new();
        loop {
            rest = rest.trim_start_matches(' ');
            if rest.is_empty() {
                break;
            }
            if let Some(trailing) = rest.strip_prefix(':') {
                params.push(trailing.to_owned());
                break;
            }
            let (param, tail) = split_word(rest);
            params.push(param.to_owned());
            rest = tail;
        }

        Ok(Message { prefix, command: command.to_ascii_uppercase(), params, tags })
    }

    /// Convenience: param i or None.
    pub fn param(&self, i: usize) -> Option<&str> {
        self.params.get(i).map(String::as_str)
    }

    /// Appends the serialised line plus "\r\n" to `out`.
    ///
    /// The last param is written as trailing (":" prefix) when it is empty,
    /// contains a space, or starts with ':'; otherwise it is written bare.
    /// Every other part is written as one word whatever it holds (see
    /// [`write_line`]), CR, LF and NUL in the last param become spaces, and
    /// the line is cut to [`MAX_LINE_BYTES`]: no field can end the line
    /// early, split into more fields, or make it overlong.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let start = out.len();
        write_head(out, self.prefix.as_deref(), &self.command);
        if let Some((last, middle)) = self.params.split_last() {
            for param in middle {
                out.push(b' ');
                push_word(out, param);
            }
            // Decided on the raw text: a CR/LF/NUL is about to become a
            // space, and a space forces the trailing form.
            let needs_colon = last.is_empty()
                || last.starts_with(':')
                || last.bytes().any(|b| b == b' ' || is_line_breaking(b));
            out.extend_from_slice(if needs_colon { b" :" } else { b" " });
            push_clean(out, last);
        }
        end_line(out, start);
    }

    /// The serialised line without "\r\n".
    pub fn to_line(&self) -> String {
        let mut out = Vec::new();
        self.write_to(&mut out);
        out.truncate(out.len().saturating_sub(2));
        // Only ASCII bytes are ever replaced, so the bytes stay valid UTF-8;
        // the lossy fallback merely avoids a panic path.
        String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_line())
    }
}

/// Appends ":prefix COMMAND p1 p2 :trailing\r\n"; `trailing` is always
/// written with ':' (so it may be empty or hold spaces).
///
/// This is the one place chatter's output takes its shape, so the rules that
/// keep one user's text from becoming another user's protocol live here,
/// whatever the caller validated before:
/// * the prefix, the command and each middle param are written as exactly
///   one word: a space, CR, LF or NUL inside becomes '_', a leading ':'
///   becomes '_', and an empty one is written as '*';
/// * CR, LF and NUL in the trailing param become spaces;
/// * the line, CR LF included, is cut to [`MAX_LINE_BYTES`] at a character
///   boundary, so a long relay loses the end of its text (as ngIRCd and
///   InspIRCd cut relays) instead of being overlong for its receivers; the
///   source is cut to [`MAX_PREFIX_BYTES`] first, so the command survives.
pub fn write_line(
    out: &mut Vec<u8>,
    prefix: Option<&str>,
    command: &str,
    middle: &[&str],
    trailing: Option<&str>,
) {
    let start = out.len();
    write_head(out, prefix, command);
    for param in middle {
        out.push(b' ');
        push_word(out, param);
    }
    if let Some(trailing) = trailing {
        out.extend_from_slice(b" :");
        push_clean(out, trailing);
    }
    end_line(out, start);
}

/// Longest source written: a longer one is cut, so that a line, however
/// it is cut to fit, always keeps its command.
pub const MAX_PREFIX_BYTES: usize = 255;

/// Writes the optional ":prefix " and the command.
fn write_head(out: &mut Vec<u8>, prefix: Option<&str>, command: &str) {
    if let Some(prefix) = prefix {
        out.push(b':');
        push_word(out, truncate_at_char(prefix, MAX_PREFIX_BYTES));
        out.push(b' ');
    }
    push_word(out, command);
}

/// `text` cut to at most `max` bytes, at a character boundary.
pub fn truncate_at_char(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Cuts the line that starts at `start` to fit [`MAX_LINE_BYTES`] with its
/// CR LF, and appends the CR LF.
fn end_line(out: &mut Vec<u8>, start: usize) {
    let max_body = MAX_LINE_BYTES - 2;
    if out.len() - start > max_body {
        let mut end = start + max_body;
        // Never split a UTF-8 sequence: back off continuation bytes.
        while end > start && (out[end] & 0b1100_0000) == 0b1000_0000 {
            end -= 1;
        }
        out.truncate(end);
    }
    out.extend_from_slice(b"\r\n");
}

/// Bytes that would end or truncate a line for the receiver.
fn is_line_breaking(b: u8) -> bool {
    matches!(b, b'\r' | b'\n' | b'\0')
}

/// Appends `text` with every CR, LF and NUL replaced by a space, copying
/// clean runs in bulk since almost all text has none.
fn push_clean(out: &mut Vec<u8>, text: &str) {
    let mut rest = text.as_bytes();
    while let Some(pos) = rest.iter().position(|&b| is_line_breaking(b)) {
        out.extend_from_slice(&rest[..pos]);
        out.push(b' ');
        rest = &rest[pos + 1..];
    }
    out.extend_from_slice(rest);
}

/// Appends `text` as exactly one word: see [`write_line`].
fn push_word(out: &mut Vec<u8>, text: &str) {
    if text.is_empty() {
        out.push(b'*');
        return;
    }
    let bytes = text.as_bytes();
    if !bytes.iter().any(|&b| b == b' ' || is_line_breaking(b)) && bytes[0] != b':' {
        out.extend_from_slice(bytes);
        return;
    }
    for (i, &b) in bytes.iter().enumerate() {
        let breaks_word = b == b' ' || is_line_breaking(b) || (i == 0 && b == b':');
        out.push(if breaks_word { b'_' } else { b });
    }
}

/// Splits off the first space-delimited word; the rest starts at that space.
fn split_word(s: &str) -> (&str, &str) {
    s.split_at(s.find(' ').unwrap_or(s.len()))
}

/// `bytes` without the spaces it starts with.
fn trim_spaces(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != b' ').unwrap_or(bytes.len());
    &bytes[start..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn parsed(line: &str) -> Message {
        Message::parse(line).unwrap()
    }

    #[test]
    fn privmsg_with_trailing() {
        let m = parsed("PRIVMSG #chan :hello there world");
        assert_eq!(m.prefix, None);
        assert_eq!(m.command, "PRIVMSG");
        assert_eq!(m.params, strings(&["#chan", "hello there world"]));
        assert_eq!(m.param(1), Some("hello there world"));
        assert_eq!(m.param(2), None);
    }

    #[test]
    fn nick_bare() {
        assert_eq!(parsed("NICK alice"), Message::new("NICK", strings(&["alice"])));
    }

    #[test]
    fn prefix_parsed() {
        let m = parsed(":alice!a@host.example PRIVMSG bob :hi");
        assert_eq!(m.prefix.as_deref(), Some("alice!a@host.example"));
        assert_eq!(m.command, "PRIVMSG");
        assert_eq!(m.params, strings(&["bob", "hi"]));
    }

    #[test]
    fn tags_read_apart_from_the_message() {
        let mut m = parsed("@time=2020-01-01T00:00:00Z;msgid=x :srv NOTICE * :hi");
        let keys: Vec<&str> = m.tags.iter().map(|t| t.key.as_str()).collect();
        assert_eq!(keys, ["time", "msgid"]);
        m.tags.clear();
        assert_eq!(m, Message::new("NOTICE", strings(&["*", "hi"])).with_prefix("srv"));
        let m = parsed("@a=b PING x");
        assert_eq!((m.command.as_str(), m.params.len(), m.tags.len()), ("PING", 1, 1));
    }

    #[test]
    fn tags_of_a_raw_line_keep_their_bytes_or_go() {
        // A tag value that is not UTF-8 is dropped, not turned into U+FFFD;
        // bytes that are not UTF-8 in the rest are, as always.
        let m = Message::from_line(b"@+ok=caf\xc3\xa9;+bad=\xff\xfe;+n PRIVMSG #c :\xffhi").unwrap();
        let tags: Vec<(&str, &str)> = m.tags.iter().map(|t| (t.key.as_str(), t.value.as_str())).collect();
        assert_eq!(tags, [("+ok", "caf\u{e9}"), ("+n", "")]);
        assert_eq!(m.params, strings(&["#c", "\u{fffd}hi"]));
        assert_eq!(Message::from_line(b"@+a=b"), Err(ParseError::NoCommand));
        assert_eq!(Message::from_line(b"@+a=b   "), Err(ParseError::NoCommand));
        assert_eq!(Message::from_line(b"  "), Err(ParseError::Empty));
    }

    #[test]
    fn trailing_keeps_inner_colons() {
        let m = parsed("PRIVMSG #c :see: http://x :) ::");
        assert_eq!(m.params, strings(&["#c", "see: http://x :) ::"]));
        assert_eq!(parsed("PRIVMSG #c ::leading").param(1), Some(":leading"));
    }

    #[test]
    fn empty_trailing_is_a_param() {
        assert_eq!(parsed("TOPIC #c :").params, strings(&["#c", ""]));
    }

    #[test]
    fn numerics() {
        let m = parsed(":irc.example 001 alice :Welcome");
        assert_eq!(m.command, "001");
        assert_eq!(m.params, strings(&["alice", "Welcome"]));
    }

    #[test]
    fn multiple_spaces_tolerated() {
        let m = parsed("  :pre   PRIVMSG    #c    x   :a  b ");
        assert_eq!(m.prefix.as_deref(), Some("pre"));
        assert_eq!(m.params, strings(&["#c", "x", "a  b "]));
        assert_eq!(parsed("JOIN #a   ").params, strings(&["#a"]));
    }

    #[test]
    fn lowercase_command_upper_cased() {
        assert_eq!(parsed("privmsg #c :x").command, "PRIVMSG");
        assert_eq!(parsed("Nick a").command, "NICK");
    }

    #[test]
    fn no_params() {
        let m = parsed("QUIT");
        assert_eq!(m, Message::new("QUIT", vec![]));
        assert_eq!(m.to_line(), "QUIT");
    }

    #[test]
    fn errors() {
        assert_eq!(Message::parse(""), Err(ParseError::Empty));
        assert_eq!(Message::parse("   "), Err(ParseError::Empty));
        assert_eq!(Message::parse(":prefix"), Err(ParseError::NoCommand));
        assert_eq!(Message::parse(":prefix   "), Err(ParseError::NoCommand));
        assert_eq!(Message::parse("@a=b;c"), Err(ParseError::NoCommand));
        assert_eq!(Message::parse("@a=b :pre"), Err(ParseError::NoCommand));
        assert_eq!(Message::parse("PRIV#MSG x"), Err(ParseError::BadCommand("PRIV#MSG".into())));
        assert_eq!(Message::parse("12 x"), Err(ParseError::BadCommand("12".into())));
        assert_eq!(Message::parse("1234"), Err(ParseError::BadCommand("1234".into())));
        assert_eq!(Message::parse("A1B"), Err(ParseError::BadCommand("A1B".into())));
        assert_eq!(Message::parse("ÉTÉ"), Err(ParseError::BadCommand("ÉTÉ".into())));
        assert!(!ParseError::BadCommand(String::new()).to_string().is_empty());
    }

    #[test]
    fn serialise_chooses_trailing_form() {
        let m = Message::new("PRIVMSG", strings(&["#c", "hi there"])).with_prefix("a!b@c");
        assert_eq!(m.to_line(), ":a!b@c PRIVMSG #c :hi there");
        assert_eq!(m.to_string(), m.to_line());
        assert_eq!(Message::new("NICK", strings(&["bob"])).to_line(), "NICK bob");
        assert_eq!(Message::new("TOPIC", strings(&["#c", ""])).to_line(), "TOPIC #c :");
        assert_eq!(Message::new("X", strings(&[":x"])).to_line(), "X ::x");
        let mut out = Vec::new();
        Message::new("PING", strings(&["tok"])).write_to(&mut out);
        assert_eq!(out, b"PING tok\r\n");
    }

    #[test]
    fn serialise_never_injects_lines() {
        let m = Message::new("PRIVMSG", strings(&["#c\r\nQUIT", "a\r\nKILL x\0"])).with_prefix("p\nq");
        let mut out = Vec::new();
        m.write_to(&mut out);
        assert_eq!(out, b":p_q PRIVMSG #c__QUIT :a  KILL x \r\n");
        // A bare-looking last param that only gains a space once cleaned
        // must still be sent in trailing form, or its tail would be lost.
        assert_eq!(Message::new("X", strings(&["a\nb"])).to_line(), "X :a b");

        let mut out = Vec::new();
        write_line(&mut out, Some("s\r"), "NOTICE", &["a\nb"], Some("x\r\ny"));
        assert_eq!(out, b":s_ NOTICE a_b :x  y\r\n");
    }

    #[test]
    fn write_line_forms() {
        let mut out = Vec::new();
        write_line(&mut out, Some("srv"), "001", &["alice"], Some("Welcome home"));
        write_line(&mut out, None, "PING", &[], Some(""));
        write_line(&mut out, None, "MODE", &["#c", "+o", "bob"], None);
        assert_eq!(out, b":srv 001 alice :Welcome home\r\nPING :\r\nMODE #c +o bob\r\n");
    }

    #[test]
    fn write_line_keeps_words_whole() {
        let mut out = Vec::new();
        write_line(&mut out, Some("m!x QUIT :@h"), "PRIVMSG", &["a b", ":c", ""], Some("hi\0there"));
        assert_eq!(out, b":m!x_QUIT_:@h PRIVMSG a_b _c * :hi there\r\n");
    }

    #[test]
    fn a_long_source_never_costs_the_command() {
        let mut out = Vec::new();
        write_line(&mut out, Some(&"é".repeat(400)), "PRIVMSG", &["#c"], Some("hi"));
        let line = std::str::from_utf8(&out[..out.len() - 2]).expect("UTF-8");
        let m = Message::parse(line).expect("still a message");
        assert_eq!((m.command.as_str(), m.params.len()), ("PRIVMSG", 2));
    }

    #[test]
    fn write_line_cuts_long_lines_at_a_character() {
        let mut out = Vec::new();
        let text = "é".repeat(300);
        write_line(&mut out, Some("alice!a@host"), "PRIVMSG", &["#c"], Some(&text));
        assert!(out.len() <= MAX_LINE_BYTES, "{} bytes", out.len());
        assert!(out.len() >= MAX_LINE_BYTES - 1);
        let line = std::str::from_utf8(&out).expect("still UTF-8");
        assert!(line.starts_with(":alice!a@host PRIVMSG #c :éé") && line.ends_with("é\r\n"));
    }

    fn no_breaks(s: &str) -> bool {
        !s.bytes().any(is_line_breaking)
    }

    fn word() -> impl Strategy<Value = String> {
        "[^ :\r\n\x00][^ \r\n\x00]{0,15}"
    }

    fn command() -> impl Strategy<Value = String> {
        prop_oneof!["[A-Z]{1,10}", "[0-9]{3}"]
    }

    fn free_text() -> impl Strategy<Value = String> {
        let any_chars = prop::collection::vec(any::<char>(), 0..60).prop_map(String::from_iter);
        prop_oneof![any_chars, "[ :a-z]{0,12}", Just(String::new()),]
            .prop_filter("no line breaks", |s| no_breaks(s))
    }

    proptest! {
        #[test]
        fn round_trip(
            prefix in prop::option::of(word()),
            command in command(),
            middle in prop::collection::vec(word(), 0..=13),
            last in prop::option::of(free_text()),
        ) {
            let mut params = middle;
            params.extend(last);
            let mut m = Message::new(command, params);
            m.prefix = prefix;
            let line = m.to_line();
            prop_assert_eq!(Message::parse(&line), Ok(m));
        }

        #[test]
        fn parse_never_panics(line in any::<String>()) {
            let _ = Message::parse(&line);
        }

        #[test]
        fn parse_never_panics_on_irc_like(line in "[@:; a-z0-9=#\r\n\0]{0,40}") {
            if let Ok(m) = Message::parse(&line) {
                // Whatever parses must serialise to exactly one line.
                let mut out = Vec::new();
                m.write_to(&mut out);
                prop_assert!(out.ends_with(b"\r\n"));
                prop_assert!(!out[..out.len() - 2].iter().any(|&b| is_line_breaking(b)));
            }
        }

        /// Whatever the fields hold, the output is one line of at most
        /// 512 bytes with exactly the fields it was given: nothing a user
        /// controls can end it, split it, or add a parameter or a source.
        #[test]
        fn write_line_never_splits(
            prefix in prop::option::of(any::<String>()),
            command in command(),
            middle in prop::collection::vec(any::<String>(), 0..=8),
            trailing in prop::option::of(any::<String>()),
            long in 0usize..700,
        ) {
            let trailing = trailing.map(|t| t + &"x".repeat(long));
            let refs: Vec<&str> = middle.iter().map(String::as_str).collect();
            let mut out = b"earlier\r\n".to_vec();
            write_line(&mut out, prefix.as_deref(), &command, &refs, trailing.as_deref());
            let line = &out[b"earlier\r\n".len()..];
            prop_assert!(line.len() <= MAX_LINE_BYTES);
            prop_assert!(line.ends_with(b"\r\n"));
            let body = &line[..line.len() - 2];
            prop_assert!(!body.iter().any(|&b| is_line_breaking(b)));
            let text = std::str::from_utf8(body).unwrap();
            let m = Message::parse(text).unwrap();
            prop_assert_eq!(m.prefix.is_some(), prefix.is_some());
            if let Some(source) = &m.prefix {
                prop_assert!(!source.contains(' '));
            }
            prop_assert_eq!(&m.command, &command);
            // A cut backs off at most three bytes of a character, so a line
            // shorter than that was not cut.
            if line.len() < MAX_LINE_BYTES - 3 {
                prop_assert_eq!(m.params.len(), middle.len() + usize::from(trailing.is_some()));
            }
        }

        #[test]
        fn write_line_round_trip(
            prefix in prop::option::of(word()),
            command in command(),
            middle in prop::collection::vec(word(), 0..=13),
            trailing in prop::option::of(free_text()),
        ) {
            let refs: Vec<&str> = middle.iter().map(String::as_str).collect();
            let mut out = Vec::new();
            write_line(&mut out, prefix.as_deref(), &command, &refs, trailing.as_deref());
            prop_assert!(out.ends_with(b"\r\n"));
            let line = std::str::from_utf8(&out[..out.len() - 2]).unwrap();
            let m = Message::parse(line).unwrap();
            let mut params = middle.clone();
            params.extend(trailing);
            prop_assert_eq!(m.prefix, prefix);
            prop_assert_eq!(m.command, command);
            prop_assert_eq!(m.params, params);
        }
    }
}
