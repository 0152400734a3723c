"""Time the Apple Health importer on a large generated export and show that its memory stays bounded.

Writes a synthetic ``export.xml`` of about ``--mb`` MB to a temporary folder (deleted afterwards):
an iPhone and an Apple Watch over enough days, heart rate every 5 minutes (a type the importer
skips, as most of a real export), overlapping steps from both, a night of sleep stages, resting HR,
HRV, SpO2 and breathing rate. Then imports it and prints records/s and the peak resident memory
(``resource.getrusage``), which should stay far below the file's size.

Usage: python benchmarks/import_apple_health.py [--mb 200] [--zip]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
import zipfile
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from synthwear.default_plugins.apple_health import read_apple_health

TZ = ZoneInfo("Europe/Berlin")
WATCH = (
    'sourceName="Alex’s Apple Watch" sourceVersion="9.3.1" device="&lt;&lt;HKDevice: 0x2836f8a00&gt;, '
    'name:Apple Watch, manufacturer:Apple Inc., model:Watch, hardware:Watch6,1, software:9.3.1&gt;"'
)
PHONE = (
    'sourceName="Alex’s iPhone" sourceVersion="16.3.1" device="&lt;&lt;HKDevice: 0x2836f8b40&gt;, '
    'name:iPhone, manufacturer:Apple Inc., model:iPhone, hardware:iPhone14,5, software:16.3.1&gt;"'
)
BYTES_PER_DAY = 180_000  # about what one generated day takes, to pick the number of days
HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n<HealthData locale="en_DE">\n <ExportDate value="{}"/>\n'


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def stamp(day: date, minute: int, offset: str) -> str:
    moment = datetime(day.year, day.month, day.day) + timedelta(minutes=minute)
    return f"{moment:%Y-%m-%d %H:%M:%S} {offset}"


def record(kind: str, source: str, unit: str, start: str, end: str, value: object, child: str = "") -> str:
    head = f' <Record type="HK{kind}" {source}{unit} creationDate="{end}" startDate="{start}" endDate="{end}" value="{value}"'
    return f"{head}>\n  {child}\n </Record>\n" if child else f"{head}/>\n"


def one_day(day: date) -> list[str]:
    """A day's records in the export's layout (offsets from the day's noon: good enough here)."""
    offset = datetime(day.year, day.month, day.day, 12, tzinfo=TZ).strftime("%z")
    at = lambda minute: stamp(day, minute, offset)  # noqa: E731
    motion = '<MetadataEntry key="HKMetadataKeyHeartRateMotionContext" value="0"/>'
    lines = [
        record("QuantityTypeIdentifierHeartRate", WATCH, ' unit="count/min"', at(m), at(m), 60 + m % 40, motion)
        for m in range(0, 1440, 5)
    ]
    lines += [
        record("QuantityTypeIdentifierStepCount", WATCH, ' unit="count"', at(m), at(m + 9), 80 + m % 97)
        for m in range(420, 1380, 10)
    ]
    lines += [
        record("QuantityTypeIdentifierStepCount", PHONE, ' unit="count"', at(m), at(m + 14), 60 + m % 53)
        for m in range(425, 1380, 16)
    ]
    stages = ["AsleepCore", "AsleepDeep", "AsleepCore", "AsleepREM", "Awake"]
    lines += [
        record(
            "CategoryTypeIdentifierSleepAnalysis",
            WATCH,
            "",
            at(m),
            at(m + 20),
            f"HKCategoryValueSleepAnalysis{stages[m // 20 % 5]}",
        )
        for m in range(0, 420, 20)
    ]
    lines.append(
        record("CategoryTypeIdentifierSleepAnalysis", PHONE, "", at(0), at(430), "HKCategoryValueSleepAnalysisInBed")
    )
    lines.append(
        record("QuantityTypeIdentifierRestingHeartRate", WATCH, ' unit="count/min"', at(1), at(1430), 55 + day.day % 7)
    )
    lines += [
        record("QuantityTypeIdentifierHeartRateVariabilitySDNN", WATCH, ' unit="ms"', at(m), at(m + 1), 40 + m % 20)
        for m in range(60, 400, 70)
    ]
    lines += [
        record("QuantityTypeIdentifierOxygenSaturation", WATCH, ' unit="%"', at(m), at(m), 0.95 + m % 4 / 100)
        for m in range(30, 420, 40)
    ]
    lines += [
        record("QuantityTypeIdentifierRespiratoryRate", WATCH, ' unit="count/min"', at(m), at(m + 1), 14 + m % 3)
        for m in range(30, 420, 40)
    ]
    return lines


def write_export(file: Path, megabytes: int) -> int:
    """Write the export day by day (never whole in memory); returns the number of records."""
    days = max(1, megabytes * 1_000_000 // BYTES_PER_DAY)
    first = date(2020, 1, 1)
    records = 0
    with file.open("w", encoding="utf-8") as out:
        out.write(HEAD.format(stamp(first + timedelta(days=days), 600, "+0100")))
        for n in range(days):
            lines = one_day(first + timedelta(days=n))
            records += len(lines)
            out.write("".join(lines))
        out.write("</HealthData>\n")
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200, help="size of the generated export.xml (MB)")
    parser.add_argument("--zip", action="store_true", help="also read it from an export.zip")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="synthwear-apple-") as folder:
        file = Path(folder) / "export.xml"
        start = time.perf_counter()
        records = write_export(file, args.mb)
        print(f"wrote {file.stat().st_size / 1e6:,.0f} MB, {records:,} records in {time.perf_counter() - start:.1f} s")
        targets = [file]
        if args.zip:
            with zipfile.ZipFile(Path(folder) / "export.zip", "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
                archive.write(file, "apple_health_export/export.xml")
            targets.append(Path(folder) / "export.zip")
        before = peak_rss_mib()
        for target in targets:
            start = time.perf_counter()
            result = read_apple_health(target)
            seconds = time.perf_counter() - start
            print(
                f"{target.name}: {records / seconds:,.0f} records/s ({seconds:.1f} s, {len(result.frame):,} days); "
                f"peak RSS {peak_rss_mib():,.0f} MiB (before the import: {before:,.0f} MiB)"
            )


if __name__ == "__main__":
    main()
