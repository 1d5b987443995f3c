// chatter's chat page, third of three scripts: the chat itself, between
// the IRC client (irc.js) and what the page shows (view.js). What each
// thing the server says does to the rooms, the conversations and their
// members; what the user types (messages, /commands, input history and
// nick completion); the name form; and starting the page.
//
// It is the last of the three classic scripts index.html loads in order
// (see irc.js for why the page is shaped so): it defines the two
// functions irc.js calls into, heard and offline, and it starts the page.
'use strict';

let quitting = false;
let firstRooms = []; // rooms from the form, joined after the first registration
let switchTo = null; // key of a room the user asked to join: shown once joined

// ---- what the server says ------------------------------------------------

// A line from the server that irc.js leaves to the page (see onLine).
function heard(m) {
  const p = m.params;
  const me = fold(m.nick) === fold(nick) && !m.fromServer;
  switch (m.command) {
    case '001':
      remember();
      $('me').textContent = 'you are ' + nick;
      $('login').hidden = true;
      $('app').hidden = false;
      setStatus('connected', '');
      if (!current) show(serverBuffer());
      rejoin();
      break;
    case '433': case '432': case '436':
      return nickRefused(m);
    case 'JOIN': {
      const b = buffer(p[0], 'room');
      if (me) {
        b.joined = true;
        b.wanted = true;
        b.members.clear();
        if (switchTo === b.key || current === null || current.kind === 'server') {
          switchTo = null;
          show(b);
        } else if (b === current) showHeading();
      }
      addMember(b.members, m.nick);
      notice(b, 'join', `→ ${m.nick} joined ${b.name}`, m.tags);
      membersChanged(b);
      return;
    }
    case 'PART': {
      const b = buffers.get(fold(p[0]));
      if (!b) return;
      if (me) return removeBuffer(b);
      b.members.delete(fold(m.nick));
      notice(b, 'part', `← ${m.nick} left ${b.name}` + (p[1] ? ` (${p[1]})` : ''), m.tags);
      membersChanged(b);
      return;
    }
    case 'KICK': {
      const b = buffers.get(fold(p[0]));
      if (!b) return;
      const target = p[1];
      b.members.delete(fold(target));
      if (fold(target) === fold(nick)) {
        b.joined = false;
        b.wanted = false;
        b.members.clear();
        if (b === current) showHeading();
      }
      notice(b, 'kick', `${target} was kicked from ${b.name} by ${m.nick}` + (p[2] ? ` (${p[2]})` : ''), m.tags);
      membersChanged(b);
      return;
    }
    case 'QUIT':
      for (const b of roomsWith(m.nick)) {
        b.members.delete(fold(m.nick));
        notice(b, 'quit', `← ${m.nick} quit` + (p[0] ? ` (${p[0]})` : ''), m.tags);
        membersChanged(b);
      }
      if (buffers.has(fold(m.nick))) notice(buffers.get(fold(m.nick)), 'quit', `← ${m.nick} quit` + (p[0] ? ` (${p[0]})` : ''), m.tags);
      return;
    case 'NICK': {
      const to = p[0];
      const text = me ? `you are now known as ${to}` : `${m.nick} is now known as ${to}`;
      for (const b of roomsWith(m.nick)) {
        const old = b.members.get(fold(m.nick));
        b.members.delete(fold(m.nick));
        b.members.set(fold(to), { nick: to, modes: old.modes });
        notice(b, 'nick', text, m.tags);
        membersChanged(b);
      }
      const q = buffers.get(fold(m.nick));
      if (q && q.kind === 'query') {
        notice(q, 'nick', text, m.tags);
        renameBuffer(q, to);
      }
      if (me) {
        nick = to;
        remember();
        $('me').textContent = 'you are ' + nick;
      }
      return;
    }
    case 'TOPIC': {
      const b = buffer(p[0], 'room');
      b.topic = strip(p[1] || '');
      notice(b, 'topic', p[1] ? `${m.nick} set the topic: ${p[1]}` : `${m.nick} cleared the topic`, m.tags);
      if (b === current) showHeading();
      return;
    }
    case '332': {
      const b = buffers.get(fold(p[1]));
      if (!b || b.kind !== 'room') break; // a room we are not in: shown as a reply
      b.topic = strip(p[2] || '');
      notice(b, 'topic', `topic: ${p[2]}`, m.tags);
      if (b === current) showHeading();
      return;
    }
    case '331': case '333': case '329':
      return;
    case '353': {
      const b = buffers.get(fold(p[2]));
      if (!b || b.kind !== 'room') break; // NAMES of a room we are not in: shown as a reply
      if (!b.names) b.names = new Map();
      for (const entry of (p[3] || '').split(' ')) if (entry) addMember(b.names, entry);
      return;
    }
    case '366': {
      const b = buffers.get(fold(p[1]));
      if (b && b.names) {
        b.members = b.names;
        b.names = null;
        membersChanged(b);
      }
      return;
    }
    case 'MODE':
      return onMode(m);
    case 'INVITE':
      notice(current || serverBuffer(), 'info', `${m.nick} invites you to ${p[1]}: /join ${p[1]} to accept`, m.tags);
      return;
    case 'WALLOPS':
      notice(serverBuffer(), 'notice', `wallops from ${m.nick}: ${p[0] || ''}`, m.tags);
      return;
    case 'PRIVMSG': case 'NOTICE':
      return onMessage(m, me);
    case 'ERROR':
      errorLine(serverBuffer(), 'the server closed the connection: ' + (p[0] || ''));
      if (current && current.kind !== 'server') errorLine(current, 'the server closed the connection: ' + (p[0] || ''));
      return;
    case 'FAIL': case 'WARN': case 'NOTE': {
      const [command, code, ...rest] = p;
      const text = `${rest.pop() || ''} (${[command, code, ...rest].join(' ')})`;
      if (m.command === 'NOTE') notice(current || serverBuffer(), 'info', text, m.tags);
      else errorLine(current, (m.command === 'WARN' ? 'warning: ' : '') + text);
      return;
    }
  }
  if (/^\d{3}$/.test(m.command)) onNumeric(m);
}

