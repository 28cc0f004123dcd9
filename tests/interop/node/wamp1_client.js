#!/usr/bin/env node
// The npm WAMP v1 client `wamp1` (0.0.3) against our tutorial server.
//
//   node wamp1_client.js --url ws://127.0.0.1:PORT/ws
//
// wamp1 is given a `ws` socket opened with the `wamp` subprotocol (its own default would be a
// `websocket-buffering` socket without one). It has no WAMP-CRA: authentication goes through
// its call() with the signature computed here (WAMP1.md section 6). Every raw frame from the
// server is recorded too, so that a failure can say whether our server sent the wrong frame
// ("our server deviated") or wamp1 made something else of a right one ("wamp1 deviated").
'use strict';

const WebSocket = require('ws');
const Wamp = require('wamp1');
const h = require('./harness');

const { ERR, PROC, RPC, EVENT, CHAT } = h;
const SERVER = 'our server deviated from WAMP1.md';
const PEER = 'wamp1 deviated';

const url = h.parseUrl(process.argv);
const checks = new h.Checks('wamp1_client');
h.hardTimeout(90, checks);

async function connect(label) {
  const socket = new WebSocket(url, 'wamp');
  const frames = [];
  // registered before wamp1's own listener: sees every frame first
  socket.on('message', (data) => {
    try {
      frames.push(JSON.parse(String(data)));
    } catch (e) {
      frames.push(['<invalid JSON>', String(data)]);
    }
  });
  const errors = [];
  let wamp;
  const welcome = await h.within(
    5000,
    `${label}: WELCOME from ${url}`,
    new Promise((resolve, reject) => {
      wamp = new Wamp(socket, resolve);
      socket.on('error', reject);
      socket.on('close', (code, reason) => reject(new Error(`${label}: closed ${code} ${reason}`)));
    }),
  );
  wamp.on('error', (e) => errors.push(e)); // unmatched CALLRESULT/CALLERROR, bad version
  return { label, socket, wamp, frames, errors, welcome };
}

/** wamp1 call(); resolves {err, result, raw} where raw is the server's frame for the call. */
async function call(peer, proc, ...args) {
  const before = new Set(Object.keys(peer.wamp._calls));
  let id;
  const answered = new Promise((resolve) => {
    peer.wamp.call(proc, ...args, (err, result) => resolve({ err, result }));
    id = Object.keys(peer.wamp._calls).find((k) => !before.has(k));
  });
  const out = await h.within(5000, `${peer.label}: answer to CALL ${proc}`, answered);
  out.id = id;
  out.raw = peer.frames.find((f) => (f[0] === 3 || f[0] === 4) && f[1] === id);
  return out;
}

function expectResult(name, out, want) {
  if (out.err) {
    return checks.fail(name, `expected CALLRESULT ${h.show(want)}, got CALLERROR ${h.show(out.raw)}`, SERVER);
  }
  if (!out.raw || out.raw.length !== 3 || !checks.eq(`${name} (wire)`, out.raw[2], want, SERVER)) {
    return false;
  }
  return checks.eq(name, out.result, want, PEER);
}

/** wire: the whole CALLERROR frame our server must send; then what wamp1 must make of it. */
function expectError(name, out, uri, desc, details) {
  const want = [4, out.id, uri, desc];
  if (details !== undefined) want.push(details);
  if (!checks.eq(`${name} (wire)`, out.raw, want, SERVER)) return false;
  const e = out.err;
  const got = e ? { uri: e.uri, desc: e.message, details: e.details } : { result: out.result };
  return checks.eq(name, got, { uri, desc, details }, PEER);
}

async function welcomeChecks() {
  const a = await connect('A');
  const w = a.welcome;
  checks.eq('subprotocol wamp selected', a.socket.protocol, 'wamp', SERVER);
  checks.eq('WELCOME is the first frame', a.frames[0] && a.frames[0][0], 0, SERVER);
  checks.ok('WELCOME sessionId: 16 chars of [A-Za-z0-9_-]', /^[A-Za-z0-9_-]{16}$/.test(w.sessionId),
    w.sessionId, 'a 16-character id', SERVER);
  checks.eq('WELCOME version 1 (wamp1 checks it)', w.version, 1, SERVER);
  checks.ok('WELCOME serverIdent wamp-server/<version>', /^wamp-server\//.test(w.server), w.server,
    'wamp-server/...', SERVER);
  checks.eq('wamp1 sessionId property', a.wamp.sessionId, a.frames[0][1], PEER);
  a.socket.close();
}

