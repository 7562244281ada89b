"""The Slurm tracker (contact ``slurm`` or ``slurm://CLUSTER``): jobs are Slurm batch jobs,
driven through the Slurm commands with fixed, delimited output fields, never a shell line.

Read top to bottom: ``tables`` (what Slurm's words mean in DRMAA2's), ``parsers`` and ``infos``
(reading the commands' output), ``commands`` (running them; where their errors become DRMAA2
errors), ``specs`` and ``batch.sh`` (what a template becomes), ``tracker`` (SlurmTracker)."""

from .tables import (
    CONTROL,
    EXTENSION_OPTIONS,
    RESERVATION_EXTENSIONS,
    RESERVED_OPTIONS,
    RESOURCE_LIMITS,
    STATES,
    TEMPLATE_OPTIONS,
)
from .tracker import POLL_INTERVAL, SlurmTracker

__all__ = [
    "CONTROL",
    "EXTENSION_OPTIONS",
    "POLL_INTERVAL",
    "RESERVATION_EXTENSIONS",
    "RESERVED_OPTIONS",
    "RESOURCE_LIMITS",
    "STATES",
    "TEMPLATE_OPTIONS",
    "SlurmTracker",
]
