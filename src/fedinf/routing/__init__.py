"""Routing: the pure `decide` step, and the executor that walks a Decision's targets."""
