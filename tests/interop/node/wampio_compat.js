// In-memory compatibility shims that make wamp.io 0.0.4 (written for Node 0.x and ws 0.4) load
// and run on Node 20 with ws 8. Nothing installed is modified. See COMPATIBILITY.md.
'use strict';

const events = require('events');
const path = require('path');

/**
 * wamp.io's lib/server.js does `Server.prototype.__proto__ = process.EventEmitter.prototype`.
 * `process.EventEmitter` is long gone (undefined on Node 20), so `require('wamp.io')` itself
 * throws "Cannot read properties of undefined (reading 'prototype')". Define it first.
 */
function shimEventEmitter() {
  if (typeof process.EventEmitter !== 'function') process.EventEmitter = events.EventEmitter;
}

/**
 * wamp.io's lib/client.js calls `new WebSocket(uri, {protocol: 'wamp'})`, the ws 0.4 way of
 * offering a subprotocol; ws 8 reads that object as options and offers none. Replace the `ws`
 * export in the module cache (before wamp.io is loaded) by a subclass that turns
 * `{protocol: P}` into the subprotocol list [P] when `fixProtocol` is true, and calls
 * `onFrame(text)` for every message received.
 */
function shimWs({ fixProtocol, onFrame }) {
  const wsPath = require.resolve('ws');
  const WebSocket = require('ws');
  class CompatWebSocket extends WebSocket {
    constructor(address, protocols, options) {
      if (fixProtocol && protocols && typeof protocols === 'object' && !Array.isArray(protocols)
          && typeof protocols.protocol === 'string') {
        const { protocol, ...rest } = protocols;
        super(address, [protocol], rest);
      } else {
        super(address, protocols, options);
      }
      if (onFrame) this.on('message', (data) => onFrame(String(data)));
    }
  }
  require.cache[wsPath].exports = CompatWebSocket;
  // wamp.io must load this very file for the wrapper to reach it
  const seen = require.resolve('ws', { paths: [path.dirname(require.resolve('wamp.io'))] });
  if (seen !== wsPath) throw new Error(`wamp.io would load ${seen}, not ${wsPath}`);
  return CompatWebSocket;
}

module.exports = { shimEventEmitter, shimWs };
