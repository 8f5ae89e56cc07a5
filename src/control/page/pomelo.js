// A small Pomelo "hybrid" client over WebSocket, written for shaddock's management page.
//
// package:  type u8 | length u24 big-endian | body
// message:  flag u8 (bit0 = route is a dictionary code, bits1..3 = type) | id varint (request,
//           response) | route (request, push: u8 length + UTF-8, or u16 dictionary code) | body
//
// connect() does the handshake (HANDSHAKE, response with heartbeat and dictionary, HANDSHAKE_ACK),
// then answers the server's heartbeats at its interval and closes when the server is silent for
// two intervals. request() resolves with the response body; pushes and the close are events.

const PKG_HANDSHAKE = 1;
const PKG_ACK = 2;
const PKG_HEARTBEAT = 3;
const PKG_DATA = 4;
const PKG_KICK = 5;
const MSG_REQUEST = 0;
const MSG_RESPONSE = 2;
const MSG_PUSH = 3;

const utf8 = new TextEncoder();
const text = new TextDecoder();

export function encodePackage(type, body = new Uint8Array(0)) {
  const out = new Uint8Array(4 + body.length);
  out[0] = type;
  out[1] = (body.length >> 16) & 0xff;
  out[2] = (body.length >> 8) & 0xff;
  out[3] = body.length & 0xff;
  out.set(body, 4);
  return out;
}

/** Every package in one WebSocket message (the server may batch several). */
export function decodePackages(bytes) {
  const packages = [];
  let at = 0;
  while (at + 4 <= bytes.length) {
    const length = (bytes[at + 1] << 16) | (bytes[at + 2] << 8) | bytes[at + 3];
    if (at + 4 + length > bytes.length) throw new Error('a package is cut short');
    packages.push({ type: bytes[at], body: bytes.subarray(at + 4, at + 4 + length) });
    at += 4 + length;
  }
  if (at !== bytes.length) throw new Error('trailing bytes after the last package');
  return packages;
}

/** A request: id as a little-endian base-128 varint, the route as a code when the dictionary has it. */
export function encodeRequest(id, route, body, routeToCode) {
  const head = [];
  const code = routeToCode[route];
  head.push((MSG_REQUEST << 1) | (code ? 1 : 0));
  for (let n = id; ; ) {
    const low = n & 0x7f;
    n = Math.floor(n / 128);
    head.push(n ? low | 0x80 : low);
    if (!n) break;
  }
  if (code) {
    head.push((code >> 8) & 0xff, code & 0xff);
  } else {
    const name = utf8.encode(route);
    if (name.length > 255) throw new Error('route longer than 255 bytes');
    head.push(name.length, ...name);
  }
  const json = utf8.encode(JSON.stringify(body));
  const out = new Uint8Array(head.length + json.length);
  out.set(head, 0);
  out.set(json, head.length);
  return out;
}

/** A response `{type, id, body}` or a push `{type, route, body}`. */
export function decodeMessage(bytes, codeToRoute) {
  const flag = bytes[0];
  const type = (flag >> 1) & 0x07;
  let at = 1;
  let id = 0;
  if (type === MSG_RESPONSE) {
    for (let shift = 1; ; shift *= 128) {
      if (at >= bytes.length) throw new Error('message id cut short');
      const b = bytes[at++];
      id += (b & 0x7f) * shift;
      if (!(b & 0x80)) break;
    }
  }
  let route = null;
  if (type === MSG_PUSH) {
    if (flag & 1) {
      const code = (bytes[at] << 8) | bytes[at + 1];
      at += 2;
      route = codeToRoute[code];
      if (route === undefined) throw new Error(`unknown route code ${code}`);
    } else {
      const length = bytes[at++];
      route = text.decode(bytes.subarray(at, at + length));
      at += length;
    }
  }
  const rest = bytes.subarray(at);
  return { type, id, route, body: rest.length ? JSON.parse(text.decode(rest)) : null };
}

export class PomeloClient extends EventTarget {
  constructor() {
    super();
    this.ws = null;
    this.nextId = 1;
    this.pending = new Map();
    this.routeToCode = {};
    this.codeToRoute = {};
    this.heartbeatMs = 0;
    this.beatTimer = null;
    this.silenceTimer = null;
    this.closed = false;
  }

