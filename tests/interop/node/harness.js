// Tiny check harness shared by the Node interop programs.
//
// Every check prints one line:
//   PASS <name>
//   FAIL <name>: expected <x>, got <y> [<which side deviated>]
//   NOTE <name>: <a shortfall of the peer, recorded in COMPATIBILITY.md; not a failure>
// and the program ends with "<n> passed, <m> failed" and exit status 0 only without failures.
'use strict';

const crypto = require('crypto');
const util = require('util');

const ERR = 'http://api.wamp.ws/error#';
const PROC = 'http://api.wamp.ws/procedure#';
const RPC = 'http://wamptutorial/rpc#';
const EVENT = 'http://wamptutorial/event#';
const CHAT = EVENT + 'chat';

class Checks {
  constructor(program) {
    this.program = program;
    this.passed = 0;
    this.failed = 0;
  }

  pass(name) {
    this.passed += 1;
    console.log(`PASS ${name}`);
    return true;
  }

  fail(name, why, side) {
    this.failed += 1;
    console.log(`FAIL ${name}: ${why}${side ? ` [${side}]` : ''}`);
    return false;
  }

  note(name, what) {
    console.log(`NOTE ${name}: ${what}`);
  }

  /** Deep-equal check; `side` names who deviated when it fails. */
  eq(name, got, want, side) {
    if (util.isDeepStrictEqual(got, want)) return this.pass(name);
    return this.fail(name, `expected ${show(want)}, got ${show(got)}`, side);
  }

  ok(name, cond, got, want, side) {
    if (cond) return this.pass(name);
    return this.fail(name, `expected ${want}, got ${show(got)}`, side);
  }

  finish() {
    console.log(`${this.passed} passed, ${this.failed} failed`);
    process.exitCode = this.failed === 0 && this.passed > 0 ? 0 : 1;
  }
}

function show(v) {
  if (v === undefined) return 'undefined';
  const s = JSON.stringify(v);
  return s.length > 300 ? s.slice(0, 300) + '...' : s;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Resolves with the promise's value, or rejects with `what` after `ms`. */
function within(ms, what, promise) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timeout after ${ms} ms: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Waits until pred() is true (polling), false after `ms`. */
async function waitFor(pred, ms) {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) return false;
    await sleep(10);
  }
  return true;
}

/** WAMP-CRA signature (WAMP1.md section 6): base64(HMAC-SHA256(key = secret, msg = challenge)),
 * the secret first derived with PBKDF2 when the challenge carries authextra.salt. */
function craSign(challenge, secret) {
  const obj = JSON.parse(challenge);
  let key = secret;
  const extra = obj.authextra;
  if (extra && extra.salt !== undefined) {
    key = crypto
      .pbkdf2Sync(secret, extra.salt, extra.iterations || 10000, extra.keylen || 32, 'sha256')
      .toString('base64');
  }
  return crypto.createHmac('sha256', key).update(challenge).digest('base64');
}

function parseUrl(argv) {
  const i = argv.indexOf('--url');
  if (i < 0 || !argv[i + 1]) {
    process.stderr.write(`usage: node ${process.argv[1]} --url ws://127.0.0.1:PORT/ws\n`);
    process.exit(2);
  }
  return argv[i + 1];
}

/** Hard stop: whatever happens, the program ends within `seconds`. */
function hardTimeout(seconds, checks) {
  setTimeout(() => {
    checks.fail('whole program', `did not finish within ${seconds} s`, 'harness');
    checks.finish();
    process.exit(1);
  }, seconds * 1000).unref();
}

module.exports = {
  Checks,
  ERR,
  PROC,
  RPC,
  EVENT,
  CHAT,
  craSign,
  hardTimeout,
  parseUrl,
  show,
  sleep,
  waitFor,
  within,
};
