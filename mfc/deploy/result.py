"""One check of ``mfc doctor`` and its line."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    """``ok``: True passed, False failed, None skipped (nothing to check); ``fix``: how to fix a failure."""

    name: str
    ok: bool | None
    detail: str
    fix: str = ""

    def line(self) -> str:
        mark = {True: "ok  ", False: "FAIL", None: "skip"}[self.ok]
        text = f"{mark}  {self.name}: {self.detail}"
        return f"{text} -> {self.fix}" if self.ok is False and self.fix else text
