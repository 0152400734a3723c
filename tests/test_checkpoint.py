"""kill -9 in the middle of training, then --resume: the same model as a run never killed, and no
debris left beside the run folder."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from cohorts import REPO
from safetensors import safe_open
from safetensors.torch import load_file, save_file

CLI = [sys.executable, "-c", "from synthwear.cli import main; main()"]


@pytest.fixture
def slow_recipe(tmp_path):
    """The tiny recipe, long enough (5 epochs of a few hundred ms) to be killed in the middle."""
    raw = yaml.safe_load((REPO / "recipes" / "tiny.yaml").read_text())
    raw["training"].update(epochs=5, patience=5)
    raw["windows"]["stride"] = 1
    raw["generator"].update(n_embd=32)
    raw["evaluation"]["evaluators"] = [{"name": "forecast"}]
    path = tmp_path / "slow.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def kill_after_checkpoints(command: list[str], checkpoint, count: int, sig=signal.SIGKILL, log=None) -> int:
    """Start ``command``; send it ``sig`` (kill -9) once its checkpoint has been written ``count``
    times; its exit status, its output in ``log``."""
    with open(log or os.devnull, "w") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, preexec_fn=default_sigint)
        return signal_after(process, checkpoint, count, sig)


def default_sigint() -> None:
    """Ctrl-C as a terminal delivers it: a suite started in the background (``cmd &``) passes SIGINT
    on as ignored, and a Python started with SIGINT ignored never raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def signal_after(process: subprocess.Popen, checkpoint, count: int, sig, kill=None) -> int:
    """``kill(pid)`` instead of ``sig``, where one signal to the process is not enough."""
    seen, last = 0, None
    deadline = time.monotonic() + 120
    while seen < count and time.monotonic() < deadline and process.poll() is None:
        stamp = checkpoint.stat().st_mtime_ns if checkpoint.exists() else None
        if stamp is not None and stamp != last:
            seen, last = seen + 1, stamp
        time.sleep(0.005)
    assert process.poll() is None, "the run finished before it could be killed"
    if kill:
        kill(process.pid)
    else:
        os.kill(process.pid, sig)
    return process.wait(timeout=60)


# DP-SGD for the slow recipe: 30 noisy steps, a checkpoint every 6
PRIVATE = {"target_epsilon": 4.0, "accountant": "rdp", "sample_rate": 0.5, "steps": 30, "checkpoints": 5}


@pytest.fixture
def slow_private_recipe(tmp_path, slow_recipe):
    """The slow recipe trained with DP-SGD: 30 noisy steps, a checkpoint every 6."""
    raw = yaml.safe_load(slow_recipe.read_text())
    raw["privacy"] = PRIVATE
    path = tmp_path / "private.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture
def slow_refit_recipe(tmp_path, slow_recipe):
    """The slow recipe with ``training.refit``: 5 epochs that choose the best, then that many again."""
    raw = yaml.safe_load(slow_recipe.read_text())
    raw["training"]["refit"] = True
    path = tmp_path / "refit.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture
