"""A package installed editable (`pip install -e .`) into a virtual environment outside its
repository: the case where `import pkg` in a gate reaches the user's own copy."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

# A package laid out as attrs is (src/), which `pip install -e .` installs into a virtual
# environment outside the repository: there, `import pkg` is the user's own src/.
EDITABLE_PACKAGE = {
    "pyproject.toml": (
        '[build-system]\nrequires = ["setuptools>=64"]\nbuild-backend = "setuptools.build_meta"\n'
        '\n[project]\nname = "pkg"\nversion = "0.1"\n'
    ),
    "src/pkg/__init__.py": (
        "def to_bool(x):\n"
        "    # Words that mean yes.\n"
        "    if str(x).lower() in ('1', 'yes', 'true'):\n"
        "        return True\n"
        "    return False\n"
    ),
    "tests/test_pkg.py": (
        "from pkg import to_bool\n\n\n"
        "def test_to_bool():\n"
        "    assert to_bool('yes') is True\n"
        "    assert to_bool('no') is False\n"
    ),
}


def editable_venv(venv: Path, repo: Path) -> Path:
    """A virtual environment at `venv` with `repo` installed editable by pip, with no build
    isolation (offline); returns its python. It has this test run's pytest, pip, setuptools."""
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
        check=True,
        timeout=120,
    )
    python = venv / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.strip()
    ours = set()
    for name in ("pytest", "pip", "setuptools"):
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin is not None:
            ours.add(str(Path(spec.origin).parent.parent))
    (Path(site) / "test-tools.pth").write_text("".join(f"{p}\n" for p in sorted(ours)))
    if subprocess.run([python, "-c", "import setuptools, pip"], timeout=60).returncode != 0:
        pytest.skip("no setuptools or pip to install a package editable with")

    def pip(*args: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [python, "-m", "pip", *args], capture_output=True, text=True, timeout=300
        )

    install = ("install", "-q", "--no-build-isolation", "--no-deps", "-e", repo)
    done = pip(*install)
    if done.returncode != 0 and "bdist_wheel" in done.stdout + done.stderr:
        # setuptools before 70.1 builds a wheel only with the `wheel` package beside it.
        if pip("install", "-q", "wheel").returncode != 0:
            pytest.skip("this setuptools needs the wheel package, and pip cannot get it")
        done = pip(*install)
    assert done.returncode == 0, done.stdout + done.stderr
    return python
