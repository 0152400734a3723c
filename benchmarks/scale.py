"""Speed at paper scale, against SDV's PARSynthesizer, in one table.

    python benchmarks/scale.py --out bench        # needs `pip install -e .[bench]` for the SDV rows

Rows: synthwear and PARSynthesizer on the LifeSnaps training windows (the fitbit recipe), and on
the 21-day windows of a 10,000-person × 365-day cohort that synthwear samples from the LifeSnaps
model (saved as Parquet, reused when present). Each measurement runs in a fresh process so that
its peak resident memory is its own. synthwear is timed in each ``--precisions`` (float32, and
bfloat16 mixed precision). On LifeSnaps PARSynthesizer trains its default 128 epochs; at scale it
is capped (``--par-scale-epochs`` over ``--par-scale-windows`` windows) and, like synthwear's epoch
there, extrapolated from a timed subset (``--scale-windows``); the table says where. Fidelity uses
the fidelity evaluators (discriminative score, KSComplement) on both synthesizers' samples, scored
against the same real holdout windows.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from peers import fit_par, sample_par, sdv_installed

REPO = Path(__file__).resolve().parents[1]
CHANNELS = ["resting_hr", "sleep_minutes", "steps"]
PRECISIONS = {"float32": torch.float32, "bfloat16": torch.bfloat16}


# --- helpers run in the parent ------------------------------------------------------------------
def in_fresh_process(function, *args):
    """Run ``function(*args)`` in a spawned process; its result plus that process's peak RSS (MiB)."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(measured, (function, *args))


def measured(function, *args) -> dict:
    started = time.perf_counter()
    result = function(*args)
    result["wall_s"] = time.perf_counter() - started
    result["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def machine() -> dict:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()
            if line.startswith("Model name")
        ),
        platform.processor(),
    )
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "load_average": os.getloadavg(),
    }


# --- measurements (each in its own process) -----------------------------------------------------
def matmul_rate(n: int = 2048, repeats: int = 20) -> dict:
    """The machine's matmul rates in float32 and bfloat16: the limits the training steps are held against."""
    rates = {}
    for precision in PRECISIONS:
        a, b = torch.randn(n, n, dtype=PRECISIONS[precision]), torch.randn(n, n, dtype=PRECISIONS[precision])
        a @ b
        started = time.perf_counter()
        for _ in range(repeats):
            a @ b
        rates[precision] = 2 * n**3 * repeats / (time.perf_counter() - started) / 1e9
    return rates


def lifesnaps_data(recipe) -> dict:
    """The fitbit run's windows: training (every start, as the model saw them) and evaluation sets,
    split and drawn by the pipeline's own functions."""
    from synthwear.plugins import default_registry
    from synthwear.steps import evaluation_windows, load_data, split_cohort

    _, parts = split_cohort(recipe, load_data(recipe, default_registry()), log=lambda message: None)
    w, train = recipe.windows, parts["train"]
    return {
        "train": train.gather(train.window_starts(w.days, w.stride, w.min_observed), w.days),
        **{f"eval_{name}": evaluation_windows(recipe, parts[name]) for name in ("train", "holdout")},
    }


def fidelity(run_dir: Path, synthetic: np.ndarray) -> dict:
    """Discriminative score (lower is better) and mean KSComplement (higher is better) of windows against the holdout."""
    from synthwear.default_plugins.discriminative import DiscriminativeScore
    from synthwear.default_plugins.marginals import Marginals
    from synthwear.interfaces import EvaluationContext, Windows
    from synthwear.model import SynthesisModel
    from synthwear.plugins import default_registry
    from synthwear.recipe import parse_recipe

    run = json.loads((run_dir / "run.json").read_text())
    recipe = parse_recipe(run["recipe"])
    data = lifesnaps_data(recipe)
    model = SynthesisModel.load(run_dir / "model", default_registry())
    context = EvaluationContext(
        model,
        CHANNELS,
        data["eval_train"],
        data["eval_holdout"],
        Windows(synthetic, np.arange(len(synthetic)).astype(str)),
        recipe.seed,
    )
    marginals = Marginals().evaluate(context)["channels"]
    return {
        "discriminative": DiscriminativeScore().evaluate(context)["synthetic"]["score"],
        "ks_complement": float(np.mean([marginals[c]["ks_complement"]["synthetic"] for c in CHANNELS])),
    }


