"""Settings the stores are built with. A store takes them from its caller; it never reads the
user's configuration itself (the caller resolves that once, :meth:`S3Settings.from_config`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class S3Settings:
    """How the S3 blob store reaches S3.

    ``region`` and ``endpoint_url``: None leaves them to boto3's own resolution (AWS_* variables,
    ``~/.aws/config``). ``workers``: threads for batch operations. ``connect_timeout`` and
    ``read_timeout`` (seconds) and ``request_attempts`` (botocore's standard retries) apply to
    each request; ``retry_attempts`` and ``retry_wait_max`` to mfc's retries around each operation.
    """

    region: str | None = None
    endpoint_url: str | None = None
    workers: int = 32
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    request_attempts: int = 4
    retry_attempts: int = 6
    retry_wait_max: float = 10.0

    @classmethod
    def from_config(cls, config: Any) -> S3Settings:
        """The settings of a resolved :class:`mfc.config.Config` (``aws_region``,
        ``s3_endpoint_url`` / ``aws_endpoint_url``)."""
        from mfc.aws import endpoint_for

        return cls(region=config["aws_region"], endpoint_url=endpoint_for("s3", config))


__all__ = ["S3Settings"]
