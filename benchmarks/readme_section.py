"""Benchmarks write their tables into benchmarks/README.md between named markers."""

from __future__ import annotations

from pathlib import Path

README = Path(__file__).with_name("README.md")


def write_section(name: str, table: str) -> None:
    """Replace what stands between `<!-- name:start -->` and `<!-- name:end -->`."""
    start_marker, end_marker = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = README.read_text()
    start, end = text.index(start_marker), text.index(end_marker)
    README.write_text(text[: start + len(start_marker)] + "\n" + table + "\n" + text[end:])


def read_section(name: str) -> str:
    """What stands between the markers now."""
    text = README.read_text()
    start_marker, end_marker = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    return text[text.index(start_marker) + len(start_marker): text.index(end_marker)].strip("\n")
