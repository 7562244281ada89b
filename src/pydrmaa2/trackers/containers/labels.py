"""The labels that make pydrmaa2's containers recognisable in an engine: its job ids, its home
(so that a store finds its own containers) and the submitting machine."""

from __future__ import annotations

from ...templates import JobTemplate
from ..common import HOSTNAME

__all__ = ["LABELS", "job_labels"]

#: What pydrmaa2 records on a container -> the label's name.
LABELS: dict[str, str] = {
    "job_id": "org.pydrmaa2.job_id",
    "task_id": "org.pydrmaa2.task_id",
    "home": "org.pydrmaa2.home",
    "job_name": "org.pydrmaa2.job_name",
    "submission_machine": "org.pydrmaa2.submission_machine",
    "rm": "org.pydrmaa2.rm",
}


def job_labels(job_id: str | None, task_index: int | None, home: str, template: JobTemplate,
               ) -> dict[str, str]:
    """The labels of a job's container: pydrmaa2's ids, home and the submitting machine."""
    labels = {LABELS["home"]: home, LABELS["submission_machine"]: HOSTNAME}
    if job_id is not None:
        labels[LABELS["job_id"]] = job_id
    if task_index is not None:
        labels[LABELS["task_id"]] = str(task_index)
    if template.job_name:
        labels[LABELS["job_name"]] = template.job_name
    return labels
