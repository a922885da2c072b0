"""The word lists and phrase patterns the unit rules read: greetings, sign-offs, clause
splitters, topic openers, words that say nothing about a topic."""

from __future__ import annotations

import re

_GREETINGS = frozenset({"hi", "hello", "hey", "dear", "hiya", "greetings", "howdy", "yo"})
_DAY_PARTS = frozenset({"morning", "afternoon", "evening", "day"})
_ADDRESSEES = frozenset(
    {"team", "all", "there", "everyone", "everybody", "folks", "guys", "support", "sir", "madam"}
)
# Whole-segment matches on the lowercased words of a segment (placeholders and title-case words
# after the first read as "<person>"), so "Thanks for the quick fix, but ..." is never a sign-off.
_SIGNOFF = re.compile(
    r"(?:many |big )?"
    r"(?:thanks|thank you|thx|ty|cheers|best|regards|(?:kind|kindest|warm|warmest|best) regards"
    r"|best wishes|sincerely|yours sincerely|sincerely yours|yours truly|all the best|br|kr"
    r"|take care|talk soon|have a (?:nice|good|great) (?:day|weekend))"
    r"(?: (?:so much|a lot|again|in advance|very much))?"
    r"(?: for (?:your |the |all (?:the |your )?)?(?:quick |fast |kind )?"
    r"(?:help|time|support|assistance|patience|attention|reply|response|understanding|work))?"
    r"(?: (?:team|all|everyone|guys|folks|<person>))*"
)
_PLEASANTRY = re.compile(
    r"(?:i )?hope (?:you|this|all|everything|your)\b.{0,40}"
    r"|(?:sent from my|get outlook for) .{0,40}"
    # Introductions: "I'm <PERSON> from Acme", "This is <PERSON>, data lead at Acme".
    r"|(?:i 'm|i am|this is|it 's|my name is|name) <person>(?: <person>)*"
    r"(?: (?:from|at|here|with|and i 'm|, the|the|a|an)(?: <person>| [\w']+){0,4})?"
)
_CONTACT_WORDS = frozenset(
    {"contact", "email", "e", "mail", "phone", "tel", "mobile", "cell", "number", "name", "me",
     "my", "at", "on", "or", "and", "via", "is", "reach", "call", "write", "to", "you", "can",
     "the", "here", "details", "info"}
)  # fmt: skip
_SENTENCE_END = frozenset({".", "!", "?", "…"})
_OPENERS = frozenset({"(", "[", "{"})

# Conservative clause split: only these words, only when both sides are full statements and the
# right side opens with a fresh subject. Anaphoric openers ("it", "this", "they") refer back to
# the left side, so they mean the same thing and never split.
# "but", "however", "yet" are left out: a contrast usually says more about the same thing ("I paid
# in euros but the rate applied is wrong").
_SPLIT_WORDS = frozenset({"and", "plus", ";"})
_SUBJECT_STARTERS = frozenset(
    {
        "the", "my", "our", "your", "their", "all", "some", "every", "most", "many", "several",
        "no", "these", "those", "another", "other", "there", "a", "an", "each", "any",
    }
)  # fmt: skip
_DETERMINERS = _SUBJECT_STARTERS | {"this", "that", "its", "his", "her"}
# Words on spaCy's stop list that name what feedback is about ("how can I top up?", "the chart is
# empty", "the back button", "the site is down"): content words for units and keywords.
_NAMING_STOP_WORDS = frozenset(
    {
        "top", "bottom", "front", "back", "side", "empty", "full", "call", "move", "show",
        "name", "amount", "part", "first", "last", "next", "down", "used", "using",
    }
)  # fmt: skip
# Words that open a new topic: a statement starting with them is never joined to the one before
# by similarity ("Also, the login page ...", "PS: ..."), and neither is a list item.
_TOPIC_OPENERS = frozenset(
    {
        "also", "additionally", "another", "separately", "unrelated", "ps", "p.s", "p.s.",
        "plus", "besides", "btw", "secondly", "thirdly", "furthermore", "moreover", "lastly",
    }
)  # fmt: skip
_TOPIC_OPENER_PAIRS = frozenset(
    {("and", "also"), ("and", "another"), ("in", "addition"), ("on", "top"), ("one", "more"),
     ("other", "than"), ("oh", "and"), ("by", "the")}
)  # fmt: skip
# A sentence that opens by pointing back ("It was lost before", "This is urgent", "How is this
# possible?") continues the statement before it.
_ANAPHORS = frozenset({"it", "this", "that", "they", "them", "these", "those", "its"})
_BULLETS = frozenset({"-", "*", "•", "–", "—", "+"})
# Lemmas that say nothing about what a statement is about: asking for help, waiting, time.
# "Where is my new card? I have been waiting a week!" is one statement about a card; a segment
# needs ``min_topic_words`` lemmas outside this list (and the stop words) to stand on its own.
_GENERIC_LEMMAS = frozenset(
    {
        "help", "wait", "week", "day", "hour", "minute", "month", "year", "time", "ago", "today",
        "yesterday", "tomorrow", "morning", "evening", "night", "fix", "issue", "problem",
        "happen", "go", "please", "know", "think", "want", "need", "like", "get", "tell", "look",
        "see", "sure", "way", "thing", "reason", "possible", "able", "try", "still", "already",
        "just", "really", "long", "soon", "take", "make", "let", "ok", "okay", "thank", "thanks",
        "question", "ask", "wonder", "explain", "understand", "guy", "lot", "bit", "later",
        "early", "late", "sorry", "hey", "hello", "hi", "yes", "no", "maybe", "anymore",
    }
)  # fmt: skip
# Without a tagger, a clause "has a verb" when it holds one of these or an inflected form the
# lookup table knows (-ed, or -s right after a noun-like word: "the chart loads").
_VERB_CUES = frozenset(
    {
        "is", "are", "was", "were", "am", "be", "been", "being", "do", "does", "did", "n't",
        "has", "have", "had", "can", "ca", "could", "will", "wo", "would", "should", "shall",
        "may", "might", "must", "keeps", "seems", "looks", "shows", "works", "breaks", "fails",
        "crashes", "loads", "takes", "gets", "says", "returns", "gives", "makes", "needs",
        "stopped", "broke", "went", "came", "gave", "took", "made",
    }
)  # fmt: skip
