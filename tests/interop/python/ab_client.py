#!/usr/bin/env python3
"""AutobahnPython 0.8.15 WAMP v1 client: interop scenario runner.

    "$VENV/bin/python" ab_client.py --url ws://127.0.0.1:PORT/ws [--profile spec|autobahn] SCENARIO
    "$VENV/bin/python" ab_client.py --url wss://localhost:PORT/ws --ca-file ca.pem SCENARIO
    "$VENV/bin/python" ab_client.py --list

Each run prints exactly one JSON line on stdout::

    {"scenario": ..., "profile": ..., "ok": true|false, "observations": {...}, "deviations": [...]}

and exits 0 when everything matched, 1 when something deviated (each deviation is also printed
on stderr, naming the check, what was expected and what came back), 3 when the scenario could
not run to the end (connection refused or closed, no answer in time), 2 on bad usage.

Profiles say what to expect where WAMP v1 servers legitimately differ:
  spec      (default) the project's tutorial server, WAMP1.md sections 4, 5, 6 and 8.
  autobahn  ab_server.py (AutobahnPython 0.8.15 semantics, see that file's header).

Connections are made with Autobahn's own ``WampCraClientProtocol`` (its WebSocket handshake,
framing and WAMP message parsing); scenarios use Autobahn's API (``call``, ``prefix``,
``subscribe``, ``publish``, ``authenticate``) where it says what is being tested and send raw
WAMP messages where a particular wire form is the subject.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import re
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

try:
    import ab_compat  # noqa: F401  (must be imported before autobahn)
except ImportError as exc:  # pragma: no cover - environment problem
    sys.stderr.write(
        "ab_client.py: cannot import Autobahn/Twisted (%s).\n"
        "Run tests/interop/python/setup.sh and use the virtualenv's python.\n" % exc
    )
    sys.exit(2)

from twisted.internet import defer, reactor, task  # noqa: E402
from twisted.internet.defer import Deferred, ensureDeferred  # noqa: E402

from autobahn.twisted.websocket import connectWS  # noqa: E402
from autobahn.util import newid  # noqa: E402
from autobahn.wamp1.protocol import (  # noqa: E402
    WampClientFactory,
    WampCraClientProtocol,
    WampCraProtocol,
)

# ----------------------------------------------------------------------------------------------
# constants and expectations

ERR = "http://api.wamp.ws/error#"
PROC = "http://api.wamp.ws/procedure#"
RPC = "http://wamptutorial/rpc#"
EVENT = "http://wamptutorial/event#"
CHAT = EVENT + "chat"
SESSION_ID_RE = re.compile(r"^[A-Za-z0-9_-]{16}$")

#: What each profile expects. ``None`` for a description means "not checked".
PROFILES = {
    "spec": {
        "notfound": (ERR + "notfound", lambda uri: "not found error"),
        "throw": (ERR + "internal", "internal error", ("present", "An exception")),
        "ping": (ERR + "unauthorized", "unauthorized"),
        "whoami_unauth": (ERR + "unauthorized", "unauthorized"),
        # PUBLISH [7,t,e] and [7,t,e,null]: does the (subscribed) publisher get its event?
        "publisher_receives_by_default": True,
        "error_uri_shrunk": False,
        "cra_desc": {
            "already-authenticated": "already authenticated",
            "authentication-already-requested":
                "authentication request already issued - authentication pending",
            "no-such-authkey": lambda key: "authentication key does not exist",
            "no-authentication-requested": "no authentication previously requested",
            "invalid-signature": "signature for authentication request is invalid",
        },
        "swapped_signature_accepted": True,
        "anonymous": "any",
    },
    "autobahn": {
        "notfound": (ERR + "NoSuchRPCEndpoint",
                     lambda uri: "No RPC endpoint registered for %s." % uri),
        "throw": ("http://wamptutorial/error#throw", "An exception", ("absent", None)),
        "ping": (ERR + "NoSuchRPCEndpoint", None),
        "whoami_unauth": (ERR + "NoSuchRPCEndpoint", None),
        "publisher_receives_by_default": False,
        "error_uri_shrunk": True,
        "cra_desc": {
            "already-authenticated": "already authenticated",
            "authentication-already-requested":
                "authentication request already issues - authentication pending",
            "no-such-authkey": lambda key: "authentication key '%s' does not exist." % key,
            "no-authentication-requested": "no authentication previously requested",
            "invalid-signature": "signature for authentication request is invalid",
        },
        "swapped_signature_accepted": False,
        "anonymous": "allow",
    },
}


class Abort(Exception):
    """The scenario cannot go on (timeout, connection closed, refused)."""


class Deviation(Exception):
    """A hard check failed and the rest of the scenario depends on it."""


# ----------------------------------------------------------------------------------------------
# the client protocol


class ProbeClient(WampCraClientProtocol):
    """Autobahn's WAMP-CRA client, recording every message in and out."""

    def connectionMade(self):
        WampCraClientProtocol.connectionMade(self)
        self.raw_in = []
        self.raw_out = []
        self.replies = {}
        self.events = []
        self.welcome = None
        self.negotiated = None
        self.close_info = None
        self.session_id = None
        self.closed_d = Deferred()
        self.handshake_failure = None

    def onConnect(self, response):
        self.negotiated = response.protocol
        if response.protocol != "wamp":
            self.handshake_failure = ("server did not select subprotocol 'wamp' (selected %r)"
                                      % response.protocol)
        return WampCraClientProtocol.onConnect(self, response)

    def failHandshake(self, reason):
        self.handshake_failure = reason
        return WampCraClientProtocol.failHandshake(self, reason)

    def onMessage(self, msg, binary):
        obj = None
        if not binary:
            try:
                obj = json.loads(msg.decode("utf-8") if isinstance(msg, bytes) else msg)
            except ValueError:
                obj = ("<invalid JSON>", repr(msg[:200]))
        else:
            obj = ("<binary frame>", len(msg))
        self.raw_in.append(obj)
        if isinstance(obj, list) and obj and isinstance(obj[0], int):
            if obj[0] == 0 and self.welcome is None:
                self.welcome = obj
            elif obj[0] in (3, 4) and len(obj) > 1 and isinstance(obj[1], str):
                self.replies[obj[1]] = obj
            elif obj[0] == 8:
                self.events.append(obj)
        WampCraClientProtocol.onMessage(self, msg, binary)

    def sendMessage(self, payload):
        self.raw_out.append(payload.decode("utf-8") if isinstance(payload, bytes) else payload)
        WampCraClientProtocol.sendMessage(self, payload)

    def onSessionOpen(self):
        d, self.factory.opened = self.factory.opened, None
        if d is not None:
            d.callback(self)

    def onClose(self, wasClean, code, reason):
        self.close_info = {"clean": wasClean, "code": code, "reason": reason}
        if self.handshake_failure:
            self.close_info["handshake_failure"] = self.handshake_failure
            why = Abort("%s: WebSocket opening handshake failed: %s"
                        % (self.factory.label, self.handshake_failure))
        else:
            why = Abort("%s: connection closed (code %s, reason %r, clean %s)"
                        % (self.factory.label, code, reason, wasClean))
        d, self.factory.opened = self.factory.opened, None
        if d is not None:
            d.errback(why)
        # fail outstanding calls at once instead of letting them time out
        calls, self.calls = self.calls, {}
        for cd in calls.values():
            if not cd.called:
                cd.errback(why)
        if not self.closed_d.called:
            self.closed_d.callback(self.close_info)

    # --- helpers -----------------------------------------------------------------------

    def send_raw(self, msg):
        self.sendMessage(json.dumps(msg))

    def events_for(self, topic=None):
        return [e for e in self.events if topic is None or (len(e) > 1 and e[1] == topic)]


