"""A small gitignore matcher, used for ``.gitignore``, ``.mfcignore`` and the built-in defaults.

Supported syntax (as git documents it): blank lines and ``#`` comments, ``\\`` escapes, trailing
spaces trimmed unless escaped, ``!`` negation, ``/`` anchoring (a pattern with a slash at the start
or in the middle is relative to its file's directory, otherwise it matches at any depth), a
trailing ``/`` for directories only, ``*``, ``?``, ``[...]`` classes, and ``**`` (``**/x``,
``x/**``, ``a/**/b``). Last match wins, deeper files override shallower ones. As in git, a file
inside an excluded directory cannot be re-included: the walker prunes the directory. POSIX
character classes such as ``[[:alpha:]]`` are not supported.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    """One compiled pattern line."""

    pattern: str
    regex: re.Pattern[str]
    negate: bool
    dir_only: bool


@dataclass(frozen=True)
class RuleSet:
    """The rules of one ignore file; they apply to paths under ``base`` ("" or "a/b/")."""

    base: str
    rules: tuple[Rule, ...]


def _translate_class(pattern: str, start: int) -> tuple[str, int] | None:
    """Translate the ``[...]`` class at ``start``; return (regex, index after ``]``) or None."""
    i = start + 1
    negate = i < len(pattern) and pattern[i] in "!^"
    if negate:
        i += 1
    body_start = i
    if i < len(pattern) and pattern[i] == "]":
        i += 1
    while i < len(pattern) and pattern[i] != "]":
        i += 2 if pattern[i] == "\\" else 1
    if i >= len(pattern):
        return None
    out = []
    j = body_start
    while j < i:
        ch = pattern[j]
        if ch == "\\" and j + 1 < i:
            j += 1
            ch = pattern[j]
            out.append(re.escape(ch))
        elif ch == "-":
            out.append("-")
        else:
            out.append(re.escape(ch))
        j += 1
    body = "".join(out)
    # A class never matches "/", like fnmatch with FNM_PATHNAME.
    return ("(?!/)[" + ("^" if negate else "") + body + "]"), i + 1


def _translate(pattern: str) -> str:
    """Translate a glob (without its leading ``/`` or trailing ``/``) into a regex body."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "\\":
            if i + 1 < n:
                out.append(re.escape(pattern[i + 1]))
            i += 2
        elif ch == "*":
            j = i
            while j < n and pattern[j] == "*":
                j += 1
            at_start = i == 0 or pattern[i - 1] == "/"
            at_end = j == n or pattern[j] == "/"
            if j - i == 2 and at_start and at_end:
                if j == n:
                    out.append(".*")
                else:
                    out.append("(?:.*/)?")
                    j += 1
            else:
                out.append("[^/]*")
            i = j
        elif ch == "?":
            out.append("[^/]")
            i += 1
        elif ch == "[":
            translated = _translate_class(pattern, i)
            if translated is None:
                out.append(re.escape(ch))
                i += 1
            else:
                out.append(translated[0])
                i = translated[1]
        else:
            out.append(re.escape(ch))
            i += 1
    return "".join(out)


def _trim_trailing_spaces(line: str) -> str:
    while line.endswith(" ") and not line.endswith("\\ "):
        line = line[:-1]
    return line


def compile_rule(line: str) -> Rule | None:
    """Compile one line of an ignore file; None for blank lines and comments."""
    line = _trim_trailing_spaces(line.rstrip("\r\n"))
    if not line or line.startswith("#"):
        return None
    original = line
    negate = line.startswith("!")
    if negate:
        line = line[1:]
    dir_only = line.endswith("/") and not line.endswith("\\/")
    if dir_only:
        line = line.rstrip("/")
    if not line:
        return None
    anchored = "/" in line
    line = line.lstrip("/")
    if not line:
        return None
    body = _translate(line)
    regex = body if anchored else "(?:.*/)?" + body
    return Rule(original, re.compile(regex, re.DOTALL), negate, dir_only)


def parse_rules(lines: Iterable[str]) -> tuple[Rule, ...]:
    """Compile the lines of one ignore file."""
    rules = (compile_rule(line) for line in lines)
    return tuple(rule for rule in rules if rule is not None)


def is_ignored(path: str, is_dir: bool, rule_sets: Sequence[RuleSet]) -> bool:
    """Whether ``path`` (POSIX, relative to the walk root) is ignored; the last matching rule wins.

    ``rule_sets`` must be ordered from lowest to highest precedence, and each set's base must be
    an ancestor of ``path``.
    """
    for rule_set in reversed(rule_sets):
        sub = path[len(rule_set.base):]
        for rule in reversed(rule_set.rules):
            if rule.dir_only and not is_dir:
                continue
            if rule.regex.fullmatch(sub):
                return not rule.negate
    return False
