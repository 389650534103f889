"""Run the real jq from tests, and read back every JSON value it printed."""
from __future__ import annotations

import json
import subprocess


def jq(args: str, data: bytes, check: bool = True) -> bytes:
    proc = subprocess.run("jq " + args, shell=True, input=data, capture_output=True)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc.stdout


def values(text: bytes) -> list:
    """Every JSON value of a jq output (pretty or not), numbers as doubles, as jq holds them."""
    dec = json.JSONDecoder(parse_int=float)
    s, pos, out = text.decode(), 0, []
    while True:
        while pos < len(s) and s[pos].isspace():
            pos += 1
        if pos == len(s):
            return out
        v, pos = dec.raw_decode(s, pos)
        out.append(v)
