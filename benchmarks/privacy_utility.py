"""The privacy-utility curve: what person-level DP costs, with and without a public base, by cohort size.

    python benchmarks/privacy_utility.py --out /tmp/pu-real               # real cohort, 5 folds, eps 1 3 8 inf
    python benchmarks/privacy_utility.py --no-real --simulated 50 500 --folds 1 --epsilons 3 inf \
        --compare-at 0 --out /tmp/pu-sim                                  # simulated cohorts, one fold each
    python benchmarks/privacy_utility.py --ship /tmp/pu-real /tmp/pu-sim  # into synthwear/privacy/curve.json
    python benchmarks/privacy_utility.py --quick --out /tmp/pu            # a smoke test: 2 folds, few steps

Cohorts: a real one (``--recipe``: the shipped crowd-sourced Fitbit study, which the LifeSnaps base
never saw), and with ``--simulated N ...`` private cohorts of N persons sampled from a non-private
model of that same crowd-sourced population (trained once on all its persons): a population other
than the base's, so fine-tuning has something to learn, and of any size. Persons are dealt into
folds; in each fold every arm trains on the other folds' persons and is scored on the fold's own:

- **base**: the shipped base as it is, sampled for the cohort's channels (no private data used);
- **scratch**: the base's architecture trained from random weights, under DP at each ε (the learning
  rate tuned for DP from scratch in recipes/fitbit-dp.yaml, 0.01; the recipe's steps and sample rate),
  or normally at ε = inf;
- **fine-tune <part>**: the recipe's fine-tuning of the base, under DP at each ε, or normally at ε = inf;
  every part (all, last_layers, heads, adapters) at ``--compare-at`` ε, the recipe's part elsewhere;
- **MOSTLY AI** (``--mostly-minutes M``, the ``mostly`` extra): the engine's TabularARGN under its own
  DP-SGD at each ε (its defaults: noise multiplier 1.5, clipping 1, RDP; a tenth of ε for its value
  ranges), or without DP at ε = inf, for at most M minutes. Its unit of privacy is the sequence, so it
  is fitted on one sequence per training person (the whole record): there its ε is a person's, as
  ours is. Fitted on windows, as benchmarks/fidelity.py fits it, a person would be many sequences.

``--arms PREFIX ...`` runs only the trained arms whose label starts with one of the prefixes (the base
row and the ceiling always come); at least one synthwear arm must stay, whose split and windows the
fold's other rows are scored on. ``--max-epochs E`` stops the non-private arms after E epochs (a
large simulated cohort's early stopping can take hours on 2 cores; the table does not mark a capped
row, so say so where it is quoted). The "steps per person" column is q·steps, how many noisy steps a training person is
expected to be in: with a fixed number of steps of about 64 persons, a large cohort is seen less than once.

Each cell: discriminative score and TSTR next-day MAE (the recipe's tstr target) on the unseen persons'
21-day windows (every ``--stride`` days: held-out persons of a small cohort have one or two
non-overlapping windows each), and the three membership attacks' AUC (trained persons vs unseen
persons) with 95% bootstrap intervals. With ``--samples K`` each synthwear arm and the base are
scored on K synthetic samples (seeds seed .. seed + K - 1) and their scores averaged, the attacks on
the first (MOSTLY AI's rows: one sample). Mean ± sd over folds. Writes the table (Markdown) and
curve.json; ``--ship OUT ...`` merges such curves into synthwear/privacy/curve.json, which
``synthwear privacy-plan`` reads.
"""

from __future__ import annotations

import argparse
import functools
import json
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from fidelity import cell, finite, mean_sd, scores
from peers import fit_mostly_sequences, mostlyai_installed, sample_mostly

from synthwear import Synthesizer
from synthwear.bases import base_folder
from synthwear.cohort import Cohort
from synthwear.default_plugins.membership import MembershipConfig, MembershipInference
from synthwear.errors import NotEstimable
from synthwear.interfaces import EvaluationContext
from synthwear.plugins import default_registry
from synthwear.recipe import Recipe, load_recipe, parse_recipe
from synthwear.sampling import to_long_frame
from synthwear.split import person_folds
from synthwear.steps import evaluation_context, frame_data, load_data, usable_persons