class ProbeFactory(WampClientFactory):
    protocol = ProbeClient

    def clientConnectionFailed(self, connector, reason):
        d, self.opened = self.opened, None
        if d is not None:
            d.errback(Abort("%s: cannot connect to %s: %s"
                            % (self.label, self.url, reason.getErrorMessage())))

    def clientConnectionLost(self, connector, reason):
        d, self.opened = self.opened, None
        if d is not None:
            d.errback(Abort("%s: connection lost before WELCOME: %s"
                            % (self.label, reason.getErrorMessage())))


# ----------------------------------------------------------------------------------------------
# scenario context


def sleep(seconds):
    return task.deferLater(reactor, seconds, lambda: None)


class Ctx:
    def __init__(self, args):
        self.args = args
        self.profile = PROFILES[args.profile]
        self.obs = {}
        self.deviations = []
        self.conns = []
        self.closing = set()  # connections the scenario closes on purpose

    # --- checks --------------------------------------------------------------------------

    def deviate(self, what):
        self.deviations.append(what)

    def check(self, name, cond, got, expected):
        if not cond:
            self.deviate("%s: expected %s, got %s" % (name, expected, _short(got)))
        return cond

    def expect_eq(self, name, got, expected):
        return self.check(name, got == expected and type(got) is type(expected)
                          or (_is_num(got) and _is_num(expected) and got == expected),
                          got, json.dumps(expected))

    # --- connections -----------------------------------------------------------------

    async def connect(self, label):
        f = ProbeFactory(self.args.url, debugWamp=self.args.debug)
        f.label = label
        f.opened = Deferred()
        f.opened.addTimeout(self.args.step_timeout, reactor)
        connectWS(f, self.tls_options(f), timeout=self.args.step_timeout)
        try:
            proto = await f.opened
        except defer.TimeoutError:
            raise Abort("%s: no WELCOME within %ss from %s"
                        % (label, self.args.step_timeout, self.args.url))
        proto.label = label
        self.conns.append(proto)
        return proto

    def tls_options(self, factory):
        """For wss:// URLs: Twisted's client TLS (pyOpenSSL) trusting --ca-file, checking the
        host name with service-identity; None for ws://."""
        if not factory.isSecure:
            return None
        from twisted.internet import ssl
        if not self.args.ca_file:
            raise Abort("%s is wss://: give the server's CA with --ca-file" % self.args.url)
        with open(self.args.ca_file, "rb") as fh:
            ca = ssl.Certificate.loadPEM(fh.read())
        return ssl.optionsForClientTLS(factory.host, trustRoot=ca)

    async def close_all(self):
        waits = []
        for p in self.conns:
            if p.close_info is None:
                try:
                    p.sendClose(1000)
                except Exception:
                    pass
                waits.append(p.closed_d)
        if waits:
            dl = defer.DeferredList(waits)
            dl.addTimeout(3, reactor)
            try:
                await dl
            except Exception:
                for p in self.conns:
                    if p.close_info is None and p.transport is not None:
                        p.transport.abortConnection()

    # --- RPC -------------------------------------------------------------------------

    async def xcall(self, proto, proc, *args):
        """CALL with a fresh call id; returns {"result": r} or {"error": {...}} plus "raw"."""
        if proto.close_info is not None:
            raise Abort("%s: CALL %s on a closed connection %s" % (proto.label, proc, proto.close_info))
        callid = newid()
        d = Deferred()
        proto.calls[callid] = d
        proto.send_raw([2, callid, proc] + list(args))
        return await self._outcome(proto, d, callid, proc)

    async def api_call(self, proto, proc, *args):
        """The same through Autobahn's own ``call()``."""
        before = set(proto.calls)
        d = proto.call(proc, *args)
        callid = next(iter(set(proto.calls) - before), None)
        return await self._outcome(proto, d, callid, proc)

    async def _outcome(self, proto, d, callid, proc):
        d.addTimeout(self.args.step_timeout, reactor)
        try:
            result = await d
            out = {"result": result}
        except defer.TimeoutError:
            proto.calls.pop(callid, None)
            raise Abort("%s: no CALLRESULT/CALLERROR for %s within %ss"
                        % (proto.label, proc, self.args.step_timeout))
        except Abort:
            raise
        except Exception as e:  # Autobahn: Exception(errorUri, errorDesc, errorDetails)
            a = e.args
            err = {"uri": a[0] if len(a) > 0 else None, "desc": a[1] if len(a) > 1 else None}
            raw = proto.replies.get(callid)
            if raw is not None and len(raw) > 4:
                err["details"] = raw[4]
            out = {"error": err}
        out["raw"] = proto.replies.get(callid)
        return out

    def expect_result(self, name, out, expected):
        if "error" in out:
            self.deviate("%s: expected CALLRESULT %s, got CALLERROR %s"
                         % (name, json.dumps(expected), _short(out["raw"])))
            return False
        return self.expect_eq(name, out["result"], expected)

    def expect_error(self, name, out, uri=None, desc=None, details=("any", None), resolve=None):
        """``details``: ("any", _) | ("absent", _) | ("present", value-or-None)."""
        if "error" not in out:
            self.deviate("%s: expected CALLERROR %s, got CALLRESULT %s"
                         % (name, uri or "(any)", _short(out["raw"])))
            return False
        err = out["error"]
        ok = True
        got_uri = resolve(err["uri"]) if resolve else err["uri"]
        if uri is not None:
            ok &= self.check(name + " errorUri", got_uri == uri, err["uri"], uri)
        if desc is not None:
            ok &= self.check(name + " errorDesc", err["desc"] == desc, err["desc"], json.dumps(desc))
        mode, value = details
        if mode == "absent":
            ok &= self.check(name + " errorDetails", "details" not in err, out["raw"],
                             "a 4-element CALLERROR (no details)")
        elif mode == "present":
            present = "details" in err
            ok &= self.check(name + " errorDetails", present and err["details"] is not None
                             and (value is None or err["details"] == value),
                             out["raw"], "details %s" % (json.dumps(value) if value else "present"))
        raw = out["raw"]
        if raw is not None:
            ok &= self.check(name + " CALLERROR layout",
                             len(raw) in (4, 5) and isinstance(raw[2], str) and isinstance(raw[3], str)
                             and (len(raw) == 4 or raw[4] is not None),
                             raw, "[4, callId, uri, desc(, details≠null)]")
        return ok

    def expect_profile_error(self, name, out, key, uri_arg=None, resolve=None):
        exp = self.profile[key]
        uri, desc = exp[0], exp[1]
        if callable(desc):
            desc = desc(uri_arg)
        details = exp[2] if len(exp) > 2 else ("any", None)
        return self.expect_error(name, out, uri, desc, details, resolve=resolve)

    def expect_cra_error(self, name, out, short, arg=None):
        desc = self.profile["cra_desc"].get(short)
        if callable(desc):
            desc = desc(arg)
        return self.expect_error(name, out, ERR + short, desc)

    # --- PubSub ----------------------------------------------------------------------

    async def wait_for(self, what, pred, timeout=None):
        deadline = time.monotonic() + (timeout or self.args.step_timeout)
        while not pred():
            for p in self.conns:
                if p.close_info is not None and p not in self.closing:
                    raise Abort("%s: connection closed while waiting for %s: %s"
                                % (p.label, what, p.close_info))
            if time.monotonic() > deadline:
                return False
            await sleep(0.02)
        return True

    async def warm_up(self, publisher, subscribers):
        """Publish probes (excludeMe=false) until every subscriber got one: subscriptions are
        then in place (WAMP v1 has no SUBSCRIBE acknowledgement)."""
        deadline = time.monotonic() + self.args.step_timeout
        i = 0
        while True:
            tag = "probe-%d" % i
            publisher.send_raw([7, CHAT, {"probe": tag}, False])
            got = await self.wait_for("probe", lambda: all(
                any(_tag(e, "probe") is not None for e in s.events_for(CHAT)) for s in subscribers),
                timeout=0.25)
            if got:
                return
            if time.monotonic() > deadline:
                missing = [s.label for s in subscribers
                           if not any(_tag(e, "probe") is not None for e in s.events_for(CHAT))]
                raise Abort("subscriptions never became active: %s got no event on %s within %ss"
                            % (missing, CHAT, self.args.step_timeout))
            i += 1


