"""Benchmark layer: evaluation of saved maps, runner, results, tables and plots."""
