#!/usr/bin/env node
// Records golden Socket.IO wire vectors for shaddock's tests.
//
// Real servers and real clients (versions pinned in package.json next to this
// file, installed under npm aliases so that all of them fit in one
// node_modules) talk through a logging TCP proxy on 127.0.0.1; the logged
// byte streams are then decoded (HTTP heads/bodies, WebSocket frames with the
// client's masking removed) into one JSON file per scenario.
//
// Usage (never inside the repository: copy this file, package.json and
// package-lock.json to a temp dir first):
//   mkdir -p /tmp/sio-record && cp record.mjs package.json package-lock.json /tmp/sio-record/
//   cd /tmp/sio-record && npm ci --no-audit --no-fund
//   node record.mjs --out /path/to/repo/tests/data/socketio            # all scenarios
//   node record.mjs --out /path/to/repo/tests/data/socketio v09-websocket eio4-websocket
//   node record.mjs --list
//
// Everything listens on and connects to 127.0.0.1 only; every wait is bounded
// and each scenario runs in its own child process that is killed after
// SCENARIO_TIMEOUT_MS.

import net from 'node:net';
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { createRequire } from 'node:module';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const SELF = fileURLToPath(import.meta.url);
const SCENARIO_TIMEOUT_MS = 45000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- capture

class Capture {
  constructor() {
    this.t0 = process.hrtime.bigint();
    this.conns = [];
    this.actions = [];
    this.sockets = new Set();
  }
  now() {
    return Number(process.hrtime.bigint() - this.t0) / 1e6;
  }
  // An entry in the timeline that is not on the wire: what the scenario did.
  mark(actor, text) {
    this.actions.push({ t: this.now(), actor, text });
  }
  // A TCP proxy 127.0.0.1:<returned port> -> 127.0.0.1:targetPort that logs
  // every chunk per direction.
  listen(targetPort) {
    this.targetPort = targetPort;
    return new Promise((resolve) => {
      this.server = net.createServer((down) => {
        const conn = { id: this.conns.length + 1, chunks: [] };
        this.conns.push(conn);
        const up = net.connect(targetPort, '127.0.0.1');
        this.sockets.add(down);
        this.sockets.add(up);
        const log = (dir, extra) => conn.chunks.push({ t: this.now(), dir, ...extra });
        down.on('data', (d) => { log('c2s', { data: d }); up.write(d); });
        up.on('data', (d) => { log('s2c', { data: d }); down.write(d); });
        down.on('end', () => { log('c2s', { fin: true }); up.end(); });
        up.on('end', () => { log('s2c', { fin: true }); down.end(); });
        down.on('error', (e) => { log('c2s', { reset: e.code || String(e) }); up.destroy(); });
        up.on('error', (e) => { log('s2c', { reset: e.code || String(e) }); down.destroy(); });
        down.on('close', () => { up.end(); setTimeout(() => up.destroy(), 300).unref(); });
        up.on('close', () => { down.end(); setTimeout(() => down.destroy(), 300).unref(); });
      });
      this.server.listen(0, '127.0.0.1', () => {
        this.port = this.server.address().port;
        resolve(this.port);
      });
    });
  }
  close() {
    for (const s of this.sockets) s.destroy();
    if (this.server) this.server.close();
  }
}

// ---------------------------------------------------------------- decoding

const utf8 = new TextDecoder('utf-8', { fatal: true });
function text(buf) {
  if (buf.length === 0) return '';
  try {
    return utf8.decode(buf);
  } catch {
    return { base64: buf.toString('base64') };
  }
}

const OPCODES = { 0: 'continuation', 1: 'text', 2: 'binary', 8: 'close', 9: 'ping', 10: 'pong' };

class DirState {
  constructor(dir) {
    this.dir = dir;
    this.mode = 'http';
    this.buf = Buffer.alloc(0);
    this.base = 0; // absolute offset of buf[0]
    this.starts = []; // [absOffset, t]
    this.fin = false;
    this.inflate = null;
  }
  push(chunk) {
    this.starts.push([this.base + this.buf.length, chunk.t]);
    this.buf = Buffer.concat([this.buf, chunk.data]);
  }
  timeAt(rel) {
    const abs = this.base + rel;
    let t = this.starts.length ? this.starts[0][1] : 0;
    for (const [o, tt] of this.starts) {
      if (o <= abs) t = tt;
      else break;
    }
    return t;
  }
  consume(n) {
    this.buf = this.buf.subarray(n);
    this.base += n;
  }
}

function parseHead(buf) {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return null;
  const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
  const start_line = lines.shift();
  const headers = lines.map((l) => {
    const i = l.indexOf(':');
    return [l.slice(0, i), l.slice(i + 1).replace(/^[ \t]+/, '')];
  });
  return { start_line, headers, headLen: end + 4 };
}
const hget = (headers, name) => {
  const h = headers.find(([n]) => n.toLowerCase() === name);
  return h ? h[1] : undefined;
};

// Returns {body, used} or null if incomplete.
function parseChunked(buf) {
  let off = 0;
  const parts = [];
  const sizes = [];
  for (let guard = 0; guard < 100000; guard++) {
    const eol = buf.indexOf('\r\n', off);
    if (eol < 0) return null;
    const size = parseInt(buf.subarray(off, eol).toString('latin1').split(';')[0], 16);
    off = eol + 2;
    if (size === 0) {
      const end = buf.indexOf('\r\n', off); // no trailers expected
      if (end < 0) return null;
      return { body: Buffer.concat(parts), used: end + 2, sizes };
    }
    if (buf.length < off + size + 2) return null;
    parts.push(buf.subarray(off, off + size));
    sizes.push(size);
    off += size + 2;
  }
  throw new Error('chunked: too many chunks');
}

function decodeConn(conn) {
  const events = [];
  const st = { c2s: new DirState('c2s'), s2c: new DirState('s2c') };
  let pendingUpgrade = false;
  const requests = []; // start lines of requests not answered yet (FIFO)
  const ordered = conn.chunks.slice().sort((a, b) => a.t - b.t);

  const tryParse = (d) => {
    for (let guard = 0; guard < 100000; guard++) {
      if (d.buf.length === 0) return;
      if (d.mode === 'http') {
        const head = parseHead(d.buf);
        if (!head) return;
        const t = d.timeAt(0);
        const rest = d.buf.subarray(head.headLen);
        let body = Buffer.alloc(0);
        let used = 0;
        let chunkSizes = null;
        const te = (hget(head.headers, 'transfer-encoding') || '').toLowerCase();
        const cl = hget(head.headers, 'content-length');
        const status = d.dir === 's2c' ? parseInt(head.start_line.split(' ')[1], 10) : 0;
        if (te.includes('chunked')) {
          const c = parseChunked(rest);
          if (!c) return;
          body = c.body;
          used = c.used;
          chunkSizes = c.sizes;
        } else if (cl !== undefined) {
          const n = parseInt(cl, 10);
          if (rest.length < n) return;
          body = rest.subarray(0, n);
          used = n;
        } else if (d.dir === 's2c' && !(status === 101 || status === 204 || status === 304 || (status >= 100 && status < 200))) {
          // body runs until the server closes
          if (!d.fin) return;
          body = rest;
          used = rest.length;
        }
        const ev = { conn: conn.id, t, dir: d.dir, layer: 'http', http: { start_line: head.start_line, headers: head.headers, body: text(body) } };
        if (chunkSizes) ev.http.chunk_sizes = chunkSizes;
        if (d.dir === 'c2s') requests.push(head.start_line);
        else if (status >= 200 || status === 101) ev.answers = requests.shift();
        events.push(ev);
        d.consume(head.headLen + used);
        if (d.dir === 'c2s' && (hget(head.headers, 'upgrade') || '').toLowerCase() === 'websocket') {
          d.mode = 'ws';
          pendingUpgrade = true;
        }
        if (d.dir === 's2c' && pendingUpgrade) {
          pendingUpgrade = false;
          if (status === 101) {
            d.mode = 'ws';
            const ext = hget(head.headers, 'sec-websocket-extensions') || '';
            if (ext.includes('permessage-deflate')) st.c2s.deflate = st.s2c.deflate = true;
          } else st.c2s.mode = 'http';
        }
      } else {
        const b = d.buf;
        if (b.length < 2) return;
        const fin = b[0] >> 7;
        const rsv1 = (b[0] >> 6) & 1;
        const opcode = b[0] & 15;
        const masked = b[1] >> 7;
        let len = b[1] & 127;
        let off = 2;
        if (len === 126) {
          if (b.length < 4) return;
          len = b.readUInt16BE(2);
          off = 4;
        } else if (len === 127) {
          if (b.length < 10) return;
          len = Number(b.readBigUInt64BE(2));
          off = 10;
        }
        let mask = null;
        if (masked) {
          if (b.length < off + 4) return;
          mask = b.subarray(off, off + 4);
          off += 4;
        }
        if (b.length < off + len) return;
        const t = d.timeAt(0);
        let payload = Buffer.from(b.subarray(off, off + len));
        if (mask) for (let i = 0; i < payload.length; i++) payload[i] ^= mask[i & 3];
        const ws = { opcode: OPCODES[opcode] || `0x${opcode.toString(16)}` };
        if (rsv1) {
          ws.rsv1 = true;
          try {
            payload = zlib.inflateRawSync(Buffer.concat([payload, Buffer.from([0, 0, 0xff, 0xff])]));
            ws.note_deflate = 'permessage-deflate: payload shown inflated';
          } catch (e) {
            ws.note_deflate = `permessage-deflate: could not inflate (${e.message}); payload is the compressed bytes`;
          }
        }
        if (opcode === 8 && payload.length >= 2) {
          ws.close_code = payload.readUInt16BE(0);
          ws.close_reason = payload.subarray(2).toString('utf8');
          ws.payload = { base64: payload.toString('base64') };
        } else if (opcode === 2) {
          ws.payload = { base64: payload.toString('base64') };
        } else {
          ws.payload = text(payload);
        }
        if (!fin) ws.fin = false;
        ws.masked = !!masked;
        // The frame header as sent (FIN/RSV/opcode, MASK/length, extended length), and the
        // client's masking key: with the payload they rebuild the exact wire bytes.
        ws.head_hex = b.subarray(0, masked ? off - 4 : off).toString('hex');
        if (mask) ws.mask_hex = mask.toString('hex');
        events.push({ conn: conn.id, t, dir: d.dir, layer: 'ws', ws });
        d.consume(off + len);
      }
    }
  };

  for (const c of ordered) {
    const d = st[c.dir];
    if (c.data) {
      d.push(c);
      tryParse(d);
    } else {
      d.fin = true;
      tryParse(d);
      if (d.buf.length) {
        events.push({ conn: conn.id, t: c.t, dir: c.dir, layer: 'raw', raw: text(d.buf), note: 'bytes left over that did not parse as a whole HTTP message / WebSocket frame' });
        d.consume(d.buf.length);
      }
      events.push({ conn: conn.id, t: c.t, dir: c.dir, layer: 'tcp', tcp: c.fin ? 'fin' : `reset (${c.reset})` });
    }
  }
  for (const d of Object.values(st)) {
    if (d.buf.length) events.push({ conn: conn.id, t: d.timeAt(0), dir: d.dir, layer: 'raw', raw: text(d.buf), note: 'incomplete at the end of the capture' });
  }
  return events;
}

