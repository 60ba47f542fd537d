"""Pieces of the S3 blob store that are not the store itself: root parsing, which failures are
transient and how they are retried, how S3 errors become one-line :class:`MfcError` messages,
and the streaming reader behind ``open()`` (which runs what it reads through the check it is
given, if any: what objects hold and how they are checked is not known here).

Only imported for ``s3://`` datastore roots, so importing botocore here costs local runs nothing.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, BinaryIO

import botocore.exceptions as bex
import tenacity

from mfc.exceptions import CorruptArtifact, MfcError
from mfc.stores.blob import StreamCheck

__all__ = ["S3Error", "BlobCorrupt", "parse_root", "S3Reader", "ObjectInfo"]

# Error codes S3 (and S3-compatible stores) answer when retrying later should succeed.
TRANSIENT_CODES = frozenset({
    "SlowDown", "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottled",
    "TooManyRequests", "TooManyRequestsException", "RequestLimitExceeded", "BandwidthLimitExceeded",
    "ProvisionedThroughputExceededException", "RequestTimeout", "RequestTimeoutException",
    "InternalError", "ServiceUnavailable", "OperationAborted", "ConditionalRequestConflict",
    "PriorRequestNotComplete", "EC2ThrottledException", "500", "502", "503", "504", "429",
})
DENIED_CODES = frozenset({
    "AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken",
    "InvalidToken", "TokenRefreshRequired", "AllAccessDisabled", "AccountProblem", "InvalidSecurity",
})
# A response whose bytes do not match the checksum S3 sent with it.
CHECKSUM_ERRORS = (bex.ChecksumError, bex.FlexibleChecksumError)
# Failures of the connection itself (refused, reset, timed out, cut mid-body, corrupted in flight).
TRANSIENT_ERRORS = (bex.ConnectionError, bex.HTTPClientError, bex.IncompleteReadError, *CHECKSUM_ERRORS)
CREDENTIAL_ERRORS = (
    bex.NoCredentialsError, bex.PartialCredentialsError, bex.CredentialRetrievalError, bex.ProfileNotFound,
)

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_staging: str | None = None
READ_CHUNK = 1024 * 1024  # the most one read asks of a socket (urllib3 copies through a buffer this big)


class S3Error(MfcError):
    """The S3 datastore failed in a way that retrying will not fix."""


class BlobCorrupt(CorruptArtifact, S3Error):
    """Bytes that S3 handed over damaged: a content-addressed object whose bytes do not hash to
    its key, or a response that fails its checksum. Read once more before it is believed."""


def parse_root(root: str) -> tuple[str, str]:
    """(bucket, key prefix ending in '/' or empty) of ``s3://bucket[/prefix][/]``."""
    if not root.startswith("s3://"):
        raise MfcError(f"datastore root {root!r} is not an s3://bucket/prefix URL")
    bucket, _, prefix = root[len("s3://"):].partition("/")
    if not _BUCKET.match(bucket):
        raise MfcError(f"datastore root {root!r}: {bucket!r} is not a valid S3 bucket name",
                       "3-63 characters: lowercase letters, digits, '.' and '-'")
    prefix = "/".join(part for part in prefix.split("/") if part)
    return bucket, prefix + "/" if prefix else ""


def staging_directory() -> str:
    """``<tmp>/mfc-staging-<uid>``, private to this user (a fresh temporary directory when that
    name belongs to someone else)."""
    global _staging
    if _staging is None:
        path = os.path.join(tempfile.gettempdir(), f"mfc-staging-{os.getuid()}")
        os.makedirs(path, mode=0o700, exist_ok=True)
        if os.stat(path).st_uid != os.getuid():
            path = tempfile.mkdtemp(prefix="mfc-staging-")
        _staging = path
    return _staging


def no_such_bucket(exc: bex.ClientError) -> bex.ClientError:
    """The bare 404 of HEAD bucket, as the NoSuchBucket error other calls answer."""
    response = dict(exc.response)
    response["Error"] = {**response.get("Error", {}), "Code": "NoSuchBucket"}
    return bex.ClientError(response, "HeadBucket")


def error_code(exc: BaseException) -> tuple[str, int]:
    """(code, HTTP status) of a botocore ClientError; ("", 0) for anything else."""
    if not isinstance(exc, bex.ClientError):
        return "", 0
    code = str(exc.response.get("Error", {}).get("Code", ""))
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    return code, status


def is_transient(exc: BaseException) -> bool:
    """True for throttling, 5xx answers and dropped or broken connections."""
    if isinstance(exc, bex.ClientError):
        code, status = error_code(exc)
        return code in TRANSIENT_CODES or (status >= 500 and status != 501) or status == 429
    return isinstance(exc, TRANSIENT_ERRORS)


