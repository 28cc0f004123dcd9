// Wire behaviour of wamp1.js against a scripted fake WebSocket (no server, no browser).
// Run: node --test tests/browser/client-protocol.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadClient } from './load-client.mjs';

const wamp = await loadClient();

/** A scripted WebSocket: records what the client sends, lets the test play the server. */
class FakeSocket {
  static all = [];
  constructor(url, protocols) {
    this.url = url;
    this.protocols = protocols;
    this.readyState = 0;
    this.protocol = '';
    this.sent = [];
    FakeSocket.all.push(this);
  }
  send(text) {
    this.sent.push(JSON.parse(text));
  }
  close(code = 1000, reason = '') {
    if (this.readyState === 3) return;
    this.readyState = 3;
    queueMicrotask(() => this.onclose?.({ code, reason, wasClean: true }));
  }
  // server side
  accept(protocol = 'wamp') {
    this.readyState = 1;
    this.protocol = protocol;
    this.onopen?.({});
  }
  deliver(message) {
    this.onmessage?.({ data: typeof message === 'string' ? message : JSON.stringify(message) });
  }
  drop(code = 1006) {
    this.readyState = 3;
    this.onclose?.({ code, reason: '', wasClean: false });
  }
  take() {
    const s = this.sent;
    this.sent = [];
    return s;
  }
}

const tick = () => new Promise((r) => setTimeout(r, 0));

function session(options = {}) {
  FakeSocket.all = [];
  return new wamp.WampSession('ws://test/ws', { WebSocket: FakeSocket, retryDelay: 0, ...options });
}

async function welcomed(s, id = 'SESSION000000001') {
  const p = s.connect();
  const ws = FakeSocket.all.at(-1);
  ws.accept();
  ws.deliver([0, id, 1, 'test-server/1']);
  await p;
  await tick();
  return ws;
}

test('offers the wamp subprotocol and parses WELCOME', async () => {
  const s = session();
  const ws = await welcomed(s);
  assert.deepEqual(ws.protocols, ['wamp']);
  assert.equal(s.sessionId, 'SESSION000000001');
  assert.equal(s.serverIdent, 'test-server/1');
  assert.equal(s.connected, true);
  s.close();
});

test('refuses a server that did not select wamp', async () => {
  const reasons = [];
  const s = session({ onclose: (r) => reasons.push(r) });
  const p = s.connect();
  FakeSocket.all[0].accept('');
  await assert.rejects(p);
  assert.deepEqual(reasons, ['unsupported']);
  assert.equal(FakeSocket.all.length, 1, 'no retry');
});

test('CURIE resolve at the first colon, shrink by longest match', () => {
  const s = session();
  s.prefix('api', 'http://x/');
  s.prefix('deep', 'http://x/y/');
  assert.equal(s.resolve('api:a:b'), 'http://x/a:b');
  assert.equal(s.resolve('nope:a'), 'nope:a');
  assert.equal(s.resolve('http://x/z'), 'http://x/z');
  assert.equal(s.shrink('http://x/y/z'), 'deep:z');
  assert.equal(s.shrink('http://other/'), 'http://other/');
});

test('call: random ids, result, error with and without details', async () => {
  const s = session();
  const ws = await welcomed(s);
  const r1 = s.call('rpc:echo', 'test');
  const r2 = s.call('rpc:throw');
  const r3 = s.call('rpc:ping');
  const [c1, c2, c3] = ws.take();
  assert.equal(c1[0], 2);
  assert.match(c1[1], /^[A-Za-z0-9_-]{16}$/);
  assert.notEqual(c1[1], c2[1]);
  assert.deepEqual(c1.slice(2), ['rpc:echo', 'test']);
  assert.deepEqual(c2.slice(2), ['rpc:throw']);
  // replies out of order
  ws.deliver([4, c3[1], 'http://api.wamp.ws/error#unauthorized', 'unauthorized']);
  ws.deliver([4, c2[1], 'http://api.wamp.ws/error#internal', 'internal error', 'An exception']);
  ws.deliver([3, c1[1], 'test']);
  assert.equal(await r1, 'test');
  await assert.rejects(r2, (e) => {
    assert.equal(e.uri, 'http://api.wamp.ws/error#internal');
    assert.equal(e.desc, 'internal error');
    assert.equal(e.details, 'An exception');
    return true;
  });
  await assert.rejects(r3, (e) => e.uri.endsWith('#unauthorized') && !('details' in e));
  s.close();
});

test('publish sends the shortest form', async () => {
  const s = session();
  const ws = await welcomed(s);
  s.publish('event:chat', 'foo');
  s.publish('event:chat', 'foo', true);
  s.publish('event:chat', 'foo', false);
  s.publish('event:chat', 'foo', ['a']);
  s.publish('event:chat', 'foo', null, ['b']);
  s.publish('event:chat', 'foo', true, ['b']);
  s.publish('event:chat', undefined);
  assert.deepEqual(ws.take(), [
    [7, 'event:chat', 'foo'],
    [7, 'event:chat', 'foo', true],
    [7, 'event:chat', 'foo', false],
    [7, 'event:chat', 'foo', ['a']],
    [7, 'event:chat', 'foo', [], ['b']],
    [7, 'event:chat', 'foo', true, ['b']],
    [7, 'event:chat', null],
  ]);
  assert.throws(() => s.publish('event:chat', 'x', 'nope'), TypeError);
  s.close();
});

