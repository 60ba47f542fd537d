"""Storage: blob stores (local directory, S3), the content-addressed artifact store,
per-task records and run metadata. Nothing here knows about flows beyond names and ids."""

from mfc.stores.blob import BlobNotFound, BlobStore, open_blob_store

__all__ = ["BlobStore", "BlobNotFound", "open_blob_store"]
