"""Comparable runs in backtrader and bt (whole process, imports included), when installed.

Each baseline runs the same kind of work: a daily rotation over the sector ETFs on synthetic
daily prices from our own SyntheticMarket, so the data is identical. Imports and data
preparation are inside the timed subprocess, as they are for `tradebot simulate`.
"""
from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BACKTRADER = r'''
import sys, datetime as dt
sys.path.insert(0, {root!r})
import backtrader as bt
import pandas as pd
from bot.core import calendar
from bot.adapters.synthetic_data import SyntheticMarket
start, end = dt.date.fromisoformat({start!r}), dt.date.fromisoformat({end!r})
days = calendar.trading_days(start, end)
m = SyntheticMarket(42)
syms = ["XLB","XLE","XLF","XLI","XLK","XLP","XLU","XLV","XLY","SPY","TLT"]
class Rot(bt.Strategy):
    def next(self):
        if len(self) < 64: return
        scores = sorted(((d.close[0] / d.close[-63] - 1, d) for d in self.datas[:9]), key=lambda x: x[0])[-3:]
        keep = {{id(d) for _, d in scores}}
        for d in self.datas:
            self.order_target_percent(d, target=0.32 if id(d) in keep else 0.0)
cerebro = bt.Cerebro(stdstats=False)
for s in syms:
    closes = m.history([s], end + dt.timedelta(days=1), len(days) + 64).closes[s]
    idx = calendar.trading_days(start - dt.timedelta(days=120), end)[-len(closes):]
    df = pd.DataFrame({{"open": closes, "high": closes, "low": closes, "close": closes, "volume": 1e6}},
                      index=pd.DatetimeIndex(idx))
    cerebro.adddata(bt.feeds.PandasData(dataname=df), name=s)
cerebro.broker.setcash(100000)
cerebro.run()
print(len(days))
'''

BT = r'''
import sys, datetime as dt
sys.path.insert(0, {root!r})
import bt, pandas as pd
from bot.core import calendar
from bot.adapters.synthetic_data import SyntheticMarket
start, end = dt.date.fromisoformat({start!r}), dt.date.fromisoformat({end!r})
days = calendar.trading_days(start, end)
m = SyntheticMarket(42)
syms = ["XLB","XLE","XLF","XLI","XLK","XLP","XLU","XLV","XLY"]
cols = {{}}
for s in syms:
    closes = m.history([s], end + dt.timedelta(days=1), len(days) + 64).closes[s]
    cols[s] = list(closes)
idx = calendar.trading_days(start - dt.timedelta(days=120), end)[-len(cols[syms[0]]):]
data = pd.DataFrame(cols, index=pd.DatetimeIndex(idx))
s = bt.Strategy("rot", [bt.algos.RunDaily(), bt.algos.SelectAll(),
                        bt.algos.SelectMomentum(3, lookback=pd.DateOffset(months=3)),
                        bt.algos.WeighEqually(), bt.algos.Rebalance()])
res = bt.run(bt.Backtest(s, data, initial_capital=100000, progress_bar=False))
print(len(days))
'''


def _time(code: str, start: str, end: str) -> tuple[float, int]:
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code.format(root=str(ROOT), start=start, end=end)],
                         capture_output=True, text=True, check=True).stdout
    return time.perf_counter() - t0, int(out.strip().splitlines()[-1])


PLAIN_LOOP = r'''
import sys, datetime as dt, time, tempfile, os, orjson
sys.path.insert(0, {root!r})
from bot.core import calendar
days = calendar.trading_days(dt.date.fromisoformat({start!r}), dt.date.fromisoformat({end!r}))
with tempfile.TemporaryDirectory() as tmp:
    with open(os.path.join(tmp, "performance.jsonl"), "wb") as f:
        nav = 100000.0
        for d in days:
            nav *= 1.0001
            f.write(orjson.dumps({{"timestamp": d.isoformat() + "T20:45:00.000000+00:00",
                                  "event_type": "cycle_complete", "nav": nav, "cash": 1.0,
                                  "positions_count": 1, "positions": {{"SPY": 1.0}},
                                  "buying_power": 1.0, "cycle_timestamp": d.isoformat()}},
                                 option=orjson.OPT_APPEND_NEWLINE))
print(len(days))
'''


def run_baselines(start: str, end: str):
    seconds, n = _time(PLAIN_LOOP, start, end)
    yield "plain orjson JSONL loop (whole process)", seconds, n
    for name, module, code in (("backtrader (whole process)", "backtrader", BACKTRADER),
                               ("bt (whole process)", "bt", BT)):
        if importlib.util.find_spec(module) is None:
            yield name, None, 0
            continue
        seconds, n = _time(code, start, end)
        yield name, seconds, n
