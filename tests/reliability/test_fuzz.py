"""Fuzz the API from its own OpenAPI schema with schemathesis: no 5xx, and every 4xx in the
documented error shape ``{"error": {"code", "message", "details"}}``.

Bounded and deterministic: ``FUZZ_EXAMPLES`` examples per operation, derandomized, so a run is
repeatable and stays within about a minute on two cores for both databases.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from tests.conftest import auth
from tests.support.reliability import note
from triage import db
from triage.models import Feedback, Issue, Membership, Scope, Unit

# TRIAGE_FUZZ_EXAMPLES=500 for a deeper run by hand; the suite keeps to 25.
FUZZ_EXAMPLES = int(os.environ.get("TRIAGE_FUZZ_EXAMPLES", "25"))


@pytest.fixture
def admin_headers(make_key) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return auth(make_key(Scope.admin))


@pytest.fixture
def api_schema(settings, engine):  # type: ignore[no-untyped-def]
    from api.main import create_app

    # Rate limiting off: the fuzzer sends hundreds of requests with one key, and 429s would
    # hide what the requests themselves do. The limiter has its own tests.
    app = create_app(settings.model_copy(update={"rate_limit_per_minute": 0}))
    _seed(engine)
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def _seed(engine) -> None:  # type: ignore[no-untyped-def]
    """Two issues with a unit each, so generated ids 1 and 2 reach real rows."""
    with db.session_scope(engine) as session:
        for n in (1, 2):
            issue = Issue(title=f"issue {n}", size=1)
            feedback = Feedback(source="fuzz", external_id=f"seed-{n}", text="seed text",
                                text_sha256="0", redacted_text="seed text",
                                status="processed")  # fmt: skip
            session.add_all([issue, feedback])
            session.flush()
            unit = Unit(feedback_id=feedback.id, position=0, text="seed text", text_hash=str(n))
            session.add(unit)
            session.flush()
            session.add(Membership(unit_id=unit.id, issue_id=issue.id, method="cluster"))


def _operations() -> list[tuple[str, str]]:
    """(method, path) of every operation, read from the app's schema at collection time."""
    from api.main import create_app
    from triage.config import Settings

    spec = create_app(Settings(database_url="sqlite://")).openapi()
    return [(method.upper(), path) for path, item in spec["paths"].items() for method in item]


# schemathesis' own pytest plugin (schema.parametrize / from_fixture) does not run under pytest 9
# yet, so each operation's Hypothesis strategy is driven here, one test per operation.
@pytest.mark.parametrize(("method", "path"), _operations(), ids=lambda v: str(v))
def test_fuzz_api_never_5xx_and_errors_keep_their_shape(  # type: ignore[no-untyped-def]
    api_schema, admin_headers, method, path, record_property
):
    operation = api_schema[path][method]
    seen: list[int] = []

    # Valid and invalid requests alike: half the examples break the schema on purpose.
    strategy = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(
        GenerationMode.NEGATIVE
    )

    @given(case=strategy)
    @settings(
        max_examples=FUZZ_EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case) -> None:  # type: ignore[no-untyped-def]
        response = case.call(headers=admin_headers)
        seen.append(response.status_code)
        assert response.status_code < 500, (case.as_curl_command(), response.text[:500])
        if response.status_code >= 400:
            body = response.json()
            assert set(body) == {"error"}, body
            assert isinstance(body["error"]["code"], str) and body["error"]["code"]
            assert isinstance(body["error"]["message"], str) and body["error"]["message"]
            assert response.headers["content-type"][0].startswith("application/json")

    try:
        fuzz()
    finally:
        statuses = ", ".join(f"{s}×{seen.count(s)}" for s in sorted(set(seen)))
        note(record_property, fault=f"schemathesis fuzz: {method} {path}", tried=len(seen),
             checked=f"no 5xx; every 4xx in the error shape (answers: {statuses})")  # fmt: skip
