// The real Pomelo JavaScript client, npm pomelo-jsclient-websocket 0.1.1 (the browser client most
// Pomelo deployments shipped), run unchanged in Node against a shaddock client port.
//
//   node --experimental-websocket tests/interop/pomelo_node.mjs \
//        --host 127.0.0.1 --port 3010 --apikey demo --secret SECRET [--timeout-ms 20000]
//   (or SHADDOCK_HOST, SHADDOCK_PORT, SHADDOCK_APIKEY, SHADDOCK_SECRET, SHADDOCK_TIMEOUT_MS)
//
// One management session and two clients: management enters and sees onAdd for each client; two
// pushAll calls reach both clients as onMsg, in order, exactly once (one message is not ASCII);
// a client's request on an unknown route gets {code:404, msg}; after 3 heartbeat rounds (more
// than 2 x the server's heartbeat interval, which must be short: heartbeat_secs = 1) every session
// is still open and a third pushAll arrives; finally a second connection with one client's
// clientId replaces it, and the old session gets onKick {reason:"replaced"} and is closed.
// Prints one JSON line and exits 0, or 1 with `error`.
// Run by tests/interop_node.rs.
//
// The glue pomelo-jsclient-websocket 0.1.1 needs (it is a classic browser script that reads
// globals when it loads and keeps its state in one module-level singleton):
//  - `window`: it reads window.Protocol, window.protobuf, window.EventEmitter, window.rsa and sets
//    window.pomelo. Each session is a vm context whose global object is also `window`, and the
//    library files are evaluated there as classic scripts, so each session has its own copy of
//    the client's state, as each browser tab does (harness.mjs newSession).
//  - `window.EventEmitter`: the client is `Object.create(EventEmitter.prototype)` and uses on/emit.
//    component-emitter 1.3.1 (the npm package of component's `emitter`, which the client's own
//    component build used), loaded as a script: it defines a global `Emitter`; glue.js copies it.
//  - `window.Protocol`: pomelo-protocol 0.1.6 lib/protocol.js as a script. With `window` defined it
//    takes its browser path (Uint8Array instead of Buffer), which is the one the client needs:
//    it sends `packet.buffer`, which is exact only for a Uint8Array of its own.
//  - `window.protobuf`: pomelo-protobuf 0.4.0 lib/client/protobuf.js, its documented browser
//    build. It exports to `module.exports`; glue.js copies that to window.protobuf. It is only
//    used if a handshake carries protos (here shaddock's carries none; the tap checks; with
//    protos, pomelo_protobuf.mjs). glue.js also aliases protobuf.decodeStr to protobuf.decode,
//    which 0.1.1 calls but the client build lacks (explained in glue.js).
//  - `module`: protocol.js, protobuf.js and pomelo-client.js all end with an unconditional
//    `module.exports = ...`, a ReferenceError in a plain browser page; glue.js gives each script a
//    fresh throwaway `module` object (the same glue.js runs in the browser test page).
//  - `WebSocket`: Node's own (undici), global with --experimental-websocket on Node 20; the
//    client sets binaryType = 'arraybuffer' and sends ArrayBuffers, which undici supports. The
//    npm `ws` package is not needed. A subclass only records the packages that cross it.
//  - `console`: the client logs ('connect to ws://...', 'socket close: ...'); each session's
//    console writes to stderr so that stdout carries only the result line.
//  - `localStorage`: a Map-backed one, as a browser has; the client touches it only when the
//    handshake carries protos.
//  - `setTimeout`/`clearTimeout`: Node's (heartbeats and its heartbeat-timeout check).
//  Not needed: `window.rsa` (only with init({encrypt:true})), `window.decodeIO_protobuf`.

import { ENTER, PUSH_ALL, check, init, main, newSession, options, request, same, until } from './harness.mjs';

const sessions = [];

