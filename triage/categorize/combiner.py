"""The learned combiner: a multinomial logistic regression over the signals' scores and the
ticket's context, fitted on out-of-fold signal scores (``training``) instead of weighed by hand.

The feature layout is fixed (``FEATURE_GROUPS``), one group per signal plus two of context:

- ``classifier``: log of the classifier's probability of each category (ui, data, model,
  expectation);
- ``words``: log of the word model's probability of each category (``words``);
- ``examples``: the nearest-examples score of each category;
- ``cues``: the cue-word score of each category;
- ``outputs``: 1 when the ticket has a linked output, then ``score_outputs``' score per category;
- ``context``: the linked output's stale-source share, how low its confidence and eval score sit
  in traffic (1 - percentile, 0.5 unknown), the log lift of its model version among that
  model's complaints over its share of the model's traffic, and the same for the most
  over-represented dated source it cites (``context.ticket_contexts``);
- ``reaction``: 1 when the ticket came within ``REACTION_MINUTES`` after the answer it is about.

Every group is learned, the reaction too since the fixtures hold two chat assistants (before,
no labelled chatbot reaction existed and its weight was a hand-set prior, which still stands in
when a combiner gives the reaction no weight: ``learned``). A group that hurts gets no weight:
groups are removed
one at a time (backward elimination: the removal that helps most first, then the rest judged
again without it) while removing one raises the held-out products' macro-F1 beyond chance (a
one-sided paired t-test over the cross-validation's products, Bonferroni-corrected for the
groups tried), and a group whose features never vary is dropped first; the card says which and
why. Removing a group whenever that did not lower the pooled macro-F1, as before, followed
near-ties: judged one level further out (groups chosen on eleven products, scored on the
twelfth), it chose 5-8 different sets in 12 tries and cost about 0.01 macro-F1 against keeping
every group (README, "Evaluation"). Saved
as ``combiner.npz`` (arrays, loaded with ``allow_pickle=False``) and ``combiner.json`` (the
card) in the classifier folder.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from triage.categorize.abstain import ACCURACY, fit_uncertain_below
from triage.categorize.classifier import rowwise
from triage.categorize.context import REACTION_MINUTES, TicketContext
from triage.categorize.examples import CATEGORIES
from triage.categorize.neighbours import NEIGHBOURS, fit_weight
from triage.categorize.signals import SignalScore

COMBINER_FILE = "combiner.npz"
COMBINER_CARD = "combiner.json"

FEATURE_GROUPS: dict[str, list[str]] = {
    "classifier": [f"classifier_log_p_{c}" for c in CATEGORIES],
    "words": [f"words_log_p_{c}" for c in CATEGORIES],
    "examples": [f"examples_{c}" for c in CATEGORIES],
    "cues": [f"cues_{c}" for c in CATEGORIES],
    "outputs": ["outputs_linked", *(f"outputs_{c}" for c in CATEGORIES)],
    "context": ["stale_share", "low_confidence", "low_eval", "version_log_lift", "source_log_lift"],
    "reaction": [f"reacted_within_{REACTION_MINUTES:.0f}_min"],
}
FEATURES = [name for names in FEATURE_GROUPS.values() for name in names]
# The groups the combiner learns: all of them (the selection may still give one no weight).
LEARNED_GROUPS = list(FEATURE_GROUPS)
# The chance that any group is removed by luck alone in one round of the selection.
ALPHA = 0.05
GROUP_OF = {name: group for group, names in FEATURE_GROUPS.items() for name in names}


def feature_vector(scored: Mapping[str, SignalScore], context: TicketContext) -> np.ndarray:
    """The full layout (``FEATURES``) for one ticket; a signal that said nothing scores 0."""

    def per_category(signal: str) -> list[float]:
        score = scored.get(signal)
        return [score.scores.get(c, 0.0) if score else 0.0 for c in CATEGORIES]

    row = [
        *(float(np.log(p + 1e-3)) for p in per_category("classifier")),
        *(float(np.log(p + 1e-3)) for p in per_category("words")),
        *per_category("examples"),
        *per_category("cues"),
        float(context.linked),
        *per_category("outputs"),
        context.stale_share,
        context.low_confidence,
        context.low_eval,
        context.version_log_lift,
        context.source_log_lift,
        float(context.reacted),
    ]
    return np.array(row, dtype=np.float64)


def _fit(x: np.ndarray, y: Sequence[str], c: float) -> tuple[Any, np.ndarray, np.ndarray]:
    from sklearn.linear_model import LogisticRegression

    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    model = LogisticRegression(C=c, max_iter=3000).fit((x - mean) / scale, list(y))
    return model, mean, scale


def cv_probabilities(
    x: np.ndarray, y: Sequence[str], groups: Sequence[str], *, c: float
) -> np.ndarray:
    """``(len(y), len(CATEGORIES))``: each row's probabilities from a fit with its group
    (product) held out; a fold whose training rows hold one label gives that label 1."""
    labels = np.array(y)
    groups_array = np.array(groups)
    result = np.zeros((len(labels), len(CATEGORIES)))
    for group in sorted(set(groups)):
        test = groups_array == group
        train_labels = sorted(set(labels[~test]))
        if len(train_labels) < 2:
            only = train_labels[0] if train_labels else CATEGORIES[0]
            result[np.flatnonzero(test), CATEGORIES.index(only)] = 1.0
            continue
        model, mean, scale = _fit(x[~test], labels[~test], c)
        proba = model.predict_proba((x[test] - mean) / scale)
        for column, name in enumerate(model.classes_):
            result[np.flatnonzero(test), CATEGORIES.index(str(name))] = proba[:, column]
    return result


def _macro_f1(y: Sequence[str], probabilities: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    predicted = [CATEGORIES[i] for i in np.asarray(probabilities).argmax(axis=1)]
    return float(f1_score(list(y), predicted, labels=sorted(set(y)), average="macro"))


@dataclass
class LearnedCombiner:
    classes: list[str]
    feature_names: list[str]  # the kept features, in ``FEATURES`` order
    coef: np.ndarray  # (n_classes, n_features)
    intercept: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    card: dict[str, Any] = field(default_factory=dict)
    # How much a ticket's nearest tickets' own probabilities weigh in its category
    # (``neighbours``), learned by cross-validation; 0: none.
    neighbour_weight: float = 0.0
    # Below this confidence a decision says it is uncertain (``abstain``), learned by
    # cross-validation; 0: never (a combiner trained before it).
    uncertain_below: float = 0.0

    @property
    def groups(self) -> list[str]:
        return [g for g in FEATURE_GROUPS if any(GROUP_OF[n] == g for n in self.feature_names)]

    @cached_property
    def _index(self) -> np.ndarray:
        """Where each kept feature sits in the full layout (``FEATURES``)."""
        return np.array([FEATURES.index(name) for name in self.feature_names], dtype=np.int64)

    @cached_property
    def _kept_groups(self) -> tuple[list[str], np.ndarray]:
        """The kept groups in feature order, and a (features x groups) 0/1 matrix."""
        groups = list(dict.fromkeys(GROUP_OF[name] for name in self.feature_names))
        matrix = np.zeros((len(self.feature_names), len(groups)))
        for i, name in enumerate(self.feature_names):
            matrix[i, groups.index(GROUP_OF[name])] = 1.0
        return groups, matrix

    def standardised(self, full: np.ndarray) -> np.ndarray:
        return (full[..., self._index] - self.mean) / self.scale

    def predict_proba(self, full: np.ndarray) -> np.ndarray:
        """``(rows, classes)`` probabilities of rows of the full layout (or of one row), each
        row's the same however many rows come with it (``classifier.rowwise``)."""
        logits = rowwise(self.standardised(np.atleast_2d(full)), self.coef.T) + self.intercept
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)

    @property
    def kept_groups(self) -> list[str]:
        """The groups ``contributions`` has a column for, in that order."""
        return self._kept_groups[0]

    def contributions(self, full: np.ndarray) -> np.ndarray:
        """``(rows, classes, kept_groups)``: per row of the full layout, per class, per kept
        group, what the group adds to the class's logit next to an average ticket; one product
        per row, as ``predict_proba``."""
        _, matrix = self._kept_groups
        return (self.coef * self.standardised(np.atleast_2d(full))[:, None, :]) @ matrix

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            folder / COMBINER_FILE,
            classes=np.array(self.classes, dtype=str),
            feature_names=np.array(self.feature_names, dtype=str),
            coef=self.coef.astype(np.float64),
            intercept=self.intercept.astype(np.float64),
            mean=self.mean.astype(np.float64),
            scale=self.scale.astype(np.float64),
            neighbour_weight=np.array(self.neighbour_weight, dtype=np.float64),
            uncertain_below=np.array(self.uncertain_below, dtype=np.float64),
        )
        (folder / COMBINER_CARD).write_text(
            json.dumps(self.card, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8"
        )
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> LearnedCombiner:
        folder = Path(folder)
        with np.load(folder / COMBINER_FILE, allow_pickle=False) as arrays:
            data = {name: arrays[name] for name in arrays.files}
        card_file = folder / COMBINER_CARD
        card = json.loads(card_file.read_text(encoding="utf-8")) if card_file.exists() else {}
        return cls(
            classes=[str(c) for c in data["classes"]],
            feature_names=[str(n) for n in data["feature_names"]],
            coef=data["coef"],
            intercept=data["intercept"],
            mean=data["mean"],
            scale=data["scale"],
            card=card,
            neighbour_weight=float(data["neighbour_weight"]) if "neighbour_weight" in data else 0.0,
            uncertain_below=float(data["uncertain_below"]) if "uncertain_below" in data else 0.0,
        )


def _per_product_f1(
    y: Sequence[str], probabilities: np.ndarray, groups: Sequence[str]
) -> np.ndarray:
    """Macro-F1 of each product's rows (the products in sorted order)."""
    labels, group_array = np.array(y), np.array(groups)
    return np.array(
        [
            _macro_f1(labels[group_array == g], probabilities[group_array == g])
            for g in sorted(set(groups))
        ]
    )


def _select_groups(
    x: np.ndarray,
    y: Sequence[str],
    groups: Sequence[str],
    columns: Callable[[Sequence[str]], list[int]],
    *,
    c: float,
) -> tuple[list[str], np.ndarray, list[dict[str, Any]], float, dict[str, float]]:
    """The groups the combiner weighs (module docstring): (kept, their cross-validated
    probabilities, the removals in order, the macro-F1 with every learned group, the macro-F1
    without each)."""
    from scipy.stats import t as student_t

    eliminated: list[dict[str, Any]] = []
    # With nothing varying at all, the first group stays, so the fit learns the label shares.
    kept = [g for g in LEARNED_GROUPS if np.ptp(x[:, columns([g])], axis=0).any()] or [
        LEARNED_GROUPS[0]
    ]
    for group in LEARNED_GROUPS:
        if group not in kept:
            eliminated.append({"group": group, "reason": "its features never vary here"})

    def cv(names: Sequence[str]) -> tuple[float, np.ndarray, np.ndarray]:
        probabilities = cv_probabilities(x[:, columns(names)], y, groups, c=c)
        f1 = _macro_f1(y, probabilities)
        return f1, _per_product_f1(y, probabilities, groups), probabilities

    current, per_product, held_out = cv(kept)
    with_all = current
    trials = {g: cv([k for k in kept if k != g]) for g in kept} if len(kept) > 1 else {}
    without = {g: round(score, 4) for g, (score, _, _) in trials.items()}
    products = len(per_product)
    while len(kept) > 1 and products > 2:
        # One-sided paired t over the held-out products: does removing the group raise their
        # macro-F1 beyond chance, with the chance of any of the len(kept) groups tried doing so
        # by luck held at ALPHA (Bonferroni)?
        critical = float(student_t.ppf(1 - ALPHA / len(kept), products - 1))
        gains = {g: trials[g][1] - per_product for g in kept}
        stats = {
            g: float(d.mean() / (d.std(ddof=1) / np.sqrt(products))) if d.std(ddof=1) > 0 else 0.0
            for g, d in gains.items()
        }
        group = max(kept, key=lambda g: (stats[g], kept.index(g)))
        if stats[group] <= critical or trials[group][0] < current:
            break
        eliminated.append(
            {"group": group, "macro_f1_before": round(current, 4),
             "macro_f1_after": round(trials[group][0], 4), "t": round(stats[group], 2),
             "t_needed": round(critical, 2)}
        )  # fmt: skip
        kept.remove(group)
        current, per_product, held_out = trials[group]
        if len(kept) > 1:
            trials = {g: cv([k for k in kept if k != g]) for g in kept}
    return kept, held_out, eliminated, with_all, without


def fit_combiner(
    x: np.ndarray,
    y: Sequence[str],
    groups: Sequence[str],
    *,
    c: float = 1.0,
    vectors: np.ndarray | None = None,
) -> LearnedCombiner:
    """Fit on the full layout ``x`` (rows of out-of-fold signal scores, ``FEATURES`` columns),
    on the learned groups less those whose removal raises the macro-F1 cross-validated by
    ``groups`` (products) beyond chance (module docstring). With ``vectors`` (the
    rows' centred vectors), the weight of each ticket's nearest tickets is learned too
    (``neighbours.fit_weight``, on the kept groups' cross-validated probabilities)."""
    x = np.asarray(x, dtype=np.float64)

    def columns(kept: Sequence[str]) -> list[int]:
        return [i for i, name in enumerate(FEATURES) if GROUP_OF[name] in kept]

    kept, held_out, eliminated, with_all, without = _select_groups(x, y, groups, columns, c=c)
    index = columns(kept)
    with_kept = _macro_f1(y, held_out)
    neighbour_weight, by_weight = 0.0, dict[str, float]()
    final = held_out  # each row's cross-validated probabilities as a refresh would show them
    if vectors is not None:
        neighbour_weight, by_weight, final = fit_weight(held_out, vectors, y, groups, CATEGORIES)
    uncertain = fit_uncertain_below(
        final.max(axis=1), np.array(CATEGORIES)[final.argmax(axis=1)] == np.array(y)
    )
    model, mean, scale = _fit(x[:, index], y, c)
    coef, intercept = model.coef_, model.intercept_
    if coef.shape[0] == 1:  # two classes: softmax over (0, w.x + b) is the same sigmoid
        coef = np.vstack([np.zeros_like(coef), coef])
        intercept = np.concatenate([[0.0], intercept])
    names = [FEATURES[i] for i in index]
    classes = [str(label) for label in model.classes_]
    return LearnedCombiner(
        classes=classes,
        feature_names=names,
        coef=coef,
        intercept=intercept,
        mean=mean,
        scale=scale,
        neighbour_weight=neighbour_weight,
        uncertain_below=uncertain["below"],
        card={
            "purpose": "Combines the signal scores and the ticket's context into one category "
            "and confidence; learned, replacing the hand-set TRIAGE_CATEGORIZE_WEIGHT_*.",
            "model": f"sklearn LogisticRegression (multinomial), C={c}, standardised features",
            "feature_layout": FEATURE_GROUPS,
            "features_kept": names,
            "coefficients": {
                cls: dict(zip(names, map(float, row), strict=True))
                for cls, row in zip(classes, coef, strict=True)
            },
            "cv": {
                "folds": "one per product (leave one product out), on out-of-fold signal scores",
                "rows": len(y),
                "products": len(set(groups)),
                "macro_f1_all_groups": round(with_all, 4),
                "macro_f1_without": {g: round(v, 4) for g, v in without.items()},
                "backward_elimination": eliminated,
                "macro_f1_kept": round(with_kept, 4),
            },
            "groups_kept": kept,
            "neighbours": {
                "k": NEIGHBOURS,
                "weight": neighbour_weight,
                "macro_f1_by_weight": by_weight,
                "how": "each held-out product's cross-validated probabilities mixed with its "
                "rows' nearest rows' (triage/categorize/neighbours.py); the best weight, ties "
                "to the smaller",
            }
            if vectors is not None
            else None,
            "uncertain": {
                **uncertain,
                "how": "isotonic fit of the cross-validated decisions' accuracy on their "
                f"confidence; below 'below' it is under {ACCURACY:g} "
                "(triage/categorize/abstain.py)",
            },
            "groups_without_weight": {
                step["group"]: (
                    step.get("reason")
                    or f"removing it raised the held-out products' macro-F1 beyond chance "
                    f"(paired t {step['t']:.2f} > {step['t_needed']:.2f}; "
                    f"{step['macro_f1_after']:.3f} vs {step['macro_f1_before']:.3f})"
                )
                + (
                    "; the hand-set TRIAGE_CATEGORIZE_REACTION_PRIOR stands in for it "
                    "(triage/categorize/learned.py)"
                    if step["group"] == "reaction"
                    else ""
                )
                for step in eliminated
            },
        },
    )
