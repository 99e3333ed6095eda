"""Backend registry. Adding a backend = one new file in this package + one entry in ``REGISTRY``.

Entries are ``module:Class`` strings so heavy backends (``local`` pulls in llama.cpp) are imported only when a
configured model uses them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from fedinf.backends.base import Backend, CallContext, Capabilities
from fedinf.errors import ConfigError

if TYPE_CHECKING:
    from fedinf.config import Endpoint, ModelSpec

REGISTRY: dict[str, str] = {
    "local": "fedinf.backends.local:LocalBackend",
    "openai": "fedinf.backends.openai:OpenAIBackend",
    "anthropic": "fedinf.backends.anthropic:AnthropicBackend",
    "fake": "fedinf.backends.fake:FakeBackend",
}

__all__ = ["Backend", "CallContext", "Capabilities", "REGISTRY", "backend_class", "capabilities_for", "create_backend"]


def backend_class(name: str) -> type[Backend]:
    try:
        target = REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown backend {name!r}; known backends: {', '.join(sorted(REGISTRY))}") from None
    module_name, _, cls_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        extra = {"local": " (install the `local` extra: pip install 'fedinf[local]')"}.get(name, "")
        raise ConfigError(f"backend {name!r} cannot be loaded: {exc}{extra}") from None
    cls: type[Backend] = getattr(module, cls_name)
    return cls


def capabilities_for(spec: "ModelSpec") -> Capabilities:
    """What a configured model can honour, as its backend declares it (see :meth:`Backend.capabilities_for`)."""
    return backend_class(spec.backend).capabilities_for(spec)


def create_backend(spec: "ModelSpec", endpoint: "Endpoint | None") -> Backend:
    """Instantiate the backend for one endpoint (replica) of a configured model."""
    cls: Any = backend_class(spec.backend)  # a Protocol has no constructor signature; every backend takes these
    backend: Backend = cls(spec=spec, endpoint=endpoint)
    return backend
