//! New settings as events: how a reload (SIGHUP, REHASH) reaches every
//! replica of the directory at the same point in the event order.
//!
//! The MOTD and the channel limits change what `State::apply` decides and
//! renders, so replicas that switched at different moments would disagree
//! about the same events. So the new [`Reloadable`] is an event like any
//! other: every replica installs it when it applies it, in log order, and a
//! replica made later (a replacement pool worker starts from the keeper's
//! copy) has it already. The one process that read the file encodes it;
//! no replica reads a file (which might have changed in between).
//!
//! A log record holds at most [`MAX_EVENT_BYTES`], and settings with a
//! long MOTD do not fit one, so they travel as consecutive [`Event::Reload`] pieces of at
//! most [`PIECE_BYTES`] from one writer, and a replica installs them when
//! it applies the last. Pieces from different writers (two operators
//! REHASHing on two workers at once) may interleave, so each writer's are
//! gathered apart; a writer that died halfway leaves pieces that are
//! forgotten when its loss is applied (`Event::WorkerLost`). The encoded
//! settings are at most [`MAX_RELOAD_BYTES`], which the server checks when
//! it builds them, so the gathering is bounded too.

use std::collections::BTreeMap;

use crate::chat::info::Reloadable;
use crate::chat::{Event, MAX_EVENT_BYTES};

/// Bytes of encoded settings per piece: a piece's event, with its variant,
/// writer, index and length, fits a log record.
pub const PIECE_BYTES: usize = MAX_EVENT_BYTES - 64;

/// The most the encoded settings may take (about 70 pieces: a long MOTD,
/// a list of operators, and room to spare in a 1024-slot log).
pub const MAX_RELOAD_BYTES: usize = 64 * 1024;

/// The encoding of `settings` as it travels, or how long it would be if it
/// is longer than [`MAX_RELOAD_BYTES`].
pub fn encode(settings: &Reloadable) -> Result<Vec<u8>, usize> {
    let bytes = postcard::to_allocvec(settings).expect("settings always encode");
    if bytes.len() > MAX_RELOAD_BYTES {
        return Err(bytes.len());
    }
    Ok(bytes)
}

/// The events that carry `encoded` settings from the writer `from` (its
/// pool cell: 0 for the keeper or the iterative model), in order.
pub fn pieces(from: u16, encoded: &[u8]) -> Vec<Event> {
    let mut chunks: Vec<&[u8]> = encoded.chunks(PIECE_BYTES).collect();
    if chunks.is_empty() {
        chunks.push(&[]);
    }
    let count = chunks.len();
    chunks
        .into_iter()
        .enumerate()
        .map(|(part, bytes)| Event::Reload {
            from,
            part: part as u32,
            last: part + 1 == count,
            bytes: bytes.to_vec(),
        })
        .collect()
}

/// Pieces gathered so far, per writer.
#[derive(Debug, Clone, Default)]
pub struct Gathering {
    by_writer: BTreeMap<u16, Vec<u8>>,
    /// The next piece each writer's gathering expects.
    next_part: BTreeMap<u16, u32>,
}

impl Gathering {
    /// Takes one piece; returns the settings when it was the last of a
    /// whole, well-formed set. A piece out of order, settings that grow
    /// past [`MAX_RELOAD_BYTES`] or that do not decode are dropped (no
    /// writer makes them; every replica drops them alike).
    pub fn take(&mut self, from: u16, part: u32, last: bool, bytes: &[u8]) -> Option<Reloadable> {
        if part == 0 {
            self.forget(from);
        } else if self.next_part.get(&from) != Some(&part) {
            self.forget(from);
            return None;
        }
        let gathered = self.by_writer.entry(from).or_default();
        if gathered.len() + bytes.len() > MAX_RELOAD_BYTES {
            self.forget(from);
            return None;
        }
        gathered.extend_from_slice(bytes);
        if !last {
            self.next_part.insert(from, part + 1);
            return None;
        }
        let whole = self.by_writer.remove(&from).unwrap_or_default();
        self.next_part.remove(&from);
        postcard::from_bytes(&whole).ok()
    }

    /// Each writer's unfinished settings: the writer, the piece it is to
    /// send next and the bytes so far, in writer order (for a snapshot).
    pub(crate) fn pending(&self) -> impl Iterator<Item = (u16, u32, &[u8])> {
        self.by_writer
            .iter()
            .map(|(&from, bytes)| (from, self.next_part.get(&from).copied().unwrap_or(0), &bytes[..]))
    }

