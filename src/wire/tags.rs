//! IRCv3 message tags (`@key=value;+client/key ...` before a message):
//! reading them from a client's line and writing them before a line.
//!
//! Values travel escaped (`\:` for `;`, `\s` for a space, `\\`, `\r`,
//! `\n`), so a value can hold any text without ending the tag, the tag
//! section or the line. Reading unescapes as the spec says (an unknown
//! escape is the character itself, a lone trailing `\` is dropped) and
//! keeps only tags whose key is well formed; writing escapes every value
//! and skips a key that is not well formed, so whatever a client put in a
//! tag, the section written is one word of tags and the line stays one
//! line. The section written is bounded by [`MAX_TAGS_BYTES`] on its own:
//! tags do not count toward the 512 bytes of the rest of the line, which
//! `write_line` bounds as before.

/// The most bytes of tags a server may send, the leading `@` and the
/// trailing space included (the spec's limit).
pub const MAX_TAGS_BYTES: usize = 8191;

/// One tag, its value unescaped (empty when it has none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// Whether `key` is a tag key: an optional `+` (client-only), an optional
/// vendor (a host name) and `/`, then letters, digits and hyphens.
pub fn is_valid_key(key: &str) -> bool {
    let key = key.strip_prefix('+').unwrap_or(key);
    let (vendor, name) = match key.rsplit_once('/') {
        Some((vendor, name)) => (Some(vendor), name),
        None => (None, key),
    };
    let vendor_ok = vendor.is_none_or(|v| {
        !v.is_empty() && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    });
    vendor_ok && !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// The tags of a tag section (without its `@`), in order, a repeated key
/// keeping its last value; malformed keys are dropped.
pub fn parse(section: &str) -> Vec<Tag> {
    let mut tags: Vec<Tag> = Vec::new();
    for item in section.split(';').filter(|t| !t.is_empty()) {
        let (key, raw) = item.split_once('=').unwrap_or((item, ""));
        if !is_valid_key(key) {
            continue;
        }
        let value = unescape(raw);
        match tags.iter_mut().find(|t| t.key == key) {
            Some(tag) => tag.value = value,
            None => tags.push(Tag { key: key.to_string(), value }),
        }
    }
    tags
}

fn unescape(raw: &str) -> String {
    let mut value = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            value.push(c);
            continue;
        }
        match chars.next() {
            Some(':') => value.push(';'),
            Some('s') => value.push(' '),
            Some('r') => value.push('\r'),
            Some('n') => value.push('\n'),
            Some(other) => value.push(other),
            None => {}
        }
    }
    value
}

/// Appends `value` escaped for a tag.
pub fn escape_into(out: &mut Vec<u8>, value: &str) {
    for &b in value.as_bytes() {
        match b {
            b';' => out.extend_from_slice(b"\\:"),
            b' ' => out.extend_from_slice(b"\\s"),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\n' => out.extend_from_slice(b"\\n"),
            // NUL has no escape; it would cut the line for some readers.
            b'\0' => {}
            _ => out.push(b),
        }
    }
}

/// Appends `@k=v;k2=v2 ` (nothing when there is no tag to write), to go
/// right before a line `write_line` writes. A tag with a malformed key is
/// skipped, and a tag that would take the section past
/// [`MAX_TAGS_BYTES`] is left off with every one after it.
pub fn write_tags<'a>(out: &mut Vec<u8>, tags: impl IntoIterator<Item = (&'a str, &'a str)>) {
    let start = out.len();
    for (key, value) in tags {
        if !is_valid_key(key) {
            continue;
        }
        let before = out.len();
        out.push(if before == start { b'@' } else { b';' });
        out.extend_from_slice(key.as_bytes());
        if !value.is_empty() {
            out.push(b'=');
            escape_into(out, value);
        }
        // One byte is kept for the space that ends the section.
        if out.len() - start + 1 > MAX_TAGS_BYTES {
            out.truncate(before);
            break;
        }
    }
    if out.len() > start {
        out.push(b' ');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tag(key: &str, value: &str) -> Tag {
        Tag { key: key.into(), value: value.into() }
    }

    #[test]
    fn keys() {
        for good in ["time", "+baz", "+draft/reply", "example.com/x-y", "+a.b-c/d1"] {
            assert!(is_valid_key(good), "{good}");
        }
        for bad in ["", "+", "a b", "a=b", "/x", "+v/", "é", "a;b", "a\\b"] {
            assert!(!is_valid_key(bad), "{bad}");
        }
    }

    #[test]
    fn parsing_unescapes_and_keeps_the_last_of_a_key() {
        let tags = parse(r"+buzz=fizz\:buzz;cat=dog;+a=1;+a=2;bad key=x;+e=;+n;+esc=a\sb\\c\r\n\x\");
        assert_eq!(
            tags,
            [
                tag("+buzz", "fizz;buzz"),
                tag("cat", "dog"),
                tag("+a", "2"),
                tag("+e", ""),
                tag("+n", ""),
                tag("+esc", "a b\\c\r\nx"),
            ]
        );
    }

    #[test]
    fn writing_escapes_and_skips_bad_keys() {
        let mut out = Vec::new();
        write_tags(&mut out, [("time", "x"), ("bad key", "v"), ("+a", "b c;d\\\r\n\0"), ("+e", "")]);
        assert_eq!(out, b"@time=x;+a=b\\sc\\:d\\\\\\r\\n;+e ");
        let mut none = Vec::new();
        write_tags(&mut none, [("no good", "x")]);
        assert!(none.is_empty());
    }

    #[test]
    fn the_section_is_bounded() {
        let big = "v".repeat(5000);
        let mut out = Vec::new();
        write_tags(&mut out, [("+a", big.as_str()), ("+b", big.as_str()), ("+c", "x")]);
        assert!(out.len() <= MAX_TAGS_BYTES, "{}", out.len());
        assert!(out.starts_with(b"@+a=") && out.ends_with(b" "));
        assert!(!out.windows(3).any(|w| w == b"+b="), "the tag that did not fit is left off");
    }

    proptest! {
        /// Whatever keys and values hold, the section is one word that
        /// ends in a space, within bounds, and reads back as what was
        /// written for every well-formed key.
        #[test]
        fn written_tags_read_back(
            tags in prop::collection::vec(("\\+?[a-z/.=; -]{0,6}", any::<String>()), 0..6),
        ) {
            let mut out = Vec::new();
            write_tags(&mut out, tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            prop_assert!(out.len() <= MAX_TAGS_BYTES);
            if out.is_empty() {
                return Ok(());
            }
            prop_assert_eq!(out[0], b'@');
            prop_assert!(out.ends_with(b" "));
            let body = &out[1..out.len() - 1];
            prop_assert!(!body.iter().any(|&b| matches!(b, b' ' | b'\r' | b'\n' | b'\0')));
            let mut expected: Vec<Tag> = Vec::new();
            for (k, v) in tags.iter().filter(|(k, _)| is_valid_key(k)) {
                let v: String = v.chars().filter(|&c| c != '\0').collect();
                match expected.iter_mut().find(|t| &t.key == k) {
                    Some(t) => t.value = v,
                    None => expected.push(tag(k, &v)),
                }
            }
            prop_assert_eq!(parse(std::str::from_utf8(body).unwrap()), expected);
        }

        #[test]
        fn parse_never_panics(section in any::<String>()) {
            for tag in parse(&section) {
                prop_assert!(is_valid_key(&tag.key));
            }
        }
    }
}