def slow_ema_recipe(tmp_path, slow_recipe):
    """The slow recipe validating and keeping a weight average (``training.ema``)."""
    raw = yaml.safe_load(slow_recipe.read_text())
    raw["training"]["ema"] = 0.999
    path = tmp_path / "ema.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize(
    ("recipe", "checkpoints"),
    [("slow_recipe", 2), ("slow_private_recipe", 2), ("slow_refit_recipe", 7), ("slow_ema_recipe", 2)],
    ids=["plain", "dp-sgd", "refit", "ema"],
)
def test_resume_after_kill_gives_the_uninterrupted_model(tmp_path, recipe, checkpoints, request):
    """Under DP-SGD as well: the accountant, the optimizer and every random stream (persons drawn,
    windows picked, noise) continue where they were, so the noise and the guarantee are the same.
    With ``training.refit`` the kill comes while refitting (the 7th checkpoint: 5 epochs, then the refit's)."""
    slow_recipe = request.getfixturevalue(recipe)
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    assert subprocess.run([*CLI, "run", str(slow_recipe), "--out", str(reference)], capture_output=True).returncode == 0
    checkpoint = tmp_path / ".resumed.checkpoint.safetensors"
    kill_after_checkpoints([*CLI, "run", str(slow_recipe), "--out", str(resumed)], checkpoint, checkpoints)
    assert checkpoint.exists() and not resumed.exists()
    done = subprocess.run([*CLI, "run", str(slow_recipe), "--out", str(resumed), "--resume"], capture_output=True)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    expected, got = (load_file(folder / "model" / "weights.safetensors") for folder in (reference, resumed))
    assert all((expected[k] == got[k]).all() for k in expected)
    runs = [json.loads((folder / "run.json").read_text())["training"] for folder in (reference, resumed)]
    assert runs[0]["history"] == [{**r, "train_loss": pytest.approx(r["train_loss"])} for r in runs[1]["history"]]
    if recipe == "slow_refit_recipe":  # killed while refitting: checkpoint 7 of 5 + the best epoch's count
        refits = [run["refit"] for run in runs]
        assert refits[0]["epochs"] == refits[1]["epochs"] == runs[0]["best_epoch"] >= 2
        assert refits[0]["history"] == [
            {**r, "train_loss": pytest.approx(r["train_loss"])} for r in refits[1]["history"]
        ]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no lock, staging or checkpoint
    privacy = [json.loads((folder / "run.json").read_text()).get("privacy") for folder in (reference, resumed)]
    assert privacy[0] == privacy[1]  # the same epsilon, from the same accountant history


def test_ctrl_c_keeps_the_checkpoint_says_how_to_resume_and_leaves_nothing_else(tmp_path, slow_recipe):
    checkpoint, log = tmp_path / ".run.checkpoint.safetensors", tmp_path / "output.txt"
    status = kill_after_checkpoints(
        [*CLI, "run", str(slow_recipe), "--out", str(tmp_path / "run")], checkpoint, 1, signal.SIGINT, log
    )
    assert status == 130
    assert "interrupted: training so far is kept in" in log.read_text() and "--resume" in log.read_text()
    assert "Traceback" not in log.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [".run.checkpoint.safetensors", "output.txt", "slow.yaml"]
    )


def test_resume_without_a_checkpoint_is_refused(tmp_path, slow_recipe):
    from click.testing import CliRunner

    from synthwear.cli import cli

    result = CliRunner().invoke(cli, ["run", str(slow_recipe), "--out", str(tmp_path / "run"), "--resume"])
    assert result.exit_code == 1 and "no checkpoint to resume" in result.output


@pytest.fixture(scope="module", params=["plain", "dp-sgd"])
def uninterrupted(tmp_path_factory, request):
    """The slow recipe run once, never killed: the recipe and the run's folder. Under DP-SGD too,
    where a resumed run must also keep the accountant's spent budget."""
    folder = tmp_path_factory.mktemp("uninterrupted")
    raw = yaml.safe_load((REPO / "recipes" / "tiny.yaml").read_text())
    raw["training"].update(epochs=5, patience=5)
    raw["windows"]["stride"] = 1
    raw["generator"].update(n_embd=32)
    raw["evaluation"]["evaluators"] = [{"name": "forecast"}, {"name": "discriminative"}]
    if request.param == "dp-sgd":
        raw["privacy"] = PRIVATE
    recipe = folder / "slow.yaml"
    recipe.write_text(yaml.safe_dump(raw))
    done = subprocess.run([*CLI, "run", str(recipe), "--out", str(folder / "run")], capture_output=True)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    return recipe, folder / "run"


MOMENTS = {  # what a kill -9 interrupts, told by what the run has left beside its folder so far
    "starting up": lambda place: False,  # killed after the first half second
    "reading the data": lambda place: (place / ".run.lock").exists(),
    "training": lambda place: (place / ".run.checkpoint.safetensors").exists(),
    "writing the run folder": lambda place: any(place.glob(".run.tmp-*")),
    "evaluating": lambda place: (place / "run" / "run.json").exists(),
    "writing the report": lambda place: (place / "run" / "metrics.json").exists(),
}


