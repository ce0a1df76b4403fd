"""Secrets of the tool's own environment, and keys of a known shape, replaced with `***` in
everything it writes.

The promise is GitHub Actions': whatever the tool stores or publishes (memory log, PR description,
reports, notifications, gate and agent output, JSON, messages on stderr, the crash log) shows
`***` where a secret value of its environment would be. Which variables hold secrets is decided
by name, since a password cannot be told apart from ordinary text by looking at it. A key whose
issuer marks it with a prefix (KEY_SHAPES) is masked wherever it appears, from the environment
or not, and `policy.secrets` refuses the same shapes in added lines.

Pure except for `masker()`, the process-wide accessor that reads `os.environ`.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import markupsafe

MASK = "***"

# Shorter values would mask ordinary words and numbers everywhere (a `PASS=admin` would turn every
# "admin" into ***), so they are left alone; a real token is much longer.
MIN_LENGTH = 6

# A piece of a key this long, not counting its public prefix (`sk-ant-api03-`), is masked as well:
# whoever printed the key may have cut it short or wrapped it onto the next line.
FRAGMENT = 12

# Values this long (after their public prefix) and without spaces or URL punctuation are keys,
# masked piece by piece too. A shorter value is often a person's password, whose pieces are words
# ("password" in "mypassword123") that ordinary text is full of.
PIECEWISE = 20

# A variable is secret when one part of its name, split on `_` (or any non-alphanumeric), is one
# of these words, case-insensitively: GITHUB_TOKEN, ANTHROPIC_API_KEY, AWS_SECRET_ACCESS_KEY,
# NPM_AUTH, GH_PAT, AOC_SESSION. Whole parts only, so KEYBOARD_LAYOUT, PATH and PASSAGE_COUNT are
# not.
SECRET_WORDS = frozenset(
    {
        "TOKEN",
        "TOKENS",
        "KEY",
        "KEYS",
        "APIKEY",
        "SECRET",
        "SECRETS",
        "PASSWORD",
        "PASSWORDS",
        "PASSWD",
        "PASS",
        "PASSPHRASE",
        "CREDENTIAL",
        "CREDENTIALS",
        "CREDS",
        "AUTH",
        "COOKIE",
        "COOKIES",
        "PRIVATE",
        "PAT",
        "WEBHOOK",
        "DSN",
        "SESSION",
        "SESSIONID",
    }
)

# A part ending in one of these is secret too, for names run together: PGPASSWORD,
# NGROK_AUTHTOKEN, MINIO_SECRETKEY. Long words only: KEY, PAT or AUTH would take MONKEY, SPAT and
# AUTHOR (GIT_AUTHOR_NAME); and an ending, so that TOKENIZERS_PARALLELISM is not.
_SECRET_ENDINGS = ("TOKEN", "SECRET", "SECRETKEY", "ACCESSKEY", "PASSWORD", "PASSWD", "CREDENTIALS")

# Secret whatever their names say: notification URLs carry the services' tokens, a database URL
# its password.
ALWAYS_SECRET = frozenset({"GITOPS_AGENT_NOTIFY", "DATABASE_URL"})

# Variables that hold a list of secrets, each of which may be quoted alone (one notification URL
# in a delivery problem), with what separates them.
_LISTS = {"GITOPS_AGENT_NOTIFY": re.compile(r"[\s,]+")}

# A name ending in one of these names a place, not a secret (SSH_AUTH_SOCK, PASSWORD_STORE_DIR,
# SSL_KEY_FILE): masking a path would garble every message that mentions the directory.
_PLACE_WORDS = frozenset({"DIR", "DIRS", "PATH", "FILE", "SOCK", "SOCKET", "HOME"})

# A desktop's session, not a login: masking XDG_SESSION_DESKTOP=ubuntu would turn every "ubuntu"
# (`runs-on: ubuntu-latest`) into ***.
_DESKTOP_PREFIXES = ("XDG_", "DBUS_", "KDE_", "GNOME_")
_DESKTOP_NAMES = frozenset({"DESKTOP_SESSION", "SESSION_MANAGER"})

# Values that say how something is configured, not what the secret is (`CI_AUTH=disabled`).
# The shorter ones (true, false, 1, yes...) are already under MIN_LENGTH.
_NOT_SECRETS = frozenset({"enabled", "disabled", "required", "optional"})

_NAME_PARTS = re.compile(r"[^A-Za-z0-9]+")


def is_secret_name(name: str) -> bool:
    """Whether a variable of this name holds a secret (see SECRET_WORDS and ALWAYS_SECRET)."""
    upper = name.upper()
    if upper in ALWAYS_SECRET:
        return True
    if upper in _DESKTOP_NAMES or upper.startswith(_DESKTOP_PREFIXES):
        return False
    parts = [part for part in _NAME_PARTS.split(upper) if part]
    if not parts or parts[-1] in _PLACE_WORDS:
        return False
    return any(part in SECRET_WORDS or part.endswith(_SECRET_ENDINGS) for part in parts)


def secret_values(
    environ: Mapping[str, str], always: Iterable[str] = ALWAYS_SECRET
) -> tuple[str, ...]:
    """The values to mask, longest first, so a value that contains another is masked whole.

    Each value of a secret variable (`is_secret_name`, or named in `always`) of MIN_LENGTH or
    more; for a value of several lines (a PEM key) each line too, and for a list of URLs
    (GITOPS_AGENT_NOTIFY) each URL: a log may quote one of them alone.
    """
    named = {name.upper() for name in always}
    found: set[str] = set()
    for name, value in environ.items():
        if not (name.upper() in named or is_secret_name(name)):
            continue
        candidates = [value, value.strip()]
        if "\n" in value or "\r" in value:
            candidates += [line.strip() for line in value.splitlines()]
        if name.upper() in _LISTS:
            candidates += _LISTS[name.upper()].split(value)
        found.update(c for c in candidates if _maskable(c))
    return tuple(sorted(found, key=lambda v: (-len(v), v)))


def _maskable(value: str) -> bool:
    return len(value) >= MIN_LENGTH and value.lower() not in _NOT_SECRETS


def _written_forms(value: str) -> list[str]:
    """`value` as it appears once written into JSON or HTML, where its quotes, `<` or `&` or a
    non-ASCII character are escaped: a mask applied after the escaping must still find it."""
    return [
        value,
        json.dumps(value, ensure_ascii=False)[1:-1],
        json.dumps(value, ensure_ascii=True)[1:-1],
        str(markupsafe.escape(value)),
    ]


# -- keys known by their shape ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyShape:
    """A kind of key its issuer marks with a prefix: `sk-ant-api03-`, then a random body.

    `whole` finds a key of realistic length: what the secret scan refuses. `piece` finds the
    prefix and FRAGMENT characters of body or more: what the mask hides, so that a key cut short
    is hidden too. The body of a key mixes two of upper case, lower case and digits (`mixed`),
    which `sk-proj-your-key-here` and `ghp_xxxxxxxx...` do not.
    """

    kind: str  # as the scan names it; detect-secrets' own names where its plugins overlap
    prefix: re.Pattern[str]
    whole: re.Pattern[str]
    piece: re.Pattern[str]
    mixed: bool
    after_word: bool  # whether it may follow a letter, digit, `_` or `-`

    @classmethod
    def create(
        cls,
        kind: str,
        prefix: str,
        body: str,
        length: int,
        *,
        exact: bool = False,
        mixed: bool = True,
        after_word: bool = True,
    ) -> KeyShape:
        """`prefix` is a regex, `body` a character class, `length` the least (or `exact`) length
        of a real key's body."""
        whole = f"{{{length}}}" if exact else f"{{{length},}}"
        piece = whole if exact else f"{{{min(FRAGMENT, length)},}}"
        return cls(
            kind,
            re.compile(prefix),
            re.compile(f"{prefix}(?P<body>{body}{whole})"),
            re.compile(f"{prefix}(?P<body>{body}{piece})"),
            mixed,
            after_word,
        )

    def keys(self, text: str) -> Iterator[str]:
        """The whole keys of this shape in `text`."""
        return (m.group() for m in self.whole.finditer(text) if self._is_key(m))

    def hide(self, text: str) -> str:
        """`text` with each key of this shape, or the start of one, replaced with MASK."""
        return self.piece.sub(lambda m: MASK if self._is_key(m) else m.group(), text)

    def _is_key(self, match: re.Match[str]) -> bool:
        start = match.start()
        if not self.after_word and start and _in_word(match.string[start - 1]):
            return False
        return not self.mixed or _mixed(match.group("body"))


