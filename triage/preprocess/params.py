"""The preprocess stage's knobs, as one frozen object built once from ``Settings``."""

from __future__ import annotations

from dataclasses import dataclass

from triage.config import Settings, defaults_of, params_from
from triage.errors import ConfigError

_setting = defaults_of("preprocess")


@dataclass(frozen=True)
class PreprocessParams:
    min_unit_words: int = _setting("min_unit_words")
    min_topic_words: int = _setting("min_topic_words")
    split_conjunctions: bool = _setting("split_conjunctions")
    # Read by whoever joins same-topic units after embedding (``topic_units``), not by the stage.
    join_similarity: float = _setting("join_similarity")
    pii_min_score: float = _setting("pii_min_score")
    phone_regions: tuple[str, ...] = _setting("phone_regions")
    batch_size: int = _setting("batch_size")

    def __post_init__(self) -> None:
        if self.min_unit_words < 1:
            raise ConfigError("min_unit_words must be at least 1.")
        # Frozen all the way down: a caller's list of regions must not change under the stage.
        object.__setattr__(self, "phone_regions", tuple(self.phone_regions))

    @classmethod
    def from_settings(cls, settings: Settings) -> PreprocessParams:
        return params_from(cls, settings, "preprocess")