def _is_num(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _short(x, n=300):
    s = json.dumps(x, ensure_ascii=False, default=repr) if not isinstance(x, str) else json.dumps(x)
    return s if len(s) <= n else s[:n] + "..."


def _tag(ev, key):
    """The ``key`` field of an EVENT's payload dict, or None."""
    if len(ev) >= 3 and isinstance(ev[2], dict):
        return ev[2].get(key)
    return None


def _resolver(prefixes):
    def resolve(uri):
        if not isinstance(uri, str):
            return uri
        i = uri.find(":")
        if i > 0 and uri[:i] in prefixes:
            return prefixes[uri[:i]] + uri[i + 1:]
        return uri
    return resolve


def _sign(challenge, secret, authextra=None):
    return WampCraProtocol.authSignature(None, challenge, secret, authextra)


# ----------------------------------------------------------------------------------------------
# scenarios

SCENARIOS = {}


def scenario(name, doc):
    def deco(fn):
        SCENARIOS[name] = (fn, doc)
        return fn
    return deco


@scenario("welcome", "WELCOME is the first message, [0, sessionId(16 chars [A-Za-z0-9_-]), 1, "
          "serverIdent]; subprotocol 'wamp' negotiated; two sessions get different ids")
async def sc_welcome(ctx):
    a = await ctx.connect("A")
    b = await ctx.connect("B")
    w = a.welcome
    ctx.obs.update(welcome=w, subprotocol=a.negotiated, session_b=b.session_id,
                   first_message=a.raw_in[0] if a.raw_in else None)
    ctx.check("first message is WELCOME", a.raw_in and a.raw_in[0] is w, a.raw_in[:1], "WELCOME")
    ctx.check("WELCOME layout", isinstance(w, list) and len(w) == 4, w, "[0, sessionId, 1, serverIdent]")
    if isinstance(w, list) and len(w) == 4:
        ctx.check("WELCOME sessionId", isinstance(w[1], str) and bool(SESSION_ID_RE.match(w[1])),
                  w[1], "16 characters of [A-Za-z0-9_-]")
        ctx.check("WELCOME protocolVersion", w[2] == 1 and type(w[2]) is int, w[2], "1")
        ctx.check("WELCOME serverIdent", isinstance(w[3], str) and w[3] != "", w[3], "a non-empty string")
    ctx.expect_eq("subprotocol", a.negotiated, "wamp")
    ctx.check("distinct session ids", a.session_id != b.session_id,
              [a.session_id, b.session_id], "two different ids")
    # nothing else arrives unasked
    await sleep(0.2)
    ctx.check("no unsolicited messages", len(a.raw_in) == 1, a.raw_in, "only WELCOME")


@scenario("prefix_call", "PREFIX + CALL with CURIEs: resolution at the first ':', re-definition "
          "overwrites, unknown prefix passes through (not found), error URI shrinking")
async def sc_prefix_call(ctx):
    p = await ctx.connect("A")
    prefixes = {}

    def prefix(name, uri):
        prefixes[name] = uri
        p.send_raw([1, name, uri])

    out = await ctx.xcall(p, RPC + "echo", "full")
    ctx.obs["full_uri"] = out["raw"]
    ctx.expect_result("echo by full URI", out, "full")

    prefix("calc", RPC)
    out = await ctx.xcall(p, "calc:echo", "curie")
    ctx.obs["curie"] = out["raw"]
    ctx.expect_result("echo by CURIE calc:echo", out, "curie")

    # Autobahn's own prefix() + call() API
    p.prefix("tut", "http://wamptutorial/")
    prefixes["tut"] = "http://wamptutorial/"
    out = await ctx.api_call(p, "tut:rpc#add", 20, 22)
    ctx.obs["api_prefix_call"] = out["raw"]
    ctx.expect_result("Autobahn prefix()+call() tut:rpc#add", out, 42)

    prefix("calc", "http://wamptutorial/")  # re-definition overwrites
    out = await ctx.xcall(p, "calc:rpc#echo", "redefined")
    ctx.expect_result("after PREFIX re-definition calc:rpc#echo", out, "redefined")
    out = await ctx.xcall(p, "calc:echo", "old")
    ctx.obs["old_mapping"] = out["raw"]
    ctx.expect_profile_error("old mapping gone (calc:echo -> http://wamptutorial/echo)", out,
                             "notfound", "http://wamptutorial/echo")

    out = await ctx.xcall(p, "nope:echo", "x")
    ctx.obs["unknown_prefix"] = out["raw"]
    ctx.expect_profile_error("unknown prefix nope:echo", out, "notfound", "nope:echo")

    prefix("r", "http://wamptutorial/rpc")
    out = await ctx.xcall(p, "r:#echo", "hash-in-reference")
    ctx.expect_result("CURIE r:#echo", out, "hash-in-reference")

    prefix("w", "http://wamptutorial/")
    out = await ctx.xcall(p, "w:rpc#echo:x", 1)
    ctx.obs["first_colon"] = out["raw"]
    ctx.expect_profile_error("w:rpc#echo:x resolves at the first ':'", out, "notfound",
                             "http://wamptutorial/rpc#echo:x")

    # error URIs and the client's prefixes
    prefix("err", ERR)
    out = await ctx.xcall(p, RPC + "doesnotexist")
    raw_uri = out.get("error", {}).get("uri")
    shrunk = isinstance(raw_uri, str) and raw_uri.startswith("err:")
    ctx.obs["error_uri_with_prefix"] = out["raw"]
    ctx.obs["error_uri_shrunk"] = shrunk
    ctx.expect_profile_error("CALLERROR under a client prefix", out, "notfound",
                             RPC + "doesnotexist", resolve=_resolver(prefixes))
    ctx.check("CALLERROR errorUri shrunk with the client's prefixes",
              shrunk == ctx.profile["error_uri_shrunk"], raw_uri,
              "a CURIE (err:...)" if ctx.profile["error_uri_shrunk"] else "the full URI")


@scenario("call_args", "CALL argument/result round trips: echo of every JSON type, extra args, "
          "add of ints/floats/none, non-number is a CALLERROR, 25 concurrent calls")
async def sc_call_args(ctx):
    p = await ctx.connect("A")
    values = ["hello", "", "h\u00e9llo \u2603 \U0001d11e \"q\" \\ /", 0, 42, -7, 3.25, 1e100,
              2 ** 53 - 1, True, False, None, [], [1, "a", None, [2.5]], {},
              {"a": {"b": [1, 2, {"c": None}]}, "d": "e"}]
    for v in values:
        out = await ctx.xcall(p, RPC + "echo", v)
        ctx.expect_result("echo(%s)" % _short(v, 40), out, v)
        raw = out["raw"]
        ctx.check("CALLRESULT layout for echo(%s)" % _short(v, 40),
                  raw is not None and len(raw) == 3 and raw[0] == 3, raw, "[3, callId, result]")
    out = await ctx.xcall(p, RPC + "echo", "first", "second", 3)
    ctx.expect_result("echo('first', 'second', 3)", out, "first")
    out = await ctx.xcall(p, RPC + "echo")
    ctx.obs["echo_no_args"] = out["raw"]  # observed only (WAMP1.md does not say)

    out = await ctx.api_call(p, RPC + "echo", {"via": "Autobahn call()"})
    ctx.expect_result("Autobahn call() echo", out, {"via": "Autobahn call()"})

    for args, want in (((1, 2), 3), ((1, 2, 3, 4), 10), ((1.5, 2.25), 3.75), ((), 0),
                       ((-5, 5), 0), ((10,), 10), ((1, 0.5), 1.5)):
        out = await ctx.xcall(p, RPC + "add", *args)
        ctx.expect_result("add%s" % (args,), out, want)
    out = await ctx.xcall(p, RPC + "add", 1, "x")
    ctx.obs["add_non_number"] = out["raw"]
    ctx.expect_error("add(1, 'x')", out)

    # concurrency: 25 calls in flight at once, answered by call id
    pending = []
    for i in range(25):
        if i % 2:
            pending.append((("echo", i), ensureDeferred(ctx.xcall(p, RPC + "echo", {"n": i}))))
        else:
            pending.append((("add", i), ensureDeferred(ctx.xcall(p, RPC + "add", i, 1000))))
    results = await defer.gatherResults([d for _, d in pending], consumeErrors=True)
    bad = []
    for ((kind, i), _), out in zip(pending, results):
        want = {"n": i} if kind == "echo" else i + 1000
        if out.get("result") != want:
            bad.append({"call": kind, "i": i, "got": out["raw"]})
    ctx.obs["concurrent_calls"] = {"sent": 25, "wrong": len(bad)}
    ctx.check("25 concurrent calls each answered with its own result", not bad, bad, "no mismatch")
    ids = [json.loads(m)[1] for m in p.raw_out if m.startswith("[2,")]
    ctx.check("call ids unique", len(ids) == len(set(ids)), len(ids) - len(set(ids)), "0 duplicates")


@scenario("call_errors", "CALLERROR cases: throw, unknown procedure, ping, whoami unauthenticated, "
          "add with a non-number; the session survives them")
async def sc_call_errors(ctx):
    p = await ctx.connect("A")
    out = await ctx.xcall(p, RPC + "throw")
    ctx.obs["throw"] = out["raw"]
    ctx.expect_profile_error("throw", out, "throw")

    out = await ctx.api_call(p, RPC + "throw", "via Autobahn call()")
    ctx.expect_profile_error("throw via Autobahn call()", out, "throw")

    out = await ctx.xcall(p, RPC + "doesnotexist", 1)
    ctx.obs["notfound"] = out["raw"]
    ctx.expect_profile_error("unknown procedure", out, "notfound", RPC + "doesnotexist")

    out = await ctx.xcall(p, RPC + "ping")
    ctx.obs["ping"] = out["raw"]
    ctx.expect_profile_error("ping", out, "ping")

    out = await ctx.xcall(p, RPC + "whoami")
    ctx.obs["whoami_unauthenticated"] = out["raw"]
    ctx.expect_profile_error("whoami before auth", out, "whoami_unauth")

    out = await ctx.xcall(p, RPC + "add", 1, [2])
    ctx.obs["add_non_number"] = out["raw"]
    ctx.expect_error("add(1, [2])", out)

    out = await ctx.xcall(p, RPC + "echo", "still alive")
    ctx.expect_result("echo after errors", out, "still alive")


PUBSUB_STEPS = [
    # name, how it is sent, expected recipients: (spec, autobahn) or both
    ("api_default", "api", {}, ("AB", "B")),                       # wire [7,t,e,null]
    ("api_excludeMe_true", "api", {"excludeMe": True}, ("AB", "B")),  # wire [7,t,e] (!)
    ("api_excludeMe_false", "api", {"excludeMe": False}, "AB"),    # wire [7,t,e,false]
    ("api_exclude_B", "api", {"exclude": ["B"]}, "A"),             # wire [7,t,e,[B]]
    ("api_eligible_B", "api", {"eligible": ["B"]}, "B"),           # wire [7,t,e,[A],[B]]
    ("raw_plain", "raw", [], ("AB", "B")),
    ("raw_null", "raw", [None], ("AB", "B")),
    ("raw_excludeMe_true", "raw", [True], "B"),
    ("raw_excludeMe_false", "raw", [False], "AB"),
    ("raw_exclude_B", "raw", [["B"]], "A"),
    ("raw_exclude_A", "raw", [["A"]], "B"),
    ("raw_exclude_empty", "raw", [[]], "AB"),
    ("raw_exclude_unknown_id", "raw", [["no-such-session"]], "AB"),
    ("raw_eligible_B", "raw", [[], ["B"]], "B"),
    ("raw_eligible_AB_exclude_A", "raw", [["A"], ["A", "B"]], "B"),
    ("raw_eligible_empty", "raw", [[], []], ""),
    ("raw_excludeMe_true_eligible_AB", "raw", [True, ["A", "B"]], "B"),
    ("raw_excludeMe_false_eligible_A", "raw", [False, ["A"]], "A"),
    ("raw_null_eligible_AB", "raw", [None, ["A", "B"]], ("AB", "B")),
]


@scenario("pubsub_pair", "two clients on the chat topic: every PUBLISH form (Autobahn API and raw: "
          "excludeMe, exclude, eligible, null), CURIE topics, EVENT carries the full URI")
async def sc_pubsub_pair(ctx):
    a = await ctx.connect("A")
    b = await ctx.connect("B")
    ids = {"A": a.session_id, "B": b.session_id}
    received = {"A": [], "B": []}
    a.subscribe(CHAT, lambda topic, ev: received["A"].append((topic, ev)))  # Autobahn API
    b.send_raw([1, "ev", EVENT])                                          # raw CURIE subscribe
    b.send_raw([5, "ev:chat"])
    await ctx.warm_up(a, [a, b])

    receives_own = ctx.profile["publisher_receives_by_default"]
    expected = {}
    wire = {}
    for name, how, spec, exp in PUBSUB_STEPS:
        if isinstance(exp, tuple):
            exp = exp[0] if receives_own else exp[1]
        expected[name] = exp
        payload = {"step": name}
        n_out = len(a.raw_out)
        if how == "api":
            kw = {k: ([ids[x] for x in v] if isinstance(v, list) else v) for k, v in spec.items()}
            a.publish(CHAT, payload, **kw)
        else:
            extra = [[ids.get(x, x) for x in v] if isinstance(v, list) else v for v in spec]
            a.send_raw([7, CHAT, payload] + extra)
        wire[name] = a.raw_out[n_out] if len(a.raw_out) > n_out else None

    # B publishes with a CURIE topic; EVENT must carry the full URI
    b.send_raw([7, "ev:chat", {"step": "curie_from_B"}, False])
    expected["curie_from_B"] = "AB"
    # a null event, only to B
    a.send_raw([7, CHAT, None, [ids["A"]]])
    # final barrier: both must see it, then a short grace for stragglers
    a.send_raw([7, CHAT, {"barrier": 1}, False])
    if not await ctx.wait_for("barrier", lambda: all(
            any(_tag(e, "barrier") for e in p.events_for(CHAT)) for p in (a, b))):
        raise Abort("final barrier event (excludeMe=false) did not reach both A and B")

    def all_expected_arrived():
        return all(any(_tag(e, "step") == name for e in p.events_for(CHAT))
                   for name, exp in expected.items()
                   for p, lbl in ((a, "A"), (b, "B")) if lbl in exp)

    await ctx.wait_for("expected events", all_expected_arrived, timeout=1.0)  # reordering slack
    await sleep(0.3)  # stragglers that should not come at all

    got = {}
    for lbl, p in (("A", a), ("B", b)):
        for e in p.events:
            step = _tag(e, "step")
            if step is not None:
                got.setdefault(step, []).append(lbl)
    for name, exp in expected.items():
        who = got.get(name, [])
        ctx.check("%s (sent %s)" % (name, wire.get(name, "raw")),
                  sorted(who) == sorted(exp), "".join(sorted(who)) or "nobody",
                  "".join(exp) or "nobody")
    bad_topics = [e for p in (a, b) for e in p.events if not (len(e) == 3 and e[1] == CHAT)]
    ctx.check("EVENT layout [8, full topic URI, event]", not bad_topics, bad_topics[:3],
              "[8, %s, event]" % json.dumps(CHAT))
    nulls = {lbl: sum(1 for e in p.events if len(e) == 3 and e[2] is None)
             for lbl, p in (("A", a), ("B", b))}
    ctx.check("null event to B only", nulls == {"A": 0, "B": 1}, nulls, {"A": 0, "B": 1})
    ctx.check("Autobahn subscribe handler got A's events", len(received["A"]) == sum(
        1 for e in a.events), len(received["A"]), len(a.events))
    ctx.obs.update(
        session_ids=ids, wire=wire,
        recipients={k: "".join(sorted(v)) for k, v in got.items()},
        publisher_receives_by_default="A" in got.get("raw_plain", []),
    )


@scenario("unsubscribe", "UNSUBSCRIBE stops delivery (API, raw, CURIE), repeated/unknown "
          "unsubscribe is a no-op, double subscribe delivers once, a closed subscriber is dropped")
async def sc_unsubscribe(ctx):
    a = await ctx.connect("A")
    b = await ctx.connect("B")
    a.subscribe(CHAT, lambda topic, ev: None)
    b.send_raw([5, CHAT])
    await ctx.warm_up(a, [a, b])
    a.send_raw([1, "ev", EVENT])
    expected = {}

    async def step(name, exp, publisher=a, receivers=None):
        expected[name] = exp
        publisher.send_raw([7, CHAT, {"step": name}, False])
        pool = receivers or {"A": a, "B": b}
        want = [p for lbl, p in pool.items() if lbl in exp]
        await ctx.wait_for(name, lambda: all(
            any(_tag(e, "step") == name for e in p.events_for(CHAT)) for p in want))

    a.unsubscribe(CHAT)  # Autobahn API: [6, topic]
    await step("after_api_unsubscribe", "B")
    a.send_raw([6, CHAT])
    a.send_raw([6, EVENT + "never-subscribed"])
    await step("after_repeated_unsubscribe", "B")
    out = await ctx.xcall(a, RPC + "echo", "alive")
    ctx.expect_result("session alive after no-op unsubscribes", out, "alive")
    a.send_raw([5, "ev:chat"])
    await step("after_curie_resubscribe", "AB")
    a.send_raw([5, CHAT])
    await step("after_double_subscribe", "AB")
    a.send_raw([6, "ev:chat"])
    await step("after_curie_unsubscribe", "B")

    # B goes away; A re-subscribes; a new client C joins: nobody trips over B's old subscription
    a.send_raw([5, CHAT])
    ctx.closing.add(b)
    b.sendClose(1000)
    await ctx.wait_for("B closed", lambda: b.close_info is not None)
    c = await ctx.connect("C")
    c.send_raw([5, CHAT])
    await ctx.warm_up(a, [a, c])
    await step("after_B_closed", "AC", receivers={"A": a, "C": c})
    await sleep(0.3)

    counts = {}
    for lbl, p in (("A", a), ("B", b), ("C", c)):
        for e in p.events:
            s = _tag(e, "step")
            if s is not None:
                counts.setdefault(s, {}).setdefault(lbl, 0)
                counts[s][lbl] += 1
    for name, exp in expected.items():
        who = counts.get(name, {})
        ctx.check(name, sorted(who) == sorted(exp) and all(v == 1 for v in who.values()),
                  who or "nobody", {x: 1 for x in exp})
    ctx.obs["recipients"] = counts


async def _challenge(ctx, p, key, extra=None, label="authreq"):
    out = await ctx.xcall(p, PROC + "authreq", key, extra)
    if "error" in out:
        raise Deviation("%s(%r): expected a challenge, got CALLERROR %s"
                        % (label, key, _short(out["raw"])))
    ch = out["result"]
    if not isinstance(ch, str):
        raise Deviation("%s(%r): challenge is not a JSON string: %s" % (label, key, _short(ch)))
    try:
        obj = json.loads(ch)
    except ValueError:
        raise Deviation("%s(%r): challenge is not valid JSON: %s" % (label, key, _short(ch)))
    return ch, obj


def _check_challenge(ctx, name, p, key, obj, extra=None):
    ctx.check(name + " fields", isinstance(obj, dict) and all(
        k in obj for k in ("authid", "authkey", "timestamp", "sessionid", "extra", "permissions")),
        sorted(obj) if isinstance(obj, dict) else obj,
        "authid, authkey, timestamp, sessionid, extra, permissions")
    if not isinstance(obj, dict):
        return
    ctx.expect_eq(name + " authkey", obj.get("authkey"), key)
    ctx.expect_eq(name + " sessionid", obj.get("sessionid"), p.session_id)
    ctx.expect_eq(name + " extra", obj.get("extra"), extra or {})
    ctx.check(name + " timestamp", isinstance(obj.get("timestamp"), str)
              and re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00)$", obj["timestamp"]),
              obj.get("timestamp"), "UTC ISO-8601 like 2013-07-06T12:00:00.000Z")
    perms = obj.get("permissions")
    ctx.check(name + " permissions", isinstance(perms, dict)
              and isinstance(perms.get("rpc"), list) and isinstance(perms.get("pubsub"), list),
              perms, '{"rpc": [...], "pubsub": [...]}')


