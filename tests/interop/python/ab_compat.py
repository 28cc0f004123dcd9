"""Run-time compatibility shim: AutobahnPython 0.8.15 (``autobahn.wamp1``) on Python 3.11.

Import this module BEFORE anything from ``autobahn``::

    import ab_compat  # noqa: F401  (must come first)
    from autobahn.wamp1.protocol import WampServerFactory, ...

Nothing on disk is changed: the installed package stays byte-for-byte as pip put it there, and
no ``.pyc`` file is written for the rewritten modules. Everything happens in this process's memory.

Autobahn 0.8.15's WebSocket layer mostly supports Python 3, but its WAMP v1 code
(``autobahn/wamp1/*.py``) is Python 2 code. What this shim does, and why:

1. Import hook (the only change that is not a plain attribute assignment). The three
   ``autobahn.wamp1`` modules are loaded through a loader that parses the installed source,
   rewrites every ``d.has_key(k)`` call into ``(k in d)`` with an ``ast.NodeTransformer``, and
   compiles the result in memory. ``dict.has_key`` is gone since Python 3 and is called 23
   times on plain dicts (session maps, subscriptions, prefix maps, function ``__dict__``), which
   no attribute assignment can reach.
2. Python 2 builtins ``unicode``, ``xrange`` and ``long`` are defined as module globals of the
   rewritten modules and of ``autobahn.util`` (whose ``newid()``, used for every session id and
   call id, calls ``xrange``).
3. ``autobahn.websocket.xormasker``: ``XorMaskerSimple.process`` and ``XorMaskerShifted1.process``
   end with ``array.tostring()``, removed in Python 3.9. Every masked frame (all frames a client
   sends, and so all frames a server receives) goes through them. They are replaced by an
   equivalent XOR on ``bytes``.
4. ``autobahn.websocket.protocol.PreparedMessage._initHixie`` (run for every prepared message,
   i.e. every PubSub EVENT the server dispatches) concatenates ``str`` and ``bytes``; it builds
   the same Hixie-76 frame from ``bytes`` now.
5. ``WampServerProtocol.sendMessage``, ``WampClientProtocol.sendMessage`` and
   ``WampServerFactory.prepareMessage``: the WAMP layer serialises messages with ``json.dumps``
   (a ``str``) while the WebSocket layer asserts ``bytes``. ``str`` is encoded to UTF-8 first.
6. ``WampProtocol.registerForRpc`` and ``WampServerProtocol.registerHandlerForPubSub`` look for
   ``@exportRpc``/``@exportSub``/``@exportPub`` methods with ``inspect.ismethod``, which is false
   for functions on a class in Python 3, so nothing was registered (not even WAMP-CRA's own
   ``authreq``/``auth``). They are re-implemented with ``inspect.isfunction``.
7. ``WampCraProtocol.deriveKey`` / ``authSignature``: PBKDF2 (``autobahn.wamp1.pbkdf2`` calls
   ``ord()`` on ``bytes`` items) and HMAC mixed ``str`` and ``bytes`` and returned ``bytes``, so
   the server's expected signature never equalled the client's string. Re-implemented with
   ``hashlib.pbkdf2_hmac`` / ``hmac`` on UTF-8 bytes, returning ``str`` (same values:
   base64 of HMAC-SHA256, base64 of PBKDF2-HMAC-SHA256).
8. ``WampServerFactory._unsubscribeClient(proto)`` (run on every disconnect) deletes from the
   subscriptions dict while iterating ``dict.items()``: "dictionary changed size during
   iteration" in Python 3. It iterates over a copy now.
9. ``StringIO.StringIO()`` in the traceback-as-error-details path (``includeTraceback``) is made
   to work by giving ``autobahn.wamp1.protocol`` a ``StringIO`` namespace object.

``apply()`` runs on import; it is idempotent.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import hmac
import importlib.abc
import importlib.machinery
import importlib.util
import inspect
import io
import sys
import types

__all__ = ["apply", "REWRITTEN_MODULES"]

#: Modules loaded through the in-memory ``has_key`` rewriter.
REWRITTEN_MODULES = (
    "autobahn.wamp1.protocol",
    "autobahn.wamp1.prefixmap",
    "autobahn.wamp1.pbkdf2",
)

_PY2_NAMES = {"unicode": str, "xrange": range, "long": int}


class _HasKeyRewriter(ast.NodeTransformer):
    """``X.has_key(Y)`` -> ``(Y in X)``."""

    count = 0

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        func = node.func
        if (
            isinstance(func, ast.Attribute)
            and func.attr == "has_key"
            and len(node.args) == 1
            and not node.keywords
        ):
            self.count += 1
            return ast.copy_location(
                ast.Compare(left=node.args[0], ops=[ast.In()], comparators=[func.value]), node
            )
        return node


class _RewritingLoader(importlib.abc.Loader):
    def __init__(self, fullname: str, path: str) -> None:
        self.fullname = fullname
        self.path = path

    def create_module(self, spec):  # default module creation
        return None

    def exec_module(self, module: types.ModuleType) -> None:
        with open(self.path, "rb") as fh:
            source = fh.read().decode("utf-8")
        tree = ast.parse(source, self.path)
        rewriter = _HasKeyRewriter()
        tree = ast.fix_missing_locations(rewriter.visit(tree))
        module.__dict__.update(_PY2_NAMES)
        module.__dict__["_ab_compat_has_key_rewrites"] = rewriter.count
        code = compile(tree, self.path, "exec", dont_inherit=True)
        exec(code, module.__dict__)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname not in REWRITTEN_MODULES:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not spec.origin or not spec.origin.endswith(".py"):
            return None
        return importlib.util.spec_from_file_location(
            fullname, spec.origin, loader=_RewritingLoader(fullname, spec.origin)
        )


def _install_finder() -> None:
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        already = [m for m in REWRITTEN_MODULES if m in sys.modules]
        if already:
            raise ImportError(
                "ab_compat must be imported before %s (already imported without the shim)"
                % ", ".join(already)
            )
        sys.meta_path.insert(0, _Finder())


# --------------------------------------------------------------------------------------------
# replacements


def _xor_process(self, data):
    """XOR ``data`` with the 4-byte mask, continuing at ``self.ptr`` (as the originals do)."""
    data = bytes(data)
    n = len(data)
    if n == 0:
        return b""
    mask = self._ab_mask
    off = self.ptr & 3
    rot = mask[off:] + mask[:off]
    key = (rot * (n // 4 + 1))[:n]
    self.ptr += n
    return (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")


def _patch_xormasker() -> None:
    from autobahn.websocket import xormasker

    simple = getattr(xormasker, "XorMaskerSimple", None)
    shifted = getattr(xormasker, "XorMaskerShifted1", None)
    if simple is None or shifted is None:
        return  # wsaccel's C masker is in use: nothing to fix

    def simple_init(self, mask):
        assert len(mask) == 4
        self.ptr = 0
        self._ab_mask = bytes(bytearray(mask))

    simple.__init__ = simple_init
    simple.process = _xor_process
    shifted.__init__ = simple_init
    shifted.process = _xor_process


def _patch_prepared_message() -> None:
    from autobahn.websocket import protocol as wsprotocol

    def _initHixie(self, payload, binary):
        # original: '\x00' + payload + '\xff' (str + bytes); Hixie-76 framing of a prepared
        # message, computed for every prepared message (every PubSub EVENT) even if unused
        self.payloadHixie = b"" if binary else b"\x00" + bytes(payload) + b"\xff"

    wsprotocol.PreparedMessage._initHixie = _initHixie


def _as_bytes(payload):
    if isinstance(payload, str):
        return payload.encode("utf-8")
    return payload


def _derive_key(secret, extra=None):
    """PBKDF2-HMAC-SHA256 as in Autobahn 0.8 / AutobahnJS: base64 of the derived key, or the
    secret unchanged when ``extra`` has no ``salt``."""
    if isinstance(extra, dict) and "salt" in extra:
        if isinstance(secret, str):
            secret = secret.encode("utf-8")
        salt = str(extra["salt"]).encode("utf-8")
        iterations = int(extra.get("iterations", 10000))
        keylen = int(extra.get("keylen", 32))
        dk = hashlib.pbkdf2_hmac("sha256", secret, salt, iterations, keylen)
        return base64.b64encode(dk).decode("ascii")
    if isinstance(secret, bytes):
        return secret.decode("utf-8")
    return secret


def _auth_signature(self, authChallenge, authSecret=None, authExtra=None):
    """base64(HMAC-SHA256(key = (derived) secret, msg = challenge text)) as ``str``."""
    if authSecret is None:
        authSecret = ""
    key = _derive_key(authSecret, authExtra)
    if isinstance(key, str):
        key = key.encode("utf-8")
    msg = authChallenge.encode("utf-8") if isinstance(authChallenge, str) else authChallenge
    return base64.b64encode(hmac.new(key, msg, hashlib.sha256).digest()).decode("ascii")


def _pbkdf2_bin(data, salt, iterations=1000, keylen=24, hashfunc=None):
    name = (hashfunc or hashlib.sha1)().name
    data = data.encode("utf-8") if isinstance(data, str) else data
    salt = salt.encode("utf-8") if isinstance(salt, str) else salt
    return hashlib.pbkdf2_hmac(name, data, salt, iterations, keylen)


def _class_functions(cls):
    return inspect.getmembers(cls, inspect.isfunction)


def _patch_wamp1() -> None:
    import autobahn.util
    from autobahn.wamp1 import pbkdf2, protocol

    for name, value in _PY2_NAMES.items():
        setattr(autobahn.util, name, value)

    protocol.StringIO = types.SimpleNamespace(StringIO=io.StringIO)

    WampProtocol = protocol.WampProtocol
    WampServerProtocol = protocol.WampServerProtocol
    WampClientProtocol = protocol.WampClientProtocol
    WampServerFactory = protocol.WampServerFactory
    WampCraProtocol = protocol.WampCraProtocol

    # 5. str -> bytes at the WebSocket boundary
    ws_server_send = protocol.WebSocketServerProtocol.sendMessage
    ws_client_send = protocol.WebSocketClientProtocol.sendMessage

    def server_send(self, payload, binary=False, payload_frag_size=None, sync=False,
                    doNotCompress=False):
        if self.debugWamp:
            protocol.log.msg("TX WAMP: %s" % (payload,))
        ws_server_send(self, _as_bytes(payload), binary, payload_frag_size, sync, doNotCompress)

    def client_send(self, payload):
        if self.debugWamp:
            protocol.log.msg("TX WAMP: %s" % (payload,))
        ws_client_send(self, _as_bytes(payload))

    WampServerProtocol.sendMessage = server_send
    WampClientProtocol.sendMessage = client_send

    ws_prepare = protocol.WebSocketServerFactory.prepareMessage

    def prepare(self, payload, isBinary=False, doNotCompress=False):
        return ws_prepare(self, _as_bytes(payload), isBinary, doNotCompress)

    WampServerFactory.prepareMessage = prepare

    # 6. decorator-based registration
    def registerForRpc(self, obj, baseUri="", methods=None):
        for _name, fn in _class_functions(obj.__class__):
            rpc_id = getattr(fn, "_autobahn_rpc_id", None)
            if rpc_id is not None and (methods is None or fn in methods):
                self.registerMethodForRpc(baseUri + rpc_id, obj, fn)

    def registerHandlerForPubSub(self, obj, baseUri=""):
        for _name, fn in _class_functions(obj.__class__):
            if hasattr(fn, "_autobahn_pub_id"):
                self.registerHandlerForPub(baseUri + fn._autobahn_pub_id, obj, fn,
                                           fn._autobahn_pub_prefix_match)
            elif hasattr(fn, "_autobahn_sub_id"):
                self.registerHandlerForSub(baseUri + fn._autobahn_sub_id, obj, fn,
                                           fn._autobahn_sub_prefix_match)

    WampProtocol.registerForRpc = registerForRpc
    WampServerProtocol.registerHandlerForPubSub = registerHandlerForPubSub

    # 7. WAMP-CRA crypto
    WampCraProtocol.deriveKey = staticmethod(_derive_key)
    WampCraProtocol.authSignature = _auth_signature
    protocol.pbkdf2_bin = _pbkdf2_bin
    pbkdf2.pbkdf2_bin = _pbkdf2_bin

    # 8. unsubscribe-all on disconnect
    orig_unsub = WampServerFactory._unsubscribeClient

    def _unsubscribeClient(self, proto, topicUri=None):
        if topicUri:
            return orig_unsub(self, proto, topicUri)
        for uri, subscribers in list(self.subscriptions.items()):
            if proto in subscribers:
                orig_unsub(self, proto, uri)

    WampServerFactory._unsubscribeClient = _unsubscribeClient


_applied = False


def apply() -> None:
    """Install the import hook and patch Autobahn (idempotent)."""
    global _applied
    if _applied:
        return
    if not hasattr(types, "NoneType"):  # Python < 3.10; wamp1 checks "types.NoneType"
        types.NoneType = type(None)
    _install_finder()
    _patch_xormasker()
    _patch_prepared_message()
    _patch_wamp1()
    _applied = True


apply()
