"""The sign-in facade the GUI and CLI use: start a flow, finish it, say who is signed in, sign out."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Protocol

from keyring.backend import KeyringBackend

from app.auth.ims_client import ImsClient
from app.auth.signin import SignInFlow
from app.auth.token_provider import TokenProvider
from app.auth.token_store import TokenStore
from app.auth.tokens import TokenSet
from app.core.errors import AuthError, ConfigError
from app.core.settings import SANDBOX_CLIENT_ID, Settings
from app.frameio.models import Account, Me

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


def backend_for(settings: Settings) -> KeyringBackend | None:
    """The keychain backend the settings ask for (None: the OS keychain keyring picks)."""
    if settings.keyring_backend == "encrypted-file":
        from app.auth.encrypted_file_keyring import EncryptedFileKeyring

        return EncryptedFileKeyring(settings.paths.data_dir / "tokens.enc")
    return None


def client_secret(settings: Settings, endpoints: Endpoints, store: TokenStore) -> str | None:
    """A "web" credential's secret lives in the keychain, never in the config file."""
    if settings.credential_type != "web":
        return None
    secret = store.backend.get_password(endpoints.keychain_service, CLIENT_SECRET_KEY)
    if not secret:
        raise ConfigError(
            "auth.credential_type is 'web' but no client secret is in the keychain "
            f"(service {endpoints.keychain_service!r}, entry {CLIENT_SECRET_KEY!r})."
        )
    return secret


class AccountDirectory(Protocol):
    """Who signed in and which accounts they see: the Frame.io client, handed in by the
    composition root (auth builds no Frame.io client of its own)."""

    async def me(self) -> Me: ...

    async def accounts(self) -> list[Account]: ...


class AuthService:
    """Built by ``app.composition``; owns no connections of its own."""

    def __init__(
        self,
        settings: Settings,
        endpoints: Endpoints,
        store: TokenStore,
        ims: ImsClient,
        provider: TokenProvider,
        directory: AccountDirectory,
    ) -> None:
        self.settings = settings
        self.endpoints = endpoints
        self.store = store
        self.ims = ims
        self.provider = provider
        self._directory = directory

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
        me = await self._directory.me()
        accounts = await self._directory.accounts()
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
