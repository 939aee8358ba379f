"""The audit log under a real server: every mutating call, accepted or refused, is recorded
with its caller and status, and only cluster admins can read it."""

from __future__ import annotations

import httpx
import pytest
from control_helpers import job_yaml
from control_helpers import server as server

from suan.client import ApiError


def test_every_mutating_call_is_in_the_audit_log_and_only_admins_read_it(server):
    admin = server.client()
    carol = server.client(admin.create_user("carol"))
    [job_id] = carol.submit(job_yaml("audited", ranks=1, steps=1))
    with pytest.raises(ApiError):
        carol.submit("kind: Job\nmetadata: {name: bad}\nspec: {replicas: -1}\n")
    with pytest.raises(ApiError) as forbidden:
        carol.create_user("mallory")
    assert forbidden.value.status == 403
    with pytest.raises(ApiError):
        server.client(token="not-a-token").cancel(job_id)
    admin.cancel(job_id)
    with pytest.raises(ApiError) as refused:
        carol.audit()
    assert refused.value.status == 403
    calls = [(c["user"], c["method"], c["path"], c["status"]) for c in admin.audit()]
    cancelled = next(
        call for call in calls if call[:3] == ("admin", "POST", f"/v1/jobs/{job_id}/cancel")
    )
    assert cancelled[3] < 300
    # each call is written beside its request, so the newest few may land in either order
    assert sorted(calls[:6]) == sorted(
        [
            cancelled,
            ("-", "POST", f"/v1/jobs/{job_id}/cancel", 401),
            ("carol", "POST", "/v1/users", 403),
            ("carol", "POST", "/v1/jobs", 422),
            ("carol", "POST", "/v1/jobs", 201),
            ("admin", "POST", "/v1/users", 201),
        ]
    )


def test_adding_an_existing_user_is_refused_and_rotation_revokes_the_old_token(server):
    admin = server.client()
    first = admin.create_user("dave")
    with pytest.raises(ApiError) as exists:
        admin.create_user("dave")
    assert exists.value.status == 409 and "rotate" in str(exists.value)
    assert server.client(first).whoami()["user"] == "dave"
    second = admin.create_user("dave", rotate=True)
    with pytest.raises(ApiError) as revoked:
        server.client(first).whoami()
    assert revoked.value.status == 401
    assert server.client(second).whoami()["user"] == "dave"
    loose = httpx.post(
        f"{server.url}/v1/users",
        json={"name": "erin", "admin": "yes"},
        headers={"Authorization": f"Bearer {server.token}"},
    )
    assert loose.status_code == 422 and "admin" in loose.text
