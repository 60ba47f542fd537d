"""``mfc sandbox``: a local stand-in for AWS, for users without an account and for mfc's tests.

``mfc sandbox up`` starts, detached and recorded under a state directory (default
``~/.mfc/sandbox``, or ``$MFC_SANDBOX_DIR``):

* a moto server (S3, Batch, Step Functions, EventBridge, CloudWatch Logs, IAM, ECR API ...) on
  ``127.0.0.1:PORT``, patched by :mod:`mfc.sandbox.moto_shims`; with a Docker engine its Batch runs
  every job as a real container on the host network;
* an image registry (Debian's ``docker-registry``) on ``127.0.0.1:REGISTRY_PORT``, since moto's ECR
  stores no image layers;

then creates the bucket, IAM roles, Batch compute environments and queues, and writes the profile
``sandbox`` into mfc's config file. Modules: :mod:`.procs` (pid files, detached processes),
:mod:`.moto_server`, :mod:`.registry`, :mod:`.resources`, :mod:`.profile`, :mod:`.control`
(up/status/down), :mod:`.moto_shims` and :mod:`.moto_launcher` (moto workarounds).
"""

from __future__ import annotations

import os

DEFAULT_PORT = 5055
DEFAULT_REGISTRY_PORT = 5056
HOST = "127.0.0.1"
REGION = "us-east-1"
BUCKET = "mfc-sandbox"
CPU_QUEUE = "mfc-cpu"
PROFILE = "sandbox"
# moto accepts any credentials; boto3 still wants some.
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def default_state_dir() -> str:
    """``$MFC_SANDBOX_DIR``, else ``~/.mfc/sandbox``."""
    return os.environ.get("MFC_SANDBOX_DIR") or os.path.join(os.path.expanduser("~"), ".mfc", "sandbox")


def endpoint(port: int) -> str:
    """The sandbox's AWS endpoint URL for a moto port."""
    return f"http://{HOST}:{port}"


