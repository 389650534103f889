"""Look at the end of a stream without reading it all (crash recovery)."""
from __future__ import annotations

import os
from pathlib import Path


def tail_contains(path: Path, needle: bytes, max_bytes: int = 4 << 20) -> bool:
    """True when `needle` occurs in the last `max_bytes` of the file (False if it is missing)."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - max_bytes))
            return needle in f.read()
    except FileNotFoundError:
        return False
