#!/usr/bin/env node
// The client of wamp.io 0.0.4 (npm) against our tutorial server.
//
//   node wampio_client.js --url ws://127.0.0.1:PORT/ws [--no-ws-shim | --no-shim]
//
// wamp.io's client was written for `ws` 0.4: it passes `{protocol: 'wamp'}` as the second
// argument of `new WebSocket()`, which `ws` 8 takes as an options object with no subprotocol in
// it. It therefore offers no subprotocol, then sees `protocol !== 'wamp'` on open, closes the
// socket and throws "server does not speak WAMP" from the event handler (an uncaught exception).
// With --no-ws-shim the program shows exactly that (it must exit 3). Otherwise a compatibility
// shim (wampio_compat.js: in memory, nothing installed is modified) wraps the `ws` constructor
// so that `{protocol: P}` becomes the subprotocol list [P], as ws 0.4 did. --no-shim shows that
// wamp.io does not even load on Node 20 without the other shim (process.EventEmitter).
//
// wamp.io's client has call() only (no subscribe, publish, prefix or auth), and ignores
// CALLERROR: the call's promise never settles. Raw frames are recorded so the checks can still
// say what our server sent.
'use strict';

const h = require('./harness');
const compat = require('./wampio_compat');

const { ERR, RPC } = h;
const SERVER = 'our server deviated from WAMP1.md';
const PEER = 'wamp.io client deviated';

const url = h.parseUrl(process.argv);
const noShim = process.argv.includes('--no-shim');
const shim = !noShim && !process.argv.includes('--no-ws-shim');
const frames = [];

if (noShim) {
  // Show that wamp.io does not even load on Node 20 without the EventEmitter shim.
  try {
    require('wamp.io');
    console.log('NOTE wamp.io loads without shims (unexpected on Node 20)');
    process.exit(0);
  } catch (e) {
    console.log(`NOTE require('wamp.io') without shims: ${e}`);
    process.exit(String(e).includes("reading 'prototype'") ? 3 : 1);
  }
}

compat.shimEventEmitter();
compat.shimWs({
  fixProtocol: shim,
  onFrame: (text) => {
    try {
      frames.push(JSON.parse(text));
    } catch (e) {
      frames.push(['<invalid JSON>', text]);
    }
  },
});
const wamp = require('wamp.io');

if (!shim) {
  // Show what an unshimmed wamp.io client does against a WAMP server: it must end in
  // "server does not speak WAMP" (thrown out of the socket's open handler).
  process.on('uncaughtException', (e) => {
    console.log(`NOTE wamp.io client without the ws shim: uncaught exception: ${e}`);
    console.log(`NOTE frames received before it gave up: ${h.show(frames)}`);
    process.exit(String(e).includes('server does not speak WAMP') ? 3 : 1);
  });
  wamp.connect(url, () => {
    console.log('NOTE wamp.io client without the ws shim: session opened (unexpected with ws 8)');
    process.exit(0);
  }, () => {});
  setTimeout(() => process.exit(4), 5000).unref();
} else {
  const checks = new h.Checks('wampio_client');
  h.hardTimeout(60, checks);
  main(checks);
}

function connect() {
  return h.within(5000, `WELCOME from ${url}`, new Promise((resolve, reject) => {
    const session = wamp.connect(url, (s) => resolve(s), () => reject(new Error('session closed')));
    void session;
  }));
}

/** wamp.io call(); settles with {result} or {error}, or {pending: true} after `ms`. */
async function call(session, ms, proc, ...args) {
  const before = new Set(Object.keys(session._calls));
  const d = session.call(proc, ...args);
  const id = Object.keys(session._calls).find((k) => !before.has(k));
  const settled = d.promise.then((result) => ({ result }), (error) => ({ error }));
  const out = await Promise.race([settled, h.sleep(ms).then(() => ({ pending: true }))]);
  out.id = id;
  out.raw = frames.find((f) => (f[0] === 3 || f[0] === 4) && f[1] === id);
  return out;
}

async function main(checks) {
  try {
    const s = await connect();
    checks.eq('subprotocol wamp selected (with the shim)', s._websocket.protocol, 'wamp', SERVER);
    checks.ok('WELCOME sessionId: 16 chars of [A-Za-z0-9_-]', /^[A-Za-z0-9_-]{16}$/.test(s._session_id),
      s._session_id, 'a 16-character id', SERVER);
    checks.eq('WELCOME version 1', s._wamp_version, 1, SERVER);
    checks.ok('WELCOME serverIdent wamp-server/<version>', /^wamp-server\//.test(s._server), s._server,
      'wamp-server/...', SERVER);

    let out = await call(s, 3000, RPC + 'echo', 'hello');
    checks.eq('echo by full URI (wire)', out.raw, [3, out.id, 'hello'], SERVER);
    checks.eq('echo by full URI', out.result, 'hello', PEER);
    out = await call(s, 3000, RPC + 'add', 1, 2, 3);
    checks.eq('add with several arguments (wire)', out.raw, [3, out.id, 6], SERVER);
    checks.eq('add with several arguments', out.result, 6, PEER);
    out = await call(s, 3000, 'rpc:echo', 'curie');
    checks.eq('default prefix rpc:echo (wire)', out.raw, [3, out.id, 'curie'], SERVER);
    checks.eq('default prefix rpc:echo', out.result, 'curie', PEER);

    out = await call(s, 500, RPC + 'throw');
    checks.eq('throw: CALLERROR #internal with details (wire)', out.raw,
      [4, out.id, ERR + 'internal', 'internal error', 'An exception'], SERVER);
    if (out.pending) {
      checks.note('wamp.io client ignores CALLERROR', 'the promise of call(rpc#throw) never settles');
    } else {
      checks.note('wamp.io client CALLERROR', `the promise settled: ${h.show(out)}`);
    }
    out = await call(s, 500, RPC + 'doesnotexist');
    checks.eq('unknown procedure: CALLERROR #notfound (wire)', out.raw,
      [4, out.id, ERR + 'notfound', 'not found error'], SERVER);

    out = await call(s, 3000, RPC + 'echo', 'still alive');
    checks.eq('session usable after the errors', out.result, 'still alive', SERVER);
    s._websocket.close();
  } catch (e) {
    checks.fail('wamp.io client session', `aborted: ${e && e.message ? e.message : e}`, 'connection or timeout');
  }
  checks.finish();
  setTimeout(() => process.exit(process.exitCode), 200).unref();
}
