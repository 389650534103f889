"""`tradebot report`: a self-contained HTML page whose figures match the trail, a PNG of the NAV
curve, and charts that really render in a headless Chromium (offline)."""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import stat
import struct
import subprocess
from datetime import date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.cli.report import add_report_parser, report_main
from bot.review.charts import BENCH_COLOR, NAV_COLOR
from bot.review.report import write_report
from tests.trails import copy_trail

NY = ZoneInfo("America/New_York")
SECTIONS = ("summary", "nav", "drawdown", "monthly", "models", "symbols", "trades", "errors")


# ---------------------------------------------------------------- helpers

class Page(HTMLParser):
    """The tables of a page by id (rows of cell texts, tfoot rows last) and every element id."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.ids: set[str] = set()
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "table":
            self._table = a.get("id", "")
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def rows(self, table_id: str) -> list[list[str]]:
        """The body and foot rows (the header row dropped)."""
        return self.tables[table_id][1:]


def opening_nav(logs: Path) -> float:
    return next(r["nav"] for r in records(logs / "events.jsonl")
                if r["event_type"] == "account_checked")


def money(cell: str) -> float:
    return float(cell.replace(",", ""))


def pct(cell: str) -> float:
    return float(cell.rstrip("%").replace(",", "")) / 100


def records(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def month_ends(snapshots: list[dict], value) -> dict[str, float]:
    """Month -> value at the last snapshot of the month (New York dates), in order."""
    out: dict[str, float] = {}
    for s in snapshots:
        at = datetime.fromisoformat(s["cycle_timestamp"]).astimezone(NY)
        v = value(s)
        if v is not None:
            out[at.strftime("%Y-%m")] = v
    return out


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def colour_pixels(png: Path, hex_colour: str, tol: int = 10):
    """(count, x-extent in pixels, image width) of the pixels within `tol` of the colour."""
    import numpy as np
    from matplotlib.image import imread
    img = imread(png)[..., :3]
    if img.dtype != np.uint8:
        img = (img * 255).round().astype(int)
    target = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)])
    hit = (np.abs(img.astype(int) - target) <= tol).all(axis=-1)
    xs = np.nonzero(hit.any(axis=0))[0]
    return int(hit.sum()), int(xs.max() - xs.min()) if len(xs) else 0, img.shape[1]


# ---------------------------------------------------------------- the report of the shared trail

@pytest.fixture(scope="module")
def report(sim_trail, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "report.html"
    summary = write_report(sim_trail, out)
    text = out.read_text(encoding="utf-8")
    return summary, text, Page(text)


def test_the_summary_names_the_files_period_and_counts(report, sim_trail):
    summary, _text, _page = report
    snaps = records(sim_trail / "performance.jsonl")
    assert summary.html.is_file() and summary.png == summary.html.with_suffix(".png")
    assert summary.cycles == len(snaps)
    assert summary.trades == len(records(sim_trail / "trades.jsonl"))
    assert summary.errors == len(records(sim_trail / "errors.jsonl"))
    assert str(summary.start) == snaps[0]["cycle_timestamp"][:10]
    assert str(summary.end) == snaps[-1]["cycle_timestamp"][:10]


def test_the_page_is_self_contained(report):
    _summary, text, page = report
    assert not re.search(r"<script\b[^>]*\bsrc\s*=", text, re.I)
    assert not re.search(r"<link\b", text, re.I)
    assert not re.search(r"<(img|iframe|object|embed)\b", text, re.I)
    assert "@import" not in text and not re.search(r"url\(\s*['\"]?\s*(https?:)?//", text, re.I)
    for target in re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)""", text, re.I):
        assert target.startswith("#"), f"the page refers to {target!r}"
    assert text.count("<svg") == 2
    assert set(SECTIONS) <= page.ids and {"nav-chart", "drawdown-chart"} <= page.ids


def test_headline_figures_match_the_snapshots(report, sim_trail):
    *_, page = report
    snaps = records(sim_trail / "performance.jsonl")
    opening = opening_nav(sim_trail)
    (strategy, bench) = page.rows("headline-table")
    assert strategy[0] == "Strategy" and bench[0] == "Buy-and-hold SPY"
    assert money(strategy[6]) == opening == 100_000  # the starting cash, before the first trade
    assert pct(strategy[1]) == pytest.approx(snaps[-1]["nav"] / opening - 1, abs=6e-5)
    spy = [s["prices"]["SPY"] for s in snaps]
    assert pct(bench[1]) == pytest.approx(spy[-1] / spy[0] - 1, abs=6e-5)
    assert pct(strategy[5]) < 0 and pct(bench[5]) < 0  # max drawdowns


