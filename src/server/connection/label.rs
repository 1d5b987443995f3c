//! IRCv3 labeled-response: the answer to a labeled command, as one
//! logical message.
//!
//! A client that has enabled `labeled-response` (and `batch`, which that
//! spec requires) may tag a command with `label=...`; everything the
//! server sends in answer must then carry the label exactly once: a single
//! line gets the tag itself, several lines are wrapped in a
//! `labeled-response` BATCH whose opening line carries it, and no answer
//! at all is a labeled `ACK`.
//!
//! How many lines an answer has is known only when it is over (the answer
//! to a JOIN is the JOIN, the topic, a NAMES listing streamed as the client
//! reads it...), so a [`LabeledReply`] holds back the first line until a
//! second one shows that a batch is needed, and from then on streams: it
//! never keeps more than one line, whatever the answer's length. Which
//! bytes are the answer, and when it is over, is the model's to say (see
//! `Connection::label_response` and `Connection::end_response`); this is
//! only how they are written.

use crate::wire::message::write_line;
use crate::wire::tags::{self, MAX_TAGS_BYTES, escape_into};

/// Longest label honoured: the spec's bound on the client's value. A
/// longer one is ignored (the command is answered unlabeled).
pub const MAX_LABEL_BYTES: usize = 64;

/// The label of a client's line (`@label=...;... COMMAND`), if it has a
/// usable one.
pub fn label_of(line: &[u8]) -> Option<String> {
    let section = line.strip_prefix(b"@")?;
    let end = section.iter().position(|&b| b == b' ').unwrap_or(section.len());
    let label = tags::parse(&section[..end]).into_iter().find(|t| t.key == "label")?.value;
    (!label.is_empty() && label.len() <= MAX_LABEL_BYTES).then_some(label)
}

/// One labeled command's answer in progress.
#[derive(Debug)]
pub struct LabeledReply {
    label: String,
    /// The batch reference, unique among this connection's batches.
    reference: String,
    /// The first line, until a second one says whether a batch is needed.
    held: Option<Vec<u8>>,
    /// The batch has been opened: every further line goes in it.
    batched: bool,
}

impl LabeledReply {
    /// `number` tells this answer's batch apart from the connection's
    /// earlier ones.
    pub fn new(label: String, number: u64) -> LabeledReply {
        LabeledReply { label, reference: format!("lr{number}"), held: None, batched: false }
    }

    /// Appends to `out` what to send now for these answer lines (whole
    /// lines, each ending in LF): possibly nothing yet (the first line is
    /// held), or the batch's opening and what it holds so far.
    pub fn respond(&mut self, server: &str, bytes: &[u8], out: &mut Vec<u8>) {
        for line in bytes.split_inclusive(|&b| b == b'\n') {
            if !self.batched {
                let Some(first) = self.held.take() else {
                    self.held = Some(line.to_vec());
                    continue;
                };
                let opening = format!("+{}", self.reference);
                write_tag_section(out, "label", &self.label);
                write_line(out, Some(server), "BATCH", &[&opening, "labeled-response"], None);
                push_tagged(out, &first, "batch", &self.reference);
                self.batched = true;
            }
            push_tagged(out, line, "batch", &self.reference);
        }
    }

    /// Appends the end of the answer: the batch's closing line, the one
    /// line it was with the label, or a labeled ACK for no answer at all.
    pub fn finish(self, server: &str, out: &mut Vec<u8>) {
        if self.batched {
            write_line(out, Some(server), "BATCH", &[&format!("-{}", self.reference)], None);
        } else if let Some(only) = self.held {
            push_tagged(out, &only, "label", &self.label);
        } else {
            write_tag_section(out, "label", &self.label);
            write_line(out, Some(server), "ACK", &[], None);
        }
    }
}

/// `@key=value ` alone, before a line `write_line` writes.
fn write_tag_section(out: &mut Vec<u8>, key: &str, value: &str) {
    out.push(b'@');
    out.extend_from_slice(key.as_bytes());
    out.push(b'=');
    escape_into(out, value);
    out.push(b' ');
}