REPO = Path(__file__).resolve().parents[1]
ATTACKS = ("distance_to_closest_synthetic", "domias_density_ratio", "white_box_likelihood")
PARTS = ("all", "last_layers", "heads", "biases", "adapters")
SCRATCH = {"learning_rate": 0.01}  # recipes/fitbit-dp.yaml's tuned DP-from-scratch learning rate


def base_of(recipe: Recipe) -> Synthesizer:
    """The recipe's base, read once: every arm's architecture and every fold's base row come from it."""
    return loaded_base(base_folder(recipe.base.model, recipe.resolve_path))


@functools.lru_cache(maxsize=1)
def loaded_base(folder: Path) -> Synthesizer:
    return Synthesizer.load(folder)


# --- the arms ------------------------------------------------------------------------------------
def arm_recipes(recipe: Recipe, epsilons: list[float], compare_at: float, quick: bool) -> dict[str, Recipe | None]:
    """Label -> recipe of every trained arm (None: the base as it is)."""
    raw = recipe.to_dict()
    base = base_of(recipe).fitted
    architecture = {key: base.recipe[key] for key in ("generator", "encoder")}
    architecture["windows"] = {**raw["windows"], "days": base.recipe["windows"]["days"]}
    architecture["windows"]["summary"] = base.recipe["windows"]["summary"]
    arms: dict[str, Recipe | None] = {"base": None}
    for epsilon in epsilons:
        parts = PARTS if epsilon == compare_at else (recipe.base.train,)
        scratch = {k: v for k, v in raw.items() if k != "base"} | architecture
        arms[label("scratch", epsilon)] = variant(scratch, epsilon, SCRATCH, quick, recipe.source)
        for part in parts:
            tuned = raw | architecture | {"base": {**raw["base"], "train": part}}
            arms[label(f"fine-tune {part}", epsilon)] = variant(tuned, epsilon, {}, quick, recipe.source)
    return arms


@dataclass(frozen=True)
class MostlyArm:
    """MOSTLY AI's TabularARGN at ``epsilon`` (inf: without DP), trained for at most ``minutes``."""

    epsilon: float
    minutes: float

    def privacy(self, delta: float) -> dict | None:
        """The engine's DifferentialPrivacyConfig: ε in all, a tenth of it for its value ranges (as its
        defaults split 10 and 1), its own noise and clipping."""
        if self.epsilon == float("inf"):
            return None
        return {"max_epsilon": self.epsilon, "delta": delta, "value_protection_epsilon": self.epsilon / 10}


MOSTLY = "MOSTLY AI TabularARGN"  # a peer's rows: in the table, not in the curve privacy-plan reads


def mostly_arms(epsilons: list[float], minutes: float) -> dict[str, MostlyArm]:
    return {label(MOSTLY, epsilon): MostlyArm(epsilon, minutes) for epsilon in epsilons}


def chosen(arms: dict, prefixes: list[str] | None) -> dict:
    """The base and the arms whose label starts with one of ``prefixes`` (all arms without any)."""
    if not prefixes:
        return arms
    kept = {name: arm for name, arm in arms.items() if arm is None or name.startswith(tuple(prefixes))}
    if not any(isinstance(arm, Recipe) for arm in kept.values()):
        trained = ", ".join(name for name, arm in arms.items() if isinstance(arm, Recipe))
        raise SystemExit(f"--arms {' '.join(prefixes)}: keeps no synthwear arm (one of: {trained}); the fold needs one")
    return kept


def label(arm: str, epsilon: float) -> str:
    return f"{arm}, ε = {'inf' if epsilon == float('inf') else f'{epsilon:g}'}"


