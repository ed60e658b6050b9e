"""Scoring helpers shared by the tests and the benchmark."""