// A nickname refused, other than while irc.js renames itself after a
// reconnection: said in the room on screen once in, else on the form.
function nickRefused(m) {
  const wanted = m.params[1] || '';
  const why = m.command === '433' ? `the nickname ${wanted} is already in use` : `${wanted}: ${m.params[2] || 'not a valid nickname'}`;
  if (registered) return errorLine(current, why);
  $('login-error').textContent = why + '; pick another.';
  $('login').hidden = false;
  $('app').hidden = true;
  $('nick-input').select();
  setStatus('idle', '');
}

function onMode(m) {
  const [target, modes = '', ...args] = m.params;
  const b = buffers.get(fold(target));
  if (!b || b.kind !== 'room') {
    notice(serverBuffer(), 'mode', `${m.nick} sets mode ${modes} ${args.join(' ')} on ${target}`.replace(/ +/g, ' '), m.tags);
    return;
  }
  let adding = true;
  let i = 0;
  for (const c of modes) {
    if (c === '+' || c === '-') {
      adding = c === '+';
      continue;
    }
    const pi = isupport.modes.indexOf(c);
    const [listModes, always, onSet] = isupport.chanmodes;
    const takes = pi >= 0 || listModes.includes(c) || always.includes(c) || (adding && onSet.includes(c));
    const arg = takes ? args[i++] : undefined;
    const member = pi >= 0 && arg !== undefined && b.members.get(fold(arg));
    if (member) {
      const ch = isupport.chars[pi];
      const set = new Set(member.modes.replace(ch, ''));
      if (adding) set.add(ch);
      member.modes = [...isupport.chars].filter((x) => set.has(x)).join('');
    }
  }
  notice(b, 'mode', `${m.nick} sets mode ${[modes, ...args].join(' ')}`, m.tags);
  membersChanged(b);
}

function onMessage(m, me) {
  let [target, text = ''] = m.params;
  const notice_ = m.command === 'NOTICE';
  if (m.fromServer || target === '*') {
    notice(serverBuffer(), 'notice', text, m.tags);
    return;
  }
  let kind = notice_ ? 'notice' : 'message';
  const frame = ctcp(text);
  if (frame) {
    if (frame.command !== 'ACTION') return; // other CTCP requests and replies are not shown
    kind = 'action';
    text = frame.text;
  }
  // A status message (@#room) goes to the room.
  const bare = target.replace(new RegExp('^[' + isupport.chars.replace(/[\]\\^-]/g, '\\$&') + ']+'), '');
  let b;
  if (isChannel(bare)) b = buffer(bare, 'room');
  else if (me) b = buffer(target, 'query'); // our own message, echoed
  else if (notice_ && !buffers.has(fold(m.nick))) b = current || serverBuffer();
  else b = buffer(m.nick, 'query');
  say(b, m.nick, text, m.tags, kind);
}

