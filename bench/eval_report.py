"""The Markdown table of ``make eval`` and the bars of issue 13 it is judged by."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.eval_score import (
    CATEGORIES,
    bootstrap_interval,
    by_product,
    category_scores,
    title_quality,
)

# (name, comparison, target, where the figure is in the results); a figure that was not
# measured in this run shows as "not run".
BARS: list[tuple[str, str, float, Callable[[dict[str, Any]], float]]] = [
    ("feedback-dev LOPO macro-F1 (pooled, per ticket)", ">=", 0.80,
     lambda r: r["feedback_dev"]["pooled"]["categories"]["macro_f1"]),
    ("feedback-dev LOPO issue ARI (mean over products)", ">=", 0.60,
     lambda r: r["feedback_dev"]["mean"]["ari"]),
    ("feedback-dev tickets without a category", "<=", 0,
     lambda r: r["feedback_dev"]["pooled"]["categories"]["without_category"]),
    ("fixtures held-out macro-F1 (user path)", ">=", 0.85,
     lambda r: r["fixtures"]["categories"]["macro_f1"]),
    ("HWU64 ARI", ">=", 0.50, lambda r: r["clustering"]["sets"]["HWU64"]["ours"]["ari"]),
    ("HWU64 NMI", ">=", 0.78, lambda r: r["clustering"]["sets"]["HWU64"]["ours"]["nmi"]),
    ("HWU64 unassigned", "<=", 0.05,
     lambda r: r["clustering"]["sets"]["HWU64"]["ours"]["unassigned"]),
    *[
        bar
        for name in ("Banking77 train", "Banking77 test")
        for bar in (
            (f"{name} ARI", ">=", 0.50,
             lambda r, n=name: r["clustering"]["sets"][n]["ours"]["ari"]),
            (f"{name} NMI", ">=", 0.80,
             lambda r, n=name: r["clustering"]["sets"][n]["ours"]["nmi"]),
            (f"{name} unassigned", "<=", 0.05,
             lambda r, n=name: r["clustering"]["sets"][n]["ours"]["unassigned"]),
        )
    ],
    ("feedback-dev title quality", ">=", 0.80, lambda r: r["titles"]["share"]),
]  # fmt: skip


def _macro_f1(tickets: list[dict[str, Any]]) -> float:
    gold, predicted = [t["gold_category"] for t in tickets], [t["category"] for t in tickets]
    return float(category_scores(gold, predicted)["macro_f1"])


def _title_share(issues: list[dict[str, Any]]) -> float:
    own, nearest = [i["own"] for i in issues], [i["nearest"] for i in issues]
    return float(title_quality(own, nearest)["share"])


# Bars whose figure is a sample of products, and how to recompute it from the results' items
# (grouped by product) for ``bootstrap_interval``; the clustering bars are means over seeds of
# fixed public sets and get none.
INTERVALS: dict[str, Callable[[dict[str, Any]], tuple[list[list[Any]], Callable[..., float]]]] = {
    "feedback-dev LOPO macro-F1 (pooled, per ticket)": lambda r: (
        [fold["tickets"] for fold in r["feedback_dev"]["folds"]], _macro_f1),
    "feedback-dev LOPO issue ARI (mean over products)": lambda r: (
        [[fold["issues"]["ari"]] for fold in r["feedback_dev"]["folds"]],
        lambda values: float(sum(values) / len(values))),
    "fixtures held-out macro-F1 (user path)": lambda r: (
        list(by_product(r["fixtures"]["tickets"]).values()), _macro_f1),
    "feedback-dev title quality": lambda r: (
        [fold["issue_list"] for fold in r["feedback_dev"]["folds"] if fold["issue_list"]],
        _title_share),
}  # fmt: skip


def bars(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each bar with its figure, whether it is met, and (for the bars measured on a sample of
    products) the 95% bootstrap interval over products and whether all of it clears the bar."""
    rows = []
    for name, comparison, target, figure in BARS:
        try:
            value = figure(results)
        except KeyError:
            value = None
        met = None
        if value is not None and value == value:
            met = value >= target if comparison == ">=" else value <= target
        interval, clears = None, None
        if met is not None and name in INTERVALS:
            try:
                groups, statistic = INTERVALS[name](results)
            except KeyError:
                groups = []
            if len(groups) > 1:
                interval = bootstrap_interval(groups, statistic)
                clears = interval[0] >= target if comparison == ">=" else interval[1] <= target
        rows.append(
            {"bar": name, "comparison": comparison, "target": target, "value": value, "met": met,
             "interval": interval, "interval_clears": clears}
        )  # fmt: skip
    return rows


