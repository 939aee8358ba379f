"""Suan (算): an operating system for AI supercomputers.

The public surface is small; most users reach Suan through the `suan` command. `suan.Client`
(the Python SDK) is imported on first use, so `import suan` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Client", "__version__"]

if TYPE_CHECKING:
    from suan.client import Client


def __getattr__(name: str) -> Any:
    if name == "Client":
        from suan.client import Client

        return Client
    raise AttributeError(f"module 'suan' has no attribute {name!r}")
