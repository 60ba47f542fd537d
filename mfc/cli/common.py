"""Pieces shared by the command modules."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from mfc.config import Config

SCRIPT_FLOW: type | None = None  # set when a flow file is run as a script

_DATASTORE_KEY = "mfc.datastore"


def _remember_datastore(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        ctx.meta[_DATASTORE_KEY] = value  # read by load_config: commands keep one datastore argument
    return value


def datastore_option(func: Any) -> Any:
    """``--datastore-root DIR|S3URL`` and Metaflow's ``--datastore local|s3``."""
    func = click.option("--datastore", type=click.Choice(["local", "s3"]), default=None, expose_value=False,
                        callback=_remember_datastore,
                        help="Kind of datastore: s3 needs an s3:// root (--datastore-root or the profile); "
                             "local uses the nearest .mfc directory even where the profile names S3.")(func)
    return click.option("--datastore-root", default=None, metavar="DIR|S3URL",
                        help="Datastore root (default: MFC_DATASTORE_ROOT, the profile, or the nearest .mfc directory).")(func)


def setting_options(func: Any) -> Any:
    """The options of ``mfc run``/``mfc resume`` that are settings (see ``mfc.config.SETTINGS``:
    each has an ``MFC_*`` variable and a profile key too); ``mfc config show`` takes them as well.
    Every default is None, so an option not given leaves the setting to the environment, the
    profile or its default."""
    options = [
        click.option("--max-workers", type=click.IntRange(min=1), default=None, help="Tasks running at once (default 16)."),
        click.option("--max-num-splits", type=click.IntRange(min=1), default=None, help="Largest foreach allowed (default 100)."),
        click.option("-q", "--quiet", is_flag=True, default=None, help="Print only the result."),
        click.option("--metadata", type=click.Choice(["local", "service"]), default=None,
                     help="Where runs are recorded: local (the datastore) or service (also the metadata service at service_url)."),
        click.option("--local-docker", "local_docker", is_flag=False, flag_value="*", default=None, metavar="[STEP,...]",
                     help="Run every step (or the listed steps) in the flow's container image on the local Docker engine."),
        click.option("--batch", "batch", is_flag=False, flag_value="*", default=None, metavar="[STEP,...]",
                     help="Run every step (or the listed steps) as AWS Batch jobs (needs an S3 datastore; @batch steps do on one)."),
        click.option("--queue", default=None, help="AWS Batch job queue (default: batch_queue; batch_gpu_queue for GPU steps)."),
        click.option("--cpu", type=click.FloatRange(min=0, min_open=True), default=None, help="vCPUs for each Batch job (at least)."),
        click.option("--memory", type=click.IntRange(min=4), default=None, help="MiB of memory for each Batch job (at least)."),
        click.option("--gpu-image", default=None, help="Image for GPU steps on Batch (default: --image, else the flow's GPU image)."),
        click.option("--gpu", type=click.IntRange(min=0), default=None, help="GPUs for each containerised or Batch task (default 0)."),
        click.option("--image", default=None, help="Image for containerised steps (default: the flow image, built when missing)."),
        datastore_option,
    ]
    for option in reversed(options):
        func = option(func)
    return func


def valid_id(_ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Click callback: a run id option (``--origin-run-id``, ``--run``) checked by the pathspec
    grammar before anything reads a store."""
    if value is None:
        return None
    from mfc.pathspec import InvalidPathspec, check_run_id

    try:
        return check_run_id(value)
    except InvalidPathspec as exc:
        raise InvalidPathspec(f"{param.opts[0]}: {exc}") from None


def load_config(datastore_root: str | None = None, access: str | None = None, **options: Any) -> Config:
    """The resolved config; ``options``: click's values of :func:`setting_options` (those not
    given are None). With ``access`` ("read" or "write"), a local datastore root that cannot be
    used so is a one-line error naming it and where it came from."""
    from mfc.config import Config, config_flags

    ctx = click.get_current_context(silent=True)
    datastore = ctx.meta.get(_DATASTORE_KEY) if ctx is not None else None
    config = Config({"datastore_root": datastore_root, "datastore": datastore, **config_flags(options)})
    if access is not None:
        check_datastore_root(config, write=access == "write")
    return config


def check_datastore_root(config: Any, write: bool) -> None:
    """Raise MfcError when the config's local datastore root is a file, or cannot be read (or
    written, with ``write``); s3:// roots are checked by their first request."""
    from mfc.exceptions import MfcError
    from mfc.stores.local import local_root_problem

    root = config.datastore_root
    if "://" in root:
        return
    problem = local_root_problem(root, write)
    if problem is None:
        return
    source = config.sources["datastore_root"]
    source = "--datastore-root" if source == "command line" else source.replace("env ", "", 1)
    raise MfcError(f"datastore root {root} (from {source}) {problem}",
                   hint="use a directory you can write, or an s3:// URL")


def resolve_flow(ref: str, need_class: bool = True) -> tuple[str, str | None, type | None]:
    """(flow file, flow name, flow class) for ``flow.py`` or ``flow.py:Name``."""
    from mfc.flowload import split_flow_ref

    path, name = split_flow_ref(ref)
    if SCRIPT_FLOW is not None and os.path.abspath(path) == os.path.abspath(sys.argv[0]):
        return path, SCRIPT_FLOW.__name__, SCRIPT_FLOW
    if not need_class:
        return path, name, None
    from mfc.flowload import flow_class, import_flow_file

    module = import_flow_file(path)
    cls = flow_class(module, name, path)
    return path, cls.__name__, cls
