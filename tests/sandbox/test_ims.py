"""Adobe IMS emulation: PKCE, every OAuth error, refresh rotation, revoke, lifetimes."""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

CLIENT = "postflow-sandbox"
REDIRECT = "https://localhost:8765/callback"
SCOPE = "openid email profile offline_access additional_info.roles"


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


def authorize(sandbox: Any, **overrides: str) -> httpx.Response:
    params = {
        "client_id": CLIENT,
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "scope": SCOPE,
        "state": "st-123",
        "code_challenge": pkce()[1],
        "code_challenge_method": "S256",
    }
    params.update(overrides)
    params = {k: v for k, v in params.items() if v != "<omit>"}
    return httpx.get(f"{sandbox.url}/ims/authorize/v2", params=params)


def redirect_params(r: httpx.Response) -> dict[str, str]:
    assert r.status_code == 302, r.text
    location = r.headers["location"]
    return {k: v[0] for k, v in parse_qs(urlparse(location).query).items()}


def get_code(sandbox: Any, challenge: str, redirect: str = REDIRECT) -> str:
    params = redirect_params(authorize(sandbox, code_challenge=challenge, redirect_uri=redirect))
    assert params["state"] == "st-123"
    return params["code"]


def token(sandbox: Any, **form: str) -> httpx.Response:
    return httpx.post(f"{sandbox.url}/ims/token/v3", data={"client_id": CLIENT, **form})


def exchange(sandbox: Any) -> dict[str, Any]:
    verifier, challenge = pkce()
    code = get_code(sandbox, challenge)
    r = token(sandbox, grant_type="authorization_code", code=code, code_verifier=verifier)
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_authorize_redirects_with_code_and_state(sandbox: Any) -> None:
    params = redirect_params(authorize(sandbox))
    assert params["state"] == "st-123" and params["code"]


@pytest.mark.parametrize(
    "redirect",
    [
        "http://127.0.0.1:51234/cb",
        "http://localhost:9/x",
        "https://localhost:443/callback",
    ],
)
def test_default_client_accepts_loopback_redirects_on_any_port(sandbox: Any, redirect: str) -> None:
    assert urlparse(authorize(sandbox, redirect_uri=redirect).headers["location"]).netloc in redirect


def test_unknown_client_is_an_error_page_not_a_redirect(sandbox: Any) -> None:
    r = authorize(sandbox, client_id="nobody")
    assert r.status_code == 400 and r.json()["error"] == "invalid_client"


@pytest.mark.parametrize(
    "redirect", ["https://evil.example/cb", "http://10.0.0.1:80/cb", "https://localhost.evil/x"]
)
def test_unregistered_redirect_uri_is_refused_without_redirecting(sandbox: Any, redirect: str) -> None:
    r = authorize(sandbox, redirect_uri=redirect)
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    assert "redirect_uri" in r.json()["error_description"]


def test_missing_pkce_is_an_oauth_error_on_the_redirect(sandbox: Any) -> None:
    params = redirect_params(authorize(sandbox, code_challenge="<omit>", code_challenge_method="<omit>"))
    assert params["error"] == "invalid_request" and "code" not in params and params["state"] == "st-123"


def test_plain_pkce_is_refused(sandbox: Any) -> None:
    params = redirect_params(authorize(sandbox, code_challenge_method="plain"))
    assert params["error"] == "invalid_request" and "S256" in params["error_description"]


def test_code_exchange_verifies_s256(sandbox: Any) -> None:
    verifier, challenge = pkce()
    code = get_code(sandbox, challenge)
    r = token(sandbox, grant_type="authorization_code", code=code, code_verifier=pkce()[0])
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    short = token(sandbox, grant_type="authorization_code", code=code, code_verifier="short")
    assert short.json()["error"] == "invalid_request"


