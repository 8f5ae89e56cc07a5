// Shared by the interop scripts (pomelo_node.mjs, browser.mjs, pomelo_protobuf.mjs,
// browser_protobuf.mjs, ...): loads the real pomelo-jsclient-websocket 0.1.1 into a browser-like
// vm context per session (the glue is listed at the top of pomelo_node.mjs), watches each
// session's WebSocket (tap.mjs), serves test pages, and reports one JSON line.

import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Console } from 'node:console';
import vm from 'node:vm';

import { Tap } from './tap.mjs';

export { Tap };

export const INTEROP_DIR = dirname(fileURLToPath(import.meta.url));

/** The scripts a page loads, in order; browser_page.html has the same <script> tags. */
export const LOAD_ORDER = [
  'node_modules/component-emitter/index.js',
  'glue.js',
  'node_modules/pomelo-protocol/lib/protocol.js',
  'glue.js',
  'node_modules/pomelo-protobuf/lib/client/protobuf.js',
  'glue.js',
  'node_modules/pomelo-jsclient-websocket/lib/pomelo-client.js',
];

/** The routes of DESIGN §1. */
export const CHROMIUM = '/usr/bin/chromium';
// As this machine kind's notes give them: without the background-networking flags Chromium keeps
// trying to reach Google's hosts, which the closed network refuses.
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-quic',
  '--no-first-run',
  '--disable-component-update',
  '--disable-sync',
];

export const ENTER = 'connector.entryHandler.enter';
export const PUSH_ALL = 'pushserver.pushHandler.pushAll';

const PACKAGES = [
  'pomelo-jsclient-websocket',
  'pomelo-protocol',
  'pomelo-protobuf',
  'component-emitter',
  'playwright-core',
];

/** Fails with the command to run when tests/interop/node_modules is missing or incomplete. */
export function checkInstalled() {
  const missing = LOAD_ORDER.filter((f) => !existsSync(join(INTEROP_DIR, f)));
  if (missing.length) {
    throw new Error(
      `missing ${missing.join(', ')}: run \`npm ci --prefix tests/interop\` (from the repository root)`,
    );
  }
}

/** name@version of each pinned package that is installed, and the Node version. */
export function versions() {
  const out = { node: process.version };
  for (const name of PACKAGES) {
    const file = join(INTEROP_DIR, 'node_modules', name, 'package.json');
    if (existsSync(file)) out[name] = JSON.parse(readFileSync(file, 'utf8')).version;
  }
  return out;
}

/**
 * Options from `--name value` arguments, falling back to SHADDOCK_<NAME> environment variables
 * and then to `defaults`. Numbers in `defaults` make the option a number.
 */
export function options(defaults) {
  const out = { ...defaults };
  for (const key of Object.keys(defaults)) {
    const env = process.env[`SHADDOCK_${key.toUpperCase().replace(/-/g, '_')}`];
    if (env !== undefined) out[key] = env;
  }
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(argv[i]);
    if (!m || !(m[1] in defaults)) throw new Error(`unknown argument ${argv[i]}`);
    out[m[1]] = m[2] !== undefined ? m[2] : argv[++i];
    if (out[m[1]] === undefined) throw new Error(`${argv[i - 1]} needs a value`);
  }
  for (const [key, value] of Object.entries(defaults)) {
    if (typeof value === 'number' && out[key] !== null) {
      out[key] = Number(out[key]);
      if (!Number.isFinite(out[key])) throw new Error(`--${key} must be a number`);
    }
  }
  // A default of '' makes the option required; null makes it optional.
  for (const [key, value] of Object.entries(out)) {
    if (value === '') throw new Error(`--${key} (or SHADDOCK_${key.toUpperCase().replace(/-/g, '_')}) is required`);
  }
  return out;
}

/**
 * options() with what every script against a server takes: --host (127.0.0.1), --port (checked),
 * --apikey (demo), --secret (required) and --timeout-ms (20000); `more` adds to them or
 * overrides their defaults.
 */
export function serverOptions(more = {}) {
  const opt = options({ host: '127.0.0.1', port: 0, apikey: 'demo', secret: '', 'timeout-ms': 20000, ...more });
  check(Number.isInteger(opt.port) && opt.port > 0 && opt.port < 65536, '--port must be a port number', opt.port);
  return opt;
}

// ---- serving a test page ----------------------------------------------------------------------

