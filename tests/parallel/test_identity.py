"""Worker identity check: real versions, a real LocalCluster, and the get_client hook."""

from __future__ import annotations

import importlib.metadata
import platform

import pytest
from distributed import Client, LocalCluster

from espnet3.errors import Espnet3Error
from espnet3.parallel import get_client
from espnet3.parallel.identity import (
    FIELDS,
    check_worker_identities,
    format_differences,
    identity_differences,
    process_identity,
)

IMAGE = "espnet3-0.1.0-abc123-20261122T000000Z"


def identity(**changes: str) -> dict[str, str]:
    base = {
        "image": IMAGE,
        "python": "3.11.7",
        "dask": "2026.8.0",
        "distributed": "2026.8.0",
        "espnet3": "0.1.0",
        "torch": "2.13.0+cpu",
    }
    return {**base, **changes}


def test_process_identity_reads_this_process(monkeypatch):
    monkeypatch.setenv("ESPNET3_IMAGE_ID", IMAGE)
    me = process_identity()
    assert tuple(me) == FIELDS
    assert me["image"] == IMAGE
    assert me["python"] == platform.python_version()
    assert me["distributed"] == importlib.metadata.version("distributed")
    assert me["torch"] == importlib.metadata.version("torch")
    monkeypatch.delenv("ESPNET3_IMAGE_ID")
    assert process_identity()["image"] == "(none)"


def test_parent_inside_the_image_compares_everything_exactly():
    workers = {
        "tcp://c1:1": identity(),
        "tcp://c2:1": identity(image=IMAGE + "-old", python="3.11.2", torch="2.9.1"),
    }
    assert identity_differences(identity(), workers) == [
        ("tcp://c2:1", "image", IMAGE, IMAGE + "-old"),
        ("tcp://c2:1", "python", "3.11.7", "3.11.2"),
        ("tcp://c2:1", "torch", "2.13.0+cpu", "2.9.1"),
    ]


def test_parent_outside_compares_the_wire_with_it_and_the_image_between_workers():
    parent = identity(image="(none)", python="3.11.9", torch="(not installed)")
    same = {"tcp://c1:1": identity(), "tcp://c2:1": identity()}
    assert identity_differences(parent, same) == []
    mixed = {
        "tcp://c1:1": identity(),
        "tcp://c2:1": identity(image="espnet3-other", python="3.12.1", dask="2025.1.0"),
    }
    assert identity_differences(parent, mixed) == [
        ("tcp://c2:1", "image", IMAGE, "espnet3-other"),
        ("tcp://c2:1", "python", "3.11", "3.12"),
        ("tcp://c2:1", "dask", "2026.8.0", "2025.1.0"),
    ]


def test_table_lines_up_columns():
    table = format_differences(
        [("tcp://c2:1", "image", "a", "bbb"), ("tcp://c10:1", "torch", "x", "y")]
    )
    assert table.splitlines() == [
        "worker       field  expected  found",
        "tcp://c2:1   image  a         bbb",
        "tcp://c10:1  torch  x         y",
    ]


@pytest.fixture(scope="module")
def other_image_client():
    """Two real worker processes whose image identity differs from this process's."""
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=None,
            env={"ESPNET3_IMAGE_ID": "espnet3-other-image"},
        ) as cluster,
        Client(cluster) as client,
    ):
        client.wait_for_workers(2)
        yield client


def test_real_workers_that_agree_pass(other_image_client):
    parent = dict(process_identity(), image="(none)")
    workers = check_worker_identities(other_image_client, parent)
    assert len(workers) == 2
    assert {w["image"] for w in workers.values()} == {"espnet3-other-image"}


def test_real_workers_in_another_image_fail_with_the_table(other_image_client):
    parent = dict(process_identity(), image=IMAGE)
    with pytest.raises(Espnet3Error) as err:
        check_worker_identities(other_image_client, parent)
    message = str(err.value)
    assert message.startswith(f"2 of 2 worker(s) differ from the parent's (image {IMAGE}):\n")
    assert message.count("espnet3-other-image") == 2
    assert "worker" in message.splitlines()[1] and "expected" in message.splitlines()[1]
    assert "check parallel.container.image" in message


def local_in_image(worker_image: str) -> dict:
    """env local stands in for a batch scheduler whose workers run image ``worker_image``."""
    return {
        "env": "local",
        "n_workers": 1,
        "security": "none",
        "options": {"env": {"ESPNET3_IMAGE_ID": worker_image}},
        "container": {"runtime": "docker", "image": "espnet3:0.1.0-cpu"},
    }


def test_get_client_refuses_workers_of_another_image(monkeypatch):
    """env local stands in for a batch scheduler; only the identity hook is under test."""
    monkeypatch.setenv("ESPNET3_IMAGE_ID", IMAGE)
    cfg = local_in_image("espnet3-stale")
    with pytest.raises(Espnet3Error, match=r"1 of 1 worker\(s\) differ") as err:
        with get_client(cfg):
            pass
    assert "espnet3-stale" in str(err.value)
    cfg["options"] = {"env": {"ESPNET3_IMAGE_ID": IMAGE}}
    with get_client(cfg) as client:
        assert client.run(lambda: 1)


def test_a_worker_joining_later_from_another_image_runs_no_task(monkeypatch):
    """A scale-up after the start (as a resubmitted batch job would be) is checked too."""
    from espnet3.parallel.chunk_task import run_chunk

    monkeypatch.setenv("ESPNET3_IMAGE_ID", IMAGE)
    with get_client(local_in_image(IMAGE)) as client:
        [first] = client.scheduler_info()["workers"]
        client.cluster.new_spec["options"]["env"] = {"ESPNET3_IMAGE_ID": "espnet3-stale"}
        client.cluster.scale(2)
        client.wait_for_workers(2, timeout=120)
        [late] = set(client.scheduler_info()["workers"]) - {first}
        chunk = (run_chunk, abs, 0, [-3], (None, None), {})
        assert client.submit(*chunk, workers=[first], pure=False).result()[0] == [3]
        with pytest.raises(Espnet3Error, match=r"1 of 1 worker\(s\) differ") as err:
            client.submit(*chunk, workers=[late], pure=False).result()
        assert "espnet3-stale" in str(err.value) and late in str(err.value)
