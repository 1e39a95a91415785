"""Text builders a tokenizer config names by dotted path (importable by the system under test)."""

from __future__ import annotations


def transcripts(manifest: str) -> list[str]:
    """The third column of a recipe manifest."""
    return [
        line.rstrip("\n").split("\t")[2]
        for line in open(manifest, encoding="utf-8")
        if line.strip()
    ]