def _in_word(char: str) -> bool:
    return char.isalnum() or char in "_-"


def _mixed(body: str) -> bool:
    return sum(any(map(test, body)) for test in (str.isupper, str.islower, str.isdigit)) >= 2


_B64URL = "[A-Za-z0-9_-]"
_ALNUM = "[A-Za-z0-9]"

# The most specific first: `public_prefix` takes the first that matches.
KEY_SHAPES = (
    # sk-ant-api03-, sk-ant-admin01-, sk-ant-oat01- (OAuth): 95 characters of body
    KeyShape.create("Anthropic API Key", r"sk-ant-[a-z]{2,8}\d\d-", _B64URL, 80),
    # project, service-account and admin keys: 48 to 156 characters of body
    KeyShape.create("OpenAI Token", r"sk-(?:proj|svcacct|admin)-", _B64URL, 40),
    # the older user keys: sk- and 48 letters and digits
    KeyShape.create("OpenAI Token", r"sk-", _ALNUM, 32, after_word=False),
    # not inside a word: `AIza` turns up in long base64 text, as `sk-` in words (`desk-`)
    KeyShape.create("Google API Key", r"AIza", _B64URL, 35, after_word=False),
    # fine-grained tokens: 22 letters and digits, `_`, 59 letters and digits
    KeyShape.create("GitHub Token", r"github_pat_", "[A-Za-z0-9_]", 80),
    # personal (ghp_), OAuth (gho_), user-to-server (ghu_), server-to-server (ghs_), refresh (ghr_)
    KeyShape.create("GitHub Token", r"gh[pousr]_", _ALNUM, 36),
    # bot (xoxb-), user (xoxp-), app-level (xoxa-) and the other Slack tokens
    KeyShape.create("Slack Token", r"xox[abposr]-", "[A-Za-z0-9-]", 30),
    # access key ids: exactly 16 upper-case letters and digits, which need not mix
    KeyShape.create(
        "AWS Access Key",
        r"(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])",
        "[A-Z0-9]",
        16,
        exact=True,
        mixed=False,
    ),
)