// Numerics not handled above: errors, and replies to what the user asked.
function onNumeric(m) {
  const code = Number(m.command);
  const p = m.params.slice(1); // after our own nick
  const last = p[p.length - 1] || '';
  if (code === 4 || code === 5) return; // server version and modes; ISUPPORT is read above
  if (code < 100 || (code >= 250 && code <= 266) || [372, 375, 376, 422].includes(code) || !current) {
    // The welcome burst: "3 :channels formed" reads as "3 channels formed".
    notice(serverBuffer(), 'info', [252, 253, 254].includes(code) ? p.join(' ') : last, m.tags);
    return;
  }
  const text = p.length > 1 ? `${p.slice(0, -1).join(' ')}: ${last}` : last;
  if (code >= 400 && code < 600) errorLine(buffers.get(fold(p[0] || '')) || current, text);
  else if (code === 353) notice(current, 'info', `${p[1]}: ${last}`, m.tags);
  else if (code !== 366 && code !== 315) notice(current, 'info', text, m.tags);
}

// ---- the connection, as the page sees it ---------------------------------

// The connection is gone (irc.js): every room stays, emptied, until it is
// back. Whether irc.js should try again: not after /quit, nor if it never
// got in; then the form is shown again.
function offline() {
  for (const b of buffers.values()) {
    if (b.kind !== 'room') continue;
    if (b.joined) notice(b, 'info', 'disconnected');
    b.joined = false;
    b.members.clear();
    b.names = null;
  }
  if (current) {
    showHeading();
    renderMembers();
  }
  if (quitting || !everRegistered) {
    // The user quit, or never got in: back to the form.
    if (quitting) forget();
    else $('login-error').textContent = 'could not connect to the server; try again.';
    quitting = false;
    $('login').hidden = false;
    $('app').hidden = true;
    setStatus('idle', '');
    return false;
  }
  return true;
}

// After /quit: a fresh start, the form offering the rooms the user was in.
function forget() {
  const rooms = [...buffers.values()].filter((b) => b.kind === 'room' && b.wanted).map((b) => b.name);
  if (rooms.length) $('rooms-input').value = rooms.join(' ');
  buffers.clear();
  current = null;
  everRegistered = false;
  backoff = BACKOFF_FIRST;
  $('log').replaceChildren();
  $('room-list').replaceChildren();
  $('login-error').textContent = 'you left the chat.';
}

// After registering: the rooms the user is in, or those from the form.
function rejoin() {
  const rooms = [...buffers.values()].filter((b) => b.kind === 'room' && b.wanted).map((b) => b.name);
  for (const r of firstRooms) if (!rooms.some((x) => fold(x) === fold(r))) rooms.push(r);
  if (firstRooms.length) switchTo = fold(firstRooms[0]);
  firstRooms = [];
  if (rooms.length) send('JOIN ' + rooms.join(','));
}

function remember() {
  try {
    localStorage.setItem('chatter.nick', nick);
  } catch (e) { /* storage may be off */ }
}

// ---- what the user types -------------------------------------------------

function privmsg(target, text, action = false) {
  if (!registered) return errorLine(current, 'not connected');
  for (const part of chunks(text, target)) {
    send(`PRIVMSG ${target} :` + (action ? `\x01ACTION ${part}\x01` : part));
    if (!caps.has('echo-message')) {
      const b = isChannel(target) ? buffer(target, 'room') : buffer(target, 'query');
      say(b, nick, part, null, action ? 'action' : 'message');
    }
  }
}

const HELP = [
  '/join #room [key] · /part [#room] [reason] · /msg NAME text · /query NAME',
  '/me action · /nick NAME · /topic [text] · /notice NAME text · /close · /quit [reason]',
  '/raw LINE sends LINE as it is; any other /COMMAND is sent to the server as COMMAND; //text says "/text"',
];

function target() {
  return current && current.kind !== 'server' ? current.name : null;
}

