"""Shared benchmark helpers: processes (start, readiness, RSS, CPU), load generation (wrk or aiohttp), statistics,
throwaway peer virtualenvs and Markdown results. Import as ``from bench.common import ...`` with the repository root
on ``sys.path`` (each ``bench/NAME/run.py`` does that itself).
"""