/// Appends `line` with `key=value` added to its tags (first, so that a
/// client reading the section sees it at once). A line whose section has
/// no room left under [`MAX_TAGS_BYTES`] goes as it is: the line is more
/// important than its label. (The server's own tags are far below the
/// bound, so this never happens with what chatter writes.)
fn push_tagged(out: &mut Vec<u8>, line: &[u8], key: &str, value: &str) {
    let (section, rest) = match line.strip_prefix(b"@") {
        Some(tagged) => match tagged.iter().position(|&b| b == b' ') {
            Some(space) => (&tagged[..space], &tagged[space + 1..]),
            None => (&[][..], line),
        },
        None => (&[][..], line),
    };
    let start = out.len();
    out.push(b'@');
    out.extend_from_slice(key.as_bytes());
    out.push(b'=');
    escape_into(out, value);
    if !section.is_empty() {
        out.push(b';');
        out.extend_from_slice(section);
    }
    out.push(b' ');
    if out.len() - start > MAX_TAGS_BYTES {
        out.truncate(start);
        out.extend_from_slice(line);
        return;
    }
    out.extend_from_slice(rest);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(label: &str, pieces: &[&str]) -> String {
        let mut reply = LabeledReply::new(label.to_string(), 7);
        let mut out = Vec::new();
        for piece in pieces {
            reply.respond("srv", piece.as_bytes(), &mut out);
        }
        reply.finish("srv", &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_label_comes_from_the_tag_section_only() {
        assert_eq!(label_of(b"@label=abc PRIVMSG #a :hi").as_deref(), Some("abc"));
        assert_eq!(label_of(b"@time=x;label=a\\sb;+c=d WHOIS n").as_deref(), Some("a b"));
        assert_eq!(label_of(b"PRIVMSG #a :@label=abc"), None);
        assert_eq!(label_of(b"@+label=abc PING x"), None, "a client-only tag is not the label");
        assert_eq!(label_of(b"@label= PING x"), None);
        assert_eq!(label_of(b"@label"), None);
        let long = format!("@label={} PING x", "x".repeat(MAX_LABEL_BYTES + 1));
        assert_eq!(label_of(long.as_bytes()), None);
        assert_eq!(label_of(b"@label=\xff PING x"), None);
    }

    #[test]
    fn no_answer_is_an_ack() {
        assert_eq!(answer("a1", &[]), "@label=a1 :srv ACK\r\n");
    }

    #[test]
    fn one_line_carries_the_label_itself() {
        assert_eq!(answer("a1", &[":srv PONG srv :x\r\n"]), "@label=a1 :srv PONG srv :x\r\n");
        // Tags it had stay, after the label.
        assert_eq!(
            answer("a;b", &["@time=t :n!u@h PRIVMSG #c :hi\r\n"]),
            "@label=a\\:b;time=t :n!u@h PRIVMSG #c :hi\r\n"
        );
    }

    #[test]
    fn several_lines_are_one_batch_however_they_arrive() {
        let expected = "@label=w :srv BATCH +lr7 labeled-response\r\n\
                        @batch=lr7 :srv 311 me n u h * :R\r\n\
                        @batch=lr7 :srv 318 me n :End\r\n\
                        @batch=lr7;time=t :srv 999 me\r\n\
                        :srv BATCH -lr7\r\n";
        let lines = [":srv 311 me n u h * :R\r\n", ":srv 318 me n :End\r\n", "@time=t :srv 999 me\r\n"];
        assert_eq!(answer("w", &[&lines.concat()]), expected);
        assert_eq!(answer("w", &lines), expected);
    }

    #[test]
    fn only_the_first_line_is_ever_held() {
        let mut reply = LabeledReply::new("l".into(), 1);
        let mut out = Vec::new();
        reply.respond("srv", b":srv 1 me\r\n", &mut out);
        assert!(out.is_empty(), "held until a second line shows a batch is needed");
        reply.respond("srv", b":srv 2 me\r\n", &mut out);
        let sent = out.len();
        assert!(sent > 0);
        reply.respond("srv", b":srv 3 me\r\n", &mut out);
        assert_eq!(&out[sent..], b"@batch=lr1 :srv 3 me\r\n", "streamed from then on");
    }

    #[test]
    fn a_full_tag_section_keeps_its_line() {
        let full = format!("@+x={} :n PRIVMSG #c :hi\r\n", "y".repeat(MAX_TAGS_BYTES - 5));
        assert_eq!(answer("l", &[&full]), full);
    }
}
