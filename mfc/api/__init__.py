"""Metaflow's programmatic API: run a flow from Python (:class:`Runner`) or a notebook (:class:`NBRunner`)."""

from mfc.api.deployer import DeployedFlow, Deployer, TriggeredRun
from mfc.api.nbrunner import NBRunner
from mfc.api.runner import ExecutingRun, Runner

__all__ = ["DeployedFlow", "Deployer", "ExecutingRun", "NBRunner", "Runner", "TriggeredRun"]