// ---------------------------------------------------------------- annotation

const V09_TYPES = ['disconnect', 'connect', 'heartbeat', 'message', 'json', 'event', 'ack', 'error', 'noop'];
const EIO_TYPES = ['open', 'close', 'ping', 'pong', 'message', 'upgrade', 'noop'];
const SIO_TYPES = ['CONNECT', 'DISCONNECT', 'EVENT', 'ACK', 'ERROR', 'BINARY_EVENT', 'BINARY_ACK'];
const short = (s, n = 90) => (s.length > n ? s.slice(0, n) + '…' : s);

function describeV09(p) {
  const m = /^([0-8])(?::([^:]*)(?::([^:]*)(?::([\s\S]*))?)?)?$/.exec(p);
  if (!m) return `?? ${JSON.stringify(short(p))}`;
  let s = `${V09_TYPES[+m[1]]}`;
  if (m[2]) s += ` id=${m[2]}`;
  if (m[3]) s += ` endpoint=${m[3]}`;
  if (m[4] !== undefined && m[4] !== '') s += ` data=${short(m[4])}`;
  return s;
}
function splitV09Payload(s) {
  if (!s.startsWith('\ufffd')) return [s];
  const out = [];
  let i = 0;
  for (let guard = 0; guard < 10000 && i < s.length; guard++) {
    if (s[i] !== '\ufffd') return null;
    const j = s.indexOf('\ufffd', i + 1);
    const n = parseInt(s.slice(i + 1, j), 10);
    out.push(s.substr(j + 1, n));
    i = j + 1 + n;
  }
  return out;
}