@pytest.mark.parametrize("moment", MOMENTS)
def test_kill_at_any_point_then_resume_gives_the_uninterrupted_run(tmp_path, uninterrupted, moment):
    """kill -9 as soon as the run reaches ``moment``, then what the user is told to do: ``--resume``
    where anything is kept, else the same command again. The result is the run never killed, and
    nothing else is left beside it."""
    recipe, reference = uninterrupted
    out = tmp_path / "run"
    command = [*CLI, "run", str(recipe), "--out", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + (0.5 if moment == "starting up" else 120)
    while time.monotonic() < deadline and process.poll() is None and not MOMENTS[moment](tmp_path):
        time.sleep(0.001)
    process.kill()
    assert process.wait(timeout=60) == -signal.SIGKILL  # killed while it ran, not after it finished
    if not (out / "report.html").is_file():  # else it had finished; --resume would say so
        kept = (tmp_path / ".run.checkpoint.safetensors").exists() or out.exists()
        again = subprocess.run(command + ["--resume"] * kept, capture_output=True)
        assert again.returncode == 0, again.stderr.decode()[-2000:]
    expected, got = (load_file(folder / "model" / "weights.safetensors") for folder in (reference, out))
    assert all((expected[k] == got[k]).all() for k in expected)
    assert (out / "synthetic.csv").read_bytes() == (reference / "synthetic.csv").read_bytes()
    metrics = [json.loads((folder / "metrics.json").read_text()) for folder in (reference, out)]
    assert metrics[0] == metrics[1] and (out / "report.html").is_file()
    privacy = [json.loads((folder / "run.json").read_text()).get("privacy") for folder in (reference, out)]
    assert privacy[0] == privacy[1]  # under DP-SGD: the same spent budget, from the same accountant history
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no lock, staging or checkpoint


def test_resume_of_a_complete_run_says_there_is_nothing_to_resume(uninterrupted):
    recipe, reference = uninterrupted
    done = subprocess.run([*CLI, "run", str(recipe), "--out", str(reference), "--resume"], capture_output=True)
    assert done.returncode == 1 and b"the run is complete, nothing to resume" in done.stdout + done.stderr


TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]


def kill_process_tree(pid: int) -> None:
    """kill -9 of a process and every process below it, as the end of a job is: torchrun starts
    its training processes in sessions of their own, so a kill of its group alone leaves them running."""
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while the list was read
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, stack = [], [pid]
    while stack:
        tree.append(stack.pop())
        stack.extend(children.get(tree[-1], []))
    for member in tree:
        with contextlib.suppress(ProcessLookupError):
            os.kill(member, signal.SIGKILL)


