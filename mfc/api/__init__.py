"""Metaflow's programmatic API: run a flow from Python (:class:`Runner`) or a notebook (:class:`NBRunner`)."""

from mfc.api.nbrunner import NBRunner
from mfc.api.runner import ExecutingRun, Runner

__all__ = ["ExecutingRun", "NBRunner", "Runner"]
