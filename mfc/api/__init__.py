"""Metaflow's programmatic API: run a flow from Python (:class:`Runner`)."""

from mfc.api.runner import ExecutingRun, Runner

__all__ = ["ExecutingRun", "Runner"]
