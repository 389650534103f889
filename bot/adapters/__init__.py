"""What implements a port of `bot.core`: the simulated paper broker, CSV and synthetic market data,
Alpaca (`alpaca/`: its edge, broker and data), the state store (the order journal) and the inbox.
Only `bot.wiring` imports them."""
