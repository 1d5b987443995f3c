//! Building the lines chatter sends: IRC numerics and messages, and the
//! readable lines plain clients get instead.
//!
//! Everything here appends to a caller's `Vec<u8>` so that a burst of replies
//! (the welcome burst, NAMES) costs one buffer, and fan-out can build a line
//! once and share it among recipients.

use crate::chat::channel::{KEY_LEN, KICK_TARGETS, MAX_LIST_ENTRIES, MAX_MODE_PARAMS, Status};
use crate::chat::names::{AWAY_LEN, CHANNEL_LEN, MAX_TARGETS, NICK_LEN, REALNAME_LEN, TOPIC_LEN, USER_LEN};
use crate::chat::printable::push_printable;
use crate::chat::state::User;
use crate::chat::{Protocol, ServerInfo, UserMode};
use crate::wire::message::write_line;

pub const RPL_WELCOME: u16 = 1;
pub const RPL_YOURHOST: u16 = 2;
pub const RPL_CREATED: u16 = 3;
pub const RPL_MYINFO: u16 = 4;
pub const RPL_ISUPPORT: u16 = 5;
pub const RPL_UMODEIS: u16 = 221;
pub const RPL_ADMINME: u16 = 256;
pub const RPL_ADMINLOC1: u16 = 257;
pub const RPL_ADMINLOC2: u16 = 258;
pub const RPL_ADMINEMAIL: u16 = 259;
pub const RPL_AWAY: u16 = 301;
pub const RPL_USERHOST: u16 = 302;
pub const RPL_ISON: u16 = 303;
pub const RPL_UNAWAY: u16 = 305;
pub const RPL_NOWAWAY: u16 = 306;
pub const RPL_LUSERCLIENT: u16 = 251;
pub const RPL_LUSEROP: u16 = 252;
pub const RPL_LUSERCHANNELS: u16 = 254;
pub const RPL_LUSERME: u16 = 255;
pub const RPL_LOCALUSERS: u16 = 265;
pub const RPL_GLOBALUSERS: u16 = 266;
pub const RPL_WHOISUSER: u16 = 311;
pub const RPL_WHOISSERVER: u16 = 312;
pub const RPL_WHOWASUSER: u16 = 314;
pub const RPL_ENDOFWHO: u16 = 315;
pub const RPL_WHOISIDLE: u16 = 317;
pub const RPL_ENDOFWHOIS: u16 = 318;
pub const RPL_WHOISCHANNELS: u16 = 319;
pub const RPL_LISTSTART: u16 = 321;
pub const RPL_LIST: u16 = 322;
pub const RPL_LISTEND: u16 = 323;
pub const RPL_CHANNELMODEIS: u16 = 324;
pub const RPL_CREATIONTIME: u16 = 329;
pub const RPL_NOTOPIC: u16 = 331;
pub const RPL_TOPIC: u16 = 332;
pub const RPL_TOPICWHOTIME: u16 = 333;
pub const RPL_INVITELIST: u16 = 336;
pub const RPL_ENDOFINVITELIST: u16 = 337;
pub const RPL_INVITING: u16 = 341;
pub const RPL_INVEXLIST: u16 = 346;
pub const RPL_ENDOFINVEXLIST: u16 = 347;
pub const RPL_EXCEPTLIST: u16 = 348;
pub const RPL_ENDOFEXCEPTLIST: u16 = 349;
pub const RPL_VERSION: u16 = 351;
pub const RPL_WHOREPLY: u16 = 352;
pub const RPL_WHOSPCRPL: u16 = 354;
pub const RPL_NAMREPLY: u16 = 353;
pub const RPL_LINKS: u16 = 364;
pub const RPL_ENDOFLINKS: u16 = 365;
pub const RPL_ENDOFNAMES: u16 = 366;
pub const RPL_BANLIST: u16 = 367;
pub const RPL_ENDOFBANLIST: u16 = 368;
pub const RPL_ENDOFWHOWAS: u16 = 369;
pub const RPL_INFO: u16 = 371;
pub const RPL_ENDOFINFO: u16 = 374;
pub const RPL_MOTD: u16 = 372;
pub const RPL_MOTDSTART: u16 = 375;
pub const RPL_ENDOFMOTD: u16 = 376;
pub const RPL_REHASHING: u16 = 382;
pub const RPL_TIME: u16 = 391;
pub const ERR_NOSUCHNICK: u16 = 401;
pub const ERR_NOSUCHSERVER: u16 = 402;
pub const ERR_NOSUCHCHANNEL: u16 = 403;
pub const ERR_CANNOTSENDTOCHAN: u16 = 404;
pub const ERR_TOOMANYCHANNELS: u16 = 405;
pub const ERR_WASNOSUCHNICK: u16 = 406;
pub const ERR_TOOMANYTARGETS: u16 = 407;
pub const ERR_NORECIPIENT: u16 = 411;
pub const ERR_NOTEXTTOSEND: u16 = 412;
pub const ERR_INPUTTOOLONG: u16 = 417;
pub const ERR_UNKNOWNCOMMAND: u16 = 421;
pub const ERR_NOMOTD: u16 = 422;
pub const ERR_NONICKNAMEGIVEN: u16 = 431;
pub const ERR_ERRONEUSNICKNAME: u16 = 432;
pub const ERR_NICKNAMEINUSE: u16 = 433;
pub const ERR_UNAVAILRESOURCE: u16 = 437;
pub const ERR_USERNOTINCHANNEL: u16 = 441;
pub const ERR_NOTONCHANNEL: u16 = 442;
pub const ERR_USERONCHANNEL: u16 = 443;
pub const ERR_NOTREGISTERED: u16 = 451;
pub const ERR_NEEDMOREPARAMS: u16 = 461;
pub const ERR_ALREADYREGISTERED: u16 = 462;
pub const ERR_PASSWDMISMATCH: u16 = 464;
pub const RPL_YOUREOPER: u16 = 381;
pub const RPL_MONONLINE: u16 = 730;
pub const RPL_MONOFFLINE: u16 = 731;
pub const RPL_MONLIST: u16 = 732;
pub const RPL_ENDOFMONLIST: u16 = 733;
pub const ERR_MONLISTFULL: u16 = 734;
pub const RPL_WHOISOPERATOR: u16 = 313;
pub const RPL_WHOISBOT: u16 = 335;
pub const ERR_NOPRIVILEGES: u16 = 481;
pub const ERR_NOOPERHOST: u16 = 491;
pub const ERR_INVALIDUSERNAME: u16 = 468;
pub const ERR_CHANNELISFULL: u16 = 471;
pub const ERR_UNKNOWNMODE: u16 = 472;
pub const ERR_INVITEONLYCHAN: u16 = 473;
pub const ERR_BANNEDFROMCHAN: u16 = 474;
pub const ERR_BADCHANNELKEY: u16 = 475;
pub const ERR_BANLISTFULL: u16 = 478;
pub const ERR_CHANOPRIVSNEEDED: u16 = 482;
pub const ERR_UMODEUNKNOWNFLAG: u16 = 501;
pub const ERR_USERSDONTMATCH: u16 = 502;
pub const ERR_INVALIDCAPCMD: u16 = 410;
pub const ERR_INVALIDMODEPARAM: u16 = 696;
pub const ERR_HELPNOTFOUND: u16 = 524;
pub const RPL_HELPSTART: u16 = 704;
pub const RPL_HELPTXT: u16 = 705;
pub const RPL_ENDOFHELP: u16 = 706;

