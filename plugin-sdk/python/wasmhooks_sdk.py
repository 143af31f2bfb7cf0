"""The wasmhooks plugin SDK for Python, built with componentize-py.

The same shape as the Rust SDK: an :class:`Event` with its payload parsed,
:class:`Outcome` helpers, :mod:`config`, :mod:`secrets` and :mod:`log`
accessors, outbound :class:`http`, and :func:`hook` to export a function as
the plugin's handler::

    import wasmhooks_sdk as wh

    def handle(event: wh.Event) -> wh.Outcome:
        event.payload["tenant"] = wh.config.get("tenant")
        return wh.Outcome.payload(event.payload)

    Handler = wh.hook(handle)

Build with ``componentize-py -d <sdk>/wit -w hook componentize app -o plugin.wasm``
(``wasmhooks plugin new NAME --lang python`` writes a project that does it).
"""

from __future__ import annotations

import json
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import urlsplit

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import config as _config
from wit_world.imports import outgoing_handler as _outgoing
from wit_world.imports import streams as _streams
from wit_world.imports import wasi_http_types as _http
from wit_world.imports import log as _log
from wit_world.imports import secrets as _secrets
from wit_world.imports import wasmhooks_hook_types as _types

Json = Any
"""A parsed JSON value: dict, list, str, int, float, bool or None."""

RawOutcome = _types.Outcome
"""What the host receives: build one with :class:`Outcome`."""


class Error(Exception):
    """Fails this call with its message (the host records it as the plugin's error)."""


class Event:
    """One event, as a hook sees it, with its payload parsed."""

    def __init__(self, raw: _types.Event) -> None:
        self.id: str = raw.id
        """Stable id of the event (also the delivery's message id)."""
        self.name: str = raw.name
        """Event name, for example ``PostSignIn``."""
        self.created_at: str = raw.created_at
        """When it happened, RFC 3339 in UTC."""
        self.hook_id: str = raw.hook_id
        """The hook whose pipeline runs this plugin."""
        self.trigger: Optional[str] = raw.trigger
        """The synchronous trigger being answered, or None for a delivery."""
        self.payload: Json = json.loads(raw.payload)
        """The payload, parsed."""

    def is_sync(self) -> bool:
        """Whether a synchronous trigger is waiting for an allow or a deny."""
        return self.trigger is not None


def _text(value: Json) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class Outcome:
    """What a plugin decides."""

    @staticmethod
    def payload(value: Json, headers: Optional[Dict[str, str]] = None) -> RawOutcome:
        """Deliveries: go on with ``value`` as the payload (and extra headers)."""
        extra = [_types.Header(name, v) for name, v in (headers or {}).items()]
        return _types.Outcome_Continue(_types.Proceed(_text(value), extra))

    @staticmethod
    def unchanged() -> RawOutcome:
        """Deliveries: go on with the payload as it is."""
        return _types.Outcome_Continue(_types.Proceed(None, []))

    @staticmethod
    def cancel(reason: str) -> RawOutcome:
        """Deliveries: drop this delivery; the reason is recorded."""
        return _types.Outcome_Cancel(reason)

    @staticmethod
    def deny(code: str, message: str) -> RawOutcome:
        """Sync triggers: refuse, with a stable code and a message for the user."""
        return _types.Outcome_Deny(_types.Denial(code, message))

    @staticmethod
    def allow(merge: Optional[Json] = None) -> RawOutcome:
        """Sync triggers: let the flow go on, optionally with an RFC 7396 merge patch."""
        if merge is None:
            return _types.Outcome_Allow(None)
        return _types.Outcome_Allow(_types.Patch_Merge(_text(merge)))

    @staticmethod
    def allow_json_patch(operations: List[Json]) -> RawOutcome:
        """Sync triggers: let the flow go on with an RFC 6902 JSON Patch."""
        return _types.Outcome_Allow(_types.Patch_Json(_text(operations)))


class config:  # noqa: N801 - a namespace, as in the other SDKs
    """Configuration values the hook grants this plugin."""

    @staticmethod
    def get(key: str) -> Optional[str]:
        """The value of ``key``, or None."""
        return _config.get(key)

    @staticmethod
    def require(key: str) -> str:
        """The value of ``key``; fails the call when it is not set."""
        value = _config.get(key)
        if value is None:
            raise Error(f"config value `{key}` is not set")
        return value

    @staticmethod
    def all() -> List[Tuple[str, str]]:
        """Every key and value, sorted by key."""
        return list(_config.get_all())

    @staticmethod
    def list(key: str) -> List[str]:
        """A comma-separated value as its trimmed, non-empty items."""
        value = _config.get(key) or ""
        return [item.strip() for item in value.split(",") if item.strip()]


class secrets:  # noqa: N801
    """Secrets the hook grants this plugin."""

    @staticmethod
    def get(key: str) -> Optional[str]:
        """The secret ``key``, or None."""
        return _secrets.get(key)


