// wamp1.js's `ab` beside the real AutobahnJS 0.8.2: the same scripted sessions, the same
// observable story (frames sent, hangup codes/messages/details, results, rejections, throws).
// AutobahnJS is loaded from ../shared/vendor/seed-page (or $WAMP_SHARED_DIR), never copied here;
// without that folder the test is skipped, except under CI=true, where it fails.
// Run: node --test tests/browser/ab-differential.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';
import { CLIENT_PATH } from './load-client.mjs';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SHARED = process.env.WAMP_SHARED_DIR || path.join(ROOT, '..', 'shared');
const VENDOR = path.join(SHARED, 'vendor', 'seed-page', 'vendor');
const ABJS = path.join(VENDOR, 'autobahn-js-v0.8.2');
// The sources of autobahn.min.js, in its SConstruct order (see SOURCES.md there).
const AUTOBAHN_SOURCES = [
  'autobahn/license.js',
  'autobahn/loadershim.js',
  'autobahn/normalizeconsole.js',
  '../when-2.7.1/when.js',
  'cryptojs/components/core.js',
  'cryptojs/components/enc-base64.js',
  'cryptojs/components/hmac.js',
  'cryptojs/components/sha256.js',
  'cryptojs/components/pbkdf2.js',
  'autobahn/autobahn.js',
  'autobahn/useragent.js',
].map((f) => path.join(ABJS, f));

const present = existsSync(path.join(ABJS, 'autobahn', 'autobahn.js'));
if (!present && process.env.CI === 'true') {
  throw new Error(`AutobahnJS 0.8.2 is absent (${ABJS}): required under CI=true`);
}
const skip = present ? false : `AutobahnJS 0.8.2 is absent (${ABJS}; set WAMP_SHARED_DIR)`;

/** A scripted WebSocket; `log` gets what the client sends. */
function fakeSocketClass(log) {
  return class FakeSocket {
    static all = [];
    constructor(url, protocols) {
      this.url = url;
      this.protocols = protocols;
      this.readyState = 0;
      this.protocol = '';
      FakeSocket.all.push(this);
      log.push(['new WebSocket', url, protocols ? [...protocols] : protocols]);
    }
    send(text) {
      log.push(['send', JSON.parse(text)]);
    }
    close(code, reason) {
      if (this.readyState === 3) return;
      this.readyState = 3;
      log.push(['client close', code, reason]);
      queueMicrotask(() => this.onclose?.({ code: code ?? 1005, reason: reason ?? '', wasClean: true }));
    }
    accept(protocol = 'wamp') {
      this.readyState = 1;
      this.protocol = protocol;
      try {
        this.onopen?.({});
      } catch (e) {
        log.push(['throw in onopen', typeof e === 'string' ? e : e.message]);
      }
    }
    deliver(message) {
      this.onmessage?.({ data: JSON.stringify(message) });
    }
    end(clean, code = clean ? 1001 : 1006, reason = '') {
      this.readyState = 3;
      this.onclose?.({ code, reason, wasClean: clean });
    }
  };
}

/** A fresh global with `ab` from the given scripts and the fake socket as WebSocket. */
async function load(sources, log) {
  const FakeSocket = fakeSocketClass(log);
  const quiet = () => {};
  const sandbox = {
    WebSocket: FakeSocket,
    navigator: { userAgent: 'node' },
    console: { log: quiet, info: quiet, warn: quiet, error: quiet, group: quiet, groupEnd: quiet, time: quiet, timeEnd: quiet },
    setTimeout,
    clearTimeout,
    queueMicrotask,
    TextEncoder,
    btoa,
    crypto: globalThis.crypto,
  };
  sandbox.window = sandbox;
  const context = vm.createContext(sandbox);
  for (const file of sources) {
    vm.runInContext(await readFile(file, 'utf8'), context, { filename: file });
  }
  // Arrays made in the client's realm (AutobahnJS checks `instanceof Array`).
  const arr = vm.runInContext('(...items) => items', context);
  return { ab: context.ab, FakeSocket, arr };
}

const settle = () => new Promise((r) => setTimeout(r, 20));
const thrown = (fn) => {
  try {
    fn();
    return null;
  } catch (e) {
    return typeof e === 'string' ? e : e.message;
  }
};

/** The scripted story; returns the log with call ids replaced by their order of appearance. */
async function story(sources, script) {
  const log = [];
  const { ab, FakeSocket, arr } = await load(sources, log);
  await script({ ab, FakeSocket, arr, log, latest: () => FakeSocket.all.at(-1) });
  await settle();
  const ids = new Map();
  return JSON.parse(
    JSON.stringify(log, (k, v) => {
      if (Array.isArray(v) && v[0] === 'send' && Array.isArray(v[1]) && v[1][0] === 2) {
        if (!ids.has(v[1][1])) ids.set(v[1][1], `call#${ids.size + 1}`);
        return ['send', [2, ids.get(v[1][1]), ...v[1].slice(2)]];
      }
      return v;
    }),
  );
}

/** The call id of the n-th CALL sent so far. */
const callId = (log, n) => log.filter((e) => e[0] === 'send' && e[1][0] === 2)[n][1][1];

const both = async (script) => {
  const real = await story(AUTOBAHN_SOURCES, script);
  const ours = await story([CLIENT_PATH.pathname], script);
  assert.deepEqual(ours, real);
  return real;
};