def variant(raw: dict, epsilon: float, settings: dict, quick: bool, source: Path | None) -> Recipe:
    """``raw`` at ``epsilon`` (inf: no DP, the training section's early stopping), with ``settings``
    (learning_rate, steps) for the DP case; ``quick`` shrinks everything for a smoke test."""
    raw = json.loads(json.dumps(raw))
    raw["evaluation"]["evaluators"] = [{"name": "marginals"}]  # the benchmark scores itself
    if epsilon == float("inf"):
        raw.pop("privacy", None)
    else:
        raw["privacy"] = raw.get("privacy") or {"sample_rate": 0.5}
        if raw["sampling"].get("persistence") == "auto":  # fitted to the training persons: not under DP
            raw["sampling"]["persistence"] = 0.0
        raw["privacy"] |= {"target_epsilon": epsilon, **({"steps": settings["steps"]} if "steps" in settings else {})}
        if "learning_rate" in settings:
            raw["training"]["learning_rate"] = settings["learning_rate"]
    if quick:
        raw["training"]["epochs"], raw["sampling"]["persons"] = 2, 40
        if "privacy" in raw:
            raw["privacy"] |= {"steps": 4, "checkpoints": 2, "accountant": "rdp"}
    return parse_recipe(raw, source)


def for_cohort(
    arms: dict[str, Recipe | None], persons: int, simulated: bool, max_epochs: int | None = None
) -> dict[str, Recipe | None]:
    """The arms as a cohort of ``persons`` runs them. A simulated cohort is sized by its users: each DP
    step samples about 64 persons (q = 1/round(n/64), at most the recipe's q, as Opacus wants 1/k) and
    each person's windows start every 7 days, so 5,000 persons train in minutes; the real cohort
    runs the recipe as written. ``max_epochs`` caps the non-private arms' epochs (at 50,000 persons an
    epoch takes minutes on 2 cores, and early stopping on 7,500 validation persons may not come for
    dozens of them)."""
    if not simulated and max_epochs is None:
        return arms
    scaled = {}
    for name, arm in arms.items():
        if not isinstance(arm, Recipe):
            scaled[name] = arm
            continue
        raw = arm.to_dict()
        if simulated:
            raw["windows"]["stride"] = 7
            if raw.get("privacy"):
                raw["privacy"]["sample_rate"] = min(raw["privacy"]["sample_rate"], 1 / max(1, round(persons / 64)))
        if max_epochs is not None and not raw.get("privacy"):
            raw["training"]["epochs"] = min(raw["training"]["epochs"], max_epochs)
        scaled[name] = parse_recipe(raw, arm.source)
    return scaled


# --- one fold ------------------------------------------------------------------------------------
def run_fold(arms: dict, recipe: Recipe, data: pd.DataFrame | None, holdout, args, log) -> dict:
    rows, reference, synth = {}, None, None
    for name, arm in arms.items():
        if not isinstance(arm, Recipe):
            continue
        clock = time.perf_counter()
        synth = Synthesizer(arm).fit(data, holdout_persons=holdout, progress=False)
        starts = synth.first_days()
        contexts = [
            strided(arm, synth, synth.sample_array(start=starts, seed=arm.seed + k), starts, args.stride)
            for k in range(args.samples)
        ]
        reference = reference or contexts[0]
        rows[name] = mean_scores(contexts, args.target) | attack_aucs(contexts[0]) | trained(synth, clock)
        log(f"  {name}: {brief(rows[name])}")
    for name, arm in arms.items():
        if isinstance(arm, MostlyArm):
            rows[name] = mostly_row(arm, members(synth), reference, args)
            log(f"  {name}: {brief(rows[name])}")
    bases = [replace(reference, synthetic=base_windows(recipe, reference, args.seed + k)) for k in range(args.samples)]
    rows = {"base": mean_scores(bases, args.target) | attack_aucs(bases[0], model=False)} | rows
    log(f"  base: {brief(rows['base'])}")
    rows["ceiling: real training persons"] = scores(replace(reference, synthetic=reference.train), args.target, False)
    return {"holdout_persons": len(holdout), "holdout_windows": len(reference.holdout.values), "rows": rows}


