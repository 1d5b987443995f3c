// chatter's chat page: IRC over a WebSocket (IRCv3 subprotocol
// text.ircv3.net, one IRC line per message), no libraries, no build step.
// Everything that comes from the server is put into the page as text
// (textContent, text nodes), never as HTML.
'use strict';

const SCROLLBACK = 1000; // lines kept per room or conversation
const WANTED_CAPS = ['server-time', 'echo-message', 'multi-prefix'];
const BACKOFF_FIRST = 1000;
const BACKOFF_MAX = 15000;
const SERVER_KEY = '*server*'; // the buffer for the server's own words; no nick has '*'

const $ = (id) => document.getElementById(id);

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

// ---- IRC lines -----------------------------------------------------------

function unescapeTag(value) {
  return value.replace(/\\(.?)/g, (_, c) => ({ ':': ';', s: ' ', r: '\r', n: '\n', '': '' })[c] ?? c);
}

// Splits one IRC line into tags, source, command and parameters.
function parse(line) {
  const msg = { tags: {}, source: '', command: '', params: [] };
  let rest = line;
  const word = () => {
    rest = rest.replace(/^ +/, '');
    const sp = rest.indexOf(' ');
    const w = sp < 0 ? rest : rest.slice(0, sp);
    rest = sp < 0 ? '' : rest.slice(sp + 1);
    return w;
  };
  if (rest.startsWith('@')) {
    for (const tag of word().slice(1).split(';')) {
      if (!tag) continue;
      const eq = tag.indexOf('=');
      msg.tags[eq < 0 ? tag : tag.slice(0, eq)] = eq < 0 ? '' : unescapeTag(tag.slice(eq + 1));
    }
  }
  rest = rest.replace(/^ +/, '');
  if (rest.startsWith(':')) msg.source = word().slice(1);
  msg.command = word().toUpperCase();
  for (;;) {
    rest = rest.replace(/^ +/, '');
    if (!rest) break;
    if (rest.startsWith(':')) {
      msg.params.push(rest.slice(1));
      break;
    }
    msg.params.push(word());
  }
  msg.nick = msg.source.split('!')[0];
  msg.fromServer = !msg.source.includes('!') && !msg.source.includes('@');
  return msg;
}

// IRC formatting (bold, colours, ...) is dropped, not rendered.
const FORMATTING = /\x03(\d{1,2}(,\d{1,2})?)?|\x04([0-9a-fA-F]{6}(,[0-9a-fA-F]{6})?)?|[\x02\x0f\x11\x16\x1d\x1e\x1f]/g;
const strip = (text) => text.replace(FORMATTING, '');

// ---- connection state ----------------------------------------------------

let ws = null;
let nick = '';
let registered = false;
let everRegistered = false;
let quitting = false;
let backoff = BACKOFF_FIRST;
let retryTimer = null;
let caps = new Set();
let capsOffered = new Set();
let isupport;
let firstRooms = []; // rooms from the form, joined after the first registration
let switchTo = null; // key of a room the user asked to join: shown once joined
let lastHeard = 0; // when the server last said something (ms)
let nickTries = 0; // names tried by themselves while reconnecting

function resetIsupport() {
  isupport = { modes: 'ov', chars: '@+', chantypes: '#&', casemapping: 'rfc1459', chanmodes: ['beI', 'k', 'l', ''] };
}
resetIsupport();

function fold(name) {
  let s = name.replace(/[A-Z]/g, (c) => c.toLowerCase());
  if (isupport.casemapping !== 'ascii') s = s.replace(/[[\]\\~]/g, (c) => ({ '[': '{', ']': '}', '\\': '|', '~': '^' })[c]);
  return s;
}

const isChannel = (name) => name.length > 0 && isupport.chantypes.includes(name[0]);

function send(line) {
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(line.replace(/[\r\n\0]+/g, ' '));
}

function setStatus(state, text) {
  const s = $('status');
  s.dataset.state = state;
  s.textContent = text;
}

