"""The constraints document -> `Constraints`: the limits and rules an autonomous run obeys."""

from __future__ import annotations

from dataclasses import dataclass, field

# The seed's forbidden list, made concrete. Patterns are gitignore-like globs: a pattern
# without "/" matches a file name at any depth; one with "/" matches from the repository root.
DEFAULT_PROTECTED: tuple[str, ...] = (
    # CI/CD pipelines
    ".github/workflows/**",
    ".gitlab-ci.yml",
    ".circleci/**",
    "Jenkinsfile",
    "azure-pipelines.yml",
    ".travis.yml",
    # the quality gate
    ".ai-validation/**",
    # git's own configuration in the tree
    ".gitignore",
    ".gitattributes",
    ".gitmodules",
    # environment files: a file named .env or .env.<anything>
    ".env",
    ".env.*",
    # dependency manifests and lock files
    "requirements*.txt",
    "requirements/**",
    "constraints*.txt",
    "pyproject.toml",
    "setup.py",
    "setup.cfg",
    "Pipfile",
    "Pipfile.lock",
    "poetry.lock",
    "uv.lock",
    "package.json",
    "package-lock.json",
    "yarn.lock",
    "pnpm-lock.yaml",
    "Cargo.toml",
    "Cargo.lock",
    "go.mod",
    "go.sum",
    "Gemfile",
    "Gemfile.lock",
    "composer.json",
    "composer.lock",
    "pom.xml",
    "build.gradle",
    "build.gradle.kts",
    # containers and production configuration
    "docker-compose.yml",
    "docker-compose.yaml",
    "docker-compose.*.yml",
    "docker-compose.*.yaml",
    "compose.yml",
    "compose.yaml",
    "Dockerfile",
)

# Regular expressions (case-insensitive) that no added line may match.
DEFAULT_FORBIDDEN_CONTENT: tuple[str, ...] = (
    r"\bDROP\s+TABLE\b",
    r"\bDROP\s+DATABASE\b",
    r"\bDROP\s+COLUMN\b",
    r"\bDELETE\s+FROM\b",
    r"\bTRUNCATE\s+TABLE\b",
    r"\bALTER\s+TABLE\b",
)

# Phrases (case-insensitive, whole words, plural allowed) that a task's text may not contain.
DEFAULT_FORBIDDEN_WORDS: tuple[str, ...] = (
    "delete file",
    "drop table",
    "remove column",
    "add dependency",
    "install package",
    "stripe",
    "payment",
)

DEFAULT_APPROVED_DIRS: tuple[str, ...] = ("src/", "tests/", "docs/")


@dataclass(frozen=True, slots=True)
class Constraints:
    """Limits and rules, with where each non-default value came from (for messages)."""

    # pre-flight
    min_alignment: int = 80
    max_estimated_lines: int = 30
    require_tests: bool = True
    forbidden_words: tuple[str, ...] = DEFAULT_FORBIDDEN_WORDS
    # session limits
    max_tasks_per_session: int = 5
    max_session_minutes: int = 240
    max_attempts: int = 3
    max_consecutive_failures: int = 2
    task_timeout_minutes: int = 30
    idle_timeout_minutes: int = 10
    # post-flight
    approved_dirs: tuple[str, ...] = DEFAULT_APPROVED_DIRS
    protected: tuple[str, ...] = DEFAULT_PROTECTED
    forbidden_content: tuple[str, ...] = DEFAULT_FORBIDDEN_CONTENT
    allow_delete: bool = False
    allow_binary: bool = False
    max_file_bytes: int = 1_000_000
    line_budget_factor: float = 2.0
    scan_secrets: bool = True
    # provenance
    path: str | None = None  # None: the built-in defaults (no constraints file)
    prose: str = ""  # the document's text, given to the agent in its prompt
    sources: dict[str, int] = field(default_factory=dict)  # setting name -> line it came from
