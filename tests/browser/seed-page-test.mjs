// The seed's own browser client against the tutorial server, in headless Chromium: the
// clj-wamp template page with the real AutobahnJS 0.8.2 (from ../shared/vendor/seed-page, never
// copied into this repository), and the same page with its AutobahnJS scripts replaced by one
// <script> of our wamp1.js (served by the tutorial server; nothing else in the page changed).
//
//   node tests/browser/seed-page-test.mjs SERVER_BIN [OUTPUT_DIR]
//
// For each of the two clients:
//   - same origin: page and /ws behind one reverse proxy that passes the Host header (here: a
//     small proxy in this script), so the server sees Origin == Host;
//   - another origin allowed by --allow-origin (the page from a static server on another port);
//   - an origin not allowed: the page is refused (HTTP 403) and reports it could not connect;
//   - each: WELCOME, WAMP-CRA as guest (the template's own swapped authsign call), PREFIX and
//     SUBSCRIBE, chat between two pages, echo, throw, ping (unauthorized), no page errors;
//   - reconnect after a restart of the server by SIGKILL (the connection is lost: AutobahnJS
//     reconnects), and, with SEED_PAGE_RECONNECT=1, after ten SIGTERM restarts in a row (a
//     graceful shutdown must end the connection so that AutobahnJS 0.8 reconnects: it gives
//     up after a clean close).
// The page's retryDelay (30 s) is waited out with Playwright's fake clock.
//
// The shared folder is ../shared beside the repository (or $WAMP_SHARED_DIR). Without it the
// test says so and exits 0, except under CI=true, where a missing folder fails.
// Prints one line per check and "N passed, M failed"; exits non-zero on any failure.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SHARED = process.env.WAMP_SHARED_DIR || path.join(ROOT, '..', 'shared');
const SEED = path.join(SHARED, 'vendor', 'seed-page');
const SERVER_BIN = process.argv[2] || process.env.WAMP_SERVER_BIN;
const OUT_DIR = path.resolve(process.argv[3] ?? path.join(ROOT, 'target', 'browser-test'));
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const TOTAL_TIMEOUT_MS = Number(process.env.SEED_PAGE_TIMEOUT_MS || 300_000);
const STEP_TIMEOUT_MS = 20_000;
const SIGTERM_RESTARTS = process.env.SEED_PAGE_RECONNECT === '0' ? 0 : 10;
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const TOPIC = 'http://wamptutorial/event#chat';
const ERR_INTERNAL = 'http://api.wamp.ws/error#internal';
const ERR_UNAUTHORIZED = 'http://api.wamp.ws/error#unauthorized';

if (!existsSync(path.join(SEED, 'index.html'))) {
  const why = `the shared folder with the seed page is absent (${SEED}; set WAMP_SHARED_DIR)`;
  if (process.env.CI === 'true') {
    console.log(`not ok - ${why}: required under CI=true`);
    process.exit(1);
  }
  console.log(`skip - seed-page browser test: ${why}`);
  process.exit(0);
}
if (!SERVER_BIN || !existsSync(SERVER_BIN)) {
  console.error('usage: node seed-page-test.mjs SERVER_BIN [OUTPUT_DIR]  (or set WAMP_SERVER_BIN)');
  process.exit(2);
}
// After the skip: playwright-core is needed only when the test runs.
const { chromium } = await import('playwright-core');

// --- bookkeeping -----------------------------------------------------------------------------

let passed = 0;
let failed = 0;
let browser = null;
const servers = new Set();

async function check(name, fn) {
  const started = Date.now();
  try {
    await fn();
    passed += 1;
    console.log(`ok - ${name} (${Date.now() - started} ms)`);
    return true;
  } catch (error) {
    failed += 1;
    const message = String(error && error.message ? error.message : error).split('\n')[0];
    console.log(`not ok - ${name}: ${message}`);
    return false;
  }
}

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

/** Polls `condition` every 50 ms until it holds or `timeout` passes. */
async function waitFor(condition, what, timeout = STEP_TIMEOUT_MS) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await condition();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeout} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// --- the tutorial server ---------------------------------------------------------------------

const serverLog = [];

