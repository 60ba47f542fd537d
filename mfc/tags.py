"""The rules every user tag follows, wherever it enters (``mfc run --tag``, ``mfc tag add``, the
client's ``Run.add_tags``), mirroring Metaflow's ``tagging_util``: a non-empty string of at most
:data:`MAX_TAG_SIZE` characters, and at most :data:`MAX_USER_TAG_SET_SIZE` tags on a run. Beyond
Metaflow, a tag holds no newline or other control character: each is shown on one line.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import Any

from mfc.exceptions import MfcError

MAX_TAG_SIZE = 500  # characters, as Metaflow's tagging_util
MAX_USER_TAG_SET_SIZE = 50


class InvalidTag(MfcError):
    """A tag that breaks the rules above (Metaflow's ``MetaflowTaggingError``)."""


def _shown(tag: str) -> str:
    return repr(tag if len(tag) <= 40 else tag[:40] + "...")


def check_tag(tag: Any) -> str:
    """``tag`` itself if it is a valid user tag, else :class:`InvalidTag` saying why."""
    if not isinstance(tag, str):
        raise InvalidTag(f"tag {tag!r}: tags are strings, not {type(tag).__name__}")
    if not tag.strip():
        raise InvalidTag(f"tag {tag!r}: tags must be non-empty, not blank")
    if len(tag) > MAX_TAG_SIZE:
        raise InvalidTag(f"tag {_shown(tag)}: tags are at most {MAX_TAG_SIZE} characters (this one has {len(tag)})")
    bad = next((c for c in tag if unicodedata.category(c) == "Cc"), None)
    if bad is not None:
        raise InvalidTag(f"tag {_shown(tag)}: tags must not contain newlines or other control characters "
                         f"(found {bad!r})")
    return tag


def check_tags(tags: Iterable[Any]) -> list[str]:
    """The tags of a new run: each checked by :func:`check_tag`, and not too many."""
    checked = [check_tag(tag) for tag in tags]
    check_tag_count(checked)
    return checked


def check_tag_count(tags: Iterable[str], existing: Iterable[str] | None = None) -> None:
    """Refuse a set of more than :data:`MAX_USER_TAG_SET_SIZE` user tags, unless it is no larger
    than the ``existing`` one (so an oversized set can still shrink), as Metaflow does."""
    size = len(set(tags))
    if size > MAX_USER_TAG_SET_SIZE and (existing is None or len(set(existing)) < size):
        raise InvalidTag(f"a run carries at most {MAX_USER_TAG_SET_SIZE} user tags (this would make {size})")
