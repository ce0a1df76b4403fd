"""The one error type for all a user can cause; the CLI shows it as `path:line: message`."""

from __future__ import annotations


class UserError(Exception):
    """Bad input or usage: reported as `path:line: message`, exit status 2, no traceback."""

    def __init__(
        self, message: str, path: str | None = None, line: int | None = None, *, fix: str = ""
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.line = line
        self.fix = fix  # what to do about it, where the message alone does not say (doctor)

    def __str__(self) -> str:
        where = ""
        if self.path is not None:
            where = f"{self.path}:{self.line}: " if self.line is not None else f"{self.path}: "
        return f"{where}{self.message}"


class PlanError(UserError):
    """Something wrong in the plan file."""


class ConstraintsError(UserError):
    """Something wrong in the constraints document."""


class RefMovedError(UserError):
    """A ref was not where we last read it: something else wrote it, so we did not move it.

    A compare-and-swap that lost is the user's environment at work (another run, a person's
    push), not a bug. Where a caller can read the ref again and retry, it catches this before
    any `except UserError`.
    """


class Interrupted(BaseException):
    """SIGINT (Ctrl-C) or SIGTERM reached the tool: what runs is stopped, the session records
    what it did, and the command exits 128 + the signal's number.

    Not a KeyboardInterrupt, which click would print as "Aborted!" before our handler saw it;
    a BaseException, so that no `except Exception` mistakes it for a failure.
    """

    def __init__(self, signum: int, name: str) -> None:
        super().__init__(name)
        self.signum = signum
        self.name = name
