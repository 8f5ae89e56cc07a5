// pomelo-protobuf in a real browser: the real Pomelo client (pomelo-jsclient-websocket 0.1.1 with
// pomelo-protobuf 0.4.0's client build) in Debian's headless Chromium, driven by playwright-core,
// against a shaddock client port configured with tests/data/protos.
//
//   node --experimental-websocket tests/interop/browser_protobuf.mjs \
//        --host 127.0.0.1 --port 3010 --apikey demo --secret SECRET \
//        [--protos-dir tests/data/protos] [--control-port 3011]
//        [--timeout-ms 45000] [--screenshot /tmp/page.png]
//
// --control-port as in pomelo_protobuf.mjs: with a control port, a Notice with every field is
// pushed over HTTP too, and the page must show it.
//
// Serves browser_page.html (and exactly the files it loads) from 127.0.0.1:0 (harness.mjs
// openTestPage). A
// management session (the same client in Node, also with the protos) enters; the page enters as a
// client, its handshake brings the protos (the page shows the version its client stored in
// localStorage); management pushes a Notice with pushAll; the page shows the onMsg body as JSON,
// which this script reads back from the DOM and deep-equals to {msg: <the Notice>}. Playwright's
// view of the page's WebSocket shows the handshake with protos and useProto, the enter request
// and the onMsg push as protobuf (not JSON; the push decodes with pomelo-protobuf's server build).
// Then the page loads again as another client: its client finds the protos in localStorage, sends
// protoVersion, gets a handshake with useProto and no protos, and still shows a second Notice.
// Any uncaught error in the page fails the run. Prints one JSON line and exits 0, or 1 with
// `error`. Run by tests/interop_protobuf.rs.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import {
  ENTER,
  INTEROP_DIR,
  PUSH_ALL,
  Tap,
  check,
  checkInstalled,
  httpPush,
  init,
  main,
  newSession,
  openTestPage,
  options,
  request,
  same,
  until,
} from './harness.mjs';

// pomelo-protobuf's server build (what a Pomelo server runs), to read the page's wire independently.
const pomeloServerBuild = createRequire(import.meta.url)('pomelo-protobuf');

let testPage = null;
const sessions = [];

function pomeloDecode(protos, route, bytes) {
  pomeloServerBuild.setDecoderProtos(protos);
  return pomeloServerBuild.decode(route, Buffer.from(bytes));
}

/** One WebSocket of the page as playwright sees it: every package each way. */
function watch(ws) {
  const entry = { url: ws.url(), sent: [], received: [], closed: false };
  const add = (list) => (frame) => {
    const payload = frame.payload;
    if (typeof payload === 'string') list.push({ type: 'text', body: new Uint8Array(Buffer.from(payload)) });
    else for (const p of Tap.packages(payload)) list.push({ type: p.type, size: 4 + p.body.length, body: p.body.slice() });
  };
  ws.on('framesent', add(entry.sent));
  ws.on('framereceived', add(entry.received));
  ws.on('close', () => {
    entry.closed = true;
  });
  return entry;
}

const json = (bytes) => JSON.parse(new TextDecoder().decode(bytes));
const looksJson = (body) => body.length > 0 && body[0] === 0x7b;