function describeSio(p) {
  const m = /^([0-6])(?:(\d+)-)?(\/[^,]*,)?(\d+)?([\s\S]*)$/.exec(p);
  if (!m) return `sio ?? ${JSON.stringify(short(p))}`;
  let s = `sio ${SIO_TYPES[+m[1]]}`;
  if (m[2]) s += ` attachments=${m[2]}`;
  if (m[3]) s += ` nsp=${m[3].slice(0, -1)}`;
  if (m[4]) s += ` ackId=${m[4]}`;
  if (m[5]) s += ` ${short(m[5])}`;
  return s;
}
function describeEio(p, withSio = true) {
  if (typeof p !== 'string') return 'binary';
  if (p.startsWith('b')) return `binary attachment (base64 "${short(p.slice(1), 40)}")`;
  const t = EIO_TYPES[+p[0]];
  if (!t) return `eio ?? ${JSON.stringify(short(p))}`;
  let s = `eio ${t}`;
  if (t === 'message' && withSio) s += `: ${describeSio(p.slice(1))}`;
  else if (p.length > 1) s += ` ${short(p.slice(1))}`;
  return s;
}
// EIO3 text payload: <length>:<packet>... ; the length is tried as UTF-16
// code units (JS string length) first, then as UTF-8 bytes.
function splitEio3Payload(s) {
  const attempt = (lenOf) => {
    const out = [];
    let i = 0;
    for (let guard = 0; guard < 10000 && i < s.length; guard++) {
      const j = s.indexOf(':', i);
      if (j < 0) return null;
      const n = parseInt(s.slice(i, j), 10);
      if (!(n >= 0)) return null;
      // take n units
      let k = j + 1;
      let taken = 0;
      while (taken < n && k < s.length) {
        taken += lenOf(s, k);
        k += s.codePointAt(k) > 0xffff && lenOf === utf8Len ? 2 : 1;
      }
      if (taken !== n) return null;
      out.push(s.slice(j + 1, k));
      i = k;
    }
    return out;
  };
  const utf16 = attempt(() => 1);
  if (utf16) return { packets: utf16, counted: 'UTF-16 code units' };
  const bytes = attempt(utf8Len);
  if (bytes) return { packets: bytes, counted: 'UTF-8 bytes' };
  return null;
}
function utf8Len(s, k) {
  const c = s.codePointAt(k);
  return c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
}
function describeBody(proto, body, isRequest, answers) {
  if (body === '') return null;
  if (typeof body !== 'string') {
    if (proto === 'eio3') {
      // binary payload: <0|1><length digits as bytes><0xFF><packet>
      const b = Buffer.from(body.base64, 'base64');
      const out = [];
      let i = 0;
      for (let guard = 0; guard < 1000 && i < b.length; guard++) {
        const kind = b[i++];
        let n = '';
        while (b[i] !== 0xff && i < b.length) n += b[i++];
        i++;
        const len = parseInt(n, 10);
        const pk = b.subarray(i, i + len);
        i += len;
        out.push(kind === 0 ? describeEio(pk.toString('utf8')) : `binary packet ${len} bytes`);
      }
      return `binary payload (EIO3 <0|1><len digits><0xFF>): ` + out.join(' | ');
    }
    return 'binary body';
  }
  if (proto === 'v09') {
    if (/^[^:]+:\d*:\d*:[a-z,-]+$/.test(body) && !isRequest) return `handshake: sid:heartbeat-timeout:close-timeout:transports`;
    if (!isRequest && body === '1' && /^POST /.test(answers || '')) return 'POST accepted';
    const pk = splitV09Payload(body);
    if (!pk || pk.some((p) => !/^[0-8](:|$)/.test(p))) return null;
    return (pk.length > 1 ? `${pk.length} packets framed \\ufffd<len>\\ufffd: ` : '') + pk.map(describeV09).join(' | ');
  }
  if (proto === 'eio3') {
    if (/^\d+:/.test(body)) {
      const r = splitEio3Payload(body);
      if (r) {
        let extra = '';
        if (/[\u0080-\u00ff]/.test(body) && !/[\u0100-\uffff]/.test(body)) {
          try {
            utf8.decode(Buffer.from(body, 'latin1'));
            extra = ' (non-ASCII text is UTF-8-encoded one char per byte inside the payload (engine.io-parser 1.x utf8.encode), then the body is UTF-8 again: lengths are UTF-8 byte counts of the original text)';
          } catch {}
        }
        return `${r.packets.length} packet(s), <len>:<packet> framing, lengths in ${r.counted}${extra}: ` + r.packets.map((p) => describeEio(p)).join(' | ');
      }
    }
    if (/^___eio\[\d+\]\(/.test(body)) return 'JSONP-wrapped payload';
    if (body === 'ok') return 'ok';
    return null;
  }
  if (proto === 'eio4') {
    if (body === 'ok') return 'ok';
    if (body.startsWith('{')) return null;
    const pk = body.split('\x1e');
    if (pk.some((p) => !/^([0-6]|b)/.test(p))) return null;
    return (pk.length > 1 ? `${pk.length} packets separated by \\x1e: ` : '') + pk.map((p) => describeEio(p)).join(' | ');
  }
  return null;
}

function describe(ev, proto) {
  if (ev.layer === 'http') {
    const h = ev.http;
    const parts = [];
    if (ev.dir === 'c2s') {
      const [method, target] = h.start_line.split(' ');
      const up = (hget(h.headers, 'upgrade') || '').toLowerCase() === 'websocket';
      if (up) parts.push('WebSocket upgrade request');
      else if (proto === 'v09' && /^\/socket\.io\/1\/(\?|$)/.test(target)) parts.push(`handshake (${method})`);
      else if (proto === 'v09' && /^\/socket\.io\/1\/[a-z-]+\/[^/?]+/.test(target)) parts.push(method === 'GET' ? 'poll (GET)' : method);
      else if (proto !== 'v09' && method === 'GET' && /transport=polling/.test(target) && !/sid=/.test(target)) parts.push('engine.io handshake (polling open)');
      else if (proto !== 'v09' && method === 'GET' && /sid=/.test(target)) parts.push('poll (GET)');
      else parts.push(method);
    } else {
      if (ev.answers) parts.push(`answers ${ev.answers.split(' ')[0]} ${ev.answers.split(' ')[1].split('?')[0]}`);
      const ct = hget(h.headers, 'content-type');
      if (ct) parts.push(`Content-Type ${ct}`);
    }
    const d = describeBody(proto, h.body, ev.dir === 'c2s', ev.answers);
    if (d) parts.push(d);
    return parts.join('; ');
  }
  if (ev.layer === 'ws') {
    const w = ev.ws;
    if (w.opcode === 'close') return `close frame${w.close_code ? ` code ${w.close_code}` : ' (no code)'}`;
    if (w.opcode !== 'text') return `${w.opcode} frame`;
    if (proto === 'v09') return describeV09(w.payload);
    return describeEio(w.payload);
  }
  return undefined;
}

// Which parts of an event differ from run to run.
function randomParts(ev, randoms, cap) {
  const out = new Set();
  const check = (where, s) => {
    if (typeof s !== 'string') return;
    for (const [label, v] of randoms) if (v && s.includes(v)) out.add(`${label} in ${where}`);
  };
  if (ev.layer === 'http') {
    const h = ev.http;
    if (/[?&]t=/.test(h.start_line)) out.add('query t= (cache buster: timestamp or yeast id)');
    check('start_line', h.start_line);
    for (const [n, v] of h.headers) {
      const ln = n.toLowerCase();
      if (['date', 'sec-websocket-key', 'sec-websocket-accept', 'last-modified', 'etag'].includes(ln)) out.add(`header ${n}`);
      if (cap && v.includes(`:${cap.port}`)) out.add(`header ${n} (port of the capture proxy)`);
      check(`header ${n}`, v);
    }
    check('body', h.body);
  } else if (ev.layer === 'ws') {
    check('payload', ev.ws.payload);
  }
  return [...out];
}

function collectRandoms(events, extra) {
  const r = new Map();
  const add = (label, v) => {
    if (v && v.length >= 4 && !r.has(v)) r.set(v, label);
  };
  for (const ev of events) {
    const s = ev.layer === 'http' ? ev.http.body : ev.layer === 'ws' ? ev.ws.payload : null;
    if (typeof s !== 'string') continue;
    if (ev.layer === 'http' && ev.dir === 's2c') {
      const m = /^([0-9A-Za-z_-]{6,}):\d*:\d*:[a-z,-]+$/.exec(s);
      if (m) add('0.9 session id', m[1]);
    }
    for (const m of s.matchAll(/"sid":"([^"]+)"/g)) {
      add(/^\d*:?0\{|^0\{|open/.test(s.slice(0, 8)) || s.includes('"upgrades"') ? 'engine.io sid' : 'socket.io socket id', m[1]);
    }
  }
  for (const [label, v] of extra || []) add(label, v);
  return [...r].map(([v, label]) => [label, v]);
}

const DROPPED_REQUEST_HEADERS = ['host', 'user-agent', 'accept', 'accept-encoding', 'accept-language', 'cache-control', 'pragma', 'referer'];

function finish(cap, proto, opts = {}) {
  let events = [];
  for (const c of cap.conns) events.push(...decodeConn(c));
  for (const a of cap.actions) events.push({ t: a.t, dir: 'local', layer: 'action', actor: a.actor, action: a.text });
  events.sort((a, b) => a.t - b.t || (a.conn || 0) - (b.conn || 0));
  const randoms = collectRandoms(events, opts.randoms);
  events = events.map((ev) => {
    const out = {};
    if (ev.conn !== undefined) out.conn = ev.conn;
    out.t_ms = Math.round(ev.t * 10) / 10;
    out.dir = ev.dir;
    out.layer = ev.layer;
    for (const k of ['http', 'answers', 'ws', 'tcp', 'raw', 'actor', 'action']) if (ev[k] !== undefined) out[k] = ev[k];
    if (ev.layer === 'http' && ev.dir === 'c2s') {
      // Request headers that say nothing about the protocol are left out (see README.md).
      out.http = { ...ev.http, headers: ev.http.headers.filter(([n]) => !DROPPED_REQUEST_HEADERS.includes(n.toLowerCase())) };
    }
    const note = ev.note || describe(ev, proto);
    if (note) out.note = note;
    const rnd = randomParts(out, randoms, cap);
    if (rnd.length) out.random = rnd;
    return out;
  });
  if (opts.limit) events = opts.limit(events);
  return events;
}

// Keep at most `keep` heartbeat-only WebSocket frames per direction; say how
// many were dropped.
function limitHeartbeats(isHeartbeat, keep = 3) {
  return (events) => {
    const seen = {};
    const dropped = {};
    const out = [];
    for (const ev of events) {
      if (ev.layer === 'ws' && isHeartbeat(ev.ws.payload)) {
        const k = `${ev.conn}/${ev.dir}`;
        seen[k] = (seen[k] || 0) + 1;
        if (seen[k] > keep) {
          dropped[k] = (dropped[k] || 0) + 1;
          continue;
        }
      }
      out.push(ev);
    }
    if (Object.keys(dropped).length) out.push({ t_ms: out.at(-1).t_ms, dir: 'local', layer: 'action', actor: 'recorder', action: `dropped further heartbeat frames (conn/dir: count): ${JSON.stringify(dropped)}` });
    return out;
  };
}

// JSON with every non-ASCII character escaped, so that U+FFFD, control
// characters and the like are visible and the file is plain ASCII.
function toJson(v) {
  const esc = (j) => j.replace(/[\u007f-\uffff]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
  // one event per line
  return '[\n' + v.map((e) => esc(JSON.stringify(e))).join(',\n') + '\n]\n';
}

// ---------------------------------------------------------------- helpers

function listenLocal(server) {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)));
}
function waitFor(emitter, event, ms, label) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timeout waiting for ${label || event}`)), ms);
    emitter.once(event, (...a) => {
      clearTimeout(timer);
      resolve(a);
    });
  });
}
async function until(pred, ms, label) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (pred()) return;
    await sleep(20);
  }
  throw new Error(`timeout waiting for ${label}`);
}

// Sends hand-written bytes on a fresh connection to the proxy and waits for
// the server to close, or `ms`.
function rawExchange(port, parts, ms = 1500) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    const timer = setTimeout(() => { s.destroy(); resolve(); }, ms);
    s.on('connect', async () => {
      for (const p of parts) {
        if (typeof p === 'number') await sleep(p);
        else s.write(p);
      }
    });
    s.on('data', () => {});
    s.on('error', () => {});
    s.on('close', () => { clearTimeout(timer); resolve(); });
  });
}
const WS_KEY = 'dGhlIHNhbXBsZSBub25jZQ=='; // the RFC 6455 sample key (fixed, so not random)
function wsUpgradeRequest(target, port, extra = []) {
  return [`GET ${target} HTTP/1.1`, `Host: 127.0.0.1:${port}`, 'Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13', `Sec-WebSocket-Key: ${WS_KEY}`, ...extra, '', ''].join('\r\n');
}
function wsFrame(textPayload, opcode = 1) {
  const p = Buffer.from(textPayload, 'utf8');
  const mask = Buffer.from([0x11, 0x22, 0x33, 0x44]);
  const head = p.length < 126 ? Buffer.from([0x80 | opcode, 0x80 | p.length]) : Buffer.from([0x80 | opcode, 0x80 | 126, p.length >> 8, p.length & 255]);
  const m = Buffer.from(p);
  for (let i = 0; i < m.length; i++) m[i] ^= mask[i & 3];
  return Buffer.concat([head, mask, m]);
}
function req(method, target, port, headers = [], body = '') {
  const b = Buffer.from(body, 'utf8');
  const h = [`${method} ${target} HTTP/1.1`, `Host: 127.0.0.1:${port}`, ...headers];
  if (body !== '' || method === 'POST') h.push(`Content-Length: ${b.length}`);
  h.push('Connection: close', '', '');
  return Buffer.concat([Buffer.from(h.join('\r\n'), 'latin1'), b]);
}
// Sends a request on a fresh connection and returns the response body.
function fetchBody(port, method, target, body = '') {
  return new Promise((resolve, reject) => {
    const r = http.request({ host: '127.0.0.1', port, method, path: target, agent: false, headers: body ? { 'Content-Type': 'text/plain;charset=UTF-8' } : {} }, (res) => {
      const parts = [];
      res.on('data', (d) => parts.push(d));
      res.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
    });
    r.setTimeout(3000, () => r.destroy(new Error('timeout')));
    r.on('error', reject);
    r.end(body);
  });
}

// One keep-alive HTTP/1.1 connection to the proxy, as a browser holds it: requests carry no
// Connection header, and each waits for the previous response (read by its Content-Length).
class KeepAliveConn {
  constructor(port) {
    this.port = port;
    this.buf = Buffer.alloc(0);
    this.waiting = null;
    this.sock = net.connect(port, '127.0.0.1');
    this.sock.on('data', (d) => { this.buf = Buffer.concat([this.buf, d]); this.check(); });
    this.sock.on('error', () => {});
    this.sock.on('close', () => { this.closed = true; this.check(); });
  }
  check() {
    if (!this.waiting) return;
    const head = parseHead(this.buf);
    if (head) {
      let n = parseInt(hget(head.headers, 'content-length') || '0', 10);
      let body = null;
      if ((hget(head.headers, 'transfer-encoding') || '').includes('chunked')) {
        const c = parseChunked(this.buf.subarray(head.headLen));
        if (c) {
          body = c.body.toString('utf8');
          n = c.used;
        } else n = Infinity;
      }
      if (this.buf.length >= head.headLen + n) {
        if (body === null) body = this.buf.subarray(head.headLen, head.headLen + n).toString('utf8');
        this.buf = this.buf.subarray(head.headLen + n);
        const w = this.waiting;
        this.waiting = null;
        clearTimeout(w.timer);
        w.resolve({ start_line: head.start_line, headers: head.headers, body });
        return;
      }
    }
    if (this.closed) {
      const w = this.waiting;
      this.waiting = null;
      clearTimeout(w.timer);
      w.resolve(null);
    }
  }
  request(method, target, headers = [], body = null, ms = 5000) {
    const b = body === null ? null : Buffer.from(body, 'utf8');
    const h = [`${method} ${target} HTTP/1.1`, `Host: 127.0.0.1:${this.port}`, ...headers];
    if (b) h.push(`Content-Length: ${b.length}`);
    h.push('', '');
    return new Promise((resolve) => {
      this.waiting = { resolve, timer: setTimeout(() => { this.waiting = null; resolve(null); }, ms) };
      this.sock.write(b ? Buffer.concat([Buffer.from(h.join('\r\n'), 'latin1'), b]) : h.join('\r\n'));
    });
  }
  close() {
    this.sock.end();
  }
}
const TEXT_PLAIN = ['Content-Type: text/plain;charset=UTF-8'];
// EIO 3 text payload with UTF-16 lengths, as engine.io-client 3.x (engine.io-parser 2.x) writes it.
const eio3Payload = (packets) => packets.map((p) => `${p.length}:${p}`).join('');

// A session polled by hand over two keep-alive connections (A for the handshake, POSTs and
// short polls, B for the polls that wait), against a server whose sockets answer every
// 'message' event with two sends in one tick.
async function keepAliveSession(cap, io, p, eio) {
  const conn = waitFor(io, 'connection', 5000, 'server connection');
  const a = new KeepAliveConn(p);
  const b = new KeepAliveConn(p);
  const q = `/socket.io/?EIO=${eio}&transport=polling`;
  cap.mark('client', 'hand-written keep-alive session: GET handshake on connection A');
  const open = await a.request('GET', `${q}&t=KaLiv01`);
  const sid = /"sid":"([^"]+)"/.exec(open.body)[1];
  const text = (packets) => (eio === 3 ? eio3Payload(packets) : packets.join('\x1e'));
  if (eio === 4) {
    cap.mark('client', 'POST 40 on A (the socket.io connection event waits for it), then GET on A (answers with the CONNECT)');
    await a.request('POST', `${q}&t=KaLiv02&sid=${sid}`, TEXT_PLAIN, '40');
  }
  const [s] = await conn;
  s.on('message', (m) => {
    cap.mark('server', `socket 'message' event ${JSON.stringify(m)}; calls socket.send("echo " + m) and socket.send("\u00e9\ud83d\ude00") in one tick`);
    s.send(`echo ${m}`);
    s.send('\u00e9\ud83d\ude00');
  });
  if (eio === 4) await a.request('GET', `${q}&t=KaLiv03&sid=${sid}`);
  cap.mark('client', 'GET on B (waits), then POST on A: two message events in one payload');
  const pending = b.request('GET', `${q}&t=KaLiv04&sid=${sid}`);
  await sleep(100);
  await a.request('POST', `${q}&t=KaLiv05&sid=${sid}`, TEXT_PLAIN, text(['42["message","h\u00e9llo \u2603 \ud83d\ude00"]', '42["message","x"]']));
  await pending;
  await sleep(100);
  cap.mark('client', 'GET on B (gets what is still queued, or waits)');
  await b.request('GET', `${q}&t=KaLiv06&sid=${sid}`, [], null, 3000);
  if (eio === 3) {
    cap.mark('client', 'POST a ping on A (EIO 3: the client pings), then GET on B for the pong');
    await a.request('POST', `${q}&t=KaLiv07&sid=${sid}`, TEXT_PLAIN, text(['2']));
    await b.request('GET', `${q}&t=KaLiv08&sid=${sid}`, [], null, 3000);
  } else {
    cap.mark('client', 'GET on B until the server ping (EIO 4: the server pings), then POST the pong on A');
    await b.request('GET', `${q}&t=KaLiv07&sid=${sid}`, [], null, 3000);
    await a.request('POST', `${q}&t=KaLiv08&sid=${sid}`, TEXT_PLAIN, text(['3']));
  }
  cap.mark('client', 'GET on B (waits), then POST close 1 on A');
  const last = b.request('GET', `${q}&t=KaLiv09&sid=${sid}`, [], null, 3000);
  await sleep(100);
  await a.request('POST', `${q}&t=KaLiv10&sid=${sid}`, TEXT_PLAIN, text(['1']));
  await last;
  await sleep(200);
  a.close();
  b.close();
  await sleep(200);
}

const NON_ASCII = 'h\u00e9llo \u2603 \ud83d\ude00'; // "héllo ☃ 😀": 2-, 3- and 4-byte UTF-8, one surrogate pair

// ---------------------------------------------------------------- socket.io 0.9

async function v09Server(settings) {
  const srv = http.createServer((q, s) => { s.writeHead(404); s.end('not socket.io\n'); });
  const port = await listenLocal(srv);
  const io = require('sio09').listen(srv, { 'log level': 0 });
  for (const [k, v] of Object.entries(settings)) io.set(k, v);
  return { srv, io, port };
}
function v09Client(port, transports) {
  return require('sioc09').connect(`http://127.0.0.1:${port}`, { 'force new connection': true, transports, reconnect: false, 'try multiple transports': false });
}

