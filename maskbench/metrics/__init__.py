"""Metrics engine: streaming accumulators with ``update`` / ``merge`` / ``compute`` (no torch imports)."""
