"""``mfc lock`` and ``mfc image build``: a flow's dependency lock and its container image.

Registered in :mod:`mfc.cli` with ``cli.add_command(lock)`` and ``cli.add_command(image)``.
Progress and notes go to stderr; what a script wants (the lock, the image reference) to stdout.
"""

from __future__ import annotations

import json
import re

import click

from mfc.exceptions import MfcError, warn


def _flow_ref(ref: str) -> tuple[str, str | None]:
    from mfc.flowload import split_flow_ref

    return split_flow_ref(ref)


def _python_option(value: str | None) -> str | None:
    if value is not None and not re.fullmatch(r"3\.\d+", value):
        raise MfcError(f"--python {value}: give a Python version like 3.11")
    return value


@click.command("lock")
@click.argument("flow")
@click.option("--write", is_flag=True, help="Write mfc.lock at the flow's project root.")
@click.option("--json", "as_json", is_flag=True, help="Print the lock and its inputs as JSON.")
@click.option("--python", "python", default=None, metavar="X.Y",
              help="Target Python (default: @pypi_base's, else 3.11, the Python of mfc-base).")
@click.option("--refresh", is_flag=True, help="Resolve again even when these inputs were resolved before.")
def lock(flow: str, write: bool, as_json: bool, python: str | None, refresh: bool) -> None:
    """Resolve FLOW's dependencies (requirements.txt, pyproject.toml, @pypi_base, @pypi, @conda_base, @conda) into exact pins."""
    from mfc.packager.deps import lock_flow

    path, name = _flow_ref(flow)
    result = lock_flow(path, name, _python_option(python), write=write, refresh=refresh)
    env_lock = result.lock
    if as_json:
        click.echo(json.dumps({
            "flow": result.inputs.flow_name, **env_lock.to_json(), "source": result.source,
            "requirements": [{"requirement": d.text, "source": d.source} for d in result.inputs.requirements],
            "lock_file": str(result.lock_file), "written": result.written,
            "stale_lock_file": result.stale_lock_file,
        }, indent=2))
    else:
        count = len(env_lock.pins)
        click.echo(f"{result.inputs.flow_name}: {count} package{'s' if count != 1 else ''} locked for Python "
                   f"{env_lock.python} (lock {env_lock.id[:12]}, {_source_text(result.source)})", err=True)
        click.echo(env_lock.text, nl=False)
    for note in result.notes:
        warn(note)
    if result.written:
        click.echo(f"wrote {result.lock_file}", err=True)


def _source_text(source: str) -> str:
    return {"pip": "resolved by pip", "cache": "from the cache", "mfc.lock": "from mfc.lock",
            "empty": "no dependencies declared"}.get(source, source)


@click.group("image")
def image() -> None:
    """Build and push the container images flows run in."""


@image.command("build")
@click.argument("flow")
@click.option("--gpu", is_flag=True, help="Build on the GPU base image mfc-gpu:<version>.")
@click.option("--explain", is_flag=True, help="Show each input and what changed since the last build.")
@click.option("--base", default=None, metavar="IMAGE", help="Base image (default mfc-base:<version>).")
@click.option("--refresh", is_flag=True, help="Re-check the base image's id and the image with the engine.")
@click.option("--ca-bundle", type=click.Path(dir_okay=False), default=None,
              help="A CA certificate file to trust inside the image (TLS-intercepting proxies).")
@click.option("-q", "--quiet", is_flag=True, help="Print only the image reference.")
def build(flow: str, gpu: bool, explain: bool, base: str | None, refresh: bool, ca_bundle: str | None,
          quiet: bool) -> None:
    """Build FLOW's image (base image + locked dependencies) unless one with the same inputs exists."""
    from mfc.builder.image import build_flow_image

    path, name = _flow_ref(flow)
    result = build_flow_image(path, name, gpu, quiet, base=base, refresh=refresh, ca_bundle=ca_bundle)
    for note in result.notes:
        warn(note)
    if explain:
        for line in result.explain():
            click.echo(line)
    elif not quiet and result.status != "built":
        click.echo(f"mfc: {result.image} is up to date ({result.seconds:.2f}s)", err=True)
    click.echo(result.image)


@image.command("push")
@click.argument("flow")
@click.option("--gpu", is_flag=True, help="Push the image built on the GPU base image mfc-gpu:<version>.")
@click.option("--registry", default=None, metavar="HOST[:PORT][/NAMESPACE]",
              help="Registry to push to (default: the image_registry setting; an ECR URI or host:port).")
@click.option("--base", default=None, metavar="IMAGE", help="Base image (default mfc-base:<version>).")
@click.option("--refresh", is_flag=True, help="Re-check the base image's id and the image with the engine.")
@click.option("--ca-bundle", type=click.Path(dir_okay=False), default=None,
              help="A CA certificate file to trust inside the image (TLS-intercepting proxies).")
@click.option("--keep-images", type=click.IntRange(min=1), default=None, metavar="N",
              help="ECR only: the lifecycle policy mfc puts on a repository without one keeps the last N "
                   "images (default 50).")
@click.option("-q", "--quiet", is_flag=True, help="Print only the remote image reference.")
def push(flow: str, gpu: bool, registry: str | None, base: str | None, refresh: bool, ca_bundle: str | None,
         keep_images: int | None, quiet: bool) -> None:
    """Push FLOW's image (built first if needed) to a registry, unless the registry already has it."""
    from mfc.builder.push import push_flow_image

    path, name = _flow_ref(flow)
    result = push_flow_image(path, name, gpu, registry, quiet, base=base, refresh=refresh, ca_bundle=ca_bundle,
                             keep_images=keep_images)
    for note in result.image.notes:
        warn(note)
    if not quiet and result.status != "pushed":
        why = "the registry has it" if result.status == "present" else "pushed before, as the state file says"
        click.echo(f"mfc: {result.ref} is up to date ({why}; {result.seconds:.2f}s)", err=True)
    click.echo(result.ref)