def test_monthly_returns_match_the_snapshots(report, sim_trail):
    *_, page = report
    snaps = records(sim_trail / "performance.jsonl")
    navs = month_ends(snaps, lambda s: s["nav"])
    spys = month_ends(snaps, lambda s: s["prices"].get("SPY"))
    rows = page.rows("monthly-table")
    assert [r[0] for r in rows] == list(navs) == ["2024-01", "2024-02", "2024-03", "2024-04",
                                                  "2024-05", "2024-06"]
    prev_nav, prev_spy = opening_nav(sim_trail), snaps[0]["prices"]["SPY"]
    for month, strategy, spy, diff, nav in rows:
        assert pct(strategy) == pytest.approx(navs[month] / prev_nav - 1, abs=6e-5), month
        assert pct(spy) == pytest.approx(spys[month] / prev_spy - 1, abs=6e-5), month
        assert pct(diff) == pytest.approx(pct(strategy) - pct(spy), abs=1.2e-4)
        assert money(nav) == pytest.approx(navs[month], abs=0.006)
        prev_nav, prev_spy = navs[month], spys[month]


def test_model_pnl_sums_to_the_total_and_to_the_nav_change(report, sim_trail):
    *_, page = report
    rows = page.rows("models-table")
    *models, total = rows
    assert sorted(r[0] for r in models) == ["EqualWeightModel_v1", "SectorRotationModel_v1"]
    assert total[0] == "Total"
    for col in (1, 2, 3, 4):  # realized, unrealized, P&L, commission
        assert sum(money(r[col]) for r in models) == pytest.approx(money(total[col]), abs=0.03)
    opening = next(r for r in records(sim_trail / "events.jsonl")
                   if r["event_type"] == "account_checked")["nav"]
    last_nav = records(sim_trail / "performance.jsonl")[-1]["nav"]
    assert money(total[3]) == pytest.approx(last_nav - opening, abs=1.0)
    commissions = sum(r.get("commission", 0) for r in records(sim_trail / "trades.jsonl"))
    assert money(total[4]) == pytest.approx(commissions)


def test_symbol_pnl_adds_up_across_models_and_symbols(report, sim_trail):
    *_, page = report
    head = page.tables["symbols-table"][0]
    *rows, foot = page.rows("symbols-table")
    traded = {r["symbol"] for r in records(sim_trail / "trades.jsonl")}
    assert {r[0] for r in rows} == traded
    model_cols = [i for i, h in enumerate(head) if h.endswith(" P&L")]
    assert len(model_cols) == 2
    for r in rows:
        by_models = sum(money(r[i]) for i in model_cols if r[i])
        assert by_models == pytest.approx(money(r[-1]), abs=0.03), r[0]
    assert sum(money(r[-1]) for r in rows) == pytest.approx(money(foot[-1]), abs=0.1)
    models_total = page.rows("models-table")[-1][3]
    assert money(foot[-1]) == pytest.approx(money(models_total), abs=0.01)


def test_the_trades_table_lists_every_trade_in_order(report, sim_trail):
    *_, page = report
    trades = records(sim_trail / "trades.jsonl")
    rows = page.rows("trades-table")
    assert [r[-1] for r in rows] == [t["order_id"] for t in trades]
    assert [r[2] for r in rows] == [t["symbol"] for t in trades]


def test_the_png_is_the_nav_curve(report):
    summary, *_ = report
    width, height = png_size(summary.png)
    assert 800 <= width <= 2400 and 300 <= height <= 1200
    count, extent, img_width = colour_pixels(summary.png, NAV_COLOR)
    assert count > 1000 and extent > 0.7 * img_width


# ---------------------------------------------------------------- other trails

def test_a_long_trades_table_is_capped_and_says_so(sim_trail, tmp_path):
    out = tmp_path / "r.html"
    write_report(sim_trail, out, tmp_path / "nav.png", max_trades=10)
    text = out.read_text()
    trades = records(sim_trail / "trades.jsonl")
    assert f"Showing the last 10 of {len(trades)} trades" in text
    assert [r[-1] for r in Page(text).rows("trades-table")] == [t["order_id"] for t in trades[-10:]]
    assert (tmp_path / "nav.png").is_file() and not (tmp_path / "r.png").exists()


