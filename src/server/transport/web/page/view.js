// chatter's chat page, second of three scripts: what the page shows. The
// server's window, the rooms and the private conversations (a buffer
// each: its lines, its members, its entry in the list of rooms), lines as
// they are drawn (times, nick colours, links, mentions, unread counts),
// the member list, the connection banner, and the phone layout's drawers.
//
// It reads the IRC client's state (irc.js: nick, registered, isupport,
// fold) and is driven by chat.js, which decides what each thing the
// server says or the user types does to it; see irc.js for why the page
// is three classic scripts sharing one scope. Everything that comes from
// the server is put into the page as text (textContent, text nodes),
// never as HTML.
'use strict';

const SCROLLBACK = 1000; // lines kept per room or conversation
const SERVER_KEY = '*server*'; // the buffer for the server's own words; no nick has '*'

const $ = (id) => document.getElementById(id);

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

// The connection banner: its state (idle, connecting, connected,
// reconnecting) and what it says.
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

// ---- the phone layout ----------------------------------------------------

// On a phone the room list and the member list are drawers, one open at a
// time, behind the buttons beside the heading.

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
