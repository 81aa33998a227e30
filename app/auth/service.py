"""The sign-in facade the GUI and CLI use: start a flow, finish it, say who is signed in, sign out."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import httpx
from keyring.backend import KeyringBackend

from app.auth.ims_client import ImsClient
from app.auth.signin import SignInFlow
from app.auth.token_provider import TokenProvider
from app.auth.token_store import TokenStore
from app.auth.tokens import TokenSet
from app.core.errors import AuthError, ConfigError
from app.core.events import EventBus
from app.core.settings import SANDBOX_CLIENT_ID, Settings
from app.frameio.client import FrameioClient

log = logging.getLogger(__name__)
CLIENT_SECRET_KEY = "client_secret"


@dataclass(frozen=True)
class Endpoints:
    api_url: str
    ims_url: str
    client_id: str
    redirect_uri: str
    keychain_service: str
    sandbox: bool


def keychain_service(settings: Settings) -> str:
    """Sandbox tokens are kept apart from real ones, so a demo never overwrites a sign-in."""
    return "PostFlow Sandbox" if settings.sandbox else "PostFlow"


def endpoints_for(settings: Settings) -> Endpoints:
    """Where to sign in and upload. Sandbox mode points both services at the sandbox."""
    if settings.sandbox:
        if not settings.sandbox_url:
            raise ConfigError(
                "Sandbox mode needs a running sandbox: start `postflow sandbox` and set "
                "POSTFLOW_SANDBOX_URL (or sandbox.url) to the address it prints."
            )
        url = settings.sandbox_url.rstrip("/")
        client = settings.client_id or SANDBOX_CLIENT_ID
        return Endpoints(url, url, client, settings.redirect_uri, keychain_service(settings), True)
    if not settings.client_id:
        raise ConfigError(
            "No Adobe client id is set: set auth.client_id in config.toml or POSTFLOW_CLIENT_ID "
            "(from the Adobe Developer Console), or try PostFlow with --sandbox."
        )
    return Endpoints(
        settings.api_url,
        settings.ims_url,
        settings.client_id,
        settings.redirect_uri,
        keychain_service(settings),
        False,
    )


def _backend_for(settings: Settings) -> KeyringBackend | None:
    if settings.keyring_backend == "encrypted-file":
        from app.auth.encrypted_file_keyring import EncryptedFileKeyring

        return EncryptedFileKeyring(settings.paths.data_dir / "tokens.enc")
    return None  # the OS keychain keyring picks


class AuthService:
    def __init__(self, settings: Settings, bus: EventBus, store: TokenStore | None = None) -> None:
        self.settings = settings
        self.endpoints = endpoints_for(settings)
        self.store = store or TokenStore(self.endpoints.keychain_service, _backend_for(settings))
        secret = None
        if settings.credential_type == "web":
            secret = self.store.backend.get_password(self.endpoints.keychain_service, CLIENT_SECRET_KEY)
            if not secret:
                raise ConfigError(
                    "auth.credential_type is 'web' but no client secret is in the keychain "
                    f"(service {self.endpoints.keychain_service!r}, entry {CLIENT_SECRET_KEY!r})."
                )
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(20.0, connect=10.0))
        self.ims = ImsClient(
            self.endpoints.ims_url, self.endpoints.client_id, client_secret=secret, http=self._http
        )
        self.provider = TokenProvider(self.ims, self.store, bus)
        self.frameio = FrameioClient(self.endpoints.api_url, self.provider)

    async def aclose(self) -> None:
        await self.frameio.aclose()
        await self._http.aclose()

    def new_flow(self, redirect_uri: str | None = None) -> SignInFlow:
        return SignInFlow(self.ims, redirect_uri or self.endpoints.redirect_uri, self.settings.scopes)

    async def finish(self, flow: SignInFlow, redirect_url: str) -> TokenSet:
        """Exchange the code, keep the tokens, then learn who signed in and which account."""
        tokens = await flow.complete(redirect_url)
        await self.provider.adopt(tokens, announce=False)  # announced once the account is known
        try:
            return await self._identify(tokens)
        except BaseException:
            await self.provider.sign_out("Sign-in could not be completed.")
            raise

    async def _identify(self, tokens: TokenSet) -> TokenSet:
        me = await self.frameio.me()
        accounts = await self.frameio.accounts()
        if not accounts:
            raise AuthError(f"{me.email} has no Frame.io account. Ask your admin for access.")
        wanted = self.settings.account_id
        account = next((a for a in accounts if a.id == wanted), None) if wanted else accounts[0]
        if account is None:
            raise AuthError(
                f"{me.email} cannot see the Frame.io account {wanted!r} named in frameio.account_id."
            )
        current = self.provider.tokens or tokens
        named = replace(current, account_id=account.id, user_name=me.name, user_email=me.email)
        await self.provider.adopt(named)
        log.info("signed in as %s (account %s)", me.email, account.name)
        return named

    async def sign_out(self) -> None:
        await self.provider.sign_out("You signed out.")
