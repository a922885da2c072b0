"""Stage "link": which logged model output was each piece of feedback about (``linking``), and
what the outputs behind an issue look like next to all traffic (``traffic``, ``signals``).

Parameters come in as ``LinkParams`` and ``SignalParams``, built once from ``Settings``.
"""

from triage.link.linking import (
    FeedbackRecord,
    LinkDecision,
    LinkParams,
    OutputRecord,
    Similarity,
    embedding_similarity,
    link_feedback,
)
from triage.link.signals import (
    Distribution,
    Freshness,
    GroupShare,
    MissingField,
    OutputSignals,
    output_signals,
)
from triage.link.traffic import (
    EPOCH,
    GROUP_FIELDS,
    VALUE_FIELDS,
    SignalParams,
    SourceAge,
    TrafficProfile,
    cited_sources,
    eval_score,
    missing_fields,
    parse_as_of,
    source_ages,
)

__all__ = [
    "EPOCH",
    "GROUP_FIELDS",
    "VALUE_FIELDS",
    "Distribution",
    "FeedbackRecord",
    "Freshness",
    "GroupShare",
    "LinkDecision",
    "LinkParams",
    "MissingField",
    "OutputRecord",
    "OutputSignals",
    "SignalParams",
    "Similarity",
    "SourceAge",
    "TrafficProfile",
    "cited_sources",
    "embedding_similarity",
    "eval_score",
    "link_feedback",
    "missing_fields",
    "output_signals",
    "parse_as_of",
    "source_ages",
]
