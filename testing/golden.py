"""Golden files: a text people read, kept as the markdown it renders to, beside the tests.

As markdown-it-py's fixture tests do: data in, expected markdown out, in
tests/fixtures/golden/<name>.md. `pytest --regen-golden` (tests/conftest.py) rewrites the files
from the templates instead of comparing, so a change to a template is read as a diff in review.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

import pytest

GOLDEN_DIR = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "golden"
REGEN_OPTION = "--regen-golden"


@dataclass(frozen=True, slots=True)
class Golden:
    """`golden(name, text)`: fail unless `text` is exactly tests/fixtures/golden/<name>.md;
    with `regenerate`, write `text` there instead (only when it changed) and pass."""

    regenerate: bool = False
    test: str = "tests/test_golden.py"  # what to run to regenerate: the test's node id
    directory: Path = GOLDEN_DIR

    def path(self, name: str) -> Path:
        return self.directory / f"{name}.md"

    def __call__(self, name: str, text: str) -> None:
        path = self.path(name)
        shown = _shown(path)
        # Bytes, not text mode: a golden file is compared byte for byte, whatever the platform
        # does to line endings.
        old = path.read_bytes().decode("utf-8") if path.exists() else None
        if self.regenerate:
            if old != text:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(text.encode("utf-8"))
            return
        if old is None:
            pytest.fail(
                f"{shown} does not exist. Create it with `python -m pytest {REGEN_OPTION} "
                f"'{self.test}'`, read it as a person would, and commit it.",
                pytrace=False,
            )
        if text != old:
            diff = "".join(
                difflib.unified_diff(
                    old.splitlines(keepends=True),
                    text.splitlines(keepends=True),
                    fromfile=f"{shown} (golden)",
                    tofile=f"{name} (rendered now)",
                )
            )
            pytest.fail(
                f"{shown} differs from the rendered text:\n{diff}\n"
                f"If the change is meant, run `python -m pytest {REGEN_OPTION} '{self.test}'` "
                "and review the golden file's diff.",
                pytrace=False,
            )


def _shown(path: Path) -> str:
    try:
        return path.relative_to(GOLDEN_DIR.parent.parent.parent).as_posix()
    except ValueError:
        return str(path)
