"""Where a run writes: which folders it may take, the lock that keeps it alone there, and the swap.

A user's folder is never deleted or replaced by accident: a run writes only into a place that is
absent, an empty folder, or an earlier synthwear run (recognised by its ``run.json``), and replaces
an earlier run only when asked to (``overwrite``). All of this is checked before any work starts.
The folder is assembled under a hidden staging name beside the target and swapped into place, so a
killed run leaves no half-written result; the staging debris of a killed run is cleared by the next
run into the same place, under the lock that stops two processes from writing one run folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from synthwear.errors import SynthwearError
from synthwear.tables import current_umask, nearest_existing, unwritable

RUN_MARKER = "run.json"  # a folder holding this (with a recipe in it) is a synthwear run
# what a run writes (synthwear.pipeline) and ``evaluate``/``report`` rewrite; anything else is the user's
RUN_FILES = frozenset({RUN_MARKER, "metrics.json", "report.html", "synthetic.csv", "persons.csv"})
MODEL_FILES = frozenset({"model.json", "weights.safetensors", "fit.json"})  # in its model/ folder


def is_run_folder(path: Path) -> bool:
    """True when ``path`` is a folder a synthwear run wrote (its run.json names a recipe)."""
    try:
        return isinstance(json.loads((path / RUN_MARKER).read_text()).get("recipe"), dict)
    except (OSError, ValueError, AttributeError):
        return False


def unfinished_evaluation(path: Path) -> bool:
    """True for a run folder whose model and synthetic data are in place but whose evaluation was
    cut off (killed before metrics.json and the report were written): ``--resume`` finishes it."""
    return is_run_folder(path) and not all((path / name).is_file() for name in ("metrics.json", "report.html"))


def check_output_folder(out_dir: Path, *, overwrite: bool, resume: bool = False) -> None:
    """Refuse, in one line and before any work, every output place that would cost the user a file."""
    out_dir = Path(out_dir)
    if out_dir.is_symlink():  # replacing an earlier run would replace the link, not the folder it points to
        raise SynthwearError(f"{out_dir}: is a symbolic link; give the folder itself as --out, or another folder")
    if out_dir.exists() and not out_dir.is_dir():
        raise SynthwearError(f"{out_dir}: exists and is not a folder; a run writes a folder (choose another --out)")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not is_run_folder(out_dir):
            raise SynthwearError(
                f"{out_dir}: the folder holds files that are not a synthwear run; "
                "a run never replaces them (choose another --out)"
            )
        if not overwrite and not resume and unfinished_evaluation(out_dir):
            raise SynthwearError(
                f"{out_dir}: holds a run whose evaluation was cut off; pass --resume to finish it, "
                "or --overwrite to replace it"
            )
        if not overwrite:
            raise SynthwearError(f"{out_dir}: holds an earlier run; pass --overwrite to replace it")
        refuse_foreign_entries(out_dir, "move them out, or choose another --out")
    probe = nearest_existing(out_dir.parent)
    if not probe.is_dir():
        raise SynthwearError(f"{out_dir}: {probe} is a file, so the run folder cannot be made")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise SynthwearError(f"{out_dir}: {probe} is not writable")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


@contextmanager
def run_folder_lock(out_dir: Path) -> Iterator[None]:
    """Hold ``.<name>.lock`` beside the run folder; a second process is told which pid holds it.

    A lock left by a killed process (its pid is gone) is taken over, and that process's staging
    folders are cleared, so a kill -9 never blocks or litters the next run.
    """
    out_dir = Path(out_dir)
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise SynthwearError(f"{out_dir}: cannot create its parent folder ({err.strerror})") from None
    lock = out_dir.with_name(f".{out_dir.name}.lock")
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            break
        except FileExistsError:
            holder = read_lock_pid(lock)
            if holder is not None and pid_alive(holder):
                raise SynthwearError(
                    f"{out_dir}: another synthwear process (pid {holder}) is writing this run folder; "
                    f"wait for it, or remove {lock} if that process is gone"
                ) from None
            lock.unlink(missing_ok=True)  # stale: its process is gone
        except OSError as err:
            raise SynthwearError(f"{out_dir}: cannot write beside it ({err.strerror})") from None
    else:
        raise SynthwearError(f"{out_dir}: could not take the lock {lock}")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(str(os.getpid()))
        remove_staging(out_dir)
        yield
    finally:
        lock.unlink(missing_ok=True)


def read_lock_pid(lock: Path) -> int | None:
    try:
        return int(lock.read_text().strip())
    except (OSError, ValueError):
        return None


def foreign_entries(run_dir: Path) -> list[str]:
    """What in an earlier run's folder no run wrote (a cohort sampled into it, the user's notes): the
    user's, which replacing the run would delete."""
    names = []
    for entry in sorted(run_dir.iterdir()):
        if entry.name == "model" and entry.is_dir() and not entry.is_symlink():
            names += [
                f"model/{e.name}" for e in sorted(entry.iterdir()) if e.name not in MODEL_FILES or not e.is_file()
            ]
        elif entry.name not in RUN_FILES or not entry.is_file() or entry.is_symlink():
            names.append(entry.name)
    return names


