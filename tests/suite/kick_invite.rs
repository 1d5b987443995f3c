//! KICK and INVITE over TCP, with their error numerics, and what plain
//! (`nc`) clients see of channel management and may do of it, under every
//! model.

use crate::common::*;

fn kick_removes_a_member_and_everyone_hears(model: Model) {
    let server = Server::start(model);
    let (mut alice, mut bob, mut carol) = three_in_room(&server);
    alice.send("KICK #room bob :behave");
    for c in [&mut alice, &mut bob, &mut carol] {
        c.expect_line(":alice!alice@127.0.0.1 KICK #room bob :behave");
    }
    bob.send("PRIVMSG #room :still here?");
    bob.expect_numeric("404");
    alice.send("NAMES #room");
    assert!(!alice.expect_numeric("353").contains("bob"));
    // Without a reason, the kicker's nick is the reason.
    alice.send("KICK #room carol");
    carol.expect_line(":alice!alice@127.0.0.1 KICK #room carol :alice");
}

fn kick_names_several_nicks(model: Model) {
    let server = Server::start(model);
    let (mut alice, mut bob, mut carol) = three_in_room(&server);
    alice.send("KICK #room bob,carol :both");
    alice.expect_line(":alice!alice@127.0.0.1 KICK #room bob :both");
    alice.expect_line(":alice!alice@127.0.0.1 KICK #room carol :both");
    bob.expect_line("KICK #room bob :both");
    carol.expect_line("KICK #room carol :both");
}

fn kick_errors(model: Model) {
    let server = Server::start(model);
    let (mut alice, mut bob, mut carol) = three_in_room(&server);
    let mut dave = Client::register(&server, "dave");
    bob.send("KICK #room carol");
    assert!(bob.expect_numeric("482").contains(" #room :"));
    alice.send("KICK #room dave");
    assert!(alice.expect_numeric("441").contains(" dave #room :"));
    alice.send("KICK #room ghost");
    assert!(alice.expect_numeric("401").contains(" ghost :"));
    alice.send("KICK #nowhere bob");
    alice.expect_numeric("403");
    dave.send("KICK #room bob");
    dave.expect_numeric("442");
    alice.send("KICK #room");
    alice.expect_numeric("461");
    let seen = carol.sync();
    assert!(!seen.iter().any(|l| l.contains("KICK")), "{seen:?}");
}

fn invite_lets_the_invitee_in_once(model: Model) {
    let server = Server::start(model);
    let (mut alice, _bob, _carol) = three_in_room(&server);
    let mut dave = Client::register(&server, "dave");
    alice.send("MODE #room +i");
    alice.expect_line("MODE #room +i");
    alice.send("INVITE dave #room");
    assert!(alice.expect_numeric("341").ends_with(" alice dave #room"));
    dave.expect_line(":alice!alice@127.0.0.1 INVITE dave #room");
    dave.send("INVITE");
    assert!(dave.expect_numeric("336").ends_with(" dave #room"));
    dave.expect_numeric("337");
    dave.join("#room");
    dave.send("INVITE");
    dave.expect_numeric("337");
    dave.send("PART #room");
    dave.expect_line("PART #room");
    // The invite was spent by joining.
    dave.send("JOIN #room");
    dave.expect_numeric("473");
}

