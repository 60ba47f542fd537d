"""Run parameters: ``Parameter`` (str, int, float, bool, JSON) and ``IncludeFile``.

A parameter's value is fixed when the run starts and is read-only inside steps.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mfc.exceptions import MfcError


class JSONTypeClass:
    """Marker type: the parameter's value is parsed as JSON."""

    name = "JSON"

    def __repr__(self) -> str:
        return "JSONType"


JSONType = JSONTypeClass()

_TRUE = {"true", "1", "yes", "y", "on", "t"}
_FALSE = {"false", "0", "no", "n", "off", "f"}


@dataclass(frozen=True)
class ParameterContext:
    """Given to callable defaults: ``default=lambda ctx: ...``."""

    flow_name: str
    user_name: str
    parameter_name: str


class Parameter:
    """A run parameter, given on the command line as ``--name value``."""

    IS_INCLUDE_FILE = False

    def __init__(
        self,
        name: str,
        default: Any = None,
        type: Any = None,  # noqa: A002 - Metaflow's keyword
        help: str | None = None,  # noqa: A002
        required: bool = False,
        show_default: bool = True,
        separator: str | None = None,
        **unknown: Any,
    ) -> None:
        if unknown:
            raise MfcError(f"Parameter {name!r}: unknown argument {sorted(unknown)[0]!r}")
        if not isinstance(name, str) or not name or name.startswith("_"):
            raise MfcError(f"Parameter name {name!r} must be a non-empty string not starting with '_'")
        self.name = name
        self.default = default
        self.help = help or ""
        self.required = required
        self.show_default = show_default
        self.separator = separator
        self.type = type if type is not None else self._infer_type(default)
        self.attr = name

    def __set_name__(self, owner: type, attr: str) -> None:
        self.attr = attr

    @staticmethod
    def _infer_type(default: Any) -> Any:
        if callable(default) or default is None:
            return str
        if isinstance(default, bool):
            return bool
        for candidate in (int, float, str):
            if isinstance(default, candidate):
                return candidate
        return JSONType if isinstance(default, (dict, list)) else str

    @property
    def type_name(self) -> str:
        return str(getattr(self.type, "name", None) or getattr(self.type, "__name__", self.type))

    @property
    def is_flag(self) -> bool:
        return self.type is bool

    def convert(self, raw: Any, source: str = "") -> Any:
        """Convert a command-line string (or a default) to the parameter's type."""
        where = source or f"--{self.name}"
        if raw is None:
            return None
        try:
            if self.type is bool:
                if isinstance(raw, bool):
                    return raw
                text = str(raw).strip().lower()
                if text in _TRUE:
                    return True
                if text in _FALSE:
                    return False
                raise ValueError
            if self.type is JSONType:
                return json.loads(raw) if isinstance(raw, str) else raw
            if self.separator and isinstance(raw, str):
                return [self.type(part) for part in raw.split(self.separator)]
            if self.type in (int, float, str):
                return self.type(raw)
            return self.type(raw)
        except (ValueError, TypeError, json.JSONDecodeError):
            raise MfcError(f"{where}: expected {self._article()} {self.type_name}, got {raw!r}") from None

    def _article(self) -> str:
        return "an" if self.type_name[:1].lower() in "aeiou" else "a"

    def resolve_default(self, flow_name: str, user: str) -> Any:
        default = self.default
        if callable(default) and not isinstance(default, type):
            default = default(ParameterContext(flow_name, user, self.name))
        return default

    def __repr__(self) -> str:
        return f"Parameter({self.name!r}, default={self.default!r}, type={self.type_name})"

    def __get__(self, instance: Any, owner: Any) -> Any:
        if instance is None:
            return self
        return instance._parameter_value(self.attr)


class IncludeFile(Parameter):
    """A file whose content is read when the run starts and stored as an artifact."""

    IS_INCLUDE_FILE = True

    def __init__(
        self,
        name: str,
        required: bool = False,
        is_text: bool = True,
        encoding: str = "utf-8",
        help: str | None = None,  # noqa: A002
        default: str | None = None,
        **unknown: Any,
    ) -> None:
        super().__init__(name, default=default, type=str, help=help, required=required, **unknown)
        self.is_text = is_text
        self.encoding = encoding

    @property
    def type_name(self) -> str:
        return "file path"

    def load(self, path: str) -> str | bytes:
        """Read the file given on the command line (or the default path)."""
        if not os.path.isfile(path):
            raise MfcError(f"--{self.name}: file not found: {path}")
        with open(path, "rb") as fh:
            data = fh.read()
        if not self.is_text:
            return data
        try:
            return data.decode(self.encoding)
        except UnicodeDecodeError:
            raise MfcError(f"--{self.name}: {path} is not valid {self.encoding} text (use is_text=False)") from None


def flow_parameters(flow_cls: type) -> dict[str, Parameter]:
    """Parameters declared on a flow class (and its bases), by attribute name."""
    found: dict[str, Parameter] = {}
    for klass in reversed(flow_cls.__mro__):
        for attr, value in vars(klass).items():
            if isinstance(value, Parameter):
                found[attr] = value
    return found


def parse_parameter_args(
    params: dict[str, Parameter], args: list[str], flow_name: str, user: str,
    env_lookup: Callable[[str], str | None] = os.environ.get,
) -> dict[str, Any]:
    """Turn ``--name value`` arguments into parameter values (by attribute name).

    Values come from the arguments, then ``MFC_RUN_<NAME>`` variables, then defaults.
    IncludeFile values are the paths; the caller reads the files.
    """
    by_option: dict[str, tuple[str, Parameter]] = {}
    for attr, param in params.items():
        for option in {param.name, param.name.replace("_", "-")}:
            by_option[option] = (attr, param)
    given: dict[str, Any] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--") or arg == "--":
            raise MfcError(f"unexpected argument {arg!r}; parameters are given as --name value")
        option, eq, value = arg[2:].partition("=")
        negated = option.startswith("no-") and option[3:] in by_option and by_option[option[3:]][1].is_flag
        key = option[3:] if negated else option
        if key not in by_option:
            known = ", ".join(f"--{p.name}" for p in params.values()) or "none"
            raise MfcError(f"unknown parameter --{option} (this flow's parameters: {known})")
        attr, param = by_option[key]
        if param.is_flag and not eq:
            following = args[i + 1].strip().lower() if i + 1 < len(args) else ""
            if not negated and following in _TRUE | _FALSE:  # Metaflow's `--flag True`
                given[attr] = following in _TRUE
                i += 2
                continue
            given[attr] = not negated
            i += 1
            continue
        if not eq:
            if i + 1 >= len(args):
                raise MfcError(f"--{option} needs a value")
            value = args[i + 1]
            i += 1
        given[attr] = param.convert(value, f"--{option}")
        i += 1
    values: dict[str, Any] = {}
    for attr, param in params.items():
        if attr in given:
            values[attr] = given[attr]
            continue
        env_name = "MFC_RUN_" + param.name.upper().replace("-", "_")
        env_value = env_lookup(env_name)
        if env_value is not None:
            values[attr] = param.convert(env_value, env_name)
            continue
        default = param.resolve_default(flow_name, user)
        if default is None and param.required:
            raise MfcError(f"missing required parameter --{param.name}" + (f" ({param.help})" if param.help else ""))
        values[attr] = param.convert(default, f"default of --{param.name}") if isinstance(default, str) and param.type is not str else default
    return values
