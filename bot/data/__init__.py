"""Market data adapters (the `MarketData` port): synthetic prices and user CSV files."""