async function v09Session(cap, io, transports, { serverDisconnect, waitHeartbeats, multi }) {
  const got = [];
  const conn = waitFor(io.sockets, 'connection', 5000, 'server connection');
  const c = v09Client(cap.port, transports);
  cap.mark('client', `io.connect(url, {transports: ${JSON.stringify(transports)}, 'force new connection': true, reconnect: false})`);
  const [s] = await conn;
  s.on('message', (m) => cap.mark('server', `socket 'message' event: ${JSON.stringify(m)}`));
  s.on('chat', (d, ack) => { cap.mark('server', `socket 'chat' event ${JSON.stringify(d)}, calls ack('ok')`); ack('ok'); });
  c.on('message', (m) => got.push(m));
  c.on('news', (m) => got.push(m));
  if (!c.socket.connected) await waitFor(c, 'connect', 5000, 'client connect');
  await sleep(waitHeartbeats);
  cap.mark('client', `socket.send("hello from client")`);
  c.send('hello from client');
  await sleep(300);
  cap.mark('client', `socket.json.send({a: 1})`);
  c.json.send({ a: 1 });
  await sleep(300);
  cap.mark('client', `socket.emit('message', "emitted message")`);
  c.emit('message', 'emitted message');
  await sleep(300);
  cap.mark('client', `socket.emit('chat', {text: ${JSON.stringify(NON_ASCII)}}, ackFn)`);
  c.emit('chat', { text: NON_ASCII }, (r) => cap.mark('client', `ack callback got ${JSON.stringify(r)}`));
  await sleep(400);
  if (multi) {
    cap.mark('client', `socket.send("c1"); socket.send("c2"); socket.send("c3")  (same tick)`);
    c.send('c1');
    c.send('c2');
    c.send('c3');
    await sleep(400);
  }
  cap.mark('server', `socket.send("hello from server")`);
  s.send('hello from server');
  await sleep(300);
  if (multi) {
    cap.mark('server', `socket.send("s1"); socket.send("s2"); socket.send(${JSON.stringify(NON_ASCII)})  (same tick)`);
    s.send('s1');
    s.send('s2');
    s.send(NON_ASCII);
    await sleep(400);
  } else {
    cap.mark('server', `socket.send(${JSON.stringify(NON_ASCII)})`);
    s.send(NON_ASCII);
    await sleep(300);
  }
  cap.mark('server', `socket.json.send({b: 2})`);
  s.json.send({ b: 2 });
  await sleep(300);
  cap.mark('server', `socket.emit('news', {hello: 'world'})`);
  s.emit('news', { hello: 'world' });
  await sleep(400);
  if (serverDisconnect) {
    cap.mark('server', 'socket.disconnect()');
    s.disconnect();
  } else {
    cap.mark('client', 'socket.disconnect()');
    c.disconnect();
  }
  await sleep(1200);
  return got;
}

// Defines <prefix>-polling-upgrade, <prefix>-polling and <prefix>-websocket (those with a
// desc): one server, one client session, the client's three transport choices. session is
// (cap, server, clientOpts, opts); opts.afterConnect waits for the upgrade in the first.
function transportScenarios(prefix, { proto, server, session, sessionOpts = {}, descs, secondWebSocketSession }) {
  const base = { forceNew: true, reconnection: false };
  const awaitUpgrade = (cap) => async (c) => {
    if (c.io.engine.transport.name !== 'websocket') await waitFor(c.io.engine, 'upgrade', 5000, 'upgrade');
    cap.mark('client', "engine 'upgrade' event (now on websocket)");
  };
  const heartbeats = limitHeartbeats((p) => p === '2' || p === '3', 3);
  const start = async (cap) => {
    const { io, port } = await server();
    await cap.listen(port);
    return io;
  };
  if (descs.upgrade) {
    SCENARIOS[`${prefix}-polling-upgrade`] = {
      proto,
      desc: descs.upgrade,
      async run(cap) {
        await session(cap, await start(cap), base, { ...sessionOpts, afterConnect: awaitUpgrade(cap) });
      },
      limit: heartbeats,
    };
  }
  if (descs.polling) {
    SCENARIOS[`${prefix}-polling`] = {
      proto,
      desc: descs.polling,
      async run(cap) {
        await session(cap, await start(cap), { ...base, transports: ['polling'] }, sessionOpts);
      },
    };
  }
  if (descs.websocket) {
    SCENARIOS[`${prefix}-websocket`] = {
      proto,
      desc: descs.websocket,
      async run(cap) {
        const io = await start(cap);
        const opts = { ...base, transports: ['websocket'] };
        await session(cap, io, opts, sessionOpts);
        if (secondWebSocketSession) await session(cap, io, opts, { ...sessionOpts, ...secondWebSocketSession });
      },
      limit: heartbeats,
    };
  }
}

// A scenario that polls a server by hand over keep-alive connections (keepAliveSession).
function keepAliveScenario(name, eio, server, desc) {
  SCENARIOS[name] = {
    proto: `eio${eio}`,
    desc,
    async run(cap) {
      const { io, port } = await server();
      await keepAliveSession(cap, io, await cap.listen(port), eio);
    },
  };
}

const SCENARIOS = {};

SCENARIOS['v09-websocket'] = {
  proto: 'v09',
  desc: 'socket.io 0.9.19 server <-> socket.io-client 0.9.16 (node), transports [websocket]; heartbeat interval 1 s, heartbeat timeout 3 s. conn 1: handshake; conn 2: WebSocket session ending with server socket.disconnect(); conn 3+4: a second session ending with client socket.disconnect().',
  async run(cap) {
    const { io, port } = await v09Server({ 'heartbeat interval': 1, 'heartbeat timeout': 3, 'close timeout': 5, transports: ['websocket', 'xhr-polling'] });
    await cap.listen(port);
    await v09Session(cap, io, ['websocket'], { serverDisconnect: true, waitHeartbeats: 2300 });
    await v09Session(cap, io, ['websocket'], { serverDisconnect: false, waitHeartbeats: 0 });
  },
  limit: limitHeartbeats((p) => p === '2::', 3),
};

