// Real Socket.IO clients, run unchanged in Node against shaddock's Socket.IO frontend (Pomelo's
// sioconnector) on the client port:
//  - socket.io-client 0.9.16 (npm alias socket.io-client-0.9): socket.io 0.9, `GET /socket.io/1/`
//    handshake, then ws://HOST:PORT/socket.io/1/websocket/{sid} or, polling, GET/POST
//    /socket.io/1/xhr-polling/{sid} (the client's XHR in Node is the xmlhttprequest package, on
//    Node's global agent: keep-alive connections, reused across requests);
//  - socket.io-client 2.5.0 (socket.io-client-2): Engine.IO 3, the client pings;
//  - socket.io-client 4.8.1 (socket.io-client-4): Engine.IO 4, the server pings.
// 2.x and 4.x poll with xmlhttprequest-ssl (a new connection per request, `Connection: close`).
//
//   node --experimental-websocket tests/interop/socketio.mjs --host 127.0.0.1 --port 3010 \
//        --control-port 3080 --apikey demo --secret SECRET --scenario main|pings|hold|upgrade|refusals \
//        [--transport websocket|polling|default] [--manager-transport T] [--versions 0.9,2,4] \
//        [--burst 0] [--count 2] [--websocket-too 0.9,2,4] [--ws-connect-delay-ms 0] \
//        [--client-prefix sio] [--hold-ms 4500] [--timeout-ms 20000]
//
// --transport: `websocket` (socket.io 0.9 and Engine.IO clients with `transports: ['websocket']`),
// `polling` (0.9 with its socket's transports set to ['xhr-polling'], 2.x/4.x
// `transports: ['polling']`: long-polling only, no upgrade) or `default` (2.x/4.x with their default transports: polling first, then the
// upgrade to WebSocket; 0.9 with its own default list). --versions: which clients the scenario
// runs (the management session is always a socket.io-client 4, on --manager-transport if given,
// else --transport).
//
// The Pomelo layer is what pomelo-jsclient-socket.io (github.com/pomelonode/
// pomelo-jsclient-socket.io, not on npm) does on top of the socket: `socket.send(str)` with
// str = Protocol.encode(id, route, msg) (written here from its description: 4 chars, the id's
// bytes big-endian; 1 char, the route's length; the route; JSON.stringify(msg)), and every
// `message` from the server JSON: `{id, body}` answers a request, `{route, body}` is a push
// (`onMsg`, `onAdd`, `onLeave`), `{route: "onKick", reason}` a kick.
//
// Scenarios (every wait bounded; after the last expected message a further 300 ms, so a
// duplicate would be seen):
//  - main: a socket.io-client 4 management session enters (role server); per version, a
//    connection entering role server with a wrong secret gets 401; one client per version enters
//    (clientId {prefix}-{version}) and the manager sees its onAdd; a wrong route gets 404; the
//    manager's pushAll reaches every client, its pushByClientId to each reaches that one only;
//    then --burst HTTP pushes {burst: i, text: BURST_TEXT} one after the other (non-ASCII text);
//    an HTTP push "end" closes the round; then a second connection of each version enters with
//    the first one's clientId: the first gets onKick "replaced" and socket.io's disconnect, and
//    an HTTP push "after" reaches only the new connections.
//  - pings: one client per version enters and idles for --hold-ms (the Rust test sets short
//    ping intervals; socket.io-client 4 and 0.9 over WebSocket close a connection whose server
//    stops pinging, 2.x pings itself and closes when the answers stop), then an HTTP push must
//    reach every client.
//  - hold: one client per version enters ({prefix}-{version}), and with --websocket-too one more
//    per listed version over WebSocket ({prefix}-{version}-ws); each waits for --count onMsg
//    pushes made by someone else (the Rust test's mixed channel).
//  - upgrade (2.x/4.x, --transport default): every client connects through a proxy that holds
//    each WebSocket connect --ws-connect-delay-ms; the manager enters, then per version a client
//    opens over polling (`transport_at_open`), enters, and right after the answer gets a
//    train of HTTP pushes ({train: version, seq: i}, one after the other, even ones to all, odd
//    ones to its clientId; at least --burst, and on until the engine has upgraded to WebSocket
//    and three more went out: the upgrade happens during the train); the client must report
//    the engine's `upgrade` to websocket; then the manager's pushAll, its pushByClientId to
//    each, and an HTTP push "end".
//  - refusals (Engine.IO 3 and 4 by hand, beside real 2.x/4.x polling clients): GET and POST with
//    an unknown sid (and socket.io 0.9's xhr-polling GET/POST with one); two polling sessions
//    opened by hand (EIO 3 and 4) are sent a malformed payload, and what answers the POST and a
//    later GET of that sid is reported; then an HTTP push must still reach the real clients.
// Prints one JSON line and exits 0, or 1 with `error`. Run by tests/interop_socketio.rs.

