// Browser test of the tutorial demo page served by a running wamp-server.
//
//   node tests/browser/browser-test.mjs http://127.0.0.1:8080 tests/browser/out
//
// Uses the system Chromium (/usr/bin/chromium, or $CHROMIUM_PATH); never downloads a browser.
// Over TLS (https://localhost:PORT): BROWSER_TEST_SPKI is the base64 SHA-256 of the server
// certificate's SPKI, which Chromium then trusts (--ignore-certificate-errors-spki-list, for that
// key only), and NODE_EXTRA_CA_CERTS names the CA file for the asset requests made from Node.
// Prints one line per check and a final "N passed, M failed"; exits non-zero on any failure.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { chromium } from 'playwright-core';

const BASE = (process.argv[2] ?? '').replace(/\/+$/, '');
const OUT_DIR = path.resolve(process.argv[3] ?? 'out');
if (!/^https?:\/\/[^/]+$/.test(BASE)) {
  console.error('usage: node browser-test.mjs http://HOST:PORT OUTPUT_DIR');
  process.exit(2);
}
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const TOTAL_TIMEOUT_MS = Number(process.env.BROWSER_TEST_TIMEOUT_MS || 120_000);
const STEP_TIMEOUT_MS = 15_000;
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
const SPKI = process.env.BROWSER_TEST_SPKI ?? '';
if (SPKI) {
  if (!/^[A-Za-z0-9+/]{43}=$/.test(SPKI)) {
    console.error(`BROWSER_TEST_SPKI must be a base64 SHA-256 (44 characters), got "${SPKI}"`);
    process.exit(2);
  }
  CHROMIUM_ARGS.push(`--ignore-certificate-errors-spki-list=${SPKI}`);
}
// The WebSocket URL the page must use: app.js derives ws: from http: and wss: from https:.
const WS_URL = `${BASE.replace(/^http/, 'ws')}/ws`;

const TOPIC = 'http://wamptutorial/event#chat';
const ERR_INTERNAL = 'http://api.wamp.ws/error#internal';
const ERR_UNAUTHORIZED = 'http://api.wamp.ws/error#unauthorized';

// --- bookkeeping -----------------------------------------------------------------------------

let passed = 0;
let failed = 0;
let aborted = false;
let browser = null;

