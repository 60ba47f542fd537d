"""Make a task's code available before it runs: the local flow file as is, or (in a container or
a Batch job) the run's code package fetched from the datastore, checked and unpacked."""

from __future__ import annotations

import os

from mfc.runner.taskspec import TaskSpec


def prepare_code(spec: TaskSpec, workdir: str | None = None) -> str:
    """Return the path of the flow file to import for this task."""
    if spec.code_package is None or os.path.isfile(spec.flow_file):
        return spec.flow_file
    from mfc.packager import unpack_package
    from mfc.stores.artifacts import ArtifactStore
    from mfc.stores.blob import open_blob_store

    store = ArtifactStore(open_blob_store(spec.datastore_root), spec.flow_name)
    sha = spec.code_package["sha256"]
    target = workdir or os.path.join(os.path.expanduser("~"), ".mfc-code", sha[:16])
    marker = os.path.join(target, ".mfc-unpacked")
    if not os.path.exists(marker):
        from mfc.exceptions import CorruptArtifact

        try:
            package = store.load_bytes(sha)
        except CorruptArtifact as exc:
            raise exc.within(f"{spec.flow_name}/{spec.run_id}", what="code package") from None
        manifest = unpack_package(package, target, expected_sha256=sha)
        with open(marker, "w") as fh:
            fh.write(manifest.get("flow_file", ""))
    with open(marker) as fh:
        relative = spec.code_package.get("flow_file") or fh.read().strip() or os.path.basename(spec.flow_file)
    return os.path.join(target, relative)