/// `:server CODE client middle... :text`
pub fn numeric(out: &mut Vec<u8>, server: &str, code: u16, client: &str, middle: &[&str], text: &str) {
    let code = format!("{code:03}");
    let mut params = Vec::with_capacity(middle.len() + 1);
    params.push(client);
    params.extend_from_slice(middle);
    write_line(out, Some(server), &code, &params, Some(text));
}

/// Room for the items of a list reply on one line, leaving the source,
/// numeric, target and middle params well within 512 bytes.
pub const LIST_TEXT_BYTES: usize = 400;

/// A numeric whose text is a space-separated list (NAMES, ISON, WHOIS
/// channels), split over as many lines as it takes so that no item is cut.
/// Nothing is written for an empty list.
pub fn numeric_list<'a>(
    out: &mut Vec<u8>,
    server: &str,
    code: u16,
    client: &str,
    middle: &[&str],
    items: impl IntoIterator<Item = &'a str>,
) {
    numeric_joined(out, server, code, client, middle, items, ' ');
}

/// [`numeric_list`] with another separator (MONITOR's lists use commas).
pub fn numeric_joined<'a>(
    out: &mut Vec<u8>,
    server: &str,
    code: u16,
    client: &str,
    middle: &[&str],
    items: impl IntoIterator<Item = &'a str>,
    separator: char,
) {
    let mut text = String::new();
    for item in items {
        if !text.is_empty() && text.len() + 1 + item.len() > LIST_TEXT_BYTES {
            numeric(out, server, code, client, middle, &text);
            text.clear();
        }
        if !text.is_empty() {
            text.push(separator);
        }
        text.push_str(item);
    }
    if !text.is_empty() {
        numeric(out, server, code, client, middle, &text);
    }
}

/// One RPL_WHOREPLY: flags H(ere) or G(one, away), then the member's
/// channel prefix (`@`, `+` or none); the text is the hop count and real
/// name.
pub fn who_line(out: &mut Vec<u8>, server: &str, client: &str, channel: &str, user: &User, prefix: &str) {
    let text = format!("0 {}", user.realname);
    let flags = who_flags(user, prefix);
    numeric(
        out,
        server,
        RPL_WHOREPLY,
        client,
        &[channel, &user.user, &user.host, server, user.nick.as_str(), &flags],
        &text,
    );
}

/// A numeric whose last parameter is not free text (e.g. 004, 333), so it is
/// written without the trailing ':' the way clients expect it.
pub fn numeric_bare(out: &mut Vec<u8>, server: &str, code: u16, client: &str, params: &[&str]) {
    let code = format!("{code:03}");
    let mut all = Vec::with_capacity(params.len() + 1);
    all.push(client);
    all.extend_from_slice(params);
    write_line(out, Some(server), &code, &all, None);
}

