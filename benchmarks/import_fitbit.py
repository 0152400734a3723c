"""Time the Fitbit importer against ``json.load`` alone, to show how much of an import is parsing.

Usage: python benchmarks/import_fitbit.py [EXPORT_DIR]
(default: the PMData sample the tests use, tests/data/fitbit_export_sample/p03)
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

from synthwear.default_plugins.fitbit_export import CHANNELS, read_fitbit_export

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "tests" / "data" / "fitbit_export_sample" / "p03"
REPEATS = 5


def best_of(function: Callable[[], object], repeats: int = REPEATS) -> float:
    """Fastest of ``repeats`` runs in seconds: the least disturbed by the rest of the machine."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def export_files(folder: Path) -> list[Path]:
    """The export's JSON files, in a one-person folder or in one sub-folder per person."""
    return [file for name in CHANNELS for file in sorted([*folder.glob(name), *folder.glob(f"*/{name}")])]


def load_only(files: list[Path]) -> int:
    """The baseline: parse every file, do nothing else; returns the records parsed."""
    total = 0
    for file in files:
        with file.open("rb") as handle:
            total += len(json.load(handle))
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export_dir", nargs="?", type=Path, default=SAMPLE)
    folder = parser.parse_args().export_dir
    files = export_files(folder)

    records = load_only(files)
    days = len(read_fitbit_export(folder).frame)
    parse_s = best_of(lambda: load_only(files))
    import_s = best_of(lambda: read_fitbit_export(folder))

    print(f"{folder} (best of {REPEATS})")
    print(f"{'':<22}{'records':>9}{'days out':>10}{'seconds':>10}")
    print(f"{'json.load only':<22}{records:>9}{'-':>10}{parse_s:>10.4f}")
    print(f"{'read_fitbit_export':<22}{records:>9}{days:>10}{import_s:>10.4f}")
    print(f"import / json.load = {import_s / parse_s:.2f}x (parsing is {parse_s / import_s:.0%} of the import)")


if __name__ == "__main__":
    main()
