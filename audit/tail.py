"""Look at the end of a stream without reading it all (crash recovery's window)."""
from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Iterator


def tail_lines(path: Path, needle: bytes, max_bytes: int = 4 << 20) -> Iterator[bytes]:
    """The lines holding `needle` among the last `max_bytes` of the file, then among those of
    its newest rotated segment (`.1` or `.1.gz`: the line may have been rotated away since).
    Lazy: a caller that stops at the first answer never reads the segment."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - max_bytes))
            yield from _holding(f.read(), needle)
    except FileNotFoundError:
        pass
    newest = path.with_name(path.name + ".1")
    packed = path.with_name(path.name + ".1.gz")
    if newest.is_file():
        yield from _holding(newest.read_bytes()[-max_bytes:], needle)
    elif packed.is_file():
        yield from _holding(gzip.decompress(packed.read_bytes())[-max_bytes:], needle)


def _holding(blob: bytes, needle: bytes) -> list[bytes]:
    return [line for line in blob.split(b"\n") if needle in line] if needle in blob else []
