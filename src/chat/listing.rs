//! Replies that can be longer than any queue should hold: LIST, NAMES of
//! a channel, WHO of a channel or of a mask.
//!
//! A server with 10 000 channels answers LIST with about 600 KB; NAMES of a
//! channel of 10 000 members is over 100 KB. Built whole, such a reply
//! either overflows the asker's sendq (and the asker, who did nothing
//! wrong, is dropped as a slow consumer) or makes the server hold it all
//! in memory. So a long reply is a [`Listing`]: a cursor into the
//! directory that writes the reply a piece at a time, each piece only when
//! the asker's queue has drained (the models decide when; see
//! [`Listing::write_next`]). Memory is one piece, and the asker is never
//! counted as behind for what it asked for.
//!
//! The reply is read from the live directory as it goes, the way big IRC
//! servers walk their hash tables: a channel made or a member who joins
//! during the walk may or may not be listed, a removed one is skipped, and
//! nothing is listed twice (the cursor is a position in an ordered map).

use std::ops::Bound;

use crate::chat::caps::Caps;
use crate::chat::elist::ListFilter;
use crate::chat::reply::{self, numeric, plain};
use crate::chat::state::{Channel, User};
use crate::chat::who::WhoQuery;
use crate::chat::{ChannelName, ConnId, Protocol, State};

/// Longest line written, with its CR LF: a piece stops before a line
/// could take it past its room.
const LINE_MAX: usize = crate::wire::MAX_LINE_BYTES;

/// Most users a WHO of a mask looks at in one piece, matched or not: a
/// mask that matches no one still ends each piece in bounded time (the
/// iterative model holds the directory's lock while writing one).
const USERS_PER_PIECE: usize = 512;
/// Most channels a LIST looks at in one piece, listed or not.
const CHANNELS_PER_PIECE: usize = 1024;

/// Where a long reply has got to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listing {
    /// LIST: 321, a 322 per channel the filter admits, 323.
    Channels { started: bool, after: Option<ChannelName>, filter: Option<Box<ListFilter>> },
    /// NAMES of one channel (353s then 366; plain: `*** In #room: ...`).
    Names { channel: String, after: Option<ConnId>, end: NamesEnd },
    /// WHO of one channel: a 352 (or WHOX 354) per member the asker may
    /// see, then 315 with the mask as asked.
    Who { channel: String, query: Box<WhoQuery>, after: Option<ConnId> },
    /// WHO of a mask: a line per visible user it names, in id order.
    WhoMask { query: Box<WhoQuery>, after: Option<ConnId> },
}

/// How a NAMES listing ends, for IRC clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamesEnd {
    /// Its own 366, naming its channel.
    Own,
    /// No 366: a later listing of the same `NAMES #a,#b` ends them all.
    Later,
    /// The one 366 of a `NAMES #a,#b`, naming what was asked (RFC 2812).
    All(String),
}

impl Listing {
    pub fn channels() -> Listing {
        Listing::Channels { started: false, after: None, filter: None }
    }

    /// LIST with ELIST conditions.
    pub fn channels_where(filter: ListFilter) -> Listing {
        Listing::Channels { started: false, after: None, filter: Some(Box::new(filter)) }
    }

    pub fn names(channel: &str) -> Listing {
        Listing::Names { channel: channel.to_string(), after: None, end: NamesEnd::Own }
    }

    /// One channel of a `NAMES #a,#b`, ending as `end` says.
    pub fn names_ending(channel: &str, end: NamesEnd) -> Listing {
        Listing::Names { channel: channel.to_string(), after: None, end }
    }

    pub fn who(channel: &str, query: WhoQuery) -> Listing {
        Listing::Who { channel: channel.to_string(), query: Box::new(query), after: None }
    }

    pub fn who_mask(query: WhoQuery) -> Listing {
        Listing::WhoMask { query: Box::new(query), after: None }
    }

