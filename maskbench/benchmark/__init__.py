"""Benchmark layer: forward source, protocols, metric passes, the run loop driving tasks, results, tables, plots."""
