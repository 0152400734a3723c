"""Reading the tidy daily table (``person_id, date, <channels>``) and writing files atomically.

Real exports are messy; every problem is reported as one line naming the file, the line (or
row) and the column, because a traceback tells a researcher nothing about their CSV.
"""

from __future__ import annotations

import csv
import hashlib
import os
import tempfile
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from synthwear.errors import SynthwearError, shown

KEYS = ("person_id", "date")
PARQUET = (".parquet", ".pq")  # a table file with another suffix is CSV


def is_parquet(path: Path) -> bool:
    return Path(path).suffix.lower() in PARQUET


def read_daily_table(
    path: Path,
    channels: list[str],
    *,
    columns: dict[str, str] | None = None,
    fmt: str = "auto",
    nonnegative: tuple[str, ...] = (),
    date_format: str = "ISO8601",
    empty_channels: bool = False,
) -> pd.DataFrame:
    """Read and validate a daily table; returns person_id (str), date (datetime64) and float channels.
    ``empty_channels``: a channel may have no observed value (a history to continue; never training data)."""
    path = Path(path)
    fmt = fmt if fmt != "auto" else ("parquet" if is_parquet(path) else "csv")
    if path.is_dir():
        raise SynthwearError(f"{path}: is a folder, not a CSV or Parquet file")
    if not path.is_file():
        raise SynthwearError(f"{path}: no such file")
    if fmt == "csv":
        refuse_nul_bytes(path)
    try:
        raw = pd.read_parquet(path) if fmt == "parquet" else pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise SynthwearError(f"{path}: the file is empty") from None
    except (ValueError, OSError, pd.errors.ParserError) as err:
        raise SynthwearError(f"{path}: cannot read as {fmt}: {str(err).splitlines()[0]}") from None
    header = first_row(path) if fmt == "csv" else []
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
        empty_channels=empty_channels,
    )


def refuse_nul_bytes(path: Path) -> None:
    """A CSV holding a NUL byte (a damaged or padded file) is refused: pandas' parser ends a cell at
    one, so '1\\x0000' would read as 1. Read in blocks, so a large file costs no memory. UTF-16 text
    (its BOM first), where every other byte is NUL, is left to the reader's encoding error."""
    line = 1
    with path.open("rb") as handle:
        if handle.read(2) in (b"\xff\xfe", b"\xfe\xff"):
            return
        handle.seek(0)
        for block in iter(lambda: handle.read(1 << 20), b""):
            at = block.find(b"\x00")
            if at >= 0:
                line += block.count(b"\n", 0, at)
                raise SynthwearError(f"{path}: line {line}: holds a NUL byte (a damaged file?)")
            line += block.count(b"\n")


def first_row(path: Path) -> list[str]:
    """A CSV's header as written (pandas renames a repeated column, so it is read apart)."""
    with path.open(encoding="utf-8", errors="replace") as handle:
        return next(csv.reader([handle.readline()]))


def read_person_table(path: Path, *, ids: bool = True) -> pd.DataFrame:
    """A per-person table (CSV or Parquet by suffix) as text cells: its columns are typed by the
    attribute model, which also names any bad row. ``ids``: a person_id column is required (a seed
    table of persons still to generate has none)."""
    path = Path(path)
    if path.is_dir():
        raise SynthwearError(f"{path}: is a folder; give the persons table's CSV or Parquet file")
    if not path.is_file():
        raise SynthwearError(f"{path}: no such file (the persons table)")
    if not is_parquet(path):
        refuse_nul_bytes(path)
    try:
        table = pd.read_parquet(path) if is_parquet(path) else pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise SynthwearError(f"{path}: the file is empty") from None
    except (ValueError, OSError, pd.errors.ParserError) as err:
        raise SynthwearError(f"{path}: cannot read the persons table: {str(err).splitlines()[0]}") from None
    header = first_row(path) if not is_parquet(path) else []
    twice = sorted({name for name in header if header.count(name) > 1})
    if twice:  # pandas would have read the second as 'name.1'
        raise SynthwearError(f"{path}: column {twice[0]!r} appears more than once in the header; which one is meant?")
    if ids and "person_id" not in table.columns:
        raise SynthwearError(f"{path}: no 'person_id' column (columns: {', '.join(map(str, table.columns))})")
    if "person_id" in table.columns:  # read as the daily table's are, so that ' p01' finds p01's days
        place = Place(path) if is_parquet(path) else Place(path, 1)
        table["person_id"] = checked_persons(table["person_id"], place, "person_id")
    return table


