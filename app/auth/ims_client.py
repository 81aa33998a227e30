"""Adobe IMS over HTTP: authorize URL, code exchange, refresh, revoke, userinfo.

Every failure becomes one of our errors with a sentence a person can act on:
``SignedOut`` (invalid_grant: sign in again), ``AuthError`` (refused, not retryable),
``ServiceUnavailable`` (down, slow, or answering garbage: retry later).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

import httpx

from app.auth.tokens import TokenSet
from app.core.errors import AuthError, ServiceUnavailable, SignedOut


class ImsClient:
    def __init__(
        self,
        base_url: str,
        client_id: str,
        *,
        client_secret: str | None = None,
        http: httpx.AsyncClient | None = None,
        timeout: float = 20.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.client_id = client_id
        self._secret = client_secret
        self._http = http or httpx.AsyncClient(timeout=timeout)
        self._owns_http = http is None

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    def authorize_url(self, redirect_uri: str, scopes: Sequence[str], state: str, challenge: str) -> str:
        query = urlencode(
            {
                "client_id": self.client_id,
                "redirect_uri": redirect_uri,
                "response_type": "code",
                "scope": " ".join(scopes),
                "state": state,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
        )
        return f"{self.base_url}/ims/authorize/v2?{query}"

    async def exchange_code(self, code: str, verifier: str, redirect_uri: str) -> TokenSet:
        doc = await self._token_call(
            {
                "grant_type": "authorization_code",
                "code": code,
                "code_verifier": verifier,
                "redirect_uri": redirect_uri,
            }  # fmt: skip
        )
        return self._tokens(doc, previous_refresh=None)

    async def refresh(self, refresh_token: str) -> TokenSet:
        doc = await self._token_call({"grant_type": "refresh_token", "refresh_token": refresh_token})
        return self._tokens(doc, previous_refresh=refresh_token)

    async def revoke(self, token: str, kind: str) -> None:
        form = {"client_id": self.client_id, "token": token, "token_type": kind}
        if self._secret:
            form["client_secret"] = self._secret
        await self._send("POST", "/ims/revoke", data=form)

    async def userinfo(self, access_token: str) -> dict[str, Any]:
        response = await self._send(
            "GET", "/ims/userinfo/v2", headers={"Authorization": f"Bearer {access_token}"}
        )
        return self._json(response)

    # ---- internals ----
    async def _token_call(self, form: dict[str, str]) -> dict[str, Any]:
        form = {"client_id": self.client_id, **form}
        if self._secret:
            form["client_secret"] = self._secret
        response = await self._send("POST", "/ims/token/v3", data=form)
        return self._json(response)

    async def _send(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            response = await self._http.request(method, self.base_url + path, **kw)
        except httpx.TimeoutException:
            raise ServiceUnavailable(
                "Adobe sign-in did not answer in time. PostFlow will try again shortly."
            ) from None
        except httpx.TransportError as exc:
            raise ServiceUnavailable(
                f"Adobe sign-in cannot be reached ({type(exc).__name__}). "
                "Check the network; PostFlow will try again shortly."
            ) from None
        if response.status_code >= 500:
            raise ServiceUnavailable(
                f"Adobe sign-in is having trouble (HTTP {response.status_code}). "
                "PostFlow will try again shortly.",
                status=response.status_code,
            )
        if response.status_code >= 400:
            self._raise_oauth_error(response)
        return response

    def _raise_oauth_error(self, response: httpx.Response) -> None:
        try:
            doc = response.json()
            error, description = str(doc.get("error", "")), str(doc.get("error_description", ""))
        except (ValueError, AttributeError):
            error, description = "", ""
        if error == "invalid_grant":
            raise SignedOut("Your Adobe sign-in has ended. Sign in again to continue uploading.")
        if not error:
            raise ServiceUnavailable(
                f"Adobe sign-in answered HTTP {response.status_code} without an explanation.",
                status=response.status_code,
            )
        detail = f"{error}: {description}" if description else error
        raise AuthError(f"Adobe refused the sign-in ({detail}).")

    @staticmethod
    def _json(response: httpx.Response) -> dict[str, Any]:
        try:
            doc = response.json()
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            ctype = response.headers.get("content-type", "no content type")
            raise ServiceUnavailable(
                f"Adobe sign-in answered something unexpected (HTTP {response.status_code}, {ctype}). "
                "PostFlow will try again shortly."
            )
        return doc

    @staticmethod
    def _tokens(doc: dict[str, Any], previous_refresh: str | None) -> TokenSet:
        access = doc.get("access_token")
        expires_in = doc.get("expires_in")
        if not isinstance(access, str) or not access or not isinstance(expires_in, int | float):
            raise ServiceUnavailable("Adobe sign-in answered without a usable token. Try again shortly.")
        refresh = doc.get("refresh_token")
        if not isinstance(refresh, str) or not refresh:
            refresh = previous_refresh  # IMS may omit it on refresh: keep the one we have
        now = time.time()
        return TokenSet(
            access_token=access, expires_at=now + float(expires_in), refresh_token=refresh, issued_at=now
        )