class log:  # noqa: N801
    """Log lines, captured with the call."""

    @staticmethod
    def trace(message: str) -> None:
        _log.write(_log.Level.TRACE, message)

    @staticmethod
    def debug(message: str) -> None:
        _log.write(_log.Level.DEBUG, message)

    @staticmethod
    def info(message: str) -> None:
        _log.write(_log.Level.INFO, message)

    @staticmethod
    def warn(message: str) -> None:
        _log.write(_log.Level.WARN, message)

    @staticmethod
    def error(message: str) -> None:
        _log.write(_log.Level.ERROR, message)


class Response:
    """An HTTP response: status, headers (lower-case names) and body."""

    def __init__(self, status: int, headers: List[Tuple[str, str]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name: str) -> Optional[str]:
        """The first value of header ``name``, or None."""
        name = name.lower()
        return next((v for k, v in self.headers if k == name), None)

    def text(self) -> str:
        """The body as UTF-8 text."""
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Json:
        """The body parsed as JSON."""
        return json.loads(self.body)


class HttpError(Exception):
    """The request could not be made: not granted, blocked, timed out or refused."""


_METHODS = {
    "GET": _http.Method_Get(),
    "HEAD": _http.Method_Head(),
    "POST": _http.Method_Post(),
    "PUT": _http.Method_Put(),
    "DELETE": _http.Method_Delete(),
    "PATCH": _http.Method_Patch(),
    "OPTIONS": _http.Method_Options(),
}


class http:  # noqa: N801
    """Outbound HTTP, to the hosts the hook grants (over ``wasi:http``)."""

    @staticmethod
    def request(
        method: str,
        url: str,
        headers: Optional[Dict[str, str]] = None,
        body: Optional[bytes] = None,
    ) -> Response:
        """Send a request and wait for the whole response."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise HttpError(f"`{url}` is not an http(s) URL")
        fields = _http.Fields.from_list(
            [(k.lower(), v.encode()) for k, v in (headers or {}).items()]
        )
        request = _http.OutgoingRequest(fields)
        request.set_method(_METHODS.get(method.upper()) or _http.Method_Other(method))
        request.set_scheme(_http.Scheme_Https() if parts.scheme == "https" else _http.Scheme_Http())
        request.set_authority(parts.netloc)
        request.set_path_with_query((parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
        outgoing = request.body()
        try:
            future = _outgoing.handle(request, None)
        except Err as e:
            raise HttpError(f"{method} {url}: {e.value}")
        with outgoing.write() as stream:
            data = body or b""
            for start in range(0, len(data), 4096):
                stream.blocking_write_and_flush(data[start : start + 4096])
        _http.OutgoingBody.finish(outgoing, None)
        with future.subscribe() as ready:
            ready.block()
        # Some(Ok(Ok(response))), or Some(Ok(Err(error code))).
        answer = future.get()
        if answer is None or isinstance(answer, Err):
            raise HttpError(f"{method} {url}: no response")
        if isinstance(answer.value, Err):
            raise HttpError(f"{method} {url}: {answer.value.value}")
        response = answer.value.value
        status = response.status()
        with response.headers() as fields:
            got = [(k, v.decode("utf-8", errors="replace")) for k, v in fields.entries()]
        incoming = response.consume()
        chunks = []
        with incoming.stream() as stream:
            while True:
                try:
                    chunks.append(stream.blocking_read(65536))
                except Err as e:
                    if isinstance(e.value, _streams.StreamError_Closed):
                        break
                    raise HttpError(f"{method} {url}: reading the body failed")
        return Response(status, got, b"".join(chunks))

    @staticmethod
    def get(url: str, headers: Optional[Dict[str, str]] = None) -> Response:
        """``GET url``."""
        return http.request("GET", url, headers)

    @staticmethod
    def post_json(url: str, body: Json, headers: Optional[Dict[str, str]] = None) -> Response:
        """``POST url`` with a JSON body."""
        sent = {"content-type": "application/json", **(headers or {})}
        return http.request("POST", url, sent, _text(body).encode())


def get_path(value: Json, path: str) -> Json:
    """The value at a dotted ``path`` (``user.primaryEmail``), or None."""
    for key in path.split("."):
        if isinstance(value, dict):
            value = value.get(key)
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            return None
    return value


def set_path(value: Json, path: str, new: Json) -> Json:
    """Set the value at a dotted ``path``, creating objects on the way; returns ``value``."""
    if not isinstance(value, dict):
        value = {}
    current = value
    keys = path.split(".")
    for key in keys[:-1]:
        if not isinstance(current.get(key), dict):
            current[key] = {}
        current = current[key]
    current[keys[-1]] = new
    return value


def hook(handle: Callable[[Event], RawOutcome]) -> type:
    """The handler class componentize-py exports: assign it to ``Handler``."""

    class Handler(exports.Handler):
        def handle(self, event: _types.Event) -> RawOutcome:
            try:
                return handle(Event(event))
            except Err:
                raise
            except Exception as e:  # the call fails with the message
                raise Err(str(e) or type(e).__name__)

    return Handler
