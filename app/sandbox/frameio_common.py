"""What every /v4 operation does first: faults, bearer auth, rate limit, error shaping."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import wraps

from aiohttp import web

from app.sandbox.context import Sandbox, get_sandbox
from app.sandbox.fault_responses import drop_connection, fault_response
from app.sandbox.model import Account, File, Folder, User
from app.sandbox.responses import ApiError, error_response
from app.sandbox.spec_operations import DOCUMENTED_OPERATIONS


@dataclass
class OpContext:
    sb: Sandbox
    user: User
    operation: str

    def account(self, request: web.Request) -> Account:
        account = self.sb.store.accounts.get(request.match_info["account_id"])
        if account is None:
            raise ApiError(404, "Account not found")
        return account

    def folder(self, request: web.Request) -> Folder:
        account = self.account(request)
        folder = self.sb.store.folders.get(request.match_info["folder_id"])
        if folder is None or folder.account_id != account.id:
            raise ApiError(404, "Folder not found")
        return folder

    def file(self, request: web.Request) -> File:
        account = self.account(request)
        f = self.sb.store.files.get(request.match_info["file_id"])
        if f is None or f.account_id != account.id:
            raise ApiError(404, "File not found")
        return f


Handler = Callable[[web.Request, OpContext], Awaitable[web.Response]]


def operation(name: str) -> Callable[[Handler], Callable[[web.Request], Awaitable[web.Response]]]:
    def decorate(handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
        @wraps(handler)
        async def run(request: web.Request) -> web.Response:
            sb = get_sandbox(request)
            sb.stats[name] += 1
            kind = sb.faults.pick("api", name)
            if kind is not None and kind not in ("lost", "lost_late"):
                return await fault_response(sb, request, "api", kind, operation=name)
            user = sb.user_for_access_token(request)
            if user is None:
                # Unauthenticated calls are not counted, but carry the documented headers.
                return error_response(ApiError(401, "Unauthorized"), sb.limiter.nominal_headers(name))
            decision = sb.limiter.check(user.id, name, sb.clock.now())
            headers = decision.headers()
            if not decision.allowed:
                sb.stats["429:" + name] += 1
                if sb.retry_after_header:
                    headers["Retry-After"] = str(max(1, round(decision.retry_after)))
                return error_response(ApiError(429, "Too many requests"), headers)
            try:
                response = await handler(request, OpContext(sb, user, name))
            except ApiError as err:
                return error_response(err, headers)
            response.headers.update(headers)
            if kind == "lost_late":  # done, and the answer held until the client gave up
                await asyncio.sleep(sb.config.stall_seconds)
            if kind in ("lost", "lost_late"):  # done, but the answer never arrives
                await drop_connection(request)
            return response

        return run

    return decorate


def includes(request: web.Request, allowed: tuple[str, ...]) -> set[str]:
    raw = request.query.get("include", "")
    values = {v.strip() for v in raw.split(",") if v.strip()}
    unknown = values - set(allowed)
    if unknown:
        raise ApiError(422, f"include must be one of {', '.join(allowed)}", pointer="/include")
    return values


def _compile(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{[a-z_]+\\\}", "[^/]+", re.escape(template)) + "$")


_DOCUMENTED = [(method, _compile(path), path, op_id) for method, path, op_id in DOCUMENTED_OPERATIONS]


def documented_operation(method: str, path: str) -> tuple[str, str] | None:
    """(operationId, path template) of the documented operation this request is, if any."""
    for op_method, pattern, template, op_id in _DOCUMENTED:
        if op_method == method and pattern.match(path):
            return op_id, template
    return None


def not_emulated(request: web.Request, op_id: str, template: str) -> web.Response:
    """A documented operation the sandbox does not serve: the token is checked as for any
    operation, and then a 501 says so plainly (a 404 would read as "that resource is gone")."""
    sb = get_sandbox(request)
    headers = sb.limiter.nominal_headers(op_id)
    if sb.user_for_access_token(request) is None:
        return error_response(ApiError(401, "Unauthorized"), headers)
    detail = f"The sandbox does not emulate {op_id} ({request.method} {template}); Frame.io documents it."
    return error_response(ApiError(501, detail, title="Not Implemented"), headers)
