#!/usr/bin/env node
// wamp.io 0.0.4 (npm, Node WAMP v1 server) serving the tutorial's procedures and topic, for the
// interop tests of our client (tests/tests/wampio_server.rs) and of wamp-cli.
//
//   node wampio_server.js --port N [--lifetime S] [--debug]
//
// Prints "READY <port>" on stdout once listening (--port 0 picks a free port). Stops on
// SIGTERM/SIGINT, after --lifetime seconds (default 300), and when its parent process goes away.
// --debug logs every frame in and out on stderr as "[conn N] RX <json>" / "[conn N] TX <json>".
//
// WHAT IT EXPOSES (ws://127.0.0.1:<port>/ws, any or no subprotocol: the `ws` server selects the
// first one the client offers)
//   RPC http://wamptutorial/rpc#echo      -> its first argument (null without arguments)
//   RPC http://wamptutorial/rpc#add       -> sum of the arguments; a non-number is an error
//   RPC http://wamptutorial/rpc#throw     -> always fails (Error("An exception"))
//   RPC http://wamptutorial/rpc#slowecho  -> its first argument, answered 500 ms later
//   any other procedure                   -> fails (Error("no such procedure <uri>"))
//   topic: any (wamp.io relays every topic)
// wamp.io sends every failure as [4, id, "http://autobahn.tavendo.de/error#generic",
// String(err)], i.e. "Error: An exception". It resolves no CURIE (its prefixes.resolve is a
// TODO), so procedures here are matched by full URI only.
//
// Compatibility shim (wampio_compat.js, in memory, nothing installed is modified): wamp.io's
// Server inherits from `process.EventEmitter`, which Node removed long ago (undefined on
// Node 20), so require('wamp.io') throws; it is defined as events.EventEmitter first.
'use strict';

const { shimEventEmitter } = require('./wampio_compat');

shimEventEmitter();
const { WebSocketServer } = require('ws');
const wamp = require('wamp.io');

const RPC = 'http://wamptutorial/rpc#';

function parseArgs(argv) {
  const out = { port: null, lifetime: 300, debug: false, bind: '127.0.0.1' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--port') out.port = Number(argv[++i]);
    else if (a === '--lifetime') out.lifetime = Number(argv[++i]);
    else if (a === '--bind') out.bind = argv[++i];
    else if (a === '--debug') out.debug = true;
    else {
      process.stderr.write(`wampio_server.js: unknown argument ${a}\n`);
      process.exit(2);
    }
  }
  if (!Number.isInteger(out.port) || out.port < 0) {
    process.stderr.write('usage: node wampio_server.js --port N [--lifetime S] [--debug]\n');
    process.exit(2);
  }
  return out;
}

const args = parseArgs(process.argv.slice(2));
const log = (line) => process.stderr.write(`${new Date().toISOString()} ${line}\n`);

const wss = new WebSocketServer({ host: args.bind, port: args.port, path: '/ws' });

let connections = 0;
if (args.debug) {
  // registered before wamp.io's own listener: wraps send() before the WELCOME goes out
  wss.on('connection', (socket) => {
    const conn = `conn ${++connections}`;
    socket.on('message', (data) => log(`[${conn}] RX ${data}`));
    socket.on('close', (code, reason) => log(`[${conn}] closed ${code} ${reason}`));
    const send = socket.send.bind(socket);
    socket.send = (msg, ...rest) => {
      log(`[${conn}] TX ${msg}`);
      return send(msg, ...rest);
    };
  });
}

const app = wamp.attach(wss);

app.on('call', (procUri, callArgs, cb) => {
  switch (procUri) {
    case RPC + 'echo':
      cb(null, callArgs.length ? callArgs[0] : null);
      break;
    case RPC + 'add': {
      let total = 0;
      for (let i = 0; i < callArgs.length; i++) {
        if (typeof callArgs[i] !== 'number') {
          cb(new Error(`add: argument ${i} is not a number`));
          return;
        }
        total += callArgs[i];
      }
      cb(null, total);
      break;
    }
    case RPC + 'throw':
      cb(new Error('An exception'));
      break;
    case RPC + 'slowecho': {
      // wamp.io keeps the call id and the callback in implicit globals (sloppy-mode
      // assignments in lib/handlers.js), so an answer given later goes out under the id of
      // the latest CALL: this procedure shows it.
      const value = callArgs.length ? callArgs[0] : null;
      setTimeout(() => cb(null, value), 500);
      break;
    }
    default:
      cb(new Error(`no such procedure ${procUri}`));
  }
});

wss.on('listening', () => {
  process.stdout.write(`READY ${wss.address().port}\n`);
});
wss.on('error', (err) => {
  process.stderr.write(`wampio_server.js: ${err.message}\n`);
  process.exit(1);
});

function stop() {
  for (const c of wss.clients) c.terminate();
  wss.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
}

process.on('SIGTERM', stop);
process.on('SIGINT', stop);
if (args.lifetime > 0) setTimeout(stop, args.lifetime * 1000).unref();
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) stop();
}, 1000).unref();
