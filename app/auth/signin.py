"""One sign-in attempt: PKCE + state, the authorize URL, and turning the redirect into tokens.

Both ways of catching the redirect (the popup window, the loopback listener or a pasted address)
end in ``SignInFlow.complete(redirect_url)``.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from urllib.parse import parse_qs, urlsplit

from app.auth.ims_client import ImsClient
from app.auth.pkce import Pkce, new_state
from app.auth.tokens import TokenSet
from app.core.errors import AuthError, SignInCancelled


class SignInFlow:
    def __init__(self, ims: ImsClient, redirect_uri: str, scopes: Sequence[str]) -> None:
        self._ims = ims
        self.redirect_uri = redirect_uri
        self._pkce = Pkce.new()
        self._state = new_state()
        self.authorize_url = ims.authorize_url(redirect_uri, scopes, self._state, self._pkce.challenge)

    def matches_redirect(self, url: str) -> bool:
        """Is this navigation the redirect we wait for? (scheme, host, port and path)"""
        want, got = urlsplit(self.redirect_uri), urlsplit(url)
        same_port = (want.port or 0) == (got.port or 0) or want.port in (None, 0)
        return (
            want.scheme == got.scheme
            and want.hostname == got.hostname
            and same_port
            and (want.path or "/") == (got.path or "/")
        )

    def code_from(self, url: str) -> str:
        query = {k: v[0] for k, v in parse_qs(urlsplit(url.strip()).query).items()}
        if not self.matches_redirect(url.strip()):
            raise AuthError(
                "That address is not the sign-in redirect PostFlow is waiting for. "
                f"It should start with {self.redirect_uri}."
            )
        if not hmac.compare_digest(query.get("state", ""), self._state):
            raise AuthError(
                "The sign-in answer did not match this sign-in attempt (state mismatch), "
                "so PostFlow refused it. Start the sign-in again."
            )
        error = query.get("error")
        if error == "access_denied":
            raise SignInCancelled("Sign-in was cancelled.")
        if error:
            detail = query.get("error_description", "")
            raise AuthError(f"Adobe refused the sign-in ({error}{': ' + detail if detail else ''}).")
        code = query.get("code")
        if not code:
            raise AuthError("The sign-in answer carried no authorization code. Start the sign-in again.")
        return code

    async def complete(self, redirect_url: str) -> TokenSet:
        code = self.code_from(redirect_url)
        return await self._ims.exchange_code(code, self._pkce.verifier, self.redirect_uri)
