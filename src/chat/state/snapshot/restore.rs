//! Rebuilding the directory from a decoded snapshot: each part checked on
//! its own (`fields`) and against the parts before it, and the indexes the
//! snapshot leaves out made again as the parts go in.
//!
//! The order is what lets every cross-check be one lookup: users first
//! (their nicks fill the nick index, so a nick taken twice is found as it
//! comes, and their monitored nicks the watchers index), then channels
//! (each member or invitee must be a user already, and is told the channel
//! as it is found, which is how users' channel and invite sets come back),
//! then each plain user's focus (which needs the channels), the WHOWAS
//! history and the reloads in progress. Nothing is compared pairwise, so
//! the work is linear in the snapshot, give or take a map's logarithm.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use crate::chat::channel::{Channel, Flag, ListEntry, MAX_LIST_ENTRIES, Membership, Topic};
use crate::chat::names::fold;
use crate::chat::reload::{self, MAX_RELOAD_BYTES};
use crate::chat::state::monitor::MONITOR_LIMIT;
use crate::chat::state::whowas::Whowas;
use crate::chat::state::{State, User};
use crate::chat::{ChannelName, ConnId, Protocol, ServerInfo};

use super::{ChannelImage, Dated, Image, SnapshotError, UserImage, fields, unpack};

pub(super) fn rebuild(image: Image<'_>, info: Arc<ServerInfo>) -> Result<State, SnapshotError> {
    let settings = image.settings.into_owned();
    // As a reload's settings are bounded, so are a snapshot's: no node
    // could have installed longer ones.
    if let Err(count) = reload::encode(&settings) {
        return Err(SnapshotError::TooMany { what: "bytes of settings", count, limit: MAX_RELOAD_BYTES });
    }
    // The same settings keep the same `Arc`: sessions made with `info`
    // see no reload where there was none (they compare pointers).
    let info = if info.reloadable == settings { info } else { Arc::new(info.reloaded(settings)) };
    let mut state = State::new(info);

    in_order(image.users.iter().map(|u| u.conn), "user", |c| format!("{c:?}"))?;
    for user in &image.users {
        add_user(&mut state, user)?;
    }
    state.peak_users = usize::try_from(image.peak_users)
        .ok()
        .filter(|&peak| peak >= state.users.len())
        .ok_or_else(|| {
            let users = state.users.len();
            SnapshotError::Inconsistent(format!(
                "at most {} users at once, and {users} now",
                image.peak_users
            ))
        })?;

    in_order(image.channels.iter().map(|c| ChannelName::new(c.name)), "channel", |c| {
        fields::excerpt(c.as_str())
    })?;
    for channel in &image.channels {
        add_channel(&mut state, channel)?;
    }
    for user in &image.users {
        if let Some(restored) = state.users.get_mut(&user.conn) {
            restored.focus = focus(restored, user)?;
        }
    }

    let history = image.whowas.iter().map(fields::was_user).collect::<Result<Vec<_>, _>>()?;
    state.whowas = Whowas::from_entries(history).map_err(|(what, count, limit)| SnapshotError::TooMany {
        what,
        count,
        limit,
    })?;

    in_order(image.reloads.iter().map(|r| r.from), "reload writer", u16::to_string)?;
    for pending in image.reloads {
        let bytes = pending.bytes.into_owned();
        state.reloads.resume(pending.from, pending.next_part, bytes).map_err(SnapshotError::Inconsistent)?;
    }
    Ok(state)
}

/// Refuses `keys` unless each is greater than the one before: the order
/// the directory's maps keep, which also says that no key is there twice.
fn in_order<K: Ord>(
    keys: impl IntoIterator<Item = K>,
    what: &'static str,
    show: impl Fn(&K) -> String,
) -> Result<(), SnapshotError> {
    let mut last: Option<K> = None;
    for key in keys {
        if last.as_ref().is_some_and(|last| *last >= key) {
            return Err(SnapshotError::OutOfOrder { what, key: show(&key) });
        }
        last = Some(key);
    }
    Ok(())
}

/// Refuses more than `limit` of `what`, before any is looked at.
fn at_most(count: usize, what: &'static str, limit: usize) -> Result<(), SnapshotError> {
    if count > limit {
        return Err(SnapshotError::TooMany { what, count, limit });
    }
    Ok(())
}

/// A user without channels, invites or focus yet (the channels say them).
fn add_user(state: &mut State, image: &UserImage<'_>) -> Result<(), SnapshotError> {
    let conn = image.conn;
    let nick = fields::nick("nick", image.nick)?;
    let [invisible, oper, wallops, bot] = unpack(image.modes, "user modes")?;
    if image.last_active < image.signon {
        return Err(SnapshotError::Inconsistent(format!("{conn:?} was last active before it signed on")));
    }
    at_most(image.monitoring.len(), "monitored nicks", MONITOR_LIMIT)?;
    let monitoring =
        image.monitoring.iter().map(|n| fields::nick("monitored nick", n)).collect::<Result<Vec<_>, _>>()?;
    in_order(monitoring.iter(), "monitored nick", |n| n.as_str().to_string())?;
    if state.nicks.insert(nick.clone(), conn).is_some() {
        return Err(SnapshotError::NickTaken { nick: nick.as_str().to_string() });
    }
    for watched in &monitoring {
        state.watchers.add(watched.clone(), conn);
    }
    let user = User {
        nick,
        user: fields::user_name(image.user)?,
        realname: fields::realname(image.realname)?,
        host: fields::host(image.host)?,
        protocol: image.protocol,
        channels: BTreeSet::new(),
        focus: None,
        away: fields::away(image.away)?,
        invisible,
        oper,
        wallops,
        bot,
        invites: BTreeSet::new(),
        caps: fields::caps(image.caps)?,
        signon: image.signon,
        last_active: image.last_active,
        monitoring: monitoring.into_iter().collect(),
    };
    state.order.insert(conn);
    state.users.insert(conn, user);
    Ok(())
}

