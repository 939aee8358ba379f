"""No input produces a 500: a bounded, seeded fuzz of the API in-process (no reconciler), with
mutated spec files, malformed bodies, odd paths and queries."""

from __future__ import annotations

import random
import string
import warnings
from pathlib import Path

import pytest

with warnings.catch_warnings():  # starlette's note about httpx2 is not ours to act on
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from suan.control.server import ServerOptions, build

EXAMPLE = (Path(__file__).parents[1] / "examples" / "gpt" / "job.yaml").read_text()
ALPHABET = string.printable + "\x00é{}[]:-&*!|>"


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    home = tmp_path_factory.mktemp("fuzz")
    app, _reconciler, store = build(ServerOptions(home=home, devices="8xH100"))
    client = TestClient(app, raise_server_exceptions=False)
    client.headers["Authorization"] = f"Bearer {(home / 'admin-token').read_text().strip()}"
    yield client
    store.close()


def mutate(text: str, rng: random.Random) -> str:
    chars = list(text)
    for _ in range(rng.randint(1, 6)):
        at = rng.randrange(len(chars))
        roll = rng.random()
        if roll < 0.3:
            del chars[at]
        elif roll < 0.6:
            chars.insert(at, rng.choice(ALPHABET))
        else:
            chars[at] = rng.choice(ALPHABET)
    return "".join(chars)


def test_mutated_spec_files_are_accepted_or_refused_with_422(api):
    rng = random.Random(20261124)
    seen = set()
    for _ in range(400):
        body = {
            "yaml": mutate(EXAMPLE, rng),
            "workdir": rng.choice([None, "/tmp", "/missing", "/a\x00b", "relative"]),
        }
        status = api.post("/v1/jobs", json=body).status_code
        assert status in (201, 422), (status, body)
        seen.add(status)
    assert seen == {201, 422}


@pytest.mark.parametrize(
    "body",
    [
        "",
        "null",
        "[]",
        "{}",
        '{"yaml": null}',
        '{"yaml": "a: b"}',
        '{"yaml": "---\\n---\\n"}',
        '{"yaml": "kind: List\\nitems: 5"}',
        '{"yaml": "!!python/object:os.system x"}',
        '{"yaml": "a: &a [*a]"}',
        '{"yaml": "' + "x" * 1_000_001 + '"}',
        "\xff\xfe",
    ],
)
def test_malformed_bodies_get_422(api, body):
    response = api.post(
        "/v1/jobs",
        content=body.encode("utf-8", "surrogateescape"),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422, response.text


@pytest.mark.parametrize(
    "path",
    [
        "/v1/jobs/" + "x" * 200,
        "/v1/jobs/%00",
        "/v1/jobs/a/logs?rank=99999999999999999999",
        "/v1/jobs?limit=abc",
        "/v1/jobs?all=2",
        "/v1/jobs/-a",
        "/v1/jobs/a/logs?offset=-1",
    ],
)
def test_odd_paths_and_queries_get_4xx(api, path):
    assert 400 <= api.get(path).status_code < 500
