"""The REST service's front door: every request passes these checks before any route runs.

1. Host: bound to loopback, the Host header must name a loopback host (a DNS-rebinding page names its own).
2. Origin: a request carrying an Origin other than the service's own is refused unless the operator listed it
   (``--allow-origin``). Browsers send Origin on cross-site requests, so a web page cannot drive the service.
3. Token: ``Authorization: Bearer <token>`` on every route but ``/health``, compared in constant time.
4. Bodies are JSON only (415 otherwise): ``text/plain`` and form posts are what a page sends without a CORS
   preflight.
A pure ASGI middleware, so it also covers ``/docs`` and ``/openapi.json``, which FastAPI routes outside its
dependency system.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

HEALTH_PATH = "/health"
# A token a person chose: shorter than this is guessable by trying (the generated one has 43 characters)
MIN_TOKEN_CHARS = 16


def token_problem(token: str) -> str | None:
    """Why a given --token is refused (one line), or None: too short, or with spaces a header would lose."""
    if token != token.strip() or any(c.isspace() for c in token):
        return "--token holds whitespace, which an Authorization header does not carry; give it without"
    if len(token) < MIN_TOKEN_CHARS:
        return (
            f"--token has {len(token)} characters; give at least {MIN_TOKEN_CHARS} (e.g. python -c "
            "'import secrets; print(secrets.token_urlsafe(32))'), or omit it and one is generated"
        )
    return None


_BODY_METHODS = {"POST", "PUT", "PATCH"}

Scope = dict[str, Any]
ASGIApp = Callable[[Scope, Callable, Callable], Awaitable[None]]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a hostname: may resolve anywhere, treat as exposed


def _origin(value: str) -> str:
    return value.strip().rstrip("/").lower()


class RequestGuard:
    def __init__(
        self, app: ASGIApp, *, token: str, allow_origins: Sequence[str] = (), loopback_only_hosts: bool = False
    ) -> None:
        if not token:
            raise ValueError("the REST service needs a token")
        self.app = app
        self._token = token.encode()
        self._origins = {_origin(o) for o in allow_origins}
        self._loopback_hosts = loopback_only_hosts

    async def __call__(self, scope: Scope, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self.refusal(scope)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        status, detail = refusal
        headers = [(b"content-type", b"application/json")]
        if status == 401:
            headers.append((b"www-authenticate", b"Bearer"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": json.dumps({"detail": detail}).encode()})

    def refusal(self, scope: Scope) -> tuple[int, str] | None:
        """(status, one line) for a request to refuse, None to let it through."""
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = headers.get("host", "")
        if self._loopback_hosts and not is_loopback(urlsplit(f"//{host}").hostname or ""):
            return 403, f"Host {host!r} is not a loopback name: this service answers only on loopback"
        origin = headers.get("origin")
        if origin is not None:
            own = _origin(f"{scope.get('scheme', 'http')}://{host}")
            if _origin(origin) != own and _origin(origin) not in self._origins:
                return 403, (
                    f"cross-origin request refused: Origin {origin!r} is not this service's "
                    "(the operator may allow it with serve-api --allow-origin)"
                )
        if scope["path"] != HEALTH_PATH and not self._token_ok(headers.get("authorization", "")):
            return 401, "missing or wrong bearer token (send 'Authorization: Bearer <token>')"
        if scope["method"] in _BODY_METHODS:
            media = headers.get("content-type", "").split(";")[0].strip().lower()
            if media != "application/json":
                return 415, f"request body must be application/json (got {media or 'no content type'!r})"
        return None

    def _token_ok(self, authorization: str) -> bool:
        scheme, _, given = authorization.partition(" ")
        # compare_digest even for a wrong scheme, so timing does not tell which part was wrong
        return secrets.compare_digest(given.strip().encode(), self._token) and scheme.lower() == "bearer"