import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import net from 'node:net';
import { join } from 'node:path';

import { INTEROP_DIR, check, httpPush, main, options, same, until } from './harness.mjs';

/** The clients, by the version name the results use, and their npm alias. */
const PACKAGES = { '0.9': 'socket.io-client-0.9', 2: 'socket.io-client-2', 4: 'socket.io-client-4' };
const VERSIONS = ['0.9', '2', '4'];
const TRANSPORTS = ['websocket', 'polling', 'default'];

const missing = Object.values(PACKAGES).filter(
  (name) => !existsSync(join(INTEROP_DIR, 'node_modules', name, 'package.json')),
);
if (missing.length) {
  process.stdout.write(
    `${JSON.stringify({ script: 'socketio', ok: false, error: `${missing.join(', ')} missing: run \`npm ci --prefix tests/interop\`` })}\n`,
  );
  process.exit(1);
}
const require = createRequire(join(INTEROP_DIR, 'package.json'));
const lib = Object.fromEntries(VERSIONS.map((v) => [v, require(PACKAGES[v])]));

const ENTER = 'sio-connector.entryHandler.enter';
const ENTER_CONNECTOR = 'connector.entryHandler.enter';
const PUSH_ALL = 'pushserver.pushHandler.pushAll';
const PUSH_BY_CLIENT_ID = 'pushserver.pushHandler.pushByClientId';

/**
 * The text every burst push carries: Latin-1, BMP and astral characters, so their UTF-8 bytes,
 * UTF-16 units and code points all differ (socket.io 0.9's `\ufffd{length}\ufffd` and Engine.IO
 * 3's `{length}:` polling payloads count UTF-16 units, as JavaScript strings do).
 */
const BURST_TEXT = 'pömelo ✓ 推送 😀';

/** How many received frames a client keeps (its wire tail). */
const FRAMES_KEPT = 12;

const clients = [];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Pomelo's socket.io client's Protocol.encode: id (4 chars), route length (1), route, JSON. */
function encode(id, route, msg) {
  if (route.length > 255) throw new Error('route maxlength is overflow');
  const header = [(id >> 24) & 0xff, (id >> 16) & 0xff, (id >> 8) & 0xff, id & 0xff, route.length];
  return String.fromCharCode(...header) + route + JSON.stringify(msg);
}

/**
 * socket.io 0.9's messages in what one transport read: a polling answer may hold several,
 * framed `\ufffd{length}\ufffd{message}` (the length in characters), as the client's own
 * parser.decodePayload reads them; anything else is one message.
 */
function split09(data) {
  if (data.charAt(0) !== '\ufffd') return [data];
  const out = [];
  let i = 0;
  while (i < data.length && data.charAt(i) === '\ufffd') {
    const j = data.indexOf('\ufffd', i + 1);
    if (j < 0) break;
    const length = Number(data.slice(i + 1, j));
    out.push(data.substr(j + 1, length));
    i = j + 1 + length;
  }
  if (i < data.length) out.push(data.slice(i));
  return out;
}

// socket.io 0.9's frames as they arrive, for the wire tail: its transports all go through
// Transport.prototype.onData; the connection's io.Socket finds its client.
const owners09 = new Map();
{
  const proto = lib['0.9'].Transport.prototype;
  const onData = proto.onData;
  proto.onData = function (data) {
    const client = owners09.get(this.socket);
    if (client) for (const message of split09(String(data))) client.frame(message);
    return onData.call(this, data);
  };
}

/** Engine.IO packet type codes, for writing a 2.x/4.x packet back as its wire text. */
const EIO_TYPES = { open: 0, close: 1, ping: 2, pong: 3, message: 4, upgrade: 5, noop: 6 };

/** One connection of one client version, with what it received. */
class Client {
  constructor(version, label, url, transport = 'websocket') {
    this.version = version;
    this.label = label;
    this.transport = transport;
    this.nextId = 1;
    this.pending = new Map();
    this.pushes = [];
    // The engine's transport when each onMsg push arrived.
    this.over = [];
    this.kicks = [];
    this.disconnects = [];
    this.errors = [];
    this.frames = [];
    this.unexpected = [];
    // 2.x/4.x: the engine's `upgrading` (probe answered) and `upgrade` (done) events, by
    // transport name.
    this.upgrading = [];
    this.upgrades = [];
    // 4.x: server pings answered; 0.9: server heartbeats answered; 2.x: the client's own pings
    // and the server's answers.
    this.pings = 0;
    this.pongs = 0;
    this.pingTimes = [];
    this.connected = false;
    clients.push(this);
    const s = (this.socket = open(version, url, transport));
    if (version === '0.9') {
      owners09.set(s.socket, this);
    } else {
      s.io.on('open', () => {
        const engine = s.io.engine;
        this.transportAtOpen = engine.transport && engine.transport.name;
        engine.on('packet', (p) => {
          this.frame(`${EIO_TYPES[p.type] ?? p.type}${typeof p.data === 'string' ? p.data : ''}`);
        });
        engine.on('upgrading', (t) => this.upgrading.push(t && t.name));
        engine.on('upgrade', (t) => {
          this.upgrades.push(t && t.name);
          log(`[${label}] upgraded to ${t && t.name}`);
        });
      });
      s.io.on('ping', () => this.pinged());
      if (version === '2') s.io.on('pong', () => this.pongs++);
    }
    s.on('connect', () => {
      this.connected = true;
      this.transportAtConnect = this.transportName();
      log(`[${label}] connected over ${this.transportAtConnect}`);
    });
    s.on('message', (data) => this.onMessage(data));
    s.on('disconnect', (reason) => {
      this.connected = false;
      this.disconnects.push(reason === undefined ? null : String(reason));
      log(`[${label}] disconnect ${reason}`);
    });
    for (const ev of version === '0.9' ? ['error', 'connect_failed'] : ['connect_error', 'error']) {
      s.on(ev, (e) => {
        this.errors.push(`${ev}: ${e && e.message ? e.message : String(e)}`);
        log(`[${label}] ${ev}`, e);
      });
    }
  }

  /** The name of the transport the connection is on now. */
  transportName() {
    const t = this.version === '0.9' ? this.socket.socket.transport : this.socket.io.engine && this.socket.io.engine.transport;
    return t ? t.name : null;
  }

  frame(text) {
    if (this.version === '0.9' && text === '2::') this.pinged();
    this.frames.push(text);
    if (this.frames.length > FRAMES_KEPT) this.frames.shift();
  }

  pinged() {
    this.pings++;
    this.pingTimes.push(Date.now());
  }

  /** The milliseconds between consecutive pings. */
  pingGaps() {
    return this.pingTimes.slice(1).map((t, i) => t - this.pingTimes[i]);
  }

  onMessage(data) {
    let msg;
    try {
      msg = typeof data === 'string' ? JSON.parse(data) : data;
    } catch (e) {
      this.unexpected.push(String(data));
      return;
    }
    if (msg && msg.id && this.pending.has(msg.id)) {
      const resolve = this.pending.get(msg.id);
      this.pending.delete(msg.id);
      resolve(msg.body);
    } else if (msg && msg.route === 'onKick') {
      this.kicks.push(msg);
    } else if (msg && typeof msg.route === 'string' && !msg.id) {
      // As pomelo-client.js: the push's body.body if there is one, else its body.
      this.pushes.push({ route: msg.route, body: msg.body && msg.body.body ? msg.body.body : msg.body });
      if (msg.route === 'onMsg') this.over.push(this.transportName());
    } else {
      this.unexpected.push(msg);
    }
  }

  /** Resolves once connected; fails on a connection error, a disconnect, or after 5 s. */
  async ready() {
    await until(
      `[${this.label}] socket.io connects`,
      () => this.connected || this.errors.length || this.disconnects.length,
      5000,
    ).catch((e) => {
      throw new Error(`${e.message} (${this.describe()})`);
    });
    if (!this.connected) throw new Error(`[${this.label}] did not connect (${this.describe()})`);
    return this;
  }

  /** A Pomelo request: socket.send(Protocol.encode(id, route, body)); its answer's body. */
  request(route, body, timeoutMs = 5000) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`[${this.label}] no answer to ${route} within ${timeoutMs} ms (${this.describe()})`));
      }, timeoutMs);
      this.pending.set(id, (answer) => {
        clearTimeout(timer);
        resolve(answer);
      });
      this.socket.send(encode(id, route, body));
    });
  }

  /** The bodies of the onMsg pushes received. */
  messages() {
    return this.pushes.filter((p) => p.route === 'onMsg').map((p) => p.body);
  }

  /** How many onMsg pushes arrived over each transport. */
  overCounts() {
    const counts = {};
    for (const name of this.over) counts[name] = (counts[name] || 0) + 1;
    return counts;
  }

  close() {
    try {
      this.socket.disconnect();
    } catch (e) {
      // already closed
    }
  }

  describe() {
    return JSON.stringify({ errors: this.errors, disconnects: this.disconnects, frames: this.frames });
  }

  /** What it received so far, copied (the result is printed later). */
  summary() {
    return clone({
      received: this.messages(),
      pushes: this.pushes.filter((p) => p.route !== 'onMsg'),
      kicks: this.kicks,
      disconnects: this.disconnects,
      errors: this.errors,
      unexpected: this.unexpected,
      connected: this.connected,
    });
  }
}

/**
 * A TCP proxy on 127.0.0.1:0 to `target` that holds each connection whose first request is a
 * WebSocket upgrade for `delayMs` before it forwards it (everything else at once). The upgrade
 * scenario's clients connect through it: it stands for a network where the WebSocket takes a
 * while to connect, so a client on its default transports is connected and entered over polling
 * before its upgrade probe goes out, and the upgrade happens while pushes arrive. (A client
 * option cannot do it: 2.x in this Node uses the global WebSocket, which takes no agent.)
 */
function delayingProxy(target, delayMs) {
  const stats = { delay_ms: delayMs, connections: 0, upgrades_delayed: 0 };
  const sockets = new Set();
  const server = net.createServer((client) => {
    stats.connections++;
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    let head = Buffer.alloc(0);
    const onData = (chunk) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0 && head.length < 16384) return;
      client.removeListener('data', onData);
      client.pause();
      const upgrade = /^upgrade:[ \t]*websocket/im.test(head.subarray(0, end < 0 ? head.length : end).toString('latin1'));
      if (upgrade) stats.upgrades_delayed++;
      setTimeout(() => {
        const upstream = net.connect(target, () => {
          upstream.write(head);
          client.pipe(upstream);
          upstream.pipe(client);
          client.resume();
        });
        sockets.add(upstream);
        upstream.on('close', () => sockets.delete(upstream));
        upstream.on('error', () => client.destroy());
        client.on('error', () => upstream.destroy());
      }, upgrade ? delayMs : 0);
    };
    client.on('data', onData);
    client.on('error', () => client.destroy());
  });
  return new Promise((resolve, reject) => {
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      proxies.push({ server, sockets });
      resolve({ port: server.address().port, stats });
    });
  });
}

/** The proxies to close at the end. */
const proxies = [];

/** The client options that select `transport` for `version`. */
function transports(version, transport) {
  switch (transport) {
    case 'websocket':
      return { transports: ['websocket'] };
    case 'polling':
      return { transports: [version === '0.9' ? 'xhr-polling' : 'polling'] };
    case 'default':
      return {};
    default:
      throw new Error(`no transport ${transport} (${TRANSPORTS.join(', ')})`);
  }
}

function open(version, url, transport) {
  const chosen = transports(version, transport);
  switch (version) {
    case '0.9': {
      const s = lib['0.9'].connect(url, {
        'force new connection': true,
        reconnect: false,
        'connect timeout': 5000,
        'try multiple transports': false,
      });
      // Not an option: 0.9's util.merge merges an array option index by index into the shared
      // default list (io.transports, ['websocket', 'xhr-polling'] in Node), so
      // `transports: ['xhr-polling']` would still offer websocket. The list is this socket's
      // own, set before the handshake's answer reads it.
      if (chosen.transports) s.socket.options.transports = chosen.transports;
      return s;
    }
    case '2':
      return lib['2'](url, { forceNew: true, ...chosen, reconnection: false, timeout: 5000 });
    case '4':
      return lib['4'].io(url, { forceNew: true, ...chosen, reconnection: false, timeout: 5000 });
    default:
      throw new Error(`no client version ${version}`);
  }
}

const clone = (value) => JSON.parse(JSON.stringify(value));

function log(...args) {
  process.stderr.write(`${args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' ')}\n`);
}

/** A client of `version` that connects and enters with `clientId`; its answer in `entered`. */
async function enterClient(url, opt, version, clientId, label = clientId, transport = opt.transport) {
  const c = await new Client(version, label, url, transport).ready();
  c.clientId = clientId;
  c.entered = await c.request(ENTER, { role: 'client', apikey: opt.apikey, clientId });
  check(same(c.entered, { code: 200, msg: 'add ok' }), `[${label}] enter`, c.entered);
  return c;
}

/** An HTTP pushAll that must be answered 200; its body. */
async function push(control, opt, msg) {
  const answer = await httpPush(control, opt.apikey, opt.secret, msg);
  check(answer.status === 200, `HTTP push ${JSON.stringify(msg)} answered`, answer);
  return answer.body;
}

/** `POST /api/apps/{apikey}/clients/{clientId}/push {"msg": msg}`, which must reach one client. */
async function pushTo(control, opt, clientId, msg, timeoutMs = 5000) {
  const path = `/api/apps/${encodeURIComponent(opt.apikey)}/clients/${encodeURIComponent(clientId)}/push`;
  const res = await fetch(`http://${control.host}:${control.port}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${opt.secret}` },
    body: JSON.stringify({ msg }),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  check(res.status === 200 && text.trim() === '{"recipients":1}', `HTTP push ${JSON.stringify(msg)} to ${clientId}`, {
    status: res.status,
    body: text,
  });
}

