"""The HTTP layer (ASGI, Starlette): thin routes -> wire models -> the pipeline. See :func:`create_app`."""

from fedinf.server.app import create_app

__all__ = ["create_app"]
