// The AutobahnJS 0.8 API of wamp1.js (`ab`) against a scripted fake WebSocket: frames, hangup
// codes and reconnect rules as in AutobahnJS 0.8.2's autobahn.js (ab.Session, ab._connect).
// Run: node --test tests/browser/ab-api.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadClient } from './load-client.mjs';

const { ab } = await loadClient();

/** A scripted WebSocket: records what the client sends, lets the test play the server. */
class FakeSocket {
  static all = [];
  constructor(url, protocols) {
    this.url = url;
    this.protocols = protocols;
    this.readyState = 0;
    this.protocol = '';
    this.sent = [];
    this.closedWith = null;
    FakeSocket.all.push(this);
  }
  send(text) {
    this.sent.push(JSON.parse(text));
  }
  close(code, reason) {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.closedWith = [code, reason];
    // A browser reports a script's close as clean, 1005 without a code.
    queueMicrotask(() => this.onclose?.({ code: code ?? 1005, reason: reason ?? '', wasClean: true }));
  }
  // server side
  accept(protocol = 'wamp') {
    this.readyState = 1;
    this.protocol = protocol;
    this.onopen?.({});
  }
  welcome(id = 'SESSION000000001') {
    this.accept();
    this.deliver([0, id, 1, 'test-server/1']);
  }
  deliver(message) {
    this.onmessage?.({ data: typeof message === 'string' ? message : JSON.stringify(message) });
  }
  /** The server closes: clean (a close handshake) or not (the TCP connection just ends). */
  end({ clean, code = clean ? 1001 : 1006, reason = '' }) {
    this.readyState = 3;
    this.onclose?.({ code, reason, wasClean: clean });
  }
  /** The connection attempt fails (nothing listens). */
  refuse() {
    this.readyState = 3;
    this.onclose?.({ code: 1006, reason: '', wasClean: false });
  }
  take() {
    const s = this.sent;
    this.sent = [];
    return s;
  }
}

const tick = () => new Promise((r) => setTimeout(r, 0));
const latest = () => FakeSocket.all.at(-1);

/** ab.connect with the fake socket; records sessions and hangups. */
function connect(options = {}, onhangup) {
  FakeSocket.all = [];
  const rec = { sessions: [], hangups: [] };
  ab.connect(
    'ws://test/ws',
    (s) => rec.sessions.push(s),
    (code, reason, detail) => {
      rec.hangups.push(detail === undefined ? [code, reason] : [code, reason, detail]);
      return onhangup ? onhangup(code) : undefined;
    },
    { WebSocket: FakeSocket, retryDelay: 0, ...options },
  );
  return rec;
}

test('the CONNECTION codes are AutobahnJS 0.8\'s', () => {
  assert.deepEqual(
    [
      ab.CONNECTION_CLOSED,
      ab.CONNECTION_LOST,
      ab.CONNECTION_RETRIES_EXCEEDED,
      ab.CONNECTION_UNREACHABLE,
      ab.CONNECTION_UNSUPPORTED,
      ab.CONNECTION_UNREACHABLE_SCHEDULED_RECONNECT,
      ab.CONNECTION_LOST_SCHEDULED_RECONNECT,
    ],
    [0, 1, 2, 3, 4, 5, 6],
  );
  assert.equal(typeof ab.debug, 'function');
  ab.debug(false, false, false);
});

test('connect offers wamp, hands over a session after WELCOME, sessionid()', () => {
  const rec = connect();
  const ws = latest();
  assert.deepEqual(ws.protocols, ['wamp']);
  ws.accept();
  assert.equal(rec.sessions.length, 0, 'no onconnect before WELCOME');
  ws.deliver([0, 'SESSION000000001', 1, 'test-server/1']);
  assert.equal(rec.sessions.length, 1);
  assert.equal(rec.sessions[0].sessionid(), 'SESSION000000001');
  assert.ok(rec.sessions[0] instanceof ab.Session);
});