/** Waits until each of `cs` has `n` onMsg pushes, then 300 ms more. */
async function received(cs, n, what, timeoutMs = 5000) {
  for (const c of cs) {
    await until(`[${c.label}] gets ${what}`, () => c.messages().length >= n, timeoutMs).catch((e) => {
      throw new Error(`${e.message} (${JSON.stringify(c.summary())})`);
    });
  }
  await sleep(300);
}

/** The management session: a socket.io-client 4 on `transport` (--manager-transport, else
 * --transport), entered with the secret. */
async function enterManager(url, opt, transport = opt['manager-transport'] ?? opt.transport) {
  const manager = await new Client('4', 'manager', url, transport).ready();
  const entered = await manager.request(ENTER_CONNECTOR, { role: 'server', apikey: opt.apikey, secret: opt.secret });
  check(entered.code === 200, 'management enter', entered);
  return { manager, entered };
}

/** The manager's push routes, with the clientId of each (what it heard). */
function managerSummary(manager) {
  const summary = manager.summary();
  summary.pushes = manager.pushes.map((p) => ({ route: p.route, clientId: p.body && p.body.clientId }));
  return summary;
}

/**
 * The manager's pushAll {all: 'from manager'}, then its pushByClientId {to: clientId} to each of
 * `cs` (by version), each awaited by its clients (`result.push_all`, `result.push_by_client_id`);
 * returns how many onMsg each client had before.
 */