def public_prefix(value: str) -> str:
    """The part of a key that says what it is and hides nothing (`sk-ant-api03-`), else ""."""
    for shape in KEY_SHAPES:
        if found := shape.prefix.match(value):
            return found.group()
    return ""


# -- pieces of the environment's keys --------------------------------------------------------

# What a key may be made of; a value with spaces, `:` or `@` (a passphrase, a URL) is masked whole
# only, since its pieces (`localhost:5432`) are ordinary text.
_KEY_CHARACTERS = re.compile(r"[A-Za-z0-9_\-+/=.~]+")

# A line break a printer may put inside a long value, and the indent after it; `\n` as JSON writes
# it, since records are masked after they are serialised.
_BREAK = re.compile(r"(?:\r?\n|\\r\\n|\\n)[ \t]*")
_BREAKS = ("\r\n", "\n", "\\r\\n", "\\n")


def _break_before(text: str, end: int) -> int | None:
    """Where the line break (and indent) that ends at `end` begins, if one does."""
    while end > 0 and text[end - 1] in " \t":
        end -= 1
    return next((end - len(b) for b in _BREAKS if text.endswith(b, 0, end)), None)


@dataclass(frozen=True, slots=True)
class _Pieces:
    """A key of the environment, masked also where it shows only in part: cut short, or wrapped
    onto several lines (each line's part is masked, the line breaks stay).

    Found from `seeds`, runs of FRAGMENT characters at every FRAGMENT-th place and at its end, so
    that a part with FRAGMENT characters at either end of the key, or 2 x FRAGMENT in its middle,
    holds one; from there the match is followed both ways, across line breaks.
    """

    value: str
    public: int  # length of its public prefix, not counted as shown
    seeds: tuple[tuple[int, str], ...]  # (offset in value, text)

    @classmethod
    def of(cls, value: str) -> _Pieces | None:
        public = len(public_prefix(value))
        if len(value) - public < PIECEWISE or not _KEY_CHARACTERS.fullmatch(value):
            return None
        offsets = {*range(public, len(value) - FRAGMENT + 1, FRAGMENT), len(value) - FRAGMENT}
        return cls(value, public, tuple((at, value[at : at + FRAGMENT]) for at in sorted(offsets)))

    def spans(self, text: str) -> Iterator[tuple[int, int]]:
        """Where `text` shows FRAGMENT characters of the key or more, one span per line."""
        for offset, seed in self.seeds:
            at = text.find(seed)
            while at != -1:
                yield from self._follow(text, at, offset)
                at = text.find(seed, at + 1)

    def _follow(self, text: str, at: int, offset: int) -> list[tuple[int, int]]:
        value, spans = self.value, []
        end, last, start = at, offset, at  # rightwards from the seed
        while last < len(value):
            if end < len(text) and text[end] == value[last]:
                end, last = end + 1, last + 1
            elif (found := _BREAK.match(text, end)) and text[found.end() : found.end() + 1] == (
                value[last]
            ):
                spans.append((start, end))
                start = end = found.end()
            else:
                break
        spans.append((start, end))
        begin, first, stop = at, offset, at  # leftwards
        while first > 0:
            if begin > 0 and text[begin - 1] == value[first - 1]:
                begin, first = begin - 1, first - 1
            elif (broke := _break_before(text, begin)) and text[broke - 1] == value[first - 1]:
                spans.append((begin, stop))
                begin = stop = broke
            else:
                break
        spans.append((begin, stop))
        if last - max(first, self.public) < FRAGMENT:
            return []
        return [span for span in spans if span[0] < span[1]]


