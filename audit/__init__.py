"""The audit trail: JSONL streams and production.log exactly as the user guide describes them.

Nothing here imports from `bot`: records take plain values.
"""