async function managerPushes(result, manager, cs, { opt, idOf, versions }) {
  const n = Object.fromEntries(versions.map((v) => [v, cs[v].messages().length]));
  result.push_all = await manager.request(PUSH_ALL, { apikey: opt.apikey, msg: { all: 'from manager' } });
  for (const v of versions) await received([cs[v]], n[v] + 1, 'the pushAll');
  result.push_by_client_id = {};
  for (const v of versions) {
    result.push_by_client_id[v] = await manager.request(PUSH_BY_CLIENT_ID, {
      apikey: opt.apikey,
      clientId: idOf(v),
      msg: { to: idOf(v) },
    });
    await received([cs[v]], n[v] + 2, 'its pushByClientId');
  }
  return n;
}

// ---- raw HTTP, for the refusals ---------------------------------------------------------------

/**
 * One HTTP request on a connection of its own (`agent: false`: `Connection: close`), bounded by
 * `timeoutMs`: {status, content_type, body}, or {timeout: true} when nothing answered in time.
 */
function rawRequest({ host, port }, method, path, body = null, timeoutMs = 3000) {
  return new Promise((resolve, reject) => {
    const headers = {};
    if (body !== null) {
      headers['content-type'] = 'text/plain;charset=UTF-8';
      headers['content-length'] = Buffer.byteLength(body);
    }
    const req = http.request({ host, port, method, path, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode, content_type: res.headers['content-type'] ?? null, body: text });
      });
      res.on('error', reject);
    });
    const timer = setTimeout(() => {
      req.destroy();
      resolve({ timeout: true });
    }, timeoutMs);
    req.on('error', (e) => {
      clearTimeout(timer);
      if (!req.destroyed || e.code !== 'ECONNRESET') reject(e);
    });
    if (body !== null) req.write(body);
    req.end();
  });
}