test('one SUBSCRIBE per topic URI, UNSUBSCRIBE after the last handler, EVENT dispatch', async () => {
  const s = session();
  s.prefix('event', 'http://t/event#');
  const ws = await welcomed(s);
  assert.deepEqual(ws.take(), [[1, 'event', 'http://t/event#']]);
  const got = [];
  const h1 = (topic, ev) => got.push(['h1', topic, ev]);
  const h2 = (topic, ev) => got.push(['h2', topic, ev]);
  s.subscribe('event:chat', h1);
  s.subscribe('http://t/event#chat', h2);
  assert.deepEqual(ws.take(), [[5, 'event:chat']]);
  ws.deliver([8, 'http://t/event#chat', 'foo']);
  ws.deliver([8, 'http://t/event#other', 'bar']);
  assert.deepEqual(got, [
    ['h1', 'http://t/event#chat', 'foo'],
    ['h2', 'http://t/event#chat', 'foo'],
  ]);
  s.unsubscribe('event:chat', h1);
  assert.deepEqual(ws.take(), []);
  s.unsubscribe('event:chat', h2);
  assert.deepEqual(ws.take(), [[6, 'event:chat']]);
  s.close();
});

test('authenticate: authreq, sign the exact challenge, auth', async () => {
  const s = session();
  const ws = await welcomed(s);
  const challenge = '{"authid": "x", "authkey": "guest", "extra": {}}';
  const done = s.authenticate('guest', 'secret-password');
  const [req] = ws.take();
  assert.deepEqual(req.slice(2), [wamp.URI_AUTHREQ, 'guest', null]);
  ws.deliver([3, req[1], challenge]);
  await tick();
  await tick();
  const [authCall] = ws.take();
  assert.equal(authCall[2], wamp.URI_AUTH);
  assert.equal(authCall[3], await wamp.hmacSha256Base64('secret-password', challenge));
  ws.deliver([3, authCall[1], { rpc: [], pubsub: [] }]);
  assert.deepEqual(await done, { rpc: [], pubsub: [] });
  assert.equal(s.authenticated, true);
  assert.equal(s.authKey, 'guest');
  s.close();
});

test('reconnect: pending calls fail, prefixes re-sent, subscriptions restored after onopen', async () => {
  const events = [];
  let releaseOpen;
  const s = session({
    maxRetries: 3,
    onopen: () => {
      events.push('open');
      return new Promise((r) => (releaseOpen = r));
    },
    onclose: (reason, d) => events.push(`close:${reason}:${d.willRetry}`),
    onreconnecting: ({ attempt }) => events.push(`retry:${attempt}`),
  });
  s.prefix('event', 'http://t/event#');
  s.subscribe('event:chat', () => {});
  const ws1 = await welcomed(s);
  assert.deepEqual(ws1.take(), [[1, 'event', 'http://t/event#']]); // SUBSCRIBE waits for onopen
  releaseOpen();
  await tick();
  assert.deepEqual(ws1.take(), [[5, 'event:chat']]);
  const pending = s.call('rpc:slow');
  ws1.drop();
  await assert.rejects(pending, (e) => e.uri === wamp.ERROR_CONNECTION_LOST);
  await tick();
  const ws2 = FakeSocket.all.at(-1);
  assert.notEqual(ws2, ws1);
  ws2.accept();
  ws2.deliver([0, 'SESSION000000002', 1, 'test-server/1']);
  assert.equal(s.sessionId, 'SESSION000000002');
  assert.deepEqual(ws2.take(), [[1, 'event', 'http://t/event#']]);
  releaseOpen();
  await tick();
  assert.deepEqual(ws2.take(), [[5, 'event:chat']]);
  assert.deepEqual(events, ['open', 'close:lost:true', 'retry:1', 'open']);
  s.close();
});

test('gives up after maxRetries when the server stays away', async () => {
  const reasons = [];
  const s = session({ maxRetries: 2, onclose: (r, d) => reasons.push([r, d.willRetry, d.retriesExhausted]) });
  const p = s.connect();
  for (let i = 0; i < 3; i++) {
    FakeSocket.all.at(-1).drop();
    await tick();
  }
  await assert.rejects(p, /retries exhausted/);
  assert.equal(FakeSocket.all.length, 3);
  assert.deepEqual(reasons, [
    ['unreachable', true, false],
    ['unreachable', true, false],
    ['unreachable', false, true],
  ]);
});

test('protocol errors close the connection', async () => {
  const reasons = [];
  const s = session({ maxRetries: 0, onclose: (r) => reasons.push(r) });
  const ws = await welcomed(s);
  ws.deliver('not json');
  await tick();
  assert.deepEqual(reasons, ['protocol-error']);
});