/// A channel, whose members and invitees learn of it as it goes in.
fn add_channel(state: &mut State, image: &ChannelImage<'_>) -> Result<(), SnapshotError> {
    let name = fields::channel_name(image.name)?;
    let mut chan = Channel::new(name.clone(), image.created_at);
    for (flag, on) in Flag::ALL.into_iter().zip(unpack::<6>(image.flags, "channel modes")?) {
        chan.modes.set_flag(flag, on);
    }
    chan.modes.key = fields::key(image.key)?;
    chan.modes.limit = fields::limit(image.limit)?;
    chan.topic = match &image.topic {
        Some(t) => {
            Some(Topic { text: fields::topic(t.text)?, set_by: fields::source(t.set_by)?, set_at: t.set_at })
        }
        None => None,
    };
    chan.bans = list(&image.bans, "bans")?;
    chan.excepts = list(&image.excepts, "ban exceptions")?;
    chan.invite_excepts = list(&image.invite_excepts, "invite exceptions")?;

    // The last member to leave takes the channel with them.
    if image.members.is_empty() {
        return Err(SnapshotError::Inconsistent(format!("{} has no members", fields::excerpt(image.name))));
    }
    in_order(image.members.iter().map(|&(conn, _)| conn), "member", |c| format!("{c:?}"))?;
    for &(conn, status) in &image.members {
        let [op, voice] = unpack(status, "member status")?;
        user_of(state, &name, conn, "member")?.channels.insert(name.clone());
        chan.members.insert(conn, Membership { op, voice });
    }
    // Joining spends an invite, so no member holds one.
    in_order(image.invited.iter().copied(), "invitee", |c| format!("{c:?}"))?;
    for &conn in &image.invited {
        if chan.is_member(conn) {
            let name = fields::excerpt(name.as_str());
            return Err(SnapshotError::Inconsistent(format!("{conn:?} is in {name} and invited to it")));
        }
        user_of(state, &name, conn, "invitee")?.invites.insert(name.clone());
        chan.invited.insert(conn);
    }
    state.channels.insert(name, chan);
    Ok(())
}

/// The user `channel` names as its `role`, which must be one.
fn user_of<'s>(
    state: &'s mut State,
    channel: &ChannelName,
    conn: ConnId,
    role: &'static str,
) -> Result<&'s mut User, SnapshotError> {
    state.users.get_mut(&conn).ok_or_else(|| SnapshotError::NoSuchUser {
        channel: fields::excerpt(channel.as_str()),
        conn,
        role,
    })
}

/// A list of masks, each once (as the MODE that adds one finds it there).
fn list(entries: &[Dated<'_>], what: &'static str) -> Result<Vec<ListEntry>, SnapshotError> {
    at_most(entries.len(), what, MAX_LIST_ENTRIES)?;
    let mut seen = HashSet::with_capacity(entries.len());
    let mut list = Vec::with_capacity(entries.len());
    for entry in entries {
        let mask = fields::mask(entry.text)?;
        if !seen.insert(fold(&mask)) {
            return Err(SnapshotError::Inconsistent(format!("{what} hold {mask} twice")));
        }
        list.push(ListEntry { mask, set_by: fields::source(entry.set_by)?, set_at: entry.set_at });
    }
    Ok(list)
}

/// Where a plain user's lines go: a channel it is in, named as the channel
/// names itself, whenever it is in any. An IRC user has none.
fn focus(user: &User, image: &UserImage<'_>) -> Result<Option<ChannelName>, SnapshotError> {
    let conn = image.conn;
    let focus = match image.focus {
        Some(name) => Some(user.channels.get(&ChannelName::new(name)).cloned().ok_or_else(|| {
            let name = fields::excerpt(name);
            SnapshotError::Inconsistent(format!("{conn:?} speaks to {name} and is not in it"))
        })?),
        None => None,
    };
    let fits = match user.protocol {
        Protocol::Plain => focus.is_none() == user.channels.is_empty(),
        Protocol::Irc => focus.is_none(),
    };
    if !fits {
        let has = if focus.is_some() { "a" } else { "no" };
        return Err(SnapshotError::Inconsistent(format!(
            "{conn:?} ({:?}, in {} channels) has {has} channel its lines go to",
            user.protocol,
            user.channels.len()
        )));
    }
    Ok(focus)
}