/** The sid of an Engine.IO open packet at the start of a polling answer (EIO 4 `0{..}`, EIO 3 `N:0{..}`). */
function openSid(eio, body) {
  const m = eio === 3 ? /^\d+:0(\{.*?\})(?:\d+:|$)/.exec(body) : /^0(\{[^\x1e]*\})/.exec(body);
  check(m, `EIO ${eio} polling handshake answered with an open packet`, body);
  const open = JSON.parse(m[1]);
  check(typeof open.sid === 'string' && open.sid.length > 0, `EIO ${eio} open packet has a sid`, open);
  return open;
}

// ---- the scenarios ----------------------------------------------------------------------------

async function scenarioMain(result, { url, opt, control, idOf, versions }) {
  result.step = 'the management session enters';
  const { manager, entered } = await enterManager(url, opt);
  result.manager_enter = entered;

  result.step = 'a wrong secret';
  result.wrong_secret = {};
  for (const v of versions) {
    const c = await new Client(v, `wrong-secret-${v}`, url, opt.transport).ready();
    result.wrong_secret[v] = await c.request(ENTER, {
      role: 'server',
      apikey: opt.apikey,
      secret: `${opt.secret}-wrong`,
    });
  }

  result.step = 'clients enter';
  const first = {};
  result.enter = {};
  result.on_add = [];
  for (const v of versions) {
    first[v] = await enterClient(url, opt, v, idOf(v));
    result.enter[v] = first[v].entered;
    const add = await until(`the manager gets onAdd for ${idOf(v)}`, () =>
      manager.pushes.find((p) => p.route === 'onAdd' && p.body && p.body.clientId === idOf(v)),
    );
    result.on_add.push(add.body);
  }

  result.step = 'a wrong route';
  result.wrong_route = {};
  for (const v of versions) {
    result.wrong_route[v] = await first[v].request('sio-connector.entryHandler.nope', {});
  }

  result.step = 'pushAll and pushByClientId';
  const all = Object.values(first);
  await managerPushes(result, manager, first, { opt, idOf, versions });
  if (opt.burst > 0) {
    result.step = 'a burst of HTTP pushes';
    result.burst = [];
    for (let i = 0; i < opt.burst; i++) result.burst.push(await push(control, opt, { burst: i, text: BURST_TEXT }));
  }
  result.end = await push(control, opt, 'end');
  await received(all, 3 + opt.burst, '"end"');
  result.round = Object.fromEntries(versions.map((v) => [v, first[v].summary()]));
  result.transport_now = Object.fromEntries(versions.map((v) => [v, first[v].transportName()]));

  result.step = 'replaced';
  const second = {};
  result.replaced = {};
  for (const v of versions) {
    second[v] = await enterClient(url, opt, v, idOf(v), `${idOf(v)}-second`);
    const old = first[v];
    await until(`[${old.label}] disconnects`, () => old.disconnects.length).catch((e) => {
      throw new Error(`${e.message} (${old.describe()})`);
    });
    // The onKick comes before the disconnect, as a message the app sees: a frame alone is not
    // enough (socket.io-client 4 hands decoded packets to the socket a tick later, so a close
    // packet in the same poll answer closes the socket first and the message is never emitted).
    await until(`[${old.label}] gets onKick`, () => old.kicks.length, 300).catch(() => {
      throw new Error(
        `[${old.label}] disconnected (${old.disconnects.join(', ')}) without Pomelo's onKick reaching the app (${old.describe()})`,
      );
    });
    result.replaced[v] = clone({
      enter: second[v].entered,
      kicks: old.kicks,
      disconnects: old.disconnects,
      wire_tail: old.frames.slice(-2),
    });
  }
  result.after = await push(control, opt, 'after');
  await received(Object.values(second), 1, '"after"');
  result.first = Object.fromEntries(versions.map((v) => [v, first[v].summary()]));
  result.second = Object.fromEntries(versions.map((v) => [v, second[v].summary()]));
  result.manager = managerSummary(manager);
}

