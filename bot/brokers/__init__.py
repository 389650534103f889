"""Broker adapters behind the `Broker` port."""
