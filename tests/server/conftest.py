"""Fixtures of the server contract suite: the server (see servers.py) and a name prefix per test."""
from __future__ import annotations

import os
import uuid

import pytest
from qdrant_client import models

from qmspec.trust import host_of

from .servers import IMAGE, Server, unavailable


def trusted(server: Server) -> Server:
    """The specs of this suite name the server in `connection.url`: bind its key variables to that host, as the CI
    workflow that runs the suite would (qmspec/trust.py)."""
    host = host_of(server.url)
    os.environ["QMSPEC_KEY_HOSTS"] = f"QMSPEC_TEST_API_KEY={host} QDRANT_API_KEY={host}"
    return server


@pytest.fixture(scope="session")
def qdrant_server():
    url = os.environ.get("QMSPEC_TEST_URL")
    if url:
        yield trusted(Server(url, os.environ.get("QMSPEC_TEST_API_KEY") or None, int(os.environ.get("QMSPEC_TEST_GRPC_PORT", "6334"))))
        return
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs

    with DockerContainer(IMAGE).with_exposed_ports(6333, 6334) as container:
        wait_for_logs(container, "Qdrant gRPC listening", timeout=120)
        host = container.get_container_host_ip()
        yield trusted(Server(f"http://{host}:{container.get_exposed_port(6333)}", None, int(container.get_exposed_port(6334))))


@pytest.fixture()
def names(qdrant_server):
    """A unique prefix for this test's collections and aliases; they are deleted afterwards."""
    prefix = f"qm{uuid.uuid4().hex[:8]}"
    yield prefix
    client = qdrant_server.client()
    for alias in client.get_aliases().aliases:
        if alias.alias_name.startswith(prefix):
            client.update_collection_aliases(change_aliases_operations=[
                models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias.alias_name))])
    for collection in client.get_collections().collections:
        if collection.name.startswith(prefix):
            client.delete_collection(collection.name)
    client.close()
