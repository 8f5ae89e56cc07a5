// shaddock's management page: log in as an app's management session over Pomelo (pomelo.js),
// watch who is online (onAdd / onLeave), push messages to everyone or to one client, kick a
// client. A connection that ends without the user asking (a drain, a restart) is made again
// with backoff, with the apikey and secret kept in memory only (never in storage).

import { PomeloClient } from './pomelo.js';

const ENTER = 'connector.entryHandler.enter';
const PUSH_ALL = 'pushserver.pushHandler.pushAll';
const PUSH_ONE = 'pushserver.pushHandler.pushByClientId';
const KICK = 'pushserver.pushHandler.kick';
const KICK_REASON = 'kicked from the management page';
/** Reconnect delays in seconds, the last one repeated; each with up to 25 % jitter. */
const BACKOFF = [1, 2, 4, 8, 16, 30];
/** Rows the client list draws at most; the count is always exact. */
const MAX_SHOWN = 500;
/** Responses kept in the log. */
const MAX_LOG = 50;

const $ = (id) => document.getElementById(id);

let client = null;
let apikey = '';
let count = 0;
const online = new Set();
/** When this page heard each client join (the server keeps no join time: it would cost every
 * connection bytes); clients online before the page entered have none. */
const joinedAt = new Map();
let drawPending = false;
/** What a reconnect needs, in memory only: cleared when the user disconnects or is refused. */
let session = null;
let retry = { attempt: 0, timer: null };
const stats = { pushes: 0, recipients: 0, reconnects: 0, since: null };

function setStatus(state, message) {
  const status = $('status');
  status.dataset.state = state;
  status.textContent = message;
}

function showError(id, message) {
  const el = $(id);
  el.textContent = message;
  el.hidden = !message;
}

function entered(response, again) {
  online.clear();
  joinedAt.clear();
  for (const id of response.users || []) online.add(String(id));
  count = response.count ?? online.size;
  $('login-card').hidden = true;
  $('console').hidden = false;
  $('disconnect').hidden = false;
  if (!again) {
    $('log').replaceChildren();
    Object.assign(stats, { pushes: 0, recipients: 0, reconnects: 0 });
  }
  stats.since = new Date();
  setStatus('entered', `Managing ${apikey}`);
  draw();
}

/** Back to the login form, with `message` as the reason. */
function loggedOut(message) {
  session = null;
  clearTimeout(retry.timer);
  retry = { attempt: 0, timer: null };
  $('console').hidden = true;
  $('disconnect').hidden = true;
  $('login-card').hidden = false;
  $('connect').disabled = false;
  setStatus('closed', 'Not connected');
  showError('login-error', message);
}

function left(reason) {
  client = null;
  if (!session) {
    loggedOut(`Disconnected: ${reason}`);
    return;
  }
  scheduleReconnect(reason);
}

function scheduleReconnect(reason) {
  const base = BACKOFF[Math.min(retry.attempt, BACKOFF.length - 1)];
  const delay = base * (1 + Math.random() * 0.25);
  retry.attempt += 1;
  setStatus('reconnecting', `Connection lost (${reason}): reconnecting in ${Math.round(delay)} s…`);
  $('console').classList.add('stale');
  retry.timer = setTimeout(reconnect, delay * 1000);
}

async function reconnect() {
  if (!session) return;
  try {
    const response = await open(session);
    if (response.code === 401 || response.code === 404) {
      loggedOut(`Refused on reconnecting (${response.code}): ${response.msg || 'no reason given'}`);
      return;
    }
    if (response.code !== 200) throw new Error(`refused (${response.code})`);
    retry = { attempt: 0, timer: null };
    stats.reconnects += 1;
    $('console').classList.remove('stale');
    entered(response, true);
  } catch (err) {
    if (session) scheduleReconnect(err.message);
  }
}

/** Connects to the client port and enters as `s`'s management session; the enter answer. */
async function open(s) {
  const pomelo = new PomeloClient();
  try {
    await pomelo.connect(s.url);
    const response = await pomelo.request(ENTER, { role: 'server', apikey: s.apikey, secret: s.secret });
    if (response.code !== 200) {
      pomelo.close('refused');
      return response;
    }
    client = pomelo;
    pomelo.addEventListener('push', (e) => onPush(e.detail));
    pomelo.addEventListener('close', (e) => left(e.detail.reason));
    return response;
  } catch (err) {
    pomelo.close('connect failed');
    throw err;
  }
}