/**
 * The files a test page needs, by URL path: `pageFiles` (the page and its scripts, in
 * tests/interop/) and LOAD_ORDER.
 */
export function pageFiles(pageFiles) {
  return new Map(
    [...pageFiles, ...LOAD_ORDER].map((f) => [
      `/${f}`,
      { file: join(INTEROP_DIR, f), type: f.endsWith('.html') ? 'text/html' : 'text/javascript' },
    ]),
  );
}

/**
 * A static HTTP server on 127.0.0.1:0 that serves `served` (from pageFiles) and 404 for anything
 * else; records every request in `requests`. With `tls` ({cert, key}, PEM file paths), HTTPS.
 */
export function serveStatic(served, requests, { tls = null } = {}) {
  return new Promise((resolve, reject) => {
    const handler = (req, res) => {
      const path = new URL(req.url, 'http://localhost').pathname;
      const entry = served.get(path);
      requests.push(`${entry ? 200 : 404} ${path}`);
      if (!entry) {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('not found\n');
        return;
      }
      res.writeHead(200, { 'content-type': `${entry.type}; charset=utf-8`, 'cache-control': 'no-store' });
      res.end(readFileSync(entry.file));
    };
    const server = tls
      ? https.createServer({ cert: readFileSync(tls.cert), key: readFileSync(tls.key) }, handler)
      : http.createServer(handler);
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

/**
 * The test page (browser_page.html) served from 127.0.0.1:0 and a fresh page of a headless
 * Chromium, with the page's uncaught errors and console lines recorded into `result`
 * (`page_errors`, `console`, `served`, `browser`). `url(params)` is the page's address with
 * those query parameters; `close()` ends the browser and the server. Needs CHROMIUM. Options:
 * `tls` ({cert, key}) serves the page over HTTPS; `args` are more Chromium flags; `initScript`
 * (a function) runs in the page before its own scripts (Playwright's addInitScript).
 */
export async function openTestPage(result, { tls = null, args = [], initScript = null } = {}) {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: install Debian's Chromium with \`apt-get install chromium\``);
  }
  const page = 'browser_page.html';
  result.served = [];
  const server = await serveStatic(pageFiles([page, 'browser_page.js']), result.served, { tls });
  const browser = await (await import('playwright-core')).chromium
    .launch({ executablePath: CHROMIUM, args: [...CHROMIUM_ARGS, ...args], timeout: 20000 })
    .catch((e) => {
      server.close();
      throw e;
    });
  result.browser = `chromium ${browser.version()}`;
  const tab = await browser.newPage();
  if (initScript) await tab.addInitScript(initScript);
  result.page_errors = [];
  result.console = [];
  tab.on('pageerror', (e) => result.page_errors.push(e.message));
  tab.on('console', (m) => result.console.push(`${m.type()}: ${m.text()}`));
  return {
    page: tab,
    url: (params) =>
      `${tls ? 'https' : 'http'}://127.0.0.1:${server.address().port}/${page}?${new URLSearchParams(params)}`,
    async close() {
      await browser.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

/**
 * What browser_page.html shows now: the page's scheme and whether it is a secure context, its
 * #status (data-state and text), and the texts of #events and #messages.
 */
export function pageState(page) {
  return page.evaluate(() => ({
    protocol: window.location.protocol,
    secure_context: window.isSecureContext,
    state: document.getElementById('status').getAttribute('data-state'),
    status: document.getElementById('status').textContent,
    events: [...document.querySelectorAll('#events li')].map((li) => li.textContent),
    messages: [...document.querySelectorAll('#messages li')].map((li) => li.textContent),
  }));
}

/**
 * Waits (10 s at most) until browser_page.html is past loading and connecting, or until it shows
 * `n` messages; fails with the page's state. Resolves to pageState.
 */
export async function pageReaches(page, { messages = null } = {}) {
  const [cond, arg, what] =
    messages === null
      ? [() => !['loading', 'connecting'].includes(document.getElementById('status').getAttribute('data-state')), null, 'finish entering']
      : [(n) => document.querySelectorAll('#messages li').length >= n, messages, `show ${messages} messages`];
  try {
    await page.waitForFunction(cond, arg, { timeout: 10000, polling: 20 });
  } catch (e) {
    throw new Error(`the page did not ${what}: ${JSON.stringify(await pageState(page))}`);
  }
  return pageState(page);
}

/**
 * The WebSockets a Playwright `page` opens, as they go: url, frames each way, an error, whether
 * it closed.
 */
export function watchWebSockets(page) {
  const seen = [];
  page.on('websocket', (ws) => {
    const entry = { url: ws.url(), frames_sent: 0, frames_received: 0, error: null, closed: false };
    seen.push(entry);
    ws.on('framesent', () => entry.frames_sent++);
    ws.on('framereceived', () => entry.frames_received++);
    ws.on('socketerror', (e) => (entry.error = String(e)));
    ws.on('close', () => (entry.closed = true));
  });
  return seen;
}

/**
 * A WebSocket class like `Base` whose ws:// URLs become wss://. pomelo-jsclient-websocket 0.1.1
 * (the only version on npm) hard-codes `'ws://' + host` in pomelo.init (lib/pomelo-client.js,
 * about line 86), so a deployment that serves its page over HTTPS gives the page this class as
 * its WebSocket; the library is not modified. Self-contained, so that its source can run in a
 * page too (`window.WebSocket = (${wssOnly})(window.WebSocket)`).
 */
export function wssOnly(Base) {
  return class extends Base {
    constructor(url, protocols) {
      super(String(url).replace(/^ws:\/\//, 'wss://'), protocols);
    }
  };
}

// ---- a session: one copy of the real client --------------------------------------------------

/**
 * One session: the four library scripts and glue.js evaluated in a fresh vm context that looks
 * like a browser window, so each session gets its own copy of the client's module state (the
 * client is a singleton, `window.pomelo`). `storage` (a Map, or entries) is what its localStorage
 * holds to begin with, as a browser's would from an earlier visit; `session.storage` is its Map.
 */
export function newSession(label, { storage = [] } = {}) {
  checkInstalled();
  if (typeof globalThis.WebSocket !== 'function') {
    throw new Error(
      'no global WebSocket: run node with --experimental-websocket (Node 20) or use Node >= 22',
    );
  }
  const tap = new Tap();
  const NodeWebSocket = globalThis.WebSocket;
  // Node's own WebSocket (undici), unchanged; the subclass only records what crosses it.
  class TappedWebSocket extends NodeWebSocket {
    constructor(url, protocols) {
      super(url, protocols);
      tap.url = String(url);
      this.addEventListener('open', () => {
        tap.extensions = this.extensions;
        tap.protocol = this.protocol;
      });
      this.addEventListener('message', (ev) => {
        if (ev.data instanceof ArrayBuffer || ArrayBuffer.isView(ev.data)) tap.onReceive(ev.data);
        else tap.received.other++;
      });
    }

    send(data) {
      tap.onSend(data);
      super.send(data);
    }
  }
  // The client logs with console.log/console.error; stdout is kept for the one JSON line.
  const logger = new Console({ stdout: process.stderr, stderr: process.stderr });
  const log = {
    log: (...a) => logger.log(`[${label}]`, ...a),
    error: (...a) => logger.error(`[${label}]`, ...a),
    warn: (...a) => logger.warn(`[${label}]`, ...a),
    info: (...a) => logger.info(`[${label}]`, ...a),
  };
  const store = new Map(storage);
  const localStorage = {
    getItem: (k) => (store.has(k) ? store.get(k) : null),
    setItem: (k, v) => store.set(k, String(v)),
    removeItem: (k) => store.delete(k),
  };
  const context = vm.createContext({
    WebSocket: TappedWebSocket,
    setTimeout,
    clearTimeout,
    setInterval,
    clearInterval,
    console: log,
    localStorage,
  });
  vm.runInContext('var window = this;', context);
  for (const file of LOAD_ORDER) {
    const path = join(INTEROP_DIR, file);
    vm.runInContext(readFileSync(path, 'utf8'), context, { filename: path });
  }
  const pomelo = context.window.pomelo;
  if (!pomelo || typeof pomelo.init !== 'function' || typeof pomelo.on !== 'function') {
    throw new Error('pomelo-client.js did not define window.pomelo with init/on');
  }
  if (!context.window.protobuf || typeof context.window.protobuf.encode !== 'function') {
    throw new Error('the glue did not expose pomelo-protobuf as window.protobuf');
  }
  const session = {
    label,
    pomelo,
    tap,
    window: context.window,
    storage: store,
    pushes: [],
    closes: [],
    kicks: [],
    errors: [],
  };
  for (const route of ['onAdd', 'onMsg', 'onLeave']) {
    pomelo.on(route, (body) => session.pushes.push({ route, body }));
  }
  pomelo.on('onKick', (body) => session.kicks.push(body));
  pomelo.on('disconnect', (ev) => session.closes.push({ code: ev && ev.code, reason: ev && ev.reason }));
  pomelo.on('io-error', () => session.errors.push('io-error'));
  pomelo.on('error', (e) => session.errors.push(String(e)));
  pomelo.on('heartbeat timeout', () => session.errors.push('client-side heartbeat timeout'));
  return session;
}

/** pomelo.init: WebSocket open, handshake, ack. Resolves when the client's init callback runs. */
export async function init(session, { host, port }, timeoutMs = 5000) {
  const errors = session.errors.length;
  const closes = session.closes.length;
  let done = false;
  session.pomelo.init({ host, port, user: {} }, () => {
    done = true;
  });
  await until(
    `[${session.label}] the handshake completes`,
    () => done || session.errors.length > errors || session.closes.length > closes,
    timeoutMs,
  ).catch((e) => {
    throw new Error(`${e.message} (${describe(session)})`);
  });
  if (!done) throw new Error(`[${session.label}] init failed (${describe(session)})`);
}

/** pomelo.request, bounded. */
export function request(session, route, body, timeoutMs = 5000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`[${session.label}] no response to ${route} within ${timeoutMs} ms (${describe(session)})`)),
      timeoutMs,
    );
    session.pomelo.request(route, body, (response) => {
      clearTimeout(timer);
      resolve(response);
    });
  });
}

/**
 * `POST /api/apps/{apikey}/push {"msg": msg}` on shaddock's control port (`port`, on `host`),
 * with the app's secret; bounded. Resolves to {status, body}.
 */
export async function httpPush({ host, port }, apikey, secret, msg, timeoutMs = 5000) {
  const res = await fetch(`http://${host}:${port}/api/apps/${encodeURIComponent(apikey)}/push`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${secret}` },
    body: JSON.stringify({ msg }),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  let body = text;
  try {
    body = JSON.parse(text);
  } catch (e) {
    // not JSON: keep the text
  }
  return { status: res.status, body };
}

/** Waits until `cond()` holds, checking every 10 ms, failing after `timeoutMs`. */
export async function until(what, cond, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = cond();
    if (value) return value;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function describe(session) {
  return JSON.stringify({ errors: session.errors, closes: session.closes, wire: session.tap.summary() });
}

/** Deep equality for JSON values. */
export function same(a, b) {
  return JSON.stringify(sortKeys(a)) === JSON.stringify(sortKeys(b));
}

function sortKeys(v) {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') {
    return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys(v[k])]));
  }
  return v;
}

/** Throws `message` (with the actual value) unless `cond`. */
export function check(cond, message, actual) {
  if (!cond) throw new Error(actual === undefined ? message : `${message}: got ${JSON.stringify(actual)}`);
}

/**
 * Runs `body(result)` under an overall timeout (`result.timeout_ms`, which `body` may set first
 * thing; 20 s otherwise), then prints `result` as one JSON line with `ok` and, on failure,
 * `error`, and exits 0 or 1. `cleanup(result)` runs either way (bounded).
 */
export async function main(name, body, cleanup = async () => {}) {
  const result = { script: name, ok: false, versions: versions() };
  let error = null;
  const crashed = new Promise((_, reject) => {
    process.on('uncaughtException', (e) => reject(e));
    process.on('unhandledRejection', (e) => reject(e));
  });
  const run = body(result);
  // The overall bound starts once `body` has read its options (synchronously, before its first await).
  const timeoutMs = result.timeout_ms || 20000;
  const overall = new Promise((_, reject) => {
    setTimeout(() => reject(new Error(`${name} did not finish within ${timeoutMs} ms`)), timeoutMs).unref();
  });
  try {
    await Promise.race([run, overall, crashed]);
    result.ok = true;
  } catch (e) {
    error = e;
    result.error = e && e.message ? e.message : String(e);
  }
  try {
    await Promise.race([cleanup(result), new Promise((r) => setTimeout(r, 5000).unref())]);
  } catch (e) {
    result.cleanup_error = String(e && e.message ? e.message : e);
  }
  if (error && error.stack) process.stderr.write(`${error.stack}\n`);
  process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(result.ok ? 0 : 1));
}
