"""Keys in added lines are refused by the secret scan, whatever file they are in, and the mask
hides the same keys in text; ordinary prose, ids and hashes are neither refused nor masked.

The fake keys are assembled at run time, of the right length and alphabet, so that this file
holds nothing another scanner would take for a key.
"""

from __future__ import annotations

import base64
import random
import string
import uuid

import pytest

from gitops_agent.policy.masking import KEY_SHAPES, MASK, Masker
from gitops_agent.policy.secrets import SecretHit, find_secrets

_RNG = random.Random(20261123)
_ALNUM = string.ascii_letters + string.digits
_B64URL = _ALNUM + "_-"


def _random(length: int, alphabet: str = _ALNUM) -> str:
    return "".join(_RNG.choices(alphabet, k=length))


def _digits(length: int) -> str:
    return _random(length, string.digits)


# (what it is, the kind the scan names, a key of that kind as its issuer makes it)
KEYS = [
    ("anthropic", "Anthropic API Key", "sk-ant-" + "api03-" + _random(93, _B64URL) + "AA"),
    ("anthropic-admin", "Anthropic API Key", "sk-ant-" + "admin01-" + _random(93, _B64URL) + "AA"),
    ("openai-project", "OpenAI Token", "sk-" + "proj-" + _random(156, _B64URL)),
    ("openai-service", "OpenAI Token", "sk-" + "svcacct-" + _random(156, _B64URL)),
    ("openai-legacy", "OpenAI Token", "sk-" + _random(20) + "T3Blbk" + "FJ" + _random(20)),
    ("openai-legacy-48", "OpenAI Token", "sk-" + _random(48)),
    ("google", "Google API Key", "AI" + "za" + _random(35, _B64URL)),
    ("github-fine-grained", "GitHub Token", "github" + "_pat_" + _random(22) + "_" + _random(59)),
    ("github-personal", "GitHub Token", "gh" + "p_" + _random(36)),
    ("github-oauth", "GitHub Token", "gh" + "o_" + _random(36)),
    ("github-server", "GitHub Token", "gh" + "s_" + _random(36)),
    ("github-user", "GitHub Token", "gh" + "u_" + _random(36)),
    ("github-refresh", "GitHub Token", "gh" + "r_" + _random(36)),
    ("slack-bot", "Slack Token", "xo" + "xb-" + "-".join((_digits(12), _digits(13), _random(24)))),
    (
        "slack-user",
        "Slack Token",
        "xo" + "xp-" + "-".join((_digits(12), _digits(12), _digits(13), _random(32))),
    ),
    ("slack-app", "Slack Token", "xo" + "xa-2-" + _digits(12) + "-" + _random(40)),
    ("aws", "AWS Access Key", "AK" + "IA" + _random(16, string.ascii_uppercase + string.digits)),
]
IDS = [name for name, _, _ in KEYS]


@pytest.mark.parametrize(("name", "kind", "key"), KEYS, ids=IDS)
def test_a_bare_key_in_a_docs_file_is_refused(name: str, kind: str, key: str) -> None:
    lines = ("# Setup", "", f"Log in with {key} and you are done.", "Then run the tests.")
    assert find_secrets("docs/setup.md", lines) == [SecretHit(line=2, kind=kind)]


@pytest.mark.parametrize(("name", "kind", "key"), KEYS, ids=IDS)
def test_a_key_in_code_or_configuration_is_refused(name: str, kind: str, key: str) -> None:
    for path, line in (
        ("src/settings.py", f'CLIENT = make_client("{key}")'),
        (".env.example", f"SERVICE={key}"),
        ("deploy/values.yaml", f"  value: {key}"),
        ("notes.txt", key),
    ):
        hits = find_secrets(path, ("x = 1", line))
        assert SecretHit(line=1, kind=kind) in hits, path
        assert {hit.line for hit in hits} == {1}, path


@pytest.mark.parametrize(("name", "kind", "key"), KEYS, ids=IDS)
def test_the_mask_hides_the_same_keys_wherever_they_are(name: str, kind: str, key: str) -> None:
    """Not in the environment: the mask knows them by their shape, in prose, JSON and URLs."""
    mask = Masker().mask
    assert mask(f"token {key}.") == f"token {MASK}."
    assert mask(f'{{"auth": "{key}"}}') == f'{{"auth": "{MASK}"}}'
    assert mask(f"https://x:{key}@example.com/") == f"https://x:{MASK}@example.com/"
    assert mask(f"Bearer {key}\nnext") == f"Bearer {MASK}\nnext"


def test_every_shape_has_a_fake_here() -> None:
    kinds = {kind for _, kind, _ in KEYS}
    assert {shape.kind for shape in KEY_SHAPES} <= kinds
    for shape in KEY_SHAPES:
        assert any(next(shape.keys(key), None) == key for _, _, key in KEYS), shape.kind


def _sha() -> str:
    return _random(40, "0123456789abcdef")


ORDINARY = [
    "This change moves the parser into its own module and adds tests for it.",
    "Ask the desk-side team; a task-runner, risk-assessment and whisk-based cooking app.",
    "Use scikit-learn (sk-learn) 1.5 and ask-me-anything.",
    f"Fixed in {_sha()} and cherry-picked as {_sha()[:12]}.",
    f"git log {_sha()}..{_sha()}",
    f"Request id {uuid.UUID(int=_RNG.getrandbits(128))}, trace {_random(32, '0123456789abcdef')}.",
    "Encoded: " + ", ".join(base64.b64encode(w).decode() for w in (b"hello", b"admin:pw", b"ok")),
    # how documentation shows keys without giving one
    "Set ANTHROPIC_API_KEY to your key (it starts with sk-ant-api03-...).",
    "OpenAI keys look like sk-proj-your-key-goes-here-and-it-is-long-enough-to-read.",
    "A token like ghp_XXXXXXXXXXXX or github_pat_<your token here>; Google keys begin AIza.",
    "AWS ids start with AKIA, e.g. AKIA followed by 16 characters; Slack bots use xoxb-.",
    "sk-ant-api03-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "PASSWORD_MIN_LENGTH = 8; TOKEN_TTL = 3600  # seconds",
]


@pytest.mark.parametrize("line", ORDINARY)
def test_ordinary_text_is_neither_refused_nor_masked(line: str) -> None:
    assert find_secrets("docs/notes.md", (line,)) == []
    assert Masker().mask(line) == line


def test_quoted_ids_and_short_base64_in_code_are_not_secrets() -> None:
    code = (
        f"REQUEST = '{uuid.UUID(int=_RNG.getrandbits(128))}'",
        f"GREETING = '{base64.b64encode(b'hello world').decode()}'",
        f'PAIR = "{base64.b64encode(b"admin:admin").decode()}"',
        "ENDPOINT = 'https://api.anthropic.com/v1/messages'",
    )
    assert find_secrets("src/app.py", code) == []


def test_a_key_too_short_to_be_whole_is_not_refused() -> None:
    """The scan wants whole keys: a shorter run of random characters after a key's prefix is
    not taken for one (the mask still hides it; see test_masking)."""
    lines = ("sk-ant-" + "api03-" + _random(40, _B64URL), "gh" + "p_" + _random(20))
    assert find_secrets("docs/notes.md", lines) == []