@dataclass(frozen=True)
class Place:
    """Where a bad value is: the file, and a row (a line of the file when its header lines are known)."""

    source: Path | str
    header_lines: int = 0

    def at(self, row: int) -> str:
        return f"{self.source}: " + (f"line {row + 1 + self.header_lines}" if self.header_lines else f"row {row + 1}")

    def error(self, row: int, column: str, problem: str) -> SynthwearError:
        return SynthwearError(f"{self.at(row)}: column {column!r}: {problem}")


def table_place(source: Path | str) -> Place:
    """Where a row of a per-person table is: a CSV file's line (after its header line), as daily tables
    say it, else the row (Parquet, a DataFrame given in Python)."""
    return Place(source, 1 if str(source).lower().endswith(".csv") else 0)


def validate_daily_table(
    raw: pd.DataFrame,
    channels: list[str],
    *,
    source: Path | str,
    columns: dict[str, str] | None = None,
    nonnegative: tuple[str, ...] = (),
    header_lines: int = 0,
    date_format: str = "ISO8601",
    empty_channels: bool = False,
) -> pd.DataFrame:
    """Check a raw frame against the schema; ``header_lines`` turns row numbers into file lines.
    The first problem ends it with one line naming the file, the row and the column."""
    place = Place(source, header_lines)
    if raw.empty:
        raise SynthwearError(f"{source}: the file has no rows")
    wanted = {name: (columns or {}).get(name, name) for name in (*KEYS, *channels)}
    missing = [col for col in wanted.values() if col not in raw.columns]
    if missing:
        raise SynthwearError(
            f"{source}: missing column {missing[0]!r} (columns present: {', '.join(repr(str(c)) for c in raw.columns)})"
        )
    frame = pd.DataFrame({name: as_cells(raw[col]) for name, col in wanted.items()}).reset_index(drop=True)
    frame["person_id"] = checked_persons(frame["person_id"], place, wanted["person_id"])
    frame["date"] = checked_dates(frame["date"], place, wanted["date"], date_format)
    for name in channels:
        frame[name] = checked_values(frame[name], place, wanted[name], name in nonnegative)
    duplicated = frame.duplicated(subset=list(KEYS), keep="first")
    if duplicated.any():
        row = int(np.argmax(duplicated))
        raise SynthwearError(
            f"{place.at(row)}: duplicate person-day ({frame['person_id'][row]}, {frame['date'][row].date()})"
        )
    for name in [] if empty_channels else channels:
        if frame[name].notna().sum() == 0:
            raise SynthwearError(
                f"{source}: column {wanted[name]!r} has no observed value; there is nothing to learn for channel "
                f"{name!r} (remove it from the recipe's channels)"
            )
    frame = frame.dropna(subset=channels, how="all")
    if frame.empty:
        raise SynthwearError(f"{source}: no row has a value in any of the channels {', '.join(channels)}")
    return frame.sort_values(list(KEYS)).reset_index(drop=True)


def as_cells(column: pd.Series) -> pd.Series:
    """A Parquet dictionary (categorical) column as the values it encodes, checked like any other."""
    return column.astype(object) if isinstance(column.dtype, pd.CategoricalDtype) else column


def checked_persons(ids: pd.Series, place: Place, column: str) -> pd.Series:
    """Ids as stripped text; byte strings (Parquet's binary columns) read as the UTF-8 text they hold,
    not as Python's b'...'."""
    if pd.api.types.infer_dtype(ids, skipna=True) in ("bytes", "mixed"):
        ids = pd.Series([utf8_text(cell, place, column, row) for row, cell in enumerate(ids)], index=ids.index)
    person = ids.astype(str).str.strip()
    empty = (person == "") | ids.isna()
    if empty.any():
        raise place.error(int(np.argmax(empty)), column, "no person id")
    return person


def utf8_text(cell: object, place: Place, column: str, row: int) -> object:
    """A byte-string cell as its UTF-8 text (another cell as it is); bytes that are not UTF-8 name the row."""
    if not isinstance(cell, bytes):
        return cell
    try:
        return cell.decode("utf-8")
    except UnicodeDecodeError:
        raise place.error(row, column, f"{shown(cell)} is not UTF-8 text") from None


