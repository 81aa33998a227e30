"""What every /v4 operation does first: faults, bearer auth, rate limit, error shaping."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import wraps

from aiohttp import web

from app.sandbox.context import Sandbox, get_sandbox
from app.sandbox.fault_responses import drop_connection, fault_response
from app.sandbox.model import Account, File, Folder, User
from app.sandbox.responses import ApiError, error_response


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
            if kind is not None and kind != "lost":
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
            if kind == "lost":  # done, but the answer never arrives
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