async function login(event) {
  event.preventDefault();
  showError('login-error', '');
  apikey = $('apikey').value.trim();
  const secret = $('secret').value;
  $('connect').disabled = true;
  setStatus('connecting', 'Connecting…');
  try {
    const config = await (await fetch('/config.json', { cache: 'no-store' })).json();
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const url = config.client_url || `${scheme}://${location.hostname}:${config.client_port}/`;
    const response = await open({ url, apikey, secret });
    if (response.code !== 200) throw new Error(`Refused (${response.code}): ${response.msg || 'no reason given'}`);
    session = { url, apikey, secret };
    try {
      localStorage.setItem('shaddock.apikey', apikey);
    } catch (err) {
      // Storage may be disabled; the apikey is only a convenience.
    }
    entered(response, false);
  } catch (err) {
    $('connect').disabled = false;
    setStatus('error', 'Not connected');
    showError('login-error', err.message);
  }
}

function onPush({ route, body }) {
  if (!body) return;
  if (route === 'onAdd') {
    if (Array.isArray(body.users)) {
      online.clear();
      for (const id of body.users) online.add(String(id));
    }
    if (body.clientId !== undefined) {
      online.add(String(body.clientId));
      joinedAt.set(String(body.clientId), new Date());
    }
  } else if (route === 'onLeave') {
    online.delete(String(body.clientId));
    joinedAt.delete(String(body.clientId));
  } else {
    return;
  }
  if (Number.isInteger(body.count)) count = body.count;
  draw();
}

/** Redraws the client list once per frame, however many joins arrive. */
function draw() {
  if (drawPending) return;
  drawPending = true;
  requestAnimationFrame(() => {
    drawPending = false;
    $('count').textContent = String(count);
    const filter = $('filter').value.trim().toLowerCase();
    const ids = [...online].filter((id) => id.toLowerCase().includes(filter)).sort();
    const rows = ids.slice(0, MAX_SHOWN).map((id) => {
      const li = document.createElement('li');
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'client';
      button.textContent = id;
      button.dataset.clientId = id;
      if ($('target-one').checked && $('client-id').value === id) button.classList.add('chosen');
      const kick = document.createElement('button');
      kick.type = 'button';
      kick.className = 'kick quiet';
      kick.textContent = 'Kick';
      kick.dataset.kick = id;
      kick.setAttribute('aria-label', `Kick ${id}`);
      li.append(button, kick);
      return li;
    });
    $('clients').replaceChildren(...rows);
    $('client-id').classList.toggle('inactive', !$('target-one').checked);
    const notes = [];
    if (ids.length > MAX_SHOWN) notes.push(`showing ${MAX_SHOWN} of ${ids.length} matches`);
    if (count > online.size) notes.push(`${count - online.size} more online than this page has heard of`);
    if (count === 0) notes.push('nobody is online yet');
    $('clients-note').textContent = notes.join(' · ');
    $('stat-pushes').textContent = String(stats.pushes);
    $('stat-recipients').textContent = String(stats.recipients);
    $('stat-reconnects').textContent = String(stats.reconnects);
    $('stat-since').textContent = stats.since ? stats.since.toLocaleTimeString() : '–';
  });
}

function choose(event) {
  const kick = event.target.closest('button.kick');
  if (kick) {
    kickClient(kick.dataset.kick);
    return;
  }
  const button = event.target.closest('button.client');
  if (!button) return;
  $('client-id').value = button.dataset.clientId;
  $('target-one').checked = true;
  draw();
  showDetails(button.dataset.clientId);
  $('message').focus();
}