// ---- buffers: the server, rooms and private conversations -----------------

const buffers = new Map(); // folded name -> buffer
let current = null;

function buffer(name, kind) {
  const key = kind === 'server' ? SERVER_KEY : fold(name);
  let b = buffers.get(key);
  if (b) return b;
  b = {
    name, kind, key,
    members: new Map(), // folded nick -> { nick, modes }
    names: null, // a NAMES reply being read
    topic: '',
    joined: false,
    wanted: false, // the user is in it: joined again after a reconnect
    unread: 0,
    log: el('div', 'buffer'),
    item: el('li', 'room'),
  };
  b.log.hidden = true;
  b.label = el('span', 'room-name', kind === 'server' ? 'server' : name);
  b.badge = el('span', 'badge');
  b.item.append(b.label, b.badge);
  b.item.tabIndex = 0;
  b.item.addEventListener('click', () => show(b));
  b.item.addEventListener('keydown', (e) => { if (e.key === 'Enter') show(b); });
  label(b);
  buffers.set(key, b);
  $('log').append(b.log);
  placeItem(b);
  return b;
}

function label(b) {
  b.log.dataset.buffer = b.name;
  b.item.dataset.room = b.kind === 'server' ? SERVER_KEY : b.name;
  b.item.dataset.kind = b.kind;
  b.label.textContent = b.kind === 'server' ? 'server' : b.name;
}

// Server first, then rooms, then conversations, each by name.
function placeItem(b) {
  const order = { server: 0, room: 1, query: 2 };
  const list = $('room-list');
  const after = [...list.children].find((li) => {
    const o = buffers.get(li.dataset.kind === 'server' ? SERVER_KEY : fold(li.dataset.room));
    return o && o !== b && (order[o.kind] > order[b.kind] || (o.kind === b.kind && o.key > b.key));
  });
  list.insertBefore(b.item, after || null);
}

function renameBuffer(b, name) {
  const key = fold(name);
  if (buffers.has(key) && buffers.get(key) !== b) return;
  buffers.delete(b.key);
  b.name = name;
  b.key = key;
  buffers.set(key, b);
  label(b);
  placeItem(b);
  if (b === current) showHeading();
}

function removeBuffer(b) {
  buffers.delete(b.key);
  b.log.remove();
  b.item.remove();
  if (current === b) {
    current = null;
    show([...buffers.values()].find((o) => o.kind === 'room') || buffer('', 'server'));
  }
}

function show(b) {
  if (current) {
    current.log.hidden = true;
    current.item.classList.remove('active');
  }
  current = b;
  b.log.hidden = false;
  b.item.classList.add('active');
  b.unread = 0;
  b.item.classList.remove('mention');
  b.badge.textContent = '';
  unreadDot();
  showHeading();
  renderMembers();
  scrollDown(true);
  closeDrawers();
  // Not on a phone, where focus brings up the keyboard over the room.
  if (matchMedia('(min-width: 761px)').matches) $('message-input').focus();
}

function showHeading() {
  const b = current;
  $('title').textContent = b.kind === 'server' ? 'server' : b.name;
  const away = registered ? 'not in this room now' : 'offline';
  $('topic').textContent = b.kind === 'room' ? (b.joined ? b.topic : away) : b.kind === 'query' ? 'private conversation' : '';
  $('topic').title = $('topic').textContent;
  document.title = (b.kind === 'server' ? '' : b.name + ' · ') + 'chatter';
}

function scrollDown(always) {
  const log = $('log');
  if (always || log.scrollHeight - log.scrollTop - log.clientHeight < 80) log.scrollTop = log.scrollHeight;
}

// ---- lines ---------------------------------------------------------------

// A nick's colour: a hue from its FNV-1a hash.
function hue(name) {
  let h = 0x811c9dc5;
  for (const c of fold(name)) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0;
  return h % 360;
}