@scenario("cra_unsalted", "WAMP-CRA as guest (plain secret): challenge contents, signature, "
          "permissions, whoami; Autobahn's authenticate(); every CRA error of WAMP1.md 6")
async def sc_cra_unsalted(ctx):
    key, secret = ctx.args.auth_key, ctx.args.auth_secret
    p = await ctx.connect("A")
    out = await ctx.xcall(p, RPC + "whoami")
    ctx.expect_profile_error("whoami before auth", out, "whoami_unauth")

    ch, obj = await _challenge(ctx, p, key)
    ctx.obs["challenge"] = obj
    _check_challenge(ctx, "challenge", p, key, obj)
    ctx.check("challenge has no authextra (unsalted)", "authextra" not in obj, obj.get("authextra"),
              "absent")
    sig = _sign(ch, secret)
    out = await ctx.xcall(p, PROC + "auth", sig)
    ctx.obs["auth"] = out["raw"]
    ctx.expect_result("auth result = challenge permissions", out, obj.get("permissions"))
    out = await ctx.xcall(p, RPC + "whoami")
    ctx.expect_result("whoami after auth", out, key)
    out = await ctx.xcall(p, PROC + "authreq", key, None)
    ctx.expect_cra_error("authreq after auth", out, "already-authenticated")
    out = await ctx.xcall(p, PROC + "auth", sig)
    ctx.expect_cra_error("auth after auth", out, "already-authenticated")
    out = await ctx.xcall(p, RPC + "echo", "authenticated echo")
    ctx.expect_result("echo after auth", out, "authenticated echo")

    q = await ctx.connect("B")
    out = await ctx.xcall(q, PROC + "auth", "bogus")
    ctx.expect_cra_error("auth without authreq", out, "no-authentication-requested")
    out = await ctx.xcall(q, PROC + "authreq", "nobody-by-this-name", None)
    ctx.expect_cra_error("authreq unknown key", out, "no-such-authkey", "nobody-by-this-name")
    out = await ctx.xcall(q, PROC + "authreq", key, "not a dict")
    ctx.obs["authreq_extra_not_dict"] = out["raw"]
    ctx.expect_error("authreq with extra not a dict", out, ERR + "invalid-argument")
    out = await ctx.xcall(q, PROC + "authreq", 42, None)
    ctx.obs["authreq_key_not_string"] = out["raw"]
    ctx.expect_error("authreq with a number as key", out, ERR + "invalid-argument")
    ch2, obj2 = await _challenge(ctx, q, key, {"client": "ab_client"})
    ctx.expect_eq("challenge echoes extra", obj2.get("extra"), {"client": "ab_client"})
    out = await ctx.xcall(q, PROC + "authreq", key, None)
    ctx.expect_cra_error("second authreq while pending", out, "authentication-already-requested")
    out = await ctx.xcall(q, PROC + "auth", 12345)
    ctx.obs["auth_signature_not_string"] = out["raw"]
    ctx.expect_error("auth with a number as signature", out, ERR + "invalid-argument")

    # Autobahn's own helper end to end
    r = await ctx.connect("C")
    d = r.authenticate(authKey=key, authSecret=secret)
    d.addTimeout(ctx.args.step_timeout, reactor)
    try:
        perms = await d
        ctx.obs["authenticate_helper"] = "ok"
        ctx.check("Autobahn authenticate() permissions", isinstance(perms, dict), perms, "a dict")
    except defer.TimeoutError:
        raise Abort("Autobahn authenticate(): no answer within %ss" % ctx.args.step_timeout)
    except Exception as e:
        ctx.deviate("Autobahn authenticate(%r): failed with %r" % (key, e.args))
    out = await ctx.xcall(r, RPC + "whoami")
    ctx.expect_result("whoami after authenticate()", out, key)


