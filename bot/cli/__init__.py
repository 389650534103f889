"""The face: the `tradebot` command's parsers, printing and exit codes. No logic of its own: it calls
`bot.app` (a live or simulated bot) and `bot.review` (the read side); never the wiring, an adapter or a
watcher."""
