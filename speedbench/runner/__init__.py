"""The sweep orchestrator: ``BenchmarkRunner`` (speedbench.runner.sweep) and what it returns.

Modules: ``sweep`` (the runner: checks, results folder, SD settings, restarts), ``point`` (one measured
point), ``server`` (launching and checking a server), ``manifest`` (what a sweep records about itself),
``signals`` (Ctrl-C / SIGTERM as one exception).
"""

from speedbench.outcome import Speedup, SweepResult
from speedbench.runner.signals import SweepInterrupted
from speedbench.runner.sweep import BenchmarkRunner

__all__ = ["BenchmarkRunner", "Speedup", "SweepInterrupted", "SweepResult"]
