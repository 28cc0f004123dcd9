#!/usr/bin/env python3
"""AutobahnPython 0.8.15 WAMP v1 reference server for the interop tests.

Run with the interop virtualenv's Python (see setup.sh)::

    "$VENV/bin/python" ab_server.py --port 9001 [--default-prefixes] [--debug]
    "$VENV/bin/python" ab_server.py --port 9443 --tls-cert cert.pem --tls-key key.pem   (wss://)

Once listening it prints ``READY <port>`` on stdout (flushed). It stops on SIGTERM/SIGINT, after
``--lifetime`` seconds if given, and when its parent process goes away (unless
``--no-exit-with-parent``).

WHAT IT EXPOSES
===============
Endpoint: ``ws://127.0.0.1:<port>/ws`` (``--bind``, ``--path``; another path gets HTTP 404),
subprotocol ``wamp`` (Autobahn refuses a client that does not offer it: HTTP 400).
WELCOME carries ``Autobahn/0.8.15`` as server ident.

Server protocol: ``WampCraServerProtocol`` with anonymous authentication allowed (Autobahn's
default) and no auth timeout (``--auth-timeout`` to set one).

Every session, authenticated or not (registered in ``onSessionOpen``):
  - RPC ``http://api.wamp.ws/procedure#authreq`` and ``#auth`` (WAMP-CRA, Autobahn's own)
  - RPC ``http://wamptutorial/rpc#echo``  -> returns its first argument (null without arguments)
  - RPC ``http://wamptutorial/rpc#add``   -> sum of all arguments (ints and floats; no arguments
    gives 0); a non-number (bools included) fails with
    ``http://wamptutorial/error#invalid-argument`` / ``add: argument <i> is not a number``
  - RPC ``http://wamptutorial/rpc#throw`` -> always fails with
    ``http://wamptutorial/error#throw`` / ``An exception`` (no error details)
  - Topic ``http://wamptutorial/event#chat``: subscribe and publish, events relayed as-is
    (exact URI only, no prefix matching).
After successful WAMP-CRA authentication (``onAuthenticated``), additionally:
  - RPC ``http://wamptutorial/rpc#whoami`` -> the authenticated auth key (null for anonymous)
Not registered anywhere: ``http://wamptutorial/rpc#ping`` (Autobahn answers unknown procedures
with ``http://api.wamp.ws/error#NoSuchRPCEndpoint`` / ``No RPC endpoint registered for <uri>.``).

WAMP-CRA users:
  - ``guest``  : plain secret ``secret-password``
  - ``salted`` : password ``secret``, stored salted: the server keeps
    ``deriveKey("secret", {"salt": "RANDOM SALT", "keylen": 32, "iterations": 1000})``
    and sends that ``authextra`` in the challenge.
Both get the same permissions (the auth result):
  ``{"rpc": [{"uri": ".../rpc#echo", "call": true}, ... add, throw, whoami],
     "pubsub": [{"uri": "http://wamptutorial/event#chat", "prefix": false, "pub": true,
                 "sub": true}]}``

``--default-prefixes`` (off by default, an extension Autobahn does not have): every session
starts with the prefixes ``rpc`` -> ``http://wamptutorial/rpc#`` and ``event`` ->
``http://wamptutorial/event#``, like the project's tutorial server (WAMP1.md section 8).

Autobahn behaviours worth knowing (all unchanged here): a publisher is excluded from its own
event unless PUBLISH element 3 is ``false`` (a ``null`` there keeps the exclusion); CALLERROR
error URIs are shrunk with the session's prefixes; unknown procedures give ``#NoSuchRPCEndpoint``.
"""

from __future__ import annotations

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

try:
    import ab_compat  # noqa: F401  (must be imported before autobahn)
except ImportError as exc:  # pragma: no cover - environment problem
    sys.stderr.write(
        "ab_server.py: cannot import Autobahn/Twisted (%s).\n"
        "Run tests/interop/python/setup.sh and use the virtualenv's python.\n" % exc
    )
    sys.exit(2)

from twisted.internet import reactor, task  # noqa: E402
from twisted.python import log  # noqa: E402

from autobahn.twisted.websocket import listenWS  # noqa: E402
from autobahn.websocket import http  # noqa: E402
from autobahn.wamp1.protocol import (  # noqa: E402
    WampCraProtocol,
    WampCraServerProtocol,
    WampServerFactory,
)

RPC_BASE = "http://wamptutorial/rpc#"
EVENT_BASE = "http://wamptutorial/event#"
ERROR_BASE = "http://wamptutorial/error#"
CHAT_TOPIC = EVENT_BASE + "chat"

SALTED_AUTHEXTRA = {"salt": "RANDOM SALT", "keylen": 32, "iterations": 1000}

#: auth key -> (secret as stored by the server, authextra sent in the challenge or None)
USERS = {
    "guest": ("secret-password", None),
    "salted": (WampCraProtocol.deriveKey("secret", SALTED_AUTHEXTRA), SALTED_AUTHEXTRA),
}

PERMISSIONS = {
    "rpc": [{"uri": RPC_BASE + p, "call": True} for p in ("echo", "add", "throw", "whoami")],
    "pubsub": [{"uri": CHAT_TOPIC, "prefix": False, "pub": True, "sub": True}],
}


