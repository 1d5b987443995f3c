//! LIST's search conditions, as ISUPPORT advertises them: `ELIST=CMNTU`.
//!
//! `LIST [<channels or masks>] [<conditions>]` takes comma-separated words
//! in either parameter: a channel name or mask (`M`: a channel is listed
//! if it matches any), `!mask` (`N`: listed only if it matches none),
//! `>n` and `<n` (`U`: more or fewer than n members), `C>n` and `C<n`
//! (`C`: created more or less than n minutes ago) and `T>n` and `T<n`
//! (`T`: topic set more or less than n minutes ago; a channel without a
//! topic fails a T condition). Every condition must hold.
//!
//! The filter travels inside the LIST `Listing`, so it is plain data with
//! the times already turned into Unix-second bounds at the moment LIST was
//! asked (the session's `now`). It is the client's to write, so it is
//! bounded: at most [`MAX_CONDITIONS`] words are read, and a mask longer
//! than [`MASK_LEN`](crate::chat::who::MASK_LEN) matches no channel.

use crate::chat::channel::mask_matches;
use crate::chat::state::Channel;
use crate::chat::who::MASK_LEN;

/// Most words of a LIST read; the rest are ignored.
pub const MAX_CONDITIONS: usize = 16;

/// What ISUPPORT's ELIST says is understood.
pub const ELIST: &str = "CMNTU";

/// The conditions of one LIST.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    masks: Vec<String>,
    not_masks: Vec<String>,
    /// Members: more than the first, fewer than the second.
    more_than: Option<usize>,
    fewer_than: Option<usize>,
    /// Creation and topic times (Unix seconds), strictly after / before.
    created: Bounds,
    topic: Bounds,
}

/// An open interval of Unix seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Bounds {
    after: Option<u64>,
    before: Option<u64>,
}

impl Bounds {
    fn admits(self, at: u64) -> bool {
        self.after.is_none_or(|after| at > after) && self.before.is_none_or(|before| at < before)
    }

    fn is_set(self) -> bool {
        self.after.is_some() || self.before.is_some()
    }

    /// `<n`: less than n minutes ago, so after `now - n min`; `>n`: more
    /// than n minutes ago, so before it.
    fn take(&mut self, less: bool, minutes: u64, now: u64) {
        let then = now.saturating_sub(minutes.saturating_mul(60));
        if less {
            self.after = Some(self.after.map_or(then, |a| a.max(then)));
        } else {
            self.before = Some(self.before.map_or(then, |b| b.min(then)));
        }
    }
}

impl ListFilter {
    /// The filter LIST's parameters ask for, with `now` the time it was
    /// asked. Words that are no condition (a bad number) are ignored.
    pub fn parse<'a>(params: impl IntoIterator<Item = &'a str>, now: u64) -> ListFilter {
        let mut filter = ListFilter::default();
        let words = params.into_iter().flat_map(|p| p.split(',')).filter(|w| !w.is_empty());
        for word in words.take(MAX_CONDITIONS) {
            let mut chars = word.chars();
            let (first, second) = (chars.next(), chars.next());
            let number = |from: usize| word.get(from..).and_then(|n| n.parse::<u64>().ok());
            match (first, second) {
                (Some(op @ ('<' | '>')), _) => {
                    let Some(n) = number(1) else { continue };
                    let n = usize::try_from(n).unwrap_or(usize::MAX);
                    if op == '<' {
                        filter.fewer_than = Some(filter.fewer_than.map_or(n, |m| m.min(n)));
                    } else {
                        filter.more_than = Some(filter.more_than.map_or(n, |m| m.max(n)));
                    }
                }
                (Some(kind @ ('C' | 'c' | 'T' | 't')), Some(op @ ('<' | '>'))) => {
                    let Some(n) = number(2) else { continue };
                    let bounds =
                        if kind.eq_ignore_ascii_case(&'C') { &mut filter.created } else { &mut filter.topic };
                    bounds.take(op == '<', n, now);
                }
                (Some('!'), _) => filter.not_masks.push(word[1..].to_string()),
                _ => filter.masks.push(word.to_string()),
            }
        }
        filter
    }

    /// Whether `chan` meets every condition.
    pub fn admits(&self, chan: &Channel) -> bool {
        let matches = |mask: &String| mask.len() <= MASK_LEN && mask_matches(mask, chan.name.as_str());
        let members = chan.members.len();
        (self.masks.is_empty() || self.masks.iter().any(matches))
            && !self.not_masks.iter().any(matches)
            && self.more_than.is_none_or(|n| members > n)
            && self.fewer_than.is_none_or(|n| members < n)
            && self.created.admits(chan.created_at)
            && (!self.topic.is_set() || chan.topic.as_ref().is_some_and(|t| self.topic.admits(t.set_at)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::channel::{Membership, Topic};
    use crate::chat::{ChannelName, ConnId};

    fn channel(name: &str, members: u32, created_at: u64, topic_at: Option<u64>) -> Channel {
        let mut chan = Channel::new(ChannelName::new(name), created_at);
        for slot in 0..members {
            chan.members.insert(ConnId { worker: 0, slot, generation: 0 }, Membership::default());
        }
        chan.topic = topic_at.map(|set_at| Topic { text: "t".into(), set_by: "x".into(), set_at });
        chan
    }

    fn listed(words: &str, now: u64, channels: &[Channel]) -> Vec<String> {
        let filter = ListFilter::parse(words.split(' '), now);
        channels.iter().filter(|c| filter.admits(c)).map(|c| c.name.as_str().to_string()).collect()
    }

    #[test]
    fn masks_counts_and_times() {
        let now = 10_000;
        let chans = [
            channel("#chan1", 1, now - 180, Some(now - 180)),
            channel("#chan2", 2, now - 60, Some(now - 60)),
        ];
        let chans = &chans[..];
        assert_eq!(listed("", now, chans), ["#chan1", "#chan2"]);
        assert_eq!(listed("*AN1", now, chans), ["#chan1"]);
        assert_eq!(listed("#c*n2", now, chans), ["#chan2"]);
        assert_eq!(listed("#chan1,#chan2", now, chans), ["#chan1", "#chan2"]);
        assert_eq!(listed("!*an1", now, chans), ["#chan2"]);
        assert!(listed("!#ch*", now, chans).is_empty());
        assert_eq!(listed(">1", now, chans), ["#chan2"]);
        assert_eq!(listed("<2", now, chans), ["#chan1"]);
        assert!(listed("<1", now, chans).is_empty());
        assert_eq!(listed("* >0,<100", now, chans), ["#chan1", "#chan2"]);
        assert_eq!(listed("C>2", now, chans), ["#chan1"]);
        assert_eq!(listed("C<2", now, chans), ["#chan2"]);
        assert!(listed("C<0", now, chans).is_empty());
        assert_eq!(listed("C>0 C<10", now, chans), ["#chan1", "#chan2"]);
        assert_eq!(listed("T>2", now, chans), ["#chan1"]);
        assert_eq!(listed("t<2", now, chans), ["#chan2"]);
        // Bad numbers are no condition; an over-long mask matches nothing.
        assert_eq!(listed(">x C<y", now, chans), ["#chan1", "#chan2"]);
        assert!(listed(&"*".repeat(MASK_LEN + 1), now, chans).is_empty());
        let untopiced = [channel("#none", 1, now, None)];
        assert!(listed("T<100", now, &untopiced).is_empty());
    }
}
