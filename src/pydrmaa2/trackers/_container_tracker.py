"""The names other modules imported from here before the container-engine contract became
``pydrmaa2.trackers.containers`` (``ContainerTracker``, ``records``); import them from there."""

from __future__ import annotations

from typing import Any

from .containers.records import ContainerRow, open_records
from .containers.tracker import ContainerTracker

__all__ = ["ContainerRow", "ContainerTracker", "open_records"]


def __getattr__(name: str) -> Any:
    # Job control was one table here; each engine has its own now (the docs' tables still
    # read this name).
    if name == "CONTROL":
        from .docker import CONTROL

        return CONTROL
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