    /// Appends the next piece of the reply for `conn`: whole lines, at
    /// least one, and no more than fit in `room` bytes. Returns true when
    /// the reply is complete (also when `conn` is no longer a user).
    pub fn write_next(&mut self, state: &State, conn: ConnId, out: &mut Vec<u8>, room: usize) -> bool {
        let Some(user) = state.user(conn) else { return true };
        let limit = out.len() + room.max(LINE_MAX);
        let server = state.info().name.as_str();
        let nick = user.nick.as_str();
        match self {
            Listing::Channels { started, after, filter } => {
                if !*started {
                    numeric(out, server, reply::RPL_LISTSTART, nick, &["Channel"], "Users  Name");
                    *started = true;
                }
                let start = after.clone();
                let from = start.as_ref().map_or(Bound::Unbounded, Bound::Excluded);
                for (looked, (key, chan)) in state.channels_from(from).enumerate() {
                    // A filter may pass over many channels for each one
                    // it lists: the work of a piece is bounded too.
                    if out.len() + LINE_MAX > limit || looked == CHANNELS_PER_PIECE {
                        return false;
                    }
                    *after = Some(key.clone());
                    // Secret channels are listed to their members only.
                    if !chan.visible_to(conn) || filter.as_ref().is_some_and(|f| !f.admits(chan)) {
                        continue;
                    }
                    let count = chan.members.len().to_string();
                    let topic = chan.topic.as_ref().map_or("", |t| t.text.as_str());
                    numeric(out, server, reply::RPL_LIST, nick, &[chan.name.as_str(), &count], topic);
                }
                numeric(out, server, reply::RPL_LISTEND, nick, &[], "End of /LIST");
                true
            }
            Listing::Names { channel, after, end } => {
                let end_label = |own: &str| match &*end {
                    NamesEnd::Own => Some(own.to_string()),
                    NamesEnd::Later => None,
                    NamesEnd::All(asked) => Some(asked.clone()),
                };
                // A secret channel's members are not shown to outsiders:
                // they get the end line, as for a channel that is not there.
                let Some(chan) = state.channel(channel).filter(|c| c.visible_to(conn)) else {
                    if user.protocol == Protocol::Irc {
                        if let Some(label) = end_label(channel) {
                            numeric(
                                out,
                                server,
                                reply::RPL_ENDOFNAMES,
                                nick,
                                &[&label],
                                "End of /NAMES list",
                            );
                        }
                    } else {
                        plain(out, &format!("! No such channel: {channel}"));
                    }
                    return true;
                };
                let done = write_names(state, chan, user, after, out, limit);
                if done
                    && user.protocol == Protocol::Irc
                    && let Some(label) = end_label(chan.name.as_str())
                {
                    numeric(out, server, reply::RPL_ENDOFNAMES, nick, &[&label], "End of /NAMES list");
                }
                done
            }
            Listing::Who { channel, query, after } => {
                if let Some(chan) = state.channel(channel).filter(|c| c.visible_to(conn)) {
                    // Outsiders see the members who are not +i.
                    let inside = chan.is_member(conn);
                    let from = after.map_or(Bound::Unbounded, Bound::Excluded);
                    for (member, status) in chan.members.range((from, Bound::Unbounded)) {
                        if out.len() + LINE_MAX > limit {
                            return false;
                        }
                        *after = Some(*member);
                        let Some(them) = state.user(*member) else { continue };
                        if (inside || !them.invisible) && (!query.operators_only || them.oper) {
                            query.write_line(
                                out,
                                server,
                                nick,
                                chan.name.as_str(),
                                them,
                                status.prefixes(user.caps),
                            );
                        }
                    }
                }
                query.write_end(out, server, nick);
                true
            }
            Listing::WhoMask { query, after } => {
                let from = after.map_or(Bound::Unbounded, Bound::Excluded);
                for (looked, (id, them)) in state.users_from(from).enumerate() {
                    if looked == USERS_PER_PIECE || out.len() + LINE_MAX > limit {
                        return false;
                    }
                    *after = Some(id);
                    // +i hides a user from masks, except from those who
                    // share a channel with them (Modern IRC, WHO).
                    let visible = !them.invisible || state.share_channel(conn, id);
                    if visible && query.names(server, them) {
                        query.write_line(out, server, nick, "*", them, "");
                    }
                }
                query.write_end(out, server, nick);
                true
            }
        }
    }
}

