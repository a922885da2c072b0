"""The placeholders redaction writes in place of personal data, and how to find them in text.

A module of its own, with nothing to import, so that the stages that read redacted text (the
word model, the title picker) know a placeholder without loading presidio, which finds what the
placeholders replace (``triage.preprocess.pii``).
"""

from __future__ import annotations

import re

# Presidio entity type -> the placeholder people see instead of the value.
PLACEHOLDERS: dict[str, str] = {
    "EMAIL_ADDRESS": "<EMAIL>",
    "PHONE_NUMBER": "<PHONE>",
    "CREDIT_CARD": "<CARD>",
    "IBAN_CODE": "<IBAN>",
    "IP_ADDRESS": "<IP>",
    "URL": "<URL>",  # only URLs that carry credentials; plain links stay
    "PERSON": "<PERSON>",
}
PLACEHOLDER_TEXTS = frozenset(PLACEHOLDERS.values())
# Any one of them, where it stands in a text.
PLACEHOLDER = re.compile("|".join(re.escape(p) for p in sorted(PLACEHOLDER_TEXTS)))
