"""Word lists the label stage reads: what opens a request, a question or a bit of context, what
names a failure, and the discourse openers a quote is compared without.

Plain English function words and the common ways customers say something is broken, never a
product's own vocabulary: titles must hold on feedback about products nobody has seen.
"""

from __future__ import annotations

import re

# A clause opening with these asks for something instead of stating a problem ("Could you take a
# look", "Please add dark mode", "Any update on this").
REQUEST_OPENERS = (
    "could you", "can you", "would you", "will you", "could we", "can we", "could i", "can i",
    "may i", "please", "pls", "plz", "kindly", "i'd like", "i would like", "we'd like",
    "we would like", "i'd love", "i would love", "we'd love", "would love", "would like",
    "would really like", "would really love", "i'd really like", "i want", "we want", "i need",
    "we need", "i wish", "we wish", "wish", "it would be", "would be", "would it be",
    "is it possible",
    "is there a way", "is there any", "any chance", "any update", "any news", "let me know",
    "let us know", "make it", "give me", "give us", "add", "allow", "bring back", "consider",
    "maybe", "perhaps", "hoping", "i hope", "we hope", "looking forward", "fix", "i'm asking",
    "asking for", "feature request", "take a look", "have a look", "look into", "stop",
    "don't", "do not", "please don't", "upvote", "vote", "+1", "way to", "option to",
    "ability to", "a way to", "an option to", "the ability to",
)  # fmt: skip
# Pleasantries and reactions: a title they open says nothing about the issue.
PLEASANTRY_OPENERS = (
    "thanks", "thank you", "thx", "cheers", "hi", "hello", "hey", "dear", "good morning",
    "morning", "great", "love", "i love", "we love", "nice", "awesome", "sorry", "apologies",
    "no worries", "ok", "okay", "lol", "ugh", "wow", "sigh", "keep up",
)  # fmt: skip
# A clause opening with these is a question, or the first half of a sentence ("What happens is",
# "Who the economic buyer is").
QUESTION_OPENERS = frozenset(
    {"what", "who", "whom", "whose", "why", "how", "when", "where", "which", "whether", "is", "are",
     "do", "does", "did", "was", "were", "has", "have", "am"}
)  # fmt: skip
# A modal first ("Could the tone be ...", "Should it not ...") asks for something: never a title.
# spaCy splits "can't" into "ca" and "n't", so a complaint that opens with it is not caught here.
MODAL_OPENERS = frozenset({"could", "can", "would", "will", "should", "shall", "may", "might"})
# Subjects that point at something said elsewhere or at the writer, not at the thing that fails
# ("I've confirmed it eight times", "He now switches it off", "It's been 60 days").
PRONOUN_SUBJECTS = frozenset(
    {"i", "i'm", "i've", "i'd", "i'll", "we", "we're", "we've", "he", "she", "they", "they're",
     "you", "you're", "it", "it's", "its", "this", "that", "these", "those", "there", "there's",
     "here", "here's", "which", "someone", "everyone", "nobody", "one", "me", "us", "him",
     "her", "them"}
)  # fmt: skip
# Lemmas (spaCy lookup) and word forms that say something does not work as it should. A title
# names the failure, so a candidate holding one of these is preferred.
FAILURE_LEMMAS = frozenset(
    {
        "not", "n't", "no", "never", "nothing", "none", "without", "cannot", "nobody", "neither",
        "wrong", "broken", "break", "broke", "fail", "failure", "error", "crash", "freeze",
        "frozen", "hang", "stuck", "lose", "lost", "loss", "miss", "missing", "disappear",
        "vanish", "gone", "drop", "ignore", "overwrite", "wipe", "delete", "erase", "duplicate",
        "repeat", "truncate", "cut", "chop", "clip", "strip", "flatten", "collapse", "mangle",
        "garble", "garbled", "corrupt", "scramble", "mix", "swap", "shift", "skip", "reset",
        "revert", "invent", "fabricate", "hallucinate", "contradict", "misread", "misparse",
        "mislabel", "misplace", "mismatch", "stale", "outdated", "old", "obsolete", "slow",
        "late", "stop", "stall", "blank", "empty", "incorrect", "inaccurate", "bad", "useless",
        "unreadable", "unusable", "unresponsive", "dead", "off", "decline", "block", "reject",
        "refuse", "deny", "bug", "buggy", "glitch", "issue", "problem", "fault", "faulty",
        "too", "only", "instead", "still", "anymore", "longer", "unable", "incomplete",
        "inconsistent", "confuse", "confusing", "weird", "odd", "flaky", "hide", "hidden",
        "overlap", "jump", "regress", "regression", "worse", "leak", "timeout", "wreck", "mess",
        "ruin", "misleading", "mistake", "mistranslate", "untranslated", "unsupported", "fake",
        "bogus", "random", "messy", "clunky", "cap", "limit", "flag", "nonsense", "gibberish",
    }
)  # fmt: skip
# What a customer will do about a product, not what the product does: "We would not renew",
# "Our team is switching". Said by the writer (``FIRST_PERSON`` opener), a clause about one of
# these names no failure, even negated; said of the product ("it recommends", "frequently
# bought together") it may.
FIRST_PERSON = frozenset({"i", "we", "our", "my", "us"})
CUSTOMER_ACTIONS = frozenset(
    {"renew", "cancel", "unsubscribe", "subscribe", "leave", "switch", "churn", "recommend",
     "upgrade", "downgrade", "buy", "purchase", "refund", "uninstall", "quit"}
)  # fmt: skip
# The failure words that only negate ("not", "never"): negating a customer's action ("not
# renew") says nothing failed.
NEGATIONS = frozenset({"not", "n't", "no", "never", "nothing", "none", "neither", "nobody"})
# Words about the message rather than the problem ("Example they sent is attached"): they do
# not count as content words.
META_WORDS = frozenset(
    {"attach", "attached", "attachment", "screenshot", "example", "sample", "below", "above",
     "enclose", "enclosed", "ticket", "thread", "detail", "details", "info", "context", "note",
     "send", "sent", "forward", "forwarded", "share", "shared", "mention", "mentioned"}
)  # fmt: skip
# Words a title never ends on: a clause cut before its object ("What happens is", "It stops at").
DANGLING_ENDINGS = frozenset(
    {"a", "an", "the", "of", "to", "in", "on", "at", "for", "with", "from", "by", "and", "or",
     "but", "is", "are", "was", "were", "be", "been", "that", "which", "who", "my", "our",
     "your", "their", "its", "his", "her", "this", "these", "those", "as", "than", "if", "so",
     "because", "when", "while", "into", "onto", "about", "like", "just", "very", "really",
     "can", "could", "will", "would", "should", "do", "does", "did", "has", "have", "had", "even",
     "also", "too", "not", "no", "only", "all", "any", "some", "more", "most"}
)  # fmt: skip
# Words that open a clause before the part that matters ("Also, the export ...", "But it",
# "because the page ..."); the articles go too, as in a headline.
FILLER_WORDS = frozenset(
    {"also", "and", "but", "so", "plus", "however", "unfortunately", "honestly", "btw", "ps",
     "p.s", "ok", "okay", "well", "hi", "hello", "hey", "yes", "oh", "sadly", "the", "a", "an",
     "anyway", "basically", "actually", "seriously", "frankly", "apparently", "meanwhile",
     "additionally", "separately", "unrelated", "fyi", "furthermore", "moreover", "besides", "or",
    "then", "even", "because", "although", "though", "whereas", "while"}
)  # fmt: skip
# "Customer says ...", "Our team noticed that ...": the report, not the reporter, is the point.
# Only people report: "The summary says we agreed to ..." is the failure itself.
REPORTERS = frozenset(
    {"i", "we", "they", "he", "she", "someone", "everyone", "customer", "customers", "user",
     "users", "client", "clients", "team", "agent", "agents", "rep", "reps", "colleague",
     "colleagues", "manager", "boss", "staff", "people", "support", "admin", "admins"}
)  # fmt: skip
REPORTING_VERBS = frozenset(
    {"say", "says", "said", "report", "reports", "reported", "mention", "mentions", "mentioned",
     "notice", "notices", "noticed", "complain", "complains", "complained", "think", "thinks",
     "feel", "feels", "found", "realised", "realized", "confirm", "confirms", "confirmed",
     "claim", "claims", "claimed"}
)  # fmt: skip
# Prepositions: a clause opening with one and saying nothing with a verb ("With the previous
# layout", "Without the footer text") is an adjunct cut off from its statement.
PREPOSITIONS = frozenset(
    {"with", "without", "for", "in", "on", "at", "from", "by", "about", "after", "before",
     "during", "since", "into", "onto", "under", "over", "between", "through", "via", "per",
     "like", "than", "until", "till", "of", "to", "as"}
)  # fmt: skip
# Verbs (lemmas) that say nothing without what follows them: a clause ending on one ("Our
# finance group keeps asking", "We tried", "Several buyers complained") reports that something
# was said, asked or tried, not what went wrong.
OBJECT_VERBS = frozenset(
    {"ask", "try", "say", "tell", "wonder", "complain", "report", "mention", "notice", "explain",
     "confirm", "suggest", "request", "want", "need", "expect", "hope", "wish", "wait", "check",
     "test", "attempt", "reach", "call", "email", "write", "escalate", "inquire", "enquire"}
)  # fmt: skip
# A statement that something works ("The preview is indented fine") is the contrast to a
# problem, not the problem, unless it also names a failure.
POSITIVE_WORDS = frozenset(
    {"fine", "correct", "correctly", "good", "great", "perfect", "perfectly", "properly", "ok",
     "okay", "right", "nice", "accurate", "accurately", "work", "works", "worked", "well"}
)  # fmt: skip
# Sentence ends, semicolons, dashes between spaces and colons before a space: each piece can
# stand alone ("Quick one: the export drops bullets" -> "the export drops bullets").
STRONG_BREAK = re.compile(r"[.!?…]+(?=\s|$)|[;:](?=\s|$)|\n+|\s+[-–—]+\s+|\s*[–—]\s*")
# Weaker breaks inside a sentence: a comma, or a subordinate clause that explains rather than
# names ("... because the sync stopped").
WEAK_BREAK = re.compile(
    r",\s+|\s+(?=(?:because|since|although|though|whereas|while|unless|which|so that|even though"
    r"|but|and then|so)\s)",
    re.IGNORECASE,
)
# Where a sentence too long for a title and without a weaker break is cut all the same: before
# a relative clause ("It invented an action item and assigned it to someone | who wasn't even
# in the meeting"), so the central statement of an issue still offers its head. Not before
# "and": what comes first is as often context ("We updated the page weeks ago | and ...").
LAST_RESORT_BREAK = re.compile(r"\s+(?=(?:who|whom|whose|when|where)\s)", re.IGNORECASE)
