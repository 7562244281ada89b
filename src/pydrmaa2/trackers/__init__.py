"""The tracker registry: contact schemes to tracker classes, by entry points, imported lazily.

Entry-point group ``pydrmaa2.trackers``; built-ins are known here too, with the extra to install.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import threading

from ..errors import InvalidArgumentError, UnsupportedOperationError
from .base import Action, ChangeFeed, Contact, JobTracker, PollFeed

__all__ = ["Action", "ChangeFeed", "Contact", "JobTracker", "PollFeed", "tracker_class",
           "available_schemes"]

GROUP = "pydrmaa2.trackers"

# scheme -> (dotted path, pip extra that brings its client library)
BUILTIN: dict[str, tuple[str, str | None]] = {
    "process": ("pydrmaa2.trackers.process:ProcessTracker", None),
    "docker": ("pydrmaa2.trackers.docker:DockerTracker", "docker"),
    "podman": ("pydrmaa2.trackers.podman:PodmanTracker", "podman"),
    "containerd": ("pydrmaa2.trackers.containerd:ContainerdTracker", "containerd"),
    "slurm": ("pydrmaa2.trackers.slurm:SlurmTracker", None),
    "drmaa2+unix": ("pydrmaa2.trackers.remote:RemoteTracker", "serve"),
    "drmaa2+https": ("pydrmaa2.trackers.remote:RemoteTracker", "serve"),
    "drmaa2+http": ("pydrmaa2.trackers.remote:RemoteTracker", "serve"),
}

_lock = threading.Lock()
_cache: dict[str, type[JobTracker]] = {}


def _entry_points() -> dict[str, str]:
    return {ep.name: ep.value for ep in importlib.metadata.entry_points(group=GROUP)}


def available_schemes() -> list[str]:
    """Every scheme a contact may name: built-in and installed by third parties."""
    return sorted(set(BUILTIN) | set(_entry_points()))


def tracker_class(scheme: str) -> type[JobTracker]:
    """Import (once) and return the tracker class registered for ``scheme``."""
    with _lock:
        if scheme in _cache:
            return _cache[scheme]
        target = _entry_points().get(scheme) or BUILTIN.get(scheme, (None, None))[0]
        if target is None:
            raise InvalidArgumentError(
                f"no tracker for contact scheme {scheme!r}; known: {', '.join(available_schemes())}")
        module_name, _, attr = target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as e:
            extra = BUILTIN.get(scheme, (None, None))[1]
            hint = f"; install it with: pip install 'pydrmaa2[{extra}]'" if extra else ""
            raise UnsupportedOperationError(
                f"the {scheme!r} tracker cannot be loaded ({e}){hint}") from e
        # The entry point names a JobTracker subclass: trusted, not checked.
        cls: type[JobTracker] = getattr(module, attr)
        _cache[scheme] = cls
        return cls