def synthwear_lifesnaps(run_dir: Path, sample_sequences: int, fidelity_sequences: int, precision: str) -> dict:
    """Train the fitbit recipe to early stopping; then time sampling 21-day sequences."""
    from synthwear.pipeline import run_recipe
    from synthwear.recipe import load_recipe

    recipe = load_recipe(REPO / "recipes" / "fitbit.yaml")
    recipe.training.precision = precision
    recipe.training.candidates = 1  # one training, timed against one fit of each peer
    recipe.evaluation.evaluators = []  # fidelity is scored below, alike for both synthesizers
    result = run_recipe(recipe, run_dir)
    training = result.run["training"]
    model, days = result_model(run_dir), recipe.windows.days
    started = time.perf_counter()
    synthetic = model.generate(sample_sequences, days, seed=1)
    sample_s = time.perf_counter() - started
    started = time.perf_counter()
    model.generate(sample_sequences, days, seed=1, use_cache=False)
    uncached_s = time.perf_counter() - started
    return {
        "precision": precision,
        "train_windows": result.run["windows"]["train"]["windows"],
        "epochs": training["epochs"],
        "train_s": training["seconds"],
        "windows_per_s": training["windows_per_second"],
        "sequences_per_s": sample_sequences / sample_s,
        "sequences_per_s_without_cache": sample_sequences / uncached_s,
        "fidelity": fidelity(run_dir, synthetic[:fidelity_sequences]),
        "flops_per_window": training_flops(model, recipe.training.batch_size) / recipe.training.batch_size,
    }


def result_model(run_dir: Path):
    from synthwear.model import SynthesisModel
    from synthwear.plugins import default_registry

    return SynthesisModel.load(run_dir / "model", default_registry())


def training_flops(model, batch_size: int) -> float:
    """FLOPs of one training step (forward and backward), counted by torch."""
    from torch.utils.flop_counter import FlopCounterMode

    from synthwear.default_plugins.losses import MeanLoss

    targets = torch.randint(0, min(model.spec.vocab_sizes), (batch_size, model.spec.max_days, len(model.channels)))
    model.generator.train()
    with FlopCounterMode(display=False) as counter:
        MeanLoss()(model.generator(model.shifted_inputs(targets)), targets, training=True).backward()
    model.generator.zero_grad(set_to_none=True)
    return float(counter.get_total_flops())


def par_lifesnaps(run_dir: Path, epochs: int, sample_sequences: int) -> dict:
    from synthwear.recipe import parse_recipe

    run = json.loads((run_dir / "run.json").read_text())
    windows = lifesnaps_data(parse_recipe(run["recipe"]))["train"]
    synthesizer, fit_s = fit_par(windows, CHANNELS, seed=0, epochs=epochs)
    synthetic, sample_s = sample_par(synthesizer, sample_sequences, windows.shape[1], CHANNELS)
    return {
        "train_windows": len(windows),
        "epochs": epochs,
        "train_s": fit_s,
        "windows_per_s": len(windows) * epochs / fit_s,
        "sequences_per_s": sample_sequences / sample_s,
        "fidelity": fidelity(run_dir, synthetic),
    }