def test_errors_are_listed_and_escaped(sim_trail, tmp_path):
    logs = copy_trail(sim_trail, tmp_path / "logs")
    bad = [{"timestamp": "2024-03-01T20:45:00.000100+00:00", "event_type": "order_error",
            "symbol": "XL<B>", "side": "buy", "quantity": 1.0,
            "error": "<script>alert('x')</script> & insufficient buying power",
            "order_data": {}, "model": "m", "order_id": "tb-1",
            "cycle_timestamp": "2024-03-01T20:45:00+00:00"},
           {"timestamp": "2024-03-02T20:45:00.000100+00:00", "event_type": "cycle_error",
            "error": "</td></tr></table><h1>broken</h1>",
            "cycle_timestamp": "2024-03-02T20:45:00+00:00"}]
    with open(logs / "errors.jsonl", "a") as f:
        f.writelines(json.dumps(r) + "\n" for r in bad)
        f.write("{not json\n")
    out = tmp_path / "r.html"
    assert write_report(logs, out).errors == 2
    text = out.read_text()
    assert "<script>alert" not in text and "<h1>broken" not in text
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; insufficient" in text
    rows = Page(text).rows("errors-table")
    assert rows == [["2024-03-01 20:45:00.000100", "order_error", "XL<B>",
                     "<script>alert('x')</script> & insufficient buying power"],
                    ["2024-03-02 20:45:00.000100", "cycle_error", "",
                     "</td></tr></table><h1>broken</h1>"]]
    assert "1 unreadable line(s) skipped, first: errors.jsonl:3" in text


def test_a_trail_without_spy_prices_says_there_is_no_benchmark(sim_trail, tmp_path):
    logs = copy_trail(sim_trail, tmp_path / "logs")
    snaps = records(logs / "performance.jsonl")
    for s in snaps:
        s["prices"].pop("SPY", None)
    (logs / "performance.jsonl").write_text("".join(json.dumps(s) + "\n" for s in snaps))
    out = tmp_path / "r.html"
    write_report(logs, out)
    text = out.read_text()
    page = Page(text)
    assert "No benchmark: no snapshot of this trail has a SPY price" in text
    assert [r[0] for r in page.rows("headline-table")] == ["Strategy"]
    assert {r[2] for r in page.rows("monthly-table")} == {"—"}
    assert BENCH_COLOR.lower() not in text.lower()


def test_spy_from_its_first_snapshot(sim_trail, tmp_path):
    logs = copy_trail(sim_trail, tmp_path / "logs")
    snaps = records(logs / "performance.jsonl")
    for s in snaps[:30]:
        s["prices"].pop("SPY", None)
    (logs / "performance.jsonl").write_text("".join(json.dumps(s) + "\n" for s in snaps))
    out = tmp_path / "r.html"
    write_report(logs, out)
    text = out.read_text()
    first = datetime.fromisoformat(snaps[30]["cycle_timestamp"]).astimezone(NY).date()
    assert f"buy-and-hold SPY from {first}, the first snapshot with a SPY price" in text
    bench = Page(text).rows("headline-table")[1]
    spy = snaps[-1]["prices"]["SPY"] / snaps[30]["prices"]["SPY"] - 1
    assert pct(bench[1]) == pytest.approx(spy, abs=6e-5)


def _parse(argv):
    p = argparse.ArgumentParser(prog="tradebot")
    add_report_parser(p.add_subparsers(dest="command"))
    return p.parse_args(argv)


@pytest.mark.slow
def test_cli_writes_both_files_and_prints_one_line(sim_trail, tmp_path, capsys):
    out = tmp_path / "r.html"
    assert report_main(_parse(["report", "--logs-dir", str(sim_trail), "-o", str(out),
                               "--png", str(tmp_path / "nav.png")]), Path("/nonexistent")) == 0
    line = capsys.readouterr().out.strip()
    assert "\n" not in line and "124 cycles" in line and str(out) in line
    assert out.is_file() and (tmp_path / "nav.png").is_file()
    for f in (out, tmp_path / "nav.png"):  # as private as the trail
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f