def _f(value: float | None, digits: int = 3) -> str:
    return "-" if value is None or value != value else f"{value:.{digits}f}"


def _pct(value: float | None) -> str:
    return "-" if value is None or value != value else f"{value:.1%}"


def _feedback_dev(section: dict[str, Any]) -> list[str]:
    lines = [
        "## feedback-dev, leave one product out, through the user path",
        "",
        "Train on the other seven products and fixtures' train split; ingest the product's tickets "
        "(gold stripped) and its models' outputs; `triage run`; score the export per ticket.",
        "",
        "| product | tickets | macro-F1 | ui | data | model | expectation | no category "
        "| issue ARI | NMI | issues / true | purity | unassigned | seconds |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: | ---: |",
    ]
    for fold in section["folds"]:
        c, i = fold["categories"], fold["issues"]
        lines.append(
            f"| {fold['product']} | {c['tickets']} | {_f(c['macro_f1'])} | "
            + " | ".join(_f(c["per_class"][k]["f1"], 2) for k in CATEGORIES)
            + f" | {c['without_category']} | {_f(i['ari'])} | {_f(i['nmi'])} "
            f"| {i['issues']} / {i['gold_issues']} | {_f(i['purity'], 2)} "
            f"| {_pct(fold['unassigned'])} | {fold['seconds']:.0f} |"
        )
    mean, pooled = section["mean"], section["pooled"]
    c, i = pooled["categories"], pooled["issues"]
    lines.append(
        f"| **mean of {len(section['folds'])}** | | {_f(mean['macro_f1'])} | "
        + " | ".join(_f(mean["per_class_f1"][k], 2) for k in CATEGORIES)
        + f" | | {_f(mean['ari'])} | {_f(mean['nmi'])} | | {_f(mean['purity'], 2)} "
        f"| {_pct(mean['unassigned'])} | |"
    )
    lines.append(
        f"| **pooled** | {c['tickets']} | {_f(c['macro_f1'])} | "
        + " | ".join(_f(c["per_class"][k]["f1"], 2) for k in CATEGORIES)
        + f" | {c['without_category']} | {_f(i['ari'])}* | {_f(i['nmi'])}* "
        f"| {i['issues']} / {i['gold_issues']} | {_f(i['purity'], 2)} "
        f"| {_pct(pooled['unassigned'])} | |"
    )
    lines += [
        "",
        "\\* pooled ARI/NMI: issues of different products never share a cluster (one database "
        "a fold), which flatters them; the mean over products is the figure judged.",
    ]
    if "issue_category" in c:
        lines.append(
            f"\nThe issue's category (`issue_category`) as the ticket's: pooled macro-F1 "
            f"{_f(c['issue_category']['macro_f1'])}, "
            f"{c['issue_category']['without_category']} tickets without one."
        )
    if "issue_weight" in section:
        w = section["issue_weight"]
        by = ", ".join(f"{k}: {_f(v)}" for k, v in w["by_weight"].items())
        chosen = sorted(set(w["chosen_without"].values()))
        lines.append(
            f"\nA ticket hears the other tickets of its issue (`TRIAGE_CATEGORIZE_ISSUE_WEIGHT`; "
            f"{w['tickets_heard']} tickets heard one): pooled macro-F1 by weight, worked out from "
            f"these runs, {by}. Chosen on the other seven products for each product: "
            f"{', '.join(f'{x:g}' for x in chosen)}; every product scored at the weight chosen "
            f"without it (nested): {_f(w['nested_macro_f1'])}."
        )
    if "uncertain" in c:
        u = c["uncertain"]
        lines.append(
            f"\nSaid their category is uncertain (`category_uncertain`, the confidence below "
            f"which the fold's combiner's cross-validated decisions were more often wrong than "
            f"right): {u['tickets']} tickets ({_pct(u['share'])}), right "
            f"{_pct(u['accuracy_uncertain'])} of the time; the others right "
            f"{_pct(u['accuracy_rest'])}."
        )
    return lines


