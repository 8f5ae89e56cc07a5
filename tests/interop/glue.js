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
 * Each run does three things, each only when it applies:
 *  1. window.EventEmitter = Emitter. The client does `Object.create(window.EventEmitter.prototype)`
 *     and expects on/emit there. Its upstream browser build took component's `emitter`; the npm
 *     package of that code is component-emitter, which in a plain <script> defines a global
 *     function `Emitter` (and touches `module` only if there is one).
 *  2. window.protobuf = module.exports, after pomelo-protobuf's client build. That build exports to
 *     `module.exports` when a `module` object exists (it does: see 3), and the client reads
 *     `window.protobuf`. (It is loaded because 0.1.1 expects it; it is only used when the server's
 *     handshake carries protos, which shaddock's does not.)
 *  3. A fresh `module = {exports: {}}` before the next script. pomelo-protocol 0.1.6, the protobuf
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
  w.module = { exports: {} };
})(this);
