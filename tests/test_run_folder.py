"""A run never costs the user a file: it writes only where nothing of theirs is, replaces an
earlier run only with --overwrite, refuses before any work, and keeps two processes apart."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from cohorts import REPO

from synthwear.cli import cli
from synthwear.errors import SynthwearError
from synthwear.run_folder import check_output_folder, publish, run_folder_lock, staging_folder

TINY = str(REPO / "recipes" / "tiny.yaml")


def run(out: Path, *extra: str):
    return CliRunner().invoke(cli, ["run", TINY, "--out", str(out), *extra])


def test_a_folder_of_user_files_is_refused_and_left_alone(tmp_path):
    mine = tmp_path / "mydata"
    mine.mkdir()
    (mine / "thesis.txt").write_text("years of work")
    for extra in ([], ["--overwrite"]):
        result = run(mine, *extra)
        assert result.exit_code == 1 and "not a synthwear run" in result.output
    assert [p.name for p in mine.iterdir()] == ["thesis.txt"] and (mine / "thesis.txt").read_text() == "years of work"


def test_a_file_is_never_replaced_by_a_run_folder(tmp_path):
    target = tmp_path / "notes.csv"
    target.write_text("a,b\n1,2\n")
    result = run(target, "--overwrite")
    assert result.exit_code == 1 and "is not a folder" in result.output
    assert target.read_text() == "a,b\n1,2\n"


def test_an_earlier_run_is_replaced_only_with_overwrite(tmp_path):
    out = tmp_path / "run"
    assert run(out).exit_code == 0
    first = (out / "run.json").stat().st_mtime_ns
    result = run(out)
    assert result.exit_code == 1 and "pass --overwrite" in result.output
    assert (out / "run.json").stat().st_mtime_ns == first
    assert run(out, "--overwrite", "--seed", "1").exit_code == 0
    assert json.loads((out / "run.json").read_text())["seed"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no staging, old copy or lock left beside it


def test_a_symbolic_link_as_the_run_folder_is_refused_even_with_overwrite(tmp_path):
    """Replacing an earlier run swaps folders by name: it would replace the link, not the run it points to."""
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "run.json").write_text("{}")
    (tmp_path / "latest").symlink_to("run")
    with pytest.raises(SynthwearError, match=r"latest: is a symbolic link; give the folder itself"):
        check_output_folder(tmp_path / "latest", overwrite=True)
    assert (tmp_path / "latest").is_symlink() and (tmp_path / "run" / "run.json").is_file()


def test_overwrite_never_takes_the_users_files_from_an_earlier_run(tmp_path):
    """A cohort sampled into a run folder, notes, a folder of one's own, a file put into model/: each
    stops --overwrite before any work and stays; a run's own files alone are replaced."""
    out = tmp_path / "run"
    assert run(out).exit_code == 0
    first = (out / "run.json").read_bytes()
    for name in ("cohort.csv", "mine/notes.txt", "model/my_copy.safetensors"):
        (out / name).parent.mkdir(exist_ok=True)
        (out / name).write_text("mine")
        result = run(out, "--overwrite")
        assert result.exit_code == 1 and "holds files no run wrote" in result.output
        assert name.split("/")[0] in result.output and "never other files" in result.output
        assert (out / name).read_text() == "mine" and (out / "run.json").read_bytes() == first
        (out / name).unlink()
    (out / "mine").rmdir()
    assert run(out, "--overwrite", "--seed", "1").exit_code == 0


def test_files_appearing_during_a_run_stop_its_publication(tmp_path):
    """Checked again at the swap: a file written into the earlier run while training stays, the run is not written."""
    out, staging = tmp_path / "run", tmp_path / ".run.tmp-x"
    for folder in (out, staging):
        folder.mkdir()
        (folder / "run.json").write_text(json.dumps({"recipe": {}}))
    (out / "cohort.csv").write_text("mine")
    with pytest.raises(SynthwearError, match="cohort.csv.*left alone and the run was not written"):
        publish(staging, out)
    assert (out / "cohort.csv").read_text() == "mine" and staging.is_dir()


def test_an_empty_folder_is_taken(tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    check_output_folder(out, overwrite=False)


@pytest.mark.parametrize("name", ["", "/tmp/elsewhere", "../../x", "a/b", ".hidden", "..", "-rf", "é" * 128])
def test_run_names_that_would_escape_runs_are_refused(tmp_path, name):
    """'é' * 128 is 256 bytes: more than a file system's folder name holds."""
    from synthwear.recipe import parse_recipe

    with pytest.raises(SynthwearError, match="plain folder name"):
        parse_recipe({"name": name, "data": {"dataset": "lifesnaps"}, "channels": {"steps": {"range": [0, 1]}}})


@pytest.mark.parametrize("name", ["ünï", "研究-1", "fitbit_v2.1"])
def test_run_names_in_any_script_are_folder_names(name):
    from synthwear.recipe import parse_recipe

    recipe = parse_recipe({"name": name, "data": {"dataset": "lifesnaps"}, "channels": {"steps": {"range": [0, 1]}}})
    assert recipe.name == name


def test_a_live_lock_names_the_process_holding_it(tmp_path):
    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / ".run.lock").write_text(str(holder.pid))
        with (
            pytest.raises(SynthwearError, match=f"another synthwear process \\(pid {holder.pid}\\)"),
            run_folder_lock(out),
        ):
            pass
    finally:
        holder.kill()
        holder.wait()


def test_a_killed_runs_lock_and_staging_are_cleared(tmp_path):
    out = tmp_path / "run"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / ".run.lock").write_text(str(dead.pid))
    (tmp_path / ".run.tmp-abc123").mkdir()
    (tmp_path / ".run.tmp-abc123" / "synthetic.csv").write_text("half")
    with run_folder_lock(out):
        assert (tmp_path / ".run.lock").read_text() == str(os.getpid())
        assert not (tmp_path / ".run.tmp-abc123").exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("umask, file_mode, folder_mode", [(0o022, 0o644, 0o755), (0o027, 0o640, 0o750)])
def test_written_files_and_run_folders_get_the_users_usual_permissions(tmp_path, umask, file_mode, folder_mode):
    from synthwear.run_folder import publish, staging_folder
    from synthwear.tables import atomic_path

    previous = os.umask(umask)
    try:
        out = tmp_path / "run"
        with staging_folder(out) as staging:
            with atomic_path(staging / "report.html") as tmp:
                tmp.write_text("<html></html>")
            publish(staging, out)
    finally:
        os.umask(previous)
    assert (out / "report.html").stat().st_mode & 0o777 == file_mode  # readable by the group, as their other files
    assert out.stat().st_mode & 0o777 == folder_mode


def test_a_staging_folder_that_cannot_be_made_is_one_line(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with (
        pytest.raises(SynthwearError, match="notes.txt/run: cannot be written"),
        staging_folder(tmp_path / "notes.txt" / "run"),
    ):
        pass
    assert (tmp_path / "notes.txt").read_text() == "mine"


def denied_writing(monkeypatch, folder: Path) -> None:
    """``folder`` as a user without write permission sees it: tests run as root, whom chmod does not stop."""
    access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: access(path, mode) and Path(path) != folder)


def test_a_folder_the_user_cannot_write_to_is_refused_before_any_work(tmp_path, monkeypatch):
    denied_writing(monkeypatch, tmp_path)
    result = run(tmp_path / "run")
    assert result.exit_code == 1 and f"{tmp_path / 'run'}: {tmp_path} is not writable" in result.output
    assert list(tmp_path.iterdir()) == []  # no lock, no staging: refused before anything
