"""The ``mfc`` command line: one module per command group, registered on one group in
:mod:`mfc.cli.main`."""

from mfc.cli.common import load_config
from mfc.cli.main import cli, main, run_flow_script

__all__ = ["cli", "main", "run_flow_script", "load_config"]