function nickSpan(name) {
  const s = el('span', 'nick', name);
  s.style.setProperty('--hue', hue(name));
  return s;
}

// Text with its web links made clickable; everything stays text.
function richText(text) {
  const span = el('span', 'text');
  let last = 0;
  for (const m of text.matchAll(/\bhttps?:\/\/[^\s<>"]+[^\s<>".,;:!?)\]'}]/g)) {
    span.append(text.slice(last, m.index));
    const a = el('a', null, m[0]);
    a.href = m[0];
    a.target = '_blank';
    a.rel = 'noopener noreferrer';
    span.append(a);
    last = m.index + m[0].length;
  }
  span.append(text.slice(last));
  return span;
}

function mentions(text) {
  if (!nick) return false;
  const f = fold(text);
  const n = fold(nick);
  let i = f.indexOf(n);
  while (i >= 0) {
    const before = f[i - 1];
    const after = f[i + n.length];
    if (!/[\w\-[\]\\`^{}|]/.test(before || ' ') && !/[\w\-[\]\\`^{}|]/.test(after || ' ')) return true;
    i = f.indexOf(n, i + 1);
  }
  return false;
}

function timeOf(tags) {
  const t = tags && tags.time ? new Date(tags.time) : null;
  return t && !isNaN(t) ? t : new Date();
}

// Adds one line to a buffer: `parts` are strings (text) and elements.
// Kinds: message, action, notice, join, part, quit, nick, kick, topic,
// mode, error, info.
function addLine(b, kind, parts, opts = {}) {
  const line = el('div', 'line');
  line.dataset.kind = kind;
  if (opts.from) line.dataset.from = opts.from;
  const when = timeOf(opts.tags);
  const stamp = el('time', null, when.toTimeString().slice(0, 5));
  stamp.dateTime = when.toISOString();
  stamp.title = when.toLocaleString();
  line.append(stamp, ' ', ...parts);
  const talk = kind === 'message' || kind === 'action' || kind === 'notice';
  const mention = talk && opts.from && fold(opts.from) !== fold(nick) && (b.kind === 'query' || mentions(opts.text || ''));
  if (mention) line.classList.add('mention');
  const stick = b === current && $('log').scrollHeight - $('log').scrollTop - $('log').clientHeight < 80;
  b.log.append(line);
  while (b.log.childElementCount > SCROLLBACK) b.log.firstElementChild.remove();
  if (b === current) {
    if (stick || opts.from === nick) scrollDown(true);
  } else if (talk) {
    b.unread += 1;
    b.badge.textContent = b.unread > 99 ? '99+' : String(b.unread);
    if (mention) b.item.classList.add('mention');
    unreadDot();
  }
}

// On a phone the room list is behind a button: a dot on it says there is
// something unread there.
function unreadDot() {
  const any = [...buffers.values()].some((b) => b.unread > 0);
  $('toggle-rooms').classList.toggle('unread', any);
}

function say(b, from, text, tags, kind = 'message') {
  text = strip(text);
  const parts = kind === 'action' ? ['* ', nickSpan(from), ' ', richText(text)]
    : kind === 'notice' ? ['-', nickSpan(from), '- ', richText(text)]
      : [nickSpan(from), ' ', richText(text)];
  addLine(b, kind, parts, { from, text, tags });
}

const notice = (b, kind, text, tags) => addLine(b, kind, [el('span', 'text', strip(text))], { tags });
const serverBuffer = () => buffer('', 'server');

function errorLine(b, text) {
  addLine(b || current || serverBuffer(), 'error', [el('span', 'text', '! ' + strip(text))]);
}

// ---- members -------------------------------------------------------------

function rank(member) {
  const i = member.modes ? isupport.chars.indexOf(member.modes[0]) : -1;
  return i < 0 ? isupport.chars.length : i;
}

