// Real Node clients over wss:// against a shaddock client port with [client.tls]: the Pomelo
// JavaScript client (pomelo-jsclient-websocket 0.1.1, unchanged, in a vm context per session as
// pomelo_node.mjs runs it, on Node's own WebSocket, undici) and socket.io-client 4.8.1 (its
// Node WebSocket, the `ws` package) with Pomelo's socket.io message layer (as socketio.mjs).
//
//   node --experimental-websocket tests/interop/tls_node.mjs --host 127.0.0.1 --port 3010 \
//        --control-port 3080 --apikey demo --secret SECRET --scenario pomelo|untrusted|plain|socketio|hold \
//        [--ca ca.pem] [--pomelo-id ID] [--sio-id ID] [--sio-transports websocket] [--count 2]
//        [--timeout-ms 20000]
//
// pomelo-jsclient-websocket 0.1.1 hard-codes `'ws://' + host` in pomelo.init (lib/
// pomelo-client.js, about line 86; it is the only version on npm): each session's WebSocket is
// wrapped (harness.mjs wssOnly) so that the URL's scheme becomes wss://, as a deployment serving
// its page over HTTPS must do. The library is not modified.
//
// Trust: the Pomelo client trusts the test CA only through NODE_EXTRA_CA_CERTS (set by the Rust
// test; Node adds it to its default roots); socket.io-client 4 through its `ca` option (--ca),
// with rejectUnauthorized left at its default (true). The runner clears NODE_TLS_REJECT_UNAUTHORIZED.
//
// Scenarios (every wait bounded; after the last expected push a further 300 ms, so a duplicate
// would be seen):
//  - pomelo: management and a client (clientId --pomelo-id) enter over wss://; management sees
//    the client's onAdd, pushes two messages with pushAll (one not ASCII) and one with
//    pushByClientId; the client must receive the three, in order, once each.
//  - untrusted: the same client over wss:// without the CA trusted: init must fail (a WebSocket
//    error and a close, no handshake).
//  - plain: the same client over plain ws:// (as the library has it), against a server that
//    requires TLS: init must fail the same way.
//  - socketio: a socket.io-client 4 management session (role server) and a client over wss://
//    (https://host:port, transports ['websocket']), trusting --ca; a third client without `ca`
//    must fail to connect; the client's transports are --sio-transports (socket.io's default,
//    `polling,websocket`, starts on HTTPS long-polling and upgrades to wss://); management's pushAll, then an HTTP push "end" (control port, plain
//    HTTP), must reach the client, once each, in order.
//  - hold: a Pomelo client (--pomelo-id) and a socket.io-client 4 client (--sio-id) enter over
//    wss:// and wait for --count onMsg pushes made by someone else (the Rust test's mixed
//    channel).
// Prints one JSON line and exits 0, or 1 with `error`. Run by tests/interop_tls.rs.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

import { ENTER, INTEROP_DIR, PUSH_ALL, check, httpPush, init, main, newSession, request, same, serverOptions, until, wssOnly } from './harness.mjs';

const PUSH_BY_CLIENT_ID = 'pushserver.pushHandler.pushByClientId';
const SIO_ENTER = 'sio-connector.entryHandler.enter';

const sessions = [];
const sockets = [];
const clone = (value) => JSON.parse(JSON.stringify(value));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A Pomelo session (harness.mjs newSession) whose WebSocket URLs are wss://. */
function wssSession(label) {
  const session = newSession(label);
  session.window.WebSocket = wssOnly(session.window.WebSocket);
  sessions.push(session);
  return session;
}

/** The onMsg bodies' msg a Pomelo session received. */
const pomeloMessages = (s) => s.pushes.filter((p) => p.route === 'onMsg').map((p) => p.body.msg);

/** A Pomelo client over wss:// that has entered as `clientId`. */
async function pomeloClient(server, opt, clientId) {
  const s = wssSession(clientId);
  await init(s, server);
  const entered = await request(s, ENTER, { role: 'client', apikey: opt.apikey, clientId });
  check(same(entered, { code: 200, msg: 'add ok' }), `[${clientId}] enter`, entered);
  return s;
}