def retrying(attempts: int, wait_max: float) -> tenacity.Retrying:
    """Retry transient failures with full-jitter exponential backoff (on top of botocore's own)."""
    return tenacity.Retrying(
        retry=tenacity.retry_if_exception(is_transient),
        wait=tenacity.wait_random_exponential(multiplier=0.1, max=wait_max),
        stop=tenacity.stop_after_attempt(attempts),
        reraise=True,
    )


def backoff(attempt: int, wait_max: float) -> None:
    """Sleep like :func:`retrying` does before retry number ``attempt`` (1-based)."""
    import random

    time.sleep(random.uniform(0, min(wait_max, 0.1 * 2 ** attempt)))


def describe(exc: BaseException, *, bucket: str, root: str, url: str, endpoint: str | None) -> S3Error:
    """One clear line for an S3 failure that retrying did not (or will not) fix."""
    where = endpoint or "AWS S3"
    if isinstance(exc, S3Error):
        return exc
    if isinstance(exc, CREDENTIAL_ERRORS):
        return S3Error(
            f"no usable AWS credentials for the S3 datastore {root}: {exc}",
            "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE naming a profile in "
            "~/.aws/credentials, or run where an IAM role is available",
        )
    code, status = error_code(exc)
    if code == "NoSuchBucket":
        return S3Error(
            f"S3 bucket {bucket!r} does not exist (datastore root {root}, endpoint {where})",
            "create it, or point MFC_DATASTORE_ROOT / --datastore-root at an existing bucket",
        )
    if code in DENIED_CODES or status == 403:
        return S3Error(
            f"access denied to {url} ({code or status}): check credentials/profile",
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE, and the bucket's policy",
        )
    if isinstance(exc, bex.ClientError):
        message = exc.response.get("Error", {}).get("Message", "")
        kind = "kept failing" if is_transient(exc) else "failed"
        return S3Error(f"S3 {kind} for {url}: {code or status}: {message}".rstrip(": "))
    if isinstance(exc, TRANSIENT_ERRORS):
        return S3Error(f"cannot reach S3 at {where} for {url}: {exc}",
                       "check MFC_S3_ENDPOINT_URL / MFC_AWS_ENDPOINT_URL and the network")
    return S3Error(f"S3 access to {url} failed: {type(exc).__name__}: {exc}")


def whole(answer: dict, url: str, *fields: str) -> dict:
    """``answer`` if it has ``fields``. http.client ends the headers where a connection drops, so
    an answer cut inside its headers parses as a success without them: that is a dropped
    connection, to retry."""
    if all(field in answer for field in fields):
        return answer
    raise bex.ConnectionClosedError(endpoint_url=url)


@dataclass(frozen=True)
class ObjectInfo:
    """What S3 says of one object: ``key`` (relative to the store's prefix), ``size`` in bytes,
    ``content_type``, user ``metadata``, ``last_modified`` (a datetime) and ``etag``, from a HEAD,
    a GET or a listing (which tells no content type or metadata). In a listing, a common prefix
    (a "directory") has ``size`` None."""

    key: str
    size: int | None = None
    content_type: str | None = None
    metadata: dict[str, str] | None = None
    last_modified: Any = None
    etag: str | None = None

    @property
    def is_prefix(self) -> bool:
        """True for a common prefix of a listing (no object of its own)."""
        return self.size is None

    @classmethod
    def of(cls, key: str, answer: dict[str, Any], size: int | None = None) -> ObjectInfo:
        """The info in a HEAD or GET answer (``size``: the whole object's, when the GET was ranged)
        or in an entry of ``list_objects_v2``'s ``Contents``."""
        found = size if size is not None else answer.get("ContentLength", answer.get("Size"))
        return cls(key, None if found is None else int(found), answer.get("ContentType"), answer.get("Metadata"),
                   answer.get("LastModified"), answer.get("ETag"))


def read_exactly(body: Any, size: int) -> bytearray:
    """All ``size`` bytes of a response body, read in place (no joined copy of the whole)."""
    buffer = bytearray(size)
    view, done = memoryview(buffer), 0
    while done < size:
        got = body.readinto(view[done:done + READ_CHUNK])
        if not got:
            raise bex.IncompleteReadError(actual_bytes=done, expected_bytes=size)
        done += got
    body.read(1)  # the empty read at the end lets botocore check the length
    body.close()
    view.release()
    return buffer


def ranged_body(s3: Any, pinned: dict[str, str], url: str, start: int, end: int) -> Any:
    """The body of bytes ``[start, end)`` of the object ``pinned`` names (``Bucket``, ``Key`` and
    ``IfMatch``: the ETag first read); S3Error when it changed or vanished since, a dropped
    connection when the answer is not that range."""
    try:
        part = s3.get_object(**pinned, Range=f"bytes={start}-{end - 1}")
    except bex.ClientError as exc:
        if error_code(exc)[0] in ("NoSuchKey", "404", "NotFound", "PreconditionFailed"):
            raise S3Error(f"{url} changed or vanished while it was being read") from None
        raise
    if not str(whole(part, url, "ContentRange").get("ContentRange")).startswith(f"bytes {start}-"):
        part["Body"].close()
        raise bex.ConnectionClosedError(endpoint_url=url)
    return part["Body"]