function renderMembers() {
  const list = $('member-list');
  const b = current;
  list.replaceChildren();
  if (!b || b.kind !== 'room') {
    $('member-count').textContent = b && b.kind === 'query' ? 'private conversation' : '';
    return;
  }
  const members = [...b.members.values()].sort((x, y) => rank(x) - rank(y) || (fold(x.nick) < fold(y.nick) ? -1 : 1));
  $('member-count').textContent = b.joined ? `${members.length} here` : registered ? 'not joined' : 'offline';
  for (const m of members) {
    const li = el('li', 'member');
    li.dataset.nick = m.nick;
    li.tabIndex = 0;
    li.title = `talk privately with ${m.nick}`;
    li.append(el('span', 'prefix', m.modes.slice(0, 1)), nickSpan(m.nick));
    const open = () => show(buffer(m.nick, 'query'));
    li.addEventListener('click', open);
    li.addEventListener('keydown', (e) => { if (e.key === 'Enter') open(); });
    list.append(li);
  }
}

function membersChanged(b) {
  if (b === current) renderMembers();
}

function addMember(members, entry) {
  let modes = '';
  while (entry && isupport.chars.includes(entry[0])) {
    modes += entry[0];
    entry = entry.slice(1);
  }
  const name = entry.split('!')[0];
  if (name) members.set(fold(name), { nick: name, modes });
}

// Rooms where `who` is, for notices about them.
const roomsWith = (who) => [...buffers.values()].filter((b) => b.kind === 'room' && b.members.has(fold(who)));

// ---- what the server says ------------------------------------------------

