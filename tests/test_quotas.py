"""Qdrant 1.19's node-wide quotas, against a loopback stand-in for a node at its disk limit (tests/fake_qdrant.py):
the live reader reads the quota and the node's capacity, the planner refuses a plan that would not fit (MF307), and a
write refused with 507 is not retried: the step stops with Qdrant's reason, to be resumed once space is freed."""
from __future__ import annotations

import pytest
from qdrant_client import QdrantClient

from qmspec.live import read_quota
from qmspec.project import RetryPolicy
from qmspec.retry import QuotaRefused, RetryingClient, quota_refusal, transient

from .fake_qdrant import QUOTA_REFUSAL, QuotaQdrant

PATIENT = RetryPolicy(attempts=5, max_seconds=30, timeout_s=2, initial_wait=0.05, max_wait=0.1)


@pytest.fixture()
def node():
    standin = QuotaQdrant()
    yield standin
    standin.close()


def test_the_quota_is_read_with_the_fullest_peer_and_the_capacity_telemetry_reports(node):
    quota = read_quota(QdrantClient(url=node.url, check_compatibility=False))
    assert quota.enabled and quota.max_disk_percent == 95 and quota.max_memory_percent == 90
    assert quota.disk_percent == 96 and quota.memory_percent == 40  # the fullest peer, not the one that answered
    assert quota.exceeded == ("disk",)
    assert quota.disk_bytes == (100 << 20) * 1024 and quota.memory_bytes == (16 << 20) * 1024


def test_a_server_without_the_quota_api_has_no_quota():
    from .fake_qdrant import RecordingQdrant

    old = RecordingQdrant(status=404)
    try:
        assert read_quota(QdrantClient(url=old.url, check_compatibility=False)) is None
    finally:
        old.close()


def test_a_write_refused_at_the_quota_is_not_retried_and_says_what_to_do(node):
    from qdrant_client import models

    client = RetryingClient(QdrantClient(url=node.url, check_compatibility=False), PATIENT, "server stand-in")
    with pytest.raises(QuotaRefused) as refused:
        client.update_vectors("docs", points=[models.PointVectors(id=1, vector={"fresh": [0.1, 0.2]})])
    assert [request for request in node.requests if request[0] != "GET"] == [("PUT", "/collections/docs/points/vectors?wait=true")]
    message = str(refused.value)
    assert "HTTP 507" in message and QUOTA_REFUSAL[:40] in message
    assert "free disk or memory there, or raise the quota" in message and "resumes at this step" in message


def test_grpc_tells_a_quota_refusal_from_rate_limiting_by_its_metadata():
    class RpcError(Exception):
        def __init__(self, key: str):
            self.key = key

        def code(self):
            class Code:
                name = "RESOURCE_EXHAUSTED"

            return Code()

        def trailing_metadata(self):
            return [(self.key, "1")]

    assert quota_refusal(RpcError("qdrant-insufficient-storage")) and not transient(RpcError("qdrant-insufficient-storage"))
    assert not quota_refusal(RpcError("retry-after")) and transient(RpcError("retry-after"))
