"""Metaflow's data tools on mfc: the ``S3`` client (``from mfc import S3``)."""

from __future__ import annotations

from mfc.datatools.s3 import S3, MetaflowS3NotFound, S3NotFound
from mfc.datatools.s3_object import S3Object

__all__ = ["S3", "S3Object", "S3NotFound", "MetaflowS3NotFound"]
