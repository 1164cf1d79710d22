"""Who may talk to the UI: the token on a non-loopback address, and same-origin requests for every change.

On 127.0.0.1 (the default) the UI needs no token. On any other address `serve` refuses to start without one, and
then every request must carry it: `Authorization: Bearer TOKEN`, or once `?token=TOKEN` has been opened in the
browser, the HttpOnly SameSite=Strict cookie set from it (the query string is then dropped by a redirect, so the
token does not stay in the address bar or the history). Whatever the address, a state-changing request (POST) is
refused when its Origin is another site, and a Host header that is not this server's is refused on loopback, so
a web page elsewhere cannot drive the UI through the browser (CSRF, DNS rebinding).
"""

from __future__ import annotations

import hmac
import urllib.parse

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse

from ..hosts import is_loopback

COOKIE = "envbuild_ui_token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class Guard:
    """ASGI middleware in front of every route (pure ASGI, so that event streams pass through unbuffered)."""

    def __init__(self, app, *, token: str | None, loopback: bool):
        self.app, self.token, self.loopback = app, token, loopback

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request = Request(scope)
        refusal = self._refusal(request)
        if refusal is not None:
            return await refusal(scope, receive, send)
        given = request.query_params.get("token")
        if self.token and given and request.method in SAFE_METHODS:
            # Trade the token in the address for a cookie, and take it out of the address.
            kept = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
            target = request.url.path + (f"?{urllib.parse.urlencode(kept)}" if kept else "")
            response = RedirectResponse(target, status_code=303)
            response.set_cookie(COOKIE, self.token, httponly=True, samesite="strict")
            return await response(scope, receive, send)
        return await self.app(scope, receive, send)

    def _refusal(self, request: Request):
        if self.loopback and not is_loopback(request.url.hostname or ""):
            return PlainTextResponse("this envbuild UI answers on its loopback address only", status_code=403)
        if self.token and not self._carries_token(request):
            return PlainTextResponse("envbuild ui: a token is needed (Authorization: Bearer TOKEN, or open "
                                     "the page once with ?token=TOKEN)", status_code=401,
                                     headers={"WWW-Authenticate": "Bearer"})
        if request.method not in SAFE_METHODS and not _same_origin(request):
            return PlainTextResponse("cross-site request refused", status_code=403)
        return None

    def _carries_token(self, request: Request) -> bool:
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        offered = [credentials if scheme.lower() == "bearer" else "", request.cookies.get(COOKIE, "")]
        if request.method in SAFE_METHODS:
            offered.append(request.query_params.get("token", ""))
        return any(hmac.compare_digest(value.encode(), self.token.encode()) for value in offered if value)


def _same_origin(request: Request) -> bool:
    """No Origin header (a script or curl), or one naming this very server."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    parts = urllib.parse.urlsplit(origin)
    return parts.netloc == request.headers.get("host", "")