def make_cohort(model_dir: Path, persons: int, days: int, path: Path) -> dict:
    """The scale cohort, sampled by the CLI exactly as the docs tell a user to."""
    started = time.perf_counter()
    subprocess.run(
        [
            str(Path(sys.executable).parent / "synthwear"),
            "sample",
            str(model_dir),
            "--persons",
            str(persons),
            "--days",
            str(days),
            "--seed",
            "0",
            "-o",
            str(path),
        ],
        check=True,
        stderr=subprocess.DEVNULL,
    )
    return {"seconds": time.perf_counter() - started}


def scale_windows(path: Path, days: int, limit: int, seed: int):
    """Read the cohort Parquet and build its windows: (tokens, all starts, a seeded subset, seconds)."""
    from synthwear.cohort import Cohort
    from synthwear.tables import read_daily_table

    started = time.perf_counter()
    cohort = Cohort.from_frame(read_daily_table(path, CHANNELS), CHANNELS)
    starts = cohort.window_starts(days, 1, 0.5)
    subset = np.sort(np.random.default_rng(seed).choice(starts, min(limit, len(starts)), replace=False))
    return cohort, starts, subset, time.perf_counter() - started


def synthwear_scale(path: Path, limit: int, batch_size: int, precision: str) -> dict:
    """One epoch over a seeded subset of the cohort's windows, from a fresh model of the fitbit recipe."""
    from synthwear.plugins import default_registry
    from synthwear.recipe import load_recipe
    from synthwear.steps import build_model
    from synthwear.train import train_model, window_tokens

    recipe = load_recipe(REPO / "recipes" / "fitbit.yaml")
    days = recipe.windows.days
    cohort, starts, subset, load_s = scale_windows(path, days, limit, recipe.seed)
    registry = default_registry()
    torch.manual_seed(recipe.seed)
    model = build_model(recipe, registry, torch.device("cpu"))
    loss = registry.build("losses", recipe.loss.name, recipe.loss.options)
    tokens = model.tokenize(cohort.values)[0]
    config = recipe.training.model_copy(update={"epochs": 1, "batch_size": batch_size, "precision": precision})
    result = train_model(
        model,
        loss,
        window_tokens(tokens, subset, days),
        window_tokens(tokens, subset[:1000], days),
        config,
        seed=recipe.seed,
    )
    return {
        "persons": cohort.n_persons,
        "person_days": len(cohort.values),
        "all_windows": len(starts),
        "train_windows": len(subset),
        "batch_size": batch_size,
        "precision": precision,
        "load_s": load_s,
        "train_s": result.seconds,
        "windows_per_s": result.windows_per_second,
        "epoch_s": len(starts) / result.windows_per_second,
        "flops_per_window": training_flops(model, batch_size) / batch_size,
    }


def par_scale(path: Path, limit: int, epochs: int) -> dict:
    cohort, starts, subset, load_s = scale_windows(path, 21, limit, 0)
    _, fit_s = fit_par(cohort.gather(subset, 21), CHANNELS, seed=0, epochs=epochs)
    rate = len(subset) * epochs / fit_s
    return {
        "all_windows": len(starts),
        "train_windows": len(subset),
        "epochs": epochs,
        "load_s": load_s,
        "train_s": fit_s,
        "windows_per_s": rate,
        "epoch_s": len(starts) / rate,
    }


