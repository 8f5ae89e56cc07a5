/*
 * Glue between the classic browser scripts that pomelo-jsclient-websocket 0.1.1 is built from.
 *
 * The same file runs in Chromium (a <script> tag in browser_page.html) and in Node (a vm context
 * per session, harness.mjs), between the library scripts, in this order (LOAD_ORDER in
 * harness.mjs; the page lists the same tags):
 *
 *   component-emitter/index.js, glue.js, pomelo-protocol/lib/protocol.js, glue.js,
 *   pomelo-protobuf/lib/client/protobuf.js, glue.js, pomelo-jsclient-websocket/lib/pomelo-client.js
 *
 * Each run does these things, each only when it applies:
 *  1. window.EventEmitter = Emitter. The client does `Object.create(window.EventEmitter.prototype)`
 *     and expects on/emit there. Its upstream browser build took component's `emitter`; the npm
 *     package of that code is component-emitter, which in a plain <script> defines a global
 *     function `Emitter` (and touches `module` only if there is one).
 *  2. window.protobuf = module.exports, after pomelo-protobuf's client build. That build exports to
 *     `module.exports` when a `module` object exists (it does: see 4), and the client reads
 *     `window.protobuf`. It is only used when the server's handshake carries protos (shaddock's
 *     does when `client.server_protos` / `client.client_protos` are configured).
 *  3. protobuf.decodeStr = protobuf.decode, only when the build has no decodeStr. The one change
 *     to a library's behaviour, and a repair of a mismatch between two npm releases:
 *     pomelo-jsclient-websocket 0.1.1's deCompose decodes every response and push on a route
 *     with a server proto with `protobuf.decodeStr(route, msg.body)`, passing the body bytes (a
 *     Uint8Array). pomelo-protobuf 0.4.0's client build (lib/client/protobuf.js, the one a
 *     browser loads) defines only encode and decode(route, bytes); decodeStr exists only in its
 *     Node server build (lib/protobuf.js), where it takes a base64 *string*. So as published,
 *     every protobuf response and push throws a TypeError in the client. Pomelo's own shipped
 *     web client (pomelo 2.2.7, template/web-server/public/js/lib/build/build.js) makes the same
 *     call as `protobuf.decode(route, msg.body)`; the alias makes 0.1.1 do exactly that. Nothing
 *     else is patched.
 *  4. A fresh `module = {exports: {}}` before the next script. pomelo-protocol 0.1.6, the protobuf
 *     client build and pomelo-client.js each end with an unconditional `module.exports = ...`,
 *     which throws a ReferenceError in a browser that has no `module` (protobuf's would abort its
 *     own file before the encoder and decoder are defined). A throwaway object per script keeps
 *     them from writing into each other's exports. pomelo-protocol still takes its browser path
 *     (it tests `typeof window`, not `module`): Uint8Array bodies and `window.Protocol`.
 */
(function (w) {
  if (typeof w.EventEmitter !== 'function' && typeof Emitter === 'function') {
    w.EventEmitter = Emitter; // eslint-disable-line no-undef
  }
  if (!w.protobuf && w.module && w.module.exports && w.module.exports.encoder) {
    w.protobuf = w.module.exports;
  }
  if (w.protobuf && typeof w.protobuf.decodeStr !== 'function' && typeof w.protobuf.decode === 'function') {
    w.protobuf.decodeStr = w.protobuf.decode; // 3. above: what pomelo 2.2.7's own client calls
  }
  w.module = { exports: {} };
})(this);
