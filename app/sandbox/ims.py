"""Adobe IMS: authorize (auto-consenting test user), token v3, revoke, userinfo v2."""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from app.sandbox.context import Sandbox, get_sandbox
from app.sandbox.model import AuthCode
from app.sandbox.responses import json_response

routes = web.RouteTableDef()


def oauth_error(error: str, description: str, status: int = 400) -> web.Response:
    return json_response({"error": error, "error_description": description}, status)


def _redirect(uri: str, params: dict[str, str]) -> web.Response:
    sep = "&" if "?" in uri else "?"
    return web.Response(status=302, headers={"Location": uri + sep + urlencode(params)})


@routes.get("/ims/authorize/v2")
async def authorize(request: web.Request) -> web.Response:
    sb = get_sandbox(request)
    q = request.query
    client = sb.config.clients.get(q.get("client_id", ""))
    if client is None:
        return oauth_error("invalid_client", "Unknown client_id")
    redirect_uri = q.get("redirect_uri", "")
    if not client.allows_redirect(redirect_uri):
        return oauth_error("invalid_request", "redirect_uri is not registered for this client")
    state = q.get("state")
    base = {"state": state} if state is not None else {}
    if q.get("response_type") != "code":
        return _redirect(redirect_uri, {"error": "unsupported_response_type", **base})
    challenge = q.get("code_challenge")
    method = q.get("code_challenge_method")
    public = client.client_secret is None
    if challenge or public:
        if not challenge:
            return _redirect(
                redirect_uri,
                {
                    "error": "invalid_request",
                    "error_description": "code_challenge required",
                    **base,
                },
            )
        if method != "S256":
            return _redirect(
                redirect_uri,
                {
                    "error": "invalid_request",
                    "error_description": "code_challenge_method must be S256",
                    **base,
                },
            )
    code = "sbx_" + secrets.token_urlsafe(24)
    sb.store.codes[code] = AuthCode(
        code=code,
        client_id=client.client_id,
        redirect_uri=redirect_uri,
        code_challenge=challenge,
        scope=q.get("scope", ""),
        expires_at=sb.clock.now() + sb.config.auth_code_lifetime,
    )
    sb.store.changed()
    return _redirect(redirect_uri, {"code": code, **base})


def _token_response(sb: Sandbox, client_id: str, scope: str) -> web.Response:
    user = sb.default_user()
    access = sb.mint_token("access", client_id, user, sb.config.access_token_lifetime)
    body: dict[str, Any] = {
        "access_token": access.token,
        "token_type": "bearer",
        "expires_in": int(sb.config.access_token_lifetime),
        "id_token": access.token.split(".")[0] + ".e30." + secrets.token_urlsafe(32),
    }
    if sb.issue_refresh_tokens and "offline_access" in scope.replace(",", " ").split():
        refresh = sb.mint_token("refresh", client_id, user, sb.config.refresh_token_lifetime)
        body["refresh_token"] = refresh.token
    return json_response(body)


def _check_client(sb: Sandbox, form: Any) -> tuple[str, web.Response | None]:
    client_id = form.get("client_id", "")
    client = sb.config.clients.get(client_id)
    if client is None:
        return client_id, oauth_error("invalid_client", "Unknown client_id", 401)
    if client.client_secret is not None and form.get("client_secret") != client.client_secret:
        return client_id, oauth_error("invalid_client", "Invalid client_secret", 401)
    return client_id, None


@routes.post("/ims/token/v3")
async def token(request: web.Request) -> web.Response:
    sb = get_sandbox(request)
    if not request.content_type.startswith("application/x-www-form-urlencoded"):
        return oauth_error("invalid_request", "Body must be application/x-www-form-urlencoded")
    form = await request.post()
    grant = form.get("grant_type", "")
    sb.ims.token_requests[str(grant)] += 1
    client_id, problem = _check_client(sb, form)
    if problem is not None:
        return problem
    if grant == "authorization_code":
        return _exchange_code(sb, form, client_id)
    if grant == "refresh_token":
        return _refresh(sb, form, client_id)
    return oauth_error("unsupported_grant_type", f"grant_type {grant!r} is not supported")


def _exchange_code(sb: Sandbox, form: Any, client_id: str) -> web.Response:
    entry = sb.store.codes.get(str(form.get("code", "")))
    if entry is None or entry.client_id != client_id:
        return oauth_error("invalid_grant", "Authorization code is invalid")
    if entry.used:
        return oauth_error("invalid_grant", "Authorization code was already used")
    if entry.expires_at <= sb.clock.now():
        return oauth_error("invalid_grant", "Authorization code has expired")
    redirect_uri = form.get("redirect_uri")
    if redirect_uri is not None and redirect_uri != entry.redirect_uri:
        return oauth_error("invalid_grant", "redirect_uri does not match the authorize request")
    if entry.code_challenge is not None:
        verifier = str(form.get("code_verifier", ""))
        if not 43 <= len(verifier) <= 128:
            return oauth_error("invalid_request", "code_verifier must be 43 to 128 characters")
        digest = hashlib.sha256(verifier.encode()).digest()
        expected = base64.urlsafe_b64encode(digest).decode().rstrip("=")
        if expected != entry.code_challenge:
            return oauth_error("invalid_grant", "PKCE verification failed")
    entry.used = True
    sb.store.changed()
    return _token_response(sb, client_id, entry.scope)


def _refresh(sb: Sandbox, form: Any, client_id: str) -> web.Response:
    issued = sb.store.tokens.get(str(form.get("refresh_token", "")))
    if issued is None or issued.kind != "refresh" or issued.client_id != client_id:
        return oauth_error("invalid_grant", "Refresh token is invalid")
    if issued.revoked or issued.rotated:
        return oauth_error("invalid_grant", "Refresh token is no longer valid")
    if issued.expires_at <= sb.clock.now():
        return oauth_error("invalid_grant", "Refresh token has expired")
    issued.rotated = True
    sb.store.changed()
    return _token_response(sb, client_id, "offline_access")


@routes.post("/ims/revoke")
async def revoke(request: web.Request) -> web.Response:
    sb = get_sandbox(request)
    form = await request.post()
    _, problem = _check_client(sb, form)
    if problem is not None:
        return problem
    value = str(form.get("token", ""))
    issued = sb.store.tokens.get(value)
    if issued is not None and not issued.revoked:
        issued.revoked = True
        sb.ims.revoked.append(issued.kind)
        sb.store.changed()
    return web.Response(status=200)


@routes.get("/ims/userinfo/v2")
async def userinfo(request: web.Request) -> web.Response:
    sb = get_sandbox(request)
    user = sb.user_for_access_token(request)
    if user is None:
        return oauth_error("invalid_token", "The access token is invalid or expired", 401)
    first, _, last = user.name.partition(" ")
    return json_response(
        {
            "sub": user.adobe_user_id,
            "name": user.name,
            "given_name": first,
            "family_name": last,
            "email": user.email,
            "email_verified": True,
            "account_type": "ent",
        }
    )
