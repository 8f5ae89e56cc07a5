// The wire of one session, read independently of the client: Pomelo packages (pomelo-protocol
// 0.1.6 framing) and messages. harness.mjs taps every session with it and re-exports it.

/**
 * What one session's WebSocket carried, decoded independently of the client: packages by type,
 * the handshake response, and whether requests went out with dictionary-compressed routes.
 */
export class Tap {
  constructor() {
    this.url = null;
    this.extensions = null;
    this.protocol = null;
    this.handshake = null;
    /** The client's own handshake request (its `sys.protoVersion` says what it has cached). */
    this.sentHandshake = null;
    /** Every package both ways, in order: {dir: 'sent' | 'received', type, size, body}. */
    this.frames = [];
    this.received = { handshake: 0, heartbeat: 0, data: 0, kick: 0, other: 0 };
    this.sent = { handshake: 0, ack: 0, heartbeat: 0, data: 0, other: 0 };
    this.requests = { compressed: 0, uncompressed: 0 };
    this.pushes = { compressed: 0, uncompressed: 0 };
    this.kicks = [];
  }

  static packages(data) {
    const bytes = new Uint8Array(data);
    const out = [];
    for (let at = 0; at + 4 <= bytes.length; ) {
      const len = (bytes[at + 1] << 16) | (bytes[at + 2] << 8) | bytes[at + 3];
      out.push({ type: bytes[at], body: bytes.subarray(at + 4, at + 4 + len) });
      at += 4 + len;
    }
    return out;
  }

  /**
   * A data package's body, a Pomelo message (pomelo-protocol 0.1.6): {type: 'request' | 'notify'
   * | 'response' | 'push', id, compressed, route (a dictionary code when compressed), body}.
   */
  static message(bytes) {
    const flag = bytes[0];
    const type = ['request', 'notify', 'response', 'push'][(flag >> 1) & 7];
    const compressed = (flag & 1) === 1;
    let at = 1;
    let id = 0;
    if (type === 'request' || type === 'response') {
      for (let shift = 1; ; shift *= 128) {
        const b = bytes[at++];
        id += (b & 0x7f) * shift;
        if (b < 128) break;
      }
    }
    let route = null;
    if (type !== 'response') {
      if (compressed) {
        route = (bytes[at] << 8) | bytes[at + 1];
        at += 2;
      } else {
        const len = bytes[at++];
        route = new TextDecoder().decode(bytes.subarray(at, at + len));
        at += len;
      }
    }
    return { type, id, compressed, route, body: bytes.subarray(at) };
  }

  /** The data packages that went `dir` ('sent' or 'received'), as Tap.message gives them. */
  messages(dir) {
    return this.frames
      .filter((f) => f.dir === dir && f.type === 4)
      .map((f) => ({ ...Tap.message(f.body), size: f.size }));
  }

  onSend(data) {
    for (const { type, body } of Tap.packages(data)) {
      this.frames.push({ dir: 'sent', type, size: 4 + body.length, body: body.slice() });
      if (type === 1) this.sentHandshake = JSON.parse(new TextDecoder().decode(body));
      const name = { 1: 'handshake', 2: 'ack', 3: 'heartbeat', 4: 'data' }[type] || 'other';
      this.sent[name]++;
      // Message flag: bit 0 = route is a dictionary code, bits 1..3 = type (0 = request).
      if (type === 4 && ((body[0] >> 1) & 7) === 0) {
        this.requests[body[0] & 1 ? 'compressed' : 'uncompressed']++;
      }
    }
  }

  onReceive(data) {
    for (const { type, body } of Tap.packages(data)) {
      this.frames.push({ dir: 'received', type, size: 4 + body.length, body: body.slice() });
      const name = { 1: 'handshake', 3: 'heartbeat', 4: 'data', 5: 'kick' }[type] || 'other';
      this.received[name]++;
      const text = () => new TextDecoder().decode(body);
      if (type === 1) this.handshake = JSON.parse(text());
      if (type === 5) this.kicks.push(text());
      if (type === 4 && ((body[0] >> 1) & 7) === 3) {
        this.pushes[body[0] & 1 ? 'compressed' : 'uncompressed']++;
      }
    }
  }

  summary() {
    const sys = (this.handshake && this.handshake.sys) || {};
    return {
      url: this.url,
      extensions: this.extensions,
      protocol: this.protocol,
      handshake: this.handshake && {
        code: this.handshake.code,
        heartbeat: sys.heartbeat,
        useDict: sys.useDict,
        dict_routes: sys.dict ? Object.keys(sys.dict).length : 0,
        protos: 'protos' in sys,
        useProto: sys.useProto === true,
      },
      received: this.received,
      sent: this.sent,
      requests: this.requests,
      pushes: this.pushes,
      kicks: this.kicks,
    };
  }
}