SCENARIOS['v09-xhr-polling'] = {
  proto: 'v09',
  desc: "socket.io 0.9.19 server <-> socket.io-client 0.9.16 (node), client option transports [xhr-polling], server transports [xhr-polling, websocket] (the server's order decides in 0.9); heartbeat interval 3 s, heartbeat timeout 8 s, polling duration 1 s: a pending GET is answered with the noop 8:: after the polling duration (0.9 sends no heartbeats over polling transports: HTTPPolling.setHeartbeatInterval is a no-op). The first session ends with server socket.disconnect(), the second with client socket.disconnect().",
  async run(cap) {
    // The 0.9 client deep-merges its transports option into its default list
    // (so ['xhr-polling'] becomes ['xhr-polling','xhr-polling','websocket',
    // 'xhr-polling'] in node) and then walks the server's list in the server's
    // order: the server has to list xhr-polling first.
    const { io, port } = await v09Server({ 'heartbeat interval': 3, 'heartbeat timeout': 8, 'close timeout': 5, 'polling duration': 1, transports: ['xhr-polling', 'websocket'] });
    await cap.listen(port);
    await v09Session(cap, io, ['xhr-polling'], { serverDisconnect: true, waitHeartbeats: 2300, multi: true });
    await v09Session(cap, io, ['xhr-polling'], { serverDisconnect: false, waitHeartbeats: 0 });
  },
};

SCENARIOS['v09-http-errors'] = {
  proto: 'v09',
  desc: 'socket.io 0.9.19 server, hand-written requests (one TCP connection each, Connection: close): unknown sid over xhr-polling (GET and POST) and over WebSocket, unknown transport, unsupported protocol version, missing sid, bare /socket.io/, a handshake with an Origin header (CORS), a JSONP-polling handshake-less poll, and an OPTIONS preflight.',
  async run(cap) {
    const { port } = await v09Server({ 'heartbeat interval': 25, 'heartbeat timeout': 60, 'close timeout': 60, transports: ['websocket', 'xhr-polling', 'jsonp-polling'] });
    const p = await cap.listen(port);
    const steps = [
      ['GET on xhr-polling with an unknown sid', req('GET', '/socket.io/1/xhr-polling/unknownsid123?t=1700000000000', p)],
      ['POST on xhr-polling with an unknown sid', req('POST', '/socket.io/1/xhr-polling/unknownsid123?t=1700000000000', p, ['Content-Type: text/plain;charset=UTF-8'], '3:::hello')],
      ['WebSocket upgrade with an unknown sid, then a text frame 3:::hello', [wsUpgradeRequest('/socket.io/1/websocket/unknownsid123', p), 300, wsFrame('3:::hello')]],
      ['GET with an unknown transport', req('GET', '/socket.io/1/flashsocket-bogus/unknownsid123?t=1', p)],
      ['handshake with protocol version 2', req('GET', '/socket.io/2/?t=1700000000000', p)],
      ['xhr-polling GET without a sid', req('GET', '/socket.io/1/xhr-polling/?t=1', p)],
      ['bare /socket.io/', req('GET', '/socket.io/', p)],
      ['handshake with Origin and Cookie headers (CORS)', req('GET', '/socket.io/1/?t=1700000000000', p, ['Origin: http://example.test:8080', 'Cookie: a=b'])],
      ['handshake POST', req('POST', '/socket.io/1/?t=1700000000000', p, [], '')],
      ['handshake as JSONP (?jsonp=0)', req('GET', '/socket.io/1/?t=1700000000000&jsonp=0', p)],
      ['OPTIONS preflight on the handshake', req('OPTIONS', '/socket.io/1/?t=1700000000000', p, ['Origin: http://example.test:8080', 'Access-Control-Request-Method: GET'])],
      ['a path outside /socket.io/ (answered by the test http server, not socket.io)', req('GET', '/other', p)],
    ];
    for (const [what, bytes] of steps) {
      cap.mark('client', `hand-written: ${what}`);
      await rawExchange(p, Array.isArray(bytes) ? bytes : [bytes], 1500);
    }
  },
};

// ---------------------------------------------------------------- Pomelo 2.2.7 sioconnector (socket.io 1.7.2)

// The sioconnector listens on all interfaces (httpServer.listen(port)); this
// shim makes a port-only listen() bind 127.0.0.1 and remembers the server.
let lastListened = null;
function pinListenToLoopback() {
  const orig = http.Server.prototype.listen;
  http.Server.prototype.listen = function (port, ...rest) {
    lastListened = this;
    if (typeof port === 'number' && (rest.length === 0 || typeof rest[0] === 'function')) return orig.call(this, port, '127.0.0.1', ...rest);
    return orig.call(this, port, ...rest);
  };
}

// Protocol.encode of pomelo-jsclient-socket.io (lib/pomelo-client.js),
// reimplemented: 4 chars of id bytes (big endian), 1 char route length, the
// route, then JSON.stringify(msg); every char is one UTF-16 code unit.
function pomeloEncode(id, route, msg) {
  const body = JSON.stringify(msg);
  if (route.length > 255) throw new Error('route too long');
  let s = String.fromCharCode((id >> 24) & 0xff, (id >> 16) & 0xff, (id >> 8) & 0xff, id & 0xff, route.length & 0xff);
  for (let i = 0; i < route.length; i++) s += String.fromCharCode(route.charCodeAt(i));
  for (let i = 0; i < body.length; i++) s += String.fromCharCode(body.charCodeAt(i));
  return s;
}

async function startPomelo(opts) {
  pinListenToLoopback();
  const Connector = require('pomelo/lib/connectors/sioconnector.js');
  const connector = new Connector(0, '127.0.0.1', opts);
  const origLog = console.log;
  console.log = () => {}; // "sio Server listening at port 0"
  await new Promise((r) => connector.start(r));
  await until(() => lastListened && lastListened.listening, 5000, 'sioconnector listening');
  console.log = origLog;
  return { connector, port: lastListened.address().port };
}

async function pomeloSession(cap, connector, clientOpts, { afterConnect } = {}) {
  const io = require('sioc17');
  const conn = waitFor(connector, 'connection', 5000, 'connector connection');
  cap.mark('client', `io(url, ${JSON.stringify(clientOpts)})  [socket.io-client 1.7.2]`);
  const c = io(`http://127.0.0.1:${cap.port}`, clientOpts);
  const [s] = await conn;
  const decoded = [];
  s.on('message', (m) => {
    const d = connector.decode(m);
    decoded.push(d);
    cap.mark('server', `siosocket 'message' ${JSON.stringify(m)}; connector.decode() -> ${JSON.stringify(d)}`);
    if (d.route === 'connector.entryHandler.add') {
      const enc = connector.encode(d.id, d.route, { code: 200, msg: 'add ok' });
      cap.mark('server', `s.send(connector.encode(2, ${JSON.stringify(d.route)}, {code:200,msg:"add ok"}))  (encode returned ${JSON.stringify(enc)}, a ${typeof enc}; SioSocket.send JSON.stringifies objects)`);
      s.send(enc);
    }
  });
  const received = [];
  c.on('message', (m) => received.push(m));
  c.on('disconnect', (r) => cap.mark('client', `'disconnect' event: ${JSON.stringify(r)}`));
  if (!c.connected) await waitFor(c, 'connect', 5000, 'client connect');
  cap.mark('client', "'connect' event");
  if (afterConnect) await afterConnect(c);

  // The jsclient's request(): id++ (the first request gets id 2), then
  // socket.send(Protocol.encode(id, route, msg)).
  const r1 = pomeloEncode(2, 'connector.entryHandler.add', { a: 1 });
  cap.mark('client', `socket.send(Protocol.encode(2, "connector.entryHandler.add", {a:1}))  i.e. ${JSON.stringify(r1)}`);
  c.send(r1);
  await sleep(400);
  // The jsclient's notify() passes reqId 0, but its defaultEncode ignores
  // reqId and encodes the global id (2 after one request); sent as it does.
  const n1 = pomeloEncode(2, 'chat.chatHandler.send', { msg: NON_ASCII });
  cap.mark('client', `pomelo.notify("chat.chatHandler.send", {msg: ${JSON.stringify(NON_ASCII)}}): the jsclient's defaultEncode ignores reqId 0 and encodes the current global id 2: ${JSON.stringify(n1)}`);
  c.send(n1);
  await sleep(400);
  const r2 = pomeloEncode(200, 'area.playerHandler.move', { x: 1 });
  cap.mark('client', `socket.send(Protocol.encode(200, "area.playerHandler.move", {x:1}))  (id byte 0xC8 is char U+00C8, two bytes in UTF-8): ${JSON.stringify(r2)}`);
  c.send(r2);
  await sleep(400);
  const push = connector.encode(0, 'onMsg', { msg: 'hello' });
  cap.mark('server', `s.send(connector.encode(0, "onMsg", {msg:"hello"}))  (encode returned ${JSON.stringify(push)})`);
  s.send(push);
  await sleep(300);
  const push2 = connector.encode(undefined, 'onMsg', { msg: NON_ASCII });
  cap.mark('server', `s.send(connector.encode(undefined, "onMsg", {msg:${JSON.stringify(NON_ASCII)}}))`);
  s.send(push2);
  await sleep(300);
  const batch = [connector.encode(0, 'onChat', { from: 'a', msg: 'one' }), connector.encode(5, 'area.playerHandler.move', { code: 200 })];
  cap.mark('server', `s.sendBatch([connector.encode(0, "onChat", {from:"a",msg:"one"}), connector.encode(5, "area.playerHandler.move", {code:200})])  (a string and an object)`);
  s.sendBatch(batch);
  await sleep(300);
  cap.mark('server', `three sends in one tick: s.send(encode(0,"onA",{n:1})); s.send(encode(0,"onB",{n:2})); s.send(encode(7,"r",{code:200}))`);
  s.send(connector.encode(0, 'onA', { n: 1 }));
  s.send(connector.encode(0, 'onB', { n: 2 }));
  s.send(connector.encode(7, 'r', { code: 200 }));
  await sleep(2300); // a few client pings (pingInterval 1000)
  cap.mark('server', `kick as sessionService.kick does it: s.emit('closing', 'kick') (the connector's 'closing' listener sends {route:'onKick', reason}), then on the next tick s.disconnect()`);
  s.emit('closing', 'kick');
  process.nextTick(() => s.disconnect());
  await sleep(1500);
  cap.mark('client', `client got ${received.length} 'message' events: ${JSON.stringify(received)}`);
  return { decoded, received };
}