def table(r: dict) -> str:
    def f(value, digits=0):
        return "—" if value is None else f"{value:,.{digits}f}"

    def fidelity_cells(row: dict) -> str:
        return f"{f(row['fidelity']['discriminative'], 3)} | {f(row['fidelity']['ks_complement'], 3)}"

    lines = [
        (
            "| data | synthesizer | training windows/s | training wall s | sampling 21-day sequences/s | peak MiB | "
            "discriminative ↓ | KSComplement ↑ | note |"
        ),
        "|" + "---|" * 9,
    ]
    for ours in r["synthwear_lifesnaps"]:
        lines.append(
            f"| LifeSnaps | synthwear ({ours['precision']}) | {f(ours['windows_per_s'])} | {f(ours['train_s'], 1)} | "
            f"{f(ours['sequences_per_s'])} | {f(ours['peak_mib'])} | {fidelity_cells(ours)} | "
            f"{ours['train_windows']:,} windows, early stopping after {ours['epochs']} epochs |"
        )
    par = r.get("par_lifesnaps")
    if par:
        lines.append(
            f"| LifeSnaps | PARSynthesizer | {f(par['windows_per_s'])} | {f(par['train_s'], 1)} | "
            f"{f(par['sequences_per_s'])} | {f(par['peak_mib'])} | {fidelity_cells(par)} | "
            f"{par['epochs']} epochs (SDV's default is 128) |"
        )
        for ours in r["synthwear_lifesnaps"]:
            lines.append(
                f"| LifeSnaps | ratio synthwear ({ours['precision']}) / PAR | "
                f"{f(ours['windows_per_s'] / par['windows_per_s'], 1)}× per window-epoch | "
                f"{f(par['train_s'] / ours['train_s'], 1)}× per training | "
                f"{f(ours['sequences_per_s'] / par['sequences_per_s'], 1)}× | | | | |"
            )
    cohort = r["cohort"]
    first = r["synthwear_scale"][0]
    scale = f"{first['persons']:,} persons × {first['person_days'] / first['persons']:.0f} days"
    for row in r["synthwear_scale"]:
        lines.append(
            f"| {scale} | synthwear (batch {row['batch_size']}, {row['precision']}) | {f(row['windows_per_s'])} | "
            f"{f(row['epoch_s'])} per epoch (extrapolated) | {f(cohort.get('sequences_per_s'))} (365-day) | "
            f"{f(row['peak_mib'])} | | | {row['all_windows']:,} windows in the epoch; timed on {row['train_windows']:,}; "
            f"Parquet read + windows {f(row['load_s'], 1)} s |"
        )
    if r.get("par_scale"):
        p = r["par_scale"]
        lines.append(
            f"| {scale} | PARSynthesizer | {f(p['windows_per_s'])} | {f(p['epoch_s'])} per epoch (extrapolated) | "
            f"| {f(p['peak_mib'])} | | | capped: {p['train_windows']:,} windows × {p['epochs']} epochs |"
        )
        best = max(row["windows_per_s"] for row in r["synthwear_scale"])
        lines.append(f"| {scale} | ratio synthwear (fastest) / PAR | {f(best / p['windows_per_s'], 1)}× | | | | | | |")
    flops = r["synthwear_lifesnaps"][0]["flops_per_window"]
    rates = r["matmul"]
    lines.append("")
    lines.append(
        f"Training FLOPs per window (forward + backward, fitbit model, torch's counter): {flops / 1e6:,.1f} MFLOP. "
        f"Measured matmul rate (2048²): float32 {rates['float32']:,.0f} GFLOP/s, bfloat16 {rates['bfloat16']:,.0f} GFLOP/s."
    )
    for label, row in [(f"LifeSnaps, batch 64, {o['precision']}", o) for o in r["synthwear_lifesnaps"]] + [
        (f"scale cohort, batch {row['batch_size']}, {row['precision']}", row) for row in r["synthwear_scale"]
    ]:
        achieved = row["windows_per_s"] * flops / 1e9
        lines.append(
            f"- {label}: {achieved:,.1f} GFLOP/s = {100 * achieved / rates[row['precision']]:.0f}% "
            f"of the {row['precision']} matmul rate"
        )
    for ours in r["synthwear_lifesnaps"]:
        lines.append(
            f"- sampling 21-day sequences ({ours['precision']} run): {f(ours['sequences_per_s'])}/s with the KV cache, "
            f"{f(ours['sequences_per_s_without_cache'])}/s re-running the sequence every day "
            f"({ours['sequences_per_s'] / ours['sequences_per_s_without_cache']:.1f}×)"
        )
    m = r["machine"]
    lines.append(
        f"\nMachine: {m['cpu']}, {m['cores']} cores, torch {m['torch']} ({m['threads']} threads); "
        f"load average at start {m['load_average'][0]:.2f}."
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--table-only", action="store_true", help="print the table of OUT/results.json and stop")
    parser.add_argument("--out", type=Path, default=Path("bench"), help="working folder (runs, cohort, results)")
    parser.add_argument(
        "--cohort", type=Path, help="a scale cohort Parquet already sampled (default: sample one into --out)"
    )
    parser.add_argument("--persons", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--scale-windows", type=int, default=50_000, help="windows timed for the scale epoch")
    parser.add_argument("--batch-sizes", default="64,1024", help="batch sizes timed at scale")
    parser.add_argument("--sample-sequences", type=int, default=20_000)
    parser.add_argument(
        "--fidelity-sequences",
        type=int,
        default=500,
        help="sequences each synthesizer samples for fidelity (PAR's sampling rate is timed on these)",
    )
    parser.add_argument(
        "--par-epochs", type=int, default=128, help="PAR epochs on LifeSnaps (SDV's default, ~15 min here)"
    )
    parser.add_argument("--par-scale-windows", type=int, default=500)
    parser.add_argument(
        "--par-scale-epochs", type=int, default=1, help="PAR epochs timed at scale (speed only, extrapolated)"
    )
    parser.add_argument(
        "--precisions", default="float32,bfloat16", help="training precisions timed (recipe training.precision)"
    )
    args = parser.parse_args()
    if args.table_only:
        finished = args.out / "results.json"
        if not finished.exists():
            raise SystemExit(f"{finished} does not exist: run `python benchmarks/scale.py --out {args.out}` first")
        print(table(json.loads(finished.read_text())))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict = {"machine": machine(), "arguments": {k: str(v) for k, v in vars(args).items()}}
    print(f"machine: {results['machine']}", flush=True)
    results["matmul"] = in_fresh_process(matmul_rate)
    precisions = args.precisions.split(",")
    run_dir = args.out / "lifesnaps"  # the float32 run: PAR's windows and the scale cohort's model come from it
    results["synthwear_lifesnaps"] = [
        in_fresh_process(
            synthwear_lifesnaps,
            args.out / f"lifesnaps-{precision}" if precision != "float32" else run_dir,
            args.sample_sequences,
            args.fidelity_sequences,
            precision,
        )
        for precision in ["float32", *[p for p in precisions if p != "float32"]]
    ]
    print("synthwear on LifeSnaps:", results["synthwear_lifesnaps"], flush=True)
    with_sdv = sdv_installed()
    if with_sdv:
        results["par_lifesnaps"] = in_fresh_process(par_lifesnaps, run_dir, args.par_epochs, args.fidelity_sequences)
        print("PARSynthesizer on LifeSnaps:", results["par_lifesnaps"], flush=True)
    else:
        print("SDV is not installed: PARSynthesizer rows skipped (pip install -e '.[bench]')", flush=True)
    cohort = args.cohort or args.out / f"cohort-{args.persons}x{args.days}.parquet"
    results["cohort"] = {"path": str(cohort)}
    if not cohort.exists():
        results["cohort"] = {**results["cohort"], **make_cohort(run_dir / "model", args.persons, args.days, cohort)}
        results["cohort"]["sequences_per_s"] = args.persons / results["cohort"]["seconds"]
    results["synthwear_scale"] = [
        in_fresh_process(synthwear_scale, cohort, args.scale_windows, int(b), precision)
        for b in args.batch_sizes.split(",")
        for precision in precisions
    ]
    print("synthwear at scale:", results["synthwear_scale"], flush=True)
    if with_sdv:
        results["par_scale"] = in_fresh_process(par_scale, cohort, args.par_scale_windows, args.par_scale_epochs)
    (args.out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    text = table(results)
    (args.out / "results.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