def refuse_nested(written: pd.Series, place: Place, column: str) -> None:
    """A Parquet list or struct column holds several values per day, where one number is read."""
    nested = written.map(lambda cell: isinstance(cell, (list, tuple, dict, np.ndarray)))
    if nested.any():
        row = int(np.argmax(nested))
        raise place.error(row, column, f"{shown(written[row])} is not a number (one value per day is read)")


def checked_dates(written: pd.Series, place: Place, column: str, date_format: str) -> pd.Series:
    """Calendar days; text is parsed only in the stated format (03/05/2021 is never guessed). Date
    and timestamp cells (Parquet's date32, timestamps) are taken as they are; a number is refused,
    since pandas would read 20210501 as nanoseconds after 1970."""
    kind = pd.api.types.infer_dtype(written, skipna=True)
    if kind in ("datetime64", "datetime", "date"):
        dates = pd.to_datetime(written, errors="coerce")
    elif kind in ("string", "empty"):
        dates = parsed_dates(written.astype(object).str.strip(), date_format)
    else:
        row = int(np.argmax([not isinstance(cell, str) and pd.notna(cell) for cell in written]))
        raise place.error(row, column, f"{shown(written.iloc[row])} is not a date (dates are text or date values)")
    bad = dates.isna()
    if bad.any():
        row = int(np.argmax(bad))
        form = "ISO 8601 (YYYY-MM-DD)" if date_format == "ISO8601" else repr(date_format)
        problem = f"{written[row]!r} is not a date written {form}; dates are never guessed (set data.date_format to the file's format)"
        if readable_but_out_of_range(written[row], date_format):
            problem = f"{written[row]!r} is outside {DAY_RANGE}, the days a daily table can hold"
        raise place.error(row, column, problem)
    return dates.dt.tz_localize(None).dt.normalize() if dates.dt.tz is not None else dates.dt.normalize()


FIRST_DAY, LAST_DAY = pd.Timestamp.min.ceil("D"), pd.Timestamp.max.floor("D")  # pandas' nanosecond clock
DAY_RANGE = f"{FIRST_DAY.date()}..{LAST_DAY.date()}"


def readable_but_out_of_range(written: object, date_format: str) -> bool:
    """True for a date written in ``date_format`` that a daily table cannot hold (1600-01-01, 2300-01-01)."""
    text = str(written).strip()
    try:
        day = datetime.fromisoformat(text[:10]) if date_format == "ISO8601" else datetime.strptime(text, date_format)
    except ValueError:
        return False
    return not FIRST_DAY.to_pydatetime() <= day <= LAST_DAY.to_pydatetime()


