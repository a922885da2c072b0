"""The pipeline: ``Pipeline`` composes the stages (``pipeline``); the steps where their answers
meet the database live one module per stage, in data-flow order: ``process`` (preprocess and
embed a claimed batch), ``units`` (the unit matrix a refresh works on), ``memberships`` (cluster:
assignment, stable ids, lineage), ``labels``, ``links``, ``diagnose`` (each ticket's category,
judged before issues form, then each issue's category and priority);
``stats`` holds what a run reports.
"""

from triage.embed import base_model, build_embedder
from triage.pipeline.diagnose import DiagnoseParams, Judged, diagnose, judge_tickets
from triage.pipeline.labels import LabelParams, relabel
from triage.pipeline.links import link_pending, output_record
from triage.pipeline.memberships import RECEIVING, MembershipParams, assign_new, recluster_issues
from triage.pipeline.pipeline import PHASES, Phase, Pipeline, Progress
from triage.pipeline.process import Statements
from triage.pipeline.stats import ProcessStats, RefreshStats, log_seconds, timed
from triage.pipeline.units import UnitMatrix, load_units

__all__ = [
    "PHASES",
    "RECEIVING",
    "DiagnoseParams",
    "Judged",
    "LabelParams",
    "MembershipParams",
    "Phase",
    "Pipeline",
    "ProcessStats",
    "Progress",
    "RefreshStats",
    "Statements",
    "UnitMatrix",
    "assign_new",
    "base_model",
    "build_embedder",
    "diagnose",
    "judge_tickets",
    "link_pending",
    "load_units",
    "log_seconds",
    "output_record",
    "recluster_issues",
    "relabel",
    "timed",
]