@scenario("cra_salted", "WAMP-CRA with a salted secret: authextra in the challenge, PBKDF2 key, "
          "signature, whoami; Autobahn's authenticate() derives the key itself")
async def sc_cra_salted(ctx):
    key, password = ctx.args.salted_key, ctx.args.salted_password
    want_extra = json.loads(ctx.args.salted_authextra) if ctx.args.salted_authextra else None
    p = await ctx.connect("A")
    ch, obj = await _challenge(ctx, p, key)
    ctx.obs["challenge"] = obj
    _check_challenge(ctx, "challenge", p, key, obj)
    ae = obj.get("authextra")
    ctx.check("challenge authextra.salt", isinstance(ae, dict) and "salt" in ae, ae,
              "an authextra object with a salt")
    if want_extra is not None:
        ctx.expect_eq("challenge authextra", ae, want_extra)
    derived = WampCraProtocol.deriveKey(password, ae)
    ctx.obs["derived_key"] = derived
    out = await ctx.xcall(p, PROC + "auth", _sign(ch, password, ae))
    ctx.obs["auth"] = out["raw"]
    ctx.expect_result("auth result = challenge permissions", out, obj.get("permissions"))
    out = await ctx.xcall(p, RPC + "whoami")
    ctx.expect_result("whoami after salted auth", out, key)

    q = await ctx.connect("B")
    d = q.authenticate(authKey=key, authSecret=password)
    d.addTimeout(ctx.args.step_timeout, reactor)
    try:
        await d
        ctx.obs["authenticate_helper"] = "ok"
    except defer.TimeoutError:
        raise Abort("Autobahn authenticate(): no answer within %ss" % ctx.args.step_timeout)
    except Exception as e:
        ctx.deviate("Autobahn authenticate(%r) with salted secret: failed with %r" % (key, e.args))
    out = await ctx.xcall(q, RPC + "whoami")
    ctx.expect_result("whoami after authenticate()", out, key)

    # the unsalted signature must not pass
    r = await ctx.connect("C")
    ch3, _ = await _challenge(ctx, r, key)
    out = await ctx.xcall(r, PROC + "auth", _sign(ch3, password))
    ctx.expect_cra_error("password used as key without PBKDF2", out, "invalid-signature")