def _replace(text: str, spans: list[tuple[int, int]]) -> str:
    """`text` with each stretch covered by `spans` masked, overlapping or touching ones as one."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    out, done = [], 0
    for start, end in merged:
        out += [text[done:start], MASK]
        done = end
    return "".join([*out, text[done:]])


@dataclass(frozen=True, slots=True)
class Masker:
    """Replaces every secret value in a text, and each key of a known shape, with `***`.

    `forms` are the exact strings replaced, longest first. A loop of `str.replace` is used rather
    than one regex alternation: Python's regex engine tries each alternative at each position,
    which takes ~100 ms on 1 MB with 80 forms; the loop takes a few ms (bench in the tests).
    `pieces` then masks what is left of the keys among them, cut short or wrapped, and `shapes`
    any key of a known shape, in the environment or not: on 1 MB with 20 values, about 5 ms for
    the forms, 10 ms for the pieces (one `str.find` per seed) and 5 ms for the shapes.
    """

    forms: tuple[str, ...] = ()
    pieces: tuple[_Pieces, ...] = ()
    shapes: tuple[KeyShape, ...] = KEY_SHAPES

    @classmethod
    def from_values(cls, values: Iterable[str]) -> Masker:
        values = tuple(values)
        forms = {form for value in values for form in _written_forms(value) if _maskable(form)}
        pieces = (piece for value in values if (piece := _Pieces.of(value)))
        return cls(tuple(sorted(forms, key=lambda v: (-len(v), v))), tuple(pieces))

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Masker:
        return cls.from_values(secret_values(environ))

    def mask(self, text: str) -> str:
        for form in self.forms:
            if form in text:
                text = text.replace(form, MASK)
        spans = [span for piece in self.pieces for span in piece.spans(text)]
        if spans:
            text = _replace(text, spans)
        for shape in self.shapes:
            text = shape.hide(text)
        return text


def masker() -> Masker:
    """The masker for this process's environment, the one whose secrets must never be written.

    The environment is read at each call (cheap: the masker is cached by its contents), so a
    variable set after start (a test's monkeypatch, a token read at run time) is masked too.
    """
    return _masker_for(tuple(os.environ.items()))


@functools.lru_cache(maxsize=4)
def _masker_for(items: tuple[tuple[str, str], ...]) -> Masker:
    return Masker.from_environ(dict(items))


def mask(text: str) -> str:
    """`text` with the secrets of this process's environment replaced with `***`."""
    return masker().mask(text)
