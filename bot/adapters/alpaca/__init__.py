"""Alpaca paper trading through alpaca-py: the HTTP edge both adapters share (`edge`), the broker and
the market data."""