@scenario("cra_wrong_secret", "WAMP-CRA with a wrong secret: invalid-signature (after a delay), "
          "the challenge is spent (one try), not authenticated, a fresh challenge then succeeds")
async def sc_cra_wrong_secret(ctx):
    key, secret = ctx.args.auth_key, ctx.args.auth_secret
    p = await ctx.connect("A")
    ch, _ = await _challenge(ctx, p, key)
    t0 = time.monotonic()
    out = await ctx.xcall(p, PROC + "auth", _sign(ch, secret + "-wrong"))
    ctx.obs["invalid_signature_delay_s"] = round(time.monotonic() - t0, 3)
    ctx.obs["invalid_signature"] = out["raw"]
    ctx.expect_cra_error("auth with wrong secret", out, "invalid-signature")
    out = await ctx.xcall(p, PROC + "auth", _sign(ch, secret))
    ctx.expect_cra_error("right signature for the spent challenge", out, "no-authentication-requested")
    out = await ctx.xcall(p, RPC + "whoami")
    ctx.expect_profile_error("whoami after failed auth", out, "whoami_unauth")
    out = await ctx.xcall(p, PROC + "auth", None)
    ctx.expect_cra_error("auth(null) with nothing pending", out, "no-authentication-requested")
    ch, _ = await _challenge(ctx, p, key, label="second authreq")
    out = await ctx.xcall(p, PROC + "auth", _sign(ch, secret))
    ctx.expect_result("auth with a fresh challenge", out, json.loads(ch).get("permissions"))
    out = await ctx.xcall(p, RPC + "whoami")
    ctx.expect_result("whoami after retry", out, key)