def mean_scores(contexts: list[EvaluationContext], target: str) -> dict[str, float | None]:
    """``scores`` of each synthetic sample, averaged (a score none of them has stays None). Why several:
    on a few unseen persons one sample's TSTR moves by about 100 steps with the random stream alone, as
    much as the arms differ (docs/privacy.md)."""
    each = [scores(context, target) for context in contexts]
    found = {key: [row[key] for row in each if row.get(key) is not None] for key in each[0]}
    return {key: float(np.mean(values)) if values else None for key, values in found.items()}


def members(synth: Synthesizer) -> list[Cohort]:
    """The persons a synthwear arm of the fold learned from: its training and validation persons."""
    return [synth.parts["train"], synth.parts["validation"]]


def person_sequences(cohorts: list[Cohort]) -> pd.DataFrame:
    """One sequence per person, keyed 0..P-1 across the cohorts: each person's whole record, day by day
    (missing days as NaN rows, so a sequence's steps stay days)."""
    frames, first = [], 0
    for cohort in cohorts:
        frame = pd.DataFrame(cohort.values, columns=cohort.channels)
        frame.insert(0, "window", first + cohort.row_persons())
        frames.append(frame)
        first += cohort.n_persons
    return pd.concat(frames, ignore_index=True)


def mostly_row(arm: MostlyArm, persons: list[Cohort], reference: EvaluationContext, args) -> dict:
    """MOSTLY AI's engine fitted on the fold's member persons, scored as the synthwear arms are: as
    many 21-day windows (each synthetic person's first days) against the same unseen persons."""
    clock = time.perf_counter()
    sequences = person_sequences(persons)
    delta = 1 / (10 * (sequences["window"].max() + 1))  # 1/(10 n) for the n persons it is given
    model, _ = fit_mostly_sequences(sequences, args.seed, arm.minutes, arm.privacy(delta))
    windows = reference.synthetic.values
    values, _ = sample_mostly(model, len(windows), windows.shape[1], reference.channels)
    context = replace(reference, synthetic=replace(reference.synthetic, values=values, attributes=None))
    private = model.differential_privacy
    trained = {
        "seconds": time.perf_counter() - clock,
        "epsilon_spent": None if private is None else mostly_epsilon(model),
        "noise_multiplier": None if private is None else private.noise_multiplier,
        "observed_share": float(np.mean(~np.isnan(values))),  # the engine draws each sequence's length
    }
    model.close()
    return scores(context, args.target) | attack_aucs(context, model=False) | trained


def mostly_epsilon(model) -> float | None:
    """The ε of the checkpoint the engine kept (its accountant's, value ranges included), from the
    progress log it writes: the last checkpoint's."""
    [log] = Path(model.workspace_path_).rglob("progress-messages.csv")
    progress = pd.read_csv(log)
    kept = progress[progress["is_checkpoint"].astype(bool)]
    return None if kept.empty else float(kept["dp_eps"].iloc[-1])


def strided(recipe: Recipe, synth: Synthesizer, synthetic: np.ndarray, starts, stride: int) -> EvaluationContext:
    """The run's evaluation context, with the unseen persons' windows every ``stride`` days."""
    privacy = synth.record.get("privacy")
    context = evaluation_context(recipe, synth.parts, synth.model, synthetic, starts, privacy)
    days, holdout = recipe.windows.days, synth.parts["holdout"]
    context.holdout = holdout.windows(holdout.window_starts(days, stride, recipe.windows.min_observed), days)
    return context


def base_windows(recipe: Recipe, reference: EvaluationContext, seed: int):
    """Windows sampled from the base as it is, its channels cut to the cohort's."""
    base = base_of(recipe)
    n, days = len(reference.synthetic.values), recipe.windows.days
    values = base.sample_array(persons=n, days=days, seed=seed)
    keep = [base.fitted.channels.index(channel) for channel in reference.channels]
    return replace(reference.synthetic, values=values[:, :, keep], attributes=None)


