//! IRCv3 message tags (`@key=value;+client/key ...` before a message):
//! reading them from a client's line and writing them before a line.
//!
//! Values travel escaped (`\:` for `;`, `\s` for a space, `\\`, `\r`,
//! `\n`), so a value can hold any text without ending the tag, the tag
//! section or the line. Reading unescapes as the spec says (an unknown
//! escape is the character itself, a lone trailing `\` is dropped) and
//! keeps only tags whose key is well formed and whose value is UTF-8 (the
//! spec allows dropping such a value and forbids replacing its bytes);
//! writing escapes every value and skips a key that is not well formed,
//! so whatever a client put in a tag, the section written is one word of
//! tags and the line stays one line.
//!
//! The sections are bounded apart from the line: a client may send
//! [`MAX_CLIENT_TAGS_BYTES`] (framing holds it to that), a server may send
//! [`MAX_TAGS_BYTES`] (its own tags and a client's); neither counts toward
//! the 512 bytes of the rest of the line, which `write_line` bounds as
//! before. A client's section may hold some two thousand tags, so reading
//! one is linear in its length, a repeated key included.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

/// The most bytes of tags a server may send, the leading `@` and the
/// trailing space included (the spec's limit).
pub const MAX_TAGS_BYTES: usize = 8191;

/// The most bytes of tags a client may send, the leading `@` and the
/// trailing space included: 4094 bytes of tag data.
pub const MAX_CLIENT_TAGS_BYTES: usize = 4096;

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
/// keeping its last value; a tag with a malformed key, or with a value
/// that is not UTF-8, is dropped.
pub fn parse(section: &[u8]) -> Vec<Tag> {
    let mut tags: Vec<Tag> = Vec::new();
    // Where each key is in `tags`: a repeated key is found without a scan.
    let mut places: HashMap<&str, usize> = HashMap::new();
    for item in section.split(|&b| b == b';').filter(|t| !t.is_empty()) {
        let (key, raw) = match item.iter().position(|&b| b == b'=') {
            Some(eq) => (&item[..eq], &item[eq + 1..]),
            None => (item, &[][..]),
        };
        let (Ok(key), Ok(raw)) = (std::str::from_utf8(key), std::str::from_utf8(raw)) else { continue };
        if !is_valid_key(key) {
            continue;
        }
        let value = unescape(raw);
        match places.entry(key) {
            Entry::Occupied(place) => tags[*place.get()].value = value,
            Entry::Vacant(place) => {
                place.insert(tags.len());
                tags.push(Tag { key: key.to_string(), value });
            }
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
        let tags = parse(br"+buzz=fizz\:buzz;cat=dog;+a=1;+a=2;bad key=x;+e=;+n;+esc=a\sb\\c\r\n\x\");
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
    fn a_value_that_is_not_utf8_drops_its_tag() {
        let tags = parse(b"+a=1;+b=\xff;+a=\xc3;+c=\xc3\xa9");
        assert_eq!(tags, [tag("+a", "1"), tag("+c", "\u{e9}")], "an unreadable repeat changes nothing");
    }

    #[test]
    fn a_full_client_section_of_small_tags_reads_whole() {
        // Some 1300 tags of distinct keys, then every key again with a new
        // value: each keeps its first place and its last value.
        let keys: Vec<String> = (0..1300).map(|i| format!("+{i:x}")).collect();
        let first: Vec<String> = keys.iter().map(|k| format!("{k}=1")).collect();
        let again: Vec<String> = keys.iter().map(|k| format!("{k}=2")).collect();
        let section = [first.join(";"), again.join(";")].join(";");
        let tags = parse(section.as_bytes());
        assert_eq!(tags.len(), keys.len());
        assert!(tags.iter().zip(&keys).all(|(t, k)| &t.key == k && t.value == "2"));
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
            prop_assert_eq!(parse(body), expected);
        }

        #[test]
        fn parse_never_panics(
            bytes in prop::collection::vec(any::<u8>(), 0..200),
            text in "[+a-z=;\\\\/.é ]{0,200}",
        ) {
            for section in [&bytes[..], text.as_bytes()] {
                for tag in parse(section) {
                    prop_assert!(is_valid_key(&tag.key));
                }
            }
        }
    }
}
