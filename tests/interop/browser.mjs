// The real Pomelo JavaScript client (pomelo-jsclient-websocket 0.1.1) in a real browser: Debian's
// Chromium, headless, driven by playwright-core, against a shaddock client port.
//
//   node --experimental-websocket tests/interop/browser.mjs \
//        --host 127.0.0.1 --port 3010 --apikey demo --secret SECRET [--timeout-ms 45000]
//        [--screenshot /tmp/page.png]
//   (or SHADDOCK_HOST, SHADDOCK_PORT, SHADDOCK_APIKEY, SHADDOCK_SECRET, SHADDOCK_TIMEOUT_MS,
//    SHADDOCK_SCREENSHOT)
//
// Serves browser_page.html from its own static HTTP server on 127.0.0.1:0 (harness.mjs
// openTestPage: the page, its script and exactly the library files it loads, from node_modules
// with glue.js between them; see the top of pomelo_node.mjs). A management session (the same client in Node)
// enters; the page enters as a client from its URL parameters and shows each onMsg push in
// #messages; management sees onAdd for the page's clientId, pushes two messages with pushAll
// (one not ASCII), and the script reads them back from the page's DOM, in order. Any uncaught
// error in the page fails the run. Prints one JSON line and exits 0, or 1 with `error`.
// Run by tests/interop_browser.rs.

import { ENTER, PUSH_ALL, check, checkInstalled, init, main, newSession, openTestPage, options, request, until } from './harness.mjs';

let testPage = null;
const sessions = [];

await main(
  'browser',
  async (result) => {
    const opt = options({
      host: '127.0.0.1',
      port: 0,
      apikey: 'demo',
      secret: '',
      'timeout-ms': 45000,
      screenshot: null,
    });
    result.timeout_ms = opt['timeout-ms'];
    check(Number.isInteger(opt.port) && opt.port > 0 && opt.port < 65536, '--port must be a port number', opt.port);
    checkInstalled();
    const server = { host: opt.host, port: opt.port };
    const clientId = `browser-${process.pid}-${Date.now() % 100000}`;

    result.step = 'management enters (Node)';
    const admin = newSession('management');
    sessions.push(admin);
    await init(admin, server);
    const entered = await request(admin, ENTER, { role: 'server', apikey: opt.apikey, secret: opt.secret });
    result.management_enter = entered;
    check(entered.code === 200 && entered.msg === 'push server is ok.', 'management enter', entered);

    result.step = 'serve the page and launch Chromium';
    testPage = await openTestPage(result);
    const { page } = testPage;
    const pageErrors = result.page_errors;
    const url = testPage.url({ host: opt.host, port: String(opt.port), apikey: opt.apikey, clientId });
    result.page_url = url;
    const websockets = [];
    page.on('websocket', (ws) => {
      const entry = { url: ws.url(), frames_sent: 0, frames_received: 0, closed: false };
      websockets.push(entry);
      ws.on('framesent', () => entry.frames_sent++);
      ws.on('framereceived', () => entry.frames_received++);
      ws.on('close', () => {
        entry.closed = true;
      });
    });
    result.websockets = websockets;
    const pageState = () =>
      page.evaluate(() => ({
        state: document.getElementById('status').getAttribute('data-state'),
        status: document.getElementById('status').textContent,
        events: [...document.querySelectorAll('#events li')].map((li) => li.textContent),
        messages: [...document.querySelectorAll('#messages li')].map((li) => li.textContent),
      }));

    result.step = 'the page enters as a client';
    await page.goto(url, { waitUntil: 'load', timeout: 10000 });
    try {
      await page.waitForFunction(
        () => !['loading', 'connecting'].includes(document.getElementById('status').getAttribute('data-state')),
        null,
        { timeout: 10000, polling: 20 },
      );
    } catch (e) {
      throw new Error(`the page did not finish entering: ${JSON.stringify(await pageState())}`);
    }
    const entering = await pageState();
    result.page_enter = entering;
    check(entering.state === 'entered', 'the page enters', entering);

    result.step = 'management gets onAdd for the page';
    const add = await until(`management gets onAdd for ${clientId}`, () =>
      admin.pushes.find((p) => p.route === 'onAdd' && p.body.clientId === clientId),
    );
    result.on_add = add.body;
    check(add.body.msg === 'add ok', 'onAdd for the page', add.body);

    result.step = 'pushAll to the page';
    const msgs = [`hello, browser ${clientId}`, `héllo wörld, 中文 ✓ ${clientId}`];
    result.push_all = [];
    for (const msg of msgs) {
      const r = await request(admin, PUSH_ALL, { apikey: opt.apikey, msg });
      result.push_all.push(r);
      check(r.code === 200 && r.msg === 'push is ok.' && r.recipients >= 1, 'pushAll response', r);
    }
    try {
      await page.waitForFunction((n) => document.querySelectorAll('#messages li').length >= n, msgs.length, {
        timeout: 10000,
        polling: 20,
      });
    } catch (e) {
      throw new Error(`the page did not show ${msgs.length} messages: ${JSON.stringify(await pageState())}`);
    }
    const shown = await pageState();
    result.page = shown;
    check(JSON.stringify(shown.messages) === JSON.stringify(msgs), 'the page shows every push once, in order', shown.messages);
    check(shown.state === 'entered', 'the page is still entered', shown);
    if (opt.screenshot) {
      await page.screenshot({ path: opt.screenshot, fullPage: true });
      result.screenshot = opt.screenshot;
    }
    check(pageErrors.length === 0, 'uncaught errors in the page', pageErrors);
    check(
      websockets.length === 1 && websockets[0].url === `ws://${opt.host}:${opt.port}/`,
      'the page opened one WebSocket to the client port',
      websockets,
    );
    delete result.step;
  },
  async () => {
    for (const s of sessions) s.pomelo.disconnect();
    if (testPage) await testPage.close();
  },
);
