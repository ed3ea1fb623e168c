"""Cut the output into segments by flag spans, on the server.

Flag spans are Python ``str`` indices (code points); the browser counts UTF-16 units,
so slicing there would misplace every highlight after an emoji. The UI just renders
these segments with ``textContent`` and marks the ones that carry flags.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from pydantic import BaseModel

from hitl_shared.events import Flag


class Segment(BaseModel):
    text: str
    flags: list[int]


def segments(text: str, flags: Sequence[Flag]) -> list[Segment]:
    """Contiguous pieces of ``text``; each lists the indexes of the flags covering it."""
    size = len(text)
    spans = [(min(f.start, size), min(f.end, size)) for f in flags]
    cuts = sorted({0, size, *(s for s, _ in spans), *(e for _, e in spans)})
    out: list[Segment] = []
    for start, end in itertools.pairwise(cuts):
        if start == end:
            continue
        covering = [i for i, (s, e) in enumerate(spans) if s <= start and end <= e and s < e]
        out.append(Segment(text=text[start:end], flags=covering))
    return out