def refuse_foreign_entries(run_dir: Path, outcome: str) -> None:
    """One line when replacing the run in ``run_dir`` would take files of the user's with it."""
    foreign = foreign_entries(run_dir)
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise SynthwearError(
            f"{run_dir}: holds files no run wrote ({shown}); --overwrite replaces a run, never other files: {outcome}"
        )


def remove_staging(out_dir: Path) -> None:
    """Clear hidden staging and replaced-run folders a killed run left beside ``out_dir``."""
    for debris in [*out_dir.parent.glob(f".{out_dir.name}.tmp-*"), *out_dir.parent.glob(f".{out_dir.name}.old-*")]:
        shutil.rmtree(debris, ignore_errors=True)


@contextmanager
def staging_folder(out_dir: Path) -> Iterator[Path]:
    """A hidden folder beside ``out_dir`` to assemble the run in; removed unless it was published.
    What cannot be written in it (a full disk) is one line naming ``out_dir``, the place the user
    knows, not the hidden folder."""
    try:
        staging = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.tmp-"))
    except OSError as err:
        raise unwritable(out_dir, err) from None
    staging.chmod(
        0o777 & ~current_umask()
    )  # published as the run folder: mkdtemp's private 0700 is not a user's folder
    try:
        yield staging
    except OSError as err:
        raise unwritable(out_dir, err) from None
    except SynthwearError as err:
        raise SynthwearError(str(err).replace(str(staging), str(out_dir))) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def publish(staging: Path, out_dir: Path) -> None:
    """Swap the assembled folder into place; an earlier run there (checked before work) is replaced."""
    if out_dir.is_dir() and any(out_dir.iterdir()) and not is_run_folder(out_dir):
        raise SynthwearError(
            f"{out_dir}: files appeared there during the run; they were left alone and the run was not written"
        )
    if not out_dir.exists():
        staging.rename(out_dir)
        return
    if any(out_dir.iterdir()):
        refuse_foreign_entries(out_dir, "they were left alone and the run was not written")
    old = out_dir.with_name(f".{out_dir.name}.old-{time.time_ns()}")
    out_dir.rename(old)
    try:
        staging.rename(out_dir)
    except OSError as err:
        old.rename(out_dir)
        raise SynthwearError(f"{out_dir}: could not be replaced ({err.strerror})") from None
    shutil.rmtree(old)


COHORT_FILES = ("synthetic.csv", "persons.csv")  # what evaluate and report read back as the run's cohort


def file_digest(path: Path) -> str:
    """The sha256 of a file's bytes, read in blocks (a cohort file can be gigabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()


def record_cohort_files(folder: Path, record: dict) -> None:
    """Keep the digest of each cohort file in the run's record (``files`` in run.json), so that a file
    cut short or edited later is noticed before it is evaluated as this run's cohort."""
    record["files"] = {name: file_digest(folder / name) for name in COHORT_FILES if (folder / name).is_file()}


def check_cohort_file(folder: Path, name: str, record: dict) -> None:
    """Refuse a cohort file whose bytes are not those the run wrote, or that the run did not write. A run
    from before digests were kept has no ``files`` to compare, and passes; a ``files`` that is not a
    mapping of names to digests was edited, and is refused."""
    if "files" not in record:
        return
    files, path = record["files"], folder / name
    if not isinstance(files, dict) or not all(isinstance(d, str) and d.startswith("sha256:") for d in files.values()):
        raise SynthwearError(
            f"{folder / RUN_MARKER}: 'files' is not what a synthwear run writes (file names and their sha256)"
        )
    if name not in files:
        if path.exists():
            raise SynthwearError(f"{path}: this run wrote no {name}; it was added later (remove it)")
        return
    if path.is_file() and file_digest(path) != files[name]:
        raise SynthwearError(
            f"{path}: not the file this run wrote (its sha256 differs from the one in run.json): cut short or "
            "edited, so what is evaluated would not be this run's cohort; run the recipe again"
        )
