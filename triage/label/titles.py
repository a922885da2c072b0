"""Titles: the clause of an issue's own statements that best names the thing and its failure.

Every clause (a sentence, or a run of its comma- and "because"-separated pieces, openers
stripped) of the issue's most central distinct statements is a candidate. A candidate scores for
being representative: its statement is close to the issue's centre and far from the other
issues' centres, it holds the issue's c-TF-IDF keywords, and its own words point at this issue
rather than at another (``wordspace``: a clause cut from a statement about two things is judged
by the words it kept, so a reader comparing titles tells the issues apart). With an embedder,
the few best clauses are embedded and judged the same way on what they mean (``meaning``):
near their own issue's centroid, far from the nearest other's. It scores for stating
a problem: a failure word, a subject that is not a pronoun, no "works fine". A request, a
pleasantry, a question about nothing broken or a bit of context (fewer than two content words,
mostly digits, no verb and no failure, a dangling end, a report that someone asked or tried with
nothing after it, a phrase opening with a preposition and no verb) is never a candidate; what a
request asks for ("dark theme for the editor") is, behind every statement of a problem, so an
issue made only of wishes is named by the wish. Nothing is composed: every word of a title is a
word a customer wrote.

Without a tagger (the pipeline is ``spacy.blank("en")`` with lookup lemmas), "content word" and
"predicate" come from tokens, stop words and the project's word lists.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from triage.label.clauses import Clause, clauses, quote_key, words
from triage.label.meaning import Meaning
from triage.label.wishes import PLEASANTRY, is_request, request_core
from triage.label.words import (
    CUSTOMER_ACTIONS,
    DANGLING_ENDINGS,
    FAILURE_LEMMAS,
    FIRST_PERSON,
    META_WORDS,
    MODAL_OPENERS,
    NEGATIONS,
    OBJECT_VERBS,
    POSITIVE_WORDS,
    PREPOSITIONS,
    PRONOUN_SUBJECTS,
    QUESTION_OPENERS,
)
from triage.label.wordspace import WordSpace
from triage.lexicon import lemma_docs
from triage.placeholders import PLACEHOLDER
from triage.preprocess.words import _GENERIC_LEMMAS, _NAMING_STOP_WORDS, _VERB_CUES

if TYPE_CHECKING:
    from spacy.tokens import Doc, Token

_URL = re.compile(r"\w+://|www\.", re.IGNORECASE)
_DIGIT = re.compile(r"\d")
_PAST_FORMS = frozenset({"lost", "broke", "went", "came", "gave", "took", "made", "got", "kept"})
# A clause that is all one quotation ("'suspected card testing'") is a label someone saw, not a
# statement of what went wrong.
_QUOTED = re.compile(r"""^(['"‘“]).*(['"’”])$""")


# How much each property counts. Keyword coverage and centrality are on [0, 1]; the margin over
# the nearest other issue is a cosine difference, usually within [-0.1, 0.3].
W_KEYWORDS = 2.0
W_CENTRAL = 0.5
W_MARGIN = 1.5
# The margin of where a clause's own words point (``WordSpace``), a cosine difference as above.
W_WORDS = 6.0
W_FAILURE = 0.25
W_POSITIVE = 1.0  # says something works and nothing fails: the contrast, not the problem
W_PRONOUN = 0.35
W_QUESTION = 0.35
W_REQUEST = 1.0  # a wish's core only names an issue when no statement of a problem does
W_LENGTH = 0.03  # per word beyond the comfortable length
# The margin of what the clause itself means (``Meaning``): the same cosine difference as the
# statement's and the words', on the clause's own embedding, so it counts as much as the words'.
# Only each issue's ``MEANING_CANDIDATES`` best by the rest are embedded: the others lose.
W_MEANING = W_WORDS
MEANING_CANDIDATES = 5
COMFORTABLE_WORDS = 10
MIN_WORDS = 3


@dataclass(frozen=True)
class TitleContext:
    """What the candidates of one issue are scored against."""

    keywords: list[tuple[str, float]]  # c-TF-IDF (term, score), best first
    central: np.ndarray  # member rows, most central first
    closeness: np.ndarray  # cosine of each row of ``central`` to the issue's centroid
    margin: np.ndarray  # that cosine minus the row's cosine to the nearest other centroid
    position: int = 0  # the issue's row among the centroids of ``WordSpace``


@dataclass(frozen=True)
class _Candidate:
    text: str
    row: int  # position in ``TitleContext.central``
    question: bool
    request: bool  # the core of a request: the thing wanted, not a problem stated


def choose_titles(
    contexts: dict[int, TitleContext],
    texts: Sequence[str],
    *,
    max_words: int,
    candidates: int,
    words: WordSpace | None = None,
    meaning: Meaning | None = None,
) -> dict[int, str]:
    """A title per issue from the clauses of its ``candidates`` most central distinct
    statements; with ``words``, a clause whose own words point at its issue rather than at
    another one scores higher."""
    pools = {
        issue: _pool(context, texts, max_words=max_words, candidates=candidates)
        for issue, context in contexts.items()
    }
    every = [(issue, candidate) for issue, pool in pools.items() for candidate in pool]
    # One lemmatising pass over every candidate of every issue.
    docs = lemma_docs([candidate.text for _, candidate in every])
    scores = np.array(
        [_score(c, doc, contexts[issue]) for (issue, c), doc in zip(every, docs, strict=True)]
    )
    if words is not None and every:
        scores += W_WORDS * words.margins(
            [{t.lemma_ for t in doc if t.is_alpha} for doc in docs],
            [contexts[issue].position for issue, _ in every],
        )
    if meaning is not None and every:
        margins = _meaning_margins(meaning, every, scores, contexts, texts)
        scores += W_MEANING * margins
        scores[_names_another(every, margins)] = -np.inf
    titles = _distinct(every, scores)
    return {
        issue: titles.get(issue) or _from_keywords(context.keywords)
        for issue, context in contexts.items()
    }


def _names_another(every: Sequence[tuple[int, _Candidate]], margins: np.ndarray) -> np.ndarray:
    """Candidates whose own embedding is no closer to their issue's centroid than to another
    issue's (``Meaning.margins`` <= 0), in an issue with a candidate that is: such a clause
    names the other issue ("action items get cut off after five", said in passing in a
    complaint about invented action items), and a reader of the list would look for it there."""
    issues = np.array([issue for issue, _ in every])
    own = np.isfinite(margins) & (margins > 0)
    named = np.isin(issues, issues[own])
    return named & np.isfinite(margins) & (margins <= 0)


def _distinct(every: Sequence[tuple[int, _Candidate]], scores: np.ndarray) -> dict[int, str]:
    """Each issue's best candidate by ``scores``, no two issues with the same title: candidates
    are taken best first, so where two issues' best is one clause (a statement repeated in
    both), the issue it scores higher in keeps it and the other takes its next best. Ties go to
    the more central candidate (``every`` is in pool order)."""
    titles: dict[int, str] = {}
    taken: set[str] = set()
    finite = np.flatnonzero(np.isfinite(scores)).tolist()
    for i in sorted(finite, key=lambda i: (-scores[i], i)):
        issue, candidate = every[i]
        title = _headline(candidate.text)
        if issue not in titles and title.lower() not in taken:
            titles[issue] = title
            taken.add(title.lower())
    return titles


def _meaning_margins(
    meaning: Meaning,
    every: Sequence[tuple[int, _Candidate]],
    scores: np.ndarray,
    contexts: dict[int, TitleContext],
    texts: Sequence[str],
) -> np.ndarray:
    """``Meaning.margins`` of each issue's ``MEANING_CANDIDATES`` best candidates by
    ``scores`` (most central first on ties); -inf for the rest, which lose."""
    best: dict[int, list[int]] = {}
    for i in sorted(np.flatnonzero(np.isfinite(scores)).tolist(), key=lambda i: -scores[i]):
        kept = best.setdefault(every[i][0], [])
        if len(kept) < MEANING_CANDIDATES:
            kept.append(i)
    picked = sorted(i for rows in best.values() for i in rows)
    margins = np.full(len(every), -np.inf)
    if picked:
        chosen = [every[i] for i in picked]
        units = [int(contexts[issue].central[c.row]) for issue, c in chosen]
        margins[picked] = meaning.margins(
            [c.text for _, c in chosen],
            # A clause that is its whole statement keeps the statement's vector.
            [u if c.text == texts[u] else None for (_, c), u in zip(chosen, units, strict=True)],
            [contexts[issue].position for issue, _ in chosen],
        )
    return margins


def _pool(
    context: TitleContext, texts: Sequence[str], *, max_words: int, candidates: int
) -> list[_Candidate]:
    """Clauses of the most central statements, a statement said twice read once (a template
    repeated by many tickets would otherwise fill the pool)."""
    keep = frozenset(w for term, _ in context.keywords for w in term.split())
    pool: list[_Candidate] = []
    statements: set[str] = set()
    seen: set[str] = set()
    for row, index in enumerate(context.central):
        key = quote_key(texts[index])
        if key in statements:
            continue
        statements.add(key)
        if len(statements) > candidates:
            break
        for clause in clauses(texts[index], max_words=max_words, keep=keep):
            request = False
            if not _plausible(clause):
                # A request still says what is wanted: its core ("pin products to the top")
                # is a candidate, behind any statement of a problem.
                core = request_core(clause.text)
                if not core or not _plausible(Clause(core, False)):
                    continue
                clause, request = Clause(core, False), True
            if clause.text.lower() not in seen:
                seen.add(clause.text.lower())
                pool.append(_Candidate(clause.text, row, clause.question, request))
    return pool


def _plausible(clause: Clause) -> bool:
    """Cheap text checks before lemmatising: length, no placeholder or link, no request or
    pleasantry opener, brackets and quotation marks closed."""
    found = words(clause.text)
    return (
        len(found) >= MIN_WORDS
        and not PLACEHOLDER.search(clause.text)
        and not _URL.search(clause.text)
        and not is_request(clause.text)
        and not PLEASANTRY.match(clause.text)
        and found[-1].lower() not in DANGLING_ENDINGS
        and _balanced(clause.text)
        and not _QUOTED.match(clause.text)
    )


def _score(candidate: _Candidate, doc: Doc, context: TitleContext) -> float:
    """How well ``candidate`` names its issue; -inf when it is no statement at all."""
    tokens = [t for t in doc if not (t.is_punct or t.is_space)]
    if not tokens:
        return -np.inf
    lemmas = {t.lemma_ for t in tokens} | {t.lower_ for t in tokens}
    content = [
        t
        for t in tokens
        if t.is_alpha
        and len(t) > 2
        and (not t.is_stop or t.lemma_ in _NAMING_STOP_WORDS)
        and t.lemma_ not in _GENERIC_LEMMAS
        and t.lower_ not in PRONOUN_SUBJECTS
        and t.lemma_ not in META_WORDS
    ]
    numeric = sum(1 for t in tokens if t.like_num or _DIGIT.search(t.text))
    failure = bool(lemmas & FAILURE_LEMMAS)
    opener = tokens[0].lower_
    if opener in MODAL_OPENERS:
        return -np.inf
    # A bit of context, not a statement: under two content words, mostly numbers and versions,
    # or nothing said about anything (no verb, no failure: "Data engineer, writes a lot"). The
    # core of a request needs no verb: "manual merchandising rules" is the thing wanted.
    if opener in PREPOSITIONS:  # "Without the footer": a failure word alone says nothing here
        said = candidate.request or _has_finite_verb(tokens)
    else:
        said = candidate.request or failure or _has_predicate(tokens)
    if len(content) < 2 or numeric * 3 > len(tokens) or not said:
        return -np.inf
    # Someone asked or tried, and what is left out is the point: "Our group keeps asking". Only
    # a verb's form ("asking", "tried", "said"): "checks" or "the request" may be a noun.
    last = tokens[-1]
    if last.lemma_ in OBJECT_VERBS and last.lower_ != last.lemma_ and last.lower_[-1] != "s":
        return -np.inf
    # What the writer will do, and nothing broken besides a negation of it ("We would NOT
    # renew"): a reaction to the issue, not its name.
    reaction = opener in FIRST_PERSON and bool(lemmas & CUSTOMER_ACTIONS)
    if reaction and not lemmas & (FAILURE_LEMMAS - NEGATIONS):
        return -np.inf
    # A question that names nothing broken ("Who the economic buyer is", "What happens is").
    asks = not candidate.request and (candidate.question or opener in QUESTION_OPENERS)
    if asks and not failure:
        return -np.inf
    covered = sum(s for term, s in context.keywords if set(term.split()) <= lemmas)
    total = sum(s for _, s in context.keywords) or 1.0
    closeness = context.closeness[candidate.row] / (float(context.closeness.max()) or 1.0)
    score = (
        W_KEYWORDS * covered / total
        + W_CENTRAL * closeness
        + W_MARGIN * context.margin[candidate.row]
        + W_FAILURE * failure
        - W_POSITIVE * (not failure and bool(lemmas & POSITIVE_WORDS))
        - W_PRONOUN * (opener in PRONOUN_SUBJECTS or _past_tense(tokens))
        - W_QUESTION * asks
        - W_REQUEST * candidate.request
        - W_LENGTH * max(0, len(tokens) - COMFORTABLE_WORDS)
    )
    return float(score)


def _has_predicate(tokens: Sequence[Token]) -> bool:
    """A verb, guessed without a tagger: an auxiliary or common verb form, a failure word, or an
    inflected form the lookup table knows (-ed, -ing, or -s after a content word: "it loads")."""
    for i, token in enumerate(tokens):
        text = token.lower_
        if text in _VERB_CUES or token.lemma_ in FAILURE_LEMMAS - {"no", "not", "n't"}:
            return True
        if token.lemma_ != text and text.endswith(("ed", "ing")):
            return True
        if (
            i
            and text.endswith("s")
            and token.lemma_ != text
            and tokens[i - 1].is_alpha
            and not tokens[i - 1].is_stop
        ):
            return True
    return False


def _has_finite_verb(tokens: Sequence[Token]) -> bool:
    """A verb that makes a statement, not an adjective or a noun in "-ing": an auxiliary or
    common verb form, a past form, or "-s" after a word ("in dark mode it flickers")."""
    for i, token in enumerate(tokens):
        text = token.lower_
        if text in _VERB_CUES or text in _PAST_FORMS:
            return True
        if token.lemma_ != text and (
            text.endswith("ed") or (i and text.endswith("s") and tokens[i - 1].is_alpha)
        ):
            return True
    return False


def _past_tense(tokens: Sequence[Token]) -> bool:
    """A clause opening with a verb's past form ("Lost my text again", "Declined at the hotel")
    has left out its subject: the thing that failed. Before a content word and a verb of its own
    the form is an adjective ("Exported summaries lose ...") and the subject is there."""
    text = tokens[0].lower_
    verb = text in _PAST_FORMS or (text.endswith("ed") and tokens[0].lemma_ != text)
    return verb and (len(tokens) == 1 or tokens[1].is_stop or not _has_predicate(tokens[1:]))


def _headline(clause: str) -> str:
    return clause[:1].upper() + clause[1:]


def _from_keywords(keywords: list[tuple[str, float]]) -> str:
    """When no statement reads as a title: the top keywords, which are the issue's words too."""
    terms: list[str] = []
    for term, _ in keywords:
        if not any(set(term.split()) <= set(t.split()) for t in terms):
            terms.append(term)
        if len(terms) == 3:
            break
    return _headline(", ".join(terms)) if terms else "Unnamed issue"


def _balanced(clause: str) -> bool:
    """No bracket or quotation left open: a clause cut out of a longer quote reads broken."""
    if clause.count("(") != clause.count(")") or clause.count('"') % 2:
        return False
    quotes = sum(
        1
        for i, char in enumerate(clause)
        if char in "'‘’"
        and not (0 < i < len(clause) - 1 and clause[i - 1].isalnum() and clause[i + 1].isalnum())
    )
    return quotes % 2 == 0
