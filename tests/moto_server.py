"""A real moto S3 server for tests and benchmarks, plus a TCP proxy that adds latency or cuts
connections.

The server is ``python -m moto.server`` in a subprocess, over HTTP on a free localhost port; the
helper waits until it answers and stops it afterwards::

    from moto_server import MotoServer

    @pytest.fixture(scope="module")
    def moto():
        with MotoServer() as server:
            yield server

    def test_something(moto):
        bucket = moto.new_bucket()                      # a fresh, uniquely named bucket
        store = S3BlobStore(f"s3://{bucket}/prefix", client=moto.client())
        env = moto.env()                                # MFC_S3_ENDPOINT_URL + fake credentials

``MotoServer(env={"INITIAL_NO_AUTH_ACTION_COUNT": "3"})`` starts a server that enforces IAM
after its first three requests (for access-denied tests). ``Proxy(moto.port, delay=0.02)`` puts
20 ms of one-way latency in front of it; ``Proxy(moto.port, cut_rate=0.2)`` cuts a fifth of the
connections part way through.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

REGION = "us-east-1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """``count`` different TCP ports on 127.0.0.1 that nothing listens on right now."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket()
            socks.append(sock)
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


class MotoServer:
    """``python -m moto.server`` on 127.0.0.1:<free port>, in a subprocess."""

    def __init__(self, env: dict[str, str] | None = None, start_timeout: float = 60) -> None:
        self.extra_env = dict(env or {})
        self.start_timeout = start_timeout
        self.port = 0
        self.process: subprocess.Popen | None = None
        self._log = tempfile.NamedTemporaryFile(prefix="moto-", suffix=".log", delete=False)  # noqa: SIM115

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MotoServer:
        for _ in range(3):  # the free port may be taken between probe and bind
            self.port = free_port()
            env = {**os.environ, **CREDENTIALS, "AWS_DEFAULT_REGION": REGION, **self.extra_env}
            self.process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=self._log, stderr=subprocess.STDOUT, env=env,
            )
            if self._wait():
                return self
        raise RuntimeError(f"moto server did not start; its log:\n{self.log()}")

    def _wait(self) -> bool:
        deadline = time.monotonic() + self.start_timeout
        assert self.process is not None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"{self.endpoint}/moto-api/data.json", timeout=2):
                    return True
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.1)
        self.stop()
        return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def log(self) -> str:
        with open(self._log.name, errors="replace") as fh:
            return fh.read()[-5000:]

    def reset(self) -> None:
        """Forget every bucket and object."""
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        urllib.request.urlopen(request, timeout=10).close()

    def env(self) -> dict[str, str]:
        """Environment that points mfc (and boto3) in a subprocess at this server."""
        return {**CREDENTIALS, "AWS_DEFAULT_REGION": REGION, "MFC_S3_ENDPOINT_URL": self.endpoint,
                "MFC_AWS_REGION": REGION}

    def client(self, service: str = "s3", endpoint: str | None = None, **config: Any) -> Any:
        """A boto3 client of this server with the test credentials; ``config`` goes to botocore's
        Config (e.g. ``retries={"mode": "standard", "total_max_attempts": 1}``)."""
        import boto3
        from botocore.config import Config

        config.setdefault("max_pool_connections", 64)
        return boto3.session.Session().client(
            service, region_name=REGION, endpoint_url=endpoint or self.endpoint,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"], config=Config(**config),
        )

    def new_bucket(self, prefix: str = "mfc-test") -> str:
        """Create a bucket with a unique name; returns the name."""
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        os.unlink(self._log.name)


