// shaddock's management page (served by the control port) in a real browser: Debian's Chromium,
// headless, driven by playwright-core.
//
//   node tests/interop/management_page.mjs --url http://127.0.0.1:3080/ --apikey demo \
//        --secret SECRET --client-id alice --to-one 'hello' --to-all '{"n":2}' \
//        --kick-id bob --after-restart-id carol --client-path /push \
//        [--screenshot target/management-page.png] [--phone-screenshot target/page-phone.png]
//        [--refused-screenshot target/page-refused.png]
//        [--reconnecting-screenshot target/page-reconnecting.png]
//        [--reconnected-screenshot target/page-reconnected.png]
//        [--timeout-ms 60000]
//
// Talks with the Rust test that runs it (tests/interop_management_page.rs) through JSON lines on
// stdout: {"event":"entered"} once the page is logged in, after which the test connects client
// --client-id over raw TCP, reads the two pushes the page sends, and disconnects the client.
//
// Steps: a wrong secret shows the server's 401 on the page; the right one enters; the page sends
// heartbeats at the server's interval and stays entered; the test's client appears in the list
// (onAdd) with the count; tapping it shows its details (pomelo over tcp from its address, from
// the control port's API) and pushing --to-one as text shows "push is ok." with one
// recipient; pushing --to-all as JSON to everyone shows the same; on a phone-sized viewport
// nothing overflows sideways; the client's disconnect removes it from the list (onLeave); a
// push to it now shows the server's 404. Then {"event":"ready-for-kick"}: the test connects
// --kick-id, the page's Kick button disconnects it ("kick is ok."), and the stats panel counts
// the two pushes that reached someone. Then {"event":"restart-me"}: the test stops the server
// (its drain kicks the page "shutdown") and starts another on the same client port a little
// later; the page shows it is reconnecting, fails once, and enters again by itself with the
// secret it kept in memory ({"event":"reconnected"}), and hears --after-restart-id join. The page
// loads nothing from anywhere but the control port and opens WebSockets only to the URL the
// server's /config.json names (control.page_client_url, with --client-path); no uncaught
// error. The last stdout line is the JSON result (harness.mjs main).

import { CHROMIUM, CHROMIUM_ARGS, check, main, options, until } from './harness.mjs';


let browser = null;

function emit(event, fields = {}) {
  process.stdout.write(`${JSON.stringify({ event, ...fields })}\n`);
}

/** What the page shows, read from its DOM. */
function pageState(page) {
  return page.evaluate(() => ({
    state: document.getElementById('status').dataset.state,
    status: document.getElementById('status').textContent,
    login_error: document.getElementById('login-error').hidden ? null : document.getElementById('login-error').textContent,
    count: document.getElementById('count').textContent,
    clients: [...document.querySelectorAll('#clients button.client')].map((b) => b.dataset.clientId),
    log: [...document.querySelectorAll('#log li')].map((li) => ({ code: li.dataset.code, text: li.textContent })),
  }));
}

async function waitForPage(page, what, fn, arg) {
  try {
    await page.waitForFunction(fn, arg, { timeout: 15000, polling: 20 });
  } catch (e) {
    throw new Error(`the page did not get to: ${what}; it shows ${JSON.stringify(await pageState(page))}`);
  }
}

async function push(page, logLength) {
  await page.click('#send');
  await waitForPage(page, `response ${logLength} in the log`, (n) => document.querySelectorAll('#log li').length >= n, logLength);
  return (await pageState(page)).log[0];
}