const POMELO_OPTS = { transports: ['websocket', 'polling'], heartbeatInterval: 1000, heartbeatTimeout: 3000 };
const POMELO_DESC = "Pomelo 2.2.7 lib/connectors/sioconnector.js (socket.io 1.7.2 / engine.io 1.8.2, ws 1.1.1) loaded directly: new Connector(port, host, {transports:['websocket','polling'], heartbeatInterval:1000, heartbeatTimeout:3000}) (the connector passes these straight to engine.io's pingInterval/pingTimeout, which are milliseconds) <-> socket.io-client 1.7.2 (engine.io-client 1.8.2, node). The client sends Pomelo requests encoded like pomelo-jsclient-socket.io's Protocol.encode; the server answers with s.send(connector.encode(...)), pushes, sendBatch, three sends in one tick, and finally a kick (s.emit('closing','kick') + s.disconnect()). 'action' events with actor server show what connector.decode() returned.";

transportScenarios('pomelo-2.2.7-eio3', {
  proto: 'eio3',
  server: async () => {
    const { connector, port } = await startPomelo(POMELO_OPTS);
    return { io: connector, port };
  },
  session: pomeloSession,
  descs: {
    upgrade: POMELO_DESC + ' Client transports default (polling, then upgrade to websocket): handshake poll, the 40 in the first poll, the probe 2probe/3probe, the noop 6 that releases the pending poll, 5 upgrade, then everything over WebSocket; EIO3: the client sends ping 2, the server answers pong 3.',
    polling: POMELO_DESC + " Client transports ['polling'] only: every packet goes through GET polls and POSTs with <len>:<packet> payload framing; pings are POSTed, pongs come back in a poll.",
    websocket: POMELO_DESC + " Client transports ['websocket'] only: the open packet and 40 come as WebSocket frames.",
  },
});

SCENARIOS['pomelo-2.2.7-eio3-default-heartbeat'] = {
  proto: 'eio3',
  desc: "Pomelo 2.2.7 sioconnector with only {transports:['websocket','polling']}: the connector's defaults heartbeatInterval 25 and heartbeatTimeout 60 (meant as seconds) are handed to engine.io as milliseconds. A hand-written handshake shows the open packet; then a socket.io-client 1.7.2 session of about 300 ms shows the ping rate that results (pings truncated).",
  async run(cap) {
    const { connector, port } = await startPomelo({ transports: ['websocket', 'polling'] });
    const p = await cap.listen(port);
    cap.mark('client', 'hand-written: EIO=3 polling handshake');
    await rawExchange(p, [req('GET', '/socket.io/?EIO=3&transport=polling&t=LcMkl1A', p)], 800);
    const io = require('sioc17');
    const conn = waitFor(connector, 'connection', 5000, 'connector connection');
    cap.mark('client', `io(url, {forceNew: true, reconnection: false, transports: ['websocket']})`);
    const c = io(`http://127.0.0.1:${p}`, { forceNew: true, reconnection: false, transports: ['websocket'] });
    await conn;
    await sleep(300);
    cap.mark('client', 'socket.close()');
    c.close();
    await sleep(300);
  },
  limit: limitHeartbeats((p) => p === '2' || p === '3', 4),
};

// Hand-written requests against an Engine.IO 3 server on port p (via the proxy).
// connectInHandshake: the server writes its 40 into the handshake body (socket.io 2.x), so a
// first GET would wait rather than return the 40.
async function eio3HttpErrors(cap, p, { connectInHandshake = false } = {}) {
  const steps = [
    ['GET poll with an unknown sid', req('GET', '/socket.io/?EIO=3&transport=polling&t=LcMkl1A&sid=unknownsid123', p)],
    ['POST with an unknown sid', req('POST', '/socket.io/?EIO=3&transport=polling&t=LcMkl1A&sid=unknownsid123', p, ['Content-Type: text/plain;charset=UTF-8'], '1:2')],
    ['WebSocket upgrade with an unknown sid', [wsUpgradeRequest('/socket.io/?EIO=3&transport=websocket&sid=unknownsid123', p)]],
    ['unknown transport', req('GET', '/socket.io/?EIO=3&transport=flashsocket&t=LcMkl1A', p)],
    ['no transport', req('GET', '/socket.io/?EIO=3&t=LcMkl1A', p)],
    ['handshake without EIO', req('GET', '/socket.io/?transport=polling&t=LcMkl1A', p)],
    ['handshake with EIO=4', req('GET', '/socket.io/?EIO=4&transport=polling&t=LcMkl1A', p)],
    ['handshake with PUT', req('PUT', '/socket.io/?EIO=3&transport=polling&t=LcMkl1A', p, [], '')],
    ['handshake with POST', req('POST', '/socket.io/?EIO=3&transport=polling&t=LcMkl1A', p, ['Content-Type: text/plain;charset=UTF-8'], '1:2')],
    ['handshake with b64=1 (clients without binary XHR)', req('GET', '/socket.io/?EIO=3&transport=polling&t=LcMkl1A&b64=1', p)],
    ['handshake as JSONP (j=0) without b64 (the server JSON-serialises its binary payload Buffer)', req('GET', '/socket.io/?EIO=3&transport=polling&t=LcMkl1A&j=0', p)],
    ['handshake as JSONP (j=0&b64=1, as engine.io-client sends it)', req('GET', '/socket.io/?EIO=3&transport=polling&t=LcMkl1A&b64=1&j=0', p)],
    ['handshake with Origin and Cookie headers', req('GET', '/socket.io/?EIO=3&transport=polling&t=LcMkl1A', p, ['Origin: http://example.test:8080', 'Cookie: a=b'])],
    ['OPTIONS preflight', req('OPTIONS', '/socket.io/?EIO=3&transport=polling&t=LcMkl1A', p, ['Origin: http://example.test:8080', 'Access-Control-Request-Method: POST', 'Access-Control-Request-Headers: content-type'])],
    ['wrong path /engine.io/ (the http server has no other handler: no answer at all)', req('GET', '/engine.io/?EIO=3&transport=polling&t=LcMkl1A', p)],
  ];
  for (const [what, bytes] of steps) {
    cap.mark('client', `hand-written: ${what}`);
    await rawExchange(p, Array.isArray(bytes) ? bytes : [bytes], 1200);
  }
  // Two sessions opened through the proxy, then misused.
  const open = async () => {
    const b = await fetchBody(p, 'GET', '/socket.io/?EIO=3&transport=polling&t=LcMkl1B');
    return /"sid":"([^"]+)"/.exec(b)[1];
  };
  cap.mark('client', 'hand-written: open a session (node http), then POST a payload that does not parse');
  let sid = await open();
  await rawExchange(p, [req('POST', `/socket.io/?EIO=3&transport=polling&t=LcMkl1C&sid=${sid}`, p, ['Content-Type: text/plain;charset=UTF-8'], 'zzz')], 1200);
  await rawExchange(p, [req('GET', `/socket.io/?EIO=3&transport=polling&t=LcMkl1D&sid=${sid}`, p)], 1200);
  sid = await open();
  if (connectInHandshake) {
    cap.mark('client', 'hand-written: open a session (its body held the 40), then two GET polls at once on it');
  } else {
    cap.mark('client', 'hand-written: open a session, GET once (returns the 40), then two GET polls at once on it');
    await rawExchange(p, [req('GET', `/socket.io/?EIO=3&transport=polling&t=LcMkl1G&sid=${sid}`, p)], 1200);
  }
  await Promise.all([
    rawExchange(p, [req('GET', `/socket.io/?EIO=3&transport=polling&t=LcMkl1E&sid=${sid}`, p)], 1500),
    (async () => { await sleep(150); await rawExchange(p, [req('GET', `/socket.io/?EIO=3&transport=polling&t=LcMkl1F&sid=${sid}`, p)], 1200); })(),
  ]);
}

SCENARIOS['pomelo-2.2.7-eio3-http-errors'] = {
  proto: 'eio3',
  desc: 'Pomelo 2.2.7 sioconnector (engine.io 1.8.2), hand-written requests, one TCP connection each: unknown sid (GET, POST, WebSocket upgrade), unknown transport, missing/other EIO versions, bad method, a handshake with b64=1, a JSONP handshake (j=0), a handshake with an Origin header, an OPTIONS preflight, a POST whose payload does not parse, and two concurrent GET polls on one sid.',
  async run(cap) {
    const { port } = await startPomelo(POMELO_OPTS);
    const p = await cap.listen(port);
    await eio3HttpErrors(cap, p);
  },
};

// A browser with XMLHttpRequest level 2 sends no b64=1; engine.io 1.8.2 then
// frames every poll response as a binary payload, while the browser's
// engine.io-parser (lib/browser.js, used here to build the POST bodies) sends
// text payloads for packets without binary data.
function eio3BrowserPayload(packets) {
  const parser = require('engine.io-client/node_modules/engine.io-parser/lib/browser.js');
  return new Promise((resolve) => parser.encodePayload(packets, true, resolve));
}
function httpPoll(port, method, target, body) {
  return new Promise((resolve, reject) => {
    const headers = method === 'POST' ? { 'Content-Type': 'text/plain;charset=UTF-8', 'Content-Length': Buffer.byteLength(body, 'utf8') } : {};
    const r = http.request({ host: '127.0.0.1', port, method, path: target, agent: false, headers }, (res) => {
      const parts = [];
      res.on('data', (d) => parts.push(d));
      res.on('end', () => resolve(Buffer.concat(parts)));
    });
    r.setTimeout(5000, () => r.destroy(new Error('timeout')));
    r.on('error', reject);
    r.end(body);
  });
}