test('a session: prefix, calls, errors, pubsub, publish forms, auth frames, throws', { skip }, async () => {
  const real = await both(async ({ ab, arr, log, latest }) => {
    ab.connect(
      'ws://test/ws',
      (s) => {
        log.push(['onconnect', s.sessionid()]);
        s.prefix('rpc', 'http://example.com/rpc#');
        s.prefix('event', 'http://example.com/event#');
        const report = (name, p) =>
          p.then(
            (r) => log.push([name, 'ok', r]),
            (e) => log.push([name, 'error', e]),
          );
        report('echo', s.call('http://example.com/rpc#echo', 'test', 2));
        report('throw', s.call('rpc:throw'));
        report('notfound', s.call('other:x', null));
        const cb = (topic, event) => log.push(['event', topic, event]);
        s.subscribe('event:chat', cb);
        log.push(['dup subscribe', thrown(() => s.subscribe('event:chat', cb)) !== null]);
        s.publish('event:chat', 'foo');
        s.publish('event:chat', { a: 1 }, true);
        s.publish('event:chat', 'x', arr('S1'));
        s.publish('event:chat', 'x', arr(), arr('S2'));
        log.push(['bad publish', thrown(() => s.publish('event:chat', 'x', 'S1'))]);
        log.push(['bad publish 2', thrown(() => s.publish('event:chat', 'x', true, arr('S'))) ]);
        report('authreq', s.authreq('guest'));
        report('auth', s.auth('signature'));
        log.push(['resolve', s.resolve('event:chat'), s.shrink('http://example.com/rpc#a')]);
        globalThis.__session = s;
      },
      (code, reason, detail) => {
        log.push(['hangup', code, reason, detail]);
      },
      { retryDelay: 1 },
    );
    latest().accept();
    latest().deliver([0, 'SESSION000000001', 1, 'test/1']);
    await settle();
    latest().deliver([3, callId(log, 0), 'test']);
    latest().deliver([4, callId(log, 1), 'http://api.wamp.ws/error#internal', 'internal error', 'An exception']);
    latest().deliver([4, callId(log, 2), 'http://api.wamp.ws/error#notfound', 'not found error']);
    latest().deliver([8, 'http://example.com/event#chat', 'foo']);
    latest().deliver([8, 'event:chat', 'as a CURIE']);
    latest().deliver([8, 'http://example.com/event#other', 'not subscribed']);
    latest().deliver([3, callId(log, 3), '{"challenge":1}']);
    latest().deliver([3, callId(log, 4), { rpc: [] }]);
    await settle();
    const s = globalThis.__session;
    delete globalThis.__session;
    // The signature: AutobahnJS returns the string, wamp1.js a Promise of it.
    log.push(['authsign', await Promise.resolve(s.authsign('{"challenge":1}', 'secret'))]);
    log.push(['authsign, no secret', await Promise.resolve(s.authsign('c'))]);
    // Salted WAMP-CRA: the PBKDF2 key (a string in AutobahnJS, a Promise of it here).
    const extra = { salt: 'RANDOM SALT', keylen: 32, iterations: 1000 };
    log.push(['deriveKey', await Promise.resolve(ab.deriveKey('secret', extra))]);
    log.push(['deriveKey, no salt', await Promise.resolve(ab.deriveKey('secret', {}))]);
    s.unsubscribe('event:chat');
    log.push(['unsubscribe again', thrown(() => s.unsubscribe('event:chat'))]);
    s.close();
  });
  // The story is not empty: the frames and the hangup are in it.
  assert.ok(real.some((e) => e[0] === 'hangup' && e[1] === 0));
  assert.ok(real.some((e) => e[0] === 'event'));
});

test('reconnect rules: lost, reconnected, lost, unreachable until retries run out', { skip }, async () => {
  await both(async ({ ab, log, latest }) => {
    ab.connect(
      'ws://test/ws',
      (s) => log.push(['onconnect', s.sessionid()]),
      (code, reason, detail) => {
        log.push(['hangup', code, reason, detail]);
      },
      { retryDelay: 1, maxRetries: 2 },
    );
    latest().accept();
    latest().deliver([0, 'FIRST00000000000', 1, 'x']);
    latest().end(false);
    await settle();
    latest().accept();
    latest().deliver([0, 'SECOND0000000000', 1, 'x']);
    latest().end(false);
    await settle();
    latest().end(false); // unreachable
    await settle();
    latest().end(false); // unreachable: retries exhausted
    await settle();
  });
});

test('a clean close by the server ends it; never connected; wrong subprotocol', { skip }, async () => {
  await both(async ({ ab, log, latest }) => {
    const hangup = (code, reason, detail) => {
      log.push(['hangup', code, reason, detail]);
    };
    ab.connect('ws://a/ws', (s) => log.push(['onconnect', s.sessionid()]), hangup, { retryDelay: 1 });
    latest().accept();
    latest().deliver([0, 'S', 1, 'x']);
    latest().end(true, 1001, 'server shutting down');
    await settle();
    ab.connect('ws://b/ws', () => log.push(['onconnect b']), hangup, { retryDelay: 1 });
    latest().end(false);
    await settle();
    ab.connect('ws://c/ws', () => log.push(['onconnect c']), hangup, { retryDelay: 1 });
    latest().accept('');
    await settle();
    ab.connect('ws://d/ws', () => log.push(['onconnect d']), hangup, { retryDelay: 1, skipSubprotocolCheck: true });
    latest().accept('');
    latest().deliver([0, 'D', 1, 'x']);
    await settle();
    // onhangup returning true stops the retries.
    ab.connect('ws://e/ws', () => log.push(['onconnect e']), (code, reason, detail) => {
      hangup(code, reason, detail);
      return true;
    }, { retryDelay: 1 });
    latest().accept();
    latest().deliver([0, 'E', 1, 'x']);
    latest().end(false);
    await settle();
  });
});