await main(
  'pomelo_node',
  async (result) => {
    const opt = options({ host: '127.0.0.1', port: 0, apikey: 'demo', secret: '', 'timeout-ms': 20000 });
    const server = { host: opt.host, port: opt.port };
    check(Number.isInteger(opt.port) && opt.port > 0 && opt.port < 65536, '--port must be a port number', opt.port);
    result.timeout_ms = opt['timeout-ms'];
    const tag = `${process.pid}-${Date.now() % 100000}`;
    const ids = [`node-a-${tag}`, `node-b-${tag}`];

    result.step = 'load the client';
    const admin = newSession('management');
    const clients = ids.map((id) => newSession(id));
    sessions.push(admin, ...clients);

    result.step = 'management enters';
    await init(admin, server);
    const entered = await request(admin, ENTER, { role: 'server', apikey: opt.apikey, secret: opt.secret });
    result.management_enter = entered;
    check(entered.code === 200 && entered.msg === 'push server is ok.', 'management enter', entered);
    check(Array.isArray(entered.users) && entered.count === entered.users.length, 'management enter: users/count', entered);
    const base = entered.count;

    result.client_enter = [];
    result.on_add = [];
    for (const [i, c] of clients.entries()) {
      result.step = `client ${c.label} enters`;
      await init(c, server);
      const r = await request(c, ENTER, { role: 'client', apikey: opt.apikey, clientId: c.label });
      result.client_enter.push(r);
      check(r.code === 200 && r.msg === 'add ok', `client ${c.label} enter`, r);
      result.step = `management gets onAdd for ${c.label}`;
      const add = await until(`management gets onAdd for ${c.label}`, () =>
        admin.pushes.find((p) => p.route === 'onAdd' && p.body.clientId === c.label),
      );
      result.on_add.push(add.body);
      check(add.body.msg === 'add ok' && add.body.count === base + i + 1, `onAdd for ${c.label}`, add.body);
    }

    const msgs = [`hello from pomelo_node ${tag}`, `héllo wörld, 中文 ✓ ${tag}`, `after heartbeats ${tag}`];
    const pushAll = async (msg) => {
      const r = await request(admin, PUSH_ALL, { apikey: opt.apikey, msg });
      check(r.code === 200 && r.msg === 'push is ok.' && r.recipients === clients.length, 'pushAll response', r);
      for (const c of clients) {
        await until(`${c.label} gets onMsg ${JSON.stringify(msg)}`, () =>
          c.pushes.some((p) => p.route === 'onMsg' && p.body.msg === msg),
        );
      }
      return r;
    };

    result.step = 'pushAll';
    result.push_all = [await pushAll(msgs[0]), await pushAll(msgs[1])];

    result.step = 'a request on an unknown route';
    const wrong = await request(clients[0], 'connector.entryHandler.nope', {});
    result.wrong_route = wrong;
    check(wrong.code === 404 && typeof wrong.msg === 'string' && wrong.msg.trim() !== '', 'unknown route', wrong);

    result.step = 'heartbeats keep the sessions open';
    const hb = admin.tap.handshake && admin.tap.handshake.sys && admin.tap.handshake.sys.heartbeat;
    check(Number.isInteger(hb) && hb >= 1, 'handshake sys.heartbeat', hb);
    check(hb <= 3, 'the heartbeat check needs a short interval (heartbeat_secs = 1 in the server config)', hb);
    const started = Date.now();
    const marks = sessions.map((s) => s.tap.received.heartbeat);
    await until(
      'every session has had 3 more server heartbeats and 2 x heartbeat + 0.5 s has passed',
      () =>
        Date.now() - started > 2 * hb * 1000 + 500 &&
        sessions.every((s, i) => s.tap.received.heartbeat >= marks[i] + 3),
      (3 * hb + 3) * 1000,
    );
    result.heartbeat = {
      interval_s: hb,
      waited_ms: Date.now() - started,
      server_heartbeats: sessions.map((s, i) => s.tap.received.heartbeat - marks[i]),
    };
    result.push_all.push(await pushAll(msgs[2]));

    result.step = 'final checks';
    for (const s of sessions) {
      check(s.closes.length === 0 && s.kicks.length === 0 && s.errors.length === 0, `${s.label} stayed open`, {
        closes: s.closes,
        kicks: s.kicks,
        errors: s.errors,
      });
    }
    result.received = {};
    for (const c of clients) {
      const got = c.pushes.filter((p) => p.route === 'onMsg').map((p) => p.body);
      result.received[c.label] = got;
      check(same(got, msgs.map((msg) => ({ msg }))), `${c.label}: every push once, in order`, got);
      check(!c.pushes.some((p) => p.route === 'onAdd'), `${c.label} got no onAdd`, c.pushes);
    }
    check(!admin.pushes.some((p) => p.route === 'onMsg'), 'management got no onMsg', admin.pushes);
    const hs = admin.tap.summary().handshake;
    check(hs.code === 200 && hs.useDict === true && hs.dict_routes > 0 && !hs.protos, 'handshake: dict, no protos', hs);
    const compressed = sessions.reduce((n, s) => n + s.tap.requests.compressed, 0);
    check(compressed > 0, 'the client sent no request with a dictionary-compressed route');

    // A kick over WebSocket, as the client sees it: a second connection with a clientId that is
    // online replaces the first (DESIGN §1), which gets onKick {reason:"replaced"} and a close.
    result.step = 'a second connection replaces a clientId';
    const old = clients[1];
    const replacer = newSession(`${old.label} (again)`);
    sessions.push(replacer);
    await init(replacer, server);
    const again = await request(replacer, ENTER, { role: 'client', apikey: opt.apikey, clientId: old.label });
    check(again.code === 200 && again.msg === 'add ok', 'the second connection enters', again);
    await until(`${old.label} is kicked and closed`, () => old.kicks.length > 0 && old.closes.length > 0);
    result.replaced = { kick: old.kicks[0], close: old.closes[0], wire_kicks: old.tap.kicks };
    check(same(old.kicks, [{ reason: 'replaced' }]), 'the replaced session gets onKick {reason:"replaced"}', old.kicks);
    const last = `after the replacement ${tag}`;
    const r = await request(admin, PUSH_ALL, { apikey: opt.apikey, msg: last });
    result.replaced.push_all = r;
    check(r.code === 200 && r.recipients === clients.length, 'pushAll after the replacement', r);
    await until('the new connection gets the push', () => replacer.pushes.some((p) => p.body.msg === last));
    await until('the other client gets the push', () => clients[0].pushes.some((p) => p.body.msg === last));
    check(!old.pushes.some((p) => p.body.msg === last), 'the replaced session got no push after its kick', old.pushes);

    result.wire = Object.fromEntries(sessions.map((s) => [s.label, s.tap.summary()]));
    delete result.step;
  },
  async (result) => {
    if (!result.ok && !result.wire) {
      result.wire = Object.fromEntries(sessions.map((s) => [s.label, { ...s.tap.summary(), closes: s.closes, errors: s.errors }]));
    }
    for (const s of sessions) s.pomelo.disconnect();
  },
);