SCENARIOS['pomelo-2.2.7-eio3-polling-xhr2'] = {
  proto: 'eio3',
  desc: "Pomelo 2.2.7 sioconnector (engine.io 1.8.2) with {transports:['websocket','polling'], heartbeatInterval:1000, heartbeatTimeout:3000}, polled the way a browser with XHR2 does it (no b64=1 in the query): node http requests written by the recorder, POST bodies built with engine.io-client 1.8.2's own browser parser (engine.io-parser 1.3.2 lib/browser.js: text <len>:<packet> payloads with the packet UTF-8-encoded into one char per byte). engine.io 1.8.2 answers every poll with a binary payload (application/octet-stream, <0x00><length digits as bytes><0xFF><packet>).",
  async run(cap) {
    const { connector } = await startPomelo(POMELO_OPTS);
    const p = await cap.listen(lastListened.address().port);
    const conn = waitFor(connector, 'connection', 5000, 'connector connection');
    const q = 'EIO=3&transport=polling';
    cap.mark('client', 'GET handshake (no b64)');
    const open = (await httpPoll(p, 'GET', `/socket.io/?${q}&t=LcMkl2A`, '')).toString('latin1');
    const sid = /"sid":"([^"]+)"/.exec(open)[1];
    const [s] = await conn;
    s.on('message', (m) => cap.mark('server', `siosocket 'message' ${JSON.stringify(m)}; connector.decode() -> ${JSON.stringify(connector.decode(m))}`));
    const poll = (t) => httpPoll(p, 'GET', `/socket.io/?${q}&t=${t}&sid=${sid}`, '');
    const post = async (t, packets, what) => {
      const body = await eio3BrowserPayload(packets);
      cap.mark('client', `POST ${what}: engine.io-parser browser encodePayload(${JSON.stringify(packets)}) = ${JSON.stringify(body)}`);
      return httpPoll(p, 'POST', `/socket.io/?${q}&t=${t}&sid=${sid}`, body);
    };
    cap.mark('client', 'GET poll (gets the 40)');
    await poll('LcMkl2B');
    const req2 = pomeloEncode(2, 'connector.entryHandler.add', { msg: NON_ASCII });
    await post('LcMkl2C', [{ type: 'message', data: '2' + JSON.stringify(['message', req2]) }], 'a Pomelo request (id 2) with non-ASCII text');
    const pending = poll('LcMkl2D');
    await sleep(200);
    cap.mark('server', `s.send(connector.encode(2, "connector.entryHandler.add", {code:200,msg:"add ok"})); s.send(connector.encode(0, "onMsg", {msg:${JSON.stringify(NON_ASCII)}})); s.sendBatch([...two...])  (same tick)`);
    s.send(connector.encode(2, 'connector.entryHandler.add', { code: 200, msg: 'add ok' }));
    s.send(connector.encode(0, 'onMsg', { msg: NON_ASCII }));
    s.sendBatch([connector.encode(0, 'onChat', { msg: 'one' }), connector.encode(3, 'r', { code: 200 })]);
    await pending;
    await poll('LcMkl2E');
    const pending2 = poll('LcMkl2F');
    await sleep(200);
    await post('LcMkl2G', [{ type: 'ping' }, { type: 'message', data: '2' + JSON.stringify(['message', pomeloEncode(3, 'r', {})]) }], 'a ping and a request in one payload');
    await pending2;
    await sleep(200);
    const pending3 = poll('LcMkl2H');
    await sleep(200);
    cap.mark('server', "kick: s.emit('closing', 'kick'); next tick s.disconnect()");
    s.emit('closing', 'kick');
    process.nextTick(() => s.disconnect());
    await pending3;
    await poll('LcMkl2I');
    await post('LcMkl2J', [{ type: 'close' }], 'close');
    await sleep(300);
  },
};

// ---------------------------------------------------------------- socket.io 4.x

async function sio4Server(opts) {
  const srv = http.createServer();
  const { Server } = require('sio4');
  const io = new Server(srv, opts);
  const port = await listenLocal(srv);
  return { srv, io, port };
}

async function sio4Session(cap, io, clientOpts, { clientLib = 'sioc4', clientName = 'socket.io-client 4.8.4', afterConnect, serverDisconnect = true, waitPings = 2300, binary = true } = {}) {
  const ioc = require(clientLib);
  const conn = waitFor(io, 'connection', 5000, 'server connection');
  cap.mark('client', `io(url, ${JSON.stringify(clientOpts)})  [${clientName}]`);
  const c = ioc(`http://127.0.0.1:${cap.port}`, clientOpts);
  const [s] = await conn;
  s.on('message', (m) => cap.mark('server', `socket 'message' event: ${JSON.stringify(m)}`));
  s.on('chat', (d, ack) => { cap.mark('server', `socket 'chat' event ${JSON.stringify(d)}, calls ack('ok')`); ack('ok'); });
  s.on('bin', (d) => cap.mark('server', `socket 'bin' event, ${Buffer.isBuffer(d) ? 'Buffer ' + d.toString('hex') : JSON.stringify(d)}`));
  const received = [];
  c.on('message', (m) => received.push(m));
  c.on('disconnect', (r) => cap.mark('client', `'disconnect' event: ${JSON.stringify(r)}`));
  if (!c.connected) await waitFor(c, 'connect', 5000, 'client connect');
  cap.mark('client', "'connect' event");
  if (afterConnect) await afterConnect(c);
  cap.mark('client', 'socket.send("hello from client")');
  c.send('hello from client');
  await sleep(300);
  cap.mark('client', `socket.emit('chat', {text: ${JSON.stringify(NON_ASCII)}}, ackFn)`);
  c.emit('chat', { text: NON_ASCII }, (r) => cap.mark('client', `ack callback got ${JSON.stringify(r)}`));
  await sleep(300);
  cap.mark('client', 'socket.send("c1"); socket.send("c2"); socket.send("c3")  (same tick)');
  c.send('c1');
  c.send('c2');
  c.send('c3');
  await sleep(400);
  if (binary) {
    cap.mark('client', "socket.emit('bin', Buffer [1,2,3])");
    c.emit('bin', Buffer.from([1, 2, 3]));
    await sleep(300);
  }
  cap.mark('server', 'socket.send("hello from server")');
  s.send('hello from server');
  await sleep(300);
  cap.mark('server', `socket.send("s1"); socket.send("s2"); socket.send(${JSON.stringify(NON_ASCII)})  (same tick)`);
  s.send('s1');
  s.send('s2');
  s.send(NON_ASCII);
  await sleep(400);
  if (binary) {
    cap.mark('server', "socket.emit('bin', Buffer [1,2,3])");
    s.emit('bin', Buffer.from([1, 2, 3]));
    await sleep(300);
  }
  await sleep(waitPings);
  if (serverDisconnect) {
    cap.mark('server', 'socket.disconnect()');
    s.disconnect();
  } else {
    cap.mark('client', 'socket.disconnect()');
    c.disconnect();
  }
  await sleep(1200);
  return received;
}

const SIO4_OPTS = { pingInterval: 1000, pingTimeout: 2000 };
const SIO4_DESC = 'socket.io 4.8.4 server (engine.io 6.6.13, ws 8) with {pingInterval: 1000, pingTimeout: 2000} <-> socket.io-client 4.8.4 (engine.io-client 6.6.8, node).';

transportScenarios('eio4', {
  proto: 'eio4',
  server: () => sio4Server(SIO4_OPTS),
  session: sio4Session,
  descs: {
    upgrade: SIO4_DESC + ' Default client transports: polling open (open packet key order, maxPayload), client POSTs 40, server 40{"sid":...}, probe 2probe/3probe, noop 6, upgrade 5, then messages over WebSocket; EIO4: the server pings 2, the client answers 3; ends with server socket.disconnect() (41).',
    polling: SIO4_DESC + " Client transports ['polling'] only: payloads with several packets separated by \\x1e, binary attachments as b<base64>, server pings in poll responses and client pongs POSTed; ends with server socket.disconnect() (41).",
    websocket: SIO4_DESC + " Client transports ['websocket'] only (open packet with \"upgrades\":[] as the first frame); the first session ends with server socket.disconnect(), the second with client socket.disconnect().",
  },
  secondWebSocketSession: { serverDisconnect: false, waitPings: 0, binary: false },
});

keepAliveScenario('eio4-polling-keepalive', 4, () => sio4Server(SIO4_OPTS), "socket.io 4.8.4 server (engine.io 6.6) with {pingInterval: 1000, pingTimeout: 2000}, polled by hand like a browser: HTTP/1.1 keep-alive (no Connection header), two connections (A: handshake, POSTs, short polls; B: polls that wait). Shows the response heads on keep-alive connections, POST 40 and the 40{\"sid\":..} in the next GET, a POST with two packets, what a pending GET gets when the server sends twice in one tick, the server ping and the POSTed pong, and a POSTed close.");