def test_cli_mode_shares_the_report_when_asked(sim_trail, tmp_path, capsys):
    out = tmp_path / "r.html"
    old = os.umask(0o077)
    try:
        assert report_main(_parse(["report", "--logs-dir", str(sim_trail), "-o", str(out),
                                   "--mode", "644"]), Path("/nonexistent")) == 0
    finally:
        os.umask(old)
    assert [stat.S_IMODE(f.stat().st_mode) for f in (out, out.with_suffix(".png"))] == [0o644] * 2
    with pytest.raises(SystemExit):
        _parse(["report", "-o", "r.html", "--mode", "999"])
    assert "is not a file mode" in capsys.readouterr().err


@pytest.mark.parametrize("where", ["html", "png"])
def test_cli_refuses_an_output_directory_that_does_not_exist(sim_trail, tmp_path, capsys, where):
    html = tmp_path / ("no/such/dir/r.html" if where == "html" else "r.html")
    argv = ["report", "--logs-dir", str(sim_trail), "-o", str(html)]
    if where == "png":
        argv += ["--png", str(tmp_path / "no/such/dir/r.png")]
    assert report_main(_parse(argv), Path("/nonexistent")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no/such/dir does not exist" in err
    assert not (tmp_path / "no").exists() and not html.exists()


@pytest.mark.parametrize("where", ["html", "png"])
@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_cli_refuses_a_target_that_is_not_a_regular_file(sim_trail, tmp_path, capsys, where, kind):
    """`-o /dev/full` as root replaced the device node with the report: a target that exists and
    is not a regular file is refused, left as it is (a FIFO or a directory here: CI runs as root)."""
    target = tmp_path / ("special.html" if where == "html" else "special.png")
    if kind == "fifo":
        os.mkfifo(target)
    else:
        target.mkdir()
        (target / "inside").write_text("kept\n")
    argv = ["report", "--logs-dir", str(sim_trail), "-o",
            str(target if where == "html" else tmp_path / "r.html")]
    if where == "png":
        argv += ["--png", str(target)]
    assert report_main(_parse(argv), Path("/nonexistent")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(target) in err and "not a regular file" in err
    assert (stat.S_ISFIFO if kind == "fifo" else stat.S_ISDIR)(target.lstat().st_mode)
    assert kind == "fifo" or (target / "inside").read_text() == "kept\n"
    assert not (tmp_path / "r.html").exists()


@pytest.mark.slow
def test_report_and_simulate_give_the_same_figures(tmp_path, no_bot_env):
    from bot.app.simulate import format_summary, simulate
    from bot.review.report import collect, headline
    from bot.settings import load_settings
    result = simulate(load_settings(data_dir=tmp_path / "data"), date(2023, 1, 1),
                      date(2023, 12, 31), tmp_path / "logs", progress=None)
    data = collect(tmp_path / "logs")
    h = headline(data.snapshots, data.opening)
    for mine, theirs in ((h.strategy, result.strategy), (h.benchmark, result.benchmark)):
        for name in ("total_return", "cagr", "volatility", "sharpe", "max_drawdown"):
            assert getattr(mine, name) == pytest.approx(getattr(theirs, name), rel=1e-12), name
    strategy_row = next(x for x in format_summary(result).splitlines() if "strategy" in x)
    page = Page((write_report(tmp_path / "logs", tmp_path / "r.html").html).read_text())
    cagr = page.rows("headline-table")[0][2]
    assert cagr in strategy_row.split() and h.strategy.total_return != 0


def test_a_short_run_gets_a_point_on_a_sensible_axis_and_a_note(tmp_path, no_bot_env):
    import matplotlib.dates as mdates

    from bot.app.simulate import simulate
    from bot.review.charts import Series, nav_figure
    from bot.review.report import collect
    from bot.settings import load_settings
    simulate(load_settings(data_dir=tmp_path / "data"), date(2024, 3, 1), date(2024, 3, 1),
             tmp_path / "logs", progress=None)
    snaps = collect(tmp_path / "logs").snapshots
    assert len(snaps) == 1
    ax = nav_figure(Series("NAV", [s.at for s in snaps], [s.nav for s in snaps]), None).axes[0]
    lo, hi = (mdates.num2date(x) for x in ax.get_xlim())
    assert timedelta(0) < hi - lo <= timedelta(days=1)
    assert lo < snaps[0].at < hi
    text = write_report(tmp_path / "logs", tmp_path / "r.html").html.read_text()
    assert 'id="short-run"' in text and "Only one snapshot so far" in text


def test_cli_needs_an_output(capsys):
    with pytest.raises(SystemExit):
        _parse(["report"])
    assert "-o/--out" in capsys.readouterr().err


@pytest.mark.parametrize("setup, why", [
    (lambda d: None, "has no performance.jsonl"),
    (lambda d: (d / "performance.jsonl").touch(), "holds no cycle_complete snapshot"),
])
def test_nothing_to_report_exits_1_with_one_line(tmp_path, capsys, setup, why):
    logs = tmp_path / "logs"
    logs.mkdir()
    setup(logs)
    out = tmp_path / "r.html"
    assert report_main(_parse(["report", "-o", str(out)]), logs) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nothing to report" in err and why in err
    assert not out.exists() and not out.with_suffix(".png").exists()


def test_a_missing_log_dir_exits_2(tmp_path, capsys):
    assert report_main(_parse(["report", "--logs-dir", str(tmp_path / "nope"), "-o",
                               str(tmp_path / "r.html")]), tmp_path) == 2
    assert "is not a directory" in capsys.readouterr().err


# ---------------------------------------------------------------- in a real browser

@pytest.fixture(scope="session")
def chromium() -> str:
    """A headless Chromium on PATH; without one the browser tests skip, saying how to get it
    (a test never installs anything: .ci/run installs chromium before the tests)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.skip("no chromium on PATH: install it (`apt-get install chromium`, as .ci/run does) "
                    "to run the browser tests")
    return found


def run_chromium(chromium: str, page: Path, profile: Path, *args: str) -> str:
    """Load `page` offline (every host name resolves to nothing) and return stdout."""
    proc = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--no-first-run", "--disable-extensions", "--disable-background-networking",
         f"--user-data-dir={profile}", "--host-resolver-rules=MAP * ~NOTFOUND",
         "--virtual-time-budget=5000", *args, page.resolve().as_uri()],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@pytest.mark.slow
def test_the_nav_chart_renders_in_chromium(chromium, report, tmp_path):
    summary, *_ = report
    shot = tmp_path / "shot.png"
    run_chromium(chromium, summary.html, tmp_path / "profile", f"--screenshot={shot}",
                 "--window-size=1200,2000")
    assert png_size(shot) == (1200, 2000)
    count, extent, width = colour_pixels(shot, NAV_COLOR)
    assert count > 1000, f"only {count} pixels of the NAV line's colour: the chart did not render"
    assert extent > 0.7 * width  # a line across the chart, not just the legend's swatch
    assert colour_pixels(shot, BENCH_COLOR)[0] > 200  # the benchmark's dashed line


@pytest.mark.slow
def test_the_charts_have_their_size_in_the_dom(chromium, report, tmp_path):
    summary, text, _page = report
    rgb = "rgb(" + ", ".join(str(int(NAV_COLOR[i:i + 2], 16)) for i in (1, 3, 5)) + ")"
    probe = """<script>
    const out = [];
    for (const id of ["nav-chart", "drawdown-chart"]) {
      const svg = document.querySelector("#" + id + " svg").getBoundingClientRect();
      out.push(id + "=" + Math.round(svg.width) + "x" + Math.round(svg.height));
    }
    const nav = [...document.querySelectorAll("#nav-chart svg path")].filter(
      p => getComputedStyle(p).stroke === "RGB" && p.getTotalLength() > 500);
    const line = nav.length ? nav[0].getBoundingClientRect() : {width: 0, height: 0};
    out.push("navline=" + Math.round(line.width) + "x" + Math.round(line.height));
    document.body.setAttribute("data-probe", out.join(" "));
    </script></body>""".replace("RGB", rgb)
    page = tmp_path / "probe.html"
    page.write_text(text.replace("</body>", probe), encoding="utf-8")
    dom = run_chromium(chromium, page, tmp_path / "profile", "--dump-dom",
                       "--window-size=1200,2000")
    found = re.search(r'data-probe="([^"]*)"', dom)
    assert found, dom[-2000:]
    sizes = {k: tuple(map(int, v.split("x"))) for k, v in
             (item.split("=") for item in found.group(1).split())}
    assert sizes["nav-chart"][0] > 800 and sizes["nav-chart"][1] > 250
    assert sizes["drawdown-chart"][0] > 800 and sizes["drawdown-chart"][1] > 150
    assert sizes["navline"][0] > 0.8 * sizes["nav-chart"][0] and sizes["navline"][1] > 50