def attack_aucs(context: EvaluationContext, model: bool = True) -> dict[str, float | None]:
    """Each attack's AUC and whether its 95% interval holds 0.5 (1.0 / 0.0, so folds average to a share)."""
    try:
        attacks = MembershipInference(MembershipConfig(dcr_draws=0)).evaluate(context)["attacks"]
    except NotEstimable:
        return {}
    result: dict[str, float | None] = {}
    for name in ATTACKS if model else ATTACKS[:2]:
        found = attacks.get(name, {})
        if "auc" in found:
            low, high = found["auc_ci"]
            result[f"auc.{name}"] = found["auc"]
            result[f"ci_holds_half.{name}"] = float(low <= 0.5 <= high)
    return result


def trained(synth: Synthesizer, clock: float) -> dict[str, float | None]:
    privacy = synth.record.get("privacy") or {}
    return {
        "epsilon_spent": privacy.get("epsilon"),
        "noise_multiplier": privacy.get("noise_multiplier"),
        "trained_values": privacy.get("trained_values"),
        # how often a training person's gradient is in a noisy step (q·steps): at a fixed number of steps
        # and about 64 persons a step, a large cohort is not even seen once by DP-SGD
        "steps_per_person": privacy["sample_rate"] * privacy["steps"] if privacy else None,
        "seconds": time.perf_counter() - clock,
    }


def brief(row: dict) -> str:
    aucs = ", ".join(f"{row[f'auc.{a}']:.2f}" for a in ATTACKS if f"auc.{a}" in row)
    shown = {k: "–" if row.get(k) is None else f"{row[k]:.{d}f}" for k, d in (("discriminative", 3), ("tstr_mae", 1))}
    return f"discriminative {shown['discriminative']}, TSTR {shown['tstr_mae']}, attack AUCs {aucs}"


def tstr_target(recipe: Recipe) -> str:
    """The recipe's tstr evaluator's target, else its first channel."""
    targets = [e.options.get("target") for e in recipe.evaluation.evaluators if e.name == "tstr"]
    return next((t for t in targets if t), next(iter(recipe.channels)))


# --- cohorts -------------------------------------------------------------------------------------
def simulated_cohort(recipe: Recipe, persons: int, days: int, seed: int, quick: bool) -> pd.DataFrame:
    """``persons`` synthetic persons of ``days`` days from a non-private model of the recipe's own
    population (all its persons, the recipe without base or privacy): a private cohort of any size."""
    raw = recipe.to_dict()
    raw = {k: v for k, v in raw.items() if k not in ("base", "privacy")} | {
        "split": {"validation": 0.15, "holdout": 0.05}
    }
    raw["evaluation"]["evaluators"] = [{"name": "marginals"}]
    if quick:
        raw["training"]["epochs"] = 2
    population = Synthesizer(parse_recipe(raw, recipe.source)).fit(progress=False)
    values = population.sample_array(persons=persons, days=days, seed=seed + 1)
    frame = to_long_frame(values, population.fitted.channels, population.first_days(persons, seed=seed + 1))
    return frame.dropna(subset=population.fitted.channels, how="all")


def cohort_folds(recipe: Recipe, data: pd.DataFrame | None, folds: int, seed: int) -> tuple[list[list[str]], int]:
    """The persons dealt into folds (with one fold: a fifth held out), and how many there are."""
    loaded = load_data(recipe, default_registry()) if data is None else frame_data(recipe, data)
    _, persons, duplicates = usable_persons(recipe, loaded)
    dealt = person_folds(persons, max(folds, 5), seed=seed, duplicate_groups=duplicates)
    return dealt[:folds], len(persons)


# --- the table -----------------------------------------------------------------------------------
def aggregate(folds: list[dict]) -> dict[str, dict]:
    """Each arm's columns as mean ± sd over folds; the ε spent also as its largest, the bound that holds
    in every fold."""
    labels = list(folds[0]["rows"])
    columns = {column for fold in folds for row in fold["rows"].values() for column in row}
    table = {name: {c: mean_sd([f["rows"][name].get(c) for f in folds]) for c in sorted(columns)} for name in labels}
    for name, row in table.items():
        spent = finite([f["rows"][name].get("epsilon_spent") for f in folds])
        row["epsilon_spent_max"] = max(spent) if spent else None
    return table


