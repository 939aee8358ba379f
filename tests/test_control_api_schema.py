"""The API against its own OpenAPI document, fuzzed by schemathesis: requests generated from
the schema (valid ones and ones it should refuse) sent to a real `suan server` on 127.0.0.1 as
the cluster admin. No answer is a 5xx, every status is one the route declares, and every body
and header matches what is declared for it.

Bounded and repeatable: derandomized Hypothesis (the same cases every run), at most 100
generated requests per route besides schemathesis's deterministic coverage cases; about 40 s
in all on a 2-core machine."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from control_helpers import Server
from hypothesis import HealthCheck, settings
from schemathesis import checks
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from suan.control.api import Services, create_app

CHECKS = [
    checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def live_server(tmp_path_factory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("schema") / "home"
    home.mkdir()
    running = Server(home, devices="1xH100").start()
    yield running
    running.stop()


def openapi_document() -> dict:
    """The app's OpenAPI document, from the code (routes do not touch their services)."""
    return create_app(Services(None, None, None, None)).openapi()  # type: ignore[arg-type]


schema = schemathesis.openapi.from_dict(openapi_document())


def test_the_server_serves_the_document_fuzzed_here(live_server):
    assert httpx.get(f"{live_server.url}/openapi.json").json() == openapi_document()


@schema.parametrize()
@settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_answer_is_declared_and_none_is_a_server_error(case, live_server):
    case.call_and_validate(
        base_url=live_server.url,
        headers={"Authorization": f"Bearer {live_server.token}"},
        checks=CHECKS,
        timeout=30,
    )
