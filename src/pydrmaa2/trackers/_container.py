"""The names other modules imported from here before the container trackers' shared parts
became the package ``pydrmaa2.trackers.containers``; import them from there."""

from __future__ import annotations

from typing import Any

from .containers.spec import (
    EXTENSIONS,
    RESOURCE_LIMITS,
    ContainerSpec,
    container_spec,
    parse_size,
    stage_in_read_only,
)
from .containers.staging import StageOutError, extract_archive, stage_out_pairs

__all__ = ["EXTENSIONS", "RESOURCE_LIMITS", "ContainerSpec", "StageOutError", "container_spec",
           "extract_archive", "parse_size", "stage_in_read_only", "stage_out_pairs"]


def __getattr__(name: str) -> Any:
    # Docker's state table lived here under this name (the docs' tables still read it).
    if name == "CONTAINER_STATES":
        from .docker import STATES

        return STATES
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