await main(
  'management_page',
  async (result) => {
    const opt = options({
      url: '',
      apikey: 'demo',
      secret: '',
      'client-id': '',
      'to-one': '',
      'to-all': '',
      screenshot: null,
      'phone-screenshot': null,
      'refused-screenshot': null,
      'reconnecting-screenshot': null,
      'reconnected-screenshot': null,
      'kick-id': '',
      'after-restart-id': '',
      'client-path': '/',
      'timeout-ms': 60000,
    });
    result.timeout_ms = opt['timeout-ms'];
    const origin = new URL(opt.url).origin;
    const { chromium } = await import('playwright-core');

    result.step = 'launch Chromium';
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 20000 });
    result.browser = `chromium ${browser.version()}`;
    const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
    const pageErrors = [];
    const foreign = [];
    const websockets = [];
    result.page_errors = pageErrors;
    result.foreign_requests = foreign;
    result.websockets = websockets;
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('request', (r) => {
      if (!r.url().startsWith(origin) && !r.url().startsWith('data:')) foreign.push(r.url());
    });
    page.on('websocket', (ws) => {
      const entry = { url: ws.url(), heartbeats_sent: 0, closed: false };
      websockets.push(entry);
      ws.on('framesent', (f) => {
        const bytes = typeof f.payload === 'string' ? Buffer.from(f.payload) : f.payload;
        if (bytes.length >= 4 && bytes[0] === 3) entry.heartbeats_sent++;
      });
      ws.on('close', () => {
        entry.closed = true;
      });
    });

    result.step = 'a wrong secret shows an error';
    await page.goto(opt.url, { waitUntil: 'load', timeout: 10000 });
    await waitForPage(page, 'ready', () => document.getElementById('status').dataset.state === 'idle');
    await page.fill('#apikey', opt.apikey);
    await page.fill('#secret', `${opt.secret}-wrong`);
    await page.click('#connect');
    await waitForPage(page, 'an error', () => document.getElementById('status').dataset.state === 'error');
    const refused = await pageState(page);
    result.wrong_secret = refused;
    check(/401/.test(refused.login_error) && /wrong secret/.test(refused.login_error), 'the page shows the 401', refused);
    check(await page.isHidden('#console'), 'the console stays hidden after a refusal');
    if (opt['refused-screenshot']) await page.screenshot({ path: opt['refused-screenshot'] });

    result.step = 'the right secret enters';
    await page.fill('#secret', opt.secret);
    await page.click('#connect');
    await waitForPage(page, 'entered', () => document.getElementById('status').dataset.state === 'entered');
    const entered = await pageState(page);
    result.entered = entered;
    check(entered.count === '0' && entered.clients.length === 0, 'nobody online yet', entered);

    result.step = 'heartbeats at the server interval';
    const live = websockets[websockets.length - 1];
    await until('the page sends 3 heartbeats', () => live.heartbeats_sent >= 3, 15000);
    check((await pageState(page)).state === 'entered', 'still entered after 3 heartbeat rounds');

    result.step = 'the test client appears (onAdd)';
    emit('entered');
    const id = opt['client-id'];
    await waitForPage(page, `${id} in the list`, (cid) => [...document.querySelectorAll('#clients button.client')].some((b) => b.dataset.clientId === cid), id);
    const joined = await pageState(page);
    result.joined = joined;
    check(joined.count === '1' && joined.clients.length === 1, 'one client online', joined);

    result.step = 'push to the one client';
    await page.click(`#clients button.client >> text=${id}`);
    check(await page.isChecked('#target-one'), 'tapping a client targets it');
    check((await page.inputValue('#client-id')) === id, 'tapping a client fills its clientId');
    await waitForPage(page, `${id}'s details`, () => / from 127\.0\.0\.1:\d+/.test(document.getElementById('client-details').textContent));
    result.details = await page.textContent('#client-details');
    check(/pomelo over tcp from 127\.0\.0\.1:\d+ · reactor \d · 0 bytes queued · joined \d/.test(result.details), 'the tapped client\'s details', result.details);
    await page.fill('#message', opt['to-one']);
    await page.selectOption('#format', 'text');
    const toOne = await push(page, 1);
    result.push_one = toOne;
    check(toOne.code === '200' && toOne.text.includes('push is ok.') && toOne.text.includes('1 recipient'), 'push to one', toOne);

    result.step = 'push JSON to everyone';
    await page.check('#target-all');
    await page.fill('#message', opt['to-all']);
    await page.selectOption('#format', 'json');
    const toAll = await push(page, 2);
    result.push_all = toAll;
    check(toAll.code === '200' && toAll.text.includes('1 recipient') && toAll.text.includes('every client'), 'push to all', toAll);
    if (opt.screenshot) await page.screenshot({ path: opt.screenshot, fullPage: true });

    result.step = 'readable on a phone';
    await page.setViewportSize({ width: 390, height: 844 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    result.phone_overflow_px = overflow;
    check(overflow <= 0, 'nothing overflows a 390px-wide screen', overflow);
    const columns = await page.evaluate(() => getComputedStyle(document.getElementById('console')).gridTemplateColumns.split(' ').length);
    check(columns === 1, 'one column on a phone', columns);
    if (opt['phone-screenshot']) await page.screenshot({ path: opt['phone-screenshot'], fullPage: true });
    emit('pushed');

    result.step = 'the client leaves (onLeave)';
    await waitForPage(page, `${id} gone from the list`, () => document.getElementById('count').textContent === '0' && !document.querySelector('#clients button.client'));

    result.step = 'a push to the gone client is a 404';
    await page.check('#target-one');
    await page.fill('#client-id', id);
    await page.selectOption('#format', 'text');
    const gone = await push(page, 3);
    result.push_gone = gone;
    check(gone.code === '404' && gone.text.includes('no such client'), 'push to a gone client', gone);

    result.step = 'kick a client';
    emit('ready-for-kick');
    const bob = opt['kick-id'];
    const listed = (cid) => [...document.querySelectorAll('#clients button.client')].some((b) => b.dataset.clientId === cid);
    await waitForPage(page, `${bob} in the list`, listed, bob);
    await page.click(`#clients button.kick[data-kick="${bob}"]`);
    await waitForPage(page, 'the kick answered', () => document.querySelectorAll('#log li').length >= 4);
    const kicked = (await pageState(page)).log[0];
    result.kick = kicked;
    check(kicked.code === '200' && kicked.text.includes('kick is ok.'), 'the kick', kicked);
    await waitForPage(page, `${bob} gone`, (cid) => ![...document.querySelectorAll('#clients button.client')].some((b) => b.dataset.clientId === cid), bob);
    const stats = () => page.evaluate(() => Object.fromEntries(['pushes', 'recipients', 'reconnects', 'since'].map((k) => [k, document.getElementById(`stat-${k}`).textContent])));
    result.stats = await stats();
    check(result.stats.pushes === '2' && result.stats.recipients === '2' && result.stats.reconnects === '0', 'the stats panel', result.stats);

    result.step = 'reconnect after a restart';
    emit('restart-me');
    await waitForPage(page, 'reconnecting', () => document.getElementById('status').dataset.state === 'reconnecting');
    result.reconnecting = await pageState(page);
    check(/shutdown/.test(result.reconnecting.status), 'the status says why', result.reconnecting.status);
    if (opt['reconnecting-screenshot']) await page.screenshot({ path: opt['reconnecting-screenshot'], fullPage: true });
    await page.waitForFunction(() => document.getElementById('status').dataset.state === 'entered', null, { timeout: 30000, polling: 50 });
    result.after_restart = await stats();
    check(result.after_restart.reconnects === '1', 'one reconnect', result.after_restart);
    emit('reconnected');
    await waitForPage(page, `${opt['after-restart-id']} in the list`, listed, opt['after-restart-id']);
    if (opt['reconnected-screenshot']) await page.screenshot({ path: opt['reconnected-screenshot'], fullPage: true });

    check(pageErrors.length === 0, 'uncaught errors in the page', pageErrors);
    check(foreign.length === 0, 'the page loads only from the control port', foreign);
    const last = websockets[websockets.length - 1];
    check(websockets.length >= 3 && websockets[0].closed && !last.closed, 'a refused WebSocket, the first session, failed reconnects, and a live one', websockets);
    check(websockets.every((w) => new URL(w.url).pathname === opt['client-path']), 'WebSockets go to control.page_client_url', websockets);
    result.page = await pageState(page);
    delete result.step;
  },
  async () => {
    if (browser) await browser.close();
  },
);