    /// Goes on gathering `from`'s settings as `pending` said, if that is
    /// something `take` could have left: a piece after the first to come
    /// and at most [`MAX_RELOAD_BYTES`] so far. Otherwise why not.
    pub(crate) fn resume(&mut self, from: u16, next_part: u32, bytes: Vec<u8>) -> Result<(), String> {
        if next_part == 0 {
            return Err(format!("writer {from}'s reload waits for its first piece again"));
        }
        if bytes.len() > MAX_RELOAD_BYTES {
            return Err(format!("writer {from}'s reload has {} bytes, over {MAX_RELOAD_BYTES}", bytes.len()));
        }
        self.by_writer.insert(from, bytes);
        self.next_part.insert(from, next_part);
        Ok(())
    }

    /// Drops what `from` had sent of settings it never finished.
    pub fn forget(&mut self, from: u16) {
        self.by_writer.remove(&from);
        self.next_part.remove(&from);
    }

    /// Drops what every writer `lost` names had sent of unfinished
    /// settings (a lost worker, or every writer of a lost cluster node).
    pub fn forget_writers(&mut self, lost: impl Fn(u16) -> bool) {
        self.by_writer.retain(|from, _| !lost(*from));
        self.next_part.retain(|from, _| !lost(*from));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::ServerInfo;

    fn settings(motd_lines: usize) -> Reloadable {
        let mut info = ServerInfo::new("irc.test");
        info.motd = Some((0..motd_lines).map(|n| format!("line {n} of the message of the day")).collect());
        info.description = "reloaded".into();
        info.reloadable.clone()
    }

    fn take_all(gathering: &mut Gathering, events: &[Event]) -> Option<Reloadable> {
        let mut installed = None;
        for event in events {
            let Event::Reload { from, part, last, bytes } = event else { panic!("not a piece: {event:?}") };
            installed = gathering.take(*from, *part, *last, bytes).or(installed);
        }
        installed
    }

    #[test]
    fn settings_come_back_whole_from_their_pieces() {
        let wanted = settings(800);
        let encoded = encode(&wanted).unwrap();
        let events = pieces(3, &encoded);
        assert!(events.len() > 1, "a long MOTD takes several pieces");
        let mut gathering = Gathering::default();
        let (init, last) = events.split_at(events.len() - 1);
        assert_eq!(take_all(&mut gathering, init), None, "nothing is installed before the last piece");
        assert_eq!(take_all(&mut gathering, last), Some(wanted));
        let small = settings(0);
        assert_eq!(take_all(&mut gathering, &pieces(0, &encode(&small).unwrap())), Some(small));
    }

    #[test]
    fn interleaved_writers_each_get_their_own() {
        let (a, b) = (settings(400), settings(600));
        let (pa, pb) = (pieces(1, &encode(&a).unwrap()), pieces(2, &encode(&b).unwrap()));
        let mut gathering = Gathering::default();
        let mut installed = Vec::new();
        for i in 0..pa.len().max(pb.len()) {
            for events in [&pa, &pb] {
                if let Some(got) = take_all(&mut gathering, events.get(i..=i).unwrap_or_default()) {
                    installed.push(got);
                }
            }
        }
        assert_eq!(installed.len(), 2);
        assert!(installed.contains(&a) && installed.contains(&b));
    }

    #[test]
    fn a_writer_lost_halfway_installs_nothing_and_its_next_set_starts_clean() {
        let events = pieces(1, &encode(&settings(1000)).unwrap());
        let mut gathering = Gathering::default();
        assert_eq!(take_all(&mut gathering, &events[..2]), None);
        gathering.forget(1);
        assert_eq!(take_all(&mut gathering, &events[2..]), None, "the rest alone is not settings");
        let again = settings(3);
        assert_eq!(take_all(&mut gathering, &pieces(1, &encode(&again).unwrap())), Some(again));
    }

    #[test]
    fn a_piece_out_of_order_drops_the_set() {
        let events = pieces(1, &encode(&settings(1000)).unwrap());
        let mut gathering = Gathering::default();
        let mut shuffled = events.clone();
        shuffled.swap(1, 2);
        assert_eq!(take_all(&mut gathering, &shuffled), None);
    }

    #[test]
    fn settings_too_long_to_send_are_refused_with_their_length() {
        let huge = settings(5000);
        let too_long = encode(&huge).expect_err("a 5000-line MOTD is too long");
        assert!(too_long > MAX_RELOAD_BYTES);
    }
}
