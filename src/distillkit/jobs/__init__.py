"""The jobs behind `distillkit train`, `compress` and `incremental`: one `Job` skeleton (base.py), one file each.
The libraries they use (compress/, incremental/, models/, engine/) never import a job."""

from distillkit.jobs.base import Job
from distillkit.jobs.compress import CompressJob
from distillkit.jobs.incremental import IncrementalJob
from distillkit.jobs.train import TrainJob

JOBS: dict[str, type[Job]] = {job.name: job for job in (TrainJob, CompressJob, IncrementalJob)}
"""The jobs by name."""

__all__ = ["JOBS", "CompressJob", "IncrementalJob", "Job", "TrainJob"]
