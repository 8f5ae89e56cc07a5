// Real Socket.IO clients, run unchanged in Node against shaddock's Socket.IO frontend (Pomelo's
// sioconnector) on the client port, WebSocket transport only:
//  - socket.io-client 0.9.16 (npm alias socket.io-client-0.9): socket.io 0.9, `GET /socket.io/1/`
//    handshake, then ws://HOST:PORT/socket.io/1/websocket/{sid}; the server sends heartbeats;
//  - socket.io-client 2.5.0 (socket.io-client-2): Engine.IO 3, the client pings;
//  - socket.io-client 4.8.1 (socket.io-client-4): Engine.IO 4, the server pings.
//
//   node --experimental-websocket tests/interop/socketio.mjs --host 127.0.0.1 --port 3010 \
//        --control-port 3080 --apikey demo --secret SECRET --scenario main|pings|hold \
//        [--count 2] [--client-prefix sio] [--hold-ms 4500] [--timeout-ms 20000]
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
//    manager's pushAll reaches all three, its pushByClientId to each reaches that one only; an
//    HTTP push "end" closes the round; then a second connection of each version enters with the
//    first one's clientId: the first gets onKick "replaced" and socket.io's disconnect, and an
//    HTTP push "after" reaches only the three new connections.
//  - pings: one client per version enters and idles for --hold-ms (the Rust test sets short
//    ping intervals; socket.io-client 4 and 0.9 close a connection whose server stops pinging,
//    2.x pings itself and closes when the answers stop), then an HTTP push must reach all three.
//  - hold: one client per version enters ({prefix}-{version}) and waits for --count onMsg
//    pushes made by someone else (the Rust test's mixed channel).
// Prints one JSON line and exits 0, or 1 with `error`. Run by tests/interop_socketio.rs.

import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

import { INTEROP_DIR, check, httpPush, main, options, same, until } from './harness.mjs';

/** The clients, by the version name the results use, and their npm alias. */
const PACKAGES = { '0.9': 'socket.io-client-0.9', 2: 'socket.io-client-2', 4: 'socket.io-client-4' };
const VERSIONS = ['0.9', '2', '4'];

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

// socket.io 0.9's frames as they arrive, for the wire tail: its transports all go through
// Transport.prototype.onData; the connection's io.Socket finds its client.
const owners09 = new Map();
{
  const proto = lib['0.9'].Transport.prototype;
  const onData = proto.onData;
  proto.onData = function (data) {
    const client = owners09.get(this.socket);
    if (client) client.frame(String(data));
    return onData.call(this, data);
  };
}

/** Engine.IO packet type codes, for writing a 2.x/4.x packet back as its wire text. */
const EIO_TYPES = { open: 0, close: 1, ping: 2, pong: 3, message: 4, upgrade: 5, noop: 6 };

