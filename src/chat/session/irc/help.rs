//! The words HELP answers with: a line of syntax and a sentence or two
//! per command, and an overview naming every command there is.
//!
//! Kept apart from the handlers so that the table reads as a page. A
//! command added to `COMMANDS` without an entry here still gets a short
//! answer (it exists), never "no help available".

use super::COMMANDS;

/// Syntax first, then what it does; one entry per command.
const TOPICS: &[(&str, &[&str])] = &[
    ("ADMIN", &["ADMIN [<server>]", "Who runs this server and how to reach them."]),
    (
        "AWAY",
        &[
            "AWAY [:<message>]",
            "Marks you away with a message (others see it in WHOIS, WHO and when",
            "they message you); AWAY alone marks you back.",
        ],
    ),
    ("CAP", &["CAP LS|LIST|REQ|END ...", "IRCv3 capability negotiation."]),
    ("HELP", &["HELP [<command>]", "Help on a command; HELP alone lists them. HELPOP is the same."]),
    ("HELPOP", &["HELPOP [<command>]", "The same as HELP."]),
    ("INFO", &["INFO [<server>]", "What this server is."]),
    (
        "INVITE",
        &[
            "INVITE [<nick> <#channel>]",
            "Invites a user to a channel (operators only when it is +i);",
            "INVITE alone lists the channels you are invited to.",
        ],
    ),
    ("ISON", &["ISON <nick> [<nick> ...]", "Which of these nicks are online."]),
    (
        "JOIN",
        &[
            "JOIN <#channel>[,<#channel>...] [<key>[,<key>...]]",
            "Joins channels, creating any that do not exist; JOIN 0 leaves them all.",
        ],
    ),
    (
        "KICK",
        &[
            "KICK <#channel> <nick>[,<nick>...] [:<reason>]",
            "Removes users from a channel (channel operators only).",
        ],
    ),
    ("LINKS", &["LINKS [[<server>] <mask>]", "The servers of this network: this one."]),
    (
        "LIST",
        &[
            "LIST [<mask>[,...]] [<condition>[,...]]",
            "Lists channels with their member counts and topics. Conditions:",
            ">n or <n members, !mask to leave out, C>n or C<n minutes since created,",
            "T>n or T<n minutes since the topic was set.",
        ],
    ),
    ("LUSERS", &["LUSERS", "How many users and channels there are."]),
    (
        "MODE",
        &[
            "MODE <#channel> [<modes> [<parameters>]] | MODE <nick> [<modes>]",
            "Shows or changes channel modes (+Cimnst, +k key, +l limit, +o/+v nick,",
            "+b/+e/+I masks) or your user modes (+i invisible, +w wallops, +B bot).",
        ],
    ),
    ("MOTD", &["MOTD", "The message of the day."]),
    (
        "NAMES",
        &[
            "NAMES [<#channel>[,<#channel>...]]",
            "Who is in a channel; NAMES alone covers the channels you are in.",
        ],
    ),
    ("NICK", &["NICK <nick>", "Changes your nick."]),
    (
        "NOTICE",
        &[
            "NOTICE <target>[,<target>...] :<text>",
            "Like PRIVMSG, but never answered automatically, errors included.",
        ],
    ),
    ("PART", &["PART <#channel>[,<#channel>...] [:<reason>]", "Leaves channels."]),
    ("PASS", &["PASS <password>", "The server password, before NICK and USER."]),
    ("PING", &["PING <token>", "The server answers PONG with the token."]),
    ("PONG", &["PONG <token>", "The answer to the server's PING."]),
    ("PRIVMSG", &["PRIVMSG <target>[,<target>...] :<text>", "Sends text to a channel or a nick."]),
    ("QUIT", &["QUIT [:<reason>]", "Disconnects."]),
    ("SETNAME", &["SETNAME :<real name>", "Changes your real name."]),
    ("TIME", &["TIME [<server>]", "The server's date and time."]),
    (
        "TOPIC",
        &[
            "TOPIC <#channel> [:<topic>]",
            "Shows a channel's topic, or sets it (operators only when it is +t);",
            "an empty topic clears it.",
        ],
    ),
    ("USER", &["USER <user> 0 * :<real name>", "Your user name and real name, when registering."]),
    (
        "USERHOST",
        &["USERHOST <nick> [<nick> ...]", "user@host of up to five nicks, with - if they are away."],
    ),
    ("VERSION", &["VERSION [<server>]", "The server's version and what it supports (005)."]),
    (
        "WHO",
        &[
            "WHO <#channel|mask> [o][%<fields>[,<token>]]",
            "Users in a channel or matching a mask (by nick, user, host, real name",
            "or nick!user@host). %fields asks for WHOX replies (354): t c u i h s n f d l a o r.",
        ],
    ),
    (
        "WHOIS",
        &[
            "WHOIS [<server>] <nick>[,<nick>...]",
            "Who a user is: name, channels, server, away message, idle time, signon time.",
        ],
    ),
    ("WHOWAS", &["WHOWAS <nick>[,<nick>...] [<count>]", "Who used a nick lately, the most recent first."]),
];

/// HELP's lines on `subject` (upper case; `*` for the overview), if it is
/// a command.
pub(super) fn text(subject: &str) -> Option<Vec<String>> {
    if subject == "*" {
        let mut names: Vec<&str> = COMMANDS.iter().map(|(name, _)| *name).collect();
        names.sort_unstable();
        let mut lines = vec!["chatter understands these commands:".to_string()];
        for chunk in names.chunks(10) {
            lines.push(chunk.join(" "));
        }
        lines.push("HELP <command> tells more about one.".to_string());
        return Some(lines);
    }
    if let Some((_, lines)) = TOPICS.iter().find(|(name, _)| *name == subject) {
        return Some(lines.iter().map(|l| l.to_string()).collect());
    }
    COMMANDS.iter().any(|(name, _)| *name == subject).then(|| {
        vec![
            subject.to_string(),
            "A command this server understands (see the Modern IRC documentation).".into(),
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_topic_is_a_command_listed_once_and_short() {
        for (i, (name, lines)) in TOPICS.iter().enumerate() {
            assert!(COMMANDS.iter().any(|(command, _)| command == name), "help for {name}, no such command");
            assert!(TOPICS[..i].iter().all(|(earlier, _)| earlier != name), "{name} twice");
            assert!(lines.len() >= 2 && lines.iter().all(|l| l.len() <= 400), "{name}");
        }
    }

    #[test]
    fn the_overview_names_every_command() {
        let overview = text("*").unwrap().join(" ");
        for (name, _) in COMMANDS {
            assert!(overview.split(' ').any(|w| w == *name), "{name} missing");
        }
        assert!(text("NOSUCHTHING").is_none());
    }
}
