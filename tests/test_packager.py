"""Code packages: determinism, file selection, manifest, size limits, round trip."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import random
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

import mfc
from mfc.exceptions import MfcError
from mfc.packager import (
    CodePackage,
    PackageError,
    build_package,
    find_project_root,
    read_manifest,
    unpack_package,
)
from mfc.packager.ignore import RuleSet, has_rules, is_ignored, parse_rules
from mfc.packager.tarball import FIXED_MTIME

PROJECT = {
    "pyproject.toml": "[project]\nname = 'demo'\n",
    "flow.py": "from mfc import FlowSpec, step\n\nclass Demo(FlowSpec):\n    pass\n",
    "lib/__init__.py": "",
    "lib/util.py": "def helper():\n    return 42\n",
    "lib/deep/nested/mod.py": "VALUE = 'nested'\n",
    "scripts/run.py": "#!/usr/bin/env python\nprint('run')\n",
    "README.md": "# demo\n",
}
EXECUTABLE = {"scripts/run.py"}


def write_tree(root: Path, files: dict[str, str], order: list[str] | None = None) -> None:
    for rel in order or list(files):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files[rel])
        if rel in EXECUTABLE:
            path.chmod(path.stat().st_mode | 0o100)


def package_paths(package: CodePackage) -> list[str]:
    return [entry["path"] for entry in package.manifest["files"]]


# --- determinism ------------------------------------------------------------------------------


def test_same_tree_gives_same_bytes_anywhere(tmp_path: Path) -> None:
    first = tmp_path / "a" / "project"
    second = tmp_path / "elsewhere" / "deeper" / "copy"
    first.mkdir(parents=True)
    second.mkdir(parents=True)
    old_umask = os.umask(0o022)
    try:
        write_tree(first, PROJECT)
        os.umask(0o077)  # files created 0o600 / 0o700
        write_tree(second, PROJECT, order=list(reversed(PROJECT)))
    finally:
        os.umask(old_umask)
    rng = random.Random(3)
    for path in second.rglob("*"):
        stamp = rng.randint(1_000_000_000, 1_700_000_000)
        os.utime(path, (stamp, stamp))
    assert (second / "lib" / "util.py").stat().st_mode & 0o777 == 0o600

    one = build_package(first / "flow.py")
    two = build_package(second / "flow.py")
    assert one.root == first and two.root == second
    assert one.data == two.data
    assert one.sha256 == two.sha256 == hashlib.sha256(one.data).hexdigest()
    assert one.size == len(one.data)

    # A one-byte change in one file gives another package.
    (second / "lib" / "util.py").write_text("def helper():\n    return 43\n")
    assert build_package(second / "flow.py").sha256 != one.sha256


def test_archive_headers_are_fixed(tmp_path: Path) -> None:
    write_tree(tmp_path, PROJECT)
    package = build_package(tmp_path / "flow.py")
    header = package.data[:10]
    assert header[:4] == b"\x1f\x8b\x08\x00"  # gzip, deflate, no FNAME/FEXTRA/FCOMMENT flags
    assert header[4:8] == b"\0\0\0\0"  # gzip mtime 0
    assert header[9] == 255  # OS unknown
    with tarfile.open(fileobj=io.BytesIO(package.data), mode="r:gz") as archive:
        members = archive.getmembers()
    names = [member.name for member in members]
    assert names[0] == ".mfc-manifest.json"
    assert names[1:] == sorted(names[1:]) == package_paths(package)
    for member in members:
        assert member.isreg()
        assert (member.mtime, member.uid, member.gid, member.uname, member.gname) == (FIXED_MTIME, 0, 0, "", "")
        expected_mode = 0o755 if member.name in EXECUTABLE else 0o644
        assert member.mode == expected_mode, member.name


def test_long_and_unicode_paths_round_trip(tmp_path: Path) -> None:
    project = tmp_path / "p"
    long_dir = "/".join(f"directory_{index:02d}" for index in range(12))
    files = {
        "pyproject.toml": "",
        "flow.py": "x = 1\n",
        f"{long_dir}/module_with_a_long_name.py": "LONG = True\n",
        "données/modèle_é.py": "UNICODE = 'é'\n",
        ("n" * 120) + ".py": "WIDE = 1\n",
    }
    write_tree(project, files)
    package = build_package(project / "flow.py")
    with tarfile.open(fileobj=io.BytesIO(package.data), mode="r:gz") as archive:
        assert set(archive.getnames()) == {".mfc-manifest.json", *[p for p in files if p.endswith(".py")]}
    dest = tmp_path / "out"
    unpack_package(package.data, dest, package.sha256)
    for rel, text in files.items():
        if rel.endswith(".py"):
            assert (dest / rel).read_text() == text


# --- file selection ---------------------------------------------------------------------------


FILTER_TREE = {
    "pyproject.toml": "",
    ".gitignore": (
        "# comment line\n"
        "secret*.py\n"
        "!secret_ok.py\n"
        "/top_only.py\n"
        "tmp/\n"
        "docs/**/gen_*.py\n"
        "   \n"
    ),
    ".mfcignore": "experiments/\n",
    "flow.py": "",
    "lib/util.py": "",
    "lib/local.py": "",
    "secret_key.py": "",
    "secret_ok.py": "",
    "top_only.py": "",
    "sub/top_only.py": "",
    "tmp/x.py": "",
    "sub/tmp/y.py": "",
    "other/tmp.py": "",
    "docs/gen_y.py": "",
    "docs/a/b/gen_x.py": "",
    "docs/a/real.py": "",
    "experiments/e.py": "",
    "sub/.gitignore": "local.py\n!secret_sub.py\n",
    "sub/local.py": "",
    "sub/secret_sub.py": "",
    "sub/deeper/local.py": "",
    "queries/q.sql": "select 1",
    "data.csv": "a,b\n",
    # never packaged
    ".venv/lib/a.py": "",
    "venv/b.py": "",
    "myenv/pyvenv.cfg": "home = /usr\n",
    "myenv/lib/c.py": "",
    "condaenv/conda-meta/history": "",
    "condaenv/d.py": "",
    "lib/__pycache__/util.cpython-311.py": "",
    ".mfc/run.py": "",
    ".git/hooks/hook.py": "",
    "node_modules/pkg/n.py": "",
    ".tox/t.py": "",
    ".eggs/e.py": "",
    "demo.egg-info/x.py": "",
    ".pytest_cache/p.py": "",
    ".mypy_cache/m.py": "",
    ".ruff_cache/r.py": "",
    "build/lib/b.py": "",
    "dist/d.py": "",
}

FILTER_EXPECTED = [
    "docs/a/real.py",
    "flow.py",
    "lib/local.py",
    "lib/util.py",
    "other/tmp.py",
    "secret_ok.py",
    "sub/secret_sub.py",
    "sub/top_only.py",
]


def test_filters(tmp_path: Path) -> None:
    write_tree(tmp_path, FILTER_TREE)
    assert package_paths(build_package(tmp_path / "flow.py")) == FILTER_EXPECTED


def test_suffixes_are_configurable(tmp_path: Path) -> None:
    write_tree(tmp_path, FILTER_TREE)
    package = build_package(tmp_path / "flow.py", suffixes=(".py", ".sql"))
    assert package_paths(package) == sorted([*FILTER_EXPECTED, "queries/q.sql"])
    only_sql = build_package(tmp_path / "flow.py", suffixes=[".sql"])
    assert package_paths(only_sql) == ["flow.py", "queries/q.sql"]  # the flow file is always in
    with pytest.raises(MfcError, match="suffixes"):
        build_package(tmp_path / "flow.py", suffixes=".py")


def test_flow_file_is_included_even_when_ignored(tmp_path: Path) -> None:
    write_tree(tmp_path, {"pyproject.toml": "", ".gitignore": "flows/\n", "flows/secret_flow.py": "x = 1\n",
                          "lib.py": ""})
    package = build_package(tmp_path / "flows" / "secret_flow.py")
    assert package.root == tmp_path
    assert package_paths(package) == ["flows/secret_flow.py", "lib.py"]
    assert package.manifest["flow_file"] == "flows/secret_flow.py"


def test_build_and_dist_can_be_reincluded(tmp_path: Path) -> None:
    write_tree(tmp_path, {"pyproject.toml": "", "flow.py": "", "build/helpers.py": "", "dist/x.py": "",
                          "pkg/build/inner.py": ""})
    assert package_paths(build_package(tmp_path / "flow.py")) == ["flow.py", "pkg/build/inner.py"]
    (tmp_path / ".mfcignore").write_text("!build/\n")
    assert package_paths(build_package(tmp_path / "flow.py")) == ["build/helpers.py", "flow.py",
                                                                  "pkg/build/inner.py"]


def test_symlinks(tmp_path: Path) -> None:
    project = tmp_path / "project"
    outside = tmp_path / "outside"
    write_tree(project, {"pyproject.toml": "", "flow.py": "", "lib/util.py": "REAL = 1\n"})
    write_tree(outside, {"secret.py": "SECRET = 1\n", "pkg/mod.py": ""})
    (project / "link_in.py").symlink_to(project / "lib" / "util.py")
    (project / "lib" / "relative_link.py").symlink_to("util.py")
    (project / "link_out.py").symlink_to(outside / "secret.py")
    (project / "link_dir").symlink_to(project / "lib")
    (project / "link_outside_dir").symlink_to(outside / "pkg")
    (project / "dangling.py").symlink_to(project / "missing.py")
    (project / "loop.py").symlink_to(project / "loop.py")
    package = build_package(project / "flow.py")
    assert package_paths(package) == ["flow.py", "lib/relative_link.py", "lib/util.py", "link_in.py"]
    with tarfile.open(fileobj=io.BytesIO(package.data), mode="r:gz") as archive:
        member = archive.getmember("link_in.py")
        assert member.isreg()
        assert archive.extractfile(member).read() == b"REAL = 1\n"


def test_ignore_rules_unit() -> None:
    def ignored(patterns: list[str], path: str, is_dir: bool = False, base: str = "") -> bool:
        return is_ignored(path, is_dir, [RuleSet(base, parse_rules(patterns))])

    assert ignored(["*.log"], "a/b/c.log")
    assert not ignored(["*.log"], "a/b/c.log.py")
    assert ignored(["/a.py"], "a.py") and not ignored(["/a.py"], "x/a.py")
    assert ignored(["x/a.py"], "x/a.py") and not ignored(["x/a.py"], "y/x/a.py")  # middle slash anchors
    assert ignored(["out/"], "deep/out", is_dir=True) and not ignored(["out/"], "deep/out")
    assert ignored(["**/gen"], "gen") and ignored(["**/gen"], "a/b/gen")
    assert ignored(["a/**"], "a/x/y.py") and not ignored(["a/**"], "a", is_dir=True)
    assert not ignored(["a/**", "!a/keep.py"], "a/keep.py")  # git: "a/**" leaves a/ itself walkable
    assert ignored(["a/**/b.py"], "a/b.py") and ignored(["a/**/b.py"], "a/x/y/b.py")
    assert not ignored(["a/**/b.py"], "c/a/x/b.py")
    assert ignored(["a**b.py"], "axxb.py") and not ignored(["a**b.py"], "a/b.py")
    assert ignored(["m?d.py"], "mod.py") and not ignored(["m?d.py"], "m/d.py")
    assert ignored(["[abc]x.py"], "bx.py") and not ignored(["[abc]x.py"], "dx.py")
    assert ignored(["[!abc]x.py"], "dx.py") and not ignored(["[!abc]x.py"], "ax.py")
    assert ignored(["[a-c]x.py"], "bx.py") and not ignored(["[a-c]x.py"], "-x.py")
    assert ignored(["\\#hash.py"], "#hash.py") and ignored(["\\!bang.py"], "!bang.py")
    assert ignored(["trailing.py   "], "trailing.py")
    assert ignored(["space\\ "], "space ")
    assert ignored(["*.py", "!keep.py"], "drop.py") and not ignored(["*.py", "!keep.py"], "keep.py")
    assert ignored(["!keep.py", "*.py"], "keep.py")  # last match wins
    assert ignored(["local.py"], "sub/x/local.py", base="sub/")
    assert not ignored(["/local.py"], "sub/x/local.py", base="sub/")
    assert not has_rules(parse_rules(["", "# c"]))


def test_find_project_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    (home / "proj" / "flows" / "deep").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    flow = home / "proj" / "flows" / "deep" / "flow.py"
    flow.write_text("")
    (home / ".git").mkdir()  # a dotfiles repository must not make ~ the project
    assert find_project_root(flow) == flow.parent
    (home / "proj" / "pyproject.toml").write_text("")
    assert find_project_root(flow) == home / "proj"
    (home / "proj" / "flows" / ".git").mkdir()
    assert find_project_root(flow) == home / "proj" / "flows"
    assert find_project_root(str(home / "proj" / "flows" / "deep" / "flow.py")) == home / "proj" / "flows"


def test_root_argument_and_errors(tmp_path: Path) -> None:
    write_tree(tmp_path, {"pyproject.toml": "", "app/flow.py": "", "app/a.py": "", "b.py": ""})
    package = build_package(tmp_path / "app" / "flow.py", root=tmp_path / "app")
    assert package_paths(package) == ["a.py", "flow.py"]
    (tmp_path / "other").mkdir()
    with pytest.raises(MfcError, match="not inside"):
        build_package(tmp_path / "app" / "flow.py", root=tmp_path / "other")
    with pytest.raises(MfcError, match="not a directory"):
        build_package(tmp_path / "app" / "flow.py", root=tmp_path / "app" / "nothing")
    with pytest.raises(MfcError, match="not found"):
        build_package(tmp_path / "missing.py")


# --- manifest ---------------------------------------------------------------------------------


def test_manifest_contents(tmp_path: Path) -> None:
    write_tree(tmp_path, PROJECT)
    package = build_package(tmp_path / "lib" / "util.py")
    manifest = package.manifest
    assert manifest["flow_file"] == "lib/util.py"
    assert manifest["mfc_version"] == mfc.__version__
    assert "git" not in manifest
    for entry in manifest["files"]:
        content = (tmp_path / entry["path"]).read_bytes()
        assert entry["size"] == len(content)
        assert entry["sha256"] == hashlib.sha256(content).hexdigest()
    assert read_manifest(package.data) == manifest
    path = tmp_path / "package.tar.gz"
    path.write_bytes(package.data)
    assert read_manifest(path) == manifest


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_manifest_git_info(tmp_path: Path) -> None:
    write_tree(tmp_path, PROJECT)
    env = dict(os.environ, GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM="1")

    def git(*args: str) -> str:
        return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=tmp_path,
                              env=env, check=True, capture_output=True, text=True).stdout

    git("init", "-q")
    assert "git" not in build_package(tmp_path / "flow.py").manifest  # no commit yet
    git("add", "-A")
    git("commit", "-q", "-m", "first")
    clean = build_package(tmp_path / "flow.py")
    assert clean.manifest["git"] == {"commit": git("rev-parse", "HEAD").strip(), "dirty": False}
    (tmp_path / "lib" / "util.py").write_text("changed = True\n")
    dirty = build_package(tmp_path / "flow.py")
    assert dirty.manifest["git"]["dirty"] is True
    assert dirty.sha256 != clean.sha256


# --- size limits ------------------------------------------------------------------------------


def test_size_warning_lists_largest_files(tmp_path: Path) -> None:
    write_tree(tmp_path, {"pyproject.toml": "", "flow.py": "x = 1\n"})
    for index in range(7):
        (tmp_path / f"big_{index}.py").write_bytes(b"#" * (1000 * (index + 1)))
    messages: list[str] = []
    build_package(tmp_path / "flow.py", warn_bytes=10_000, warn=messages.append)
    assert len(messages) == 1
    message = messages[0]
    assert message.startswith("code package is 27.3 KB; largest files: big_6.py (6.8 KB), big_5.py")
    assert "big_2.py" in message and "big_1.py" not in message  # the five largest only
    messages.clear()
    build_package(tmp_path / "flow.py", warn=messages.append)
    assert messages == []


def test_size_limit_refuses_before_reading(tmp_path: Path) -> None:
    write_tree(tmp_path, {"pyproject.toml": "", "flow.py": "x = 1\n"})
    (tmp_path / "huge.py").write_bytes(b"#" * 5000)
    with pytest.raises(MfcError) as caught:
        build_package(tmp_path / "flow.py", max_bytes=4096, warn=lambda message: None)
    text = str(caught.value)
    assert "code package is 4.9 KB, over the 4.0 KB limit" in text
    assert "huge.py (4.9 KB)" in text and ".mfcignore" in text
    (tmp_path / ".mfcignore").write_text("huge.py\n")
    assert package_paths(build_package(tmp_path / "flow.py", max_bytes=4096)) == ["flow.py"]


# --- round trip -------------------------------------------------------------------------------


def test_round_trip(tmp_path: Path) -> None:
    project = tmp_path / "project"
    write_tree(project, PROJECT)
    package = build_package(project / "flow.py")
    dest = tmp_path / "dest" / "code"
    manifest = unpack_package(package.data, dest, expected_sha256=package.sha256)
    assert manifest == package.manifest
    unpacked = sorted(path.relative_to(dest).as_posix() for path in dest.rglob("*") if path.is_file())
    assert unpacked == sorted([".mfc-manifest.json", *package_paths(package)])
    for rel in package_paths(package):
        assert (dest / rel).read_bytes() == (project / rel).read_bytes()
        expected_mode = 0o755 if rel in EXECUTABLE else 0o644
        assert (dest / rel).stat().st_mode & 0o777 == expected_mode
    # From a file, into the same (now non-empty) destination: files are replaced.
    path = tmp_path / "package.tar.gz"
    path.write_bytes(package.data)
    (dest / "lib" / "util.py").write_text("stale\n")
    assert unpack_package(path, dest, expected_sha256=package.sha256.upper()) == manifest
    assert (dest / "lib" / "util.py").read_bytes() == (project / "lib" / "util.py").read_bytes()
    # The unpacked tree packages to the same bytes.
    assert build_package(dest / "flow.py").sha256 == package.sha256


def test_sha_mismatch_is_refused(tmp_path: Path) -> None:
    write_tree(tmp_path / "p", PROJECT)
    package = build_package(tmp_path / "p" / "flow.py")
    wrong = "0" * 64
    with pytest.raises(PackageError) as caught:
        unpack_package(package.data, tmp_path / "dest", expected_sha256=wrong)
    assert wrong in str(caught.value) and package.sha256 in str(caught.value)
    assert not (tmp_path / "dest").exists()


def test_gzip_stream_matches_gzip_module(tmp_path: Path) -> None:
    write_tree(tmp_path, PROJECT)
    package = build_package(tmp_path / "flow.py")
    raw = gzip.decompress(package.data)  # checks CRC and length trailer too
    assert len(raw) % (20 * 512) == 0
