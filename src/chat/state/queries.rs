//! Reading the directory for the queries that walk it or its history:
//! WHO of a mask (users in order, who shares a channel with whom) and
//! WHOWAS. Nothing here changes the directory.

use std::ops::Bound;

use crate::chat::{ConnId, Nick};

use super::whowas::WasUser;
use super::{State, User};

impl State {
    /// Users in order of connection id, from `from` on (a listing's cursor).
    pub fn users_from(&self, from: Bound<ConnId>) -> impl Iterator<Item = (ConnId, &User)> {
        self.order.range((from, Bound::Unbounded)).filter_map(|c| self.users.get(c).map(|u| (*c, u)))
    }

    /// Who had `nick` lately, the most recent first.
    pub fn whowas<'a>(&'a self, nick: &Nick) -> impl Iterator<Item = &'a WasUser> + 'a {
        self.whowas.lookup(nick)
    }

    /// Whether `a` and `b` are in a channel together (or are one user):
    /// what lets one see the other through user mode +i.
    pub fn share_channel(&self, a: ConnId, b: ConnId) -> bool {
        if a == b {
            return true;
        }
        let (Some(ua), Some(ub)) = (self.users.get(&a), self.users.get(&b)) else { return false };
        let (small, other) = if ua.channels.len() <= ub.channels.len() { (ua, b) } else { (ub, a) };
        small.channels.iter().any(|c| self.channels.get(c).is_some_and(|chan| chan.is_member(other)))
    }
}
