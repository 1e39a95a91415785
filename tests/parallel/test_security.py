"""TLS on every scheduler, loopback included, and nothing listening beyond loopback by default."""

from __future__ import annotations

import subprocess
import sys

import psutil
import pytest
from distributed import Client
from distributed.security import Security

from espnet3.parallel import ParallelConfig, get_client
from espnet3.parallel.schedulers.local import LOCAL
from espnet3.parallel.security import LOOPBACK, wants_tls


@pytest.fixture(scope="module")
def tls_client():
    """A real 1-worker LocalCluster on loopback with ``security: tls``."""
    with get_client({"env": "local", "n_workers": 1, "security": "tls"}) as client:
        yield client


def _port(address: str) -> str:
    return address.rsplit(":", 1)[1]


def test_tls_cluster_talks_tls_everywhere(tls_client):
    assert tls_client.scheduler.address.startswith(f"tls://{LOOPBACK}:")
    workers = tls_client.scheduler_info()["workers"]
    assert workers and all(address.startswith("tls://") for address in workers)
    assert tls_client.submit(sum, [1, 2]).result() == 3


def test_plain_client_cannot_connect_to_a_tls_scheduler(tls_client):
    plain = f"tcp://{LOOPBACK}:{_port(tls_client.scheduler.address)}"
    with pytest.raises((OSError, TimeoutError)):
        Client(plain, timeout="3s")


def test_stranger_with_another_certificate_cannot_connect(tls_client):
    with pytest.raises((OSError, TimeoutError)):
        Client(tls_client.scheduler.address, security=Security.temporary(), timeout="3s")


def test_client_with_the_clusters_certificate_can_connect_and_run(tls_client):
    with Client(tls_client.scheduler.address, security=tls_client.security, timeout="10s") as c:
        assert c.submit(pow, 2, 5).result() == 32


def test_auto_turns_tls_on_everywhere_and_none_turns_it_off():
    exposed = ParallelConfig.from_any(
        {"env": "local", "n_workers": 1, "options": {"host": "0.0.0.0"}}
    )
    options = LOCAL.cluster_options(exposed)
    assert options["protocol"] == "tls://"
    assert options["security"].require_encryption
    refused = ParallelConfig.from_any(
        {"env": "local", "n_workers": 1, "security": "none", "options": {"host": "0.0.0.0"}}
    )
    assert "security" not in LOCAL.cluster_options(refused)
    loopback = LOCAL.cluster_options(ParallelConfig.from_any({"env": "local"}))
    assert loopback["protocol"] == "tls://" and loopback["security"].require_encryption


def test_batch_scheduler_envs_use_tls_unless_refused():
    assert wants_tls(ParallelConfig.from_any({"env": "slurm"}))
    assert not wants_tls(ParallelConfig.from_any({"env": "slurm", "security": "none"}))


def test_default_local_cluster_listens_on_loopback_only():
    with get_client({"env": "local", "n_workers": 1}) as client:
        pids = [psutil.Process().pid, *client.run(lambda: psutil.Process().pid).values()]
        listening = [
            conn.laddr.ip
            for pid in pids
            for conn in psutil.Process(pid).net_connections(kind="inet")
            if conn.status == psutil.CONN_LISTEN
        ]
        services = client.scheduler_info()["services"]
    assert listening and set(listening) == {LOOPBACK}
    assert set(services) <= {"dashboard"}


def _listening(pids) -> set[str]:
    return {
        conn.laddr.ip
        for pid in pids
        for conn in psutil.Process(pid).net_connections(kind="inet")
        if conn.status == psutil.CONN_LISTEN
    }


def test_auto_decides_from_where_scheduler_kwargs_bind_the_scheduler():
    """``scheduler_kwargs: {host: 0.0.0.0}`` binds every interface: TLS, and strangers are out."""
    config = {"env": "local", "n_workers": 1, "options": {"scheduler_kwargs": {"host": "0.0.0.0"}}}
    with get_client(config) as client:
        address = client.scheduler.address
        assert address.startswith("tls://")
        assert "0.0.0.0" in _listening([psutil.Process().pid])  # the scheduler lives here
        with pytest.raises((OSError, TimeoutError)):
            Client(f"tcp://{LOOPBACK}:{_port(address)}", timeout="3s")
        assert client.submit(pow, 3, 2).result() == 9


def test_a_scheduler_bound_beyond_loopback_without_tls_is_refused_and_closed():
    """Whatever bound it (here LocalCluster's own host), the bound address decides."""
    from distributed import LocalCluster

    from espnet3.errors import SetupError
    from espnet3.parallel.security import check_exposure

    cluster = LocalCluster(n_workers=0, host="0.0.0.0", dashboard_address=None)
    with pytest.raises(SetupError, match=r"listens on tcp://.* without TLS"):
        check_exposure(cluster, ParallelConfig.from_any({"env": "local"}))
    assert cluster.status.name == "closed"
    check_exposure(cluster, ParallelConfig.from_any({"env": "local", "security": "none"}))


def test_interface_lo_is_a_loopback_cluster():
    with get_client({"env": "local", "n_workers": 1, "options": {"interface": "lo"}}) as client:
        assert client.scheduler.address.startswith(f"tls://{LOOPBACK}:")
        assert client.submit(sum, [2, 3]).result() == 5


STRANGER = """
import sys
from distributed import Client
address = sys.argv[1]
for attempt in (address, address.replace("tls://", "tcp://")):
    try:
        Client(attempt, timeout="5s").close()
    except Exception as err:
        print(type(err).__name__)
    else:
        print("CONNECTED")
"""


def test_another_process_without_the_certificate_cannot_use_a_loopback_cluster():
    """Loopback is shared by every user of the machine: the default local cluster talks TLS
    with a certificate only this client and its workers hold."""
    with get_client({"env": "local", "n_workers": 1}) as client:
        address = client.scheduler.address
        assert address.startswith(f"tls://{LOOPBACK}:")
        tried = subprocess.run(
            [sys.executable, "-c", STRANGER, address], capture_output=True, text=True, timeout=120
        )
        assert client.submit(pow, 2, 3).result() == 8
    assert "CONNECTED" not in tried.stdout and len(tried.stdout.split()) == 2, tried.stdout


def test_a_loopback_scheduler_without_tls_is_refused_unless_security_none():
    from distributed import LocalCluster

    from espnet3.errors import SetupError
    from espnet3.parallel.security import check_exposure

    cluster = LocalCluster(n_workers=0, host=LOOPBACK, dashboard_address=None)
    with pytest.raises(SetupError, match=r"listens on tcp://127.0.0.1:.* without TLS.*every user"):
        check_exposure(cluster, ParallelConfig.from_any({"env": "local"}))
    assert cluster.status.name == "closed"
    with get_client({"env": "local", "n_workers": 1, "security": "none"}) as client:
        assert client.scheduler.address.startswith(f"tcp://{LOOPBACK}:")