class Proxy:
    """A TCP proxy on 127.0.0.1:<free port> in front of ``target_port``.

    ``delay``: seconds every byte is held in each direction (a network's latency, no bandwidth
    limit). ``cut_rate``: the share of connections aborted after a random number of bytes in one
    direction (log-uniform from 64 bytes to ``cut_max``, so small requests are cut too), as a
    network that drops connections mid-transfer. Only answers are cut unless ``cut_uploads``:
    moto's server stores a request body cut short as a shorter object (real S3 rejects it for
    its Content-Length and checksum), so cut uploads corrupt moto's data, not the client's.
    ``corrupt_rate``: the share of answers whose body byte ``corrupt_offset`` is flipped in transit.
    """

    def __init__(self, target_port: int, delay: float = 0.0, cut_rate: float = 0.0,
                 cut_max: int = 1024 * 1024, seed: int | None = None, cut_uploads: bool = False,
                 corrupt_rate: float = 0.0, corrupt_offset: int = 0) -> None:
        self.target_port = target_port
        self.delay = delay
        self.cut_rate = cut_rate
        self.cut_max = cut_max
        self.cut_uploads = cut_uploads
        self.corrupt_rate = corrupt_rate
        self.corrupt_offset = corrupt_offset
        self.corrupted = 0
        self.connections = 0
        self.cuts = 0
        self.port = 0
        self._rng = random.Random(seed)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.AbstractServer | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Proxy:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", 0, limit=1 << 20), self._loop).result()
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(close(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def __enter__(self) -> Proxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            server_r, server_w = await asyncio.open_connection("127.0.0.1", self.target_port, limit=1 << 20)
        except OSError:
            client_w.transport.abort()
            return
        cut_up = cut_down = None
        if self._rng.random() < self.cut_rate:
            where = int(math.exp(self._rng.uniform(math.log(64), math.log(max(self.cut_max, 65)))))
            if self.cut_uploads and self._rng.random() < 0.5:
                cut_up = where
            else:  # a fifth before the answer starts, the rest inside its body
                cut_down = -1 if self._rng.random() < 0.2 else where
        flip = self.corrupt_offset if self._rng.random() < self.corrupt_rate else None
        writers = (client_w, server_w)
        try:
            await asyncio.gather(self._pipe(client_r, server_w, cut_up, writers, answer=False),
                                 self._pipe(server_r, client_w, cut_down, writers, answer=True, flip=flip))
        except asyncio.CancelledError:  # the proxy is stopping
            for writer in writers:
                writer.transport.abort()

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, cut_at: int | None,
                    writers: tuple[asyncio.StreamWriter, ...], answer: bool, flip: int | None = None) -> None:
        """Copy source to sink. An answer is cut ``cut_at`` bytes into its body (or before its first
        byte when -1), never inside its header block: http.client takes headers cut short by the
        end of the stream as complete, and a client cannot tell (over TLS the cut is an error)."""
        loop = asyncio.get_running_loop()
        total = 0
        cut_first = cut_at is not None and cut_at < 0  # before the first byte: no need to find the body
        watch = answer and not cut_first and (cut_at is not None or flip is not None)
        start = None if watch else 0  # where the body starts (counted from there)
        head, head_at = b"", 0  # the answer's bytes from head_at on, until its header block ends
        try:
            while True:
                data = await source.read(1 << 20)
                due = loop.time() + self.delay
                if start is None:
                    head += data
                    while start is None and (end := head.find(b"\r\n\r\n")) >= 0:
                        if head[:12].startswith((b"HTTP/1.1 1", b"HTTP/1.0 1")):  # 100 Continue first
                            head, head_at = head[end + 4:], head_at + end + 4
                        else:
                            start = head_at + end + 4
                if flip is not None and start is not None and total <= start + flip < total + len(data):
                    at = start + flip - total
                    data = data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1:]
                    self.corrupted += 1
                if cut_at is not None and start is not None and total + len(data) > start + max(cut_at, 0):
                    self.cuts += 1
                    sink.write(data[:start + max(cut_at, 0) - total])
                    await asyncio.sleep(0.01)
                    for writer in writers:
                        writer.transport.abort()
                    return
                total += len(data)
                if self.delay:
                    loop.call_at(due, _deliver, sink, data)
                else:
                    _deliver(sink, data)
                    await sink.drain()
                if not data:
                    return
        except (ConnectionError, OSError):
            for writer in writers:
                writer.transport.abort()


class ProxyProcess:
    """A :class:`Proxy` in its own process, so that a busy client (many threads holding the GIL)
    cannot slow the network it emulates. Same arguments, ``port`` and ``endpoint``; no counters."""

    def __init__(self, target_port: int, delay: float = 0.0, cut_rate: float = 0.0,
                 cut_max: int = 1024 * 1024, seed: int | None = None) -> None:
        self.args = [str(target_port), str(delay), str(cut_rate), str(cut_max), str(seed)]
        self.process: subprocess.Popen | None = None
        self.port = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ProxyProcess:
        self.process = subprocess.Popen([sys.executable, __file__, "proxy", *self.args],
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.process is not None
        self.process.terminate()
        self.process.wait(10)


def _serve_proxy(target_port: str, delay: str, cut_rate: str, cut_max: str, seed: str) -> None:
    proxy = Proxy(int(target_port), float(delay), float(cut_rate), int(cut_max),
                  None if seed == "None" else int(seed)).start()
    print(proxy.port, flush=True)
    threading.Event().wait()


def _deliver(sink: asyncio.StreamWriter, data: bytes) -> None:
    if sink.transport.is_closing():
        return
    if data:
        sink.write(data)
    elif sink.can_write_eof():
        sink.write_eof()


if __name__ == "__main__" and sys.argv[1:2] == ["proxy"]:
    _serve_proxy(*sys.argv[2:7])