/// Writes NAMES lines for `chan` from `after` on, for `asker`, while they
/// fit before `limit`; true when every member is written.
fn write_names(
    state: &State,
    chan: &Channel,
    asker: &User,
    after: &mut Option<ConnId>,
    out: &mut Vec<u8>,
    limit: usize,
) -> bool {
    let server = state.info().name.as_str();
    let irc = asker.protocol == Protocol::Irc;
    let head = if irc { String::new() } else { format!("*** In {}:", chan.name) };
    let mut text = head.clone();
    let mut last_in_text = *after;
    let emit = |out: &mut Vec<u8>, text: &str| {
        if irc {
            let middle = [chan.symbol(), chan.name.as_str()];
            numeric(out, server, reply::RPL_NAMREPLY, asker.nick.as_str(), &middle, text);
        } else {
            plain(out, text);
        }
    };
    let from = after.map_or(Bound::Unbounded, Bound::Excluded);
    for (member, status) in chan.members.range((from, Bound::Unbounded)) {
        let Some(user) = state.user(*member) else { continue };
        // Plain clients see the same marks: `@alice` reads as "operator".
        let marks = status.prefixes(asker.caps);
        let name = if asker.caps.has(Caps::USERHOST_IN_NAMES) {
            format!("{marks}{}", user.prefix())
        } else {
            format!("{marks}{}", user.nick)
        };
        if text.len() > head.len() && text.len() + 2 + name.len() > reply::LIST_TEXT_BYTES {
            emit(out, &text);
            *after = last_in_text;
            text.truncate(head.len());
            if out.len() + LINE_MAX > limit {
                return false;
            }
        }
        let separator = match (text.len() > head.len(), irc) {
            (false, true) => "",
            (false, false) => " ",
            (true, true) => " ",
            (true, false) => ", ",
        };
        text.push_str(separator);
        text.push_str(&name);
        last_in_text = Some(*member);
    }
    if text.len() > head.len() || (!irc && after.is_none()) {
        emit(out, &text);
    }
    *after = last_in_text;
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::{Event, ServerInfo};
    use std::sync::Arc;

    fn conn(slot: u32) -> ConnId {
        ConnId { worker: 0, slot, generation: 0 }
    }

    fn state_with(channels: usize, members: u32) -> State {
        let mut info = ServerInfo::new("srv");
        info.channels_per_client = channels + 1;
        info.max_channels = channels + 1;
        let mut state = State::new(Arc::new(info));
        // What the events change is not what these tests are about.
        let mut apply = |event: Event| state.apply(&event, &mut Vec::new());
        for slot in 0..members {
            apply(Event::Register {
                conn: conn(slot),
                nick: format!("member{slot}").into(),
                user: "u".into(),
                realname: "r".into(),
                host: "h".into(),
                protocol: Protocol::Irc,
                caps: crate::chat::Caps::NONE,
                at: 0,
            });
            apply(Event::Join { conn: conn(slot), channel: "#big".into(), key: None, at: 0 });
        }
        for i in 0..channels {
            apply(Event::Join { conn: conn(0), channel: format!("#c{i:05}").into(), key: None, at: 0 });
        }
        state
    }

    /// The whole reply, piece by piece, with `room` per piece.
    fn stream(state: &State, mut listing: Listing, room: usize) -> (String, usize) {
        let mut out = Vec::new();
        let mut pieces = 0;
        loop {
            let before = out.len();
            let done = listing.write_next(state, conn(0), &mut out, room);
            pieces += 1;
            assert!(out.len() - before <= room.max(LINE_MAX), "a piece overflowed its room");
            if done {
                return (String::from_utf8(out).unwrap(), pieces);
            }
        }
    }

    #[test]
    fn list_is_written_in_pieces_and_whole() {
        let state = state_with(300, 1);
        let (text, pieces) = stream(&state, Listing::channels(), 2048);
        assert!(pieces > 5, "{pieces} pieces");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.iter().filter(|l| l.contains(" 322 ")).count(), 301);
        assert!(lines[0].contains(" 321 ") && lines.last().unwrap().contains(" 323 "));
        let (whole, one) = stream(&state, Listing::channels(), usize::MAX / 2);
        assert_eq!((whole, one), (text, 1));
    }

    #[test]
    fn names_of_a_big_channel_lose_and_repeat_no_one() {
        let state = state_with(0, 600);
        let (text, pieces) = stream(&state, Listing::names("#big"), 1024);
        assert!(pieces > 5, "{pieces} pieces");
        let mut nicks: Vec<&str> = text
            .lines()
            .filter(|l| l.contains(" 353 "))
            .flat_map(|l| l.split_once(" :").unwrap().1.split(' '))
            .collect();
        assert!(text.lines().last().unwrap().contains(" 366 "));
        assert_eq!(nicks.len(), 600);
        nicks.sort();
        nicks.dedup();
        assert_eq!(nicks.len(), 600);
        assert!(nicks.contains(&"@member0"));
    }

    #[test]
    fn who_of_a_big_channel_is_every_member_once() {
        let state = state_with(0, 300);
        let (text, _) = stream(&state, Listing::who("#big", WhoQuery::parse("#big", None, 0)), 1024);
        assert_eq!(text.lines().filter(|l| l.contains(" 352 ")).count(), 300);
        assert!(text.lines().last().unwrap().contains(" 315 "));
    }

    #[test]
    fn who_of_a_mask_streams_every_match_once_in_bounded_pieces() {
        let state = state_with(0, 1500);
        let query = WhoQuery::parse("MEMBER1*", Some("%n"), 0);
        let (text, pieces) = stream(&state, Listing::who_mask(query), 1024);
        assert!(pieces > 3, "{pieces} pieces");
        let mut nicks: Vec<&str> =
            text.lines().filter(|l| l.contains(" 354 ")).map(|l| l.rsplit(' ').next().unwrap()).collect();
        assert_eq!(nicks.len(), 1 + 10 + 100 + 500);
        nicks.sort();
        nicks.dedup();
        assert_eq!(nicks.len(), 611);
        assert!(text.ends_with(":srv 315 member0 MEMBER1* :End of WHO list\r\n"), "{text}");
        // A mask that names no one still comes in pieces of bounded work.
        let (text, pieces) = stream(&state, Listing::who_mask(WhoQuery::parse("nobody*", None, 0)), 1024);
        assert_eq!(pieces, 1500 / USERS_PER_PIECE + 1);
        assert_eq!(text, ":srv 315 member0 nobody* :End of WHO list\r\n");
    }

    #[test]
    fn a_missing_channel_gets_its_end_line() {
        let state = state_with(0, 1);
        let (text, _) = stream(&state, Listing::names("#nope"), 1024);
        assert!(text.contains(" 366 member0 #nope :End of /NAMES list"), "{text}");
    }
}
