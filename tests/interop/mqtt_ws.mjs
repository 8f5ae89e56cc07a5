// MQTT.js (npm `mqtt`, pinned in package-lock.json), the MQTT client most browser and Node
// applications use, run unchanged in Node against shaddock's client port over WebSocket
// (ws://HOST:PORT/mqtt, subprotocol `mqtt`), as MQTT 3.1.1 (--protocol-version 4) or 5.0 (5).
//
//   node --experimental-websocket tests/interop/mqtt_ws.mjs --host 127.0.0.1 --port 3010 \
//        --control-port 3080 --apikey demo --secret SECRET --protocol-version 4|5 \
//        --scenario qos1|retain|keepalive|hold [--count 5] [--client-id ID] [--timeout-ms 20000]
//
// Scenarios:
//  - qos1: a client subscribes to push/{apikey} at QoS 1, then `count` pushes {"n": i} are made
//    through the HTTP push API, one after the other; every one must arrive once, in order.
//  - retain: a management session (username apikey, password secret) publishes a retained
//    message; a new subscriber gets it first, with the RETAIN flag; a later HTTP push arrives
//    without it; an empty retained payload clears it (and is not pushed); a subscriber after that
//    gets no retained message.
//  - keepalive: a client with Keep Alive 1 s idles for 3.5 s (MQTT.js pings; every PINGREQ must
//    be answered, or MQTT.js closes), then an HTTP push must still reach it.
//  - hold: one client (--client-id) subscribes at QoS 1 and waits for `count` messages, made by
//    someone else (the Rust test); for the mixed-channel test.
// After the last expected message every scenario waits a further 300 ms, so a duplicate would be
// seen. Prints one JSON line (`received` lists every message with topic, payload, qos, retain and
// dup) and exits 0, or 1 with `error`. Run by tests/interop_mqtt.rs.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { INTEROP_DIR, check, httpPush, main, options, until } from './harness.mjs';

