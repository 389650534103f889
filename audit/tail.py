"""Look at the end of a stream without reading it all (crash recovery)."""
from __future__ import annotations

import gzip
import os
from pathlib import Path


def tail_contains(path: Path, needle: bytes, max_bytes: int = 4 << 20) -> bool:
    """True when `needle` occurs in the last `max_bytes` of the file, or in its newest rotated
    segment (`.1` or `.1.gz`: the line may have been rotated away since). False if none exist."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - max_bytes))
            if needle in f.read():
                return True
    except FileNotFoundError:
        pass
    newest = path.with_name(path.name + ".1")
    if newest.is_file():
        return needle in newest.read_bytes()[-max_bytes:]
    packed = path.with_name(path.name + ".1.gz")
    if packed.is_file():
        return needle in gzip.decompress(packed.read_bytes())[-max_bytes:]
    return False


def tail_lines(path: Path, needle: bytes, max_bytes: int = 4 << 20) -> list[bytes]:
    """The lines holding `needle` among the last `max_bytes` of the file and of its newest
    rotated segment (the window `tail_contains` looks at), newest segment last."""
    blobs = []
    newest = path.with_name(path.name + ".1")
    packed = path.with_name(path.name + ".1.gz")
    if newest.is_file():
        blobs.append(newest.read_bytes()[-max_bytes:])
    elif packed.is_file():
        blobs.append(gzip.decompress(packed.read_bytes())[-max_bytes:])
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - max_bytes))
            blobs.append(f.read())
    except FileNotFoundError:
        pass
    return [line for blob in blobs if needle in blob
            for line in blob.split(b"\n") if needle in line]
