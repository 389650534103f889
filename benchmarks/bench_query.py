"""`tradebot logs` against the guide's own jq commands, its pandas recipe and DuckDB, side by side.

On trail files of 1,000,000 lines each (benchmarks/trailgen.py; written into a temporary
directory that is removed at the end, or kept in --keep DIR and reused by the next run), every
query of the guide's "Querying Logs with jq" runs as a whole process, one tool after the other:
jq exactly as the guide writes it (`cat FILE | jq ...`), the guide's pandas recipe
(`pd.DataFrame([json.loads(l) for l in f])` then the same question), DuckDB's `read_json` (when
installed), ours (`python -m bot.cli.logs ...`) and ours through the whole `tradebot` command
(`python -m bot logs ...`). Output goes to a file; ours is checked against jq's (same JSON
values; nav csv and errors tsv byte for byte). Prints seconds, the speed-up over jq and the peak
memory: the larger of the biggest process's (GNU time) and the whole process tree's, sampled
every 20 ms (ours runs one worker process per core on big files).
Not a test: figures depend on the machine and its load. Run by hand:
`python benchmarks/bench_query.py [--keep DIR] [--lines 1000000]
[--tools jq,pandas,duckdb,ours,tradebot] [--queries orders,sides,nav,...]`; DuckDB comes with the
`bench` extra (`pip install -e '.[bench]'`, which `make bench-query` does).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET = 8.0  # ours must be at least this many times faster than jq on each whole-file scan
PAGE = os.sysconf("SC_PAGE_SIZE")

LOAD = "import json, sys, pandas as pd\nwith open({file!r}) as f:\n    df = pd.DataFrame([json.loads(l) for l in f])\n"
DUCK = "import duckdb, sys\nsrc = \"read_json({file!r}, format='newline_delimited'{cols})\"\n"


@dataclass(frozen=True)
class Query:
    name: str
    file: str
    jq: str            # the guide's command (shell), on FILE
    ours: list[str]    # `python -m bot.cli.logs` arguments
    pandas: str        # after LOAD: df holds the file
    duckdb: str        # after DUCK: `src` is the table expression
    compare: str       # how ours is checked against jq: "bytes" or "json"
    scans: bool = True  # reads the whole file (the 8x target applies)
    duck_cols: str = ""


SPY_DAY = ("2020-06-01", "2020-06-02")

QUERIES = [
    Query("orders --symbol SPY", "orders.jsonl", "cat {file} | jq 'select(.symbol == \"SPY\")'",
          ["orders", "--symbol", "SPY", "--format", "json"],
          "sys.stdout.write(df[df.symbol == 'SPY'].to_json(orient='records', lines=True))",
          "duckdb.sql(f\"COPY (SELECT * FROM {src} WHERE symbol = 'SPY') TO '/dev/stdout' (FORMAT json)\")",
          "json"),
    Query("sides", "orders.jsonl",
          "cat {file} | jq -s 'group_by(.side) | map({side: .[0].side, count: length})'",
          ["sides", "--format", "json"],
          "print(df.groupby('side').size().to_json())",
          "print(duckdb.sql(f'SELECT side, count(*) FROM {src} GROUP BY side ORDER BY side').fetchall())",
          "json"),
    Query("traded-value", "trades.jsonl", "cat {file} | jq -s 'map(.value) | add'",
          ["traded-value", "--format", "json"],
          "print(repr(df['value'].sum()))",
          "print(duckdb.sql(f'SELECT sum(value) FROM {src}').fetchall())",
          "json"),
    Query("nav --format csv", "performance.jsonl", "cat {file} | jq -r '[.timestamp, .nav] | @csv'",
          ["nav", "--format", "csv"],
          "df[['timestamp', 'nav']].to_csv(sys.stdout, header=False, index=False)",
          "duckdb.sql(f\"COPY (SELECT timestamp, nav FROM {src}) TO '/dev/stdout' (FORMAT csv, HEADER false)\")",
          "bytes", duck_cols=", columns={'timestamp': 'VARCHAR', 'nav': 'DOUBLE'}"),
    Query("errors --format tsv", "errors.jsonl",
          "cat {file} | jq -r '[.timestamp, .event_type, .error] | @tsv'",
          ["errors", "--format", "tsv"],
          "df[['timestamp', 'event_type', 'error']].to_csv(sys.stdout, sep='\\t', header=False, index=False)",
          "duckdb.sql(f\"COPY (SELECT timestamp, event_type, error FROM {src}) "
          "TO '/dev/stdout' (FORMAT csv, DELIMITER '\\t', HEADER false)\")",
          "bytes", duck_cols=", columns={'timestamp': 'VARCHAR', 'event_type': 'VARCHAR', 'error': 'VARCHAR'}"),
    Query("latest", "performance.jsonl", "tail -1 {file} | jq '.'", ["latest", "--format", "json"],
          "print(df.iloc[-1].to_json())",
          "print(duckdb.sql(f'SELECT * FROM {src}').fetchall()[-1])",
          "json", scans=False),
    Query(f"orders --since {SPY_DAY[0]} --until {SPY_DAY[1]}", "orders.jsonl",
          f"cat {{file}} | jq 'select(.timestamp >= \"{SPY_DAY[0]}T00:00:00\" "
          f"and .timestamp < \"{SPY_DAY[1]}T00:00:00\")'",
          ["orders", "--since", SPY_DAY[0], "--until", SPY_DAY[1], "--format", "json"],
          f"sys.stdout.write(df[(df.timestamp >= '{SPY_DAY[0]}T00:00:00') "
          f"& (df.timestamp < '{SPY_DAY[1]}T00:00:00')].to_json(orient='records', lines=True))",
          f"duckdb.sql(f\"COPY (SELECT * FROM {{src}} WHERE timestamp >= '{SPY_DAY[0]}T00:00:00' "
          f"AND timestamp < '{SPY_DAY[1]}T00:00:00') TO '/dev/stdout' (FORMAT json)\")",
          "json", duck_cols=", columns={'timestamp': 'VARCHAR', 'symbol': 'VARCHAR', 'side': 'VARCHAR'}"),
    Query("win-rate", "trades.jsonl",
          "cat {file} | jq -s 'map(select(.pnl != null)) | {total: length, wins: map(select(.pnl > 0)) "
          "| length, losses: map(select(.pnl < 0)) | length} | .win_rate = (.wins / .total * 100)'",
          ["win-rate", "--format", "json"],
          "p = df['pnl'].dropna()\nprint({'total': len(p), 'wins': int((p > 0).sum()), "
          "'losses': int((p < 0).sum()), 'win_rate': (p > 0).sum() / len(p) * 100})",
          "print(duckdb.sql(f'SELECT count(pnl), count(*) FILTER (pnl > 0), "
          "count(*) FILTER (pnl < 0) FROM {src}').fetchall())",
          "json"),
]


@dataclass
class Run:
    seconds: float
    peak_mb: float
    ok: bool
    note: str = ""


def _tree_rss(root: int) -> int:
    """Resident bytes of `root` and all its descendants, now."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        try:
            with open(f"/proc/{pid}/statm", "rb") as f:
                total += int(f.read().split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            pass
        todo.extend(children.get(pid, ()))
    return total


TIME = "/usr/bin/time"  # GNU time: the largest process's peak (a forked child of this big
# process would otherwise count this process's pages in its own ru_maxrss)


def run(cmd: list[str], out: Path, env: dict | None = None) -> Run:
    """Run `cmd` with stdout to `out`; wall seconds and peak memory (MB)."""
    rss_file = out.with_suffix(".rss")
    if os.path.exists(TIME):
        cmd = [TIME, "-f", "%M", "-o", str(rss_file), *cmd]
    with open(out, "wb") as f:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.PIPE, env=env)
        peak = [0]
        done = threading.Event()

        def sample():
            while not done.wait(0.02):
                peak[0] = max(peak[0], _tree_rss(proc.pid))

        th = threading.Thread(target=sample, daemon=True)
        th.start()
        err = proc.stderr.read()
        _pid, status, _usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        done.set()
        th.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    largest = int(rss_file.read_text().split()[-1]) * 1024 if rss_file.exists() else 0
    peak_mb = max(peak[0], largest) / 1e6
    ok = proc.returncode == 0
    note = ("" if ok else err.decode(errors="replace").strip().splitlines()[-1][:80] if err
            else f"exit {proc.returncode}")
    return Run(seconds, peak_mb, ok, note)


