"""The read side, after the fact: ledger, trail check, explain, re-run, report, charts,
performance statistics. Reads the trail through `audit`; never imports the cycle, the app, the
wiring or an adapter: nothing here writes a record or sends an order."""
