//! What a user changes about itself (away, real name, its own modes, +o)
//! and what an operator does to others (WALLOPS, KILL), as the directory
//! applies them.
//!
//! Each checks in event order what the session could only guess (the
//! user may have given up +o since its line) and says what changed; who
//! hears of it is `render`'s to decide.

use crate::chat::change::{Change, Refusal};
use crate::chat::{ConnId, Nick, UserMode};

use super::State;

impl State {
    pub(super) fn set_away<'e>(
        &mut self,
        changes: &mut Vec<Change<'e>>,
        conn: ConnId,
        message: Option<&str>,
    ) {
        let Some(user) = self.users.get_mut(&conn) else { return };
        user.away = message.map(str::to_string);
        changes.push(Change::AwayChanged { conn, away: message.is_some() });
    }

    pub(super) fn set_user_mode<'e>(
        &mut self,
        changes: &mut Vec<Change<'e>>,
        conn: ConnId,
        mode: UserMode,
        on: bool,
    ) {
        let Some(user) = self.users.get_mut(&conn) else { return };
        let flag = user.mode_flag(mode);
        if *flag != on {
            *flag = on;
            changes.push(Change::UserModeChanged { conn, mode, on });
        }
    }

    pub(super) fn set_realname<'e>(&mut self, changes: &mut Vec<Change<'e>>, conn: ConnId, realname: &str) {
        let Some(user) = self.users.get_mut(&conn) else { return };
        user.realname = realname.to_string();
        changes.push(Change::RealnameChanged { conn });
    }

    pub(super) fn set_oper<'e>(&mut self, changes: &mut Vec<Change<'e>>, conn: ConnId, on: bool) {
        let Some(user) = self.users.get_mut(&conn) else { return };
        if user.oper != on {
            user.oper = on;
            changes.push(Change::OperChanged { conn, on });
        }
    }

    /// Operators only, checked again here: a user may have given up +o
    /// between their line and this event.
    pub(super) fn wallops<'e>(&mut self, changes: &mut Vec<Change<'e>>, conn: ConnId, text: &'e str) {
        if !self.users.get(&conn).is_some_and(|u| u.oper) {
            changes.push(Change::Refused {
                conn,
                refusal: Refusal::NoPrivileges,
                subject: "WALLOPS".into(),
                also: None,
            });
            return;
        }
        let mut recipients: Vec<ConnId> =
            self.users.iter().filter(|(_, u)| u.wallops).map(|(c, _)| *c).collect();
        recipients.sort();
        changes.push(Change::Wallops { conn, text, recipients });
    }

    pub(super) fn kill<'e>(
        &mut self,
        changes: &mut Vec<Change<'e>>,
        conn: ConnId,
        target: &Nick,
        words: &'e str,
    ) {
        let Some(killer) = self.users.get(&conn) else { return };
        if !killer.oper {
            changes.push(Change::Refused {
                conn,
                refusal: Refusal::NoPrivileges,
                subject: "KILL".into(),
                also: None,
            });
            return;
        }
        let Some(&victim) = self.nicks.get(target) else {
            let subject = target.as_str().to_string().into();
            changes.push(Change::Refused { conn, refusal: Refusal::NoSuchNick, subject, also: None });
            return;
        };
        let by = killer.nick.as_str().to_string();
        let said = killed_reason(&by, words);
        let user = &self.users[&victim];
        let (protocol, host) = (user.protocol, user.host.clone());
        changes.push(Change::Killed { target: victim, by, words, protocol, host });
        self.quit(changes, victim, said.into());
    }
}

/// What a killed user's neighbours and closing line say: `Killed (by (words))`.
pub fn killed_reason(by: &str, words: &str) -> String {
    format!("Killed ({by} ({words}))")
}