def _json_values(path: Path) -> list:
    """Every JSON value in a file (pretty or one per line), numbers as doubles."""
    dec = json.JSONDecoder(parse_int=float)
    text = path.read_text()
    out, pos = [], 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            return out
        v, pos = dec.raw_decode(text, pos)
        out.append(v)


def same(q: Query, ours: Path, ref: Path) -> bool:
    if q.compare == "bytes":
        return ours.read_bytes() == ref.read_bytes()
    return _json_values(ours) == _json_values(ref)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", type=Path, metavar="DIR",
                    help="write the trail into DIR and keep it there (a trail already in DIR is "
                    "reused); default: a temporary directory, removed at the end")
    ap.add_argument("--lines", type=int, default=1_000_000, help="lines per file (default 1M)")
    ap.add_argument("--tools", default="jq,pandas,duckdb,ours,tradebot",
                    help="ours is `python -m bot.cli.logs`, tradebot is `python -m bot logs`")
    ap.add_argument("--queries", default="", help="comma-separated query names (default all)")
    args = ap.parse_args(argv)
    tools = args.tools.split(",")
    if "duckdb" in tools and importlib.util.find_spec("duckdb") is None:
        print("duckdb is not installed: its column is skipped (pip install -e '.[bench]')")
        tools.remove("duckdb")
    if args.keep is not None:
        return bench(args, tools, args.keep / f"{args.lines}")
    with tempfile.TemporaryDirectory(prefix="tradebot-query-bench-") as scratch:
        return bench(args, tools, Path(scratch) / f"{args.lines}")