await main(
  'browser_protobuf',
  async (result) => {
    const opt = options({
      host: '127.0.0.1',
      port: 0,
      apikey: 'demo',
      secret: '',
      'protos-dir': join(INTEROP_DIR, '..', 'data', 'protos'),
      'control-port': null,
      'timeout-ms': 45000,
      screenshot: null,
    });
    result.timeout_ms = opt['timeout-ms'];
    check(Number.isInteger(opt.port) && opt.port > 0 && opt.port < 65536, '--port must be a port number', opt.port);
    checkInstalled();
    const server = { host: opt.host, port: opt.port };
    const tag = `${process.pid}-${Date.now() % 100000}`;
    const serverProtos = pomeloServerBuild.parse(
      JSON.parse(readFileSync(join(opt['protos-dir'], 'serverProtos.json'), 'utf8')),
    );

    result.step = 'management enters (Node)';
    const admin = newSession('management');
    sessions.push(admin);
    await init(admin, server);
    const version = admin.tap.handshake.sys.protos && admin.tap.handshake.sys.protos.version;
    check(typeof version === 'string' && admin.tap.handshake.sys.useProto === true, 'management handshake: protos', admin.tap.handshake.sys);
    result.version = version;
    const entered = await request(admin, ENTER, { role: 'server', apikey: opt.apikey, secret: opt.secret });
    check(entered.code === 200 && entered.msg === 'push server is ok.', 'management enter', entered);

    result.step = 'serve the page and launch Chromium';
    testPage = await openTestPage(result);
    const { page } = testPage;
    const pageErrors = result.page_errors;
    const pageUrl = (clientId) =>
      testPage.url({ host: opt.host, port: String(opt.port), apikey: opt.apikey, clientId });
    const websockets = [];
    page.on('websocket', (ws) => websockets.push(watch(ws)));
    const pageState = () =>
      page.evaluate(() => ({
        state: document.getElementById('status').getAttribute('data-state'),
        client: document.getElementById('client').textContent,
        protos_version: document.getElementById('protos').getAttribute('data-version'),
        protos_at_load: document.getElementById('protos-at-load').textContent,
        events: [...document.querySelectorAll('#events li')].map((li) => li.textContent),
        notices: [...document.querySelectorAll('#notices li')].map((li) => li.textContent),
      }));
    const load = async (clientId) => {
      await page.goto(pageUrl(clientId), { waitUntil: 'load', timeout: 10000 });
      try {
        await page.waitForFunction(
          () => !['loading', 'connecting'].includes(document.getElementById('status').getAttribute('data-state')),
          null,
          { timeout: 10000, polling: 20 },
        );
      } catch (e) {
        throw new Error(`the page did not finish entering: ${JSON.stringify(await pageState())}`);
      }
      const state = await pageState();
      check(state.state === 'entered', `the page enters as ${clientId}`, state);
      return state;
    };
    const pushAndShow = async (notice, recipients, http = false) => {
      const before = (await pageState()).notices.length;
      let r;
      if (http) {
        r = await httpPush({ host: opt.host, port: Number(opt['control-port']) }, opt.apikey, opt.secret, notice);
        check(r.status === 200 && r.body.recipients === recipients, 'HTTP push', r);
      } else {
        r = await request(admin, PUSH_ALL, { apikey: opt.apikey, msg: notice });
        check(same(r, { code: 200, msg: 'push is ok.', recipients }), 'pushAll response', r);
      }
      try {
        await page.waitForFunction((n) => document.querySelectorAll('#notices li').length > n, before, {
          timeout: 10000,
          polling: 20,
        });
      } catch (e) {
        throw new Error(`the page did not show the notice: ${JSON.stringify(await pageState())}`);
      }
      const shown = (await pageState()).notices.slice(before);
      const body = JSON.parse(shown[0]);
      check(shown.length === 1 && same(body, { msg: notice }), 'the page shows the pushed Notice, deep-equal', shown);
      return { response: r, shown: body };
    };
    /** What one page WebSocket carried: handshakes, and the enter request and onMsg push bodies. */
    const onWire = (ws) => {
      const sentHs = ws.sent.find((p) => p.type === 1);
      const gotHs = ws.received.find((p) => p.type === 1);
      const requests = ws.sent.filter((p) => p.type === 4).map((p) => Tap.message(p.body));
      const pushes = ws.received.filter((p) => p.type === 4).map((p) => ({ ...Tap.message(p.body), size: p.size }));
      const sys = gotHs ? json(gotHs.body).sys : {};
      const onMsgCode = sys.dict && sys.dict.onMsg;
      const onMsg = pushes.filter((m) => m.type === 'push' && (m.route === 'onMsg' || m.route === onMsgCode));
      return {
        sent_protoVersion: sentHs && json(sentHs.body).sys.protoVersion,
        handshake: { useProto: sys.useProto, protos: 'protos' in sys, version: sys.protos && sys.protos.version },
        requests: requests.map((m) => ({ type: m.type, body_bytes: m.body.length, json: looksJson(m.body) })),
        responses: pushes.filter((m) => m.type === 'response').map((m) => ({ json: looksJson(m.body) })),
        on_msg: onMsg.map((m) => ({
          package_bytes: m.size,
          body_bytes: m.body.length,
          json: looksJson(m.body),
          decoded: pomeloDecode(serverProtos, 'onMsg', m.body),
        })),
      };
    };

    result.step = 'the page enters as a client (protos from the handshake)';
    const first = `browser-pb-${tag}`;
    const state1 = await load(first);
    result.page_enter = state1;
    check(state1.protos_at_load === 'none', 'a fresh profile has no protos in localStorage', state1);
    check(state1.protos_version === version, "the page's client stored the handshake's protos", state1);
    const add = await until(`management gets onAdd for ${first}`, () =>
      admin.pushes.find((p) => p.route === 'onAdd' && p.body.clientId === first),
    );
    check(add.body.msg === 'add ok', 'onAdd for the page', add.body);

    result.step = 'pushAll of a Notice to the page';
    const full = {
      title: `Sale — näh ${tag}`,
      body: '50% off, 中文 — today',
      badge: 7,
      tags: ['promo', 'näh'],
      ids: [1, 300, 70000],
    };
    result.push = await pushAndShow(full, 1);
    const pushedFirst = [full];
    if (opt['control-port'] !== null) {
      result.step = 'a Notice with every field over HTTP';
      result.http_push = await pushAndShow({ ...full, title: `over HTTP — ${tag}` }, 1, true);
      pushedFirst.push(result.http_push.shown.msg);
    }

    result.step = 'the page loads again as another client (protos from localStorage)';
    const second = `browser-pb-again-${tag}`;
    const state2 = await load(second);
    result.page_again = state2;
    check(state2.protos_at_load === version, 'the second load finds the protos in localStorage', state2);
    // The first load's connection closed with the navigation; wait for its leave so the next
    // push has exactly one recipient.
    await until(`management gets onLeave for ${first}`, () =>
      admin.pushes.find((p) => p.route === 'onLeave' && p.body.clientId === first),
    );
    const notice2 = { title: `again — 中文 ${tag}`, ids: [4294967295] };
    result.push_again = await pushAndShow(notice2, 1);

    result.step = 'the wire, as Chromium saw it';
    check(websockets.length === 2, 'the page opened one WebSocket per load', websockets.map((w) => w.url));
    for (const ws of websockets) check(ws.url === `ws://${opt.host}:${opt.port}/`, 'the WebSocket goes to the client port', ws.url);
    const [w1, w2] = websockets.map(onWire);
    result.wire = [w1, w2];
    check(w1.handshake.useProto === true && w1.handshake.protos && w1.handshake.version === version, 'first handshake: protos', w1);
    check(w1.sent_protoVersion === 0, 'first load: protoVersion 0 (nothing cached)', w1.sent_protoVersion);
    check(w2.handshake.useProto === true && !w2.handshake.protos, 'second handshake: useProto, no protos', w2);
    check(w2.sent_protoVersion === version, 'second load: the cached protoVersion', w2.sent_protoVersion);
    for (const [i, w] of [w1, w2].entries()) {
      const pushed = [pushedFirst, [notice2]][i];
      check(w.requests.length === 1 && w.requests[0].type === 'request' && !w.requests[0].json, `load ${i + 1}: enter is protobuf`, w.requests);
      check(w.responses.length === 1 && !w.responses[0].json, `load ${i + 1}: its response is protobuf`, w.responses);
      check(w.on_msg.length === pushed.length && w.on_msg.every((m) => !m.json), `load ${i + 1}: onMsg is protobuf`, w.on_msg);
      check(
        same(w.on_msg.map((m) => m.decoded), pushed.map((msg) => ({ msg }))),
        `load ${i + 1}: onMsg decodes with Pomelo's server build`,
        w.on_msg,
      );
    }
    if (opt.screenshot) {
      await page.screenshot({ path: opt.screenshot, fullPage: true });
      result.screenshot = opt.screenshot;
    }
    check(pageErrors.length === 0, 'uncaught errors in the page', pageErrors);
    delete result.step;
  },
  async () => {
    for (const s of sessions) s.pomelo.disconnect();
    if (testPage) await testPage.close();
  },
);