SCENARIOS['eio4-http-errors'] = {
  proto: 'eio4',
  desc: 'socket.io 4.8.4 server (default options, no cors), hand-written requests, one TCP connection each: unknown sid (GET, POST, WebSocket upgrade), unknown transport, missing/old/new EIO versions, bad methods, Origin/OPTIONS (no cors configured), wrong path, a POST whose payload does not parse, two concurrent GET polls on one sid, and a CONNECT to an unknown namespace over WebSocket.',
  async run(cap) {
    const { port } = await sio4Server({});
    const p = await cap.listen(port);
    const steps = [
      ['GET poll with an unknown sid', req('GET', '/socket.io/?EIO=4&transport=polling&t=PkBsX1a&sid=unknownsid123', p)],
      ['POST with an unknown sid', req('POST', '/socket.io/?EIO=4&transport=polling&t=PkBsX1a&sid=unknownsid123', p, ['Content-Type: text/plain;charset=UTF-8'], '3')],
      ['WebSocket upgrade with an unknown sid', [wsUpgradeRequest('/socket.io/?EIO=4&transport=websocket&sid=unknownsid123', p)]],
      ['unknown transport', req('GET', '/socket.io/?EIO=4&transport=flashsocket&t=PkBsX1a', p)],
      ['no transport', req('GET', '/socket.io/?EIO=4&t=PkBsX1a', p)],
      ['handshake without EIO', req('GET', '/socket.io/?transport=polling&t=PkBsX1a', p)],
      ['handshake with EIO=3 (allowEIO3 is off)', req('GET', '/socket.io/?EIO=3&transport=polling&t=PkBsX1a', p)],
      ['handshake with EIO=5', req('GET', '/socket.io/?EIO=5&transport=polling&t=PkBsX1a', p)],
      ['handshake with PUT', req('PUT', '/socket.io/?EIO=4&transport=polling&t=PkBsX1a', p, [], '')],
      ['handshake with POST', req('POST', '/socket.io/?EIO=4&transport=polling&t=PkBsX1a', p, ['Content-Type: text/plain;charset=UTF-8'], '40')],
      ['handshake with Origin and Cookie headers', req('GET', '/socket.io/?EIO=4&transport=polling&t=PkBsX1a', p, ['Origin: http://example.test:8080', 'Cookie: a=b'])],
      ['OPTIONS preflight', req('OPTIONS', '/socket.io/?EIO=4&transport=polling&t=PkBsX1a', p, ['Origin: http://example.test:8080', 'Access-Control-Request-Method: POST', 'Access-Control-Request-Headers: content-type'])],
      ['wrong path /engine.io/', req('GET', '/engine.io/?EIO=4&transport=polling&t=PkBsX1a', p)],
      ['WebSocket handshake without sid, then 40/nope, (unknown namespace) and 40', [wsUpgradeRequest('/socket.io/?EIO=4&transport=websocket', p), 300, wsFrame('40/nope,'), 200, wsFrame('40'), 300, wsFrame('41'), 200]],
    ];
    for (const [what, bytes] of steps) {
      cap.mark('client', `hand-written: ${what}`);
      await rawExchange(p, Array.isArray(bytes) ? bytes : [bytes], 1200);
    }
    const open = async () => {
      const b = await fetchBody(p, 'GET', '/socket.io/?EIO=4&transport=polling&t=PkBsX1b');
      return /"sid":"([^"]+)"/.exec(b)[1];
    };
    cap.mark('client', 'hand-written: open a session (node http), then POST a payload that does not parse, then GET');
    let sid = await open();
    await rawExchange(p, [req('POST', `/socket.io/?EIO=4&transport=polling&t=PkBsX1c&sid=${sid}`, p, ['Content-Type: text/plain;charset=UTF-8'], 'zzz')], 1200);
    await rawExchange(p, [req('GET', `/socket.io/?EIO=4&transport=polling&t=PkBsX1d&sid=${sid}`, p)], 1200);
    cap.mark('client', 'hand-written: open a session, then two GET polls at once on it');
    sid = await open();
    await Promise.all([
      rawExchange(p, [req('GET', `/socket.io/?EIO=4&transport=polling&t=PkBsX1e&sid=${sid}`, p)], 1500),
      (async () => { await sleep(150); await rawExchange(p, [req('GET', `/socket.io/?EIO=4&transport=polling&t=PkBsX1f&sid=${sid}`, p)], 1200); })(),
    ]);
    cap.mark('client', 'hand-written: open a session, POST 40, then POST a payload with a bad socket.io packet (42 followed by invalid JSON)');
    sid = await open();
    await rawExchange(p, [req('POST', `/socket.io/?EIO=4&transport=polling&t=PkBsX1g&sid=${sid}`, p, ['Content-Type: text/plain;charset=UTF-8'], '40')], 1200);
    await rawExchange(p, [req('GET', `/socket.io/?EIO=4&transport=polling&t=PkBsX1h&sid=${sid}`, p)], 1200);
    await rawExchange(p, [req('POST', `/socket.io/?EIO=4&transport=polling&t=PkBsX1i&sid=${sid}`, p, ['Content-Type: text/plain;charset=UTF-8'], '42["a",')], 1200);
    await rawExchange(p, [req('GET', `/socket.io/?EIO=4&transport=polling&t=PkBsX1j&sid=${sid}`, p)], 1200);
  },
};

// ---------------------------------------------------------------- socket.io 2.x (Engine.IO 3)

async function sio2Server(opts) {
  const srv = http.createServer();
  const io = require('sio2')(srv, opts);
  const port = await listenLocal(srv);
  return { srv, io, port };
}

const SIO2_OPTS = { pingInterval: 1000, pingTimeout: 2000 };
const SIO2_DESC = 'socket.io 2.5.1 server (engine.io 3.6.2, socket.io-parser 3.4.5, ws 7.5) with {pingInterval: 1000, pingTimeout: 2000} <-> socket.io-client 2.5.0 (engine.io-client 3.5.x, node).';
const SIO2_CLIENT = { clientLib: 'sioc2', clientName: 'socket.io-client 2.5.0' };

transportScenarios('eio3', {
  proto: 'eio3',
  server: () => sio2Server(SIO2_OPTS),
  session: sio4Session,
  sessionOpts: SIO2_CLIENT,
  descs: {
    upgrade: SIO2_DESC + ' Default client transports (polling, then upgrade): the polling handshake (open packet, with the 40 the server sends on its own for the default namespace, in <len>:<packet> payloads), Set-Cookie io=<sid>, the probe 2probe/3probe over WebSocket, the noop 6 that answers the pending GET, 5 upgrade, then messages over WebSocket; EIO3: the client pings 2, the server answers 3; ends with server socket.disconnect() (41).',
    polling: SIO2_DESC + " Client transports ['polling'] only: <len>:<packet> payloads with several packets in one POST and in one poll response, binary payloads for the binary event, client pings POSTed and pongs in a poll; ends with server socket.disconnect() (41).",
    websocket: SIO2_DESC + " Client transports ['websocket'] only (the open packet with \"upgrades\":[] and the 40 as the first frames); the first session ends with server socket.disconnect(), the second with client socket.disconnect().",
  },
  secondWebSocketSession: { serverDisconnect: false, waitPings: 0, binary: false },
});

keepAliveScenario('eio3-polling-keepalive', 3, () => sio2Server(SIO2_OPTS), "socket.io 2.5.1 server (engine.io 3.6.2) with {pingInterval: 1000, pingTimeout: 2000}, polled by hand like a browser: HTTP/1.1 keep-alive (no Connection header, no b64), two connections (A: handshake, POSTs, short polls; B: polls that wait). Shows the response heads on keep-alive connections, the open packet and 40 in the first body (so the next GET waits), a POST with two packets, what a pending GET gets when the server sends twice in one tick, a client ping and its pong, and a POSTed close.");

SCENARIOS['eio3-http-errors'] = {
  proto: 'eio3',
  desc: 'socket.io 2.5.1 server (engine.io 3.6.2, default options), hand-written requests, one TCP connection each: unknown sid (GET, POST, WebSocket upgrade), unknown transport, missing/other EIO versions, bad method, a handshake with b64=1, JSONP handshakes (j=0), a handshake with Origin and Cookie headers, an OPTIONS preflight, a wrong path, a POST whose payload does not parse, and two concurrent GET polls on one sid.',
  async run(cap) {
    const { port } = await sio2Server({});
    const p = await cap.listen(port);
    await eio3HttpErrors(cap, p, { connectInHandshake: true });
  },
};

transportScenarios('eio3-client2-vs-sio4', {
  proto: 'eio3',
  server: () => sio4Server({ ...SIO4_OPTS, allowEIO3: true }),
  session: sio4Session,
  sessionOpts: SIO2_CLIENT,
  descs: {
    upgrade: 'socket.io 4.8.4 server with {allowEIO3: true, pingInterval: 1000, pingTimeout: 2000} <-> socket.io-client 2.5.0 (engine.io-client 3.5.6, node), default transports (polling, then upgrade): the EIO3 open packet as a 4.x server writes it, the 40 the server sends on its own for an EIO3 client, EIO3 <len>:<packet> payloads, client pings.',
    polling: "socket.io 4.8.4 server with {allowEIO3: true, pingInterval: 1000, pingTimeout: 2000} <-> socket.io-client 2.5.0, transports ['polling'] only: EIO3 <len>:<packet> payloads (and binary payloads) as a 4.x server writes them.",
  },
});

// ---------------------------------------------------------------- main

function versions() {
  const names = ['sio09', 'sioc09', 'pomelo', 'sioc17', 'sio2', 'sioc2', 'sio4', 'sioc4'];
  const out = {};
  for (const n of names) {
    try {
      out[n] = JSON.parse(fs.readFileSync(path.join(path.dirname(SELF), 'node_modules', n, 'package.json'), 'utf8')).version;
    } catch {
      out[n] = '?';
    }
  }
  return out;
}

async function runOne(name, outDir) {
  const sc = SCENARIOS[name];
  const cap = new Capture();
  const hard = setTimeout(() => { console.error(`${name}: timed out`); process.exit(3); }, SCENARIO_TIMEOUT_MS - 2000);
  try {
    await sc.run(cap);
  } finally {
    await sleep(300);
    cap.close();
    clearTimeout(hard);
  }
  const events = finish(cap, sc.proto, { limit: sc.limit });
  const file = path.join(outDir, `${name}.json`);
  // The file is an array of events; the first one (layer "meta") says what
  // the scenario is.
  const meta = { dir: 'local', layer: 'meta', scenario: name, description: sc.desc, versions: versions(), node: process.version, recorded_at: new Date().toISOString().slice(0, 10) };
  fs.writeFileSync(file, toJson([meta, ...events]));
  console.log(`${name}: ${events.length} events -> ${file}`);
}

async function main() {
  const args = process.argv.slice(2);
  if (args.includes('--list')) {
    for (const [n, s] of Object.entries(SCENARIOS)) console.log(`${n}\n    ${s.desc}\n`);
    return;
  }
  const oi = args.indexOf('--out');
  const outDir = path.resolve(oi >= 0 ? args[oi + 1] : '.');
  const rest = args.filter((a, i) => a !== '--out' && i !== oi + 1 && a !== '--one');
  fs.mkdirSync(outDir, { recursive: true });
  if (args.includes('--one')) {
    await runOne(rest[0], outDir);
    process.exit(0);
  }
  const names = rest.length ? rest : Object.keys(SCENARIOS);
  let failed = 0;
  for (const n of names) {
    if (!SCENARIOS[n]) throw new Error(`unknown scenario ${n}`);
    const rc = await new Promise((resolve) => {
      const ch = spawn(process.execPath, [SELF, '--one', n, '--out', outDir], { stdio: 'inherit' });
      const t = setTimeout(() => ch.kill('SIGKILL'), SCENARIO_TIMEOUT_MS);
      ch.on('exit', (code) => { clearTimeout(t); resolve(code); });
    });
    if (rc !== 0) {
      failed++;
      console.error(`${n}: failed (exit ${rc})`);
    }
  }
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  console.error(e);
  process.exit(2);
});