def bench(args: argparse.Namespace, tools: list[str], data: Path) -> int:
    """Write the trail into `data` unless it is there, then time every chosen query and tool."""
    if not (data / "orders.jsonl").exists():
        from benchmarks.trailgen import write_trail
        print(f"writing {args.lines:,} lines per file into {data} ...", flush=True)
        write_trail(data, args.lines)
    sizes = {p.name: p.stat().st_size for p in data.glob("*.jsonl")}
    print(f"trail: {data} ({', '.join(f'{k} {v / 1e6:.0f} MB' for k, v in sorted(sizes.items()))}); "
          f"{os.cpu_count()} CPUs")
    chosen = [q for q in QUERIES if not args.queries or q.name.split()[0] in args.queries.split(",")
              or q.name in args.queries.split(",")]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    rows, missed = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for q in chosen:
            file = str(data / q.file)
            results: dict[str, Run] = {}
            outs: dict[str, Path] = {}
            for tool in tools:
                out = outs[tool] = Path(tmp) / f"{tool}.out"
                if tool == "jq":
                    cmd = ["sh", "-c", q.jq.replace("{file}", file)]
                elif tool == "ours":
                    cmd = [sys.executable, "-m", "bot.cli.logs", *q.ours, "--logs-dir", str(data)]
                elif tool == "tradebot":  # the same through the whole `tradebot` command
                    cmd = [sys.executable, "-m", "bot", "logs", *q.ours, "--logs-dir", str(data)]
                elif tool == "pandas":
                    cmd = [sys.executable, "-c", LOAD.format(file=file) + q.pandas]
                else:
                    cmd = [sys.executable, "-c", DUCK.format(file=file, cols=q.duck_cols) + q.duckdb]
                print(f"  {q.name}: {tool} ...", end="", flush=True)
                results[tool] = run(cmd, out, env)
                print(f" {results[tool].seconds:.2f}s", flush=True)
            if "ours" in results and "jq" in results:
                results["ours"].note = "same answer as jq" if same(q, outs["ours"], outs["jq"]) else "DIFFERENT from jq"
            jq_s = results["jq"].seconds if "jq" in results else None
            for tool, r in results.items():
                ratio = f"{jq_s / r.seconds:.1f}x" if jq_s else "-"
                rows.append((q.name, tool, f"{r.seconds:.2f}", ratio, f"{r.peak_mb:,.0f}", r.note))
            if jq_s and "ours" in results and q.scans and jq_s / results["ours"].seconds < TARGET:
                missed.append(q.name)
    head = ("query", "tool", "seconds", "vs jq", "peak MB", "note")
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
    print()
    for r in [head] + rows:
        print("  ".join(str(c).rjust(w) if i in (2, 3, 4) else str(c).ljust(w)
                        for i, (c, w) in enumerate(zip(r, widths))).rstrip())
    if "jq" in tools and "ours" in tools:
        print(f"\ntarget: ours at least {TARGET:.0f}x faster than jq on every whole-file query: "
              + ("met" if not missed else "MISSED on " + ", ".join(missed)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
