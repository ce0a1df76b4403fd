"""The only place that knows how a process is confined: one function in, a `ProcessResult` out.

Callers describe what a command may touch (`Jail`) and get back how it ended; the mechanism
(bubblewrap, Landlock, reaping every descendant) stays in here.
"""

from .confine import (
    MECHANISMS_VARIABLE,
    Confinement,
    Jail,
    Mechanisms,
    Sandbox,
    choose,
    probe,
    run_confined,
)
from .environment import agent_environment, gate_environment
from .process import KILL_GRACE, ProcessResult, run_command, tree_signature

__all__ = [
    "KILL_GRACE",
    "MECHANISMS_VARIABLE",
    "Confinement",
    "Jail",
    "Mechanisms",
    "ProcessResult",
    "Sandbox",
    "agent_environment",
    "choose",
    "gate_environment",
    "probe",
    "run_command",
    "run_confined",
    "tree_signature",
]