const MQTT_MANIFEST = join(INTEROP_DIR, 'node_modules', 'mqtt', 'package.json');
if (!existsSync(MQTT_MANIFEST)) {
  process.stdout.write(
    `${JSON.stringify({ script: 'mqtt_ws', ok: false, error: `${MQTT_MANIFEST} is missing: run \`npm ci --prefix tests/interop\`` })}\n`,
  );
  process.exit(1);
}
const { default: mqtt } = await import('mqtt');

const clients = [];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Connects with MQTT.js; resolves once the CONNACK accepted, with a record of what arrives. */
function connect(label, url, opts) {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, keepalive: 30, clean: true, ...opts });
    const rec = { label, client, received: [], errors: [], closes: 0, connack: null };
    clients.push(rec);
    client.on('message', (topic, payload, packet) => {
      rec.received.push({ topic, payload: payload.toString('utf8'), qos: packet.qos, retain: packet.retain, dup: packet.dup });
    });
    client.on('error', (e) => {
      rec.errors.push(e.message);
      reject(new Error(`${label}: ${e.message}`));
    });
    client.on('close', () => {
      rec.closes += 1;
      // Before a CONNACK: the server closed the connection (a refused upgrade, or no MQTT).
      if (!rec.connack) reject(new Error(`${label}: the connection closed before a CONNACK`));
    });
    client.once('connect', (connack) => {
      rec.connack = {
        sessionPresent: connack.sessionPresent,
        reasonCode: connack.reasonCode ?? connack.returnCode ?? 0,
        serverKeepAlive: connack.properties?.serverKeepAlive ?? null,
      };
      resolve(rec);
    });
  });
}

/** SUBSCRIBE at QoS 1; the granted list as [{topic, qos}]. */
async function subscribe(rec, topic) {
  const granted = await rec.client.subscribeAsync(topic, { qos: 1 });
  return granted.map((g) => ({ topic: g.topic, qos: g.qos }));
}

/** An HTTP push that must be answered 200; its body. */
async function push(control, opt, msg) {
  const answer = await httpPush(control, opt.apikey, opt.secret, msg);
  check(answer.status === 200, `HTTP push ${JSON.stringify(msg)} answered`, answer);
  return answer.body;
}

function summary(rec) {
  return { received: rec.received, errors: rec.errors, closes: rec.closes, connack: rec.connack };
}

await main(
  'mqtt_ws',
  async (result) => {
    const opt = options({
      host: '127.0.0.1',
      port: 0,
      'control-port': 0,
      apikey: 'demo',
      secret: '',
      'protocol-version': 4,
      scenario: '',
      count: 5,
      'client-id': null,
      'timeout-ms': 20000,
    });
    result.timeout_ms = opt['timeout-ms'];
    result.versions.mqtt = JSON.parse(readFileSync(MQTT_MANIFEST, 'utf8')).version;
    const version = opt['protocol-version'];
    check(version === 4 || version === 5, '--protocol-version must be 4 or 5', version);
    const url = `ws://${opt.host}:${opt.port}/mqtt`;
    const control = { host: opt.host, port: opt['control-port'] };
    const topic = `push/${opt.apikey}`;
    const asClient = (id) => ({ protocolVersion: version, clientId: id, username: opt.apikey });
    result.scenario = opt.scenario;
    result.protocol_version = version;

    if (opt.scenario === 'qos1') {
      const sub = await connect('sub', url, asClient(`js-qos1-v${version}`));
      result.granted = await subscribe(sub, topic);
      result.answers = [];
      for (let i = 0; i < opt.count; i++) result.answers.push(await push(control, opt, { n: i }));
      await until(`${opt.count} messages arrive`, () => sub.received.length >= opt.count);
      await sleep(300);
      Object.assign(result, summary(sub));
    } else if (opt.scenario === 'retain') {
      const manager = await connect('manager', url, {
        protocolVersion: version,
        clientId: `js-manager-v${version}`,
        username: opt.apikey,
        password: opt.secret,
      });
      const retained = JSON.stringify({ retained: version });
      await manager.client.publishAsync(topic, retained, { qos: 1, retain: true });

      const first = await connect('first', url, asClient(`js-first-v${version}`));
      result.first_granted = await subscribe(first, topic);
      await until('the retained message reaches the new subscriber', () => first.received.length >= 1);
      result.after_answer = await push(control, opt, 'after');
      await until('the HTTP push after the retained one arrives', () => first.received.length >= 2);

      // An empty retained payload clears the retained message and is not pushed: the next
      // message the first subscriber sees is the HTTP push made after it.
      await manager.client.publishAsync(topic, '', { qos: 1, retain: true });
      result.cleared_answer = await push(control, opt, 'cleared');
      await until('the HTTP push after the clear arrives', () => first.received.length >= 3);

      const second = await connect('second', url, asClient(`js-second-v${version}`));
      result.second_granted = await subscribe(second, topic);
      result.late_answer = await push(control, opt, 'late');
      await until('the HTTP push after the second subscription arrives', () => second.received.length >= 1);
      await sleep(300);
      result.first = summary(first);
      result.second = summary(second);
      result.manager = summary(manager);
    } else if (opt.scenario === 'keepalive') {
      // Keep Alive 1 s: MQTT.js pings every second it sends nothing, and closes the connection
      // itself if a PINGRESP does not come in time; the server closes one silent for 1.5 s.
      const sub = await connect('keepalive', url, { ...asClient(`js-keepalive-v${version}`), keepalive: 1 });
      const counts = { pingreq: 0, pingresp: 0 };
      sub.client.on('packetsend', (p) => {
        if (p.cmd === 'pingreq') counts.pingreq += 1;
      });
      sub.client.on('packetreceive', (p) => {
        if (p.cmd === 'pingresp') counts.pingresp += 1;
      });
      result.granted = await subscribe(sub, topic);
      await sleep(3500);
      result.pings = { ...counts };
      result.answer = await push(control, opt, 'still here');
      await until('the push after 3.5 s of pings arrives', () => sub.received.length >= 1);
      await sleep(300);
      Object.assign(result, summary(sub));
    } else if (opt.scenario === 'hold') {
      check(opt['client-id'], '--client-id is required with --scenario hold');
      const sub = await connect('hold', url, asClient(opt['client-id']));
      result.granted = await subscribe(sub, topic);
      // The Rust test polls the presence list, then pushes.
      await until(`${opt.count} messages arrive`, () => sub.received.length >= opt.count, opt['timeout-ms'] - 1000);
      await sleep(300);
      Object.assign(result, summary(sub));
    } else {
      throw new Error(`unknown --scenario ${JSON.stringify(opt.scenario)} (qos1, retain, keepalive or hold)`);
    }
  },
  async () => {
    await Promise.all(clients.map((rec) => rec.client.endAsync().catch(() => {})));
  },
);
