"""Running the gate's commands, confined, and collecting what each one found (its evidence):
exit status, the JUnit report of the tests it ran, the `path:line:` findings it printed.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitops_agent.gate import OUTPUT_TAIL, Gate, GateCommand
from gitops_agent.gate.findings import Finding, parse_findings
from gitops_agent.gate.junit import ReportError, TestCase, TestOutcome, TestReport, parse_junit
from gitops_agent.policy.masking import mask
from gitops_agent.runner import Runner

JUNIT_VARIABLE = "GITOPS_AGENT_JUNIT"  # where a gate command may write its JUnit report
REPORT_MAX_BYTES = 20_000_000
NAMED_REPORT = "gitops-agent-named-report.xml"  # in the command's TMPDIR

# (path, line) -> that line of the tree being judged, for findings' fingerprints
SourceLine = Callable[[str, int], "str | None"]


@dataclass(frozen=True, slots=True)
class CommandRun:
    """What one gate command did: its evidence, before any judgement."""

    shown: str
    exit_code: int | None  # None: killed at the timeout
    output: str  # masked, the end of it
    duration: float
    tests: TestReport | None = None  # the JUnit report it wrote, when one was read
    report_problem: str | None = None  # why an expected report could not be read
    findings: tuple[Finding, ...] = ()  # for a findings command

    @property
    def timed_out(self) -> bool:
        return self.exit_code is None

    def to_record(self) -> dict[str, Any]:
        tests = None
        if self.tests is not None:
            tests = [[c.id, c.outcome.value, c.message] for c in self.tests.cases]
        return {
            "shown": self.shown,
            "exit_code": self.exit_code,
            "output": self.output,
            "duration": round(self.duration, 3),
            "tests": tests,
            "report_problem": self.report_problem,
            "findings": [[f.path, f.line, f.message, f.fingerprint] for f in self.findings],
        }

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> CommandRun:
        tests = data.get("tests")
        return cls(
            shown=str(data["shown"]),
            exit_code=data["exit_code"],
            output=str(data["output"]),
            duration=float(data["duration"]),
            tests=None
            if tests is None
            else TestReport(tuple(TestCase(i, TestOutcome(o), m) for i, o, m in tests)),
            report_problem=data.get("report_problem"),
            findings=tuple(Finding(p, int(n), m, f) for p, n, m, f in data.get("findings", ())),
        )


def run_command(
    gate: Gate,
    command: GateCommand,
    cwd: Path,
    *,
    timeout: float,
    runner: Runner,
    scratch: Path,
    source_line: SourceLine,
) -> CommandRun:
    """Run one command in `cwd` with a fresh `scratch`, and read its evidence."""
    with tempfile.TemporaryDirectory(prefix="gitops-agent-gate-") as tmp:
        run = command.run
        if gate.script is not None:
            # The base's copy of the script, from outside the checkout.
            script = Path(tmp) / "check_quality.sh"
            script.write_bytes(gate.script)
            run = run.replace("{script}", str(script))
        # The report goes to the command's private TMPDIR, which the run makes afresh.
        report = scratch / "tmp" / "gitops-agent-junit.xml"
        env = {JUNIT_VARIABLE: str(report)}
        if command.pytest:
            addopts = (
                os.environ.get("PYTEST_ADDOPTS", "")
                if "PYTEST_ADDOPTS" in (runner.gate_env)
                else ""
            )
            env["PYTEST_ADDOPTS"] = f"{addopts} --junitxml={report}".strip()
        outputs = {command.junit: NAMED_REPORT} if command.junit is not None else {}
        result = runner.run_gate(run, cwd, scratch, timeout=timeout, extra_env=env, outputs=outputs)
    why = (
        f"[stopped: the gate ran past {timeout:.0f} s]\n"
        if result.timed_out
        else f"[exit status {result.exit_code}]\n"
    )
    # Masked whole before the cut, so a cut cannot leave part of a secret.
    output = mask(result.output + why)[-OUTPUT_TAIL:]
    exit_code = None if result.timed_out else result.exit_code
    if command.findings:
        root = str(runner.gate_sees(cwd))  # where absolute paths in its output begin
        found = parse_findings(mask(result.output), root=root, source_line=source_line)
        return CommandRun(command.shown, exit_code, output, result.duration, findings=found)
    tests, problem = None, None
    if command.junit is not None:
        tests, problem = _read_report(scratch / "tmp" / NAMED_REPORT, command.junit)
    elif command.pytest or report.exists():
        tests, problem = _read_report(report, "its JUnit report")
    return CommandRun(command.shown, exit_code, output, result.duration, tests, problem)


def _read_report(path: Path, name: str) -> tuple[TestReport | None, str | None]:
    try:
        with path.open("rb") as f:
            data = f.read(REPORT_MAX_BYTES + 1)
    except FileNotFoundError:
        return None, f"{name} was not written"
    except OSError as err:
        return None, f"{name} could not be read ({err.strerror})"
    if not data:
        return None, f"{name} was not written"
    try:
        return parse_junit(data, max_bytes=REPORT_MAX_BYTES), None
    except ReportError as err:
        return None, f"{name} is not a JUnit report the tool can read ({err})"
