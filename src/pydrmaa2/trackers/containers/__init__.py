"""What every container engine's tracker shares: the contract an engine implements
(``tracker.ContainerTracker``), the one JobTemplate -> container mapping (``spec``), the
labels (``labels``), the job's local files and stage-out (``staging``), JobInfo from an inspect
record (``jobinfo``), the tracker's SQLite rows (``records``) and an engine error's translation
(``errors``). No engine's client library is imported here: the engines are
``pydrmaa2.trackers.docker`` and ``pydrmaa2.trackers.podman``.
"""

from __future__ import annotations

from .errors import EngineErrors, engine_error, outage
from .jobinfo import job_info, parse_time
from .labels import LABELS, job_labels
from .records import ContainerRecords, ContainerRow
from .spec import EXTENSIONS, RESOURCE_LIMITS, ContainerSpec, container_spec, stage_in_read_only
from .staging import (
    ChunkReader,
    LocalFiles,
    StageOutError,
    extract_archive,
    feed_stdin,
    local_files,
    stage_out_pairs,
)
from .tracker import ContainerTracker

__all__ = [
    "EXTENSIONS", "LABELS", "RESOURCE_LIMITS", "ChunkReader", "ContainerRecords", "ContainerRow",
    "ContainerSpec", "ContainerTracker", "EngineErrors", "LocalFiles", "StageOutError",
    "container_spec", "engine_error", "extract_archive", "feed_stdin", "job_info", "job_labels",
    "local_files", "outage", "parse_time", "stage_in_read_only", "stage_out_pairs",
]
