"""Card components, named and called as Metaflow's (``from mfc.cards import Markdown, Table,
Image, Artifact``): each renders itself to an HTML fragment in which every piece of user text is
escaped. Metaflow's components produce JSON for its JavaScript viewer; these produce plain HTML
(images as ``data:`` URIs), so a card needs no scripts and no network.
"""

from __future__ import annotations

import base64
import textwrap
import traceback
from collections.abc import Callable, Sequence
from io import BytesIO
from typing import Any

from mfc.cards.html import error_block, short_repr, text


class CardComponent:
    """The base of every component (Metaflow's ``MetaflowCardComponent``): ``render()`` returns
    an HTML fragment. A subclass must escape what it did not write itself (``mfc.cards.html.text``)."""

    component_id: str | None = None

    def render(self) -> str:
        raise NotImplementedError

    def update(self, *args: Any, **kwargs: Any) -> None:
        """Live updates are not supported (cards are rendered once, when the task ends)."""


MetaflowCardComponent = CardComponent
UserComponent = CardComponent


def render_component(component: Any, warn: Callable[[str], None] | None = None) -> str:
    """``component`` as HTML: a component's own rendering, or (when it raises, returns something
    other than a string, or is not a component at all) an error box in its place, as Metaflow
    shows a component that fails to serialize; ``warn`` hears why."""
    name = type(component).__name__
    if not isinstance(component, CardComponent):
        problem, detail = f"{name} is not a card component", f"{short_repr(component)} was not rendered"
    else:
        try:
            html = component.render()
        except Exception:  # noqa: BLE001 - a component's failure is shown in the card, never fails the task
            problem, detail = f"{name} failed to render", traceback.format_exc()
        else:
            if isinstance(html, str):
                return html
            problem, detail = f"{name} failed to render", f"render() returned a {type(html).__name__}, not a str"
    if warn is not None:
        warn(f"{problem}: {detail.strip().splitlines()[-1]}")
    return error_block(problem, detail)


class Markdown(CardComponent):
    """Markdown text (CommonMark plus tables, by markdown-it-py), dedented as Metaflow's is. Raw
    HTML in the text is shown as text, not interpreted; ``javascript:`` links are dropped."""

    def __init__(self, text: str | None = None) -> None:
        self._text = textwrap.dedent(text) if text is not None else None

    def update(self, text: str | None = None) -> None:
        self._text = textwrap.dedent(text) if text is not None else None

    def render(self) -> str:
        try:
            from markdown_it import MarkdownIt
        except ImportError:  # an image built without it: the text, unformatted, rather than nothing
            note = "<div class='label'>markdown-it-py is not installed: shown as plain text</div>"
            return f"<section class='markdown'>{note}<pre>{text(self._text or '')}</pre></section>"
        parser = MarkdownIt("commonmark", {"html": False}).enable("table")
        return f"<section class='markdown'>{parser.render(self._text or '')}</section>"


class Artifact(CardComponent):
    """Any Python value, shown by its repr: cut short (``compressed=True``, the default) or whole,
    under ``name`` if given."""

    def __init__(self, artifact: Any, name: str | None = None, compressed: bool = True) -> None:
        self._artifact = artifact
        self._name = name
        self._compressed = compressed

    def update(self, artifact: Any) -> None:
        self._artifact = artifact

    def render(self) -> str:
        shown = short_repr(self._artifact) if self._compressed else repr(self._artifact)
        label = f"<div class='label'>{text(self._name)}</div>" if self._name is not None else ""
        return f"<div class='artifact'>{label}<pre>{text(shown)}</pre></div>"


_IMAGE_TYPES = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"),
                (b"GIF87a", "image/gif"), (b"GIF89a", "image/gif"))


def sniff_image(data: bytes) -> str | None:
    """The MIME type of PNG, JPEG, GIF or SVG bytes, None for anything else."""
    for magic, mime in _IMAGE_TYPES:
        if data.startswith(magic):
            return mime
    head = data[:1024].lstrip().lower()
    if head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in head):
        return "image/svg+xml"
    return None


