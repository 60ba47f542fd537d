"""Start moto's server with mfc's shims installed (see :mod:`mfc.sandbox.moto_shims`)::

    python -m mfc.sandbox.moto_launcher -H 127.0.0.1 -p 5055 [--label STATE_DIR]

Everything but ``--label`` goes to ``moto.server``. ``--label`` is the value of the
``mfc.sandbox`` label put on the Batch job containers this server starts (default: the port).
``mfc sandbox up`` runs this detached with ``MOTO_DOCKER_NETWORK_MODE=host`` (job containers
share the host's network, so they reach the server on 127.0.0.1) and ``MOTO_PORT`` (moto's Step
Functions interpreter calls Batch and S3 at ``localhost:$MOTO_PORT``).
"""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--label", default=None)
    parser.add_argument("-p", "--port", default=None)
    args, rest = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    if args.port is not None:
        rest += ["-p", str(args.port)]
        os.environ["MOTO_PORT"] = str(args.port)

    from mfc.sandbox import moto_shims

    moto_shims.install(args.label or os.environ.get("MOTO_PORT", "5000"))

    from moto import server

    server.main(rest)


if __name__ == "__main__":
    main()
