"""Ignore files (``.gitignore``, ``.mfcignore``, the built-in defaults) with git's rules.

Pattern matching is the ``pathspec`` library's ``GitIgnoreSpec``, which implements git's
wildmatch rules (negation, anchoring, ``**``, classes, escapes, directory-only patterns). What
is ours is how ignore files stack as the walker descends: deeper files override shallower ones,
and, as in git, a file inside an excluded directory cannot be re-included because the walker
prunes the directory.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pathspec


@dataclass(frozen=True)
class RuleSet:
    """The rules of one ignore file; they apply to paths under ``base`` ("" or "a/b/")."""

    base: str
    rules: pathspec.GitIgnoreSpec

    def decides(self, path: str, is_dir: bool) -> bool | None:
        """True (ignored) or False (re-included) by this file's last matching rule; None if no
        rule matches. ``path`` is relative to the walk root and lies under ``base``."""
        sub = path[len(self.base):]
        return self.rules.check_file(sub + "/" if is_dir else sub).include


def parse_rules(lines: Iterable[str]) -> pathspec.GitIgnoreSpec:
    """Compile the lines of one ignore file (blank lines and comments match nothing)."""
    return pathspec.GitIgnoreSpec.from_lines([_contents_only(line) for line in lines])


def _contents_only(line: str) -> str:
    # git: a trailing "/**" matches everything inside the directory but not the directory itself
    # (so "!dir/keep.py" can re-include a file); pathspec also matches the directory, "dir/**/*"
    # is git's meaning in its syntax.
    stripped = line.rstrip()
    return stripped + "/*" if stripped.endswith("/**") and not stripped.endswith("\\/**") else line


def has_rules(rules: pathspec.GitIgnoreSpec) -> bool:
    """Whether an ignore file holds at least one pattern (not only blanks and comments)."""
    return any(pattern.include is not None for pattern in rules.patterns)


def is_ignored(path: str, is_dir: bool, rule_sets: Sequence[RuleSet]) -> bool:
    """Whether ``path`` (POSIX, relative to the walk root) is ignored; the last matching rule wins.

    ``rule_sets`` must be ordered from lowest to highest precedence, and each set's base must be
    an ancestor of ``path``.
    """
    for rule_set in reversed(rule_sets):
        decision = rule_set.decides(path, is_dir)
        if decision is not None:
            return decision
    return False
