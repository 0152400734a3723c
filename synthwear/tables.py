"""Reading the tidy daily table (``person_id, date, <channels>``) and writing files atomically.

Real exports are messy; every problem is reported as one line naming the file, the line (or
row) and the column, because a traceback tells a researcher nothing about their CSV.
"""

from __future__ import annotations

import csv
import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from synthwear.errors import SynthwearError

KEYS = ("person_id", "date")


def read_daily_table(
    path: Path,
    channels: list[str],
    *,
    columns: dict[str, str] | None = None,
    fmt: str = "auto",
    nonnegative: tuple[str, ...] = (),
    date_format: str = "ISO8601",
) -> pd.DataFrame:
    """Read and validate a daily table; returns person_id (str), date (datetime64) and float channels."""
    path = Path(path)
    fmt = fmt if fmt != "auto" else ("parquet" if path.suffix.lower() in (".parquet", ".pq") else "csv")
    if not path.is_file():
        raise SynthwearError(f"{path}: no such file")
    try:
        raw = pd.read_parquet(path) if fmt == "parquet" else pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise SynthwearError(f"{path}: the file is empty") from None
    except (ValueError, OSError, pd.errors.ParserError) as err:
        raise SynthwearError(f"{path}: cannot read as {fmt}: {str(err).splitlines()[0]}") from None
    header = next(csv.reader([path.open(encoding="utf-8", errors="replace").readline()])) if fmt == "csv" else []
    twice = sorted({name for name in header if header.count(name) > 1})
    if twice or raw.columns.duplicated().any():
        name = twice[0] if twice else raw.columns[raw.columns.duplicated()][0]
        raise SynthwearError(f"{path}: column {name!r} appears more than once in the header; which one is meant?")
    return validate_daily_table(
        raw,
        channels,
        source=path,
        columns=columns,
        nonnegative=nonnegative,
        header_lines=1 if fmt == "csv" else 0,
        date_format=date_format,
    )


def validate_daily_table(
    raw: pd.DataFrame,
    channels: list[str],
    *,
    source: Path | str,
    columns: dict[str, str] | None = None,
    nonnegative: tuple[str, ...] = (),
    header_lines: int = 0,
    date_format: str = "ISO8601",
) -> pd.DataFrame:
    """Check a raw frame against the schema; ``header_lines`` turns row numbers into file lines."""
    columns = columns or {}

    def place(row: int) -> str:
        return f"line {row + 1 + header_lines}" if header_lines else f"row {row + 1}"

    if raw.empty:
        raise SynthwearError(f"{source}: the file has no rows")
    wanted = {name: columns.get(name, name) for name in (*KEYS, *channels)}
    missing = [col for col in wanted.values() if col not in raw.columns]
    if missing:
        raise SynthwearError(
            f"{source}: missing column {missing[0]!r} (columns present: {', '.join(map(str, raw.columns))})"
        )
    frame = pd.DataFrame({name: raw[col] for name, col in wanted.items()}).reset_index(drop=True)

    person = frame["person_id"].astype(str).str.strip()
    empty = (person == "") | frame["person_id"].isna()
    if empty.any():
        raise SynthwearError(f"{source}: {place(int(np.argmax(empty)))}: column {wanted['person_id']!r} is empty")
    frame["person_id"] = person

    dates = (
        pd.to_datetime(frame["date"].str.strip(), errors="coerce", format=date_format)
        if frame["date"].dtype == object
        else pd.to_datetime(frame["date"], errors="coerce")
    )
    bad = dates.isna()
    if bad.any():
        row = int(np.argmax(bad))
        written = "ISO 8601 (YYYY-MM-DD)" if date_format == "ISO8601" else repr(date_format)
        raise SynthwearError(
            f"{source}: {place(row)}: column {wanted['date']!r}: {frame['date'][row]!r} is not a date written "
            f"{written}; dates are never guessed (set data.date_format to the file's format)"
        )
    frame["date"] = dates.dt.tz_localize(None).dt.normalize() if dates.dt.tz is not None else dates.dt.normalize()

    for name in channels:
        text = frame[name]
        if text.dtype == object:
            text = text.str.strip().replace({"": None, "NA": None, "NaN": None, "nan": None, "null": None})
        values = pd.to_numeric(text, errors="coerce")
        bad = values.isna() & text.notna()
        if bad.any():
            row = int(np.argmax(bad))
            raise SynthwearError(
                f"{source}: {place(row)}: column {wanted[name]!r}: {frame[name][row]!r} is not a number"
            )
        values = values.astype("float64")
        if not np.isfinite(values.fillna(0)).all():
            row = int(np.argmax(~np.isfinite(values.fillna(0))))
            raise SynthwearError(f"{source}: {place(row)}: column {wanted[name]!r}: {values[row]!r} is not finite")
        if name in nonnegative and (values < 0).any():
            row = int(np.argmax(values < 0))
            raise SynthwearError(f"{source}: {place(row)}: column {wanted[name]!r}: negative value {values[row]:g}")
        frame[name] = values

    duplicated = frame.duplicated(subset=list(KEYS), keep="first")
    if duplicated.any():
        row = int(np.argmax(duplicated))
        raise SynthwearError(
            f"{source}: {place(row)}: duplicate person-day ({frame['person_id'][row]}, {frame['date'][row].date()})"
        )
    for name in channels:
        if frame[name].notna().sum() == 0:
            raise SynthwearError(
                f"{source}: column {wanted[name]!r} has no observed value; there is nothing to learn for channel "
                f"{name!r} (remove it from the recipe's channels)"
            )
    frame = frame.dropna(subset=channels, how="all")
    if frame.empty:
        raise SynthwearError(f"{source}: no row has a value in any of the channels {', '.join(channels)}")
    return frame.sort_values(list(KEYS)).reset_index(drop=True)


