"""Datasets: where each one comes from (sources) and the loaders built on it."""
