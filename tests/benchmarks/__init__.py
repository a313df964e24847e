"""Benchmarks that measure Squeezer beside the tools people use instead."""