// ---- socket.io-client 4 with Pomelo's socket.io layer ----------------------------------------

/** One socket.io-client 4 connection over wss://; Pomelo requests on it, pushes it received. */
class SioClient {
  constructor(url, label, ca, transports = ['websocket']) {
    const io = createRequire(join(INTEROP_DIR, 'package.json'))('socket.io-client-4').io;
    this.label = label;
    this.nextId = 1;
    this.answers = new Map();
    this.messages = [];
    this.errors = [];
    this.connected = false;
    const tls = ca ? { ca: readFileSync(ca) } : {};
    this.socket = io(url, { forceNew: true, transports, reconnection: false, timeout: 5000, ...tls });
    sockets.push(this.socket);
    this.socket.on('connect', () => {
      this.connected = true;
    });
    this.socket.on('connect_error', (e) => this.errors.push(`connect_error: ${e && e.message}`));
    this.socket.on('disconnect', (reason) => {
      this.connected = false;
      this.errors.push(`disconnect: ${reason}`);
    });
    // Every message is JSON: {id, body} answers a request, {route, body} is a push.
    this.socket.on('message', (data) => {
      const msg = JSON.parse(data);
      if (msg.id) this.answers.set(msg.id, msg.body);
      else if (msg.route === 'onMsg') this.messages.push(msg.body.msg);
    });
  }

  async connect() {
    await until(`[${this.label}] socket.io connects`, () => this.connected || this.errors.length, 5000);
    check(this.connected, `[${this.label}] connects over wss://`, this.errors);
    return this;
  }

  /** pomelo-jsclient-socket.io's send: id (4 chars, big-endian), route length, route, JSON. */
  async request(route, body) {
    const id = this.nextId++;
    const head = String.fromCharCode((id >>> 24) & 255, (id >>> 16) & 255, (id >>> 8) & 255, id & 255, route.length);
    this.socket.send(head + route + JSON.stringify(body));
    await until(`[${this.label}] the answer to ${route}`, () => this.answers.has(id), 5000);
    return this.answers.get(id);
  }
}

async function sioClient(url, opt, clientId, transports) {
  const c = await new SioClient(url, clientId, opt.ca, transports).connect();
  const entered = await c.request(SIO_ENTER, { role: 'client', apikey: opt.apikey, clientId });
  check(same(entered, { code: 200, msg: 'add ok' }), `[${clientId}] enter`, entered);
  return c;
}

// ---- the scenarios ------------------------------------------------------------------------------

async function scenarioPomelo(result, { server, opt }) {
  result.step = 'management enters over wss://';
  const admin = wssSession('management');
  await init(admin, server);
  result.management_enter = await request(admin, ENTER, { role: 'server', apikey: opt.apikey, secret: opt.secret });
  check(result.management_enter.code === 200, 'management enter', result.management_enter);
  result.step = 'the client enters over wss://';
  const id = opt['pomelo-id'];
  const client = await pomeloClient(server, opt, id);
  await until(`management gets onAdd for ${id}`, () =>
    admin.pushes.find((p) => p.route === 'onAdd' && p.body.clientId === id),
  );
  result.step = 'pushes';
  const msgs = [`hello over wss, ${id}`, 'héllo wörld, 中文 ✓'];
  result.push_all = [];
  for (const msg of msgs) result.push_all.push(await request(admin, PUSH_ALL, { apikey: opt.apikey, msg }));
  result.push_by_client_id = await request(admin, PUSH_BY_CLIENT_ID, {
    apikey: opt.apikey,
    clientId: id,
    msg: { only: id },
  });
  await until(`[${id}] gets 3 pushes`, () => pomeloMessages(client).length >= 3);
  await sleep(300);
  result.received = pomeloMessages(client);
  result.urls = sessions.map((s) => s.tap.url);
  result.errors = clone(sessions.map((s) => s.errors));
  delete result.step;
}

