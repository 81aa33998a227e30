"""One error hierarchy for the whole app, with fields a person can read.

The GUI, the CLI and the logs show ``title`` and ``message``; nobody parses exception text.
``retryable`` tells the engine whether waiting and trying again can help.

    PostFlowError
    ├── ConfigError          bad settings file, variable or flag (never retryable)
    ├── AuthError            sign-in problems
    │   ├── SignInCancelled  the user closed the sign-in window
    │   └── SignedOut        no usable token: sign in again
    ├── ServiceError         a remote service answered badly or not at all
    │   ├── RateLimited      429: wait and retry
    │   └── ServiceUnavailable  5xx or network: wait longer and retry
    └── KeychainError        the OS keychain is missing or refused us
"""

from __future__ import annotations


class PostFlowError(Exception):
    """Base of every error PostFlow raises on purpose."""

    title = "PostFlow error"
    retryable = False

    def __init__(self, message: str, *, title: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if title is not None:
            self.title = title

    def __str__(self) -> str:
        return self.message


class ConfigError(PostFlowError):
    title = "Invalid settings"


class AuthError(PostFlowError):
    title = "Sign-in problem"


class SignInCancelled(AuthError):
    title = "Sign-in cancelled"


class SignedOut(AuthError):
    title = "Sign in needed"


class KeychainError(PostFlowError):
    title = "Keychain unavailable"


class ServiceError(PostFlowError):
    """A remote service refused or failed a request; ``status`` is the HTTP code if any."""

    title = "Service error"

    def __init__(
        self,
        message: str,
        *,
        title: str | None = None,
        status: int | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message, title=title)
        self.status = status
        if retryable is not None:
            self.retryable = retryable


class RateLimited(ServiceError):
    title = "Slowing down"
    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, status: int = 429):
        super().__init__(message, status=status)
        self.retry_after = retry_after


class ServiceUnavailable(ServiceError):
    title = "Service unavailable"
    retryable = True
