"""Codemod: give every function in src/calc/core.py a one-line docstring."""

from pathlib import Path

DOCS = {
    "def add(a, b):\n": '    """The sum of a and b."""\n',
    "def mean(values):\n": '    """The arithmetic mean of a non-empty sequence."""\n',
}

path = Path("src/calc/core.py")
text = path.read_text()
for signature, doc in DOCS.items():
    text = text.replace(signature, signature + doc)
path.write_text(text)