async function scenarioUntrusted(result, { server, opt }) {
  const s = opt.scenario === 'plain' ? newSession('plain') : wssSession('untrusted');
  if (opt.scenario === 'plain') sessions.push(s);
  const failed = await init(s, server).then(
    () => null,
    (e) => e.message,
  );
  result.init_error = failed;
  result.url = s.tap.url;
  result.errors = clone(s.errors);
  result.closes = clone(s.closes);
  result.handshakes_received = s.tap.received.handshake;
  check(failed !== null, `init fails (${opt.scenario})`, result);
}

async function scenarioSocketio(result, { url, control, opt }) {
  result.step = 'management enters over wss://';
  const manager = await new SioClient(url, 'manager', opt.ca).connect();
  result.management_enter = await manager.request('connector.entryHandler.enter', {
    role: 'server',
    apikey: opt.apikey,
    secret: opt.secret,
  });
  check(result.management_enter.code === 200, 'management enter', result.management_enter);
  result.step = 'a client without the CA';
  const stranger = new SioClient(url, 'no-ca', null);
  await until('[no-ca] fails', () => stranger.errors.length || stranger.connected, 5000);
  result.without_ca = clone({ connected: stranger.connected, errors: stranger.errors });
  check(!stranger.connected, 'socket.io-client 4 without the CA does not connect', result.without_ca);
  result.step = 'the client enters over TLS';
  const client = await sioClient(url, opt, opt['sio-id'], opt['sio-transports'].split(','));
  result.step = 'pushes';
  result.push_all = await manager.request(PUSH_ALL, { apikey: opt.apikey, msg: { all: 'from manager' } });
  result.end = await httpPush(control, opt.apikey, opt.secret, 'end');
  await until('[client] gets 2 pushes', () => client.messages.length >= 2);
  await sleep(300);
  result.received = clone(client.messages);
  result.errors = clone(client.errors);
  result.transport = client.socket.io.engine.transport.name;
  delete result.step;
}

async function scenarioHold(result, { server, url, opt }) {
  const pomelo = await pomeloClient(server, opt, opt['pomelo-id']);
  const sio = await sioClient(url, opt, opt['sio-id']);
  result.entered = true;
  const n = opt.count;
  await until(`${n} pushes each`, () => pomeloMessages(pomelo).length >= n && sio.messages.length >= n, opt['timeout-ms'] - 2000);
  await sleep(300);
  result.received = clone({ [opt['pomelo-id']]: pomeloMessages(pomelo), [opt['sio-id']]: sio.messages });
  result.urls = { [opt['pomelo-id']]: pomelo.tap.url, [opt['sio-id']]: url };
}

const SCENARIOS = { pomelo: scenarioPomelo, untrusted: scenarioUntrusted, plain: scenarioUntrusted, socketio: scenarioSocketio, hold: scenarioHold };

await main(
  'tls_node',
  async (result) => {
    const opt = serverOptions({
      'control-port': 0,
      scenario: '',
      ca: null,
      'pomelo-id': 'node-wss',
      'sio-id': 'sio-wss',
      'sio-transports': 'websocket',
      count: 2,
    });
    result.timeout_ms = opt['timeout-ms'];
    check(opt.scenario in SCENARIOS, `--scenario is one of ${Object.keys(SCENARIOS)}`, opt.scenario);
    result.scenario = opt.scenario;
    result.node_extra_ca_certs = process.env.NODE_EXTRA_CA_CERTS ?? null;
    const server = { host: opt.host, port: opt.port };
    const control = { host: opt.host, port: opt['control-port'] };
    await SCENARIOS[opt.scenario](result, { server, control, opt, url: `https://${opt.host}:${opt.port}` });
  },
  async () => {
    for (const s of sessions) s.pomelo.disconnect();
    for (const s of sockets) s.disconnect();
  },
);