  /** Opens the WebSocket and completes the handshake; resolves with the server's `sys`. */
  connect(url, timeoutMs = 10000) {
    return new Promise((resolve, reject) => {
      const fail = (why) => {
        reject(new Error(why));
        this.close(why);
      };
      const timer = setTimeout(() => fail(`no handshake from ${url} within ${timeoutMs} ms`), timeoutMs);
      const ws = new WebSocket(url);
      this.ws = ws;
      ws.binaryType = 'arraybuffer';
      ws.onopen = () => {
        const hello = { sys: { type: 'shaddock-page', version: '0.1.0' }, user: {} };
        ws.send(encodePackage(PKG_HANDSHAKE, utf8.encode(JSON.stringify(hello))));
      };
      ws.onerror = () => fail(`cannot connect to ${url}`);
      ws.onclose = (e) => {
        clearTimeout(timer);
        reject(new Error(`connection closed during the handshake (${e.code})`));
        this.close(this.kickReason || `connection closed (${e.code})`);
      };
      ws.onmessage = (e) => {
        this.heard();
        let packages;
        try {
          packages = decodePackages(new Uint8Array(e.data));
        } catch (err) {
          this.close(`bad data from the server: ${err.message}`);
          return;
        }
        for (const p of packages) {
          if (p.type === PKG_HANDSHAKE) {
            clearTimeout(timer);
            const response = JSON.parse(text.decode(p.body));
            if (response.code !== 200) return fail(`handshake refused with code ${response.code}`);
            const sys = response.sys || {};
            this.routeToCode = sys.routeToCode || sys.dict || {};
            for (const [route, code] of Object.entries(this.routeToCode)) this.codeToRoute[code] = route;
            this.heartbeatMs = (sys.heartbeat || 0) * 1000;
            ws.send(encodePackage(PKG_ACK));
            resolve(sys);
          } else if (p.type === PKG_HEARTBEAT) {
            this.scheduleHeartbeat();
          } else if (p.type === PKG_DATA) {
            this.onData(p.body);
          } else if (p.type === PKG_KICK) {
            let reason = 'kicked';
            try {
              reason = JSON.parse(text.decode(p.body)).reason || reason;
            } catch (err) {
              // An empty or malformed kick body still means a kick.
            }
            this.kickReason = `kicked: ${reason}`;
          }
        }
      };
    });
  }

  /** Sends a request; resolves with the response body. */
  request(route, body, timeoutMs = 10000) {
    if (this.closed || !this.ws) return Promise.reject(new Error('not connected'));
    const id = this.nextId;
    this.nextId = this.nextId >= 0x7fffffff ? 1 : this.nextId + 1;
    this.ws.send(encodePackage(PKG_DATA, encodeRequest(id, route, body, this.routeToCode)));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`no response to ${route} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
    });
  }

  onData(body) {
    let message;
    try {
      message = decodeMessage(body, this.codeToRoute);
    } catch (err) {
      this.close(`bad message from the server: ${err.message}`);
      return;
    }
    if (message.type === MSG_RESPONSE) {
      const waiting = this.pending.get(message.id);
      if (!waiting) return;
      this.pending.delete(message.id);
      clearTimeout(waiting.timer);
      waiting.resolve(message.body);
    } else if (message.type === MSG_PUSH) {
      this.dispatchEvent(new CustomEvent('push', { detail: { route: message.route, body: message.body } }));
    }
  }

  /** After each server heartbeat, send the next one an interval later. */
  scheduleHeartbeat() {
    if (!this.heartbeatMs || this.closed) return;
    clearTimeout(this.beatTimer);
    this.beatTimer = setTimeout(() => {
      if (!this.closed) this.ws.send(encodePackage(PKG_HEARTBEAT));
    }, this.heartbeatMs);
  }

  /** Anything from the server proves it alive; two silent intervals close the connection. */
  heard() {
    if (!this.heartbeatMs || this.closed) return;
    clearTimeout(this.silenceTimer);
    this.silenceTimer = setTimeout(() => this.close('the server stopped answering heartbeats'), 2 * this.heartbeatMs + 5000);
  }

  close(reason = 'closed') {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.beatTimer);
    clearTimeout(this.silenceTimer);
    for (const waiting of this.pending.values()) {
      clearTimeout(waiting.timer);
      waiting.reject(new Error(reason));
    }
    this.pending.clear();
    if (this.ws) {
      this.ws.onclose = null;
      this.ws.onmessage = null;
      this.ws.close();
    }
    this.dispatchEvent(new CustomEvent('close', { detail: { reason } }));
  }
}
