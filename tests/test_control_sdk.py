"""The SDK without a server: `import suan` stays light, `suan.Client` is the SDK class, and
server refusals and unreachable servers become clear errors."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

import suan
from suan.client import ApiError, Client
from suan.errors import SuanError


def test_import_suan_is_light_and_client_is_exported_lazily():
    probe = "import sys, suan; print('httpx' in sys.modules, 'suan.client' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert out.stdout.split() == ["False", "False"]
    assert suan.Client is Client
    with pytest.raises(AttributeError):
        _ = suan.NotAThing  # type: ignore[attr-defined]


def answering(status: int, body: object) -> Client:
    transport = httpx.MockTransport(lambda request: httpx.Response(status, json=body))
    return Client("http://suan.test", token="t", transport=transport)


def test_a_422_names_every_field_path():
    detail = [
        {
            "path": "documents[0].spec.replicas",
            "msg": "not an integer",
            "allowed": "an integer >= 1",
        },
        {"loc": ["query", "rank"], "msg": "too big"},
    ]
    with pytest.raises(ApiError) as refused:
        answering(422, {"detail": detail}).jobs()
    assert refused.value.status == 422 and refused.value.detail == detail
    text = str(refused.value)
    assert "documents[0].spec.replicas: not an integer (allowed: an integer >= 1)" in text
    assert "query.rank: too big" in text


def test_a_403_keeps_the_servers_reason():
    with pytest.raises(ApiError, match="HTTP 403: job x belongs to bob"):
        answering(403, {"detail": "job x belongs to bob"}).cancel("x")


def test_an_unreachable_server_says_how_to_start_one():
    def refuse(request):
        raise httpx.ConnectError("connection refused", request=request)

    client = Client("http://127.0.0.1:9", token="t", transport=httpx.MockTransport(refuse))
    with pytest.raises(SuanError, match="suan up"):
        client.jobs()
    assert client.healthy() is False