function command(input) {
  const [, name, args = ''] = /^\/(\S+)\s*(.*)$/.exec(input);
  const words = args.split(/\s+/).filter(Boolean);
  const here = target();
  const need = (what) => errorLine(current, what);
  const local = ['help', 'close', 'query', 'quit'];
  if (!registered && !local.includes(name.toLowerCase())) return need('not connected; wait for the connection to come back');
  switch (name.toLowerCase()) {
    case 'join': case 'j': {
      if (!words[0]) return need('usage: /join #room [key]');
      const rooms = words[0].split(',').map((r) => (isChannel(r) ? r : '#' + r));
      switchTo = fold(rooms[rooms.length - 1]);
      const open = buffers.get(switchTo);
      if (open && open.joined) {
        switchTo = null;
        return show(open);
      }
      return send(`JOIN ${rooms.join(',')}` + (words[1] ? ' ' + words[1] : ''));
    }
    case 'part': case 'leave': {
      let room = here;
      let reason = args;
      if (words[0] && isChannel(words[0])) {
        room = words[0];
        reason = args.slice(args.indexOf(room) + room.length).trim();
      }
      if (!room || !isChannel(room)) return need('usage: /part #room [reason]');
      return send(`PART ${room}` + (reason ? ` :${reason}` : ''));
    }
    case 'msg': case 'query': {
      const r = /^(\S+)\s*(.*)$/.exec(args);
      if (!r) return need(`usage: /${name} NAME [text]`);
      if (!isChannel(r[1])) show(buffer(r[1], 'query'));
      if (r[2]) privmsg(r[1], r[2]);
      return;
    }
    case 'me':
      if (!here) return need('/me works in a room or a conversation');
      return privmsg(here, args, true);
    case 'notice': {
      const r = /^(\S+)\s+(.+)$/.exec(args);
      if (!r) return need('usage: /notice NAME text');
      send(`NOTICE ${r[1]} :${r[2]}`);
      if (!caps.has('echo-message')) say(current, nick, `→ ${r[1]}: ${r[2]}`, null, 'notice');
      return;
    }
    case 'nick':
      if (!words[0]) return need('usage: /nick NAME');
      return send('NICK ' + words[0]);
    case 'topic': {
      let room = here;
      let text = args;
      if (words[0] && isChannel(words[0])) {
        room = words[0];
        text = args.slice(args.indexOf(room) + room.length).trim();
      }
      if (!room || !isChannel(room)) return need('usage: /topic [#room] [text]');
      return send(`TOPIC ${room}` + (text ? ` :${text}` : ''));
    }
    case 'close':
      if (!current || current.kind === 'server') return;
      if (current.kind === 'room' && current.joined) return send('PART ' + current.name);
      return removeBuffer(current);
    case 'quit':
      quitting = true;
      if (!ws) return disconnected();
      return send('QUIT :' + (args || 'leaving'));
    case 'help':
      for (const h of HELP) notice(current || serverBuffer(), 'info', h);
      return;
    case 'raw': case 'quote':
      return send(args);
    default:
      return send(name.toUpperCase() + (args ? ' ' + args : ''));
  }
}

// ---- the input: what was sent (up, down) and nick completion (tab) -----

const sent = [];
let sentAt = 0;

function inputKeys(e) {
  const input = e.target;
  if ((e.key === 'ArrowUp' || e.key === 'ArrowDown') && sent.length) {
    sentAt = Math.max(0, Math.min(sent.length, sentAt + (e.key === 'ArrowUp' ? -1 : 1)));
    input.value = sent[sentAt] ?? '';
    e.preventDefault();
  } else if (e.key === 'Tab' && current && current.kind === 'room') {
    const end = input.selectionStart;
    const start = input.value.lastIndexOf(' ', end - 1) + 1;
    const word = fold(input.value.slice(start, end));
    if (!word) return;
    const found = [...current.members.values()].map((m) => m.nick).filter((n) => fold(n).startsWith(word)).sort();
    if (!found.length) return;
    e.preventDefault();
    const completed = found[0] + (start === 0 ? ': ' : ' ');
    input.value = input.value.slice(0, start) + completed + input.value.slice(end);
    input.selectionStart = input.selectionEnd = start + completed.length;
  }
}

// ---- the page ------------------------------------------------------------

function start() {
  try {
    $('nick-input').value = localStorage.getItem('chatter.nick') || '';
  } catch (e) { /* storage may be off */ }

  $('login').addEventListener('submit', (e) => {
    e.preventDefault();
    const wanted = $('nick-input').value.trim();
    if (!wanted || /[\s,*?!@:]/.test(wanted) || isChannel(wanted)) {
      $('login-error').textContent = 'a nickname is one word, without , * ? ! @ : or a leading #.';
      return;
    }
    $('login-error').textContent = '';
    nick = wanted;
    if (ws && ws.readyState === WebSocket.OPEN && !registered) {
      send('NICK ' + nick); // the first choice was taken; the connection waits
      return;
    }
    firstRooms = $('rooms-input').value.split(/[\s,]+/).filter(Boolean).map((r) => (isChannel(r) ? r : '#' + r));
    connect();
  });

  $('message-input').addEventListener('keydown', inputKeys);

  $('send').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = $('message-input');
    const text = input.value;
    if (!text.trim()) return;
    input.value = '';
    sent.push(text);
    if (sent.length > 100) sent.shift();
    sentAt = sent.length;
    if (text.startsWith('/') && !text.startsWith('//')) return command(text);
    const here = target();
    if (!here) return errorLine(current, 'this is the server window: /join #room to talk');
    privmsg(here, text.startsWith('//') ? text.slice(1) : text);
  });

  $('join-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const room = $('join-input').value.trim();
    $('join-input').value = '';
    if (room) command('/join ' + room);
  });

  $('toggle-rooms').addEventListener('click', () => toggleDrawer('rooms'));
  $('toggle-members').addEventListener('click', () => toggleDrawer('members'));
  $('log').addEventListener('click', closeDrawers);
}

start();