def _titles(section: dict[str, Any]) -> list[str]:
    per = ", ".join(f"{p} {t['good']}/{t['issues']}" for p, t in section["per_product"].items())
    return [
        "## Title quality on feedback-dev",
        "",
        f"**{section['good']} of {section['issues']} issues ({_pct(section['share'])})** have a "
        "title closest to their own gold issue's description among the product's "
        f"({section['embedder']}): {per}.",
    ]


def _fixtures(section: dict[str, Any]) -> list[str]:
    c = section["categories"]
    return [
        "## fixtures held out (labelled.jsonl and chat/labelled.jsonl), through the user path",
        "",
        "| tickets | macro-F1 | ui | data | model | expectation | no category | issues "
        "| no issue | unassigned | seconds |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| {c['tickets']} | {_f(c['macro_f1'])} | "
        + " | ".join(_f(c["per_class"][k]["f1"], 2) for k in CATEGORIES)
        + f" | {c['without_category']} | {section['issues']} | {section['without_issue']} "
        f"| {_pct(section['unassigned'])} | {section['seconds']:.0f} |",
        "",
        "Macro-F1 by product: " + _by_product(section["tickets"]) + "." + _by_weight(section),
    ]


def _by_weight(section: dict[str, Any]) -> str:
    """What the macro-F1 would have been at each issue weight, when tickets heard their issue."""
    weights = section.get("issue_weight")
    if not weights or not weights["tickets_heard"]:
        return ""
    by = weights["by_weight"]
    return (
        " At each weight a ticket could give its issue's other tickets (worked out from this "
        "run): " + ", ".join(f"{k}: {_f(v)}" for k, v in by.items()) + "."
    )


def _by_product(tickets: list[dict[str, Any]]) -> str:
    return ", ".join(f"{p} {_f(_macro_f1(rows))}" for p, rows in by_product(tickets).items())