@pytest.fixture
def torchrun_options(tmp_path):
    """subprocess options for torchrun: one thread per process, its scratch files in a folder of their own."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    return {"env": {**os.environ, "OMP_NUM_THREADS": "1", "TMPDIR": str(scratch)}, "cwd": scratch}


@pytest.mark.parametrize("recipe", ["slow_recipe", "slow_private_recipe"], ids=["plain", "dp-sgd"])
def test_a_killed_torchrun_run_resumes_on_as_many_processes_to_the_uninterrupted_model(
    tmp_path, recipe, request, torchrun_options
):
    """Each rank draws its own windows, persons, dropout and (rank 0) DP noise: the one checkpoint
    rank 0 writes holds every rank's generators, so the resumed ranks continue their own streams.
    A resume with another number of processes is refused: its ranks would draw other shards."""
    recipe, options = request.getfixturevalue(recipe), torchrun_options
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"

    def torchrun(out, *more):
        command = [*TORCHRUN, "-m", "synthwear.distributed", str(recipe), "--out", str(out), *more]
        return subprocess.run(command, capture_output=True, text=True, timeout=300, **options)

    assert (done := torchrun(reference)).returncode == 0, done.stderr[-2000:]
    checkpoint = tmp_path / ".resumed.checkpoint.safetensors"
    command = [*TORCHRUN, "-m", "synthwear.distributed", str(recipe), "--out", str(resumed)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **options)
    signal_after(process, checkpoint, 2, None, kill=kill_process_tree)
    assert checkpoint.exists() and not resumed.exists()
    alone = subprocess.run(
        [*CLI, "run", str(recipe), "--out", str(resumed), "--resume"], capture_output=True, text=True
    )
    assert alone.returncode == 1 and "written by 2 training processes, this run has 1" in alone.stdout + alone.stderr
    assert (done := torchrun(resumed, "--resume")).returncode == 0, done.stderr[-2000:]
    expected, got = (load_file(folder / "model" / "weights.safetensors") for folder in (reference, resumed))
    assert all((expected[k] == got[k]).all() for k in expected)
    runs = [json.loads((folder / "run.json").read_text()) for folder in (reference, resumed)]
    assert runs[0]["training"]["history"] == [
        {**r, "train_loss": pytest.approx(r["train_loss"])} for r in runs[1]["training"]["history"]
    ]
    assert runs[0].get("privacy") == runs[1].get("privacy")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no lock, staging or checkpoint


def test_ctrl_c_of_torchrun_keeps_the_checkpoint_and_rank_0_says_how_to_resume(tmp_path, slow_recipe, torchrun_options):
    """torchrun passes Ctrl-C on to its processes: one line from rank 0, no Python traceback from any rank."""
    checkpoint, log = tmp_path / ".run.checkpoint.safetensors", tmp_path / "output.txt"
    command = [*TORCHRUN, "-m", "synthwear.distributed", str(slow_recipe), "--out", str(tmp_path / "run")]
    with open(log, "w") as output:
        process = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, preexec_fn=default_sigint, **torchrun_options
        )
        signal_after(process, checkpoint, 1, signal.SIGINT)
    said = log.read_text()
    assert said.count("interrupted: training so far is kept in") == 1 and "--resume" in said
    assert "KeyboardInterrupt" not in said
    assert checkpoint.exists() and not (tmp_path / "run").exists()


def saved_checkpoint(path):
    """A checkpoint of a one-layer model, and what restoring it needs."""
    from synthwear.checkpoint import Checkpointing, TrainingState

    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    rngs = {"order": torch.Generator().manual_seed(0), "torch": "torch"}
    Checkpointing(path, "digest").save(model, None, optimizer, rngs, TrainingState(epoch=3))
    return model, optimizer, rngs


def rewritten(path, tensors=lambda t: t, meta=lambda m: m):
    """The checkpoint at ``path`` with its tensors and metadata changed."""
    with safe_open(path, framework="pt") as handle:
        saved = json.loads(handle.metadata()["synthwear"])
    save_file(tensors(load_file(path)), path, metadata={"synthwear": json.dumps(meta(saved))})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda path: path.write_bytes(b"not a checkpoint"), "damaged checkpoint"),
        (lambda path: rewritten(path, meta=lambda m: {**m, "digest": "other"}), "of another recipe or other data"),
        (
            lambda path: rewritten(path, meta=lambda m: {**m, "processes": 2}),
            "written by 2 training processes, this run has 1; resume with as many",
        ),
        (  # an older synthwear's keys: rng.<name>, not rng.<rank>.<name>
            lambda path: rewritten(path, tensors=lambda t: {k.replace("rng.0.", "rng."): v for k, v in t.items()}),
            "lacks the random generator 'order'",
        ),
    ],
    ids=["damaged", "other recipe", "other process count", "older layout"],
)
def test_a_checkpoint_that_cannot_be_resumed_as_it_is_is_one_line(tmp_path, change, message):
    from synthwear.checkpoint import Checkpointing
    from synthwear.errors import SynthwearError

    path = tmp_path / "checkpoint.safetensors"
    model, optimizer, rngs = saved_checkpoint(path)
    assert Checkpointing(path, "digest").restore(model, optimizer, rngs)[0].epoch == 3
    change(path)
    with pytest.raises(SynthwearError, match=message):
        Checkpointing(path, "digest").restore(model, optimizer, rngs)
