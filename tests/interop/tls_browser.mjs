// The real Pomelo JavaScript client (pomelo-jsclient-websocket 0.1.1) in Debian's headless
// Chromium over wss://, against a shaddock client port with [client.tls].
//
//   node --experimental-websocket tests/interop/tls_browser.mjs \
//        --host 127.0.0.1 --port 3010 --apikey demo --secret SECRET \
//        --page-cert page-cert.pem --page-key page-key.pem --spki HASH1,HASH2 \
//        [--expect entered|refused] [--timeout-ms 45000]
//
// The page (browser_page.html, the same one browser.mjs serves, unchanged) is served over HTTPS
// (harness.mjs openTestPage with `tls`: Node's https with --page-cert/--page-key), so it is a
// secure context: it may open wss:// and nothing else (a ws:// from an https page is mixed
// content, which Chromium blocks). pomelo-jsclient-websocket 0.1.1 (the only version on npm)
// hard-codes `'ws://' + host` in pomelo.init (lib/pomelo-client.js, about line 86), so, as any
// deployment that serves its page over HTTPS must, the page wraps window.WebSocket before its
// scripts run (harness.mjs wssOnly, given to Playwright's addInitScript) so that the URL's scheme
// becomes wss://; the library itself is not modified.
//
// Trust: Chromium's own flag --ignore-certificate-errors-spki-list=<base64(sha256(SPKI DER))>,
// one hash per key (--spki, comma-separated: the page's CA and, unless the test wants a
// refusal, the gateway's CA; both CAs are in the chains the servers send). Chromium applies
// that flag only with --user-data-dir, which Playwright always passes (its temp profile); the
// context does NOT ignore HTTPS errors. --expect refused is the negative control: the gateway's
// CA is not in --spki, and the wss:// connection must fail while the page itself loads.
//
// --expect entered: a management session (the same client in Node, over plain ws://) enters; the
// page enters as a client over wss:// and shows each onMsg push in #messages; management sees
// onAdd for the page's clientId and pushes two messages with pushAll (one not ASCII), which the
// page must show once each, in order. Playwright must have seen exactly one WebSocket, whose URL
// starts with wss://. Prints one JSON line and exits 0, or 1 with `error`. Run by
// tests/interop_tls.rs.

import {
  ENTER,
  PUSH_ALL,
  check,
  checkInstalled,
  init,
  main,
  newSession,
  openTestPage,
  pageReaches,
  request,
  serverOptions,
  until,
  watchWebSockets,
  wssOnly,
} from './harness.mjs';

let testPage = null;
const sessions = [];

await main(
  'tls_browser',
  async (result) => {
    const opt = serverOptions({
      'page-cert': '',
      'page-key': '',
      spki: '',
      expect: 'entered',
      'timeout-ms': 45000,
    });
    result.timeout_ms = opt['timeout-ms'];
    check(['entered', 'refused'].includes(opt.expect), '--expect is entered or refused', opt.expect);
    checkInstalled();
    const server = { host: opt.host, port: opt.port };
    const clientId = `tls-browser-${process.pid}-${Date.now() % 100000}`;

    let admin = null;
    if (opt.expect === 'entered') {
      result.step = 'management enters (Node)';
      admin = newSession('management');
      sessions.push(admin);
      await init(admin, server);
      const entered = await request(admin, ENTER, { role: 'server', apikey: opt.apikey, secret: opt.secret });
      check(entered.code === 200, 'management enter', entered);
    }

    result.step = 'serve the page over HTTPS and launch Chromium';
    result.chromium_flags = [`--ignore-certificate-errors-spki-list=${opt.spki}`];
    testPage = await openTestPage(result, {
      tls: { cert: opt['page-cert'], key: opt['page-key'] },
      args: result.chromium_flags,
      // Runs in the page before its scripts (harness.mjs wssOnly, by its source).
      initScript: `window.WebSocket = (${wssOnly})(window.WebSocket);`,
    });
    const { page } = testPage;
    const url = testPage.url({ host: opt.host, port: String(opt.port), apikey: opt.apikey, clientId });
    result.page_url = url;
    const websockets = watchWebSockets(page);
    result.websockets = websockets;
    result.step = 'the page loads over HTTPS and connects';
    await page.goto(url, { waitUntil: 'load', timeout: 10000 });
    const entering = await pageReaches(page);
    result.page_enter = entering;
    check(entering.protocol === 'https:' && entering.secure_context === true, 'the page is a secure context', entering);

    if (opt.expect === 'refused') {
      result.step = 'the wss:// connection is refused';
      check(entering.state === 'closed', 'the page could not connect', entering);
      check(entering.events.includes('WebSocket error'), 'the page saw a WebSocket error', entering);
      check(
        websockets.length === 1 && websockets[0].url.startsWith('wss://') && websockets[0].frames_received === 0,
        'one wss:// WebSocket, which received nothing',
        websockets,
      );
      result.page = entering;
      delete result.step;
      return;
    }
    check(entering.state === 'entered', 'the page enters', entering);

    result.step = 'management gets onAdd for the page';
    const add = await until(`management gets onAdd for ${clientId}`, () =>
      admin.pushes.find((p) => p.route === 'onAdd' && p.body.clientId === clientId),
    );
    result.on_add = add.body;

    result.step = 'pushAll to the page';
    const msgs = [`hello over wss, ${clientId}`, `héllo wörld, 中文 ✓ ${clientId}`];
    result.push_all = [];
    for (const msg of msgs) {
      const r = await request(admin, PUSH_ALL, { apikey: opt.apikey, msg });
      result.push_all.push(r);
      check(r.code === 200 && r.msg === 'push is ok.', 'pushAll response', r);
    }
    await pageReaches(page, { messages: msgs.length });
    // Long enough for a duplicate to show.
    await new Promise((r) => setTimeout(r, 300));
    const shown = await pageReaches(page, { messages: msgs.length });
    result.page = shown;
    check(JSON.stringify(shown.messages) === JSON.stringify(msgs), 'the page shows every push once, in order', shown.messages);
    check(shown.state === 'entered', 'the page is still entered', shown);
    check(result.page_errors.length === 0, 'uncaught errors in the page', result.page_errors);
    check(
      websockets.length === 1 && websockets[0].url === `wss://${opt.host}:${opt.port}/`,
      'the page opened one wss:// WebSocket to the client port',
      websockets,
    );
    delete result.step;
  },
  async () => {
    for (const s of sessions) s.pomelo.disconnect();
    if (testPage) await testPage.close();
  },
);
