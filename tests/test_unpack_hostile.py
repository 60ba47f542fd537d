"""Hostile and corrupt code packages are refused, and nothing is written outside the destination."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
import time
import tracemalloc
import zlib
from pathlib import Path

import pytest

from mfc.packager import PackageError, build_package, read_manifest, unpack_package

MANIFEST = ".mfc-manifest.json"


def manifest_bytes(files: dict[str, bytes | int]) -> bytes:
    """A manifest listing ``files`` (content, or a size for files whose content is not given)."""
    entries = []
    for path, content in files.items():
        if isinstance(content, int):
            entries.append({"path": path, "size": content, "sha256": "0" * 64})
        else:
            entries.append({"path": path, "size": len(content), "sha256": hashlib.sha256(content).hexdigest()})
    return json.dumps({"format": 1, "flow_file": "ok.py", "files": entries}).encode()


def file_info(name: str, size: int, type_: bytes = tarfile.REGTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.type = type_
    return info


def craft(members: list[tuple[tarfile.TarInfo, bytes | None]], listed: dict[str, bytes | int] | None = None,
          manifest: bytes | None = None) -> bytes:
    """A tar.gz whose first member is a manifest listing ``listed``, followed by ``members``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as archive:
        raw = manifest if manifest is not None else manifest_bytes(listed or {})
        archive.addfile(file_info(MANIFEST, len(raw)), io.BytesIO(raw))
        for info, data in members:
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def snapshot(root: Path, dest: Path) -> dict[str, int]:
    """Every path under ``root`` outside ``dest``, with its size."""
    found = {}
    for path in root.rglob("*"):
        if path != dest and dest not in path.parents:
            found[str(path)] = path.lstat().st_size
    return found


def files_under(dest: Path) -> list[str]:
    return sorted(str(path.relative_to(dest)) for path in dest.rglob("*") if not path.is_dir()) if dest.exists() else []


def assert_refused(tmp_path: Path, data: bytes, match: str, **kwargs: object) -> PackageError:
    dest = tmp_path / "dest"
    (tmp_path / "outside").mkdir(exist_ok=True)
    before = snapshot(tmp_path, dest)
    with pytest.raises(PackageError, match=match) as caught:
        unpack_package(data, dest, **kwargs)
    assert snapshot(tmp_path, dest) == before, "something was written outside the destination"
    assert files_under(dest) == [], "a refused package left files behind"
    return caught.value


OK = b"print('ok')\n"


def test_valid_crafted_package_unpacks(tmp_path: Path) -> None:
    # The helpers build packages the unpacker accepts, so each refusal below is for its own reason.
    data = craft([(file_info("ok.py", len(OK)), OK), (file_info("./pkg/two.py", 2), b"2\n")],
                 {"ok.py": OK, "pkg/two.py": b"2\n"})
    unpack_package(data, tmp_path / "dest")
    assert files_under(tmp_path / "dest") == [MANIFEST, "ok.py", "pkg/two.py"]


def test_absolute_path(tmp_path: Path) -> None:
    target = tmp_path / "outside" / "evil.py"
    data = craft([(file_info("ok.py", len(OK)), OK), (file_info(str(target), 4), b"evil")], {"ok.py": OK})
    assert_refused(tmp_path, data, "absolute path")
    assert not target.exists()


@pytest.mark.parametrize("name", ["../escape.py", "pkg/../../escape.py", "pkg/../../../outside/escape.py"])
def test_dotdot(tmp_path: Path, name: str) -> None:
    data = craft([(file_info("ok.py", len(OK)), OK), (file_info(name, 4), b"evil")], {"ok.py": OK})
    assert_refused(tmp_path, data, r"'\.\.' component")
    assert not (tmp_path / "escape.py").exists()


def test_symlink_to_etc_passwd(tmp_path: Path) -> None:
    link = file_info("passwd.py", 0, tarfile.SYMTYPE)
    link.linkname = "/etc/passwd"
    assert_refused(tmp_path, craft([(link, None)], {"passwd.py": 0}), "is a symlink")


def test_symlinked_directory_then_file_through_it(tmp_path: Path) -> None:
    link = file_info("pkg", 0, tarfile.SYMTYPE)
    link.linkname = str(tmp_path / "outside")
    data = craft([(link, None), (file_info("pkg/evil.py", 4), b"evil")], {"pkg/evil.py": b"evil"})
    assert_refused(tmp_path, data, "is a symlink")
    assert not (tmp_path / "outside" / "evil.py").exists()