/// One readable line for a plain client: control characters are shown, not
/// obeyed, so no name or message can forge a line or drive the terminal
/// (see `printable`).
pub fn plain(out: &mut Vec<u8>, text: &str) {
    push_printable(out, text);
}

/// An error as the client's protocol wants it: a numeric for IRC, or
/// `! text: subject` for plain clients.
pub fn error(
    out: &mut Vec<u8>,
    protocol: Protocol,
    server: &str,
    code: u16,
    client: &str,
    subject: Option<&str>,
    text: &str,
) {
    match protocol {
        Protocol::Irc => numeric(out, server, code, client, subject.as_slice(), text),
        Protocol::Plain => match subject {
            Some(subject) => plain(out, &format!("! {text}: {subject}")),
            None => plain(out, &format!("! {text}")),
        },
    }
}

/// The 005 lines: the tokens, at most 12 to a line (a message has at most
/// 15 parameters, and the client's nick and the closing text are two).
pub fn isupport(out: &mut Vec<u8>, info: &ServerInfo, client: &str) {
    let tokens = isupport_tokens(info);
    for chunk in tokens.chunks(12) {
        let middle: Vec<&str> = chunk.iter().map(String::as_str).collect();
        numeric(out, &info.name, RPL_ISUPPORT, client, &middle, "are supported by this server");
    }
}

/// An IRCv3 standard reply, `FAIL <command> <code> [context...] :text`:
/// how newer commands (SETNAME, UTF8ONLY's checks) say no, where no
/// numeric exists for it.
pub fn fail(out: &mut Vec<u8>, server: &str, command: &str, code: &str, context: &[&str], text: &str) {
    let mut middle = vec![command, code];
    middle.extend_from_slice(context);
    write_line(out, Some(server), "FAIL", &middle, Some(text));
}

/// The 005 tokens: what a client may rely on from this server.
fn isupport_tokens(info: &ServerInfo) -> Vec<String> {
    vec![
        "CASEMAPPING=rfc1459".into(),
        "CHANTYPES=#".into(),
        "CHANMODES=beI,k,l,Cimnst".into(),
        "PREFIX=(ov)@+".into(),
        format!("NICKLEN={NICK_LEN}"),
        format!("CHANNELLEN={CHANNEL_LEN}"),
        format!("TOPICLEN={TOPIC_LEN}"),
        format!("NETWORK={}", info.network),
        format!("CHANLIMIT=#:{}", info.channels_per_client),
        format!("MAXTARGETS={MAX_TARGETS}"),
        format!("USERLEN={USER_LEN}"),
        format!("AWAYLEN={AWAY_LEN}"),
        "EXCEPTS=e".into(),
        "INVEX=I".into(),
        format!("MODES={MAX_MODE_PARAMS}"),
        format!("MAXLIST=b:{MAX_LIST_ENTRIES},e:{MAX_LIST_ENTRIES},I:{MAX_LIST_ENTRIES}"),
        format!("KEYLEN={KEY_LEN}"),
        format!("TARGMAX=KICK:{KICK_TARGETS},NAMES:{MAX_TARGETS},NOTICE:{MAX_TARGETS},PRIVMSG:{MAX_TARGETS}"),
        "WHOX".into(),
        format!("ELIST={}", crate::chat::elist::ELIST),
        "SAFELIST".into(),
        format!("STATUSMSG={}", Status::SYMBOLS),
        // No line that is not UTF-8 is acted on or relayed (see `session`).
        "UTF8ONLY".into(),
        format!("MONITOR={}", crate::chat::state::monitor::MONITOR_LIMIT),
        format!("BOT={}", UserMode::Bot.letter()),
        format!("NAMELEN={REALNAME_LEN}"),
    ]
}

/// WHO's flags for `user`: here (`H`) or gone (`G`), `*` for an IRC
/// operator, `B` for a bot (bot mode's `BOT` letter), then the channel
/// prefix.
pub fn who_flags(user: &User, prefix: &str) -> String {
    let here = if user.away.is_some() { "G" } else { "H" };
    let oper = if user.oper { "*" } else { "" };
    let bot = if user.bot { "B" } else { "" };
    format!("{here}{oper}{bot}{prefix}")
}

/// `ERROR :Closing Link: host (reason)`, the last line before a disconnect;
/// plain clients get the same reason in words. So does a connection that
/// never said what it speaks: IRC clients speak first, so a silent one is
/// most likely a person at `nc` waiting to be told something.
pub fn closing_link(out: &mut Vec<u8>, protocol: Option<Protocol>, host: &str, reason: &str) {
    match protocol {
        Some(Protocol::Irc) => {
            write_line(out, None, "ERROR", &[], Some(&format!("Closing Link: {host} ({reason})")))
        }
        Some(Protocol::Plain) | None => plain(out, &format!("*** Disconnected: {reason}")),
    }
}
