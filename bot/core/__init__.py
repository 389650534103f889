"""One pass: the cycle, crash recovery, planning, reconciliation, scheduling, the ports the cycle
talks through (`ports.py`), the domain types, errors, clock, calendar and the data directory's
file names (`layout.py`). Imports `models` and `audit`'s record types, never a stream that writes
them (the trail comes in through its port), an adapter, the app, the command line, a watcher or
a reader."""
