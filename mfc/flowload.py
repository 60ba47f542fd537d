"""Import a flow file and find its FlowSpec class (used by ``mfc run`` and the task entrypoint)."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
from types import ModuleType

from mfc.exceptions import InvalidFlow, MfcError
from mfc.graph import read_flow_source


def split_flow_ref(ref: str) -> tuple[str, str | None]:
    """``flow.py`` or ``flow.py:ClassName`` -> (file, class name or None)."""
    path, sep, name = ref.rpartition(":")
    if sep and path and name.isidentifier():
        return path, name
    return ref, None


def import_flow_file(path: str) -> ModuleType:
    """Import the flow file as a module named after it; its classes pickle by value."""
    read_flow_source(path)
    path = os.path.abspath(path)
    for module in list(sys.modules.values()):
        if getattr(module, "__file__", None) == path:
            return module
    name = "mfc_flow_" + "".join(c if c.isalnum() else "_" for c in os.path.splitext(os.path.basename(path))[0])
    # An explicit source loader: `python flow.txt` runs too, and spec_from_file_location knows only .py.
    spec = importlib.util.spec_from_loader(name, importlib.machinery.SourceFileLoader(name, path))
    if spec is None or spec.loader is None:
        raise InvalidFlow(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    directory = os.path.dirname(path)
    if directory not in sys.path:
        sys.path.insert(0, directory)
    try:
        spec.loader.exec_module(module)
    except MfcError:
        raise
    except SyntaxError as exc:
        raise InvalidFlow(f"syntax error: {exc.msg}", exc.filename, exc.lineno) from None
    except ImportError as exc:
        raise InvalidFlow(f"importing the flow failed: {exc}", path, _error_line(exc, path)) from None
    except Exception as exc:
        raise InvalidFlow(f"importing the flow failed: {type(exc).__name__}: {exc}", path, _error_line(exc, path)) from None
    _register_by_value(module)
    return module


def _error_line(exc: BaseException, path: str) -> int | None:
    import traceback

    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == path]
    return frames[-1].lineno if frames else None


def _register_by_value(module: ModuleType) -> None:
    try:
        import cloudpickle

        cloudpickle.register_pickle_by_value(module)
    except (ImportError, ValueError, AttributeError):
        pass


def flow_class(module: ModuleType, flow_name: str | None, path: str) -> type:
    """The FlowSpec subclass defined in the module (the named one if several)."""
    from mfc.flowspec import FlowSpec

    defined = [
        obj for obj in vars(module).values()
        if isinstance(obj, type) and issubclass(obj, FlowSpec) and obj is not FlowSpec
        and obj.__module__ == module.__name__
    ]
    leaves = [c for c in defined if not any(o is not c and issubclass(o, c) for o in defined)]
    if flow_name:
        for cls in defined:
            if cls.__name__ == flow_name:
                return cls
        raise InvalidFlow(f"no flow named {flow_name} (found: {', '.join(c.__name__ for c in leaves) or 'none'})", path)
    if not leaves:
        raise InvalidFlow("defines no FlowSpec subclass", path,
                          hint="define a class like `class MyFlow(FlowSpec):` with @step methods")
    if len(leaves) > 1:
        names = ", ".join(sorted(c.__name__ for c in leaves))
        raise InvalidFlow(f"defines {len(leaves)} flows ({names}): pick one as {os.path.basename(path)}:{sorted(c.__name__ for c in leaves)[0]}", path)
    return leaves[0]