def fingerprint(frame: pd.DataFrame) -> str:
    """A content hash of the validated table, so a run records exactly which data it saw."""
    digest = hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return "sha256:" + digest.hexdigest()


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary sibling path; it replaces ``target`` only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp's private 0600 is not what the user's files get
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def current_umask() -> int:
    """The process's umask (read by setting it, then putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_daily_table(frame: pd.DataFrame, target: Path) -> None:
    """Write CSV or Parquet (by suffix) without ever leaving a half-written file behind."""
    write_daily_tables([frame], target)


def write_daily_tables(frames: Iterable[pd.DataFrame], target: Path) -> None:
    """Write consecutive parts of one table as they come, so that memory holds one part at a time;
    the file appears only once every part is written."""
    target = Path(target)
    parquet = target.suffix.lower() in (".parquet", ".pq")
    with atomic_path(target) as tmp:
        writer = None
        try:
            for i, frame in enumerate(frames):
                out = frame.assign(date=pd.to_datetime(frame["date"]).dt.strftime("%Y-%m-%d"))
                if parquet:
                    table = pa.Table.from_pandas(out, preserve_index=False)
                    writer = writer or pq.ParquetWriter(tmp, table.schema)
                    writer.write_table(table)
                else:
                    out.to_csv(tmp, index=False, mode="w" if i == 0 else "a", header=i == 0)
        finally:
            if writer is not None:
                writer.close()


def check_output_file(target: Path, *, overwrite: bool) -> None:
    """A file the command will write: never a folder, an existing file only with ``overwrite``,
    and a place that exists and can be written; checked before any work."""
    target = Path(target)
    if target.is_dir():
        raise SynthwearError(f"{target}: is a folder; give a file name ending in .csv or .parquet")
    if target.exists() and not overwrite:
        raise SynthwearError(f"{target}: exists; pass --overwrite to replace it")
    if not target.parent.is_dir():
        raise SynthwearError(f"{target}: the folder {target.parent} does not exist")
    if not os.access(target.parent, os.W_OK):
        raise SynthwearError(f"{target}: the folder {target.parent} is not writable")