def test_tokens_shape_and_userinfo(sandbox: Any) -> None:
    body = exchange(sandbox)
    assert set(body) >= {"access_token", "refresh_token", "expires_in", "token_type", "id_token"}
    assert body["token_type"] == "bearer" and body["expires_in"] > 0
    # Like IMS's JWTs: together they exceed one Windows keychain entry (2,560 bytes of UTF-16).
    assert len(body["access_token"]) > 1000
    assert 2 * (len(body["access_token"]) + len(body["refresh_token"])) > 2560
    info = httpx.get(
        f"{sandbox.url}/ims/userinfo/v2",
        headers={"Authorization": f"Bearer {body['access_token']}"},
    )
    assert info.status_code == 200 and info.json()["email"]
    me = httpx.get(f"{sandbox.url}/v4/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200


def test_reused_code_is_invalid_grant(sandbox: Any) -> None:
    verifier, challenge = pkce()
    code = get_code(sandbox, challenge)
    assert (
        token(sandbox, grant_type="authorization_code", code=code, code_verifier=verifier).status_code == 200
    )
    again = token(sandbox, grant_type="authorization_code", code=code, code_verifier=verifier)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_expired_code_is_invalid_grant(sandbox: Any) -> None:
    verifier, challenge = pkce()
    code = get_code(sandbox, challenge)
    sandbox.control("/_sandbox/clock", {"advance_seconds": 301})
    r = token(sandbox, grant_type="authorization_code", code=code, code_verifier=verifier)
    assert r.json()["error"] == "invalid_grant" and "expired" in r.json()["error_description"]


def test_refresh_rotates_and_old_refresh_token_dies(sandbox: Any) -> None:
    first = exchange(sandbox)
    r = token(sandbox, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert r.status_code == 200
    second = r.json()
    assert second["refresh_token"] != first["refresh_token"]
    reused = token(sandbox, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    third = token(sandbox, grant_type="refresh_token", refresh_token=second["refresh_token"])
    assert third.status_code == 200


def test_expired_refresh_token_is_invalid_grant(sandbox: Any) -> None:
    first = exchange(sandbox)
    sandbox.control("/_sandbox/clock", {"advance_seconds": 15 * 86400})
    r = token(sandbox, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert r.json()["error"] == "invalid_grant"


def test_access_token_lifetime_is_settable_and_expiry_gives_401(sandbox: Any) -> None:
    sandbox.control("/_sandbox/settings", {"access_token_lifetime": 3})
    body = exchange(sandbox)
    assert body["expires_in"] == 3
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    assert httpx.get(f"{sandbox.url}/v4/me", headers=headers).status_code == 200
    sandbox.control("/_sandbox/clock", {"advance_seconds": 4})
    assert httpx.get(f"{sandbox.url}/v4/me", headers=headers).status_code == 401


def test_revoke_kills_both_tokens(sandbox: Any) -> None:
    body = exchange(sandbox)
    for kind in ("access_token", "refresh_token"):
        r = httpx.post(f"{sandbox.url}/ims/revoke", data={"client_id": CLIENT, "token": body[kind]})
        assert r.status_code == 200
    assert (
        httpx.get(
            f"{sandbox.url}/v4/me", headers={"Authorization": f"Bearer {body['access_token']}"}
        ).status_code
        == 401
    )
    assert (
        token(sandbox, grant_type="refresh_token", refresh_token=body["refresh_token"]).json()["error"]
        == "invalid_grant"
    )
    assert sorted(sandbox.control("/_sandbox/ims")["revoked"]) == ["access", "refresh"]


def test_confidential_client_needs_its_secret(sandbox: Any) -> None:
    params = redirect_params(
        authorize(
            sandbox,
            client_id="postflow-sandbox-web",
            code_challenge="<omit>",
            code_challenge_method="<omit>",
        )
    )
    form = {
        "client_id": "postflow-sandbox-web",
        "grant_type": "authorization_code",
        "code": params["code"],
    }
    bad = httpx.post(f"{sandbox.url}/ims/token/v3", data=form)
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"
    good = httpx.post(f"{sandbox.url}/ims/token/v3", data={**form, "client_secret": "sandbox-web-secret"})
    assert good.status_code == 200


def test_unsupported_grant_and_wrong_content_type(sandbox: Any) -> None:
    assert token(sandbox, grant_type="password").json()["error"] == "unsupported_grant_type"
    r = httpx.post(f"{sandbox.url}/ims/token/v3", json={"grant_type": "refresh_token"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"


def test_no_refresh_token_without_offline_access_or_when_disabled(sandbox: Any) -> None:
    verifier, challenge = pkce()
    params = redirect_params(authorize(sandbox, code_challenge=challenge, scope="openid email"))
    r = token(sandbox, grant_type="authorization_code", code=params["code"], code_verifier=verifier)
    assert "refresh_token" not in r.json()
    sandbox.control("/_sandbox/settings", {"issue_refresh_tokens": False})
    assert "refresh_token" not in exchange(sandbox)
