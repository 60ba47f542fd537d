"""``mfc deploy aws``, ``mfc configure --from-stack`` and ``mfc doctor``: deploying mfc's
CloudFormation template, a profile from its outputs, and checks of a profile's resources."""

from __future__ import annotations

import os

import click

from mfc.config import Config
from mfc.deploy.pure import DEFAULT_STACK

stack_option = click.option("--stack", "stack_name", default=DEFAULT_STACK, show_default=True, metavar="NAME",
                            help="The CloudFormation stack's name.")
region_option = click.option("--region", default=None, metavar="REGION",
                             help="AWS region (default: the aws_region setting).")


def _config(region: str | None, profile: str | None = None) -> Config:
    env = dict(os.environ)
    if profile:
        env["MFC_PROFILE"] = profile
    return Config({"aws_region": region}, env=env)


@click.group("deploy")
def deploy_group() -> None:
    """Deploy mfc's resources (deploy/cloudformation/mfc.yaml) to a cloud account."""


@deploy_group.command("aws")
@stack_option
@region_option
@click.option("--parameters", "-p", "parameters", multiple=True, metavar="KEY=VALUE",
              help="A template parameter (repeatable), e.g. -p CpuMaxVcpus=64 -p EnableService=true.")
@click.option("--template", default=None, metavar="PATH", help="Another template file (default: mfc's).")
@click.option("--dry-run", is_flag=True, help="Print the changes (a change set) and deploy nothing.")
@click.option("--delete", "remove", is_flag=True, help="Delete the stack (refused while its bucket holds runs).")
@click.option("--force", is_flag=True, help="With --delete: delete the bucket's runs too.")
def aws_cmd(stack_name: str, region: str | None, parameters: tuple[str, ...], template: str | None,
            dry_run: bool, remove: bool, force: bool) -> None:
    """Create or update the stack, printing its events; then `mfc configure --from-stack NAME`."""
    from mfc.deploy import pure, stack
    from mfc.exceptions import MfcError

    if force and not remove:
        raise MfcError("--force goes with --delete")
    if remove and (dry_run or parameters):
        raise MfcError("--delete takes no --dry-run or --parameters")
    config = _config(region)
    given = pure.parse_parameters(list(parameters))
    if remove:
        stack.delete(config, stack_name, force=force, echo=click.echo)
        return
    if dry_run:
        for line in stack.dry_run(config, stack_name, given, template):
            click.echo(line)
        return
    stack.deploy(config, stack_name, given, template, echo=click.echo)
    click.echo(f"next: `mfc configure --from-stack {stack_name}` writes a profile from its outputs")


@click.command("configure")
@click.option("--from-stack", "from_stack", required=True, metavar="NAME", help="The deployed stack to read.")
@click.option("--profile", default="default", show_default=True, metavar="P", help="The profile to write.")
@region_option
def configure_cmd(from_stack: str, profile: str, region: str | None) -> None:
    """Write a profile from a deployed stack's outputs (other profiles stay as they are)."""
    from mfc.deploy import configure

    path, values = configure.write(_config(region), from_stack, profile)
    click.echo(f"profile {profile!r} written to {path} from stack {from_stack}:")
    for key, value in values.items():
        click.echo(f"  {key} = {'***' if key == 'service_token' else value}")
    use = "" if profile == "default" else f"MFC_PROFILE={profile} "
    click.echo(f"check it with `{use}mfc doctor`")


@click.command("doctor")
@click.option("--profile", default=None, metavar="P", help="The profile to check (default: MFC_PROFILE's).")
def doctor_cmd(profile: str | None) -> None:
    """Check a profile's AWS resources, one line each with how to fix it. Exit 1 when one fails."""
    from mfc.deploy import doctor

    checks = doctor.run(_config(None, profile), echo=click.echo)
    failed = [c for c in checks if c.ok is False]
    click.echo(f"{len(failed)} of {len(checks)} checks failed" if failed else f"all {len(checks)} checks passed")
    if failed:
        raise SystemExit(1)