function escapeRe(text) {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

async function check(name, fn, { critical = false } = {}) {
  if (aborted) {
    failed += 1;
    console.log(`not ok - ${name} (not run: an earlier critical check failed)`);
    return;
  }
  const started = Date.now();
  try {
    await fn();
    passed += 1;
    console.log(`ok - ${name} (${Date.now() - started} ms)`);
  } catch (error) {
    failed += 1;
    const message = String(error && error.message ? error.message : error).split('\n')[0];
    console.log(`not ok - ${name}: ${message}`);
    if (critical) aborted = true;
  }
}

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

async function closeBrowser() {
  if (!browser) return;
  const b = browser;
  browser = null;
  await Promise.race([b.close().catch(() => {}), new Promise((r) => setTimeout(r, 5000))]);
}

function finish(code) {
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(code ?? (failed > 0 ? 1 : 0));
}

const watchdog = setTimeout(async () => {
  console.log(`not ok - total timeout of ${TOTAL_TIMEOUT_MS} ms reached`);
  failed += 1;
  aborted = true;
  await closeBrowser();
  finish(1);
}, TOTAL_TIMEOUT_MS);

// --- page helpers ----------------------------------------------------------------------------

/** Observes one page: uncaught errors, console errors, and every request it makes. */
function watch(page, label) {
  const problems = [];
  const requests = [];
  page.on('pageerror', (e) => problems.push(`${label}: uncaught ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`${label}: console error ${m.text()}`);
  });
  page.on('request', (r) => requests.push(r.url()));
  const websockets = [];
  page.on('websocket', (ws) => {
    requests.push(ws.url());
    websockets.push(ws.url());
  });
  return { problems, requests, websockets };
}

/** Number of log entries so far (later waits look only at entries after this). */
function logCount(page) {
  return page.locator('#log > li').count();
}

/** Waits for a log entry (its text, without time and tag) at index >= after matching `re`. */
async function waitForLog(page, re, after = 0, timeout = STEP_TIMEOUT_MS) {
  try {
    await page.waitForFunction(
      ([source, flags, from]) => {
        const pattern = new RegExp(source, flags);
        const entries = [...document.querySelectorAll('#log > li')].slice(from);
        return entries.some((li) => pattern.test((li.querySelector('code') ?? li).textContent));
      },
      [re.source, re.flags, after],
      { timeout, polling: 100 },
    );
  } catch {
    throw new Error(`no log entry matching ${re} within ${timeout} ms`);
  }
}

async function openDemo(context, label) {
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  const watched = watch(page, label);
  const response = await page.goto(`${BASE}/`, { waitUntil: 'load' });
  assert(response && response.status() === 200, `GET / answered ${response && response.status()}`);
  return { page, ...watched };
}

async function waitAuthenticated(page) {
  try {
    await page.waitForSelector('#status[data-state="authenticated"]', { timeout: STEP_TIMEOUT_MS });
  } catch {
    const state = await page.locator('#status').getAttribute('data-state').catch(() => '?');
    const text = await page.locator('#status').textContent().catch(() => '?');
    throw new Error(`status did not become authenticated (data-state=${state}, "${text}")`);
  }
}

const shot = (page, name) => page.screenshot({ path: path.join(OUT_DIR, name) });

// --- the test ---------------------------------------------------------------------------------

async function main() {
  await mkdir(OUT_DIR, { recursive: true });
  console.log(`browser test of ${BASE}${SPKI ? ` (trusting SPKI ${SPKI})` : ''}, screenshots in ${OUT_DIR}`);

  await check('launch chromium', async () => {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      timeout: 30_000,
    });
  }, { critical: true });

  let context;
  let one;
  let two;

  await check('static assets are served with the right content types', async () => {
    context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
    const expect = {
      '/': /^text\/html/,
      '/wamp1.js': /^(text|application)\/javascript/,
      '/app.js': /^(text|application)\/javascript/,
      '/style.css': /^text\/css/,
    };
    for (const [p, type] of Object.entries(expect)) {
      const r = await context.request.get(`${BASE}${p}`, { timeout: STEP_TIMEOUT_MS });
      assert(r.status() === 200, `GET ${p} answered ${r.status()}`);
      const ct = r.headers()['content-type'] ?? '';
      assert(type.test(ct), `GET ${p} has content-type "${ct}"`);
    }
  }, { critical: true });

  await check('page loads with the four demo buttons', async () => {
    one = await openDemo(context, 'page 1');
    const labels = await one.page.locator('button[id$="-btn"]:not(#clear-btn)').allTextContents();
    const want = [
      'PubSub: Chat message',
      'RPC: Echo message',
      'RPC: Throw error',
      'RPC: Ping (Not Authorized)',
    ];
    assert(JSON.stringify(labels.map((l) => l.trim())) === JSON.stringify(want), `buttons ${JSON.stringify(labels)}`);
  }, { critical: true });

  await check('connects and authenticates as guest (data-state=authenticated)', async () => {
    await waitAuthenticated(one.page);
    const text = await one.page.locator('#status').textContent();
    assert(/guest/.test(text), `status text "${text}"`);
    await waitForLog(one.page, /^\[\s*0\s*,\s*"[A-Za-z0-9_-]+"\s*,\s*1\s*,/); // WELCOME
    await waitForLog(one.page, /^Authentication complete as guest/);
    await shot(one.page, '01-authenticated.png');
  }, { critical: true });

  await check(`the WebSocket URL is ${WS_URL}`, async () => {
    await waitForLog(one.page, new RegExp(`^Connected to ${escapeRe(WS_URL)} as session `));
    assert(one.websockets.length === 1, `page 1 opened ${one.websockets.length} WebSockets: ${one.websockets.join(', ')}`);
    assert(one.websockets[0] === WS_URL, `page 1 opened ${one.websockets[0]}`);
    const pageUrl = await one.page.evaluate(() => location.href);
    assert(pageUrl === `${BASE}/`, `the page is at ${pageUrl}`);
  });

  await check('sends PREFIX event and rpc, and SUBSCRIBE event:chat', async () => {
    await waitForLog(one.page, /^\[1,"event","http:\/\/wamptutorial\/event#"\]$/);
    await waitForLog(one.page, /^\[1,"rpc","http:\/\/wamptutorial\/rpc#"\]$/);
    await waitForLog(one.page, /^\[5,"event:chat"\]$/);
  });

  await check('RPC echo returns "test"', async () => {
    const from = await logCount(one.page);
    await one.page.click('#echo-btn');
    await waitForLog(one.page, /^\[2,"[A-Za-z0-9_-]{16}","rpc:echo","test"\]$/, from);
    await waitForLog(one.page, /^\[\s*3\s*,\s*"[A-Za-z0-9_-]{16}"\s*,\s*"test"\s*\]$/, from);
    await waitForLog(one.page, /^rpc:echo RECEIVED result "test"$/, from);
  });

  await check(`PubSub chat "foo" comes back as an EVENT on ${TOPIC}`, async () => {
    const from = await logCount(one.page);
    await one.page.click('#chat-btn');
    await waitForLog(one.page, /^\[7,"event:chat","foo"\]$/, from);
    await waitForLog(one.page, new RegExp(`^\\[\\s*8\\s*,\\s*"${escapeRe(TOPIC)}"\\s*,\\s*"foo"\\s*\\]$`), from);
    await waitForLog(one.page, new RegExp(`^event:chat RECEIVED ${escapeRe(TOPIC)} "foo"$`), from);
  });

  await check(`RPC throw fails with ${ERR_INTERNAL} "An exception"`, async () => {
    const from = await logCount(one.page);
    await one.page.click('#throw-btn');
    await waitForLog(one.page, new RegExp(`^rpc:throw RECEIVED error ${escapeRe(ERR_INTERNAL)} .*"An exception"$`), from);
  });

  await check(`RPC ping fails with ${ERR_UNAUTHORIZED}`, async () => {
    const from = await logCount(one.page);
    await one.page.click('#ping-btn');
    await waitForLog(one.page, new RegExp(`^rpc:ping RECEIVED error ${escapeRe(ERR_UNAUTHORIZED)} `), from);
    await shot(one.page, '02-page1-buttons.png');
  });

  await check('a chat message from page 1 reaches page 2', async () => {
    two = await openDemo(context, 'page 2');
    await two.page.bringToFront();
    await waitAuthenticated(two.page);
    // Barrier: once an echo has come back on page 2, its SUBSCRIBE has been handled.
    let from2 = await logCount(two.page);
    await two.page.click('#echo-btn');
    await waitForLog(two.page, /^rpc:echo RECEIVED result "test"$/, from2);

    const text = `foo from page 1 #${Math.floor(Math.random() * 1e6)}`;
    from2 = await logCount(two.page);
    const from1 = await logCount(one.page);
    await one.page.fill('#chat-text', text);
    await one.page.click('#chat-btn');
    const event = new RegExp(`^event:chat RECEIVED ${escapeRe(TOPIC)} ${escapeRe(JSON.stringify(text))}$`);
    await waitForLog(two.page, event, from2);
    await waitForLog(one.page, event, from1); // the publisher receives its own event by default
    await shot(two.page, '03-page2-chat.png');
  });

  await check('after a reconnect: new session, authenticated again, chat still subscribed', async () => {
    await one.page.bringToFront(); // background tabs throttle timers
    const oldId = await one.page.evaluate(() => window.wampSession.sessionId);
    assert(typeof oldId === 'string', 'no session id on page 1');
    await one.page.evaluate(() => window.wampSession.reconnect());
    await one.page.waitForFunction(
      (old) => window.wampSession.sessionId && window.wampSession.sessionId !== old &&
        document.getElementById('status').dataset.state === 'authenticated',
      oldId,
      { timeout: STEP_TIMEOUT_MS, polling: 100 },
    );
    // Barrier as above, then publish from page 2 and expect it on page 1.
    let from1 = await logCount(one.page);
    await one.page.click('#echo-btn');
    await waitForLog(one.page, /^rpc:echo RECEIVED result "test"$/, from1);
    from1 = await logCount(one.page);
    const text = `hello again from page 2 #${Math.floor(Math.random() * 1e6)}`;
    await two.page.fill('#chat-text', text);
    await two.page.click('#chat-btn');
    await waitForLog(one.page, new RegExp(`^event:chat RECEIVED ${escapeRe(TOPIC)} ${escapeRe(JSON.stringify(text))}$`), from1);
    await shot(one.page, '04-page1-reconnected.png');
  });

  await check('no external requests (no CDN)', async () => {
    const wsBase = BASE.replace(/^http/, 'ws');
    const sockets = [...(one?.websockets ?? []), ...(two?.websockets ?? [])];
    assert(sockets.every((u) => u === WS_URL), `WebSockets elsewhere: ${sockets.join(', ')}`);
    const all = [...(one?.requests ?? []), ...(two?.requests ?? [])];
    assert(all.length > 0, 'no requests recorded');
    const foreign = all.filter((u) => !u.startsWith(`${BASE}/`) && !u.startsWith(`${wsBase}/`) && !u.startsWith('data:'));
    assert(foreign.length === 0, `requests elsewhere: ${foreign.join(', ')}`);
  });

  await check('no uncaught errors or console errors on the pages', async () => {
    const problems = [...(one?.problems ?? []), ...(two?.problems ?? [])];
    assert(problems.length === 0, problems.join(' | '));
  });
}

try {
  await main();
} catch (error) {
  failed += 1;
  console.log(`not ok - test harness error: ${error && error.stack ? error.stack : error}`);
} finally {
  clearTimeout(watchdog);
  await closeBrowser();
}
finish();
