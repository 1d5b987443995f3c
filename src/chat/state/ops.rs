//! Channel management in the directory: who may join (bans, keys, limits,
//! invite-only), MODE changes, KICK and INVITE.
//!
//! These decide on other users' status (is the kicker an operator, is the
//! target in the channel, is the list full), so they are made here, in
//! event order, and never by a session, whose view may be a moment old.
//! What a channel's rules are (`speech_refusal`, `is_banned`) lives with
//! [`Channel`](crate::chat::channel::Channel); this file is how events
//! change channels and what they tell whom.

use std::borrow::Cow;

use crate::chat::change::{Change, Refusal};
use crate::chat::channel::{ListEntry, MAX_LIST_ENTRIES, ModeChange};
use crate::chat::names::same_name;
use crate::chat::{ChannelName, ConnId, Nick};

use super::State;

fn refused<'e>(conn: ConnId, refusal: Refusal, subject: &str, also: Option<&str>) -> Change<'e> {
    Change::Refused {
        conn,
        refusal,
        subject: Cow::Owned(subject.to_string()),
        also: also.map(str::to_string),
    }
}

impl State {
    /// Why `conn` may not join `channel` with `key`, if it may not. A new
    /// channel, or one the user is in, has nothing to refuse here. An
    /// invite passes +i and +l, never a ban or a key.
    pub(super) fn join_refusal(
        &self,
        conn: ConnId,
        channel: &ChannelName,
        key: Option<&str>,
    ) -> Option<Refusal> {
        let user = self.users.get(&conn)?;
        let chan = self.channels.get(channel)?;
        if chan.is_member(conn) {
            return None;
        }
        let source = user.prefix();
        let invited = chan.invited.contains(&conn);
        if chan.is_banned(&source) {
            return Some(Refusal::Banned);
        }
        if chan.modes.invite_only && !invited && !chan.invite_excepted(&source) {
            return Some(Refusal::InviteOnly);
        }
        if chan.modes.key.as_deref().is_some_and(|wanted| key != Some(wanted)) {
            return Some(Refusal::BadKey);
        }
        // An invite is a member's say-so for one more, as InspIRCd and
        // Ergo read it: it lets its holder past a full channel too.
        if !invited && chan.modes.limit.is_some_and(|limit| chan.members.len() >= limit as usize) {
            return Some(Refusal::ChannelIsFull);
        }
        None
    }

    /// Removes an emptied channel, and the invites to it users still hold.
    pub(super) fn drop_channel(&mut self, channel: &ChannelName) {
        if let Some(chan) = self.channels.remove(channel) {
            for invited in chan.invited {
                if let Some(user) = self.users.get_mut(&invited) {
                    user.invites.remove(channel);
                }
            }
        }
    }

