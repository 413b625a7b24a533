"""Logging: text or one JSON object per line, each record carrying the request id.

`X-Request-ID` is taken from the request when it looks sane (a proxy's id flows through),
generated otherwise, echoed on the response and attached to every record logged while the
request runs (tasks started by it inherit it too). One access line per HTTP request goes to
the `chainfolio.access` logger with method, route, status and duration.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import unquote_plus

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LogFormat = Literal["text", "json"]

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

_SAFE_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")
# standard LogRecord attributes, and uvicorn's colour duplicate of the message
_RECORD_FIELDS = frozenset(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "color_message",
}
access_log = logging.getLogger("chainfolio.access")


class RequestIdFilter(logging.Filter):
    """Adds `request_id` (or None) to every record passing a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Never drops a record; only annotates it."""
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get()
        return True


_QUERY_PARAM = re.compile(r"((?:^|[?&;\s\"'])([^=&;?\s\"']{1,64})=)([^&;\s\"']+)")
_SECRET_NAMES = frozenset(
    {
        "token",
        "access_token",
        "apikey",
        "api_key",
        "authtoken",
        "auth_token",
        "authorization",
        "jwt",
    }
)


def _secret_name(name: str) -> bool:
    # the name as the server would read it: `%74oken` and `%2574oken` are `token` too
    for _ in range(3):
        decoded = unquote_plus(name)
        if decoded == name:
            break
        name = decoded
    return name.strip().lower() in _SECRET_NAMES


def _redact(match: re.Match[str]) -> str:
    return f"{match.group(1)}[redacted]" if _secret_name(match.group(2)) else match.group(0)


class RedactSecrets(logging.Filter):
    """Masks credentials in query strings: `/v1/ws?token=…` would otherwise reach the logs
    through uvicorn's websocket line, and a JWT in a log file is a usable credential."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Never drops a record; rewrites its message when it carries a secret."""
        message = record.getMessage()
        redacted = _QUERY_PARAM.sub(_redact, message) if "=" in message else message
        if redacted != message:
            record.msg, record.args = redacted, ()
            if hasattr(record, "color_message"):
                record.color_message = redacted
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, request id, extras."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON line."""
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and key not in entry and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def logging_config(log_format: LogFormat = "text", level: str = "INFO") -> dict[str, Any]:
    """A `logging.config.dictConfig` dict (also uvicorn's `log_config`, so its workers
    log the same way)."""
    text = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"
    formatter: dict[str, Any] = {"()": JsonFormatter} if log_format == "json" else {"format": text}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "request_id": {"()": RequestIdFilter},
            "redact": {"()": RedactSecrets},
        },
        "formatters": {"default": formatter},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "filters": ["request_id", "redact"],
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["default"], "level": level.upper()},
        "loggers": {
            # uvicorn installs its own handlers unless told; send everything to ours
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": False},
        },
    }


def _incoming_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            return candidate if _SAFE_ID.fullmatch(candidate) else None
    return None


class RequestIds:
    """Accepts or makes `X-Request-ID`, echoes it, and logs one access line per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        rid = _incoming_id(scope) or uuid.uuid4().hex
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] in ("http.response.start", "websocket.accept"):
                status = message.get("status", 101)
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if scope["type"] == "http":
                access_log.info(
                    "%s %s %s",
                    scope["method"],
                    scope["path"],
                    status,
                    extra={
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                        "client": (scope.get("client") or ("", 0))[0],
                    },
                )
        # Reset only on success: an exception goes on to Starlette's outermost error handler,
        # whose "unhandled error" record should still name the request.
        request_id.reset(token)


class ClientErrorLog:
    """Logs client errors (bad input, refused documents) once each at INFO, without traceback,
    at most `per_minute` a minute per client; the rest are counted and summed up in the next
    logged line. A fuzzing or broken client cannot flood the log; server faults are logged
    elsewhere, at ERROR."""

    def __init__(
        self, per_minute: int = 10, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._per_minute = per_minute
        self._clock = clock
        self._windows: OrderedDict[str, tuple[float, int, int]] = OrderedDict()

    def note(self, logger: logging.Logger, client: str, message: str) -> None:
        """Log `message` for `client` unless it already used its minute's lines."""
        now = self._clock()
        start, logged, dropped = self._windows.pop(client, (now, 0, 0))
        if now - start >= 60:
            start, logged = now, 0
        if logged < self._per_minute:
            suffix = f" ({dropped} more from this client not logged)" if dropped else ""
            logger.info("client error from %s: %s%s", client, message[:500], suffix)
            logged, dropped = logged + 1, 0
        else:
            dropped += 1
        self._windows[client] = (start, logged, dropped)
        if len(self._windows) > _CLIENTS_TRACKED:
            self._windows.popitem(last=False)


_CLIENTS_TRACKED = 10_000
