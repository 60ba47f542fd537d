"""Reading the intrinsic functions the compiler writes (``States.Array``, ``States.Format``, string
literals, paths) back into a tree, and expanding one to the longest text it can give at run time,
so that :mod:`mfc.sfn.lint` can judge sizes (container overrides, job names) before anything is
deployed. Pure: no AWS, no I/O."""

from __future__ import annotations

from dataclasses import dataclass

from mfc.exceptions import MfcError

RUN_ID_ROOM = 84  # "sfn-" + an execution name of up to 80 characters
RETRY_COUNT_ROOM = 10
ARN_ROOM = 256  # an execution ARN: partition, region, account, state machine and execution names
OTHER_PATH_ROOM = 256  # anything else a path may hold here (an error name: at most 256 characters)


@dataclass(frozen=True)
class Literal:
    """A string literal as written (``raw``: between the quotes, escapes kept)."""

    raw: str

    @property
    def text(self) -> str:
        """The literal's value: ``\\'``, ``\\{``, ``\\}`` and ``\\\\`` unescaped."""
        return "".join(piece for piece, _ in _pieces(self.raw))


@dataclass(frozen=True)
class Path:
    """A JSONPath into the state (``$.run``) or the context object (``$$.Execution.Id``)."""

    path: str


@dataclass(frozen=True)
class Call:
    """An intrinsic function call: ``States.Format('{}-{}', 'a', $.ix)``."""

    name: str
    args: tuple[Node, ...]


Node = Literal | Path | Call


def _pieces(raw: str) -> list[tuple[str, bool]]:
    """``raw`` as (text, is_placeholder) pieces: an unescaped ``{}`` is a placeholder."""
    out: list[tuple[str, bool]] = []
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch == "\\" and i + 1 < len(raw):
            out.append((raw[i + 1], False))
            i += 2
        elif raw.startswith("{}", i):
            out.append(("", True))
            i += 2
        else:
            out.append((ch, False))
            i += 1
    return out


def parse(text: str) -> Node:
    """The tree of one intrinsic-function expression (MfcError when it is not one)."""
    node, end = _parse(text, 0)
    if text[end:].strip():
        raise MfcError(f"unexpected {text[end:end + 20]!r} after an intrinsic function in {text[:80]!r}")
    return node


def _skip(text: str, i: int) -> int:
    while i < len(text) and text[i].isspace():
        i += 1
    return i


def _parse(text: str, i: int) -> tuple[Node, int]:
    i = _skip(text, i)
    if i >= len(text):
        raise MfcError(f"an intrinsic function ends early: {text[:80]!r}")
    if text[i] == "'":
        j = i + 1
        while j < len(text) and text[j] != "'":
            j += 2 if text[j] == "\\" else 1
        if j >= len(text):
            raise MfcError(f"an unterminated string literal in {text[:80]!r}")
        return Literal(text[i + 1:j]), j + 1
    j = i
    while j < len(text) and text[j] not in ",()":
        j += 1
    word = text[i:j].strip()
    if j < len(text) and text[j] == "(":
        args: list[Node] = []
        j = _skip(text, j + 1)
        if j < len(text) and text[j] == ")":
            return Call(word, ()), j + 1
        while True:
            arg, j = _parse(text, j)
            args.append(arg)
            j = _skip(text, j)
            if j < len(text) and text[j] == ",":
                j += 1
                continue
            if j < len(text) and text[j] == ")":
                return Call(word, tuple(args)), j + 1
            raise MfcError(f"an unclosed call of {word} in {text[:80]!r}")
    if word.startswith("$"):
        return Path(word), j
    return Literal(word), j  # a number or null: its text is what it expands to


def index_room(depth: int, max_num_splits: int) -> int:
    """The longest foreach indices (``$.ix``, e.g. ``"12-3"``) at ``depth`` enclosing foreach:
    each index is below ``max_num_splits`` (a bigger foreach fails before its Map starts)."""
    if depth <= 0:
        return 0
    digits = len(str(max(int(max_num_splits) - 1, 0)))
    return depth * digits + depth - 1


def path_room(path: str, depth: int, max_num_splits: int) -> int:
    """The most characters ``path`` can hold in a state ``depth`` foreach deep."""
    if path == "$.run":
        return RUN_ID_ROOM
    if path == "$.ix":
        return index_room(depth, max_num_splits)
    if path in ("$$.State.RetryCount", "$$.Map.Item.Index"):
        return RETRY_COUNT_ROOM
    if path == "$$.Execution.Id":
        return ARN_ROOM
    return OTHER_PATH_ROOM


def longest(node: Node, depth: int, max_num_splits: int) -> str | list[str]:
    """The longest value ``node`` can take: literals as they are, each path as that many ``x``
    (see :func:`path_room`); ``States.Array`` gives a list."""
    if isinstance(node, Literal):
        return node.text
    if isinstance(node, Path):
        return "x" * path_room(node.path, depth, max_num_splits)
    if node.name == "States.Array":
        return [_text(longest(arg, depth, max_num_splits)) for arg in node.args]
    if node.name == "States.Format" and node.args and isinstance(node.args[0], Literal):
        values = iter(_text(longest(arg, depth, max_num_splits)) for arg in node.args[1:])
        return "".join(next(values, "") if hole else piece for piece, hole in _pieces(node.args[0].raw))
    return "x" * OTHER_PATH_ROOM  # another function: judged as a long value


def shown(node: Node) -> str:
    """``node`` as a reader would picture its value: literals as they are, paths as ``<$.ix>``."""
    if isinstance(node, Literal):
        return node.text
    if isinstance(node, Path):
        return f"<{node.path}>"
    if node.name == "States.Format" and node.args and isinstance(node.args[0], Literal):
        values = iter(shown(arg) for arg in node.args[1:])
        return "".join(next(values, "") if hole else piece for piece, hole in _pieces(node.args[0].raw))
    return f"<{node.name}(...)>"


def _text(value: str | list[str]) -> str:
    return value if isinstance(value, str) else ",".join(value)
