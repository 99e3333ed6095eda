"""Test doubles shipped with fedinf: fake upstream servers (real HTTP on loopback) for tests and benchmarks.

- :class:`fedinf.testing.upstream.FakeOpenAIUpstream`: an OpenAI-compatible server with fault injection;
- :class:`fedinf.testing.anthropic_upstream.FakeAnthropicUpstream`: an Anthropic Messages API server.

Both are importable without side effects and run standalone with ``python -m``.
"""
