// chatter's chat page, first of three scripts: the IRC client. IRC lines
// (tags, source, command, parameters; formatting; CTCP), what the server
// says it is (ISUPPORT: prefixes, room types, casemapping), and the
// connection: a WebSocket to the server the page came from (IRCv3
// subprotocol text.ircv3.net, one IRC line per message), registration
// with CAP negotiation, keeping it alive (PING), and trying again when it
// is lost, waiting longer each time. It touches no element of the page.
//
// The page is three classic scripts that index.html loads in order with
// `defer` (irc.js, view.js, chat.js), with no build step and no module
// loader. They share one global scope, as when they were one file: the
// client's state here (nick, registered, caps, isupport, ...) is read, and
// at a few places set, by the other two as it is. ES modules would make
// each such variable an export only its own module may assign, and so a
// setter at every assignment elsewhere, for no gain in a page this size.
// This file calls the page through three functions only, defined by the
// later two and called only once they have loaded: setStatus (view.js:
// the connection banner), heard (chat.js: a line from the server that
// concerns the page) and offline (chat.js: the connection is gone;
// whether to try again).
'use strict';

const WANTED_CAPS = ['server-time', 'echo-message', 'multi-prefix'];
const BACKOFF_FIRST = 1000;
const BACKOFF_MAX = 15000;

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

// A CTCP frame (\x01COMMAND text\x01, the closing \x01 optional) in a
// message: its command, upper case, and its text; null for a plain message.
function ctcp(text) {
  const r = /^\x01([^\x01\s]+) ?([^\x01]*)\x01?$/.exec(text);
  return r && { command: r[1].toUpperCase(), text: r[2] };
}

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

// ---- connection state ----------------------------------------------------

let ws = null;
let nick = '';
let registered = false;
let everRegistered = false;
let backoff = BACKOFF_FIRST;
let retryTimer = null;
let caps = new Set();
let capsOffered = new Set();
let isupport;
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

// ---- what the server says ------------------------------------------------

// One line from the server. What is the connection's own is done here;
// the rest goes to the page (heard), and so does the welcome (001), once
// noted.
function onLine(line) {
  if (!line) return;
  const m = parse(line);
  const p = m.params;
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
      break;
    case '005':
      for (const t of p.slice(1, -1)) isupportToken(t);
      return;
    case '433': case '432': case '436':
      if (!registered && everRegistered && nickTries < 3) {
        // Reconnecting, and the old connection still holds the name: take
        // another one rather than wait for a person (a few times).
        nickTries += 1;
        nick = (p[1] || nick) + '_';
        send('NICK ' + nick);
        return;
      }
      break;
  }
  heard(m);
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

// The connection is gone, or never opened: the page is told, and unless
// it says not to (the user quit, or never got in), another is tried after
// a wait that doubles each time, up to BACKOFF_MAX.
function disconnected() {
  ws = null;
  registered = false;
  if (!offline()) return;
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

// Back from a sleeping phone: try now rather than at the end of the wait.
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible' && retryTimer) {
    backoff = BACKOFF_FIRST;
    connect();
  }
});
