"""The audit trail: JSONL streams and production.log exactly as the user guide describes them.

Nothing here imports from `bot`: records take plain values. `audit.load(stream, logs_dir)`
gives one stream as a pandas DataFrame (pandas is imported only when it is called).
"""
# `load` shadows the submodule name; `from audit.load import X` still works
from audit.load import default_log_dir, load

__all__ = ["default_log_dir", "load"]