/** The tapped client's frontend, transport, address and queue, from the control port's API. */
async function showDetails(clientId) {
  const box = $('client-details');
  box.hidden = false;
  box.textContent = `${clientId}: …`;
  if (!session) return;
  try {
    const path = `/api/apps/${encodeURIComponent(apikey)}/clients/${encodeURIComponent(clientId)}`;
    const answer = await fetch(path, { headers: { Authorization: `Bearer ${session.secret}` }, cache: 'no-store' });
    const d = await answer.json();
    if (!answer.ok) {
      box.textContent = `${clientId}: ${d.error || answer.status}`;
    } else if (d.node) {
      box.textContent = `${clientId}: on node ${d.node}`;
    } else {
      const tls = d.tls ? ' + TLS' : '';
      const from = d.remote_address ? ` from ${d.remote_address}` : '';
      const seen = joinedAt.get(clientId);
      const since = seen ? `joined ${seen.toLocaleTimeString()}` : 'online before this page connected';
      box.textContent = `${clientId}: ${d.frontend} over ${d.transport}${tls}${from} · reactor ${d.core} · ${d.queued_bytes} bytes queued · ${since}`;
    }
  } catch (err) {
    box.textContent = `${clientId}: ${err.message}`;
  }
}

async function push(event) {
  event.preventDefault();
  showError('push-error', '');
  if (!client) return;
  const raw = $('message').value;
  let msg = raw;
  if ($('format').value === 'json') {
    try {
      msg = JSON.parse(raw);
    } catch (err) {
      showError('push-error', `Not JSON: ${err.message}`);
      return;
    }
  }
  const one = $('target-one').checked;
  const clientId = $('client-id').value.trim();
  if (one && !clientId) {
    showError('push-error', 'Choose a client: type its clientId or tap it in the list.');
    return;
  }
  const started = performance.now();
  $('send').disabled = true;
  try {
    const response = one
      ? await client.request(PUSH_ONE, { apikey, clientId, msg })
      : await client.request(PUSH_ALL, { apikey, msg });
    log(one ? clientId : 'every client', response, performance.now() - started);
  } catch (err) {
    log(one ? clientId : 'every client', { code: 0, msg: err.message }, performance.now() - started);
  } finally {
    $('send').disabled = false;
  }
}

async function kickClient(clientId) {
  if (!client) return;
  const started = performance.now();
  try {
    const response = await client.request(KICK, { apikey, clientId, reason: KICK_REASON });
    log(`kick ${clientId}`, response, performance.now() - started);
  } catch (err) {
    log(`kick ${clientId}`, { code: 0, msg: err.message }, performance.now() - started);
  }
}

function log(target, response, ms) {
  if (response.code === 200 && Number.isInteger(response.recipients)) {
    stats.pushes += 1;
    stats.recipients += response.recipients;
    draw();
  }
  const li = document.createElement('li');
  const ok = response.code === 200;
  li.className = ok ? 'ok' : 'fail';
  li.dataset.code = String(response.code);
  const head = document.createElement('div');
  const when = document.createElement('time');
  when.textContent = new Date().toLocaleTimeString();
  const summary = document.createElement('strong');
  const recipients = Number.isInteger(response.recipients)
    ? ` · ${response.recipients} recipient${response.recipients === 1 ? '' : 's'}`
    : '';
  summary.textContent = ok ? `${response.msg || 'ok'}${recipients}` : `${response.code || 'error'}: ${response.msg}`;
  const meta = document.createElement('span');
  meta.className = 'meta';
  meta.textContent = `to ${target} · ${Math.round(ms)} ms`;
  head.append(when, ' ', summary, ' ', meta);
  const body = document.createElement('code');
  body.textContent = JSON.stringify(response);
  li.append(head, body);
  $('log').prepend(li);
  while ($('log').children.length > MAX_LOG) $('log').lastElementChild.remove();
}

function start() {
  const params = new URLSearchParams(location.search);
  let remembered = null;
  try {
    remembered = localStorage.getItem('shaddock.apikey');
  } catch (err) {
    // No storage: start empty.
  }
  $('apikey').value = params.get('apikey') || remembered || '';
  $('login').addEventListener('submit', login);
  $('push').addEventListener('submit', push);
  $('clients').addEventListener('click', choose);
  $('filter').addEventListener('input', draw);
  $('target-all').addEventListener('change', draw);
  $('target-one').addEventListener('change', draw);
  $('client-id').addEventListener('input', () => {
    if ($('client-id').value) $('target-one').checked = true;
    draw();
  });
  $('disconnect').addEventListener('click', () => {
    const open = client;
    session = null;
    if (open) open.close('you disconnected');
    else loggedOut('Disconnected: you disconnected');
  });
  setStatus('idle', 'Not connected');
  ($('apikey').value ? $('secret') : $('apikey')).focus();
}

start();