    /// MODE on a channel: an operator's changes, each applied in order,
    /// the ones that changed something told to every member in one line.
    pub(super) fn set_modes<'e>(
        &mut self,
        changes: &mut Vec<Change<'e>>,
        conn: ConnId,
        channel: &ChannelName,
        modes: &[ModeChange],
        at: u64,
    ) {
        let Some(user) = self.users.get(&conn) else { return };
        let Some(chan) = self.channels.get_mut(channel) else {
            changes.push(refused(conn, Refusal::NoSuchChannel, channel.as_str(), None));
            return;
        };
        if !chan.is_op(conn) {
            changes.push(refused(conn, Refusal::NotOperator, chan.name.as_str(), None));
            return;
        }
        let setter = user.prefix();
        // What changed: (adding, letter, parameter).
        let mut applied: Vec<(bool, char, Option<String>)> = Vec::new();
        for change in modes {
            let (on, letter) = (change.on(), change.letter());
            match change {
                ModeChange::Flag { flag, on } => {
                    if chan.modes.flag(*flag) != *on {
                        chan.modes.set_flag(*flag, *on);
                        applied.push((*on, letter, None));
                    }
                }
                ModeChange::Key(key) => {
                    if chan.modes.key != *key {
                        // -k shows `*`: the old key is the members' secret.
                        let shown = key.clone().unwrap_or_else(|| "*".to_string());
                        applied.push((on, letter, Some(shown)));
                        chan.modes.key = key.clone();
                    }
                }
                ModeChange::Limit(limit) => {
                    if chan.modes.limit != *limit {
                        chan.modes.limit = *limit;
                        applied.push((on, letter, limit.map(|l| l.to_string())));
                    }
                }
                ModeChange::Op { nick, .. } | ModeChange::Voice { nick, .. } => {
                    let Some(&target) = self.nicks.get(nick) else {
                        changes.push(refused(conn, Refusal::NoSuchNick, nick.as_str(), None));
                        continue;
                    };
                    let Some(status) = chan.members.get_mut(&target) else {
                        let nick = self.users[&target].nick.as_str();
                        changes.push(refused(
                            conn,
                            Refusal::UserNotInChannel,
                            nick,
                            Some(chan.name.as_str()),
                        ));
                        continue;
                    };
                    let field = if letter == 'o' { &mut status.op } else { &mut status.voice };
                    if *field != on {
                        *field = on;
                        applied.push((on, letter, Some(self.users[&target].nick.as_str().to_string())));
                    }
                }
                ModeChange::List { kind, mask, on } => {
                    let list = chan.list_mut(*kind);
                    let found = list.iter().position(|e| same_name(&e.mask, mask));
                    match (found, on) {
                        (Some(i), false) => {
                            let entry = list.remove(i);
                            applied.push((false, letter, Some(entry.mask)));
                        }
                        (None, true) if list.len() >= MAX_LIST_ENTRIES => {
                            let also = letter.to_string();
                            changes.push(refused(conn, Refusal::ListFull, chan.name.as_str(), Some(&also)));
                        }
                        (None, true) => {
                            list.push(ListEntry { mask: mask.clone(), set_by: setter.clone(), set_at: at });
                            applied.push((true, letter, Some(mask.clone())));
                        }
                        _ => {}
                    }
                }
            }
        }
        if applied.is_empty() {
            return;
        }
        let mut letters = String::new();
        let mut sign = None;
        let mut params = Vec::new();
        for (on, letter, param) in applied {
            if sign != Some(on) {
                letters.push(if on { '+' } else { '-' });
                sign = Some(on);
            }
            letters.push(letter);
            params.extend(param);
        }
        changes.push(Change::ModeChanged { conn, channel: chan.name.clone(), modes: letters, params });
    }

    /// KICK: an operator removes a member; every member, the kicked one
    /// included, hears it.
    pub(super) fn kick<'e>(
        &mut self,
        changes: &mut Vec<Change<'e>>,
        conn: ConnId,
        channel: &'e ChannelName,
        nick: &Nick,
        reason: Option<&'e str>,
    ) {
        let Some(chan) = self.joined_channel(changes, conn, channel) else { return };
        if !chan.is_op(conn) {
            changes.push(refused(conn, Refusal::NotOperator, chan.name.as_str(), None));
            return;
        }
        let Some(&target) = self.nicks.get(nick) else {
            changes.push(refused(conn, Refusal::NoSuchNick, nick.as_str(), None));
            return;
        };
        let target_nick = self.users[&target].nick.clone();
        if !chan.is_member(target) {
            changes.push(refused(
                conn,
                Refusal::UserNotInChannel,
                target_nick.as_str(),
                Some(chan.name.as_str()),
            ));
            return;
        }
        let name = chan.name.clone();
        let recipients = chan.members.keys().copied().collect();
        // Without a reason, the kicker's nick, as most servers say.
        let reason = match reason {
            Some(reason) => Cow::Borrowed(reason),
            None => Cow::Owned(self.users[&conn].nick.as_str().to_string()),
        };
        self.remove_member(target, channel);
        changes.push(Change::Kicked { conn, channel: name, nick: target_nick, reason, recipients });
    }

    /// INVITE: a member asks `nick` in; on an invite-only channel only an
    /// operator may. The invitee may then pass +i once.
    pub(super) fn invite<'e>(
        &mut self,
        changes: &mut Vec<Change<'e>>,
        conn: ConnId,
        nick: &Nick,
        channel: &ChannelName,
    ) {
        if !self.users.contains_key(&conn) {
            return;
        }
        let Some(&target) = self.nicks.get(nick) else {
            changes.push(refused(conn, Refusal::NoSuchNick, nick.as_str(), None));
            return;
        };
        let Some(chan) = self.channels.get_mut(channel) else {
            changes.push(refused(conn, Refusal::NoSuchChannel, channel.as_str(), None));
            return;
        };
        if !chan.is_member(conn) {
            changes.push(refused(conn, Refusal::NotOnChannel, chan.name.as_str(), None));
            return;
        }
        let target_user = &self.users[&target];
        if chan.is_member(target) {
            let nick = target_user.nick.as_str();
            changes.push(refused(conn, Refusal::UserOnChannel, nick, Some(chan.name.as_str())));
            return;
        }
        if chan.modes.invite_only && !chan.is_op(conn) {
            changes.push(refused(conn, Refusal::NotOperator, chan.name.as_str(), None));
            return;
        }
        chan.invited.insert(target);
        let name = chan.name.clone();
        if let Some(user) = self.users.get_mut(&target) {
            user.invites.insert(name.clone());
        }
        changes.push(Change::Invited { conn, to: target, channel: name });
    }
}