async function rpcChecks() {
  const a = await connect('A');
  expectResult('echo by full URI', await call(a, RPC + 'echo', 'hello'), 'hello');
  expectResult('echo of an object', await call(a, RPC + 'echo', { a: [1, null, 'x'] }), { a: [1, null, 'x'] });
  expectResult('add with several arguments', await call(a, RPC + 'add', 1, 2, 3.5), 6.5);
  expectResult('echo without arguments is null', await call(a, RPC + 'echo'), null);
  expectResult('default prefix rpc:echo without PREFIX', await call(a, 'rpc:echo', 'no prefix'), 'no prefix');
  a.wamp.prefix('calc', RPC);
  expectResult('PREFIX then CURIE calc:add', await call(a, 'calc:add', 20, 22), 42);
  expectError('throw: #internal with details', await call(a, RPC + 'throw'),
    ERR + 'internal', 'internal error', 'An exception');
  expectError('unknown procedure: #notfound, no details', await call(a, RPC + 'doesnotexist', 1),
    ERR + 'notfound', 'not found error', undefined);
  expectError('ping: #unauthorized', await call(a, RPC + 'ping'), ERR + 'unauthorized', 'unauthorized', undefined);
  expectError('whoami before auth: #unauthorized', await call(a, RPC + 'whoami'),
    ERR + 'unauthorized', 'unauthorized', undefined);
  const add = await call(a, RPC + 'add', 1, 'x');
  checks.ok('add with a non-number is a CALLERROR', add.raw && add.raw[0] === 4 && add.err instanceof Error,
    add.raw, 'a CALLERROR surfaced as an Error', add.raw && add.raw[0] === 4 ? PEER : SERVER);
  checks.eq('no unmatched answers reported by wamp1', a.errors.map(String), [], SERVER);
  a.socket.close();
}

async function craChecks() {
  for (const [name, key, secret, authextra] of [
    ['unsalted', 'guest', 'secret-password', undefined],
    ['salted', 'salted', 'secret', { salt: 'RANDOM SALT', keylen: 32, iterations: 1000 }],
  ]) {
    const a = await connect(`cra-${name}`);
    const req = await call(a, PROC + 'authreq', key, null);
    if (!checks.ok(`CRA ${name}: authreq returns the challenge string`, !req.err && typeof req.result === 'string',
      req.raw, 'a CALLRESULT with a JSON string', SERVER)) {
      a.socket.close();
      continue;
    }
    const challenge = JSON.parse(req.result);
    checks.eq(`CRA ${name}: challenge authkey`, challenge.authkey, key, SERVER);
    checks.eq(`CRA ${name}: challenge sessionid`, challenge.sessionid, a.wamp.sessionId, SERVER);
    checks.eq(`CRA ${name}: challenge authextra`, challenge.authextra, authextra, SERVER);
    const auth = await call(a, PROC + 'auth', h.craSign(req.result, secret));
    checks.ok(`CRA ${name}: auth returns the permissions`, !auth.err && auth.result && Array.isArray(auth.result.rpc),
      auth.raw, 'a permissions object', SERVER);
    checks.eq(`CRA ${name}: auth result = challenge permissions`, auth.result, challenge.permissions, SERVER);
    expectResult(`CRA ${name}: whoami after auth`, await call(a, RPC + 'whoami'), key);
    a.socket.close();
  }
  const b = await connect('cra-wrong');
  const req = await call(b, PROC + 'authreq', 'guest', null);
  const bad = await call(b, PROC + 'auth', h.craSign(req.result, 'not-the-secret'));
  expectError('CRA wrong secret: #invalid-signature', bad, ERR + 'invalid-signature',
    'signature for authentication request is invalid', undefined);
  expectError('CRA wrong secret: whoami still #unauthorized', await call(b, RPC + 'whoami'),
    ERR + 'unauthorized', 'unauthorized', undefined);
  b.socket.close();
}

