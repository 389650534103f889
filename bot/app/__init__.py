"""The process around the cycle: start-up and stop (directories, locks, recovery, reconciliation),
the scheduler loop (`runner`), `simulate`, the dry run, health, backup, restore, verify. Builds the
bot through `bot.wiring`; runs `bot.core`."""
