"""A scheduler family from another distribution, joined through the ``espnet3.schedulers``
entry-point group, used by ``espnet3 create-dataset`` with no Python registration.

Each distribution is built in ``tmp_path`` as what an installer leaves: the module beside its
``*.dist-info`` (``METADATA``, ``entry_points.txt``). It is put on the ``PYTHONPATH`` of a
subprocess only, where :mod:`importlib.metadata` finds it; nothing is installed into the test
environment, so nothing is left to remove.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.cli_errors import one_line_error

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "recipes" / "mini_an4" / "asr"

#: A family of its own: Dask workers from a LocalCluster, each start recorded in a file.
FAKESCHED = '''
"""``env: fakesched``: a test family that records each cluster it starts."""

import json
import os

from espnet3.parallel.schedulers import Scheduler
from espnet3.parallel.schedulers.local import LOCAL


class FakeSched(Scheduler):
    envs = ("fakesched",)
    cluster_class = "distributed.LocalCluster"
    package = "distributed"

    def cluster_options(self, config):
        return LOCAL.cluster_options(config)

    def start_cluster(self, config):
        cluster = super().start_cluster(config)
        started = {"env": config.env, "n_workers": config.n_workers, "pid": os.getpid()}
        with open(os.environ["FAKESCHED_STARTS"], "a") as log:
            log.write(json.dumps(started) + "\\n")
        return cluster


SCHEDULERS = (FakeSched(),)
'''


def distribution(site: Path, name: str, entry_points: str, modules: dict[str, str]) -> Path:
    """``site`` holding ``modules`` and the ``*.dist-info`` of distribution ``name``."""
    info = site / f"{name.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points).lstrip())
    for module, text in modules.items():
        (site / f"{module}.py").write_text(textwrap.dedent(text).lstrip())
    return site


def run(site: Path, *argv: str, **env: str) -> subprocess.CompletedProcess:
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, *argv],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": path, **env},
        timeout=900,
    )


@pytest.fixture
def fakesched_site(tmp_path: Path) -> Path:
    entry_points = """
        [espnet3.schedulers]
        fakesched = fakesched_family
    """
    return distribution(
        tmp_path / "site", "fakesched-family", entry_points, {"fakesched_family": FAKESCHED}
    )


@pytest.fixture
def broken_site(tmp_path: Path) -> Path:
    entry_points = """
        [espnet3.schedulers]
        brokensched = broken_family
    """
    broken = {"broken_family": "import espnet3_no_such_dependency\n"}
    return distribution(tmp_path / "broken", "broken-family", entry_points, broken)


@pytest.mark.timeout(900)
def test_create_dataset_runs_on_a_family_from_an_entry_point(
    fakesched_site, mini_an4_archive, tmp_path
):
    starts = tmp_path / "starts.jsonl"
    data_dir = tmp_path / "data"
    proc = run(
        fakesched_site,
        "-m",
        "espnet3",
        "create-dataset",
        str(RECIPE),
        f"create_dataset.archive={mini_an4_archive}",
        f"data_dir={data_dir}",
        "parallel.env=fakesched",
        "+parallel.n_workers=2",
        "+parallel.start=now",  # the cluster starts however small the work
        FAKESCHED_STARTS=str(starts),
    )
    assert proc.returncode == 0, proc.stderr
    (started,) = [line for line in starts.read_text().splitlines() if line]
    assert '"env": "fakesched", "n_workers": 2' in started
    for split in ("train", "valid", "test"):
        assert (data_dir / f"{split}.tsv").read_text().strip()


def test_the_entry_point_lists_its_env_and_is_imported_only_when_needed(fakesched_site):
    probe = (
        "import sys\n"
        "from espnet3.parallel.config import ParallelConfig\n"
        "ParallelConfig.from_any({'env': 'local'})\n"
        "print('fakesched_family' in sys.modules)\n"
        "from espnet3.parallel.schedulers import schedulers\n"
        "print(list(schedulers())[-1], 'fakesched_family' in sys.modules)\n"
    )
    proc = run(fakesched_site, "-c", probe)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False", "fakesched", "True"]


def test_a_broken_entry_point_is_one_line_naming_it_and_its_distribution(broken_site, tmp_path):
    proc = run(
        broken_site,
        "-m",
        "espnet3",
        "create-dataset",
        str(RECIPE),
        f"data_dir={tmp_path / 'data'}",
        "parallel.env=brokensched",
    )
    message = one_line_error(proc)
    assert message == (
        "espnet3: error: scheduler entry point 'brokensched = broken_family' of distribution "
        "broken-family cannot be imported (ModuleNotFoundError: No module named "
        "'espnet3_no_such_dependency'): fix or uninstall broken-family"
    )
    # Envs of espnet3's own families never import it.
    ok = run(
        broken_site,
        "-c",
        "from espnet3.parallel import ParallelConfig as P\n"
        "print(P.from_any({'env': 'local', 'n_workers': 1}).env)",
    )
    assert ok.returncode == 0 and ok.stdout.strip() == "local", ok.stderr