def test_hardlink(tmp_path: Path) -> None:
    link = file_info("hard.py", 0, tarfile.LNKTYPE)
    link.linkname = "/etc/passwd"
    assert_refused(tmp_path, craft([(link, None)], {"hard.py": 0}), "hard link")


@pytest.mark.parametrize(("type_", "what"), [(tarfile.CHRTYPE, "character device"),
                                             (tarfile.BLKTYPE, "block device"), (tarfile.FIFOTYPE, "FIFO")])
def test_devices_and_fifos(tmp_path: Path, type_: bytes, what: str) -> None:
    info = file_info("dev.py", 0, type_)
    info.devmajor, info.devminor = 1, 3
    data = craft([(file_info("ok.py", len(OK)), OK), (info, None)], {"ok.py": OK, "dev.py": 0})
    assert_refused(tmp_path, data, what)


def _bomb(declared: int, header_type: bytes = tarfile.REGTYPE) -> bytes:
    """A tar.gz declaring a ``declared``-byte member of zeros: ~2 MB compressed for 2 GiB.

    Built from concatenated gzip members (valid gzip), compressing only 8 MiB of zeros once.
    """
    prefix = io.BytesIO()
    raw = manifest_bytes({"bomb.py": declared})
    with tarfile.open(fileobj=prefix, mode="w", format=tarfile.PAX_FORMAT) as archive:
        archive.addfile(file_info(MANIFEST, len(raw)), io.BytesIO(raw))
        tar_prefix = prefix.getvalue()[: prefix.tell()]
    header = file_info("bomb.py" if header_type == tarfile.REGTYPE else "././@PaxHeader", declared, header_type)
    head = tar_prefix + header.tobuf(tarfile.USTAR_FORMAT)
    chunk = 8 * 1024 * 1024
    zeros = gzip.compress(b"\0" * chunk, compresslevel=9)
    return gzip.compress(head) + zeros * (declared // chunk)


def _refuse_quickly(tmp_path: Path, data: bytes, match: str, **kwargs: object) -> None:
    tracemalloc.start()
    start = time.perf_counter()
    try:
        assert_refused(tmp_path, data, match, **kwargs)
    finally:
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert elapsed < 1.0, f"refusing took {elapsed:.2f} s: the bomb was inflated"
    assert peak < 16 * 1024 * 1024, f"refusing used {peak / 1024**2:.0f} MB"


def test_gzip_bomb_2gb_of_zeros(tmp_path: Path) -> None:
    data = _bomb(2 * 1024**3)
    assert len(data) < 4 * 1024 * 1024
    _refuse_quickly(tmp_path, data, "more than 1073741824 bytes")


def test_gzip_bomb_under_a_small_limit(tmp_path: Path) -> None:
    _refuse_quickly(tmp_path, _bomb(64 * 1024 * 1024), "more than 1048576 bytes", max_bytes=1024 * 1024)


def test_pax_header_bomb(tmp_path: Path) -> None:
    _refuse_quickly(tmp_path, _bomb(2 * 1024**3, tarfile.XHDTYPE), "PAX header")


def test_total_size_is_counted_across_members(tmp_path: Path) -> None:
    blob = os.urandom(1024 * 1024)
    members = [(file_info(f"part_{index}.py", len(blob)), blob) for index in range(6)]
    data = craft(members, {f"part_{index}.py": blob for index in range(6)})
    assert_refused(tmp_path, data, "more than 4194304 bytes", max_bytes=4 * 1024 * 1024)
    unpack_package(data, tmp_path / "ok", max_bytes=8 * 1024 * 1024)  # the same package under a larger limit


def test_stream_is_counted_not_only_headers(tmp_path: Path) -> None:
    # Every member declares 1 byte, but 60 KB PAX records pad each one: declared sizes stay tiny
    # while the stream inflates far past max_bytes plus ordinary tar overhead.
    members = []
    for index in range(100):
        info = file_info(f"m{index}.py", 1)
        info.pax_headers = {"comment": "z" * 60_000}
        members.append((info, b"x"))
    data = craft(members, {f"m{index}.py": b"x" for index in range(100)})
    assert_refused(tmp_path, data, "inflates to more than", max_bytes=1024 * 1024, max_members=1000)
    unpack_package(data, tmp_path / "ok", max_bytes=8 * 1024 * 1024, max_members=1000)


def test_member_count_bomb(tmp_path: Path) -> None:
    members = [(file_info(f"m{index}.py", 1), b"x") for index in range(500)]
    data = craft(members, {f"m{index}.py": b"x" for index in range(500)})
    start = time.perf_counter()
    assert_refused(tmp_path, data, "more than 100 members", max_members=100)
    assert time.perf_counter() - start < 1.0


def test_sha_mismatch(tmp_path: Path) -> None:
    data = craft([(file_info("ok.py", len(OK)), OK)], {"ok.py": OK})
    actual = hashlib.sha256(data).hexdigest()
    error = assert_refused(tmp_path, data, "sha256 mismatch", expected_sha256="ab" * 32)
    assert "ab" * 32 in str(error) and actual in str(error)
    assert not (tmp_path / "dest").exists()


@pytest.mark.parametrize("second", ["ok.py", "./ok.py", ".//ok.py"])
def test_duplicate_paths(tmp_path: Path, second: str) -> None:
    data = craft([(file_info("ok.py", len(OK)), OK), (file_info(second, len(OK)), OK)], {"ok.py": OK})
    assert_refused(tmp_path, data, "appears twice")


def test_member_not_in_manifest(tmp_path: Path) -> None:
    data = craft([(file_info("ok.py", len(OK)), OK), (file_info("extra.py", 1), b"x")], {"ok.py": OK})
    assert_refused(tmp_path, data, "not in its manifest")


def test_content_differs_from_manifest(tmp_path: Path) -> None:
    data = craft([(file_info("ok.py", len(OK)), OK.upper())], {"ok.py": OK})
    assert_refused(tmp_path, data, "does not match its manifest")


def test_file_missing_from_archive(tmp_path: Path) -> None:
    data = craft([(file_info("ok.py", len(OK)), OK)], {"ok.py": OK, "gone.py": b"x"})
    assert_refused(tmp_path, data, "missing 1 file")


def test_no_manifest(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        archive.addfile(file_info("ok.py", len(OK)), io.BytesIO(OK))
    assert_refused(tmp_path, buffer.getvalue(), "first member is not")
    with pytest.raises(PackageError, match="first member is not"):
        read_manifest(buffer.getvalue())


def test_corrupt_data(tmp_path: Path) -> None:
    good = craft([(file_info("ok.py", len(OK)), OK)], {"ok.py": OK})
    assert_refused(tmp_path, b"PK\x03\x04 not a tarball", "not gzip")
    assert_refused(tmp_path, good[: len(good) // 2], "truncated|corrupt")
    raw = bytearray(gzip.decompress(good))
    manifest_size = len(manifest_bytes({"ok.py": OK}))
    raw[512 + -(-manifest_size // 512) * 512 + 10] ^= 0xFF  # inside the second member's header
    assert_refused(tmp_path, gzip.compress(bytes(raw)), "checksum")
    assert_refused(tmp_path, craft([], manifest=b"[1, 2]"), "not a JSON object")
    assert_refused(tmp_path, craft([], manifest=b"{not json"), "not JSON")


def test_existing_symlink_in_destination_is_not_followed(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "lib").mkdir(parents=True)
    (project / "flow.py").write_text("x = 1\n")
    (project / "lib" / "util.py").write_text("y = 2\n")
    package = build_package(project / "flow.py", root=project)
    dest = tmp_path / "dest"
    dest.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (dest / "lib").symlink_to(outside)
    with pytest.raises(PackageError, match="not a directory"):
        unpack_package(package.data, dest)
    assert list(outside.iterdir()) == []
    assert sorted(os.listdir(dest)) == ["lib"]  # the symlink is left alone, flow.py rolled back


def test_truncated_stream_is_not_accepted_silently(tmp_path: Path) -> None:
    good = craft([(file_info("ok.py", len(OK)), OK)], {"ok.py": OK})
    raw = gzip.decompress(good)
    cut = zlib.compressobj(6, zlib.DEFLATED, 31)
    partial = cut.compress(raw[:1024]) + cut.flush(zlib.Z_SYNC_FLUSH)  # no gzip trailer
    assert_refused(tmp_path, partial, "truncated")
