// pomelo-protobuf (Pomelo's `useProtobuf`) with the real Pomelo JavaScript client: npm
// pomelo-jsclient-websocket 0.1.1 and pomelo-protobuf 0.4.0's client build, run unchanged in Node
// (harness.mjs; the one alias glue.js adds, protobuf.decodeStr = decode, is explained there)
// against a shaddock client port configured with tests/data/protos.
//
//   node --experimental-websocket tests/interop/pomelo_protobuf.mjs \
//        --host 127.0.0.1 --port 3010 --apikey demo --secret SECRET \
//        [--protos-dir tests/data/protos] [--control-port 3011]
//        [--timeout-ms 20000]
//   (or SHADDOCK_HOST, SHADDOCK_PORT, SHADDOCK_APIKEY, SHADDOCK_SECRET, SHADDOCK_PROTOS_DIR, ...)
//
// The Notices the real client encodes carry integer fields (badge, ids): pomelo-protobuf's
// client build keys every uInt32/sInt32/int32 field with wire type 2 (`constant.TYPES[type] ||
// 2`, and their type code is 0), which Pomelo's decoder and shaddock's ignore. With
// --control-port, a Notice with every field is also pushed over the control port's HTTP API
// (shaddock encodes it, the client build decodes it).
//
// A management session and a client, both the real client with the protos the handshake gives:
//  - the handshake carries sys.protos {server, client, version} and useProto; server and client
//    are what Pomelo's own parser (pomelo-protobuf's server build) makes of the two files, and
//    version is what Pomelo 2.2.7 computes (lib/components/protobuf.js: base64 md5 of
//    JSON.stringify(client) + JSON.stringify(server)); the client stores them in localStorage;
//  - every request on a route with a client proto (enter, pushAll, pushByClientId) leaves as
//    protobuf, not JSON: its body does not start with `{` and pomelo-protobuf's server build (what
//    a Pomelo server decodes with) reads the request back from it;
//  - every response and push on a route with a server proto arrives as protobuf (checked on the
//    wire, decoded independently with the server build) and the client decodes it to the object
//    the JSON path gives: {code:200, msg, recipients} for pushes, onMsg {msg: <the Notice>}
//    deep-equal to what management pushed (non-ASCII strings within the BMP: the client build's
//    UTF-8 codec has no 4-byte sequences), onAdd for the client;
//  - a second client whose localStorage already holds the protos (a copy of the first client's,
//    in a fresh copy of the library) sends protoVersion, gets a handshake with useProto but no
//    protos, and still decodes responses and pushes (with the cached protos only).
// Prints one JSON line (with the wire size of one onMsg push, protobuf against JSON) and exits 0,
// or 1 with `error`. Run by tests/interop_protobuf.rs.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import {
  ENTER,
  INTEROP_DIR,
  PUSH_ALL,
  check,
  httpPush,
  init,
  main,
  newSession,
  options,
  request,
  same,
  until,
} from './harness.mjs';

const PUSH_BY_CLIENT_ID = 'pushserver.pushHandler.pushByClientId';
// pomelo-protobuf 0.4.0's server build (lib/protobuf.js), the codec a Pomelo server runs: an
// implementation independent of the client build the sessions use.
const pomeloServerBuild = createRequire(import.meta.url)('pomelo-protobuf');

const sessions = [];

/** Decodes `bytes` (route `route`) with the server build and `protos` (parsed). */
function pomeloDecode(protos, route, bytes) {
  pomeloServerBuild.setDecoderProtos(protos);
  return pomeloServerBuild.decode(route, Buffer.from(bytes));
}

/** A session's data messages both ways, routes resolved through its handshake's dictionary. */
function wire(session) {
  const dict = (session.tap.handshake && session.tap.handshake.sys && session.tap.handshake.sys.dict) || {};
  const names = Object.fromEntries(Object.entries(dict).map(([route, code]) => [code, route]));
  const byId = {};
  const out = [];
  for (const dir of ['sent', 'received']) {
    for (const m of session.tap.messages(dir)) {
      const route = m.compressed ? names[m.route] : m.route;
      if (m.type === 'request') byId[m.id] = route;
      out.push({ dir, ...m, route: m.type === 'response' ? byId[m.id] : route });
    }
  }
  return out;
}

