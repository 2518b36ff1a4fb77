"""Shared by the benchmarks: timing, medians, and the ratio table."""

from __future__ import annotations

import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass
class Result:
    name: str
    samples: list[float]  # seconds
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.samples)


def measure(name: str, run: Callable[[], object], repeat: int = 5, warmup: int = 1, note: str = "") -> Result:
    for _ in range(warmup):
        run()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        samples.append(time.perf_counter() - start)
    return Result(name, samples, note)


def command(argv: Sequence[str], **kwargs: object) -> Callable[[], None]:
    def run() -> None:
        subprocess.run(list(argv), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kwargs)

    return run


def table(title: str, results: Sequence[Result], baseline: str, extra: dict[str, str] | None = None) -> str:
    """Medians side by side, each as a ratio to *baseline* (from this one run)."""
    base = next(r for r in results if r.name == baseline).median
    lines = [f"## {title}", "", "| what | median | min | ratio to " + baseline + " | note |", "|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r.name} | {_fmt(r.median)} | {_fmt(min(r.samples))} | {r.median / base:.2f}x | {r.note} |")
    for key, value in (extra or {}).items():
        lines.append(f"| {key} | {value} | | | |")
    return "\n".join(lines) + "\n"


def _fmt(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 10 else f"{seconds:.2f} s"
