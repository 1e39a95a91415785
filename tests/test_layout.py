"""Everything scheduler-specific lives behind ``Scheduler``: outside
``espnet3/parallel/schedulers/``, no code names a scheduler family or its ``SLURM_`` variables.

Only code and string literals count; docstrings and comments may speak of any scheduler. The
names are those of every registered family that runs work elsewhere (its envs, and the words
they are made of, such as ``condor``), so a new family is checked as soon as it exists. A
message that lists schedulers takes them from the registry
(:func:`espnet3.parallel.schedulers.schedulers`) instead of spelling them out.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

from espnet3.parallel.schedulers import schedulers

PACKAGE = Path(__file__).resolve().parents[1] / "espnet3"
SCHEDULERS_DIR = PACKAGE / "parallel" / "schedulers"
#: Words of identifiers and strings: ``HTCondorCluster`` is ``HT``, ``Condor``, ``Cluster``.
WORDS = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
#: Tokens that hold code or literal text (Python 3.12 splits f-strings into parts).
CHECKED = {tokenize.NAME, tokenize.STRING, getattr(tokenize, "FSTRING_MIDDLE", tokenize.STRING)}


def family_names() -> set[str]:
    """The envs of the families that run work off this process and host, and the words of
    their cluster classes (``HTCondorCluster``: ``condor``); ``none`` and ``local`` are plain
    words everywhere."""
    names = set()
    for env, scheduler in schedulers().items():
        if not (scheduler.sequential or scheduler.on_this_host):
            words = WORDS.findall(scheduler.cluster_class.rpartition(".")[2])
            names |= {env, *(w.lower() for w in words if len(w) > 2 and w != "Cluster")}
    return names


def docstring_lines(tree: ast.AST) -> set[int]:
    """The first line of every docstring (module, class, function)."""
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                if isinstance(first.value.value, str):
                    lines.add(first.value.lineno)
    return lines


def scheduler_words(source: str, banned: set[str]) -> list[tuple[int, str]]:
    """``(line, text)`` of each name or non-docstring literal of ``source`` naming a family
    or holding ``SLURM_``."""
    docstrings = docstring_lines(ast.parse(source))
    found = []
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in CHECKED:
            continue
        if token.type == tokenize.STRING and token.start[0] in docstrings:
            continue
        words = {w.lower() for w in WORDS.findall(token.string) + re.findall(r"\w+", token.string)}
        if words & banned or "SLURM_" in token.string:
            found.append((token.start[0], token.string))
    return found


def test_the_banned_names_are_the_batch_and_remote_families():
    names = family_names()
    assert {"slurm", "pbs", "sge", "lsf", "htcondor", "condor", "oar", "moab"} <= names
    assert not names & {"none", "sequential", "local", "cluster"}


def test_no_scheduler_is_named_outside_the_schedulers_package():
    banned = family_names()
    found = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: {text[:80]}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if SCHEDULERS_DIR not in path.parents
        for line, text in scheduler_words(path.read_text(encoding="utf-8"), banned)
    ]
    assert not found, "scheduler-specific code outside espnet3/parallel/schedulers/:\n" + (
        "\n".join(found)
    )


def test_the_check_sees_code_and_literals_but_not_documentation():
    sample = (
        '"""Runs on SLURM and PBS."""\n'
        "# a comment about slurm\n"
        "def f():\n"
        '    """Reads SLURM_JOB_ID."""\n'
        '    return "dashboard", "SLURM_PROCID", f"{sge}"\n'
        "HTCondorCluster = 1\n"
    )
    assert scheduler_words(sample, family_names()) == [
        (5, '"SLURM_PROCID"'),
        (5, 'f"{sge}"'),
        (6, "HTCondorCluster"),
    ]