async function scenarioPings(result, { url, opt, control, idOf, versions }) {
  const cs = [];
  result.enter = {};
  for (const v of versions) {
    const c = await enterClient(url, opt, v, idOf(v));
    cs.push(c);
    result.enter[v] = c.entered;
  }
  const started = Date.now();
  await until(
    'the hold time passes, or a client disconnects',
    () => Date.now() - started >= opt['hold-ms'] || cs.some((c) => !c.connected),
    opt['hold-ms'] + 1000,
  );
  result.held_ms = Date.now() - started;
  result.pings = Object.fromEntries(cs.map((c) => [c.version, { pings: c.pings, pongs: c.pongs, gaps_ms: c.pingGaps() }]));
  result.still_connected = Object.fromEntries(cs.map((c) => [c.version, c.connected]));
  result.transport_now = Object.fromEntries(cs.map((c) => [c.version, c.transportName()]));
  check(
    cs.every((c) => c.connected),
    'every client stayed connected',
    Object.fromEntries(cs.map((c) => [c.version, { disconnects: c.disconnects, errors: c.errors, frames: c.frames }])),
  );
  result.push = await push(control, opt, 'still here');
  await received(cs, 1, '"still here"');
  result.clients = Object.fromEntries(cs.map((c) => [c.version, c.summary()]));
}

async function scenarioHold(result, { url, opt, idOf, versions }) {
  const cs = [];
  for (const v of versions) cs.push(await enterClient(url, opt, v, idOf(v)));
  const also = opt['websocket-too'] ? opt['websocket-too'].split(',') : [];
  for (const v of also) cs.push(await enterClient(url, opt, v, `${idOf(v)}-ws`, `${idOf(v)}-ws`, 'websocket'));
  // The Rust test polls the presence list, then pushes.
  await received(cs, opt.count, `${opt.count} pushes`, opt['timeout-ms'] - 2000);
  result.clients = Object.fromEntries(cs.map((c) => [c.label.slice(opt['client-prefix'].length + 1), c.summary()]));
  result.transport_now = Object.fromEntries(cs.map((c) => [c.label.slice(opt['client-prefix'].length + 1), c.transportName()]));
}