/** One connection of one client version, with what it received. */
class Client {
  constructor(version, label, url) {
    this.version = version;
    this.label = label;
    this.nextId = 1;
    this.pending = new Map();
    this.pushes = [];
    this.kicks = [];
    this.disconnects = [];
    this.errors = [];
    this.frames = [];
    this.unexpected = [];
    // 4.x: server pings answered; 0.9: server heartbeats answered; 2.x: the client's own pings
    // and the server's answers.
    this.pings = 0;
    this.pongs = 0;
    this.pingTimes = [];
    this.connected = false;
    clients.push(this);
    const s = (this.socket = open(version, url));
    if (version === '0.9') {
      owners09.set(s.socket, this);
    } else {
      s.io.on('open', () => {
        s.io.engine.on('packet', (p) => {
          this.frame(`${EIO_TYPES[p.type] ?? p.type}${typeof p.data === 'string' ? p.data : ''}`);
        });
      });
      s.io.on('ping', () => this.pinged());
      if (version === '2') s.io.on('pong', () => this.pongs++);
    }
    s.on('connect', () => {
      this.connected = true;
      log(`[${label}] connected`);
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

function open(version, url) {
  switch (version) {
    case '0.9':
      return lib['0.9'].connect(url, {
        'force new connection': true,
        transports: ['websocket'],
        reconnect: false,
        'connect timeout': 5000,
        'try multiple transports': false,
      });
    case '2':
      return lib['2'](url, { forceNew: true, transports: ['websocket'], reconnection: false, timeout: 5000 });
    case '4':
      return lib['4'].io(url, { forceNew: true, transports: ['websocket'], reconnection: false, timeout: 5000 });
    default:
      throw new Error(`no client version ${version}`);
  }
}

const clone = (value) => JSON.parse(JSON.stringify(value));

function log(...args) {
  process.stderr.write(`${args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' ')}\n`);
}

/** A client of `version` that connects and enters with `clientId`; its answer in `entered`. */
async function enterClient(url, opt, version, clientId, label = clientId) {
  const c = await new Client(version, label, url).ready();
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

/** Waits until each of `cs` has `n` onMsg pushes, then 300 ms more. */
async function received(cs, n, what, timeoutMs = 5000) {
  for (const c of cs) {
    await until(`[${c.label}] gets ${what}`, () => c.messages().length >= n, timeoutMs).catch((e) => {
      throw new Error(`${e.message} (${JSON.stringify(c.summary())})`);
    });
  }
  await sleep(300);
}

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
      count: 2,
      'client-prefix': 'sio',
      'hold-ms': 4500,
      'timeout-ms': 20000,
    });
    result.timeout_ms = opt['timeout-ms'];
    for (const name of Object.values(PACKAGES)) {
      result.versions[name] = JSON.parse(readFileSync(join(INTEROP_DIR, 'node_modules', name, 'package.json'), 'utf8')).version;
    }
    check(Number.isInteger(opt.port) && opt.port > 0 && opt.port < 65536, '--port must be a port number', opt.port);
    const url = `http://${opt.host}:${opt.port}`;
    const control = { host: opt.host, port: opt['control-port'] };
    const idOf = (v) => `${opt['client-prefix']}-${v}`;
    result.scenario = opt.scenario;

    if (opt.scenario === 'main') {
      result.step = 'the management session enters';
      const manager = await new Client('4', 'manager', url).ready();
      result.manager_enter = await manager.request(ENTER_CONNECTOR, {
        role: 'server',
        apikey: opt.apikey,
        secret: opt.secret,
      });
      check(result.manager_enter.code === 200, 'management enter', result.manager_enter);

      result.step = 'a wrong secret';
      result.wrong_secret = {};
      for (const v of VERSIONS) {
        const c = await new Client(v, `wrong-secret-${v}`, url).ready();
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
      for (const v of VERSIONS) {
        first[v] = await enterClient(url, opt, v, idOf(v));
        result.enter[v] = first[v].entered;
        const add = await until(`the manager gets onAdd for ${idOf(v)}`, () =>
          manager.pushes.find((p) => p.route === 'onAdd' && p.body && p.body.clientId === idOf(v)),
        );
        result.on_add.push(add.body);
      }

      result.step = 'a wrong route';
      result.wrong_route = {};
      for (const v of VERSIONS) {
        result.wrong_route[v] = await first[v].request('sio-connector.entryHandler.nope', {});
      }

      result.step = 'pushAll and pushByClientId';
      const all = Object.values(first);
      result.push_all = await manager.request(PUSH_ALL, { apikey: opt.apikey, msg: { all: 'from manager' } });
      await received(all, 1, 'the pushAll');
      result.push_by_client_id = {};
      for (const v of VERSIONS) {
        result.push_by_client_id[v] = await manager.request(PUSH_BY_CLIENT_ID, {
          apikey: opt.apikey,
          clientId: idOf(v),
          msg: { to: idOf(v) },
        });
        await received([first[v]], 2, 'its pushByClientId');
      }
      result.end = await push(control, opt, 'end');
      await received(all, 3, '"end"');
      result.round = Object.fromEntries(VERSIONS.map((v) => [v, first[v].summary()]));

      result.step = 'replaced';
      const second = {};
      result.replaced = {};
      for (const v of VERSIONS) {
        second[v] = await enterClient(url, opt, v, idOf(v), `${idOf(v)}-second`);
        const old = first[v];
        await until(`[${old.label}] gets onKick and disconnects`, () => old.kicks.length && old.disconnects.length).catch(
          (e) => {
            throw new Error(`${e.message} (${old.describe()})`);
          },
        );
        result.replaced[v] = clone({
          enter: second[v].entered,
          kicks: old.kicks,
          disconnects: old.disconnects,
          wire_tail: old.frames.slice(-2),
        });
      }
      result.after = await push(control, opt, 'after');
      await received(Object.values(second), 1, '"after"');
      result.first = Object.fromEntries(VERSIONS.map((v) => [v, first[v].summary()]));
      result.second = Object.fromEntries(VERSIONS.map((v) => [v, second[v].summary()]));
      result.manager = manager.summary();
      result.manager.pushes = manager.pushes.map((p) => ({ route: p.route, clientId: p.body && p.body.clientId }));
    } else if (opt.scenario === 'pings') {
      const cs = [];
      result.enter = {};
      for (const v of VERSIONS) {
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
      result.pings = Object.fromEntries(
        cs.map((c) => [c.version, { pings: c.pings, pongs: c.pongs, gaps_ms: c.pingGaps() }]),
      );
      result.still_connected = Object.fromEntries(cs.map((c) => [c.version, c.connected]));
      check(
        cs.every((c) => c.connected),
        'every client stayed connected',
        Object.fromEntries(cs.map((c) => [c.version, { disconnects: c.disconnects, errors: c.errors, frames: c.frames }])),
      );
      result.push = await push(control, opt, 'still here');
      await received(cs, 1, '"still here"');
      result.clients = Object.fromEntries(cs.map((c) => [c.version, c.summary()]));
    } else if (opt.scenario === 'hold') {
      const cs = [];
      for (const v of VERSIONS) cs.push(await enterClient(url, opt, v, idOf(v)));
      // The Rust test polls the presence list, then pushes.
      await received(cs, opt.count, `${opt.count} pushes`, opt['timeout-ms'] - 2000);
      result.clients = Object.fromEntries(cs.map((c) => [c.version, c.summary()]));
    } else {
      throw new Error(`unknown --scenario ${JSON.stringify(opt.scenario)} (main, pings or hold)`);
    }
    delete result.step;
  },
  async () => {
    for (const c of clients) c.close();
    await sleep(50);
  },
);