def asked_epsilon(label: str) -> float | None:
    """The ε an arm's label asks for (``fine-tune all, ε = 3``): None for the base and the ceiling."""
    _, _, budget = label.partition(", ε = ")
    return float(budget) if budget else None


def spent_cell(row: dict, asked: float | None) -> str:
    """The largest ε an arm spent in any fold, marked where it passed the ε asked for (a peer's
    accountant may keep a model over its budget: docs/privacy.md)."""
    spent = row.get("epsilon_spent_max")
    if spent is None:
        return "–"
    return f"{spent:.2f}" + (" (over)" if asked is not None and spent > asked else "")


def markdown(cohort: str, table: dict, meta: dict) -> str:
    lines = [
        f"**{cohort}** ({meta['persons']} persons{', simulated' if meta['simulated'] else ''}; {meta['folds']} "
        f"fold(s), unseen persons' windows every {meta['stride']} days; TSTR target {meta['target']}; "
        f"scores averaged over {meta.get('samples', 1)} synthetic sample(s) per arm; "
        f"persistence {cell(next(iter(table.values()))['persistence_mae'], 1)})",
        "",
        "| arm | discriminative ↓ | TSTR MAE ↓ | distance AUC | DOMIAS AUC | white-box AUC | 95% CIs holding 0.5 | σ "
        "| steps per person | ε spent, largest fold | train s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in table.items():
        held = [row.get(f"ci_holds_half.{a}") for a in ATTACKS]
        share = "–" if all(h is None for h in held) else " / ".join("–" if h is None else f"{h[0]:.0%}" for h in held)
        aucs = [cell(row.get(f"auc.{a}"), 2) for a in ATTACKS]
        sigma = cell(row.get("noise_multiplier"), 2)
        lines.append(
            f"| {name} | {cell(row.get('discriminative'))} | {cell(row.get('tstr_mae'), 1)} | "
            + " | ".join(aucs)
            + f" | {share} | {sigma} | {cell(row.get('steps_per_person'), 2)} | {spent_cell(row, asked_epsilon(name))}"
            + f" | {cell(row.get('seconds'), 0)} |"
        )
    return "\n".join(lines) + "\n"


def curve_rows(cohort: str, table: dict, meta: dict) -> list[dict]:
    """The cells in the schema ``synthwear privacy-plan`` reads."""
    rows = []
    for name, row in table.items():
        if name.startswith(("ceiling", MOSTLY)) or row.get("discriminative") is None:
            continue
        arm, _, budget = name.partition(", ε = ")
        epsilon = None if budget in ("", "inf") else float(budget)
        rows.append(
            {
                "cohort": cohort,
                "simulated": meta["simulated"],
                "persons": meta["persons"],
                "epsilon": epsilon,
                "arm": "non-private " + arm if budget == "inf" else arm,
                "discriminative": {"mean": row["discriminative"][0], "sd": row["discriminative"][1]},
                "tstr": None if row.get("tstr_mae") is None else {"mean": row["tstr_mae"][0], "sd": row["tstr_mae"][1]},
                "folds": meta["folds"],
            }
        )
    return rows


SHIPPED_CURVE = REPO / "synthwear" / "privacy" / "curve.json"


def ship(outputs: list[Path]) -> None:
    """The curves of several runs (``--out`` folders) as the one ``synthwear privacy-plan`` reads,
    each row keeping the command and commit that measured it (a row that names them already keeps
    its own: a folder holding the shipped curve.json renews only the cells the later runs measured)."""
    curves = [json.loads((folder / "curve.json").read_text()) for folder in outputs]
    cells = {  # a cell measured twice (the same cohort, arm and ε) counts once, as the later run has it
        (row["cohort"], row["arm"], row["epsilon"]): {"command": c["command"], "commit": c["commit"]} | row
        for c in curves
        for row in c["rows"]
    }
    rows = list(cells.values())
    merged = {  # the runs whose cells are kept
        "command": "; ".join(dict.fromkeys(row["command"] for row in rows)),
        "commit": ", ".join(dict.fromkeys(row["commit"] for row in rows)),
        "rows": rows,
    }
    SHIPPED_CURVE.write_text(json.dumps(merged, indent=2) + "\n")
    print(f"{SHIPPED_CURVE}: {len(rows)} cells from {len(curves)} runs")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", type=Path, default=REPO / "recipes" / "fitbit-crowdsourced-dp.yaml")
    parser.add_argument("--epsilons", type=float, nargs="+", default=[1, 3, 8, float("inf")])
    parser.add_argument("--compare-at", type=float, default=3, help="the ε at which every fine-tuned part is run")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--simulated", type=int, nargs="*", default=[], help="simulated cohort sizes (persons)")
    parser.add_argument("--simulated-days", type=int, default=42, help="days per simulated person")
    parser.add_argument("--no-real", action="store_true", help="only the simulated cohorts")
    parser.add_argument("--stride", type=int, default=7)
    parser.add_argument(
        "--samples", type=int, default=1, help="synthetic samples (seeds) each arm is scored on, averaged"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="2 folds, a few steps: a smoke test")
    parser.add_argument("--arms", nargs="+", help="only the trained arms whose label starts with one of these")
    parser.add_argument(
        "--mostly-minutes", type=float, help="add MOSTLY AI's TabularARGN at each ε, trained for at most this long"
    )
    parser.add_argument("--max-epochs", type=int, help="train the non-private arms at most this many epochs")
    parser.add_argument("--out", type=Path, help="write table.md, results.json and curve.json here")
    parser.add_argument("--ship", type=Path, nargs="+", help="merge these --out folders' curves into the package's")
    args = parser.parse_args(argv)
    if args.ship:
        return ship(args.ship)
    recipe = load_recipe(args.recipe)
    args.target = tstr_target(recipe)
    folds = 2 if args.quick else args.folds
    arms = arm_recipes(recipe, args.epsilons, args.compare_at, args.quick)
    notes = []
    if args.mostly_minutes is not None and mostlyai_installed():
        arms |= mostly_arms(args.epsilons, args.mostly_minutes)
    elif args.mostly_minutes is not None:
        notes.append(
            "MOSTLY AI rows skipped: mostlyai-engine is not installed or does not import (pip install -e '.[mostly]')"
        )
    arms = chosen(arms, args.arms)
    cohorts = [] if args.no_real else [(recipe.data.dataset or str(recipe.data.path), None)]
    for size in args.simulated:
        frame = simulated_cohort(recipe, size, args.simulated_days, args.seed, args.quick)
        cohorts.append((f"{size} simulated from a model of {recipe.data.dataset or recipe.data.path}", frame))
    command = "python benchmarks/privacy_utility.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO).stdout
    results, texts, curve = {"cohorts": []}, [], {"command": command, "commit": commit.strip(), "rows": []}
    for name, data in cohorts:
        dealt, persons = cohort_folds(recipe, data, folds, args.seed)
        meta = {"persons": persons, "simulated": data is not None, "folds": len(dealt), "stride": args.stride}
        meta["target"], meta["samples"] = args.target, args.samples
        print(f"{name}: {persons} persons", flush=True)
        fold_results = []
        for k, holdout in enumerate(dealt):
            print(f" fold {k + 1}/{len(dealt)}: {len(holdout)} unseen persons", flush=True)
            fold_results.append(
                run_fold(
                    for_cohort(arms, persons, data is not None, args.max_epochs), recipe, data, holdout, args, print
                )
            )
        table = aggregate(fold_results)
        texts.append(markdown(name, table, meta))
        curve["rows"] += curve_rows(name, table, meta)
        results["cohorts"].append({"name": name, "meta": meta, "folds": fold_results, "table": table})
        print(texts[-1], flush=True)
    text = f"Command: `{command}` (commit {curve['commit']})\n\n" + "\n".join(texts + [f"- {n}" for n in notes])
    out = args.out or REPO / "docs" / "privacy_utility"
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(text)
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    (out / "curve.json").write_text(json.dumps(curve, indent=2))


if __name__ == "__main__":
    main()