async function scenarioUpgrade(result, { url, opt, control, idOf, versions }) {
  check(opt.transport === 'default', 'the upgrade scenario runs with --transport default', opt.transport);
  check(!versions.includes('0.9'), 'the upgrade scenario is for Engine.IO clients (2, 4)', versions);
  // Node loads its fetch on first use, which takes longer than the upgrade: once now, so the
  // trains below start as soon as the clients have entered.
  result.step = 'the presence list';
  const presence = await fetch(`http://${control.host}:${control.port}/api/apps/${encodeURIComponent(opt.apikey)}/clients`, {
    headers: { authorization: `Bearer ${opt.secret}` },
    signal: AbortSignal.timeout(5000),
  });
  await presence.text();
  const proxy = await delayingProxy({ host: opt.host, port: opt.port }, opt['ws-connect-delay-ms']);
  result.proxy = proxy.stats;
  url = `http://127.0.0.1:${proxy.port}`;
  result.step = 'the management session enters';
  const { manager, entered } = await enterManager(url, opt);
  result.manager_enter = entered;

  const cs = {};
  result.enter = {};
  result.transport_at_open = {};
  result.transport_at_connect = {};
  result.train = {};
  for (const v of versions) {
    result.step = `${v} enters`;
    const c = (cs[v] = await enterClient(url, opt, v, idOf(v)));
    result.enter[v] = c.entered;
    result.transport_at_open[v] = c.transportAtOpen;
    result.transport_at_connect[v] = c.transportAtConnect;

    // The train: from the enter's answer on, one HTTP push {train: v, seq: i} after the other,
    // until the engine has upgraded and three more went out (at least --burst in all; at most
    // 2000, or 8 s): even ones pushAll (so they reach the clients entered before too: the
    // channel's member lists), odd ones to its clientId (presence). Each push is counted by
    // where the client's engine was when it went out: before the probe answered (`upgrading`),
    // between that and the `upgrade`, or after.
    result.step = `${v}: pushes while it upgrades`;
    const started = Date.now();
    const phases = { before: 0, upgrading: 0, after: 0 };
    let sent = 0;
    // How many had gone out when the engine reported `upgrading`, and `upgrade`.
    let upgradingAfter = null;
    let upgradedAfter = null;
    const entered = Object.keys(cs).length;
    while (sent < 2000 && Date.now() - started < 8000) {
      const phase = c.upgrades.length ? 'after' : c.upgrading.length ? 'upgrading' : 'before';
      if (phase !== 'before' && upgradingAfter === null) upgradingAfter = sent;
      if (phase === 'after' && upgradedAfter === null) upgradedAfter = sent;
      if (phase === 'after' && sent >= opt.burst && phases.after >= 3) break;
      if (!c.connected) break;
      const msg = { train: v, seq: sent };
      if (sent % 2 === 0) {
        const answer = await push(control, opt, msg);
        check(same(answer, { recipients: entered }), `pushAll ${JSON.stringify(msg)} reached every client`, answer);
      } else {
        await pushTo(control, opt, idOf(v), msg);
      }
      sent++;
      phases[phase]++;
    }
    await until(`[${c.label}] upgrades to websocket`, () => c.upgrades.length || !c.connected, 5000).catch((e) => {
      throw new Error(`${e.message} (upgrading: ${JSON.stringify(c.upgrading)}, transport ${c.transportName()}, ${c.describe()})`);
    });
    check(c.connected, `[${c.label}] stays connected through its upgrade`, c.summary());
    result.train[v] = { sent, sent_when: phases, upgrading_after: upgradingAfter, upgraded_after: upgradedAfter };
    await received([c], sent, `the ${sent} pushes of its train`).catch((e) => {
      const seqs = c.messages().filter((m) => m.msg && m.msg.train === v).map((m) => m.msg.seq);
      const missing = [...Array(sent).keys()].filter((i) => !seqs.includes(i));
      throw new Error(`[${c.label}] of its train of ${sent} (${JSON.stringify(result.train[v])}), ${missing.join(', ')} never came: ${e.message}`);
    });
    result.train[v].arrived_over = c.overCounts();
    result.train[v].ms = Date.now() - started;
  }
  // Each client also got the pushAll half of every later train.
  for (const [i, v] of versions.entries()) {
    const later = versions.slice(i + 1).reduce((n, w) => n + Math.ceil(result.train[w].sent / 2), 0);
    await received([cs[v]], result.train[v].sent + later, 'the pushAll half of the later trains');
  }

  result.step = 'pushAll and pushByClientId';
  const n = await managerPushes(result, manager, cs, { opt, idOf, versions });
  result.end = await push(control, opt, 'end');
  for (const v of versions) await received([cs[v]], n[v] + 3, '"end"');
  result.upgrading = Object.fromEntries(versions.map((v) => [v, cs[v].upgrading]));
  result.upgrades = Object.fromEntries(versions.map((v) => [v, cs[v].upgrades]));
  result.transport_now = Object.fromEntries(versions.map((v) => [v, cs[v].transportName()]));
  result.clients = Object.fromEntries(versions.map((v) => [v, cs[v].summary()]));
  result.manager = managerSummary(manager);
  result.manager.upgrades = manager.upgrades;
}

