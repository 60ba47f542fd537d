"""Write or remove one ``[profiles.NAME]`` table in mfc's TOML config file, leaving the rest of the
file as it was, byte for byte (other profiles, comments, layout). The edit is checked by parsing
the result (every other profile must read back unchanged) and written atomically (temporary file
in the same directory, fsync, rename)."""

from __future__ import annotations

import json
import os
import re
import sys
from typing import Any

from mfc.exceptions import MfcError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

_HEADER = re.compile(r"""^\s*\[\[?\s*[A-Za-z0-9_\-."' ]+\]\]?\s*(#.*)?$""")


def _header_for(name: str) -> re.Pattern[str]:
    quoted = re.escape(name)
    return re.compile(rf"""^\s*\[\s*profiles\s*\.\s*(?:{quoted}|"{quoted}"|'{quoted}')\s*\]\s*(#.*)?$""")


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON string escapes are valid TOML basic strings
    raise TypeError(f"cannot write {type(value).__name__} to a profile")


def render(name: str, values: dict[str, Any], comment: str | None = None) -> str:
    """The TOML text of one profile table."""
    key = name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else json.dumps(name)
    lines = [f"# {comment}"] if comment else []
    lines.append(f"[profiles.{key}]")
    lines += [f"{k} = {_toml_value(v)}" for k, v in values.items() if v is not None]
    return "\n".join(lines) + "\n"


def _parse(text: str, path: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MfcError(f"config file {path}: {exc}; fix it, then run the command again") from None


def _split(text: str, name: str) -> tuple[list[str], list[str], list[str]]:
    """The file's lines before the profile's table, the table (with its own comment lines just
    above the header when they are ours), and after it."""
    lines = text.splitlines(keepends=True)
    header = _header_for(name)
    start = next((i for i, line in enumerate(lines) if header.match(line)), None)
    if start is None:
        return lines, [], []
    end = next((i for i in range(start + 1, len(lines)) if _HEADER.match(lines[i])), len(lines))
    while start > 0 and lines[start - 1].startswith("# Written by `mfc "):
        start -= 1
    return lines[:start], lines[start:end], lines[end:]


def _write_atomic(path: str, text: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".{os.path.basename(path)}.tmp{os.getpid()}")
    try:
        mode = os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        mode = 0o644
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except FileNotFoundError:
        return ""


def _check(before: dict[str, Any], text: str, name: str, path: str) -> dict[str, Any]:
    try:
        after = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MfcError(f"could not edit profile {name!r} in {path} safely ({exc}); edit the file by hand") from None
    others_before = {k: v for k, v in before.items() if k != "profiles"}
    others_after = {k: v for k, v in after.items() if k != "profiles"}
    profiles_before = {k: v for k, v in before.get("profiles", {}).items() if k != name}
    profiles_after = {k: v for k, v in after.get("profiles", {}).items() if k != name}
    if others_before != others_after or profiles_before != profiles_after:
        raise MfcError(f"could not edit profile {name!r} in {path} without touching other settings; edit the file by hand")
    return after


def write_profile(path: str, name: str, values: dict[str, Any], comment: str | None = None) -> None:
    """Set profile ``name`` in the config file at ``path`` to exactly ``values`` (creating the file
    if needed); every other table and line is kept as it was."""
    text = _read(path)
    before = _parse(text, path)
    head, _, tail = _split(text, name)
    prefix = "".join(head)
    if prefix and not prefix.endswith("\n"):
        prefix += "\n"
    if prefix.strip() and not prefix.endswith("\n\n"):
        prefix += "\n"
    section = render(name, values, comment)
    rest = "".join(tail)
    new_text = prefix + section + ("\n" + rest if rest.strip() else "")
    after = _check(before, new_text, name, path)
    expected = {k: v for k, v in values.items() if v is not None}
    if after.get("profiles", {}).get(name) != expected:
        raise MfcError(f"could not write profile {name!r} to {path} (it reads back differently); edit the file by hand")
    _write_atomic(path, new_text)


def remove_profile(path: str, name: str) -> bool:
    """Remove profile ``name`` from the config file; False when it was not there."""
    text = _read(path)
    before = _parse(text, path)
    if name not in before.get("profiles", {}):
        return False
    head, section, tail = _split(text, name)
    if not section:
        raise MfcError(f"profile {name!r} in {path} is not a plain [profiles.{name}] table; remove it by hand")
    parts = [p for p in ("".join(head).rstrip("\n"), "".join(tail).lstrip("\n").rstrip("\n")) if p.strip()]
    new_text = "\n\n".join(parts) + "\n" if parts else ""
    after = _check(before, new_text, name, path)
    if name in after.get("profiles", {}):
        raise MfcError(f"could not remove profile {name!r} from {path}; edit the file by hand")
    _write_atomic(path, new_text)
    return True


def read_profile(path: str, name: str) -> dict[str, Any] | None:
    """Profile ``name`` from the config file at ``path``, or None."""
    return _parse(_read(path), path).get("profiles", {}).get(name)