test('a server that does not select wamp is dropped unless skipSubprotocolCheck', async () => {
  const rec = connect();
  // Thrown from the socket's onopen (uncaught on a page), as AutobahnJS does.
  assert.throws(() => latest().accept(''), /^Error: server does not speak WAMP \(but '' !\)$/);
  assert.deepEqual(latest().closedWith, [1000, 'server does not speak WAMP']);
  await tick();
  assert.deepEqual(rec.hangups, [[ab.CONNECTION_UNREACHABLE, 'Connection could not be established.']]);

  const skip = connect({ skipSubprotocolCheck: true });
  latest().accept('');
  latest().deliver([0, 'S', 1, 'x']);
  assert.equal(skip.sessions.length, 1);
  // skipSubprotocolAnnounce offers none.
  connect({ skipSubprotocolAnnounce: true });
  assert.equal(latest().protocols, undefined);
});

test('RPC: CURIE shrinking, results, errors with and without detail', async () => {
  const rec = connect();
  latest().welcome();
  const s = rec.sessions[0];
  const ws = latest();
  s.prefix('rpc', 'http://example.com/rpc#');
  assert.deepEqual(ws.take(), [[1, 'rpc', 'http://example.com/rpc#']]);
  const ok = s.call('http://example.com/rpc#echo', 'test', 2);
  const failed = s.call('rpc:throw');
  const plain = s.call('other:x');
  const [c1, c2, c3] = ws.take();
  assert.deepEqual(c1.slice(2), ['rpc:echo', 'test', 2], 'a full URI goes out shrunk, as AutobahnJS');
  assert.deepEqual(c2.slice(2), ['rpc:throw']);
  assert.deepEqual(c3.slice(2), ['other:x']);
  assert.match(c1[1], /^[A-Za-z0-9_-]{16}$/);
  assert.notEqual(c1[1], c2[1]);
  ws.deliver([3, c1[1], 'test']);
  ws.deliver([4, c2[1], 'http://api.wamp.ws/error#internal', 'internal error', 'An exception']);
  ws.deliver([4, c3[1], 'http://api.wamp.ws/error#notfound', 'not found error']);
  assert.equal(await ok, 'test');
  await assert.rejects(failed, (e) => {
    assert.deepEqual(e, {
      uri: 'http://api.wamp.ws/error#internal',
      desc: 'internal error',
      detail: 'An exception',
    });
    return true;
  });
  await assert.rejects(plain, (e) => {
    assert.deepEqual(e, { uri: 'http://api.wamp.ws/error#notfound', desc: 'not found error' });
    return true;
  });
  // The promise has `then` (the page's use) and when.js's `otherwise`.
  const p = s.call('rpc:echo');
  assert.equal(typeof p.then, 'function');
  assert.equal(typeof p.then(() => {}).otherwise, 'function');
  const [c4] = ws.take();
  ws.deliver([3, c4[1], null]);
  assert.equal(await p, null);
});

test('PubSub: subscribe once per topic, events to every callback, unsubscribe rules', () => {
  const rec = connect();
  latest().welcome();
  const s = rec.sessions[0];
  const ws = latest();
  s.prefix('event', 'http://example.com/event#');
  ws.take();
  const got = [];
  const a = (topic, event) => got.push(['a', topic, event]);
  const b = (topic, event) => got.push(['b', topic, event]);
  s.subscribe('event:chat', a);
  s.subscribe('http://example.com/event#chat', b);
  assert.deepEqual(ws.take(), [[5, 'event:chat']], 'one SUBSCRIBE, the topic as given');
  assert.throws(() => s.subscribe('event:chat', a), /already subscribed/);
  ws.deliver([8, 'http://example.com/event#chat', 'foo']);
  ws.deliver([8, 'http://example.com/event#other', 'not subscribed']);
  assert.deepEqual(got, [
    ['a', 'http://example.com/event#chat', 'foo'],
    ['b', 'http://example.com/event#chat', 'foo'],
  ]);
  s.unsubscribe('event:chat', a);
  assert.deepEqual(ws.take(), [], 'b still listens');
  assert.throws(() => s.unsubscribe('event:chat', a), /no callback/);
  s.unsubscribe('event:chat');
  assert.deepEqual(ws.take(), [[6, 'event:chat']]);
  assert.throws(() => s.unsubscribe('event:chat'), /not subscribed/);
});