class TutorialServerProtocol(WampCraServerProtocol):
    clientAuthAllowAnonymous = True
    clientAuthTimeout = 0

    # --- handshake ---------------------------------------------------------------------

    def onConnect(self, connectionRequest):
        want = self.factory.ws_path
        if want and connectionRequest.path != want:
            raise http.HttpException(http.NOT_FOUND[0],
                                     "no WAMP endpoint at %s (use %s)" % (connectionRequest.path, want))
        return WampCraServerProtocol.onConnect(self, connectionRequest)

    # --- session -----------------------------------------------------------------------

    def onSessionOpen(self):
        # registers authreq/auth and initialises the auth state
        WampCraServerProtocol.onSessionOpen(self)
        if self.factory.default_prefixes:
            self.prefixes.set("rpc", RPC_BASE)
            self.prefixes.set("event", EVENT_BASE)
        self.registerMethodForRpc(RPC_BASE + "echo", self, TutorialServerProtocol.rpc_echo)
        self.registerMethodForRpc(RPC_BASE + "add", self, TutorialServerProtocol.rpc_add)
        self.registerMethodForRpc(RPC_BASE + "throw", self, TutorialServerProtocol.rpc_throw)
        self.registerForPubSub(CHAT_TOPIC)
        self._authKey = None
        if self.factory.debugApp:
            log.msg("session %s opened" % self.session_id)

    # --- WAMP-CRA ----------------------------------------------------------------------

    def getAuthSecret(self, authKey):
        user = USERS.get(authKey)
        return user[0] if user else None

    def getAuthPermissions(self, authKey, authExtra):
        res = {"permissions": PERMISSIONS}
        user = USERS.get(authKey)
        if user and user[1] is not None:
            res["authextra"] = user[1]
        return res

    def onAuthenticated(self, authKey, permissions):
        self._authKey = authKey
        self.registerMethodForRpc(RPC_BASE + "whoami", self, TutorialServerProtocol.rpc_whoami)
        if self.factory.debugApp:
            log.msg("session %s authenticated as %r" % (self.session_id, authKey))

    # --- procedures --------------------------------------------------------------------

    def rpc_echo(self, *args):
        return args[0] if args else None

    def rpc_add(self, *args):
        total = 0
        for i, a in enumerate(args):
            if isinstance(a, bool) or not isinstance(a, (int, float)):
                raise Exception(ERROR_BASE + "invalid-argument",
                                "add: argument %d is not a number" % i)
            total += a
        return total

    def rpc_throw(self, *args):
        raise Exception(ERROR_BASE + "throw", "An exception")

    def rpc_whoami(self, *args):
        return self._authKey


class TutorialServerFactory(WampServerFactory):
    protocol = TutorialServerProtocol


def _watch_parent(ppid: int) -> None:
    if os.getppid() != ppid:
        log.msg("parent process %d went away: stopping" % ppid)
        if reactor.running:
            reactor.stop()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, required=True, help="TCP port to listen on")
    ap.add_argument("--bind", default="127.0.0.1", help="interface (default 127.0.0.1)")
    ap.add_argument("--path", default="/ws",
                    help="WebSocket path to accept (default /ws; '' accepts any path)")
    ap.add_argument("--default-prefixes", action="store_true",
                    help="pre-register prefixes rpc and event in every session")
    ap.add_argument("--auth-timeout", type=float, default=0,
                    help="WAMP-CRA client auth timeout in seconds (default 0 = none)")
    ap.add_argument("--lifetime", type=float, default=0,
                    help="stop after this many seconds (default 0 = run until killed)")
    ap.add_argument("--no-exit-with-parent", action="store_true",
                    help="keep running when the parent process exits")
    ap.add_argument("--debug", action="store_true", help="log WAMP traffic to stderr")
    ap.add_argument("--tls-cert", help="PEM certificate: serve wss:// (needs --tls-key)")
    ap.add_argument("--tls-key", help="PEM private key of --tls-cert")
    args = ap.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        ap.error("--tls-cert and --tls-key go together")

    log.startLogging(sys.stderr, setStdout=False)

    scheme = "wss" if args.tls_cert else "ws"
    url = "%s://%s:%d%s" % (scheme, args.bind, args.port, args.path or "/")
    factory = TutorialServerFactory(url, debugWamp=args.debug, debugApp=args.debug)
    factory.ws_path = args.path
    factory.default_prefixes = args.default_prefixes
    TutorialServerProtocol.clientAuthTimeout = args.auth_timeout

    try:
        if args.tls_cert:
            # Twisted's TLS server (pyOpenSSL) with the given certificate and key.
            from twisted.internet import ssl
            tls = ssl.DefaultOpenSSLContextFactory(args.tls_key, args.tls_cert)
            port = listenWS(factory, tls, interface=args.bind)
        else:
            port = listenWS(factory, interface=args.bind)
    except Exception as exc:
        sys.stderr.write("ab_server.py: cannot listen on %s:%d: %s\n" % (args.bind, args.port, exc))
        return 1

    actual = port.getHost().port
    if args.lifetime > 0:
        reactor.callLater(args.lifetime, reactor.stop)
    if not args.no_exit_with_parent:
        task.LoopingCall(_watch_parent, os.getppid()).start(1.0, now=False)

    def ready():
        sys.stdout.write("READY %d\n" % actual)
        sys.stdout.flush()

    reactor.callWhenRunning(ready)
    reactor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