def _reactions(section: dict[str, Any]) -> list[str]:
    first = next(iter(section["runs"].values()))
    support = ", ".join(f"{first['per_class'][k]['support']} {k}" for k in CATEGORIES)
    lines = [
        f"## Reactions to a chatbot's answers ({section['items']}, "
        "bench/data/chat_reactions.json), shipped classifier",
        "",
        f"Each reaction names the bare answer it reacts to; recall per class ({support}).",
        "",
        "| typed | macro-F1 | ui | data | model | expectation | no category | seconds |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, run in section["runs"].items():
        lines.append(
            f"| {name} | {_f(run['macro_f1'])} | "
            + " | ".join(_f(run["per_class"][k]["recall"], 2) for k in CATEGORIES)
            + f" | {run['without_category']} | {run['seconds']:.0f} |"
        )
    return lines


def _clustering(section: dict[str, Any]) -> list[str]:
    lines = [
        f"## Clustering at every size (same embeddings for both recipes, {section['embedder']})",
        "",
        "Our figures are the mean over the seeds in the last column (which units HDBSCAN "
        "sees, and PCA's), with each seed's NMI; BERTopic's recipe ran once, unseeded.",
        "",
        "| set | texts | intents | recipe | ARI | NMI | unassigned | clusters | seconds "
        "| NMI by seed |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    names = {"ours": "triage Clusterer", "bertopic": "BERTopic default (UMAP + HDBSCAN)"}
    for name, row in section["sets"].items():
        for key, recipe in names.items():
            if key in row:
                r = row[key]
                lines.append(
                    f"| {name} | {row['texts']:,} | {row['intents']} | {recipe} | {_f(r['ari'])} "
                    f"| {_f(r['nmi'])} | {_pct(r['unassigned'])} | {r['clusters']:.0f} "
                    f"| {r['seconds']:.2f} | {_seeds(r)} |"
                )
    small = section.get("small") or {}
    if small:
        lines += [
            "",
            "Small samples, as a team's first few hundred tickets are: intents x texts of each, "
            "drawn at random three times from the set; the mean over the draws.",
            "",
            "| sample | texts | recipe | ARI | NMI | unassigned | clusters |",
            "| --- | ---: | --- | ---: | ---: | ---: | ---: |",
        ]
        for name, row in small.items():
            for key, recipe in names.items():
                if key in row:
                    r = row[key]
                    lines.append(
                        f"| {name} | {row['texts']} | {recipe} | {_f(r['ari'])} "
                        f"| {_f(r['nmi'])} | {_pct(r['unassigned'])} | {r['clusters']:.1f} |"
                    )
    return lines


def _seeds(figures: dict[str, Any]) -> str:
    """Each seed's NMI ("0.798 0.806 ..."), or "-" for a recipe run once."""
    return " ".join(_f(run["nmi"]) for run in figures.get("seeds", [])) or "-"


def _bars(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "## Bars (issue 13)",
        "",
        "| bar | target | measured | met | 95% interval over products | all of it clears |",
        "| --- | ---: | ---: | --- | ---: | --- |",
    ]
    for row in rows:
        value = row["value"]
        percent = "unassigned" in row["bar"] or "title" in row["bar"]

        def shown(figure: float, percent: bool = percent) -> str:
            if percent:
                return _pct(figure)
            return str(figure) if isinstance(figure, int) else _f(figure)

        target = row["target"]
        target_text = f"{target:.0%}" if "unassigned" in row["bar"] else f"{target:g}"
        met = {True: "yes", False: "**no**", None: "-"}[row["met"]]
        interval = row.get("interval")
        spread = f"{shown(interval[0])} to {shown(interval[1])}" if interval else "-"
        clears = {True: "yes", False: "no", None: "-"}[row.get("interval_clears")]
        lines.append(
            f"| {row['bar']} | {row['comparison']} {target_text} | "
            f"{'not run' if value is None else shown(value)} | {met} | {spread} | {clears} |"
        )
    lines += [
        "",
        "The interval resamples the products (the unit a new customer is) with replacement, "
        "1,000 times; it leaves out the retraining's own noise, so it is a floor on the "
        "uncertainty. A bar met with an interval that does not clear it can fail on a rerun or "
        "on another set of products.",
    ]
    return lines


def render(results: dict[str, Any]) -> str:
    settings = ", ".join(f"{k}={v}" for k, v in results["settings_overrides"].items())
    seconds = ", ".join(f"{k} {v:.0f} s" for k, v in results["seconds"].items())
    lines = [
        f"# triage eval, {results['date']}",
        "",
        f"Commit {results['commit']}; settings: {settings or 'defaults'}; time: {seconds}.",
    ]
    if "training" in results:
        t = results["training"]
        lines += [
            "",
            f"Every fold trained on {t['share']:.0%} of its training rows, drawn at random "
            f"(seed {t['seed']}): these figures measure the retraining's own noise, not the "
            "shipped recipe.",
        ]
    if "feedback_dev" in results:
        lines += ["", *_feedback_dev(results["feedback_dev"])]
    if "titles" in results:
        lines += ["", *_titles(results["titles"])]
    if "fixtures" in results:
        lines += ["", *_fixtures(results["fixtures"])]
    if "reactions" in results:
        lines += ["", *_reactions(results["reactions"])]
    if "clustering" in results:
        lines += ["", *_clustering(results["clustering"])]
    lines += ["", *_bars(results["bars"])]
    return "\n".join(lines)
