"""Compare what the broker holds with what our trail says, and say so when they differ.

Expected positions are the sum of every sleeve (each model's holdings, plus `EXTERNAL`: what
earlier reconciliations adopted); expected open orders are the ones our state still follows.
Differences (a manual trade in the broker's dashboard, an order filled while we were down) are
recorded as `reconciliation` records in events.jsonl, then handled by `BOT_RECONCILE`:
`adopt` brings our books in line (a surplus goes to the EXTERNAL sleeve, which no model trades;
a shortfall is taken from EXTERNAL first, then from the models holding the symbol) and trading
goes on; `halt` stops trading.
"""
from __future__ import annotations

from datetime import datetime

from audit.records import Reconciliation
from bot.core.domain import AccountSnapshot
from bot.core.errors import Halt
from bot.core.ports import Broker, OrderJournal, Trail

EXTERNAL = "(external)"
_TOL = 1e-6


class ReconciliationHalt(Halt):
    """BOT_RECONCILE=halt and the broker disagrees with the trail."""


def reconcile(trail: Trail, journal: OrderJournal, broker: Broker, account: AccountSnapshot,
              slot: datetime | None, policy: str, check_orders: bool = True) -> bool:
    """Record and handle differences between `account` (the broker's) and the journal's books
    and open orders; True when there were any. `policy`: BOT_RECONCILE, "adopt" or "halt"."""
    expected: dict[str, float] = {}
    for sleeve in journal.sleeves().values():
        for sym, qty in sleeve.items():
            expected[sym] = expected.get(sym, 0.0) + qty
    actual = account.positions
    diffs = {sym: (round(expected.get(sym, 0.0), 9), round(actual.get(sym, 0.0), 9))
             for sym in expected.keys() | actual.keys()
             if abs(expected.get(sym, 0.0) - actual.get(sym, 0.0)) > _TOL}
    unknown = sorted(set(broker.open_orders()) - journal.open_orders()) if check_orders else []
    if not diffs and not unknown:
        return False
    parts = [f"{sym}: trail {e:.9g}, broker {a:.9g}" for sym, (e, a) in sorted(diffs.items())]
    if unknown:
        parts.append(f"open orders the trail does not know: {', '.join(unknown)}")
    action = ("adopted: our books now match the broker" if policy == "adopt"
              else "BOT_RECONCILE=halt: trading stops")
    trail.record(Reconciliation(
        message="broker and trail differ: " + "; ".join(parts) + f"; {action}",
        positions={s: {"trail": e, "broker": a} for s, (e, a) in sorted(diffs.items())},
        unknown_open_orders=tuple(unknown), policy=policy, cycle_timestamp=slot))
    if policy == "halt":
        raise ReconciliationHalt("the broker's positions or open orders differ from the trail "
                                 "(see events.jsonl): check them, then restart with "
                                 "BOT_RECONCILE=adopt or fix the account")
    for sym, (e, a) in diffs.items():
        _adopt(journal, sym, a - e)
    return True


def _adopt(journal: OrderJournal, symbol: str, delta: float) -> None:
    if delta > 0:
        journal.adjust_sleeve(EXTERNAL, symbol, delta)
        return
    need = -delta
    holders = sorted(journal.sleeves().items(), key=lambda kv: (kv[0] != EXTERNAL, kv[0]))
    for model, sleeve in holders:
        held = sleeve.get(symbol, 0.0)
        if held <= 0 or need <= _TOL:
            continue
        take = min(held, need)
        journal.adjust_sleeve(model, symbol, -take)
        need -= take
    if need > _TOL:  # the broker holds less than zero of ours: record it as external short
        journal.adjust_sleeve(EXTERNAL, symbol, -need)
