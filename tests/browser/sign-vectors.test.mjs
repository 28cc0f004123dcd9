// WAMP-CRA signing in wamp1.js against the vectors of research-wamp-v1-and-clj-wamp.md §2.6.
// Run: node --test tests/browser/sign-vectors.test.mjs   (Node >= 20: globalThis.crypto.subtle)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadClient } from './load-client.mjs';

const wamp = await loadClient();

// (b) standard unsalted: key "foobar", secret "secret", Python json.dumps separators.
const CHALLENGE_B =
  '{"authid": "kQ4sB2VgsQ0tXy7Z", "authkey": "foobar", "timestamp": "2013-07-06T12:00:00.000Z", ' +
  '"sessionid": "v59mbCGDXZ7WTyxB", "extra": {}, "permissions": {"pubsub": [{"uri": ' +
  '"http://example.com/topics/", "prefix": true, "pub": true, "sub": true}], "rpc": [{"uri": ' +
  '"http://example.com/procedures/hello", "call": true}]}}';

// (c) standard salted: (b) plus authextra.
const AUTHEXTRA_C = { salt: 'RANDOM SALT', keylen: 32, iterations: 1000 };
const CHALLENGE_C =
  CHALLENGE_B.slice(0, -1) +
  ', "authextra": {"salt": "RANDOM SALT", "keylen": 32, "iterations": 1000}}';

test('(b) unsalted: HMAC-SHA256(key=secret, msg=challenge)', async () => {
  assert.equal(
    await wamp.authSign(CHALLENGE_B, 'secret'),
    '/Is5ujOEJ8K+Tb8dXn5e8icB9GUSeHHbvbJuVTZOuv0=',
  );
  assert.equal(
    await wamp.hmacSha256Base64('secret', CHALLENGE_B),
    '/Is5ujOEJ8K+Tb8dXn5e8icB9GUSeHHbvbJuVTZOuv0=',
  );
});

test('(c) salted: PBKDF2 derived key', async () => {
  assert.equal(
    await wamp.deriveKey('secret', AUTHEXTRA_C),
    'znWa4bxY1glpbQlZziHIlXA2shfF+HoCr9bnmZ5HPQg=',
  );
});

test('(c) salted: signature uses the derived key from the challenge authextra', async () => {
  assert.deepEqual(JSON.parse(CHALLENGE_C).authextra, AUTHEXTRA_C);
  assert.equal(
    await wamp.authSign(CHALLENGE_C, 'secret'),
    'BJWJuTxHvGyv/3u3JELnJpgJxvKmdrHU4youL7IBvdc=',
  );
});

test('(c) PBKDF2 defaults: 10000 iterations, 32 bytes', async () => {
  assert.equal(
    await wamp.deriveKey('secret', { salt: 'salt123' }),
    'VT+3GaFfYgfIOH/PsY9oIv9PPYQXU8v1Gc1nCzLQjwE=',
  );
  assert.equal(await wamp.deriveKey('secret', {}), 'secret');
  assert.equal(await wamp.deriveKey('secret', undefined), 'secret');
});

test('(a) clj-wamp: opaque challenge, both HMAC orders', async () => {
  const cljKey = 'secret-password-1372019250000-1372019248579-1';
  const challenge = await wamp.hmacSha256Base64(cljKey, 'guest');
  assert.equal(challenge, 'I2R09HygXn4ky+TyS1l2Qy38wF1HESXEg95CiuJN2y4=');
  // clj-wamp's own order (key = challenge, message = secret)
  assert.equal(
    await wamp.hmacSha256Base64(challenge, 'secret-password'),
    'Brffj/w0A5QnK0Qn2zTMTbIplXajBpBMq6XUC+26ZpQ=',
  );
  // authSign uses the standard order on a non-JSON challenge
  assert.equal(
    await wamp.authSign(challenge, 'secret-password'),
    'oYYC0wTkCQBgm86d0NpG/x6dINlfPOoOq2BUQsUfkIs=',
  );
});

test('empty HMAC key equals the zero-padded block key', async () => {
  const zero = String.fromCharCode(0).repeat(64);
  assert.equal(await wamp.hmacSha256Base64('', 'm'), await wamp.hmacSha256Base64(zero, 'm'));
});