function onLine(line) {
  if (!line) return;
  const m = parse(line);
  const p = m.params;
  const me = fold(m.nick) === fold(nick) && !m.fromServer;
  switch (m.command) {
    case 'PING':
      send('PONG :' + (p[0] ?? ''));
      return;
    case 'CAP':
      return onCap(p);
    case '001':
      nick = p[0];
      registered = true;
      everRegistered = true;
      backoff = BACKOFF_FIRST;
      remember();
      $('me').textContent = 'you are ' + nick;
      $('login').hidden = true;
      $('app').hidden = false;
      setStatus('connected', '');
      if (!current) show(serverBuffer());
      rejoin();
      break;
    case '005':
      for (const t of p.slice(1, -1)) isupportToken(t);
      return;
    case '433': case '432': case '436':
      return onNickRefused(m);
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

function isupportToken(token) {
  const [key, value = ''] = token.split(/=(.*)/s);
  if (key === 'PREFIX') {
    const r = /^\(([^)]*)\)(.*)$/.exec(value);
    if (r) [isupport.modes, isupport.chars] = [r[1], r[2]];
  } else if (key === 'CHANTYPES') isupport.chantypes = value;
  else if (key === 'CASEMAPPING') isupport.casemapping = value;
  else if (key === 'CHANMODES') isupport.chanmodes = (value + ',,,').split(',').slice(0, 4);
}

function onCap(p) {
  const sub = (p[1] || '').toUpperCase();
  if (sub === 'LS') {
    const more = p[2] === '*';
    for (const c of ((more ? p[3] : p[2]) || '').split(' ')) if (c) capsOffered.add(c.split('=')[0]);
    if (more || registered) return;
    const want = WANTED_CAPS.filter((c) => capsOffered.has(c));
    if (want.length) send('CAP REQ :' + want.join(' '));
    else send('CAP END');
  } else if (sub === 'ACK') {
    for (const c of (p[2] || '').split(' ')) {
      if (c.startsWith('-')) caps.delete(c.slice(1));
      else if (c) caps.add(c);
    }
    if (!registered) send('CAP END');
  } else if (sub === 'NAK') {
    if (!registered) send('CAP END');
  } else if (sub === 'DEL') {
    for (const c of (p[2] || '').split(' ')) caps.delete(c);
  }
}

function onNickRefused(m) {
  const wanted = m.params[1] || '';
  const why = m.command === '433' ? `the nickname ${wanted} is already in use` : `${wanted}: ${m.params[2] || 'not a valid nickname'}`;
  if (registered) return errorLine(current, why);
  if (everRegistered && nickTries < 3) {
    // Reconnecting, and the old connection still holds the name: take
    // another one rather than wait for a person (a few times).
    nickTries += 1;
    nick = (wanted || nick) + '_';
    send('NICK ' + nick);
    return;
  }
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
  const ctcp = /^\x01([^\x01\s]+) ?([^\x01]*)\x01?$/.exec(text);
  if (ctcp) {
    if (ctcp[1].toUpperCase() !== 'ACTION') return; // other CTCP requests and replies are not shown
    kind = 'action';
    text = ctcp[2];
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

// ---- connecting ----------------------------------------------------------

function connect() {
  clearTimeout(retryTimer);
  retryTimer = null;
  registered = false;
  nickTries = 0;
  caps = new Set();
  capsOffered = new Set();
  resetIsupport();
  setStatus(everRegistered ? 'reconnecting' : 'connecting', everRegistered ? 'reconnecting…' : 'connecting…');
  let sock;
  try {
    sock = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/', ['text.ircv3.net']);
  } catch (e) {
    disconnected();
    return;
  }
  sock.binaryType = 'arraybuffer';
  ws = sock;
  sock.onopen = () => {
    lastHeard = Date.now();
    send('CAP LS 302');
    send('NICK ' + nick);
    send('USER web 0 * :chatter web page');
  };
  sock.onmessage = (ev) => {
    lastHeard = Date.now();
    const data = typeof ev.data === 'string' ? ev.data : new TextDecoder().decode(ev.data);
    for (const line of data.split(/\r?\n/)) onLine(line);
  };
  sock.onclose = () => {
    if (ws === sock) disconnected();
  };
}

function disconnected() {
  ws = null;
  registered = false;
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
    return;
  }
  const wait = backoff;
  backoff = Math.min(backoff * 2, BACKOFF_MAX);
  setStatus('reconnecting', `disconnected, reconnecting in ${Math.round(wait / 1000)} s…`);
  retryTimer = setTimeout(connect, wait);
}

// A connection can die without closing (a phone changing networks): one
// quiet for long is asked for a PONG, and given up if still quiet.
setInterval(() => {
  if (!ws || ws.readyState !== WebSocket.OPEN) return;
  const quiet = Date.now() - lastHeard;
  if (quiet > 90000) {
    const dead = ws;
    dead.onclose = null;
    dead.close();
    disconnected();
  } else if (quiet > 45000) {
    send('PING :alive');
  }
}, 15000);

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

// A message longer than a line may carry is sent as several.
function chunks(text, room) {
  const max = Math.max(100, 400 - new TextEncoder().encode(room).length);
  const out = [];
  const enc = new TextEncoder();
  while (enc.encode(text).length > max) {
    let cut = 0;
    let bytes = 0;
    for (const c of text) {
      const n = enc.encode(c).length;
      if (bytes + n > max) break;
      bytes += n;
      cut += c.length;
    }
    const space = text.lastIndexOf(' ', cut - 1);
    if (space > cut / 2) cut = space + 1;
    out.push(text.slice(0, cut));
    text = text.slice(cut);
  }
  if (text) out.push(text);
  return out;
}

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

function closeDrawers() {
  document.body.classList.remove('show-rooms', 'show-members');
  $('toggle-rooms').setAttribute('aria-expanded', 'false');
  $('toggle-members').setAttribute('aria-expanded', 'false');
}

function toggleDrawer(which) {
  const cls = 'show-' + which;
  const open = !document.body.classList.contains(cls);
  closeDrawers();
  document.body.classList.toggle(cls, open);
  $('toggle-' + which).setAttribute('aria-expanded', String(open));
}

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

  // Back from a sleeping phone: try now rather than at the end of the wait.
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible' && retryTimer) {
      backoff = BACKOFF_FIRST;
      connect();
    }
  });
}

start();
