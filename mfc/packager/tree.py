"""Find a flow's project root and select the files that go into its code package."""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mfc.exceptions import MfcError
from mfc.packager.ignore import RuleSet, has_rules, is_ignored, parse_rules
from mfc.packager.manifest import MANIFEST_NAME

IGNORE_FILES = (".gitignore", ".mfcignore")
# Never packaged, whatever the ignore files say.
HARD_EXCLUDED_DIRS = frozenset({
    ".mfc", ".git", ".hg", ".svn", ".venv", "venv", "__pycache__", ".pytest_cache", ".mypy_cache",
    ".ruff_cache", "node_modules", ".tox", ".nox", ".eggs",
})
# A directory holding one of these is an environment (virtualenv, conda), never packaged.
ENV_MARKERS = ("pyvenv.cfg", "conda-meta")
# Excluded by default; a ``!build/`` line in .gitignore or .mfcignore re-includes them.
DEFAULT_RULES = RuleSet("", parse_rules(["/build/", "/dist/"]))


@dataclass(frozen=True)
class SourceFile:
    """One file selected for the package."""

    path: str  # POSIX path relative to the root, the name inside the archive
    abspath: str  # where to read it (a symlink's own path: reading follows it)
    size: int
    executable: bool


@dataclass
class Selection:
    """The result of walking a project root."""

    root: Path
    flow_path: str  # the flow file, relative to the root (POSIX)
    files: list[SourceFile]
    unreadable_dirs: list[str] = field(default_factory=list)


def find_project_root(flow_file: str | Path) -> Path:
    """The nearest ancestor of the flow's directory (itself included) holding ``pyproject.toml``
    or ``.git``; else the flow's directory. The search stops below the home directory and the
    filesystem root, so a dotfiles repository in ``~`` never makes the whole home a project.
    """
    start = Path(os.path.abspath(flow_file)).parent
    try:
        home: Path | None = Path.home()
    except (RuntimeError, KeyError):
        home = None
    for directory in (start, *start.parents):
        if directory != start and (directory == home or directory.parent == directory):
            break
        if (directory / "pyproject.toml").is_file() or (directory / ".git").exists():
            return directory
    return start


def _is_hard_excluded(name: str) -> bool:
    return name in HARD_EXCLUDED_DIRS or name.endswith(".egg-info")


def _read_rules(path: str, base: str) -> RuleSet | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            rules = parse_rules(handle.read().splitlines())
    except OSError:
        return None
    return RuleSet(base, rules) if has_rules(rules) else None


def _inside(path: str, root_real: str) -> bool:
    return path == root_real or path.startswith(root_real.rstrip(os.sep) + os.sep)


def _flow_relpath(root: Path, flow_file: Path) -> str:
    for base, target in ((os.path.abspath(root), os.path.abspath(flow_file)),
                         (os.path.realpath(root), os.path.realpath(flow_file))):
        rel = os.path.relpath(target, base)
        if not rel.startswith(os.pardir):
            return Path(rel).as_posix()
    raise MfcError(f"flow file {flow_file} is not inside the package root {root}",
                   hint="pass a root that contains the flow file")


def _file_entry(rel: str, path: str, st: os.stat_result) -> SourceFile:
    return SourceFile(rel, path, st.st_size, bool(st.st_mode & stat.S_IXUSR))


def select_files(root: str | Path, flow_file: str | Path, suffixes: Sequence[str] = (".py",)) -> Selection:
    """Walk ``root`` and return the files to package, sorted by path.

    A file is selected when its name ends with one of ``suffixes`` and no ignore rule excludes
    it; the flow file is always selected. Symlinks to files inside the root are selected (their
    content is packaged); links that escape the root, dangling links and links to directories
    are skipped silently.
    """
    if isinstance(suffixes, str) or not suffixes or not all(isinstance(s, str) and s for s in suffixes):
        raise MfcError(f"invalid package suffixes {suffixes!r}", hint="give a list such as ['.py', '.sql']")
    root = Path(os.path.abspath(root))
    if not root.is_dir():
        raise MfcError(f"package root {root} is not a directory")
    flow_rel = _flow_relpath(root, Path(flow_file))
    root_real = os.path.realpath(root)
    wanted = tuple(suffixes)
    selected: dict[str, SourceFile] = {}
    unreadable: list[str] = []
    base_sets: tuple[RuleSet, ...] = (DEFAULT_RULES,)
    info_exclude = _read_rules(os.path.join(root, ".git", "info", "exclude"), "")
    if info_exclude:
        base_sets += (info_exclude,)

    # Iterative depth-first walk; each frame carries the rule sets of its ancestors.
    stack: list[tuple[str, str, tuple[RuleSet, ...]]] = [(str(root), "", base_sets)]
    while stack:
        dir_path, rel_dir, rule_sets = stack.pop()
        try:
            with os.scandir(dir_path) as scan:
                entries = list(scan)
        except OSError:
            unreadable.append(rel_dir or ".")
            continue
        names = {entry.name for entry in entries}
        if rel_dir and any(marker in names for marker in ENV_MARKERS):
            continue
        prefix = rel_dir + "/" if rel_dir else ""
        for ignore_name in IGNORE_FILES:
            if ignore_name in names:
                rule_set = _read_rules(os.path.join(dir_path, ignore_name), prefix)
                if rule_set:
                    rule_sets = rule_sets + (rule_set,)
        for entry in entries:
            rel = prefix + entry.name
            try:
                if entry.is_symlink():
                    if entry.name.endswith(wanted) and not is_ignored(rel, False, rule_sets):
                        _add_link(entry, rel, root_real, selected)
                elif entry.is_dir():
                    if not _is_hard_excluded(entry.name) and not is_ignored(rel, True, rule_sets):
                        stack.append((entry.path, rel, rule_sets))
                elif entry.is_file():
                    if entry.name.endswith(wanted) and not is_ignored(rel, False, rule_sets):
                        selected[rel] = _file_entry(rel, entry.path, entry.stat())
            except OSError:
                continue  # vanished or unreadable while walking: not part of the tree
    selected.pop(MANIFEST_NAME, None)
    if flow_rel not in selected:
        flow_abs = os.path.join(root, *flow_rel.split("/"))
        try:
            selected[flow_rel] = _file_entry(flow_rel, flow_abs, os.stat(flow_abs))
        except OSError as exc:
            raise MfcError(f"cannot read flow file {flow_abs}: {exc.strerror}") from None
    files = [selected[path] for path in sorted(selected)]
    return Selection(root, flow_rel, files, sorted(unreadable))


def _add_link(entry: os.DirEntry[str], rel: str, root_real: str, selected: dict[str, SourceFile]) -> None:
    target = os.path.realpath(entry.path)
    if not _inside(target, root_real):
        return
    try:
        st = os.stat(target)
    except OSError:
        return
    if stat.S_ISREG(st.st_mode):
        selected[rel] = _file_entry(rel, entry.path, st)
