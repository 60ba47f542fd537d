"""``python -m mfc.runner.envdaemon``: a fork server for one environment that outlives runs.

Started by the first run that finds none (see :mod:`mfc.runner.envclient`), with the env's
interpreter and the listening socket it inherits as ``--fd``. It imports mfc's task machinery
once, then forks one *run server* per connection: the child takes the lead's stdout/stderr, cwd,
environment variables and umask, imports the run's flow (fresh, so a run sees its flow as it is
when it starts) and serves :mod:`mfc.runner.forkserver`'s protocol to that lead alone, exactly as
a server started for the run would. The daemon exits once no run has used it for ``--idle``
seconds, and stops taking runs as soon as a module it imported changed on disk (the lead then
starts a server of its own and the next run a fresh daemon).

Connection protocol: the lead sends one JSON line (``flow_file``, ``flow_name``, ``lead``,
``cwd``, ``environ``, ``umask``) with its stdout and stderr as SCM_RIGHTS; the run server answers
``{"ev": "hello", "pid": pid}`` and from then on speaks the fork server's protocol. Only
connections from this user's processes are served.
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import signal
import socket
import struct
import sys
import time

HEADER_LIMIT = 1 << 20
CHECK_EVERY = 5.0  # seconds between checks, while idle, that the env still exists


def _loaded_files() -> dict[str, tuple[int, int]]:
    """mfc's imported source files with their (mtime, size), to notice an edited mfc."""
    files = {}
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if path and (name == "mfc" or name.startswith("mfc.")):
            stat = os.stat(path)
            files[path] = (stat.st_mtime_ns, stat.st_size)
    return files


def _stale(loaded: dict[str, tuple[int, int]]) -> bool:
    for path, seen in loaded.items():
        try:
            stat = os.stat(path)
        except OSError:
            return True
        if (stat.st_mtime_ns, stat.st_size) != seen:
            return True
    return False


def _identity(path: str) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_ino, stat.st_mtime_ns


def _same_user(conn: socket.socket) -> bool:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _, uid, _ = struct.unpack("3i", creds)
    return uid == os.getuid()


def serve_runs(listener: socket.socket, idle: float) -> None:
    """Fork a run server per connection until idle for ``idle`` seconds (or stale and unused)."""
    path0 = sys.path[0] if sys.path else ""
    loaded = _loaded_files()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, "listen")
    selector.register(wake_r, selectors.EVENT_READ, "child")
    children: set[int] = set()
    listening = True
    idle_since = time.monotonic()
    ready = os.path.join(sys.prefix, ".ready")
    built = _identity(ready)
    while listening or children:
        timeout = None if children else min(CHECK_EVERY, max(0.0, idle_since + idle - time.monotonic()))
        events = selector.select(timeout)
        if not events and not children and _identity(ready) != built:
            break  # the env was deleted or rebuilt: a later run starts a fresh daemon
        for key, _ in events:
            if key.data == "child":
                os.read(wake_r, 4096)
                continue
            conn, _ = listener.accept()
            if not _same_user(conn):
                conn.close()
                continue
            if _stale(loaded):
                conn.close()  # the lead sees no hello and starts a server of its own
                selector.unregister(listener)
                listener.close()  # frees the address for a fresh daemon
                listening = False
                continue
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    selector.close()
                    listener.close()
                    os.close(wake_r)
                    os.close(wake_w)
                    signal.set_wakeup_fd(-1)
                    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                    code = _run_server(conn, path0)
                except BaseException:  # noqa: BLE001 - never return into the daemon's loop
                    import traceback

                    traceback.print_exc()
                finally:
                    os._exit(code)
            conn.close()
            children.add(pid)
        if children and _reap(children):
            idle_since = time.monotonic()
        if not children and listening and time.monotonic() - idle_since >= idle:
            listener.close()
            listening = False


def _reap(children: set[int]) -> bool:
    """Reap the run servers that exited; whether any did."""
    reaped = False
    while children:
        try:
            done, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            children.clear()
            return True
        if done == 0:
            break
        children.discard(done)
        reaped = True
    return reaped


def _read_header(conn: socket.socket) -> tuple[dict, list[int]]:
    """The lead's JSON line and the descriptors sent with it (the lead sends nothing more
    until it has the hello, so nothing past the line is read here)."""
    conn.settimeout(30)
    data, fds, _, _ = socket.recv_fds(conn, HEADER_LIMIT, 2)
    while not data.endswith(b"\n"):
        more = conn.recv(HEADER_LIMIT)
        if not more or len(data) > HEADER_LIMIT:
            raise ConnectionError("incomplete header from the lead")
        data += more
    conn.settimeout(None)
    return json.loads(data), fds


def _run_server(conn: socket.socket, path0: str) -> int:
    """In the forked child: become this lead's fork server."""
    header, fds = _read_header(conn)
    if len(fds) != 2:
        raise ConnectionError("the lead sent no stdout/stderr")
    devnull = os.open(os.devnull, os.O_RDWR)
    for target, fd in ((0, devnull), (1, fds[0]), (2, fds[1])):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(header["cwd"])
    os.environ.clear()
    os.environ.update(header["environ"])
    os.umask(header["umask"])
    if sys.path and sys.path[0] == path0:
        sys.path[0] = header["cwd"]  # what ``python -m`` started in the lead's directory has
    conn.sendall(json.dumps({"ev": "hello", "pid": os.getpid()}).encode() + b"\n")
    from mfc.runner.envserver import _task_function
    from mfc.runner.forkserver import serve

    run = _task_function(header["flow_file"], header["flow_name"])
    serve(conn, run, int(header["lead"]))
    return 0


def _preload() -> None:
    """What every run server needs, imported once here instead of once per run."""
    import encodings.utf_8_sig  # noqa: F401 - flow sources are read with it

    import cloudpickle  # noqa: F401 - the flow's import registers it for pickling by value

    import mfc.decorators  # noqa: F401
    import mfc.flowload  # noqa: F401
    import mfc.graph  # noqa: F401
    import mfc.runner.envserver  # noqa: F401
    import mfc.runner.task  # noqa: F401
    import mfc.runner.taskspec  # noqa: F401
    import mfc.stores.local  # noqa: F401 - each task would import it (the host's tasks find it imported)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mfc-envdaemon")
    parser.add_argument("--fd", type=int, required=True, help="the bound, listening socket")
    parser.add_argument("--idle", type=float, required=True, help="exit after this many seconds unused")
    parser.add_argument("--key", default="", help="the server key (shown by ps)")
    args = parser.parse_args(argv)
    listener = socket.socket(fileno=args.fd)
    _preload()
    serve_runs(listener, args.idle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
