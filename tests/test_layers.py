"""The package's layers, as its folders promise: a newcomer finds where a thing happens."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "gitops_agent"


def imports(path: Path) -> set[str]:
    """Every module `path` imports (absolute names; relative ones resolved in the package)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = here.split(".")[: -node.level]
                base = ".".join([*parent, base] if base else parent)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_only_the_command_line_imports_the_commands() -> None:
    leaky = {
        str(path.relative_to(PACKAGE)): sorted(
            name for name in imports(path) if name.startswith("gitops_agent.commands")
        )
        for path in modules()
        if path.name != "cli.py" and "commands" not in path.relative_to(PACKAGE).parts
    }
    assert {k: v for k, v in leaky.items() if v} == {}
    # and a command is a leaf: no command imports another
    between = {
        str(path.relative_to(PACKAGE)): sorted(
            n for n in imports(path) if n.startswith("gitops_agent.commands.")
        )
        for path in (PACKAGE / "commands").glob("*.py")
    }
    assert {k: v for k, v in between.items() if v} == {}


def test_only_the_git_package_imports_pygit2() -> None:
    users = [
        str(path.relative_to(PACKAGE))
        for path in modules()
        if "pygit2" in {name.split(".")[0] for name in imports(path)}
        and path.relative_to(PACKAGE).parts[0] != "git"
    ]
    assert users == []