@scenario("cra_swapped", "clj-wamp signing order HMAC(key=challenge, msg=secret): accepted by the "
          "spec server (WAMP1.md 6.4), rejected by Autobahn")
async def sc_cra_swapped(ctx):
    key, secret = ctx.args.auth_key, ctx.args.auth_secret
    p = await ctx.connect("A")
    ch, obj = await _challenge(ctx, p, key)
    sig = base64.b64encode(hmac.new(ch.encode("utf-8"), secret.encode("utf-8"),
                                    hashlib.sha256).digest()).decode("ascii")
    out = await ctx.xcall(p, PROC + "auth", sig)
    ctx.obs["auth"] = out["raw"]
    if ctx.profile["swapped_signature_accepted"]:
        ctx.expect_result("auth with swapped HMAC order", out, obj.get("permissions"))
        out = await ctx.xcall(p, RPC + "whoami")
        ctx.expect_result("whoami after swapped-order auth", out, key)
    else:
        ctx.expect_cra_error("auth with swapped HMAC order", out, "invalid-signature")


@scenario("cra_anonymous", "anonymous WAMP-CRA: authreq(null, null) -> null, auth(null) -> "
          "permissions; or anonymous-auth-forbidden (--expect-anonymous)")
async def sc_cra_anonymous(ctx):
    mode = ctx.args.expect_anonymous or ctx.profile["anonymous"]
    p = await ctx.connect("A")
    out = await ctx.xcall(p, PROC + "authreq", None, None)
    ctx.obs["authreq_null"] = out["raw"]
    if "error" in out:
        ctx.obs["anonymous"] = "forbidden"
        ctx.check("anonymous authreq", mode in ("forbid", "any"), out["raw"], "null challenge")
        ctx.expect_cra_error("anonymous authreq", out, "anonymous-auth-forbidden")
        return
    ctx.obs["anonymous"] = "allowed"
    ctx.check("anonymous authreq", mode in ("allow", "any"), out["raw"], "anonymous-auth-forbidden")
    ctx.expect_result("anonymous challenge", out, None)
    out = await ctx.xcall(p, PROC + "auth", None)
    ctx.obs["auth_null"] = out["raw"]
    ctx.check("anonymous auth result", "result" in out and isinstance(out["result"], dict),
              out["raw"], "a permissions object")
    out = await ctx.xcall(p, PROC + "auth", None)
    ctx.expect_cra_error("auth after anonymous auth", out, "already-authenticated")


