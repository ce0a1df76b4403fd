"""Codemod: a "faster" mean that is subtly wrong (divides by one too many). The gate catches it."""

from pathlib import Path

path = Path("src/calc/core.py")
path.write_text(path.read_text().replace("/ len(values)", "/ (len(values) + 1)"))
