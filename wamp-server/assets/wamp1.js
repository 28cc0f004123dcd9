// wamp1.js: a small, dependency-free WAMP v1 client (ES module).
//
// Wire format: one JSON array per WebSocket text frame, subprotocol "wamp".
// Authentication: WAMP-CRA (HMAC-SHA256, optional PBKDF2 key derivation) with WebCrypto,
// which browsers offer only in secure contexts (https://, http://localhost, http://127.0.0.1).
//
//   import { WampSession } from './wamp1.js';
//   const session = new WampSession('ws://localhost:8080/ws', {
//     onopen: async (s) => { await s.authenticate('guest', 'secret-password'); },
//   });
//   session.prefix('rpc', 'http://wamptutorial/rpc#');
//   session.subscribe('event:chat', (topic, event) => console.log(topic, event));
//   await session.connect();
//   console.log(await session.call('rpc:echo', 'test'));

export const WAMP_SUBPROTOCOL = 'wamp';

/** Message type ids of WAMP v1. */
export const MessageType = Object.freeze({
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

export const URI_AUTHREQ = 'http://api.wamp.ws/procedure#authreq';
export const URI_AUTH = 'http://api.wamp.ws/procedure#auth';

/** Client-side error URIs (never sent on the wire). */
export const ERROR_NOT_CONNECTED = 'urn:wamp1js:error#not-connected';
export const ERROR_CONNECTION_LOST = 'urn:wamp1js:error#connection-lost';

/** The rejection value of `call()`: an Error with `uri`, `desc` and (when sent) `details`. */
export class WampCallError extends Error {
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
export class PrefixMap {
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
export function newId(length = 16) {
  const bytes = new Uint8Array(length);
  globalThis.crypto.getRandomValues(bytes);
  let id = '';
  for (const b of bytes) id += ID_ALPHABET[b & 63];
  return id;
}

function subtle() {
  const s = globalThis.crypto && globalThis.crypto.subtle;
  if (!s) {
    throw new Error(
      'WebCrypto (crypto.subtle) is unavailable: serve the page from a secure context ' +
        '(https://, http://localhost or http://127.0.0.1)',
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
export async function hmacSha256Base64(key, message) {
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
export async function deriveKey(secret, authextra) {
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
export async function authSign(challenge, secret) {
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
export class WampSession {
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
export function connect(url, options) {
  const session = new WampSession(url, options);
  session.connect();
  return session;
}

export default WampSession;
