// wamp1.js: a small, dependency-free WAMP v1 client, written for this project.
//
// A classic script (no import/export), so that it also works where a page loads AutobahnJS:
//   <script src="/wamp1.js"></script>     defines `wamp1` (this client) and, unless the page
//                                         already has one, `ab` (AutobahnJS 0.8's API)
//   import './wamp1.js';                  from a module: then use globalThis.wamp1
//
// Wire format: one JSON array per WebSocket text frame, subprotocol "wamp".
// Authentication: WAMP-CRA (HMAC-SHA256, optional PBKDF2 key derivation) with WebCrypto,
// which browsers offer only in secure contexts (https://, http://localhost, http://127.0.0.1).
//
//   const { WampSession } = globalThis.wamp1;
//   const session = new WampSession('ws://localhost:8080/ws', {
//     onopen: async (s) => { await s.authenticate('guest', 'secret-password'); },
//   });
//   session.prefix('rpc', 'http://wamptutorial/rpc#');
//   session.subscribe('event:chat', (topic, event) => console.log(topic, event));
//   await session.connect();
//   console.log(await session.call('rpc:echo', 'test'));
//
// AutobahnJS 0.8 drop-in (the `ab` global; see the end of this file for the differences):
//   ab.connect('ws://localhost:8080/ws', (session) => { ... }, (code, reason, detail) => { ... },
//              { maxRetries: 10, retryDelay: 5000 });
(function (root) {
'use strict';

const WAMP_SUBPROTOCOL = 'wamp';

/** Message type ids of WAMP v1. */
const MessageType = Object.freeze({
  WELCOME: 0,
  PREFIX: 1,
  CALL: 2,
  CALLRESULT: 3,
  CALLERROR: 4,
  SUBSCRIBE: 5,
  UNSUBSCRIBE: 6,
  PUBLISH: 7,
  EVENT: 8,
});

const URI_AUTHREQ = 'http://api.wamp.ws/procedure#authreq';
const URI_AUTH = 'http://api.wamp.ws/procedure#auth';

/** Client-side error URIs (never sent on the wire). */
const ERROR_NOT_CONNECTED = 'urn:wamp1js:error#not-connected';
const ERROR_CONNECTION_LOST = 'urn:wamp1js:error#connection-lost';

/** The rejection value of `call()`: an Error with `uri`, `desc` and (when sent) `details`. */
class WampCallError extends Error {
  constructor(uri, desc, ...details) {
    super(`${uri}: ${desc}`);
    this.name = 'WampCallError';
    this.uri = uri;
    this.desc = desc;
    if (details.length > 0) this.details = details[0];
  }
}

// ---------------------------------------------------------------------------------------------
// CURIEs

/** Prefix map: a string is a CURIE when the part before its first ':' is a registered prefix. */
class PrefixMap {
  constructor() {
    this._map = new Map();
  }

  set(prefix, uri) {
    if (typeof prefix !== 'string' || typeof uri !== 'string') {
      throw new TypeError('prefix and uri must be strings');
    }
    this._map.set(prefix, uri);
  }

  get(prefix) {
    return this._map.get(prefix);
  }

  entries() {
    return this._map.entries();
  }

  /** CURIE -> full URI; anything that is not a CURIE of a registered prefix is returned as is. */
  resolve(curie) {
    if (typeof curie !== 'string') return curie;
    const i = curie.indexOf(':');
    if (i >= 0) {
      const uri = this._map.get(curie.slice(0, i));
      if (uri !== undefined) return uri + curie.slice(i + 1);
    }
    return curie;
  }

  /** Full URI -> CURIE, using the longest registered URI that starts it; else unchanged. */
  shrink(uri) {
    if (typeof uri !== 'string') return uri;
    let best = null;
    for (const [prefix, base] of this._map) {
      if (uri.startsWith(base) && (best === null || base.length > best[1].length)) {
        best = [prefix, base];
      }
    }
    return best === null ? uri : `${best[0]}:${uri.slice(best[1].length)}`;
  }
}

// ---------------------------------------------------------------------------------------------
// WAMP-CRA crypto (WebCrypto)

const ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** A random 16-character id from [A-Za-z0-9-_] (used for call ids). */
function newId(length = 16) {
  const bytes = new Uint8Array(length);
  globalThis.crypto.getRandomValues(bytes);
  let id = '';
  for (const b of bytes) id += ID_ALPHABET[b & 63];
  return id;
}

function subtle() {
  const s = globalThis.crypto && globalThis.crypto.subtle;
  if (!s) {
    const where = root.location ? ` (${root.location.origin} is not a secure context)` : '';
    throw new Error(
      `WAMP-CRA signing needs WebCrypto (crypto.subtle), which this page lacks${where}: ` +
        'browsers offer it only on https:// pages and on http://localhost or http://127.0.0.1. ' +
        'Serve the page over https, or open it on localhost.',
    );
  }
  return s;
}

const utf8 = (text) => new TextEncoder().encode(String(text));

function toBase64(buffer) {
  const bytes = new Uint8Array(buffer);
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}

/** base64(HMAC-SHA256(key, message)), standard alphabet, padded. Both are UTF-8 strings. */
async function hmacSha256Base64(key, message) {
  let raw = utf8(key ?? '');
  // WebCrypto refuses empty HMAC keys; HMAC zero-pads keys to the block size, so this is equal.
  if (raw.length === 0) raw = new Uint8Array(64);
  const k = await subtle().importKey('raw', raw, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return toBase64(await subtle().sign('HMAC', k, utf8(message)));
}

/**
 * WAMP-CRA key derivation: when `authextra.salt` is present the secret becomes
 * base64(PBKDF2-HMAC-SHA256(secret, salt, iterations = 10000, keylen = 32 bytes)).
 * Without a salt the secret is returned unchanged.
 */
async function deriveKey(secret, authextra) {
  if (!authextra || typeof authextra !== 'object' || authextra.salt == null) return secret;
  const iterations = authextra.iterations ?? 10000;
  const keylen = authextra.keylen ?? 32;
  if (!Number.isInteger(iterations) || iterations < 1) throw new RangeError('bad iterations');
  if (!Number.isInteger(keylen) || keylen < 1) throw new RangeError('bad keylen');
  const base = await subtle().importKey('raw', utf8(secret ?? ''), 'PBKDF2', false, ['deriveBits']);
  const bits = await subtle().deriveBits(
    { name: 'PBKDF2', hash: 'SHA-256', salt: utf8(authextra.salt), iterations },
    base,
    keylen * 8,
  );
  return toBase64(bits);
}

/**
 * Signs a WAMP-CRA challenge: base64(HMAC-SHA256(key = secret', message = challenge)), where
 * secret' is derived with PBKDF2 when the challenge (a JSON object text) has `authextra.salt`.
 * The exact challenge text is signed, never a re-serialisation. A challenge that is not JSON
 * (clj-wamp's opaque form) is signed with the plain secret.
 */
async function authSign(challenge, secret) {
  let authextra;
  try {
    const parsed = JSON.parse(challenge);
    if (parsed && typeof parsed === 'object') authextra = parsed.authextra;
  } catch {
    // opaque challenge
  }
  const key = await deriveKey(secret ?? '', authextra);
  return hmacSha256Base64(key, challenge);
}

// ---------------------------------------------------------------------------------------------
// Session

function report(error) {
  if (typeof globalThis.reportError === 'function') globalThis.reportError(error);
  else console.error(error);
}

/** A WebSocket close reason fits in 123 UTF-8 bytes. */
function closeReason(text) {
  let reason = String(text);
  while (new TextEncoder().encode(reason).length > 123) reason = reason.slice(0, -1);
  return reason;
}

function isIdList(value) {
  return Array.isArray(value) && value.every((v) => typeof v === 'string');
}

/**
 * A WAMP v1 session over one WebSocket at a time, reconnecting by policy.
 *
 * Options (all optional):
 *   maxRetries            reconnect attempts after a loss or a failed connect (default 10);
 *                         the count restarts after every WELCOME
 *   retryDelay            ms between attempts, or a function (attempt) => ms (default 2000)
 *   skipSubprotocolCheck  accept a server that did not select "wamp" (default false)
 *   WebSocket             WebSocket constructor (default globalThis.WebSocket)
 *   onopen(session)       after each WELCOME; may return a Promise (e.g. authenticate):
 *                         subscriptions are (re)sent once it settles
 *   onclose(reason, details)  reason: 'closed' | 'lost' | 'unreachable' | 'unsupported' |
 *                         'protocol-error' | 'reconnect'; details: {code, reason, wasClean,
 *                         willRetry, retriesExhausted}
 *   onreconnecting({attempt, maxRetries, delay})  before waiting for the next attempt
 *   ontrace(direction, text)  every frame: direction 'send' or 'recv', text the exact JSON
 */
class WampSession {
  constructor(url, options = {}) {
    this.url = url;
    this.options = {
      maxRetries: 10,
      retryDelay: 2000,
      skipSubprotocolCheck: false,
      WebSocket: undefined,
      ...options,
    };
    this.onopen = options.onopen ?? null;
    this.onclose = options.onclose ?? null;
    this.onreconnecting = options.onreconnecting ?? null;
    this.ontrace = options.ontrace ?? null;

    /** Session id from the current WELCOME (null when not connected). */
    this.sessionId = null;
    this.serverIdent = null;
    this.protocolVersion = null;
    /** Set by a successful auth on the current connection. */
    this.authenticated = false;
    this.authKey = null;
    this.permissions = null;

    this._prefixes = new PrefixMap();
    this._subs = new Map(); // resolved topic URI -> { topic (as first given), handlers: Set }
    this._calls = new Map(); // call id -> { resolve, reject }
    this._ws = null;
    this._welcomed = false;
    this._ready = false; // welcomed and onopen settled: SUBSCRIBEs go out
    this._sentTopics = new Set(); // topic URIs subscribed on the current connection
    this._pendingAuthKey = undefined;
    this._stopped = true;
    this._closeReason = null;
    this._attempt = 0;
    this._retryTimer = null;
    this._waiters = [];
  }

  /** True between WELCOME and the end of that connection. */
  get connected() {
    return this._welcomed;
  }

  // --- connection ----------------------------------------------------------------------------

  /**
   * Starts connecting (and reconnecting by policy). Resolves with the session at the next
   * WELCOME; rejects when the session gives up (close(), unsupported server, retries exhausted).
   */
  connect() {
    const promise = new Promise((resolve, reject) => {
      if (this._welcomed) resolve(this);
      else this._waiters.push({ resolve, reject });
    });
    promise.catch(() => {}); // callers that do not await must not see an unhandled rejection
    if (this._stopped) {
      this._stopped = false;
      this._attempt = 0;
      if (this._ws === null && this._retryTimer === null) this._open();
      else if (this._closeReason === 'closed') this._closeReason = 'reconnect'; // close() in flight
    }
    return promise;
  }

  /** Closes the connection for good (no reconnect). */
  close(code = 1000, reason = 'closed by client') {
    this._stopped = true;
    this._cancelRetry();
    if (this._ws !== null) {
      this._closeReason = 'closed';
      this._ws.close(code, closeReason(reason));
    } else {
      this._settleWaiters(new Error('closed'));
    }
  }

  /** Drops the current connection (if any) and connects again at once. */
  reconnect() {
    this._stopped = false;
    this._attempt = 0;
    this._cancelRetry();
    if (this._ws !== null) {
      this._closeReason = 'reconnect';
      this._ws.close(1000, 'reconnect');
    } else {
      this._open();
    }
  }

  _open() {
    const WS = this.options.WebSocket ?? globalThis.WebSocket;
    let ws;
    try {
      if (!WS) throw new Error('no WebSocket implementation');
      ws = new WS(this.url, [WAMP_SUBPROTOCOL]);
    } catch (error) {
      // A bad URL or a missing implementation: retrying cannot help.
      this._stopped = true;
      this._emit('onclose', 'unreachable', { error, willRetry: false, retriesExhausted: false });
      this._settleWaiters(error);
      return;
    }
    this._ws = ws;
    this._welcomed = false;
    this._ready = false;
    this._closeReason = null;
    this._sentTopics = new Set();

    ws.onopen = () => {
      if (ws !== this._ws) return;
      if (!this.options.skipSubprotocolCheck && ws.protocol !== WAMP_SUBPROTOCOL) {
        this._closeReason = 'unsupported';
        ws.close(1000, 'server does not speak WAMP');
      }
    };
    ws.onmessage = (ev) => {
      if (ws === this._ws) this._receive(ev.data);
    };
    ws.onerror = () => {}; // a close event always follows
    ws.onclose = (ev) => {
      if (ws === this._ws) this._closed(ev);
    };
  }

  _closed(ev) {
    const wasWelcomed = this._welcomed;
    this._ws = null;
    this._welcomed = false;
    this._ready = false;
    this.sessionId = null;
    this.authenticated = false;
    this._pendingAuthKey = undefined;

    const calls = [...this._calls.values()];
    this._calls.clear();
    for (const c of calls) c.reject(new WampCallError(ERROR_CONNECTION_LOST, 'connection lost'));

    const reason = this._closeReason ?? (wasWelcomed ? 'lost' : 'unreachable');
    this._closeReason = null;
    const { maxRetries } = this.options;
    const permanent = this._stopped || reason === 'closed' || reason === 'unsupported';
    const immediate = reason === 'reconnect';
    const willRetry = !permanent && (immediate || this._attempt < maxRetries);
    const details = {
      code: ev.code,
      reason: ev.reason,
      wasClean: ev.wasClean,
      willRetry,
      retriesExhausted: !permanent && !willRetry,
    };
    this._emit('onclose', reason, details);

    if (!willRetry) {
      this._stopped = true;
      this._settleWaiters(new Error(details.retriesExhausted ? 'retries exhausted' : reason));
      return;
    }
    let delay = 0;
    if (!immediate) {
      this._attempt += 1;
      const rd = this.options.retryDelay;
      delay = typeof rd === 'function' ? rd(this._attempt) : rd;
      this._emit('onreconnecting', { attempt: this._attempt, maxRetries, delay });
    }
    this._retryTimer = setTimeout(() => {
      this._retryTimer = null;
      if (!this._stopped && this._ws === null) this._open();
    }, delay);
  }

  _cancelRetry() {
    if (this._retryTimer !== null) {
      clearTimeout(this._retryTimer);
      this._retryTimer = null;
    }
  }

  _settleWaiters(error) {
    const waiters = this._waiters;
    this._waiters = [];
    for (const w of waiters) {
      if (error) w.reject(error);
      else w.resolve(this);
    }
  }

  _emit(hook, ...args) {
    const fn = this[hook];
    if (typeof fn !== 'function') return undefined;
    try {
      return fn.apply(this, args);
    } catch (error) {
      report(error);
      return undefined;
    }
  }

  _protocolError(why) {
    if (this._ws === null) return;
    this._closeReason = 'protocol-error';
    // Browsers let scripts close only with 1000 or 3000-4999; the reason tells what went wrong.
    this._ws.close(1000, closeReason(`protocol error: ${why}`));
  }

  // --- wire ----------------------------------------------------------------------------------

  _send(message) {
    if (!this._welcomed || this._ws === null || this._ws.readyState !== 1) {
      throw new Error('WAMP session is not connected');
    }
    const text = JSON.stringify(message);
    this._emit('ontrace', 'send', text);
    this._ws.send(text);
  }

  _receive(data) {
    if (typeof data !== 'string') return this._protocolError('binary message');
    this._emit('ontrace', 'recv', data);
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return this._protocolError('invalid JSON');
    }
    if (!Array.isArray(msg) || !Number.isInteger(msg[0])) {
      return this._protocolError('not a WAMP message');
    }
    const type = msg[0];
    if (!this._welcomed && type !== MessageType.WELCOME) {
      return this._protocolError('message before WELCOME');
    }
    switch (type) {
      case MessageType.WELCOME:
        return this._onWelcome(msg);
      case MessageType.CALLRESULT:
      case MessageType.CALLERROR: {
        const call = this._calls.get(msg[1]);
        if (!call) return undefined; // unknown or already settled call id
        this._calls.delete(msg[1]);
        if (type === MessageType.CALLRESULT) return call.resolve(msg.length > 2 ? msg[2] : null);
        const details = msg.length > 4 ? [msg[4]] : [];
        return call.reject(new WampCallError(msg[2], msg[3], ...details));
      }
      case MessageType.EVENT: {
        const topic = this._prefixes.resolve(msg[1]);
        const entry = this._subs.get(topic);
        if (!entry || !this._sentTopics.has(topic)) return undefined;
        for (const handler of [...entry.handlers]) {
          try {
            handler(topic, msg[2]);
          } catch (error) {
            report(error);
          }
        }
        return undefined;
      }
      default:
        return undefined; // not for a WAMP v1 client: ignored
    }
  }

  _onWelcome(msg) {
    if (this._welcomed) return this._protocolError('WELCOME received more than once');
    if (typeof msg[1] !== 'string') return this._protocolError('WELCOME without a session id');
    if (msg.length > 2 && msg[2] !== 1) {
      this._closeReason = 'unsupported';
      this._ws.close(1000, closeReason(`unsupported WAMP version ${JSON.stringify(msg[2])}`));
      return undefined;
    }
    const ws = this._ws;
    this._welcomed = true;
    this._attempt = 0;
    this.sessionId = msg[1];
    this.protocolVersion = msg.length > 2 ? msg[2] : 1;
    this.serverIdent = msg.length > 3 ? msg[3] : null;
    this.authenticated = false;
    this.authKey = null;
    this.permissions = null;

    for (const [prefix, uri] of this._prefixes.entries()) this._send([MessageType.PREFIX, prefix, uri]);
    this._settleWaiters(null);

    let pending;
    try {
      pending = this.onopen ? this.onopen(this) : undefined;
    } catch (error) {
      report(error);
    }
    Promise.resolve(pending)
      .catch(report)
      .then(() => {
        if (ws !== this._ws || !this._welcomed) return;
        this._ready = true;
        for (const uri of this._subs.keys()) this._sendSubscribe(uri);
      });
    return undefined;
  }

  _sendSubscribe(uri) {
    if (this._sentTopics.has(uri)) return;
    this._sentTopics.add(uri);
    this._send([MessageType.SUBSCRIBE, this._subs.get(uri).topic]);
  }

  // --- CURIEs --------------------------------------------------------------------------------

  /** Registers a prefix locally and on the server (now, and again after every reconnect). */
  prefix(prefix, uri) {
    this._prefixes.set(prefix, uri);
    if (this._welcomed) this._send([MessageType.PREFIX, prefix, uri]);
  }

  resolve(curie) {
    return this._prefixes.resolve(curie);
  }

  shrink(uri) {
    return this._prefixes.shrink(uri);
  }

  // --- RPC -----------------------------------------------------------------------------------

  /** Calls a procedure (URI or CURIE). Resolves with the result; rejects with WampCallError. */
  call(procedure, ...args) {
    return new Promise((resolve, reject) => {
      if (typeof procedure !== 'string') throw new TypeError('procedure must be a string');
      if (!this._welcomed) {
        reject(new WampCallError(ERROR_NOT_CONNECTED, 'not connected'));
        return;
      }
      let id;
      do id = newId(); while (this._calls.has(id));
      this._calls.set(id, { resolve, reject });
      try {
        this._send([MessageType.CALL, id, procedure, ...args]);
      } catch (error) {
        this._calls.delete(id);
        reject(error);
      }
    });
  }

  // --- PubSub --------------------------------------------------------------------------------

  /**
   * Adds handler(topicUri, event) for a topic (URI or CURIE). One SUBSCRIBE goes out per topic
   * URI; it is re-sent after a reconnect (once onopen has settled).
   */
  subscribe(topic, handler) {
    if (typeof topic !== 'string') throw new TypeError('topic must be a string');
    if (typeof handler !== 'function') throw new TypeError('handler must be a function');
    const uri = this._prefixes.resolve(topic);
    let entry = this._subs.get(uri);
    if (!entry) {
      entry = { topic, handlers: new Set() };
      this._subs.set(uri, entry);
    }
    entry.handlers.add(handler);
    if (this._ready) this._sendSubscribe(uri);
  }

  /**
   * Removes a handler (or, without one, every handler) of a topic. UNSUBSCRIBE goes out when
   * the last handler is gone. Returns false when the topic had no handlers.
   */
  unsubscribe(topic, handler) {
    const uri = this._prefixes.resolve(topic);
    const entry = this._subs.get(uri);
    if (!entry) return false;
    if (handler !== undefined) {
      if (!entry.handlers.delete(handler)) return false;
      if (entry.handlers.size > 0) return true;
    }
    this._subs.delete(uri);
    if (this._sentTopics.delete(uri) && this._welcomed) {
      this._send([MessageType.UNSUBSCRIBE, entry.topic]);
    }
    return true;
  }

  /**
   * Publishes an event, sending the shortest PUBLISH form:
   *   publish(t, e)                     [7, t, e]
   *   publish(t, e, true|false)         [7, t, e, excludeMe]
   *   publish(t, e, [ids])              [7, t, e, [ids]]
   *   publish(t, e, excl, [ids])        [7, t, e, excl (bool or [ids]; absent -> []), [ids]]
   */
  publish(topic, event, excludeOrExcludeMe, eligible) {
    if (typeof topic !== 'string') throw new TypeError('topic must be a string');
    const exclude = excludeOrExcludeMe ?? undefined;
    if (exclude !== undefined && typeof exclude !== 'boolean' && !isIdList(exclude)) {
      throw new TypeError('exclude must be a boolean or a list of session ids');
    }
    if (eligible != null && !isIdList(eligible)) {
      throw new TypeError('eligible must be a list of session ids');
    }
    const msg = [MessageType.PUBLISH, topic, event === undefined ? null : event];
    if (eligible != null) msg.push(exclude ?? [], eligible);
    else if (exclude !== undefined) msg.push(exclude);
    this._send(msg);
  }

  // --- WAMP-CRA ------------------------------------------------------------------------------

  /** Requests a challenge; resolves with the challenge text (null for anonymous). */
  authreq(authKey, extra) {
    this._pendingAuthKey = authKey ?? null;
    return this.call(URI_AUTHREQ, authKey ?? null, extra ?? null);
  }

  /** Sends the signature; resolves with the granted permissions. */
  async auth(signature) {
    const permissions = await this.call(URI_AUTH, signature ?? null);
    this.authenticated = true;
    this.authKey = this._pendingAuthKey ?? null;
    this.permissions = permissions;
    return permissions;
  }

  /** Signs a challenge (see authSign). */
  authsign(challenge, secret) {
    return authSign(challenge, secret);
  }

  /** authreq, sign, auth in one go; resolves with the permissions. */
  async authenticate(authKey, secret, extra) {
    const challenge = await this.authreq(authKey, extra);
    const signature = challenge == null ? null : await this.authsign(challenge, secret);
    return this.auth(signature);
  }
}

/** Creates a session and starts connecting; returns the session. */
function connect(url, options) {
  const session = new WampSession(url, options);
  session.connect();
  return session;
}

// ---------------------------------------------------------------------------------------------
// AutobahnJS 0.8 API (`ab`), a drop-in for pages written against AutobahnJS 0.8.2
//
// Same names, arguments, frames, hangup codes and reconnect rules as AutobahnJS 0.8.2's
// autobahn.js. One ab.Session per connection (ab.connect makes a new one after each
// reconnect, so the page's onconnect re-authenticates and re-subscribes, as with AutobahnJS).
// Differences, all because WebCrypto is asynchronous and this client needs no when.js or
// CryptoJS:
//   - authsign() and deriveKey() return a Promise of the base64 string, not the string;
//     auth() accepts that Promise as its signature, so `sess.auth(sess.authsign(...))` and the
//     clj-wamp template's code work unchanged.
//   - call() returns a native Promise (with when.js's `otherwise`, `always` and `ensure`);
//     calls still pending when the connection ends are rejected with
//     {uri: 'urn:wamp1js:error#connection-lost', desc: 'connection lost'}.
//   - ab.Session options may carry `WebSocket` (a constructor to use instead of the browser's).
//   - Not provided: ab.launch, ab.getBrowser.

/** A Promise with when.js 2's extra methods, so AutobahnJS-era code keeps working. */
class AbPromise extends Promise {
  otherwise(onRejected) {
    return this.catch(onRejected);
  }

  ensure(onSettled) {
    return this.finally(onSettled);
  }

  always(onSettled) {
    return this.then(onSettled, onSettled);
  }
}

const ab = {};

ab._version = '0.8.2 (wamp1.js)';
ab.version = () => ab._version;
ab._subprotocol = WAMP_SUBPROTOCOL;
ab.browserNotSupportedMessage = 'Browser does not support WebSockets (RFC6455)';

ab.CONNECTION_CLOSED = 0;
ab.CONNECTION_LOST = 1;
ab.CONNECTION_RETRIES_EXCEEDED = 2;
ab.CONNECTION_UNREACHABLE = 3;
ab.CONNECTION_UNSUPPORTED = 4;
ab.CONNECTION_UNREACHABLE_SCHEDULED_RECONNECT = 5;
ab.CONNECTION_LOST_SCHEDULED_RECONNECT = 6;

ab._MESSAGE_TYPEID_WELCOME = MessageType.WELCOME;
ab._MESSAGE_TYPEID_PREFIX = MessageType.PREFIX;
ab._MESSAGE_TYPEID_CALL = MessageType.CALL;
ab._MESSAGE_TYPEID_CALL_RESULT = MessageType.CALLRESULT;
ab._MESSAGE_TYPEID_CALL_ERROR = MessageType.CALLERROR;
ab._MESSAGE_TYPEID_SUBSCRIBE = MessageType.SUBSCRIBE;
ab._MESSAGE_TYPEID_UNSUBSCRIBE = MessageType.UNSUBSCRIBE;
ab._MESSAGE_TYPEID_PUBLISH = MessageType.PUBLISH;
ab._MESSAGE_TYPEID_EVENT = MessageType.EVENT;

ab._debugrpc = false;
ab._debugpubsub = false;
ab._debugws = false;
ab._debugconnect = false;

/** ab.debug(debugWamp, debugWs, debugConnect): console logging of WAMP, frames, reconnects. */
ab.debug = function (debugWamp, debugWs, debugConnect) {
  ab._debugrpc = debugWamp;
  ab._debugpubsub = debugWamp;
  ab._debugws = debugWs;
  ab._debugconnect = debugConnect;
};

ab.log = function (...args) {
  for (const a of args) console.log(a);
};

ab._newid = () => newId(16);

/** A deferred ({promise, resolve, reject}) like when.defer(). */
ab.Deferred = function () {
  let resolve;
  let reject;
  const promise = new AbPromise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
};

/** The WebSocket URL of this page's server: ws(s)://host[:port]/<wsPath or "ws">. */
ab.getServerUrl = function (wsPath, fallbackUrl) {
  const location = root.location;
  if (!location || location.protocol === 'file:') return fallbackUrl || 'ws://127.0.0.1/ws';
  const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
  const port = location.port !== '' ? `:${location.port}` : '';
  return `${scheme}${location.hostname}${port}/${wsPath || 'ws'}`;
};

/** WAMP-CRA key derivation (PBKDF2-SHA256 when extra.salt is set); a Promise of the key. */
ab.deriveKey = function (secret, extra) {
  if (!(extra && extra.salt)) return AbPromise.resolve(secret);
  return AbPromise.resolve(
    deriveKey(secret, {
      salt: extra.salt,
      keylen: extra.keylen || 32,
      iterations: extra.iterations || 10000,
    }),
  );
};

/** AutobahnJS's prefix map: resolve/shrink return null for a non-match unless `pass`. */
ab.PrefixMap = class {
  constructor() {
    this._index = {};
    this._rindex = {};
  }

  get(prefix) {
    return this._index[prefix];
  }

  set(prefix, uri) {
    this._index[prefix] = uri;
    this._rindex[uri] = prefix;
  }

  setDefault(uri) {
    this._index[''] = uri;
    this._rindex[uri] = '';
  }

  remove(prefix) {
    const uri = this._index[prefix];
    if (uri) {
      delete this._index[prefix];
      delete this._rindex[uri];
    }
  }

  resolve(curie, pass) {
    const i = curie.indexOf(':');
    if (i >= 0) {
      const prefix = curie.substring(0, i);
      if (this._index[prefix]) return this._index[prefix] + curie.substring(i + 1);
    }
    return pass === true ? curie : null;
  }

  shrink(uri, pass) {
    for (let i = uri.length; i > 0; i -= 1) {
      const p = this._rindex[uri.substring(0, i)];
      if (p) return `${p}:${uri.substring(i)}`;
    }
    return pass === true ? uri : null;
  }
};

function abConstruct(url, protocols, options) {
  const WS = (options && options.WebSocket) || root.WebSocket || root.MozWebSocket;
  if (!WS) return null;
  return protocols ? new WS(url, protocols) : new WS(url);
}

/**
 * One WAMP session over one WebSocket: onopen() after WELCOME; onclose(code, reason) with
 * CONNECTION_CLOSED (clean close), CONNECTION_LOST (unclean close after the WebSocket opened),
 * CONNECTION_UNREACHABLE (never opened) or CONNECTION_UNSUPPORTED (no WebSocket).
 */
ab.Session = function (wsuri, onopen, onclose, options) {
  const self = this;
  self._wsuri = wsuri;
  self._options = options;
  self._websocket_onopen = onopen;
  self._websocket_onclose = onclose;
  self._websocket = null;
  self._websocket_connected = false;
  self._session_id = null;
  self._wamp_version = null;
  self._server = null;
  self._calls = {};
  self._subscriptions = {};
  self._prefixes = new ab.PrefixMap();
  self._txcnt = 0;
  self._rxcnt = 0;

  const announce = !(options && options.skipSubprotocolAnnounce);
  try {
    self._websocket = abConstruct(wsuri, announce ? [ab._subprotocol] : undefined, options);
  } catch (error) {
    // A malformed URL: the page cannot connect, as when the server is unreachable.
    report(error);
    self._websocket = null;
  }
  if (!self._websocket) {
    if (onclose !== undefined) {
      onclose(ab.CONNECTION_UNSUPPORTED);
      return;
    }
    throw new Error(ab.browserNotSupportedMessage);
  }
  const ws = self._websocket;

  ws.onmessage = (e) => {
    if (ab._debugws) {
      self._rxcnt += 1;
      console.log(`WS Receive ${self._wsuri} [${self._session_id}] #${self._rxcnt}`, e.data);
    }
    let o;
    try {
      o = JSON.parse(e.data);
    } catch {
      report(new Error(`WAMP: a message that is not JSON: ${String(e.data).slice(0, 100)}`));
      return;
    }
    if (!Array.isArray(o)) return;
    if (
      (o[0] === MessageType.CALLRESULT || o[0] === MessageType.CALLERROR) &&
      Object.prototype.hasOwnProperty.call(self._calls, o[1])
    ) {
      const d = self._calls[o[1]];
      delete self._calls[o[1]];
      if (o[0] === MessageType.CALLRESULT) {
        if (ab._debugrpc) console.log('WAMP Call result', d._ab_callobj, o[2]);
        d.resolve(o[2]);
      } else {
        if (ab._debugrpc) console.log('WAMP Call error', d._ab_callobj, o[2], o[3], o[4]);
        d.reject(o.length > 4 ? { uri: o[2], desc: o[3], detail: o[4] } : { uri: o[2], desc: o[3] });
      }
    } else if (o[0] === MessageType.EVENT) {
      const subid = self._prefixes.resolve(o[1], true);
      if (Object.prototype.hasOwnProperty.call(self._subscriptions, subid)) {
        if (ab._debugpubsub) console.log(`WAMP Event ${self._wsuri} [${self._session_id}]`, o[1], o[2]);
        for (const callback of [...self._subscriptions[subid]]) {
          try {
            callback(o[1], o[2]);
          } catch (error) {
            report(error);
          }
        }
      }
    } else if (o[0] === MessageType.WELCOME) {
      if (self._session_id !== null) {
        report(new Error('WAMP protocol error: WELCOME received more than once'));
        return;
      }
      self._session_id = o[1];
      self._wamp_version = o[2];
      self._server = o[3];
      if (ab._debugrpc || ab._debugpubsub) {
        console.log(`WAMP Welcome ${self._wsuri} [${self._session_id}]`, o[2], o[3]);
      }
      if (self._websocket_onopen !== null) self._websocket_onopen();
    }
  };

  ws.onopen = () => {
    if (ws.protocol !== ab._subprotocol) {
      if (ws.protocol === undefined || (self._options && self._options.skipSubprotocolCheck)) {
        if (ab._debugws) console.log(`WS Warning ${self._wsuri}: WAMP subprotocol check skipped`);
      } else {
        ws.close(1000, 'server does not speak WAMP');
        // Uncaught, as in AutobahnJS: the page's console shows it.
        throw new Error(`server does not speak WAMP (but '${ws.protocol}' !)`);
      }
    }
    if (ab._debugws) console.log(`WAMP Connect ${self._wsuri}`, ws.protocol);
    self._websocket_connected = true;
  };

  ws.onerror = () => {};

  ws.onclose = (e) => {
    if (ab._debugws) {
      const what = self._websocket_connected ? 'lost' : 'could not connect';
      console.log(
        `Autobahn connection to ${self._wsuri} ${what} (code ${e.code}, reason '${e.reason}', wasClean ${e.wasClean}).`,
      );
    }
    const calls = Object.values(self._calls);
    self._calls = {};
    for (const d of calls) d.reject({ uri: ERROR_CONNECTION_LOST, desc: 'connection lost' });
    const hangup = self._websocket_onclose;
    const connected = self._websocket_connected;
    self._websocket_connected = false;
    self._wsuri = null;
    self._websocket_onopen = null;
    self._websocket_onclose = null;
    self._websocket = null;
    if (hangup !== undefined && hangup !== null) {
      if (!connected) hangup(ab.CONNECTION_UNREACHABLE);
      else if (e.wasClean) hangup(ab.CONNECTION_CLOSED, `WS-${e.code}: ${e.reason}`);
      else hangup(ab.CONNECTION_LOST);
    }
  };
};

ab.Session.prototype._send = function (msg) {
  if (!this._websocket_connected) throw new Error('Autobahn not connected');
  const text = JSON.stringify(msg);
  this._websocket.send(text);
  this._txcnt += 1;
  if (ab._debugws) console.log(`WS Send ${this._wsuri} [${this._session_id}] #${this._txcnt}`, text);
};

/** Closes the session cleanly (the hangup callback sees CONNECTION_CLOSED: no reconnect). */
ab.Session.prototype.close = function () {
  if (this._websocket_connected) this._websocket.close();
};

ab.Session.prototype.sessionid = function () {
  return this._session_id;
};

ab.Session.prototype.wsuri = function () {
  return this._wsuri;
};

ab.Session.prototype.shrink = function (uri, pass) {
  return this._prefixes.shrink(uri, pass === undefined ? true : pass);
};

ab.Session.prototype.resolve = function (curie, pass) {
  return this._prefixes.resolve(curie, pass === undefined ? true : pass);
};

/** Registers a prefix here and on the server (PREFIX goes out at once). */
ab.Session.prototype.prefix = function (prefix, uri) {
  this._prefixes.set(prefix, uri);
  if (ab._debugrpc || ab._debugpubsub) console.log('WAMP Prefix', prefix, uri);
  this._send([MessageType.PREFIX, prefix, uri]);
};

/** call(procedure, ...args): a Promise of the result; rejects with {uri, desc[, detail]}. */
ab.Session.prototype.call = function (...args) {
  const d = ab.Deferred();
  let callid;
  do callid = newId(16); while (Object.prototype.hasOwnProperty.call(this._calls, callid));
  const obj = [MessageType.CALL, callid, this._prefixes.shrink(args[0], true), ...args.slice(1)];
  this._send(obj);
  this._calls[callid] = d;
  if (ab._debugrpc) d._ab_callobj = obj;
  return d.promise;
};

/** subscribe(topic, callback(topicUri, event)): SUBSCRIBE goes out for a topic's first callback. */
ab.Session.prototype.subscribe = function (topicuri, callback) {
  const rtopicuri = this._prefixes.resolve(topicuri, true);
  if (!Object.prototype.hasOwnProperty.call(this._subscriptions, rtopicuri)) {
    if (ab._debugpubsub) console.log('WAMP Subscribe', topicuri);
    this._send([MessageType.SUBSCRIBE, topicuri]);
    this._subscriptions[rtopicuri] = [];
  }
  if (this._subscriptions[rtopicuri].indexOf(callback) !== -1) {
    throw new Error(`callback ${callback} already subscribed for topic ${rtopicuri}`);
  }
  this._subscriptions[rtopicuri].push(callback);
};

/** unsubscribe(topic[, callback]): UNSUBSCRIBE goes out when the topic's last callback goes. */
ab.Session.prototype.unsubscribe = function (topicuri, callback) {
  const rtopicuri = this._prefixes.resolve(topicuri, true);
  if (!Object.prototype.hasOwnProperty.call(this._subscriptions, rtopicuri)) {
    throw new Error(`not subscribed to topic ${rtopicuri}`);
  }
  if (callback !== undefined) {
    const idx = this._subscriptions[rtopicuri].indexOf(callback);
    if (idx === -1) throw new Error(`no callback ${callback} subscribed on topic ${rtopicuri}`);
    this._subscriptions[rtopicuri].splice(idx, 1);
  } else {
    this._subscriptions[rtopicuri] = [];
  }
  if (this._subscriptions[rtopicuri].length === 0) {
    delete this._subscriptions[rtopicuri];
    if (ab._debugpubsub) console.log('WAMP Unsubscribe', topicuri);
    this._send([MessageType.UNSUBSCRIBE, topicuri]);
  }
};

/**
 * publish(topic, event), publish(topic, event, excludeMe), publish(topic, event, [exclude]),
 * publish(topic, event, [exclude], [eligible]): the PUBLISH forms of AutobahnJS 0.8.
 */
ab.Session.prototype.publish = function (...args) {
  const [topicuri, event] = args;
  let msg;
  if (args.length > 3) {
    if (!Array.isArray(args[2]) || !Array.isArray(args[3])) {
      throw new Error('invalid argument type(s)');
    }
    msg = [MessageType.PUBLISH, topicuri, event, args[2], args[3]];
  } else if (args.length > 2) {
    if (typeof args[2] !== 'boolean' && !Array.isArray(args[2])) {
      throw new Error('invalid argument type(s)');
    }
    msg = [MessageType.PUBLISH, topicuri, event, args[2]];
  } else {
    msg = [MessageType.PUBLISH, topicuri, event];
  }
  if (ab._debugpubsub) console.log('WAMP Publish', msg);
  this._send(msg);
};

/** authreq(authKey, extra): a Promise of the challenge. */
ab.Session.prototype.authreq = function (appkey, extra) {
  return this.call(URI_AUTHREQ, appkey, extra);
};

/**
 * authsign(challenge, secret): a Promise of base64(HMAC-SHA256(key = secret, challenge)),
 * as AutobahnJS (no key derivation here: derive with ab.deriveKey first for salted users).
 * Rejects, with an Error saying why, where WebCrypto is missing.
 */
ab.Session.prototype.authsign = function (challenge, secret) {
  const signed = AbPromise.resolve().then(() => hmacSha256Base64(secret || '', challenge));
  signed.catch((error) => report(error));
  return signed;
};

/** auth(signature): a Promise of the permissions; the signature may be authsign's Promise. */
ab.Session.prototype.auth = function (signature) {
  if (signature && typeof signature.then === 'function') {
    return AbPromise.resolve(signature).then((s) => this.call(URI_AUTH, s));
  }
  return this.call(URI_AUTH, signature);
};

/** One connection attempt of `peer` (ab.connect's state), and its reconnect rules. */
ab._connect = function (peer) {
  const sess = new ab.Session(
    peer.wsuri,
    () => {
      peer.connects += 1;
      peer.retryCount = 0;
      peer.onConnect(sess);
    },
    (code, reason) => {
      const schedule = (scheduledCode, message, what) => {
        const stop = peer.onHangup(scheduledCode, message, {
          delay: peer.options.retryDelay,
          retries: peer.retryCount,
          maxretries: peer.options.maxRetries,
        });
        if (!stop) {
          if (ab._debugconnect) console.log(`Connection ${what} - retrying (${peer.retryCount}) ..`);
          root.setTimeout(() => ab._connect(peer), peer.options.retryDelay);
        } else {
          if (ab._debugconnect) console.log(`Connection ${what} - retrying stopped by app`);
          peer.onHangup(
            ab.CONNECTION_RETRIES_EXCEEDED,
            what === 'lost' ? 'Connection lost.' : 'Number of connection retries exceeded.',
          );
        }
      };
      switch (code) {
        case ab.CONNECTION_CLOSED:
          peer.onHangup(code, `Connection was closed properly [${reason}]`);
          break;
        case ab.CONNECTION_UNSUPPORTED:
          peer.onHangup(code, 'Browser does not support WebSocket.');
          break;
        case ab.CONNECTION_UNREACHABLE:
          peer.retryCount += 1;
          if (peer.connects === 0) {
            peer.onHangup(code, 'Connection could not be established.');
          } else if (peer.retryCount <= peer.options.maxRetries) {
            schedule(
              ab.CONNECTION_UNREACHABLE_SCHEDULED_RECONNECT,
              `Connection unreachable - scheduled reconnect to occur in ${peer.options.retryDelay / 1000} second(s) - attempt ${peer.retryCount} of ${peer.options.maxRetries}.`,
              'unreachable',
            );
          } else {
            peer.onHangup(ab.CONNECTION_RETRIES_EXCEEDED, 'Number of connection retries exceeded.');
          }
          break;
        case ab.CONNECTION_LOST:
          peer.retryCount += 1;
          if (peer.retryCount <= peer.options.maxRetries) {
            schedule(
              ab.CONNECTION_LOST_SCHEDULED_RECONNECT,
              `Connection lost - scheduled ${peer.retryCount}th reconnect to occur in ${peer.options.retryDelay / 1000} second(s).`,
              'lost',
            );
          } else {
            peer.onHangup(ab.CONNECTION_RETRIES_EXCEEDED, 'Connection lost.');
          }
          break;
        default:
          throw new Error('unhandled close code in ab._connect');
      }
    },
    peer.options,
  );
};

/**
 * ab.connect(wsuri, onconnect(session), onhangup(code, reason, detail), options): connects,
 * and reconnects after a lost connection (an unclean close) or an unreachable server once it
 * was connected, up to options.maxRetries (default 10) times, options.retryDelay ms apart
 * (default 5000). A clean close (the server's or the page's) ends it: CONNECTION_CLOSED.
 * onhangup returning true stops the retries. Other options: skipSubprotocolCheck,
 * skipSubprotocolAnnounce.
 */
ab.connect = function (wsuri, onconnect, onhangup, options) {
  const peer = { wsuri, options: options || {} };
  if (peer.options.retryDelay === undefined) peer.options.retryDelay = 5000;
  if (peer.options.maxRetries === undefined) peer.options.maxRetries = 10;
  if (peer.options.skipSubprotocolCheck === undefined) peer.options.skipSubprotocolCheck = false;
  if (peer.options.skipSubprotocolAnnounce === undefined) {
    peer.options.skipSubprotocolAnnounce = false;
  }
  if (!onconnect) throw new Error('onConnect handler required!');
  peer.onConnect = onconnect;
  peer.onHangup =
    onhangup ||
    ((code, reason, detail) => {
      if (ab._debugconnect) console.log(code, reason, detail);
    });
  peer.connects = 0;
  peer.retryCount = 0;
  ab._connect(peer);
};

// ---------------------------------------------------------------------------------------------
// Globals

root.wamp1 = Object.freeze({
  WAMP_SUBPROTOCOL,
  MessageType,
  URI_AUTHREQ,
  URI_AUTH,
  ERROR_NOT_CONNECTED,
  ERROR_CONNECTION_LOST,
  WampCallError,
  PrefixMap,
  newId,
  hmacSha256Base64,
  deriveKey,
  authSign,
  WampSession,
  connect,
  ab,
});
// A page that also loads the real AutobahnJS keeps it.
if (root.ab === undefined) root.ab = ab;
})(typeof globalThis !== 'undefined' ? globalThis : this);