async function pubsubChecks() {
  const a = await connect('A');
  const b = await connect('B');
  const got = { A: [], B: [] };
  a.wamp.prefix('event', EVENT);
  a.wamp.subscribe('event:chat', (ev) => got.A.push(ev)); // wamp1 maps the full URI back to the CURIE
  b.wamp.subscribe(CHAT, (ev) => got.B.push(ev));
  const has = (who, key, value) => got[who].some((e) => e && typeof e === 'object' && e[key] === value);

  // no SUBSCRIBE acknowledgement in WAMP v1: publish probes until both receive one
  let ready = false;
  for (let i = 0; i < 50 && !ready; i++) {
    a.wamp.publish(CHAT, { probe: i }, false);
    ready = await h.waitFor(() => has('A', 'probe', i) && has('B', 'probe', i), 100);
  }
  if (!ready) {
    checks.fail('subscriptions active', `A got ${h.show(got.A.slice(0, 3))}, B got ${h.show(got.B.slice(0, 3))}`,
      'no EVENT reached a subscriber: our server or wamp1');
    a.socket.close();
    b.socket.close();
    return;
  }
  await h.sleep(50);

  const A = a.wamp.sessionId;
  const B = b.wamp.sessionId;
  const steps = [
    // name, publisher, PUBLISH arguments after the topic, who must receive (WAMP1.md section 5)
    ['plain [7,t,e]: publisher receives too', a, CHAT, [], 'AB'],
    ['excludeMe true', a, CHAT, [true], 'B'],
    ['excludeMe false', a, CHAT, [false], 'AB'],
    ['exclude [B]', a, CHAT, [[B]], 'A'],
    ['exclude [] eligible [B]', a, CHAT, [[], [B]], 'B'],
    ['exclude [A] eligible [A, B]', a, CHAT, [[A], [A, B]], 'B'],
    ['B publishes event:chat through the default prefix', b, 'event:chat', [false], 'AB'],
    ['A publishes event:chat through its own PREFIX', a, 'event:chat', [false], 'AB'],
  ];
  for (const [name, pub, topic, extra] of steps) pub.wamp.publish(topic, { step: name }, ...extra);
  a.wamp.publish(CHAT, { barrier: 1 }, false);
  const done = await h.waitFor(() => has('A', 'barrier', 1) && has('B', 'barrier', 1), 5000);
  checks.ok('barrier event reached A and B', done, { A: got.A.length, B: got.B.length }, 'both', SERVER);
  await h.sleep(100);
  for (const [name, , , , want] of steps) {
    const who = ['A', 'B'].filter((p) => has(p, 'step', name)).join('');
    checks.eq(`PUBLISH ${name}: recipients`, who, want, SERVER);
  }
  const topics = new Set(b.frames.filter((f) => f[0] === 8).map((f) => f[1]));
  checks.eq('EVENT carries the full topic URI', [...topics], [CHAT], SERVER);

  b.wamp.unsubscribe(CHAT);
  await h.sleep(100);
  a.wamp.publish(CHAT, { after: 'unsubscribe' }, false);
  const aGot = await h.waitFor(() => has('A', 'after', 'unsubscribe'), 3000);
  await h.sleep(200);
  checks.ok('after UNSUBSCRIBE: B gets nothing, A still does', aGot && !has('B', 'after', 'unsubscribe'),
    { A: aGot, B: has('B', 'after', 'unsubscribe') }, 'A only', SERVER);
  checks.eq('no errors reported by wamp1', a.errors.concat(b.errors).map(String), [], SERVER);
  a.socket.close();
  b.socket.close();
}

async function main() {
  for (const [name, fn] of [['welcome', welcomeChecks], ['rpc', rpcChecks], ['cra', craChecks], ['pubsub', pubsubChecks]]) {
    try {
      await fn();
    } catch (e) {
      checks.fail(`${name} checks`, `aborted: ${e && e.message ? e.message : e}`, 'connection or timeout');
    }
  }
  checks.finish();
  setTimeout(() => process.exit(process.exitCode), 200).unref();
}

main();