fn an_invite_lets_its_holder_into_a_full_channel_once(model: Model) {
    let server = Server::start(model);
    let (mut alice, mut bob, _carol) = three_in_room(&server);
    let mut dave = Client::register(&server, "dave");
    let mut eve = Client::register(&server, "eve");
    alice.send("MODE #room +l 3");
    bob.expect_line("MODE #room +l 3");
    dave.send("JOIN #room");
    assert!(dave.expect_numeric("471").contains(" dave #room :"));
    // Any member may invite to a channel that is not +i, and the invite
    // is for dave alone.
    bob.send("INVITE dave #room");
    dave.expect_line(":bob!bob@127.0.0.1 INVITE dave #room");
    eve.send("JOIN #room");
    eve.expect_numeric("471");
    dave.join("#room");
    alice.expect_line(":dave!dave@127.0.0.1 JOIN #room");
    // Spent by joining: once out, dave finds the channel as full as anyone.
    dave.send("PART #room");
    alice.expect_line(":dave!dave@127.0.0.1 PART #room");
    dave.send("JOIN #room");
    dave.expect_numeric("471");
    // An invite is not a key.
    alice.send("MODE #room +k sesame");
    bob.expect_line("MODE #room +k sesame");
    alice.send("INVITE eve #room");
    eve.expect_line(":alice!alice@127.0.0.1 INVITE eve #room");
    eve.send("JOIN #room");
    eve.expect_numeric("475");
}

fn invite_errors(model: Model) {
    let server = Server::start(model);
    let (mut alice, mut bob, _carol) = three_in_room(&server);
    let mut dave = Client::register(&server, "dave");
    alice.send("INVITE bob #room");
    assert!(alice.expect_numeric("443").contains(" bob #room :"));
    dave.send("INVITE bob #room");
    dave.expect_numeric("442");
    alice.send("INVITE ghost #room");
    alice.expect_numeric("401");
    alice.send("INVITE dave #nowhere");
    alice.expect_numeric("403");
    alice.send("INVITE dave");
    alice.expect_numeric("461");
    alice.send("MODE #room +i");
    bob.expect_line("MODE #room +i");
    bob.send("INVITE dave #room");
    bob.expect_numeric("482");
    let seen = dave.sync();
    assert!(!seen.iter().any(|l| l.contains("INVITE")), "{seen:?}");
}

fn plain_clients_see_and_use_channel_management(model: Model) {
    let server = Server::start(model);
    let (mut pat, mut irc) = plain_operator_and_irc_in_lobby(&server);
    pat.send("/mode +m");
    irc.expect_line(":pat!pat@127.0.0.1 MODE #lobby +m");
    pat.expect_line("*** pat sets mode +m on #lobby");
    pat.send("/mode");
    pat.expect_line("*** #lobby modes: +mn");
    pat.send("/mode +Z");
    pat.expect_line("! Unknown mode letter: Z");
    pat.send("/kick ghost");
    pat.expect_line("! No such nick/channel: ghost");
    irc.send("MODE #lobby +v pat");
    irc.expect_numeric("482");
    irc.send("PRIVMSG #lobby :can I talk?");
    irc.expect_numeric("404");
    pat.send("/invite ircy #elsewhere");
    pat.expect_line("! No such channel: #elsewhere");
    pat.send("/kick ircy quiet please");
    irc.expect_line(":pat!pat@127.0.0.1 KICK #lobby ircy :quiet please");
    pat.expect_line("*** pat kicked ircy from #lobby (quiet please)");
    pat.send("/invite ircy");
    pat.expect_line("*** You invited ircy to #lobby");
    irc.expect_line(":pat!pat@127.0.0.1 INVITE ircy #lobby");
    irc.send("MODE #lobby +o pat");
    irc.expect_numeric("482");
    // An IRC operator's actions read as sentences to a plain member.
    irc.join("#lobby");
    pat.send("/mode +o ircy");
    irc.expect_line("MODE #lobby +o ircy");
    irc.send("KICK #lobby pat :your turn");
    pat.expect_line("*** ircy kicked you from #lobby (your turn)");
    irc.send("INVITE pat #lobby");
    pat.expect_line("*** ircy invites you to #lobby: /join #lobby to accept");
}

all_models!(
    kick_removes_a_member_and_everyone_hears,
    kick_names_several_nicks,
    kick_errors,
    invite_lets_the_invitee_in_once,
    an_invite_lets_its_holder_into_a_full_channel_once,
    invite_errors,
    plain_clients_see_and_use_channel_management,
);