@scenario("default_prefixes", "tutorial default prefixes (WAMP1.md 3, 8): rpc:echo and event:chat "
          "without PREFIX; a session's own PREFIX overrides them (ab_server needs --default-prefixes)")
async def sc_default_prefixes(ctx):
    p = await ctx.connect("A")
    out = await ctx.xcall(p, "rpc:echo", "no prefix sent")
    ctx.obs["rpc_echo"] = out["raw"]
    ctx.expect_result("rpc:echo without PREFIX", out, "no prefix sent")
    p.send_raw([5, "event:chat"])
    ok = False
    deadline = time.monotonic() + ctx.args.step_timeout
    while not ok and time.monotonic() < deadline:  # no SUBSCRIBE ack in WAMP v1: retry
        p.send_raw([7, "event:chat", {"step": "default_prefix"}, False])
        ok = await ctx.wait_for("event", lambda: any(_tag(e, "step") == "default_prefix"
                                                     for e in p.events), timeout=0.25)
    ev = next((e for e in p.events if _tag(e, "step") == "default_prefix"), None)
    ctx.obs["event"] = ev
    ctx.check("event:chat subscribe+publish without PREFIX", ok, ev, "an EVENT")
    if ev is not None:
        ctx.expect_eq("EVENT topic is the full URI", ev[1], CHAT)
    p.send_raw([1, "rpc", "http://wamptutorial/"])
    out = await ctx.xcall(p, "rpc:rpc#echo", "own prefix wins")
    ctx.expect_result("own PREFIX rpc overrides the default", out, "own prefix wins")


# ----------------------------------------------------------------------------------------------
# main


async def run(args):
    ctx = Ctx(args)
    fn, _doc = SCENARIOS[args.scenario]
    status = "ok"
    error = None
    try:
        d = ensureDeferred(fn(ctx))
        d.addTimeout(args.timeout, reactor)
        await d
    except defer.TimeoutError:
        status, error = "error", "scenario did not finish within --timeout %ss" % args.timeout
    except Abort as e:
        status, error = "error", str(e)
    except Deviation as e:
        ctx.deviate(str(e))
    except Exception as e:  # a bug here or an unexpected shape from the server
        import traceback
        traceback.print_exc()
        status, error = "error", "%s: %s" % (type(e).__name__, e)
    closes = {getattr(p, "label", "?"): p.close_info for p in ctx.conns}
    try:
        await ctx.close_all()
    except Exception:
        pass
    ok = status == "ok" and not ctx.deviations
    report = {"scenario": args.scenario, "profile": args.profile, "url": args.url, "ok": ok,
              "observations": ctx.obs, "deviations": ctx.deviations}
    if error:
        report["error"] = error
        report["connections_closed_early"] = {k: v for k, v in closes.items() if v}
    return report


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="AutobahnPython 0.8.15 WAMP v1 client scenarios",
        epilog="scenarios:\n" + "\n".join("  %-17s %s" % (n, d) for n, (_, d) in SCENARIOS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scenario", nargs="?", choices=sorted(SCENARIOS), metavar="SCENARIO")
    ap.add_argument("--url", help="WAMP endpoint, e.g. ws://127.0.0.1:8080/ws or wss://localhost:8443/ws")
    ap.add_argument("--ca-file", help="PEM CA certificate to trust for wss:// URLs")
    ap.add_argument("--profile", choices=sorted(PROFILES), default="spec",
                    help="expectations: spec = WAMP1.md tutorial server (default), "
                         "autobahn = ab_server.py")
    ap.add_argument("--list", action="store_true", help="list scenarios and exit")
    ap.add_argument("--auth-key", default="guest")
    ap.add_argument("--auth-secret", default="secret-password")
    ap.add_argument("--salted-key", default="salted")
    ap.add_argument("--salted-password", default="secret")
    ap.add_argument("--salted-authextra",
                    default='{"salt": "RANDOM SALT", "keylen": 32, "iterations": 1000}',
                    help="authextra the salted challenge must carry (JSON; '' = do not check)")
    ap.add_argument("--expect-anonymous", choices=["allow", "forbid", "any"],
                    help="cra_anonymous: what to expect (default: spec any, autobahn allow)")
    ap.add_argument("--timeout", type=float, default=60.0, help="whole scenario (s)")
    ap.add_argument("--step-timeout", type=float, default=5.0,
                    help="one connect, call or event wait (s)")
    ap.add_argument("--debug", action="store_true", help="log WAMP traffic to stderr")
    args = ap.parse_args(argv)
    if args.list:
        for n, (_, d) in SCENARIOS.items():
            print("%-17s %s" % (n, d))
        return 0
    if not args.scenario or not args.url:
        ap.error("--url and SCENARIO are required")

    # last resort if the reactor itself wedges
    def hard_timeout(signum, frame):
        sys.stdout.write(json.dumps({"scenario": args.scenario, "profile": args.profile,
                                     "url": args.url, "ok": False, "observations": {},
                                     "deviations": [], "error": "hard timeout"}) + "\n")
        sys.stdout.flush()
        sys.stderr.write("ab_client.py %s: HARD TIMEOUT\n" % args.scenario)
        os._exit(3)

    signal.signal(signal.SIGALRM, hard_timeout)
    signal.alarm(int(args.timeout + 15))

    if args.debug:
        from twisted.python import log
        log.startLogging(sys.stderr, setStdout=False)

    result = {}

    def done(report):
        result["report"] = report
        reactor.stop()

    def failed(f):
        result["report"] = {"scenario": args.scenario, "profile": args.profile, "url": args.url,
                            "ok": False, "observations": {}, "deviations": [],
                            "error": f.getErrorMessage()}
        reactor.stop()

    reactor.callWhenRunning(lambda: ensureDeferred(run(args)).addCallbacks(done, failed))
    reactor.run()
    signal.alarm(0)

    report = result.get("report") or {"scenario": args.scenario, "ok": False,
                                      "error": "reactor stopped without a report"}
    sys.stdout.write(json.dumps(report, ensure_ascii=False, default=repr) + "\n")
    sys.stdout.flush()
    for dev in report.get("deviations", []):
        sys.stderr.write("DEVIATION [%s/%s] %s\n" % (args.scenario, args.profile, dev))
    if report.get("error"):
        sys.stderr.write("ERROR [%s/%s] %s\n" % (args.scenario, args.profile, report["error"]))
        return 3
    return 0 if report.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
