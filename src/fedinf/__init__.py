"""fedinf: a federated inference gateway.

One OpenAI-compatible API in front of a network of models (small open models on-prem, large cloud models), routed
fail-closed by the sensitivity of each request, license-checked, access-controlled and audited.

Public Python API: :class:`Gateway` (``Gateway.from_config(load_config(path))``), :func:`load_config`,
:class:`DataClass`, and the exception tree in :mod:`fedinf.errors`.
"""

from fedinf.config import Config, load_config
from fedinf.data_class import DataClass

__version__ = "0.1.0"
__all__ = ["Config", "DataClass", "Gateway", "__version__", "load_config"]


def __getattr__(name: str) -> object:  # lazy: importing fedinf stays cheap
    if name == "Gateway":
        from fedinf.gateway import Gateway

        return Gateway
    raise AttributeError(name)