test('publish: the four AutobahnJS argument forms, and refusals', () => {
  const rec = connect();
  latest().welcome();
  const s = rec.sessions[0];
  const ws = latest();
  s.publish('event:chat', 'foo');
  s.publish('event:chat', { a: 1 }, true);
  s.publish('event:chat', 'x', ['S1']);
  s.publish('event:chat', 'x', [], ['S2']);
  assert.deepEqual(ws.take(), [
    [7, 'event:chat', 'foo'],
    [7, 'event:chat', { a: 1 }, true],
    [7, 'event:chat', 'x', ['S1']],
    [7, 'event:chat', 'x', [], ['S2']],
  ]);
  assert.throws(() => s.publish('event:chat', 'x', 'S1'), /invalid argument/);
  assert.throws(() => s.publish('event:chat', 'x', true, ['S2']), /invalid argument/);
  assert.deepEqual(ws.take(), []);
});

test('WAMP-CRA: authreq, authsign (a Promise, AutobahnJS argument order), auth takes it', async () => {
  const rec = connect();
  latest().welcome();
  const s = rec.sessions[0];
  const ws = latest();
  const challenge = s.authreq('guest');
  const [req] = ws.take();
  assert.deepEqual(req.slice(2), ['http://api.wamp.ws/procedure#authreq', 'guest', null]);
  ws.deliver([3, req[1], '{"authid":"x"}']);
  assert.equal(await challenge, '{"authid":"x"}');
  // HMAC-SHA256(key = "secret", message = challenge), as CryptoJS.HmacSHA256(challenge, secret).
  const sig = s.authsign('{"authid":"x"}', 'secret');
  assert.equal(typeof sig.then, 'function');
  const expected = await globalThis.crypto.subtle
    .importKey('raw', new TextEncoder().encode('secret'), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign'])
    .then((k) => globalThis.crypto.subtle.sign('HMAC', k, new TextEncoder().encode('{"authid":"x"}')))
    .then((b) => Buffer.from(b).toString('base64'));
  assert.equal(await sig, expected);
  const done = s.auth(s.authsign('{"authid":"x"}', 'secret'));
  await tick();
  await tick();
  const [auth] = ws.take();
  assert.deepEqual(auth.slice(2), ['http://api.wamp.ws/procedure#auth', expected]);
  ws.deliver([3, auth[1], { rpc: [] }]);
  assert.deepEqual(await done, { rpc: [] });
  // A plain string signature goes out at once.
  s.auth('plain');
  assert.deepEqual(ws.take()[0].slice(2), ['http://api.wamp.ws/procedure#auth', 'plain']);
  // Salted users: ab.deriveKey gives the PBKDF2 key (a Promise here).
  const key = await ab.deriveKey('secret', { salt: 'RANDOM SALT', keylen: 32, iterations: 1000 });
  assert.equal(typeof key, 'string');
  assert.equal(await ab.deriveKey('secret', {}), 'secret');
});

test('a clean close ends it: CONNECTION_CLOSED, no reconnect (AutobahnJS\'s rule)', async () => {
  const rec = connect();
  latest().welcome();
  latest().end({ clean: true, code: 1001, reason: 'server shutting down' });
  await tick();
  assert.deepEqual(rec.hangups, [
    [ab.CONNECTION_CLOSED, 'Connection was closed properly [WS-1001: server shutting down]'],
  ]);
  assert.equal(FakeSocket.all.length, 1);
  // The page's own close is clean too.
  const own = connect();
  latest().welcome();
  own.sessions[0].close();
  await tick();
  assert.equal(own.hangups[0][0], ab.CONNECTION_CLOSED);
  assert.equal(FakeSocket.all.length, 1);
});

test('an unclean close reconnects; each reconnect is a new session; the count restarts', async () => {
  const rec = connect({ maxRetries: 2 });
  latest().welcome('FIRST00000000000');
  const pending = rec.sessions[0].call('rpc:slow');
  latest().end({ clean: false });
  await assert.rejects(pending, (e) => e.uri === 'urn:wamp1js:error#connection-lost');
  assert.deepEqual(rec.hangups, [
    [
      ab.CONNECTION_LOST_SCHEDULED_RECONNECT,
      'Connection lost - scheduled 1th reconnect to occur in 0 second(s).',
      { delay: 0, retries: 1, maxretries: 2 },
    ],
  ]);
  await tick();
  assert.equal(FakeSocket.all.length, 2);
  latest().welcome('SECOND0000000000');
  assert.equal(rec.sessions.length, 2);
  assert.notEqual(rec.sessions[1], rec.sessions[0]);
  assert.equal(rec.sessions[1].sessionid(), 'SECOND0000000000');
  // Lost again: the retry count restarted at the WELCOME.
  latest().end({ clean: false });
  assert.deepEqual(rec.hangups.at(-1)[2], { delay: 0, retries: 1, maxretries: 2 });
  // While the server is down: unreachable, scheduled, until maxRetries.
  await tick();
  latest().refuse();
  assert.equal(rec.hangups.at(-1)[0], ab.CONNECTION_UNREACHABLE_SCHEDULED_RECONNECT);
  assert.match(rec.hangups.at(-1)[1], /attempt 2 of 2/);
  await tick();
  latest().refuse();
  assert.deepEqual(rec.hangups.at(-1), [
    ab.CONNECTION_RETRIES_EXCEEDED,
    'Number of connection retries exceeded.',
  ]);
  await tick();
  assert.equal(FakeSocket.all.length, 4, 'no attempt after the last retry');
});

test('never connected: CONNECTION_UNREACHABLE, no retry; onhangup returning true stops', async () => {
  const rec = connect();
  latest().refuse();
  await tick();
  assert.deepEqual(rec.hangups, [[ab.CONNECTION_UNREACHABLE, 'Connection could not be established.']]);
  assert.equal(FakeSocket.all.length, 1);

  const stopped = connect({}, (code) => code === ab.CONNECTION_LOST_SCHEDULED_RECONNECT);
  latest().welcome();
  latest().end({ clean: false });
  await tick();
  assert.deepEqual(stopped.hangups.map((h) => h[0]), [
    ab.CONNECTION_LOST_SCHEDULED_RECONNECT,
    ab.CONNECTION_RETRIES_EXCEEDED,
  ]);
  assert.equal(FakeSocket.all.length, 1);
});

test('no WebSocket at all: CONNECTION_UNSUPPORTED', () => {
  const saved = Object.getOwnPropertyDescriptor(globalThis, 'WebSocket');
  delete globalThis.WebSocket;
  try {
    const hangups = [];
    ab.connect('ws://test/ws', () => {}, (code, reason) => hangups.push([code, reason]), {
      retryDelay: 0,
    });
    assert.deepEqual(hangups, [[ab.CONNECTION_UNSUPPORTED, 'Browser does not support WebSocket.']]);
  } finally {
    if (saved) Object.defineProperty(globalThis, 'WebSocket', saved);
  }
});

test('sending before the WebSocket opened throws as AutobahnJS does', () => {
  connect();
  const s = new ab.Session('ws://test/ws', null, undefined, { WebSocket: FakeSocket });
  assert.throws(() => s.call('x'), /Autobahn not connected/);
  assert.throws(() => s.publish('t', 1), /Autobahn not connected/);
});

test('without WebCrypto (plain http off localhost) signing fails with an error that says why', async () => {
  const { readFile } = await import('node:fs/promises');
  const vm = await import('node:vm');
  const { CLIENT_PATH } = await import('./load-client.mjs');
  const errors = [];
  // A page on http://192.168.1.20:8080: browsers give it crypto.getRandomValues but no subtle.
  const page = vm.createContext({
    location: { origin: 'http://192.168.1.20:8080', protocol: 'http:' },
    crypto: { getRandomValues: (a) => globalThis.crypto.getRandomValues(a) },
    TextEncoder,
    btoa,
    setTimeout,
    clearTimeout,
    queueMicrotask,
    console: { log() {}, error: (e) => errors.push(e) },
  });
  vm.runInContext(await readFile(CLIENT_PATH, 'utf8'), page);
  const why = /WebCrypto .*http:\/\/192\.168\.1\.20:8080 is not a secure context.*https/;
  const session = Object.create(page.ab.Session.prototype);
  await assert.rejects(session.authsign('challenge', 'secret'), why);
  assert.match(String(errors[0]?.message), why, 'the error is also reported on the console');
  await assert.rejects(page.wamp1.authSign('challenge', 'secret'), why);
  // auth() given the failed signature rejects with the same error (the page's failure path).
  await assert.rejects(session.auth(session.authsign('challenge', 'secret')), why);
});
