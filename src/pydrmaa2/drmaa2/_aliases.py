"""One module object per uge-drmaa2 module, also under an alias of the package.

With ``sys.modules['drmaa2'] = pydrmaa2.drmaa2``, ``import drmaa2.job_session`` runs that file a
second time as ``drmaa2.job_session``; ``settle`` then puts the package's own module in its place.
"""

from __future__ import annotations

import importlib
import sys

__all__ = ["settle"]

PACKAGE = __name__.rpartition(".")[0]


def settle(name: str) -> None:
    """Called by each public module with its ``__name__``: under an alias, become the original."""
    package, _, module = name.rpartition(".")
    if package and package != PACKAGE:
        # The import system returns what sys.modules holds once the module has run.
        sys.modules[name] = importlib.import_module(f"{PACKAGE}.{module}")