class S3Reader(io.RawIOBase):
    """A read-only stream over one S3 object, for ``io.BufferedReader`` (``pickle.load`` reads it).

    Bytes ``[0, body_end)`` come from the already open response ``body``; when the object is
    larger, the rest is fetched as ranged GETs of ``part_size`` on ``submit`` (a thread pool),
    ``window`` parts ahead, so memory stays near ``window * part_size`` whatever the object's size.
    A connection cut mid-body is resumed with a ranged GET from the current offset (pinned to the
    object's ETag); ``check`` sees every byte and is finished when the last byte is read.
    """

    def __init__(self, body: Any, body_end: int, size: int, *, url: str,
                 reopen: Callable[[int, int], Any], fetch: Callable[[int, int], bytes],
                 submit: Callable[..., Future], part_size: int, window: int,
                 check: StreamCheck | None, max_drops: int, wait_max: float,
                 info: ObjectInfo | None = None) -> None:
        super().__init__()
        self.info = info  # what the first GET said of the object
        self._body = body
        self._body_end = body_end
        self._size = size
        self._url = url
        self._reopen = reopen
        self._fetch = fetch
        self._submit = submit
        self._part_size = part_size
        self._window = window
        self._check = check
        self._max_drops = max_drops
        self._wait_max = wait_max
        self._pos = 0
        self._drops = 0
        self._parts: deque[tuple[int, Future]] = deque()
        self._next_part = body_end
        self._chunk = memoryview(b"")
        self._finished = False
        self._fill_window()

    def readable(self) -> bool:
        return True

    @property
    def size(self) -> int:
        return self._size

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        while view.nbytes and self._pos < self._size:
            if self._pos < self._body_end:
                got = self._read_body(view[:min(view.nbytes, self._body_end - self._pos, READ_CHUNK)])
            else:
                got = self._read_part(view)
            if got:
                if self._check is not None:
                    self._check.update(view[:got])
                self._pos += got
                if self._pos >= self._size:
                    self._finish()
                return got
        if self._pos >= self._size:
            self._finish()
        return 0

    def copy_to(self, out: BinaryIO) -> int:
        """Write the rest of the object to ``out`` as it streams in; the bytes written."""
        buffer = memoryview(bytearray(max(1, min(READ_CHUNK, self._size - self._pos))))
        done = 0
        while got := self.readinto(buffer):
            out.write(buffer[:got])
            done += got
        return done

    def _read_body(self, view: memoryview) -> int:
        try:
            got = self._body.readinto(view)
        except CHECKSUM_ERRORS as exc:  # bytes already handed out may be bad: no resuming
            raise BlobCorrupt(f"{self._url} was corrupted in transit: {exc}") from None
        except TRANSIENT_ERRORS:
            got = 0
        if got:
            if self._pos + got >= self._body_end:
                self._close_body(ended=True)
                self._fill_window()
            return got
        # The connection closed or broke before the range's end: resume from where we are.
        self._drops += 1
        if self._drops > self._max_drops:
            raise S3Error(f"the connection kept dropping while reading {self._url} (at byte {self._pos})")
        backoff(self._drops, self._wait_max)
        self._close_body()
        self._body = self._reopen(self._pos, self._body_end)
        return 0

    def _read_part(self, view: memoryview) -> int:
        if not self._chunk.nbytes:
            if not self._parts:
                self._fill_window()
            start, future = self._parts.popleft()
            assert start == self._pos
            self._chunk = memoryview(future.result())
            self._fill_window()
        got = min(view.nbytes, self._chunk.nbytes)
        view[:got] = self._chunk[:got]
        self._chunk = self._chunk[got:]
        return got

    def _fill_window(self) -> None:
        while len(self._parts) < self._window and self._next_part < self._size:
            start, end = self._next_part, min(self._next_part + self._part_size, self._size)
            self._parts.append((start, self._submit(self._fetch, start, end)))
            self._next_part = end

    def _finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        try:
            self._close_body()
        except BaseException:
            if self._check is not None:
                self._check.abandon()
            raise
        if self._check is not None:
            self._check.finish()

    def _close_body(self, ended: bool = False) -> None:
        if self._body is not None:
            body, self._body = self._body, None
            try:
                if ended:
                    body.read(1)  # the empty read at the end lets botocore check length and checksum
            except CHECKSUM_ERRORS as exc:
                raise BlobCorrupt(f"{self._url} was corrupted in transit: {exc}") from None
            finally:
                body.close()

    def close(self) -> None:
        if not self.closed:
            if self._check is not None and not self._finished:
                self._check.abandon()
            for _, future in self._parts:
                future.cancel()
            self._parts.clear()
            self._chunk = memoryview(b"")
            if self._body is not None:
                self._body.close()
                self._body = None
        super().close()
