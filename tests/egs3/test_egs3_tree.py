"""An upstream-style recipe tree copied anywhere: its absolute ``egs3.`` imports resolve with no
PYTHONPATH, in the script's process, on Dask workers and in detached shard jobs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

TEMPLATE_RUN = """
import sys
from egs3.TEMPLATE.demo.defaults import STAGES

def main(where):
    from espnet3.parallel import set_parallel
    from egs3.corpus.demo.dataset.runner import Doubler, Numbers

    if where != "none":
        set_parallel({"env": "local", "n_workers": 2})
    runner = Doubler(Numbers({"n": 8}), output_dir="out", async_mode=where == "async")
    result = runner(range(8))
    if where == "async":
        result.wait(timeout=300, poll=0.2)
        result = result.merge()
    import os

    print("RESULT", [r["y"] for r in result], STAGES)
    print("ELSEWHERE", all(r["pid"] != os.getpid() for r in result))
"""

RUNNER = """
import os
from espnet3.runner.provider import EnvironmentProvider
from espnet3.runner.records import RecordsRunner


class Numbers(EnvironmentProvider):
    def build_env(self):
        return {"dataset": list(range(self.config["n"]))}


class Doubler(RecordsRunner):
    @staticmethod
    def forward(idx, *, dataset, **env):
        return {"idx": idx, "y": 2 * dataset[idx], "pid": os.getpid()}
"""


def write(path: Path, text: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))


@pytest.fixture
def tree(tmp_path) -> Path:
    """``egs3/TEMPLATE/demo`` and ``egs3/corpus/demo`` as upstream lays them out."""
    egs3 = tmp_path / "copied" / "egs3"
    for package in (
        "",
        "TEMPLATE",
        "TEMPLATE/demo",
        "corpus",
        "corpus/demo",
        "corpus/demo/dataset",
    ):
        write(egs3 / package / "__init__.py")
    write(egs3 / "TEMPLATE" / "demo" / "defaults.py", "STAGES = ['create_dataset']\n")
    write(egs3 / "TEMPLATE" / "demo" / "run.py", TEMPLATE_RUN)
    write(egs3 / "corpus" / "demo" / "dataset" / "runner.py", RUNNER)
    write(
        egs3 / "corpus" / "demo" / "run.py",
        "import sys\nfrom egs3.TEMPLATE.demo.run import main\n\nif __name__ == '__main__':\n"
        "    main(sys.argv[1])\n",
    )
    return egs3


def run(script: Path, where: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ESPNET3_EGS3")}
    return subprocess.run(
        [sys.executable, str(script), where], cwd=cwd, env=env, capture_output=True, text=True
    )


@pytest.mark.parametrize("where", ["none", "local", "async"])
def test_a_copied_recipe_imports_its_tree_everywhere_without_pythonpath(tree, where):
    recipe = tree / "corpus" / "demo"
    done = run(recipe / "run.py", where, cwd=recipe)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "RESULT [0, 2, 4, 6, 8, 10, 12, 14] ['create_dataset']" in done.stdout
    assert f"ELSEWHERE {where != 'none'}" in done.stdout
    if where == "async":  # the shard jobs loaded the runner class by its recipe tree
        spec = json.loads((recipe / "out" / "specs" / "split.0.spec.json").read_text())
        assert spec["runner"] == f"egs3.corpus.demo.dataset.runner:Doubler@{tree}"


def test_the_tree_is_found_from_the_script_when_run_from_elsewhere(tree, tmp_path):
    done = run(tree / "corpus" / "demo" / "run.py", "none", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "out" / "manifest.json").is_file()