def parsed_dates(text: pd.Series, date_format: str) -> pd.Series:
    """Text in ``date_format`` as timestamps. A time zone offset is dropped, not converted: a wearable's
    day is its wearer's local day, as written. A column whose offsets differ (daylight saving time)
    pandas parses only one cell at a time, so such a column is parsed cell by cell."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # pandas' notice that offsets differ: handled here
        try:
            dates = pd.to_datetime(text, errors="coerce", format=date_format)
        except ValueError:  # newer pandas refuses offsets that differ, where older ones give objects
            dates = text
    if dates.dtype != object:
        return dates
    return pd.to_datetime(text.map(lambda cell: wall_clock(cell, date_format)))


def wall_clock(cell: str, date_format: str) -> pd.Timestamp:
    """One cell as the time written in it, without its offset (NaT where it is not a date)."""
    stamp = pd.to_datetime(cell, errors="coerce", format=date_format)
    return stamp.tz_localize(None) if stamp.tzinfo else stamp


def checked_values(written: pd.Series, place: Place, column: str, nonnegative: bool) -> pd.Series:
    """Finite float64 numbers (common spellings of "missing" become NaN), non-negative where asked."""
    kind = pd.api.types.infer_dtype(written, skipna=True)  # one pass over the column, read for both checks
    if kind == "boolean":  # pandas would read true/false as 1/0
        row = int(np.argmax(written.notna()))
        raise place.error(row, column, f"{shown(written.iloc[row])} is not a number (the column holds true/false)")
    if written.dtype == object and kind not in ("string", "empty"):
        refuse_nested(written, place, column)
    text = written
    if text.dtype == object or pd.api.types.is_string_dtype(text.dtype):  # pandas 3 reads text as "str"
        # text cells stripped; other cells (Parquet decimals, bytes) left as they are
        text = text.astype(object).map(lambda cell: cell.strip() if isinstance(cell, str) else cell)
        text = text.replace({"": None, "NA": None, "NaN": None, "nan": None, "null": None})
    values = pd.to_numeric(text, errors="coerce")
    bad = values.isna() & text.notna()
    if bad.any():
        row = int(np.argmax(bad))
        raise place.error(row, column, f"{shown(written[row])} is not a number")
    values = values.astype("float64")
    infinite = ~np.isfinite(values.fillna(0))
    if infinite.any():
        row = int(np.argmax(infinite))
        raise place.error(row, column, f"{shown(values[row])} is not finite")
    if nonnegative and (values < 0).any():
        row = int(np.argmax(values < 0))
        raise place.error(row, column, f"negative value {values[row]:g}")
    return values


def fingerprint(frame: pd.DataFrame) -> str:
    """A content hash of the validated table, so a run records exactly which data it saw."""
    digest = hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return "sha256:" + digest.hexdigest()


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary sibling path; it replaces ``target`` only if the block succeeds."""
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as err:
        raise unwritable(target, err) from None
    os.close(fd)
    try:
        try:
            yield Path(tmp)
        except OSError as err:  # the block's own writing: a full disk, a quota, a vanished folder
            raise unwritable(target, err) from None
        try:
            os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp's private 0600 is not what the user's files get
            os.replace(tmp, target)
        except OSError as err:
            raise unwritable(target, err) from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def unwritable(target: Path, err: OSError) -> SynthwearError:
    """A file that cannot be written (a folder in its place, no permission, a full disk) as one line."""
    return SynthwearError(f"{target}: cannot be written ({err.strerror or err})")


def nearest_existing(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists: where a folder would be made, or what is in the way."""
    path = Path(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def current_umask() -> int:
    """The process's umask (read by setting it, then putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_daily_table(frame: pd.DataFrame, target: Path) -> None:
    """Write CSV or Parquet (by suffix) without ever leaving a half-written file behind."""
    write_daily_tables([frame], target)


def write_daily_tables(frames: Iterable[pd.DataFrame], target: Path) -> None:
    """Write consecutive parts of one table (daily, or persons) as they come, so that memory holds one
    part at a time; the file appears only once every part is written. Dates are written as YYYY-MM-DD."""
    target = Path(target)
    parquet = is_parquet(target)
    with atomic_path(target) as tmp:
        writer = None
        try:
            for i, frame in enumerate(frames):
                out = frame
                if "date" in frame.columns:  # a persons table has none
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


def check_output_file(target: Path, *, overwrite: bool, inputs: Sequence[Path | None] = ()) -> None:
    """A file the command will write: never a folder, never one of the command's own ``inputs`` nor a
    file already inside an input folder (not even with ``overwrite``: the user's data would be lost to
    its own output), an existing file only with ``overwrite``, and a place that exists and can be
    written; checked before any work."""
    target = Path(target)
    read = next((Path(p) for p in inputs if p is not None and Path(p).resolve() == target.resolve()), None)
    if read is not None:
        raise SynthwearError(f"{target}: is {read}, which this command reads; write to another file")
    folder = next((Path(p) for p in inputs if p is not None and Path(p).resolve() in target.resolve().parents), None)
    if folder is not None and target.exists():
        raise SynthwearError(f"{target}: is a file of {folder}, which this command reads; write to another file")
    if target.is_dir():
        raise SynthwearError(f"{target}: is a folder; give a file name ending in .csv or .parquet")
    if not (target.suffix.lower() == ".csv" or is_parquet(target)):
        raise SynthwearError(
            f"{target}: give a file name ending in .csv or .parquet (the suffix chooses the format; "
            f"{target.suffix or 'no suffix'} is neither)"
        )
    if target.exists() and not overwrite:
        raise SynthwearError(f"{target}: exists; pass --overwrite to replace it")
    if not target.parent.is_dir():
        in_the_way = nearest_existing(target.parent)
        if in_the_way.is_file():
            raise SynthwearError(f"{target}: {in_the_way} is a file, not a folder")
        raise SynthwearError(f"{target}: the folder {target.parent} does not exist")
    if not os.access(target.parent, os.W_OK):
        raise SynthwearError(f"{target}: the folder {target.parent} is not writable")