class Image(CardComponent):
    """An image from PNG, JPEG, GIF or SVG bytes (the type is read from the bytes), or a
    ``data:image/...`` URI; embedded in the card as a ``data:`` URI. An SVG shown through
    ``<img>`` runs no scripts."""

    def __init__(self, src: bytes | str | None = None, label: str | None = None, disable_updates: bool = True) -> None:
        self._src = src
        self._label = label
        self._error: tuple[str, str] | None = None

    @classmethod
    def from_matplotlib(cls, plot: Any, label: str | None = None, disable_updates: bool = False) -> Image:
        """A PNG of a matplotlib figure (or of the figure an Axes belongs to), drawn now: later
        changes to the figure do not show. Anything without ``savefig`` gives an error in the card."""
        figure = plot if hasattr(plot, "savefig") else getattr(plot, "figure", None)
        image = cls(None, label)
        if figure is None or not hasattr(figure, "savefig"):
            image._error = ("Image.from_matplotlib: not a matplotlib figure",
                            f"got a {type(plot).__name__}; pass a Figure or an Axes")
            return image
        try:
            buffer = BytesIO()
            figure.savefig(buffer, format="png")
            image._src = buffer.getvalue()
        except Exception:  # noqa: BLE001 - shown in the card, as Metaflow does
            image._error = ("Image.from_matplotlib: the figure could not be drawn", traceback.format_exc())
        return image

    def update(self, image: Any, label: str | None = None) -> None:
        self._src = image
        self._label = label if label is not None else self._label

    def _data_uri(self) -> str:
        src = self._src
        if isinstance(src, str):
            if not src.startswith("data:image/"):
                raise ValueError("Image(src=...) as a string must be a data:image/... URI; pass the image's bytes")
            return src
        if not isinstance(src, (bytes, bytearray, memoryview)):
            raise ValueError(f"Image(src=...) needs PNG, JPEG, GIF or SVG bytes, got {type(src).__name__}")
        data = bytes(src)
        mime = sniff_image(data)
        if mime is None:
            raise ValueError(f"Image(src=...): {len(data)} bytes that are not PNG, JPEG, GIF or SVG")
        return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"

    def render(self) -> str:
        if self._error is not None:
            return error_block(*self._error)
        try:
            uri = self._data_uri()
        except ValueError as exc:
            return error_block("Image cannot be shown", str(exc))
        caption = f"<figcaption>{text(self._label)}</figcaption>" if self._label is not None else ""
        alt = text(self._label or "image")
        return f"<figure><img src='{text(uri)}' alt='{alt}'>{caption}</figure>"


def _cell(value: Any) -> str:
    if isinstance(value, CardComponent):
        return render_component(value)
    if isinstance(value, str):
        return text(value)
    return text(short_repr(value))


class Table(CardComponent):
    """A table of rows (lists of cells); a cell is a component (rendered in place) or a value
    (its text: a string as it is, anything else its short repr). ``headers`` is the header row."""

    def __init__(self, data: Sequence[Sequence[Any]] | None = None, headers: Sequence[Any] | None = None,
                 disable_updates: bool = False) -> None:
        self._data = [list(row) for row in (data or [])]
        self._headers = list(headers or [])

    @classmethod
    def from_dataframe(cls, dataframe: Any = None, truncate: bool = True) -> Table:
        """A table of a pandas DataFrame (the first 100 rows with ``truncate``); needs pandas
        only when one is given (anything else gives a one-row table saying so)."""
        if not (hasattr(dataframe, "columns") and hasattr(dataframe, "itertuples")):
            return cls(headers=[f"Object type {type(dataframe).__name__} not supported"])
        frame = dataframe.head(100) if truncate else dataframe
        rows = [list(row) for row in frame.itertuples(index=False, name=None)]
        return cls(rows, [str(c) for c in dataframe.columns])

    def render(self) -> str:
        head = "".join(f"<th>{_cell(h)}</th>" for h in self._headers)
        head = f"<thead><tr>{head}</tr></thead>" if head else ""
        body = "".join("<tr>" + "".join(f"<td>{_cell(c)}</td>" for c in row) + "</tr>"
                       for row in self._data)
        return f"<table>{head}<tbody>{body}</tbody></table>"


class Error(CardComponent):
    """An exception shown in the card (Metaflow's ``Error(exception, title)``)."""

    def __init__(self, exception: BaseException, title: str | None = None) -> None:
        self._exception = exception
        self._title = title

    def render(self) -> str:
        return error_block(self._title or type(self._exception).__name__, repr(self._exception))
