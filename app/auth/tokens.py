"""The token set we keep between runs, and who it belongs to."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, replace
from typing import Any


@dataclass(frozen=True)
class TokenSet:
    access_token: str
    expires_at: float  # epoch seconds
    refresh_token: str | None = None
    account_id: str | None = None
    user_name: str | None = None
    user_email: str | None = None
    issued_at: float = 0.0

    @property
    def lifetime(self) -> float:
        return max(0.0, self.expires_at - self.issued_at) if self.issued_at else 86400.0

    def expires_within(self, seconds: float, now: float | None = None) -> bool:
        return (time.time() if now is None else now) >= self.expires_at - seconds

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> TokenSet:
        doc: dict[str, Any] = json.loads(text)
        fields: dict[str, Any] = {k: doc[k] for k in cls.__dataclass_fields__ if k in doc}
        return cls(**fields)

    def with_identity(self, account_id: str | None, name: str | None, email: str | None) -> TokenSet:
        return replace(self, account_id=account_id, user_name=name, user_email=email)

    def __repr__(self) -> str:  # never print tokens, even in a traceback
        return (
            f"TokenSet(expires_at={self.expires_at:.0f}, refresh={'yes' if self.refresh_token else 'no'},"
            f" account_id={self.account_id!r}, user_email={self.user_email!r})"
        )