/** Whether a body is JSON text rather than protobuf (a JSON object body starts with `{`). */
const looksJson = (body) => body.length > 0 && body[0] === 0x7b;

await main(
  'pomelo_protobuf',
  async (result) => {
    const opt = options({
      host: '127.0.0.1',
      port: 0,
      apikey: 'demo',
      secret: '',
      'protos-dir': join(INTEROP_DIR, '..', 'data', 'protos'),
      'control-port': null,
      'timeout-ms': 20000,
    });
    check(Number.isInteger(opt.port) && opt.port > 0 && opt.port < 65536, '--port must be a port number', opt.port);
    result.timeout_ms = opt['timeout-ms'];
    const server = { host: opt.host, port: opt.port };
    const tag = `${process.pid}-${Date.now() % 100000}`;
    const file = (name) => JSON.parse(readFileSync(join(opt['protos-dir'], name), 'utf8'));
    const expected = {
      server: pomeloServerBuild.parse(file('serverProtos.json')),
      client: pomeloServerBuild.parse(file('clientProtos.json')),
    };
    expected.version = createHash('md5')
      .update(JSON.stringify(expected.client) + JSON.stringify(expected.server))
      .digest('base64');

    result.step = 'load the client';
    const admin = newSession('management');
    const client = newSession(`pb-${tag}`);
    sessions.push(admin, client);

    result.step = 'management connects';
    await init(admin, server);
    const sys = admin.tap.handshake.sys;
    result.handshake = {
      useProto: sys.useProto,
      protos_keys: sys.protos && Object.keys(sys.protos),
      version: sys.protos && sys.protos.version,
      pomelo_version: expected.version,
      sent_protoVersion: admin.tap.sentHandshake.sys.protoVersion,
    };
    check(sys.useProto === true, 'handshake: useProto', sys.useProto);
    check(sys.protos && typeof sys.protos.version === 'string' && sys.protos.version !== '', 'handshake: protos.version', sys.protos);
    check(same(sys.protos.server, expected.server), 'handshake: protos.server is what Pomelo parses of serverProtos.json', sys.protos.server);
    check(same(sys.protos.client, expected.client), 'handshake: protos.client is what Pomelo parses of clientProtos.json', sys.protos.client);
    check(sys.protos.version === expected.version, `handshake: protos.version is Pomelo's (${expected.version})`, sys.protos.version);
    const stored = admin.storage.get('protos');
    check(stored && same(JSON.parse(stored), sys.protos), "the client stored the handshake's protos in localStorage", stored);

    result.step = 'management enters';
    const entered = await request(admin, ENTER, { role: 'server', apikey: opt.apikey, secret: opt.secret });
    result.management_enter = entered;
    // With protobuf an empty repeated field is absent: JSON's `users: []` decodes to no `users`.
    check(entered.code === 200 && entered.msg === 'push server is ok.', 'management enter', entered);
    check(entered.count === (entered.users || []).length, 'management enter: users/count', entered);

    result.step = 'the client connects and enters';
    await init(client, server);
    check(client.tap.handshake.sys.protos.version === expected.version, 'client handshake: protos', client.tap.handshake.sys);
    check(client.storage.has('protos'), "the client's localStorage got the protos");
    const clientEnter = await request(client, ENTER, { role: 'client', apikey: opt.apikey, clientId: client.label });
    result.client_enter = clientEnter;
    check(same(clientEnter, { code: 200, msg: 'add ok' }), 'client enter', clientEnter);
    const add = await until(`management gets onAdd for ${client.label}`, () =>
      admin.pushes.find((p) => p.route === 'onAdd' && p.body.clientId === client.label),
    );
    result.on_add = add.body;
    check(add.body.msg === 'add ok' && add.body.count === entered.count + 1, 'onAdd', add.body);

    result.step = 'pushAll of a Notice';
    const notice = {
      title: `Sale — näh ${tag}`,
      body: '50% off, 中文, ünïcödé — today',
      badge: 3,
      tags: ['promo', 'näh', '中文'],
      ids: [1, 300, 70000],
    };
    const pushed = await request(admin, PUSH_ALL, { apikey: opt.apikey, msg: notice });
    result.push_all = pushed;
    check(same(pushed, { code: 200, msg: 'push is ok.', recipients: 1 }), 'pushAll response', pushed);
    const got = await until('the client gets onMsg', () => client.pushes.find((p) => p.route === 'onMsg'));
    result.on_msg = got.body;
    check(same(got.body, { msg: notice }), 'onMsg is the pushed Notice, deep-equal', got.body);

    result.step = 'pushByClientId';
    const just = { title: `just you, ${client.label}`, badge: 0, tags: ['—'] };
    const byId = await request(admin, PUSH_BY_CLIENT_ID, { apikey: opt.apikey, clientId: client.label, msg: just });
    result.push_by_client_id = byId;
    check(same(byId, { code: 200, msg: 'push is ok.', recipients: 1 }), 'pushByClientId response', byId);
    const got2 = await until('the client gets the second onMsg', () => client.pushes.filter((p) => p.route === 'onMsg')[1]);
    check(same(got2.body, { msg: just }), 'onMsg (pushByClientId) deep-equal', got2.body);
    const onMsgSent = [notice, just];

    if (opt['control-port'] !== null) {
      result.step = 'a Notice with every field over HTTP';
      const full = {
        title: `over HTTP — ${tag}`,
        body: 'näh',
        badge: 42,
        tags: ['a', '中文'],
        ids: [0, 127, 128, 4294967295],
      };
      const control = { host: opt.host, port: Number(opt['control-port']) };
      const r = await httpPush(control, opt.apikey, opt.secret, full);
      result.http_push = r;
      check(r.status === 200 && r.body.recipients === 1, 'HTTP push', r);
      const got3 = await until('the client gets the HTTP onMsg', () => client.pushes.filter((p) => p.route === 'onMsg')[2]);
      result.on_msg_http = got3.body;
      check(same(got3.body, { msg: full }), 'onMsg (HTTP, every field) deep-equal', got3.body);
      onMsgSent.push(full);
    }

    result.step = 'the wire';
    const adminWire = wire(admin);
    const clientWire = wire(client);
    const all = [...adminWire, ...clientWire];
    const sentReq = {
      [ENTER]: all.filter((m) => m.dir === 'sent' && m.route === ENTER),
      [PUSH_ALL]: adminWire.filter((m) => m.dir === 'sent' && m.route === PUSH_ALL),
      [PUSH_BY_CLIENT_ID]: adminWire.filter((m) => m.dir === 'sent' && m.route === PUSH_BY_CLIENT_ID),
    };
    const requestBodies = {
      [ENTER]: [
        { role: 'server', apikey: opt.apikey, secret: opt.secret },
        { role: 'client', apikey: opt.apikey, clientId: client.label },
      ],
      [PUSH_ALL]: [{ apikey: opt.apikey, msg: notice }],
      [PUSH_BY_CLIENT_ID]: [{ apikey: opt.apikey, clientId: client.label, msg: just }],
    };
    result.requests_on_wire = {};
    for (const [route, msgs] of Object.entries(sentReq)) {
      check(msgs.length === requestBodies[route].length, `requests on ${route}`, msgs.length);
      result.requests_on_wire[route] = msgs.map((m, i) => {
        check(!looksJson(m.body), `the ${route} request body is not JSON`, Buffer.from(m.body).toString());
        const read = pomeloDecode(expected.client, route, m.body);
        check(same(read, requestBodies[route][i]), `Pomelo's server build reads the ${route} request back`, read);
        return { body_bytes: m.body.length, first_byte: m.body[0], compressed_route: m.compressed };
      });
    }
    const responses = all.filter((m) => m.dir === 'received' && m.type === 'response');
    check(responses.length === 4, 'a response to each of the four requests', responses.map((m) => m.route));
    for (const m of responses) {
      check(!looksJson(m.body), `the ${m.route} response body is not JSON`, Buffer.from(m.body).toString());
    }
    const onMsgs = clientWire.filter((m) => m.dir === 'received' && m.type === 'push' && m.route === 'onMsg');
    check(onMsgs.length === onMsgSent.length, 'every onMsg push on the wire', onMsgs.length);
    for (const [i, m] of onMsgs.entries()) {
      check(!looksJson(m.body), 'the onMsg body is not JSON', Buffer.from(m.body).toString());
      const read = pomeloDecode(expected.server, 'onMsg', m.body);
      check(same(read, { msg: onMsgSent[i] }), "Pomelo's server build reads the onMsg push", read);
    }
    const onAdds = adminWire.filter((m) => m.dir === 'received' && m.type === 'push' && m.route === 'onAdd');
    check(onAdds.length === 1 && !looksJson(onAdds[0].body), 'the onAdd push is protobuf', onAdds.length);
    pomeloServerBuild.setEncoderProtos(expected.server);
    // The last onMsg: the HTTP one with every field when there is one.
    const measured = onMsgSent[onMsgSent.length - 1];
    const asPomelo = pomeloServerBuild.encode('onMsg', { msg: measured });
    const jsonBody = Buffer.byteLength(JSON.stringify({ msg: measured }));
    const push = onMsgs[onMsgs.length - 1];
    result.on_msg_bytes = {
      notice: measured,
      package: push.size,
      message_header: push.size - 4 - push.body.length,
      body_protobuf: push.body.length,
      body_json: jsonBody,
      package_if_json: push.size - push.body.length + jsonBody,
      same_bytes_as_pomelo_server_build: Buffer.compare(Buffer.from(push.body), asPomelo) === 0,
    };
    check(push.body.length < jsonBody, 'the protobuf body is smaller than the JSON one', result.on_msg_bytes);

    result.step = 'a second client with the protos in localStorage';
    const cached = newSession(`pb-cached-${tag}`, { storage: client.storage });
    sessions.push(cached);
    await init(cached, server);
    const hs2 = cached.tap.handshake.sys;
    result.cached_handshake = {
      sent_protoVersion: cached.tap.sentHandshake.sys.protoVersion,
      useProto: hs2.useProto,
      protos: 'protos' in hs2,
    };
    check(cached.tap.sentHandshake.sys.protoVersion === expected.version, 'the cached client sends protoVersion', cached.tap.sentHandshake.sys);
    check(hs2.useProto === true && !('protos' in hs2), 'a current protoVersion: useProto and no protos', hs2);
    const cachedEnter = await request(cached, ENTER, { role: 'client', apikey: opt.apikey, clientId: cached.label });
    check(same(cachedEnter, { code: 200, msg: 'add ok' }), 'the cached client enters', cachedEnter);
    const third = { title: `to both — ${tag}`, ids: [4294967295, 0] };
    const pushed3 = await request(admin, PUSH_ALL, { apikey: opt.apikey, msg: third });
    check(same(pushed3, { code: 200, msg: 'push is ok.', recipients: 2 }), 'pushAll to both', pushed3);
    for (const c of [client, cached]) {
      const p = await until(`${c.label} gets the third onMsg`, () =>
        c.pushes.find((x) => x.route === 'onMsg' && x.body.msg && x.body.msg.title === third.title),
      );
      check(same(p.body, { msg: third }), `${c.label}: onMsg deep-equal`, p.body);
    }
    const cachedWire = wire(cached);
    const cachedPush = cachedWire.find((m) => m.dir === 'received' && m.type === 'push' && m.route === 'onMsg');
    check(cachedPush && !looksJson(cachedPush.body), 'the cached client got onMsg as protobuf', cachedPush);
    const cachedReq = cachedWire.find((m) => m.dir === 'sent' && m.route === ENTER);
    check(cachedReq && !looksJson(cachedReq.body), 'the cached client sent enter as protobuf', cachedReq);
    result.cached_on_msg = cached.pushes.filter((p) => p.route === 'onMsg').map((p) => p.body);

    result.step = 'final checks';
    for (const s of sessions) {
      check(s.closes.length === 0 && s.kicks.length === 0 && s.errors.length === 0, `${s.label} stayed open`, {
        closes: s.closes,
        kicks: s.kicks,
        errors: s.errors,
      });
    }
    check(!admin.pushes.some((p) => p.route === 'onMsg'), 'management got no onMsg', admin.pushes);
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
