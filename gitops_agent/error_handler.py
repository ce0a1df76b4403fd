"""The one place exceptions become messages and exit statuses (0 done, 1 bug, 2 bad input)."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import tempfile
import traceback
from collections.abc import Iterator
from pathlib import Path

from gitops_agent import __version__
from gitops_agent.errors import Interrupted, UserError
from gitops_agent.policy.masking import mask

EXIT_INTERNAL = 1
EXIT_USER = 2


def crash_log_path() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(Path.home(), ".local", "state")
    return Path(base) / "gitops-agent" / "crash.log"


def _write_crash_log(text: str) -> Path:
    """Write `text`, masked: a crash log is what people paste into public issues."""
    text = mask(text)
    path = crash_log_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError:
        # A read-only home must not hide the crash itself: fall back to the temp directory.
        fd, name = tempfile.mkstemp(prefix="gitops-agent-crash-", suffix=".log")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        path = Path(name)
    return path


def _raise_interrupted(signum: int, _frame: object) -> None:
    # Once is enough: a second Ctrl-C while the session records itself must not cut that short.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Interrupted(signum, signal.Signals(signum).name)


def catch_signals() -> None:
    """Turn SIGINT and SIGTERM into `Interrupted`, for the command line (not for a library)."""
    signal.signal(signal.SIGINT, _raise_interrupted)
    signal.signal(signal.SIGTERM, _raise_interrupted)


@contextlib.contextmanager
def error_handler() -> Iterator[None]:
    """Turn a UserError into `path:line: message` (exit 2) and a bug into a logged crash (1)."""
    try:
        yield
    except UserError as exc:
        print(mask(str(exc)), file=sys.stderr)
        raise SystemExit(EXIT_USER) from None
    except Interrupted as stop:
        print(f"gitops-agent: interrupted ({stop.name})", file=sys.stderr)
        raise SystemExit(128 + stop.signum) from None
    except KeyboardInterrupt:
        print("gitops-agent: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    except Exception as exc:
        details = (
            f"gitops-agent {__version__}, Python {sys.version.split()[0]}\n"
            f"command: {' '.join(sys.argv)}\n\n{traceback.format_exc()}"
        )
        log = _write_crash_log(details)
        print(
            mask(
                f"gitops-agent: internal error: {type(exc).__name__}: {exc}\n"
                f"The details are in {log}; please include them when you report this."
            ),
            file=sys.stderr,
        )
        raise SystemExit(EXIT_INTERNAL) from None
