"""tradebot: a paper-trading bot with a complete, trustworthy audit trail."""