async function scenarioRefusals(result, { url, opt, control, idOf }) {
  const server = { host: opt.host, port: opt.port };
  const base = '/socket.io/';
  const bogus = 'nosuchsid0000000000';

  result.step = 'an unknown sid';
  result.unknown_sid = {};
  for (const eio of [3, 4]) {
    const path = `${base}?EIO=${eio}&transport=polling&t=x1&sid=${bogus}`;
    // A well-formed payload (a noop), so only the sid is wrong.
    const payload = eio === 3 ? '1:6' : '6';
    result.unknown_sid[eio] = {
      GET: await rawRequest(server, 'GET', path),
      POST: await rawRequest(server, 'POST', path, payload),
    };
  }
  result.unknown_sid_09 = {
    GET: await rawRequest(server, 'GET', `/socket.io/1/xhr-polling/${bogus}?t=1`),
    POST: await rawRequest(server, 'POST', `/socket.io/1/xhr-polling/${bogus}?t=1`, '3:::x'),
  };

  result.step = 'real clients enter over polling';
  const cs = [];
  for (const v of ['2', '4']) cs.push(await enterClient(url, opt, v, idOf(v), idOf(v), 'polling'));

  result.step = 'a malformed payload';
  result.malformed = {};
  for (const eio of [3, 4]) {
    const hs = await rawRequest(server, 'GET', `${base}?EIO=${eio}&transport=polling&t=h${eio}`);
    check(hs.status === 200, `EIO ${eio} polling handshake answered 200`, hs);
    const { sid } = openSid(eio, hs.body);
    const path = `${base}?EIO=${eio}&transport=polling&t=p${eio}&sid=${encodeURIComponent(sid)}`;
    // A live session, connected to the default namespace: EIO 4 sends CONNECT and reads the
    // answer; EIO 3 servers connect unasked (`40`, in the handshake's answer or the next poll).
    let connected = hs.body;
    if (eio === 4) {
      const connect = await rawRequest(server, 'POST', path, '40');
      check(connect.status === 200, 'EIO 4 CONNECT posted', connect);
    }
    if (!/(^|\x1e|\d:)40/.test(connected.slice(connected.indexOf('}') + 1))) {
      const poll = await rawRequest(server, 'GET', `${path}&connect=1`);
      check(poll.status === 200, `EIO ${eio} poll for the CONNECT answer`, poll);
      connected = poll.body;
    }
    check(/(^|\x1e|\d:)40/.test(connected), `EIO ${eio} session connected to the default namespace`, connected);
    // Neither version's payload: EIO 4 packets start with a type digit, EIO 3 with `length:`.
    const post = await rawRequest(server, 'POST', path, 'not a payload');
    // What the session is afterwards: engine.io closes it, so this GET is refused (or answered
    // with a close packet); a live session would hold it (no ping is due for 25 s).
    const after = await rawRequest(server, 'GET', `${path}&after=1`, null, 3000);
    result.malformed[eio] = { handshake_status: hs.status, post, after };
  }

  result.step = 'the other sessions still get a push';
  result.push = await push(control, opt, 'still here');
  await received(cs, 1, '"still here"');
  result.clients = Object.fromEntries(cs.map((c) => [c.version, c.summary()]));
  result.transport_now = Object.fromEntries(cs.map((c) => [c.version, c.transportName()]));
}

const SCENARIOS = {
  main: scenarioMain,
  pings: scenarioPings,
  hold: scenarioHold,
  upgrade: scenarioUpgrade,
  refusals: scenarioRefusals,
};

await main(
  'socketio',
  async (result) => {
    const opt = options({
      host: '127.0.0.1',
      port: 0,
      'control-port': 0,
      apikey: 'demo',
      secret: '',
      scenario: 'main',
      transport: 'websocket',
      'manager-transport': null,
      versions: VERSIONS.join(','),
      burst: 0,
      count: 2,
      'websocket-too': null,
      'ws-connect-delay-ms': 0,
      'client-prefix': 'sio',
      'hold-ms': 4500,
      'timeout-ms': 20000,
    });
    result.timeout_ms = opt['timeout-ms'];
    for (const name of Object.values(PACKAGES)) {
      result.versions[name] = JSON.parse(readFileSync(join(INTEROP_DIR, 'node_modules', name, 'package.json'), 'utf8')).version;
    }
    check(Number.isInteger(opt.port) && opt.port > 0 && opt.port < 65536, '--port must be a port number', opt.port);
    check(TRANSPORTS.includes(opt.transport), `--transport must be one of ${TRANSPORTS.join(', ')}`, opt.transport);
    const versions = opt.versions.split(',');
    check(versions.length && versions.every((v) => VERSIONS.includes(v)), `--versions must list of ${VERSIONS.join(', ')}`, versions);
    const run = SCENARIOS[opt.scenario];
    check(run, `unknown --scenario (${Object.keys(SCENARIOS).join(', ')})`, opt.scenario);
    result.scenario = opt.scenario;
    result.transport = opt.transport;
    const context = {
      url: `http://${opt.host}:${opt.port}`,
      opt,
      control: { host: opt.host, port: opt['control-port'] },
      idOf: (v) => `${opt['client-prefix']}-${v}`,
      versions,
    };
    await run(result, context);
    delete result.step;
  },
  async () => {
    for (const c of clients) c.close();
    await sleep(50);
    for (const { server, sockets } of proxies) {
      server.close();
      for (const socket of sockets) socket.destroy();
    }
  },
);
