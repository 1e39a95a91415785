"""Run upstream ESPnet3's tests of this package's scope, unchanged, against the installed espnet3.

Given a checkout of upstream ESPnet3 (espnet/espnet), the scope's test files are copied with
the data they read (``test_utils/espnet3``) and upstream's recipe tree (``egs3``) into a
temporary directory, never into this repository, and each file runs there in its own pytest
process, so that ``import espnet3`` finds this package and not the checkout's. Nothing is
downloaded. The result of every test is compared with ``expected.toml`` (the tests known to
fail, each with its reason); the run fails on a failure not listed there, and on a listed
test that now passes.

    nox -s upstream -- /path/to/espnet                       # what nox runs
    python tests/upstream/run.py /path/to/espnet --report docs/compatibility.md

``--report`` rewrites the results section of that document from this run (``--section``
names another one, e.g. for a second checkout).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import tomllib

HERE = Path(__file__).resolve().parent
EXPECTED = HERE / "expected.toml"
#: Upstream's test files of data preparation, parallel processing and the utilities recipes'
#: data stages use. A checkout may lack some (they came after it); those are listed, not run.
SCOPE = (
    "test/espnet3/components/data/test_data_organizer.py",
    "test/espnet3/components/data/test_dataloader_builder.py",
    "test/espnet3/components/data/test_collect_stats.py",
    "test/espnet3/components/data/test_espnet2_stats.py",
    "test/espnet3/components/data/test_remove_long_short.py",
    "test/espnet3/components/data/test_create_token_list.py",
    "test/espnet3/parallel/test_parallel.py",
    "test/espnet3/parallel/test_base_runner_batch.py",
    "test/espnet3/parallel/test_inference_provider.py",
    "test/espnet3/parallel/test_inference_runner.py",
    "test/espnet3/systems/base/test_base_system.py",
    "test/espnet3/systems/base/test_training.py",
    "test/espnet3/systems/asr/test_system.py",
    "test/espnet3/systems/asr/tokenizer/test_sentencepiece.py",
    "test/espnet3/systems/esp2_asr/test_system.py",
    "test/espnet3/utils/test_dataset_module.py",
    "test/espnet3/utils/test_download.py",
    "test/espnet3/utils/test_config.py",
    "test/espnet3/utils/test_scp_utils.py",
    "test/espnet3/utils/test_writer_utils.py",
    "test/espnet3/utils/test_run_utils.py",
    "test/espnet3/utils/test_stages.py",
    "test/espnet3/utils/test_logging.py",
    "test/espnet3/utils/test_task_utils.py",
)
#: The document section ``--report`` rewrites: between ``<!-- NAME:start -->`` and ``:end``.
SECTION = "upstream-results"


def stage(checkout: Path, work: Path) -> list[str]:
    """Copy the scope's files, their packages' ``__init__``/``conftest`` and data into ``work``.

    Returns the scope's files the checkout has.
    """
    missing = [
        p for p in ("test/espnet3", "test_utils/espnet3", "egs3") if not (checkout / p).is_dir()
    ]
    if missing:
        sys.exit(f"{checkout} is not an upstream ESPnet3 checkout: it has no {', '.join(missing)}")
    present = [rel for rel in SCOPE if (checkout / rel).is_file()]
    if not present:
        sys.exit(f"{checkout} has none of the scope's test files: check out upstream's tree")
    for rel in present:
        source = checkout / rel
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, work / rel)
        for folder in Path(rel).parents:
            for name in ("__init__.py", "conftest.py"):
                if (checkout / folder / name).is_file():
                    shutil.copy2(checkout / folder / name, work / folder / name)
    shutil.copytree(checkout / "test_utils" / "espnet3", work / "test_utils" / "espnet3")
    shutil.copytree(checkout / "egs3", work / "egs3")
    return present


def run_file(work: Path, rel: str) -> dict[str, tuple[str, str]]:
    """``{test id: (outcome, first line of the message)}`` of one file, run in ``work``."""
    report = work / "junit.xml"
    command = [
        sys.executable,
        "-m",
        "pytest",
        rel,
        "-q",
        "-p",
        "no:cacheprovider",
        "-W",
        "ignore::pytest.PytestUnknownMarkWarning",
        "--timeout=300",
        f"--junitxml={report}",
    ]
    subprocess.run(command, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not report.is_file():
        return {rel: ("error", "pytest wrote no report (it crashed)")}
    results = {}
    for case in ET.parse(report).iter("testcase"):
        name = f"{rel}::{case.get('name')}"
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = "failed" if child.tag != "skipped" else "skipped"
                message = (child.get("message") or "").strip().splitlines()[0:1]
                message = message[0][:160] if message else ""
        results[name] = (outcome, message)
    report.unlink()
    if not results:  # an import error collects no test case, only an error in the suite
        return {rel: ("failed", "the file failed to import")}
    return results


def check_espnet3_is_ours(work: Path, checkout: Path) -> None:
    where = subprocess.run(
        [sys.executable, "-c", "import espnet3; print(espnet3.__file__)"],
        cwd=work,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if Path(where).resolve().is_relative_to(checkout.resolve()):
        sys.exit(f"espnet3 is imported from the checkout ({where}): install this package")
    print(f"espnet3 under test: {where}")


def summarize(
    present: list[str], results: dict, expected: dict
) -> tuple[list[str], list[str], list[str]]:
    """Per-file lines, the unexpected failures and the listed tests that now pass."""
    lines, unexpected, stale = [], [], []
    for rel in present:
        mine = {k: v for k, v in results.items() if k == rel or k.startswith(rel + "::")}
        counts = Counter(outcome for outcome, _ in mine.values())
        known = sum(1 for k, (o, _) in mine.items() if o == "failed" and k in expected)
        lines.append(
            f"| {rel.removeprefix('test/espnet3/')} | {len(mine)} | {counts['passed']} "
            f"| {known} | {counts['failed'] - known} | {counts['skipped']} |"
        )
        for name, (outcome, message) in mine.items():
            if outcome == "failed" and name not in expected:
                unexpected.append(f"{name}: {message}")
            if outcome == "passed" and name in expected and not expected[name].get("may_pass"):
                stale.append(name)
    return lines, unexpected, stale


def write_report(
    path: Path,
    section: str,
    lines: list[str],
    results: dict,
    expected: dict,
    absent: list[str],
) -> None:
    total = Counter(outcome for outcome, _ in results.values())
    table = [
        f"{total['passed']} of {len(results)} upstream tests pass; {total['failed']} fail "
        f"(every one listed below with its reason), {total['skipped']} skipped.",
        *([f"Not in the checkout this ran on: {', '.join(absent)}."] if absent else []),
        "",
        "| file | tests | pass | known failure | unexpected | skipped |",
        "|---|---|---|---|---|---|",
        *lines,
        "",
        "| test | why it fails | category |",
        "|---|---|---|",
    ]
    for name, (outcome, _) in results.items():
        if outcome == "failed":
            entry = expected.get(name, {"why": "**not explained yet**", "category": "?"})
            short = name.removeprefix("test/espnet3/")
            table.append(f"| `{short}` | {entry['why']} | {entry['category']} |")
    start, end = f"<!-- {section}:start -->", f"<!-- {section}:end -->"
    text = path.read_text()
    if start not in text or end not in text:
        sys.exit(f"{path} has no {start} ... {end} section to rewrite")
    head, _, rest = text.partition(start)
    _, _, tail = rest.partition(end)
    path.write_text(f"{head}{start}\n" + "\n".join(table) + f"\n{end}{tail}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "checkout", type=Path, help="a checkout of upstream ESPnet3 (espnet/espnet)"
    )
    parser.add_argument("--report", type=Path, help="rewrite the results section of this file")
    parser.add_argument(
        "--section", default=SECTION, help=f"the section --report rewrites (default {SECTION})"
    )
    args = parser.parse_args()
    expected = tomllib.loads(EXPECTED.read_text())
    with tempfile.TemporaryDirectory(prefix="espnet3-upstream-") as tmp:
        work = Path(tmp)
        present = stage(args.checkout.resolve(), work)
        check_espnet3_is_ours(work, args.checkout)
        results: dict[str, tuple[str, str]] = {}
        for rel in present:
            results.update(run_file(work, rel))
            print(f"ran {rel}", flush=True)
    absent = [rel.removeprefix("test/espnet3/") for rel in SCOPE if rel not in present]
    if absent:
        print(f"not in this checkout (newer than it): {', '.join(absent)}")
    lines, unexpected, stale = summarize(present, results, expected)
    print(
        "\n| file | tests | pass | known failure | unexpected | skipped |\n|---|---|---|---|---|---|"
    )
    print("\n".join(lines))
    for name in unexpected:
        print(f"UNEXPECTED FAILURE {name}")
    for name in stale:
        print(f"NOW PASSES (remove it from {EXPECTED.name}): {name}")
    if args.report:
        write_report(args.report, args.section, lines, results, expected, absent)
    return 1 if unexpected or stale else 0


if __name__ == "__main__":
    sys.exit(main())