/** The tutorial binary on 127.0.0.1:`port` (0: a free one) with extra args. */
class Tutorial {
  constructor(args) {
    this.args = args;
    this.port = 0;
    this.child = null;
  }

  async start(port = this.port) {
    const child = spawn(SERVER_BIN, ['--bind', '127.0.0.1', '--port', String(port), ...this.args], {
      env: { ...process.env, NO_COLOR: '1', RUST_LOG: process.env.RUST_LOG || 'info', WAMP_ALLOW_ORIGINS: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    servers.add(this);
    child.exited = new Promise((r) => child.on('exit', (code, signal) => r({ code, signal })));
    child.stderr.on('data', (d) => serverLog.push(String(d)));
    let out = '';
    child.stdout.on('data', (d) => {
      out += String(d);
      serverLog.push(String(d));
    });
    const found = await waitFor(
      () => out.match(/^wamp-server listening: page http:\/\/[^/]*:(\d+)\//m) || child.exitCode !== null,
      'the server prints its "listening" line',
      30_000,
    );
    assert(Array.isArray(found), `the server exited: ${serverLog.join('').slice(-500)}`);
    this.port = Number(found[1]);
    return this;
  }

  async stop(signal = 'SIGTERM') {
    const child = this.child;
    if (!child) return;
    this.child = null;
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await child.exited;
    clearTimeout(timer);
    servers.delete(this);
  }

  get ws() {
    return `ws://127.0.0.1:${this.port}/ws`;
  }
}

// --- the page's web server (static files, the wamp1.js variant, a /ws reverse proxy) ----------

const CONTENT_TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8' };

/** The vendored page with its AutobahnJS scripts (the eleven sources of autobahn.min.js) replaced
 * by one <script> of our wamp1.js. */
async function wamp1Page(wamp1Url) {
  const html = await readFile(path.join(SEED, 'index.html'), 'utf8');
  const start = html.indexOf('<script src="vendor/autobahn-js-v0.8.2/autobahn/license.js">');
  const endTag = '<script src="vendor/autobahn-js-v0.8.2/autobahn/useragent.js"></script>';
  const end = html.indexOf(endTag);
  assert(start > 0 && end > start, 'the vendored index.html does not have the expected script tags');
  return `${html.slice(0, start)}<script src="${wamp1Url}"></script>${html.slice(end + endTag.length)}`;
}

/** Serves SEED at /autobahn/… and the wamp1.js variant at /wamp1/…; proxies /ws upgrades to the
 * tutorial server as they come (Host header included), like a reverse proxy. */
function pageServer(tutorial) {
  const server = http.createServer(async (req, res) => {
    try {
      const url = new URL(req.url, 'http://x');
      const m = url.pathname.match(/^\/(autobahn|wamp1)\/(.*)$/);
      if (!m) throw Object.assign(new Error('not found'), { status: 404 });
      const rel = path.normalize(m[2] || 'index.html');
      if (rel.startsWith('..') || path.isAbsolute(rel)) throw Object.assign(new Error('no'), { status: 403 });
      let body;
      if (m[1] === 'wamp1' && rel === 'index.html') {
        body = await wamp1Page(`http://127.0.0.1:${tutorial.port}/wamp1.js`);
      } else {
        body = await readFile(path.join(SEED, rel));
      }
      res.writeHead(200, {
        'content-type': CONTENT_TYPES[path.extname(rel)] || 'application/octet-stream',
        'cache-control': 'no-store',
      });
      res.end(body);
    } catch (error) {
      res.writeHead(error.status || 404, { 'content-type': 'text/plain' });
      res.end(String(error.message));
    }
  });
  server.on('upgrade', (req, socket, head) => {
    const upstream = net.connect(tutorial.port, '127.0.0.1', () => {
      let request = `${req.method} ${req.url} HTTP/1.1\r\n`;
      for (let i = 0; i < req.rawHeaders.length; i += 2) {
        request += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
      }
      upstream.write(`${request}\r\n`);
      if (head.length) upstream.write(head);
      socket.pipe(upstream).pipe(socket);
    });
    upstream.on('error', () => socket.destroy());
    socket.on('error', () => upstream.destroy());
    upstream.on('close', () => socket.destroy());
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

// --- page helpers ----------------------------------------------------------------------------

/** A page that blocks everything off this machine (the template's CDN stylesheets) and keeps
 * its console messages (with their arguments as JSON), uncaught errors and WebSocket frames. */
async function openPage(context, url, label, { clock = false } = {}) {
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  const rec = { page, label, console: [], problems: [], sent: [], requests: [] };
  page.on('pageerror', (e) => rec.problems.push(`${label}: uncaught ${e.message}`));
  page.on('console', async (m) => {
    // Listed at once (in order), usable once its arguments are in.
    const entry = { type: m.type(), text: m.text(), args: [], done: false };
    rec.console.push(entry);
    entry.args = await Promise.all(m.args().map((a) => a.jsonValue().catch(() => undefined)));
    entry.done = true;
  });
  page.on('request', (r) => rec.requests.push(r.url()));
  page.on('websocket', (ws) => {
    ws.on('framesent', (f) => rec.sent.push(String(f.payload)));
  });
  if (clock) await page.clock.install();
  const response = await page.goto(url, { waitUntil: 'load' });
  assert(response && response.status() === 200, `GET ${url} answered ${response && response.status()}`);
  return rec;
}

const logged = (rec, prefix) => rec.console.filter((c) => c.text.startsWith(prefix));

/** The first `count` messages starting with `prefix`, once their arguments are in. */
async function waitLogged(rec, prefix, count = 1, timeout = STEP_TIMEOUT_MS) {
  return waitFor(
    () => {
      const found = logged(rec, prefix);
      return found.length >= count && found.slice(0, count).every((c) => c.done) && found;
    },
    `${rec.label} logs "${prefix}"`,
    timeout,
  );
}

/** Problems other than the blocked CDN stylesheets. */
function problems(rec, { allowWebSocketFailure = false } = {}) {
  const console = rec.console
    .filter((c) => c.type === 'error')
    .filter((c) => !/Failed to load resource: net::ERR_FAILED/.test(c.text))
    .filter((c) => !(allowWebSocketFailure && /WebSocket connection to .* failed/.test(c.text)))
    .map((c) => `${rec.label}: console error ${c.text}`);
  return [...rec.problems, ...console];
}

/** WELCOME, authentication, PREFIX and SUBSCRIBE on a freshly opened template page. */
async function connectedAndAuthenticated(rec, nth = 1) {
  const connected = await waitLogged(rec, 'Connected to ', nth);
  const sessionId = connected[nth - 1].args[1];
  assert(/^[A-Za-z0-9_-]{16}$/.test(sessionId ?? ''), `sessionid() gave ${JSON.stringify(sessionId)}`);
  const done = await waitLogged(rec, 'Authentication complete', nth);
  const permissions = done[nth - 1].args[1];
  assert(permissions && typeof permissions === 'object', `permissions ${JSON.stringify(permissions)}`);
  await waitFor(
    () => rec.sent.filter((f) => f === '[5,"event:chat"]').length >= nth,
    `${rec.label} sends SUBSCRIBE event:chat`,
  );
  return sessionId;
}

// --- the checks ------------------------------------------------------------------------------

/** The template's buttons and a second page, on one serving of one client. */
async function pageChecks(context, name, url) {
  let one;
  let two;
  const ok = await check(`${name}: WELCOME, WAMP-CRA as guest, PREFIX, SUBSCRIBE`, async () => {
    one = await openPage(context, url, `${name} page 1`);
    await connectedAndAuthenticated(one);
    for (const frame of ['[1,"event","http://wamptutorial/event#"]', '[1,"rpc","http://wamptutorial/rpc#"]']) {
      assert(one.sent.includes(frame), `no ${frame} among ${JSON.stringify(one.sent)}`);
    }
    const authreq = one.sent.map((f) => JSON.parse(f)).find((m) => m[2] === 'http://api.wamp.ws/procedure#authreq');
    assert(authreq && authreq[3] === 'guest', `authreq frame ${JSON.stringify(authreq)}`);
  });
  if (!ok) return;
  await check(`${name}: echo`, async () => {
    await one.page.click('#echo-btn');
    const [r] = await waitLogged(one, 'rpc:echo RECEIVED success');
    assert(r.args[1] === 'test', `echo gave ${JSON.stringify(r.args)}`);
  });
  await check(`${name}: throw gives ${ERR_INTERNAL}`, async () => {
    await one.page.click('#throw-btn');
    const [r] = await waitLogged(one, 'rpc:throw RECEIVED error');
    const e = r.args[1] ?? {};
    assert(e.uri === ERR_INTERNAL && e.desc === 'internal error' && e.detail === 'An exception', `error ${JSON.stringify(e)}`);
  });
  await check(`${name}: ping gives ${ERR_UNAUTHORIZED}`, async () => {
    await one.page.click('#ping-btn');
    const [r] = await waitLogged(one, 'rpc:ping RECEIVED error');
    assert((r.args[1] ?? {}).uri === ERR_UNAUTHORIZED, `error ${JSON.stringify(r.args)}`);
  });
  await check(`${name}: chat between two pages`, async () => {
    two = await openPage(context, url, `${name} page 2`);
    await connectedAndAuthenticated(two);
    // Barrier: an echo answered on page 2 means its SUBSCRIBE was handled before.
    await two.page.click('#echo-btn');
    await waitLogged(two, 'rpc:echo RECEIVED success');
    await one.page.bringToFront();
    await one.page.click('#chat-btn');
    await waitFor(() => one.sent.includes('[7,"event:chat","foo"]'), 'page 1 sends PUBLISH');
    for (const rec of [two, one]) {
      const [r] = await waitLogged(rec, 'event:chat RECEIVED');
      assert(r.args[1] === 'foo', `${rec.label} got ${JSON.stringify(r.args)}`);
    }
  });
  await check(`${name}: nothing loaded from elsewhere, no page errors`, async () => {
    const local = (u) => /^(https?|wss?):\/\/(127\.0\.0\.1|localhost)(:\d+)?\//.test(u) || u.startsWith('data:');
    const cdn = (u) => /^https?:\/\/netdna\.bootstrapcdn\.com\//.test(u); // blocked stylesheets
    const foreign = [...one.requests, ...(two?.requests ?? [])].filter((u) => !local(u) && !cdn(u));
    assert(foreign.length === 0, `requests elsewhere: ${foreign.join(', ')}`);
    const all = [...problems(one), ...(two ? problems(two) : [])];
    assert(all.length === 0, all.join(' | '));
  });
  await one.page.close();
  await two?.page.close();
}

/** A page on an origin that is not allowed: 403, and the page reports it could not connect. */
async function refusedCheck(context, name, url) {
  await check(`${name}: an origin not allowed is refused (403) and the page says so`, async () => {
    const rec = await openPage(context, url, `${name} refused`);
    const [hangup] = await waitLogged(rec, 'Connection lost (');
    assert(/Connection could not be established/.test(hangup.text), `hangup "${hangup.text}"`);
    assert(logged(rec, 'Connected to ').length === 0, 'the page connected');
    assert(
      rec.console.some((c) => c.type === 'error' && /403/.test(c.text)),
      `Chromium did not report the 403: ${JSON.stringify(rec.console.map((c) => c.text))}`,
    );
    const others = problems(rec, { allowWebSocketFailure: true });
    assert(others.length === 0, others.join(' | '));
    await rec.page.close();
  });
}

/** Restarts the server `times` times with `signal`; the page must reconnect each time. */
async function reconnectCheck(context, name, url, tutorial, signal, times) {
  await check(`${name}: reconnects after ${times} ${signal} restart(s) of the server`, async () => {
    const rec = await openPage(context, url, `${name} reconnect`, { clock: true });
    try {
      await reconnects(rec, tutorial, signal, times);
    } finally {
      // The next checks need a server, whatever happened here.
      if (!tutorial.child) await tutorial.start();
      await rec.page.close();
    }
  });
}

/** The restarts of reconnectCheck, on an open page. */
async function reconnects(rec, tutorial, signal, times) {
  let previous = await connectedAndAuthenticated(rec);
  for (let i = 1; i <= times; i += 1) {
    await tutorial.stop(signal);
    const [lost] = await waitLogged(rec, 'Connection lost (', i, STEP_TIMEOUT_MS).catch(() => {
      throw new Error(
        `restart ${i}: the page reported no lost connection: it saw a clean close, after which ` +
          'AutobahnJS 0.8 never reconnects',
      );
    }).then((l) => [l[i - 1]]);
    assert(/scheduled .*reconnect/.test(lost.text), `restart ${i}: hangup "${lost.text}"`);
    await tutorial.start();
    // The page's retryDelay is 30 s: let the fake clock run it out.
    await rec.page.clock.fastForward(31_000);
    const id = await connectedAndAuthenticated(rec, i + 1).catch((e) => {
      throw new Error(`restart ${i}: ${e.message}`);
    });
    assert(id !== previous, `restart ${i}: the same session id`);
    previous = id;
  }
  await rec.page.click('#echo-btn');
  await waitLogged(rec, 'rpc:echo RECEIVED success');
  const all = problems(rec, { allowWebSocketFailure: true });
  assert(all.length === 0, all.join(' | '));
}

async function main() {
  await mkdir(OUT_DIR, { recursive: true });
  console.log(`seed-page browser test: ${SEED} against ${SERVER_BIN}`);
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 30_000 });
  const context = await browser.newContext();
  // The template links two stylesheets on a CDN: block everything that is not on this machine.
  await context.route(/^https?:\/\/(?!127\.0\.0\.1[:/]|localhost[:/])/, (route) => route.abort());

  // The page's web server first (its port goes into --allow-origin), then the tutorial server.
  const tutorial = new Tutorial([]);
  const pages = await pageServer(tutorial);
  const pagesPort = pages.address().port;
  const allowed = `http://127.0.0.1:${pagesPort}`;
  tutorial.args = ['--allow-origin', allowed];
  await tutorial.start(0);
  console.log(`tutorial server on ${tutorial.port}; pages on ${pagesPort} (allowed: ${allowed})`);

  for (const client of ['autobahn', 'wamp1']) {
    const label = client === 'autobahn' ? 'AutobahnJS 0.8.2' : 'wamp1.js';
    // Same origin: http://localhost:PAGES with /ws proxied there (Host localhost:PAGES).
    const proxied = `http://localhost:${pagesPort}/${client}/index.html?ws=ws://localhost:${pagesPort}/ws`;
    await pageChecks(context, `${label}, same origin (reverse proxy)`, proxied);
    // Another origin, on the allow-list.
    const direct = `${allowed}/${client}/index.html?ws=${tutorial.ws}`;
    await pageChecks(context, `${label}, allowed origin ${allowed}`, direct);
    // http://localhost:PAGES is neither the server's origin nor allowed.
    await refusedCheck(context, label, `http://localhost:${pagesPort}/${client}/index.html?ws=${tutorial.ws}`);
    await reconnectCheck(context, label, direct, tutorial, 'SIGKILL', 1);
    if (SIGTERM_RESTARTS > 0) {
      await reconnectCheck(context, label, direct, tutorial, 'SIGTERM', SIGTERM_RESTARTS);
    } else {
      console.log(`skip - ${label}: ten SIGTERM restarts (set SEED_PAGE_RECONNECT=1)`);
    }
  }
  pages.close();
  await check('the server log shows no panic', async () => {
    const log = serverLog.join('');
    await writeFile(path.join(OUT_DIR, 'seed-page-server.log'), log);
    assert(!/panicked/.test(log), 'a panic in the server log (seed-page-server.log)');
  });
}

const watchdog = setTimeout(() => {
  console.log(`not ok - total timeout of ${TOTAL_TIMEOUT_MS} ms reached`);
  failed += 1;
  cleanup().then(() => finish());
}, TOTAL_TIMEOUT_MS);

async function cleanup() {
  for (const s of [...servers]) await s.stop('SIGKILL');
  if (browser) await Promise.race([browser.close().catch(() => {}), new Promise((r) => setTimeout(r, 5000))]);
  browser = null;
}

function finish() {
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed > 0 ? 1 : 0);
}

try {
  await main();
} catch (error) {
  failed += 1;
  console.log(`not ok - test harness error: ${error && error.stack ? error.stack : error}`);
} finally {
  clearTimeout(watchdog);
  await cleanup();
}
finish();
