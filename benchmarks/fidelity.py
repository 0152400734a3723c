"""Fidelity on persons never trained on: person-level K-fold cross-validation against the peers.

    python benchmarks/fidelity.py                          # 5 folds; writes docs/benchmarks.md + docs/fidelity.json
    python benchmarks/fidelity.py --quick --out /tmp/fid   # 2 folds, 2 epochs: a smoke test (the test suite's)
    python benchmarks/fidelity.py --recipes recipes/fitbit.yaml recipes/paper.yaml --par-epochs 128 512
    python benchmarks/fidelity.py --par-epochs --mostly-minutes 2 10   # MOSTLY AI rows only, two budgets
    python benchmarks/fidelity.py --variant "no summary day: windows.summary=false" --par-epochs   # an ablation row

Persons, not windows, are dealt into folds, and ids judged to be one person (identical days) stay in
one fold. In each fold every synthesizer is trained on the other folds' persons only (a synthwear
recipe also draws its early-stopping validation persons from those), samples 21-day windows, and is
scored on the fold's own persons by the project's evaluators. Rows, all on the same folds: each
recipe; SDV's PARSynthesizer per ``--par-epochs`` (the ``bench`` extra) and MOSTLY AI's TabularARGN
per ``--mostly-minutes`` (the ``mostly`` extra), both fitted on the windows the first recipe trains
on and skipped, with the reason, when their package is absent; the ceiling (real windows of the
training persons, scored as if synthetic) and the floor (independent days drawn from them). Every
number is a mean ± sd over folds.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import yaml
from peers import fit_mostly, fit_par, mostlyai_installed, sample_mostly, sample_par, sdv_installed
from sklearn.metrics import roc_auc_score

from synthwear import Synthesizer
from synthwear.cohort import Cohort
from synthwear.default_plugins.calendar_gaps import CalendarAndGaps
from synthwear.default_plugins.discriminative import DiscriminativeScore, with_missing_days_of
from synthwear.default_plugins.discriminative import window_features as summary_features
from synthwear.default_plugins.marginals import Marginals
from synthwear.default_plugins.membership_attacks import closest_distance, near_copy_share, window_features
from synthwear.default_plugins.subgroups import SubgroupFidelity
from synthwear.default_plugins.temporal import TemporalStructure
from synthwear.default_plugins.tstr import TrainSyntheticTestReal, TSTRConfig
from synthwear.errors import NotEstimable
from synthwear.fidelity_scale import independent_days
from synthwear.interfaces import EvaluationContext, Windows
from synthwear.plugins import default_registry
from synthwear.recipe import Recipe, load_recipe, parse_recipe
from synthwear.split import person_folds
from synthwear.steps import evaluation_context, load_data, usable_persons

REPO = Path(__file__).resolve().parents[1]
MARKERS = ("<!-- fidelity:start -->", "<!-- fidelity:end -->")
UNSEEN = "the unseen persons themselves"  # the row of what their own records show, where a column has it
NEAR_COPY_PERCENTILE = 5.0  # near-copy: closer to a training window than 5% of unseen real windows are
SUMMARY_FEATURES = ("mean", "sd", "min", "max", "mean abs change", "lag-1 AC")  # the discriminator's, per channel
TELLTALES = 3  # the features a row's "what tells it apart" cell names


# --- scoring one cohort of windows against a fold's unseen persons --------------------------------
def scores(context: EvaluationContext, target: str, copies: bool = True) -> dict[str, float | None]:
    """Every column of the table for ``context.synthetic``, from the project's own evaluators."""
    result: dict[str, float | None] = {
        "discriminative": DiscriminativeScore().evaluate(context)["synthetic"]["score"],
    }
    tstr = TrainSyntheticTestReal(TSTRConfig(target=target)).evaluate(context)
    result |= {"tstr_mae": tstr["mae"]["synthetic"], "train_on_real_mae": tstr["mae"]["ceiling"]}
    result["persistence_mae"] = tstr["persistence_mae"]
    temporal = TemporalStructure().evaluate(context)
    marginals = Marginals().evaluate(context)["channels"]
    for channel in context.channels:
        acf = temporal["acf"][channel]
        result[f"lag1_error.{channel}"] = difference(acf["synthetic"][0], acf["holdout"][0])
        result[f"acf_error.{channel}"] = temporal["acf_error"][channel]["synthetic"]
        shares = temporal["between_window_share"][channel]
        result[f"variance_ratio.{channel}"] = ratio(odds(shares["synthetic"]), odds(shares["holdout"]))
        result[f"ks.{channel}"] = marginals[channel]["ks_complement"]["synthetic"]
    for kind in ("values", "changes"):
        result[f"correlation_error.{kind}"] = temporal["correlation_error"][kind]["synthetic"]
    result |= calendar_scores(context) | subgroup_scores(context) | telltales(context)
    if copies:
        ranges = context.model.ranges
        synthetic, train, holdout = (
            window_features(w.values, ranges) for w in (context.synthetic, context.train, context.holdout)
        )
        result["near_copies"] = near_copy_share(synthetic, train, holdout, NEAR_COPY_PERCENTILE)["share"]
        result["closest_distance"] = float(np.median(closest_distance(synthetic, train)))
    return result


def telltales(context: EvaluationContext) -> dict[str, float]:
    """Per summary feature the discriminator reads, AUC - 0.5 of that feature alone telling the cohort's
    windows from the unseen persons' (positive: the cohort's values are higher). The discriminative
    score says how far a row is from real; this says where, and which way to move. The cohort's
    windows take on the unseen persons' gaps first, as the discriminator's do."""
    rng = np.random.default_rng(0)
    ours = summary_features(with_missing_days_of(context.synthetic.values, context.holdout.values, rng))
    theirs = summary_features(context.holdout.values)
    names = [f"{feature} {channel}" for feature in SUMMARY_FEATURES for channel in context.channels]
    result = {}
    for j, name in enumerate(names):
        a, b = ours[:, j][~np.isnan(ours[:, j])], theirs[:, j][~np.isnan(theirs[:, j])]
        if len(a) and len(b):
            labels = np.r_[np.ones(len(a)), np.zeros(len(b))]
            result[f"telltale.{name}"] = float(roc_auc_score(labels, np.r_[a, b])) - 0.5
    return result


def calendar_scores(context: EvaluationContext) -> dict[str, float | None]:
    """Saturday-minus-weekdays of the cohort over the unseen persons' (1 is right, 0 a flat week) and
    how far its share of missing days is from theirs, per channel (None where it cannot be told)."""
    try:
        channels = CalendarAndGaps().evaluate(context)["channels"]
    except NotEstimable:
        return {}
    result: dict[str, float | None] = {}
    for channel, found in channels.items():
        result[f"saturday_ratio.{channel}"] = found.get("saturday_effect_ratio")
        result[f"missing_error.{channel}"] = abs(found["missing_share_difference"])
    return result


def subgroup_scores(context: EvaluationContext) -> dict[str, float | None]:
    """With person attributes: per channel the worst shortfall of a subgroup's KSComplement (synthetic
    persons of one attribute value against the unseen persons of that value) below the whole cohort's
    against all unseen persons (issue: at most 0.05), and how many subgroups had windows to score."""
    try:
        found = SubgroupFidelity().evaluate(context)
    except NotEstimable:
        return {}
    whole, groups = found["whole"]["ks_complement"], found["subgroups"]
    result: dict[str, float | None] = {"subgroups": float(len(groups))}
    for channel, overall in whole.items():
        gaps = [
            overall - group["ks_complement"][channel] for group in groups if group["ks_complement"][channel] is not None
        ]
        result[f"subgroup_ks_shortfall.{channel}"] = max(gaps) if gaps and overall is not None else None
    return result


# --- a person's identity over long horizons ---------------------------------------------------------
YEAR = 365  # days sampled per synthetic person to see whether persons stay themselves
MIN_BLOCKS = 3  # a real person counts with at least three windows of days: first and last block a window apart


def block_correlations(first: np.ndarray, last: np.ndarray) -> list[float | None]:
    """(P, C) persons' first-block and last-block means -> per channel their Pearson correlation over the
    persons observed in both (None with fewer than 3 of them or no spread)."""
    found: list[float | None] = []
    for c in range(first.shape[1]):
        both = np.isfinite(first[:, c]) & np.isfinite(last[:, c])
        x, y = first[both, c], last[both, c]
        found.append(float(np.corrcoef(x, y)[0, 1]) if both.sum() >= 3 and x.std() > 0 and y.std() > 0 else None)
    return found


def block_mean(values: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a channel never observed in a block: NaN, left out
        return np.nanmean(values, axis=-2)


def recorded_identity(cohort: Cohort, block: int) -> tuple[list[float | None], np.ndarray]:
    """How much real persons stay themselves over the span they were recorded: per channel the
    correlation of their mean over the first ``block`` days with that over their last, for persons
    recorded at least ``MIN_BLOCKS`` blocks long; and those persons' spans."""
    spans = np.diff(cohort.offsets)
    long = np.flatnonzero(spans >= MIN_BLOCKS * block)
    if not len(long):
        return [None] * len(cohort.channels), spans[long]
    first = np.stack([block_mean(cohort.values[cohort.offsets[p] : cohort.offsets[p] + block]) for p in long])
    last = np.stack([block_mean(cohort.values[cohort.offsets[p + 1] - block : cohort.offsets[p + 1]]) for p in long])
    return block_correlations(first, last), spans[long]


def identity_scores(long: np.ndarray, unseen: Cohort, block: int) -> dict[str, float | None]:
    """Synthetic persons' (N, H, C) first-block versus last-block correlation per channel: over the
    spans the unseen persons were recorded (person i takes the i-th span, cycling), and over all H days."""
    _, spans = recorded_identity(unseen, block)
    result: dict[str, float | None] = {}
    first = block_mean(long[:, :block])
    if len(spans):
        ends = spans[np.arange(len(long)) % len(spans)]
        last = np.stack([block_mean(person[end - block : end]) for person, end in zip(long, ends, strict=True)])
        result |= {f"identity.{c}": r for c, r in zip(unseen.channels, block_correlations(first, last), strict=True)}
    year = block_correlations(first, block_mean(long[:, -block:]))
    return result | {f"identity_year.{c}": r for c, r in zip(unseen.channels, year, strict=True)}


def difference(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else abs(a - b)


def odds(share: float | None) -> float | None:
    """Between-window share s -> between / within variance, s / (1 - s)."""
    return None if share is None or share >= 1 else share / (1 - share)


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


# --- the synthesizers ----------------------------------------------------------------------------
def synthwear_fold(recipe: Recipe, holdout: list[str]) -> dict:
    """Train a recipe with ``holdout`` never seen; its context (synthetic = its samples) and timings."""
    synth = Synthesizer(recipe).fit(holdout_persons=holdout, progress=False)
    starts, codes = synth.first_days(), synth.attribute_codes(synth.synthetic_persons())
    synthetic = synth.sample_array(start=starts, attributes=codes)
    sample_s = synth.record["timings_seconds"]["sample"]
    horizon = max(YEAR, int(np.diff(synth.parts["holdout"].offsets).max()))
    long = synth.sample_array(days=horizon, start=starts, attributes=codes)
    timings = synth.record["timings_seconds"]
    context = evaluation_context(recipe, synth.parts, synth.model, synthetic, starts, None, codes)
    return {
        "context": context,
        "synthesizer": synth,
        "parts": synth.parts,
        "long": long,
        "train_s": timings["train"],
        "sequences_per_s": recipe.sampling.persons / sample_s,
        "long_persons_per_s": recipe.sampling.persons / timings["sample"],
    }


# A peer row: its label, fit(windows, channels, seed) -> (model, seconds), sample(model, sequences, days, channels).
Peer = tuple[str, Callable, Callable]


def available_peers(par_epochs: list[int], mostly_minutes: list[float]) -> list[Peer]:
    """The peer rows this run can have; a peer whose package is missing has none (``peer_notes`` says why)."""
    rows: list[Peer] = []
    if sdv_installed():
        rows += [(f"PARSynthesizer ({e} epochs)", partial(fit_par, epochs=e), sample_par) for e in par_epochs]
    if mostlyai_installed():
        rows += [
            (f"MOSTLY AI TabularARGN ({m:g} min)", partial(fit_mostly, minutes=m), sample_mostly)
            for m in mostly_minutes
        ]
    return rows


def peer_fold(context: EvaluationContext, train_windows: np.ndarray, peer: Peer, sequences: int, seed: int) -> dict:
    """A peer fitted on the same training persons' windows (every stride-1 window, as synthwear sees), its
    samples as the context's synthetic windows: every peer is held to synthwear on the same footing."""
    label, fit, sample = peer
    model, train_s = fit(train_windows, context.channels, seed)
    values, sample_s = sample(model, sequences, train_windows.shape[1], context.channels)
    synthetic = Windows(values, np.array([f"{label}-{i}" for i in range(sequences)]))
    return {
        "context": replace(context, synthetic=synthetic),
        "train_s": train_s,
        "sequences_per_s": sequences / sample_s,
    }


def training_windows(recipe: Recipe, parts) -> np.ndarray:
    """The windows a synthwear recipe trains on (every start, as its model sees them), as values (N, T, C)."""
    w, train = recipe.windows, parts["train"]
    return train.gather(train.window_starts(w.days, w.stride, w.min_observed), w.days)


# --- one fold, all rows ----------------------------------------------------------------------------
def run_fold(
    recipes: dict[str, Recipe], holdout: list[str], peer_rows: list[Peer], seed: int, log, repeats: int = 1
) -> dict:
    """Every row on one fold. A trained row is the mean of ``repeats`` trainings: a peer with seeds seed,
    seed + 1, ...; synthwear with its recipe's seed + r, which also deals its validation persons out of
    the training persons. On a few dozen persons one training's score moves by up to 0.09 between seeds,
    as much as the differences being measured. Peers, the ceiling and the floor use the first
    repeat's training windows and holdout (the same for every repeat unless the evaluation subsamples
    more than ``evaluation.max_windows`` windows, which the seed draws)."""
    rows: dict[str, dict] = {}
    base = None
    for label, recipe in recipes.items():
        trained = []
        for r in range(repeats):
            fold = synthwear_fold(recipe.model_copy(update={"seed": recipe.seed + r}), holdout)
            base = base or fold
            trained.append(timed_scores(fold, recipe))
        rows[label] = mean_row(trained)
        log(f"  {label}: {summary(rows[label])}")
    first = next(iter(recipes.values()))
    target = tstr_target(first)
    base_context = base["context"]
    windows = training_windows(first, base["parts"]) if peer_rows else None
    for peer in peer_rows:
        label, sequences = peer[0], first.sampling.persons
        trained = [
            timed_scores(peer_fold(base_context, windows, peer, sequences, seed + r), first) for r in range(repeats)
        ]
        rows[label] = mean_row(trained)
        log(f"  {label}: {summary(rows[label])}")
    n = len(base_context.synthetic.values)
    floor = independent_days(base_context.train, n, seed)
    rows["ceiling: real training persons"] = scores(replace(base_context, synthetic=base_context.train), target, False)
    block = first.windows.days
    for name, who in (("ceiling: real training persons", "train"), (UNSEEN, "holdout")):
        correlations, _ = recorded_identity(base["parts"][who], block)
        rows.setdefault(name, {}).update(
            {f"identity.{c}": r for c, r in zip(base_context.channels, correlations, strict=True)}
        )
    rows["floor: independent days"] = scores(replace(base_context, synthetic=floor), target)
    return {"holdout_persons": len(holdout), "holdout_windows": len(base_context.holdout.values), "rows": rows}


def mean_row(rows: list[dict]) -> dict:
    """Column by column, the mean of the repeats' rows (a column no repeat could score stays None)."""
    columns = dict.fromkeys(column for row in rows for column in row)  # a repeat may lack a column it could not score
    return {column: mean_of([row.get(column) for row in rows]) for column in columns}


def finite(values: list[float | None]) -> list[float]:
    return [v for v in values if v is not None and np.isfinite(v)]


def mean_of(values: list[float | None]) -> float | None:
    known = finite(values)
    return float(np.mean(known)) if known else None


def tstr_target(recipe: Recipe) -> str:
    """The channel TSTR forecasts: the target of the recipe's own ``tstr`` evaluator, else resting HR
    where the cohort has it, else its first channel."""
    for evaluator in recipe.evaluation.evaluators:
        if evaluator.name == "tstr" and evaluator.options.get("target") in recipe.channels:
            return evaluator.options["target"]
    return "resting_hr" if "resting_hr" in recipe.channels else next(iter(recipe.channels))


def timed_scores(fold: dict, recipe: Recipe) -> dict:
    row = scores(fold["context"], tstr_target(recipe))
    if "long" in fold:
        row |= identity_scores(fold["long"], fold["parts"]["holdout"], recipe.windows.days)
        row["long_persons_per_s"] = fold["long_persons_per_s"]
    return {**row, "train_s": fold["train_s"], "sequences_per_s": fold["sequences_per_s"]}


def summary(row: dict) -> str:
    return (
        f"discriminative {row['discriminative']:.3f}, TSTR {row['tstr_mae']:.3f}, near-copies {row['near_copies']:.1%}"
    )


def peer_notes(par_epochs: list[int], mostly_minutes: list[float]) -> list[str]:
    """Why a peer the table is read against has no row: not asked for, or its package is missing."""
    sdv = "SDV is not installed (pip install -e '.[bench]')"
    mostly = "mostlyai-engine is not installed or does not import (pip install -e '.[mostly]')"
    return [
        *skip_note("PARSynthesizer", "--par-epochs", par_epochs, sdv_installed(), sdv),
        *skip_note("MOSTLY AI TabularARGN", "--mostly-minutes", mostly_minutes, mostlyai_installed(), mostly),
    ]


def skip_note(rows: str, option: str, budgets: list, installed: bool, missing: str) -> list[str]:
    if not budgets:
        return [f"{rows} rows not run ({option} was given no values)."]
    return [] if installed else [f"{rows} rows skipped: {missing}."]


# --- the table -------------------------------------------------------------------------------------
def mean_sd(values: list[float | None]) -> tuple[float, float] | None:
    known = finite(values)
    return (float(np.mean(known)), float(np.std(known))) if known else None


def partial_folds(meta: dict) -> str:
    """ ", folds 3, 4 and 5 of it run" where --only-folds ran some of the folds dealt."""
    run = meta.get("folds_run", list(range(1, meta["folds"] + 1)))
    return "" if len(run) == meta["folds"] else f" (only folds {', '.join(map(str, run))} run)"


def aggregate(folds: list[dict]) -> dict[str, dict[str, tuple[float, float] | None]]:
    labels = list(folds[0]["rows"])
    columns = {column for fold in folds for row in fold["rows"].values() for column in row}
    return {
        label: {column: mean_sd([fold["rows"][label].get(column) for fold in folds]) for column in sorted(columns)}
        for label in labels
    }


def cell(value: tuple[float, float] | None, digits: int = 3, percent: bool = False) -> str:
    if value is None:
        return "–"
    if percent:
        return f"{value[0]:.1%} ± {value[1]:.1%}"
    return f"{value[0]:,.{digits}f} ± {value[1]:,.{digits}f}"


def markdown(table: dict, channels: list[str], meta: dict) -> str:
    head = [
        ("discriminative ↓", "discriminative", 3, False),
        ("TSTR next-day MAE ↓", "tstr_mae", 2, False),
        ("near-copies ↓", "near_copies", 1, True),
        ("median distance to training", "closest_distance", 3, False),
        ("seconds to train", "train_s", 1, False),
        ("sequences/s sampled", "sequences_per_s", 0, False),
    ]
    structure = [(f"lag-1 AC error {c}", f"lag1_error.{c}", 3, False) for c in channels]
    structure += [(f"between/within variance ratio {c}", f"variance_ratio.{c}", 2, False) for c in channels]
    structure += [(f"ACF error 1–7 {c}", f"acf_error.{c}", 3, False) for c in channels]
    structure += [("corr. error values", "correlation_error.values", 3, False)]
    structure += [("corr. error changes", "correlation_error.changes", 3, False)]
    structure += [(f"KSComplement {c}", f"ks.{c}", 3, False) for c in channels]
    calendar = [(f"Saturday effect ratio {c}", f"saturday_ratio.{c}", 2, False) for c in channels]
    calendar += [(f"missing-share error {c}", f"missing_error.{c}", 1, True) for c in channels]
    identity = [(f"first/last block r {c}", f"identity.{c}", 2, False) for c in channels]
    identity += [(f"r over {YEAR} days {c}", f"identity_year.{c}", 2, False) for c in channels]
    identity += [(f"persons/s sampled, {YEAR} days", "long_persons_per_s", 0, False)]
    subgroups = [
        (f"worst subgroup KSComplement shortfall {c}", f"subgroup_ks_shortfall.{c}", 3, False) for c in channels
    ]
    subgroups += [("subgroups scored", "subgroups", 1, False)]
    lines = [
        f"Person-level {meta['folds']}-fold cross-validation{partial_folds(meta)} on {meta['data']} "
        f"({meta['persons']} persons with a "
        f"usable window; seed {meta['seed']}); every score on the fold's unseen persons, mean ± sd over folds; a "
        f"trained row's score in a fold is the mean of {meta.get('repeats', 1)} trainings (seeds +0, +1, ...). "
        f"TSTR forecasts next-day {meta.get('tstr_target', 'resting_hr')}. "
        f"Train on real (next-day MAE): {cell(table[next(iter(table))]['train_on_real_mae'], 2)}; persistence "
        f"(tomorrow = today): {cell(table[next(iter(table))]['persistence_mae'], 2)}. Command: `{meta['command']}`.",
        "",
    ]
    for columns in (head, structure, calendar, identity, subgroups):
        rows = []
        for label, row in table.items():
            cells = [cell(row.get(key), digits, percent) for _, key, digits, percent in columns]
            if any(c != "–" for c in cells):  # a row with nothing in this group (peers' identity, ...) is left out
                rows.append(f"| {label} | " + " | ".join(cells) + " |")
        if rows:  # a group no row has (subgroups without person attributes) is no table
            lines.append("| synthesizer | " + " | ".join(name for name, *_ in columns) + " |")
            lines.append("|---" * (len(columns) + 1) + "|")
            lines += [*rows, ""]
    lines += telltale_table(table)
    lines += [f"- {note}" for note in meta["notes"]]
    return "\n".join(lines).rstrip() + "\n"


def telltale_table(table: dict) -> list[str]:
    """Per row the summary features that alone tell its windows from the unseen persons' best
    (``telltales``, mean ± sd over folds; + the row's values are higher)."""
    lines = [
        f"| synthesizer | the {TELLTALES} features that tell it from unseen persons most (AUC − 0.5; + = higher) |",
        "|---|---|",
    ]
    for label, row in table.items():
        found = [(key.removeprefix("telltale."), value) for key, value in row.items() if key.startswith("telltale.")]
        found = sorted((item for item in found if item[1] is not None), key=lambda item: -abs(item[1][0]))
        if found:
            named = [f"{name} {mean:+.3f} ± {sd:.3f}" for name, (mean, sd) in found[:TELLTALES]]
            lines.append(f"| {label} | " + "; ".join(named) + " |")
    return [*lines, ""] if len(lines) > 2 else []


def write_docs(text: str, results: dict) -> None:
    """The table between the markers in docs/benchmarks.md (appended the first time), JSON beside it."""
    doc = REPO / "docs" / "benchmarks.md"
    current = doc.read_text()
    block = f"{MARKERS[0]}\n{text}{MARKERS[1]}"
    if MARKERS[0] in current:
        current = re.sub(re.escape(MARKERS[0]) + ".*?" + re.escape(MARKERS[1]), lambda _: block, current, flags=re.S)
    else:
        current = current.rstrip() + "\n\n## Fidelity on unseen persons (benchmarks/fidelity.py)\n\n" + block + "\n"
    doc.write_text(current)
    (REPO / "docs" / "fidelity.json").write_text(json.dumps(results, indent=2) + "\n")


def variant(recipe: Recipe, spec: str) -> tuple[str, Recipe]:
    """``"LABEL: key=value key=value"`` -> (LABEL, the recipe with those settings changed): an ablation
    row without a copy of the whole recipe. Keys are dotted paths into the recipe, values YAML."""
    label, _, settings = spec.partition(":")
    raw = recipe.to_dict()
    for setting in settings.split():
        key, equals, value = setting.partition("=")
        if not equals:
            raise SystemExit(f"--variant {spec!r}: {setting!r} is not key=value")
        *parents, leaf = key.split(".")
        node = raw
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(value)
    return label.strip(), parse_recipe(raw, recipe.source)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--recipes",
        nargs="+",
        type=Path,
        default=[REPO / "recipes" / "fitbit.yaml"],
        help="synthwear recipes, one row each; the first one's data and channels are used for all",
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar='"LABEL: KEY=VALUE ..."',
        help="a row: the first recipe with these settings changed (dotted keys, YAML values); repeatable",
    )
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0, help="how persons are dealt into folds")
    parser.add_argument(
        "--only-folds",
        type=int,
        nargs="+",
        metavar="K",
        help="run only these folds (1-based) of the --folds dealt: a long row split over several runs; the "
        "results.json of each keeps every fold's own numbers",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        help="trainings per row and fold (seeds seed, seed+1, ...), averaged: one training's score varies with its "
        "seed as much as the rows differ (default 3; 1 with --quick)",
    )
    parser.add_argument("--par-epochs", type=int, nargs="*", default=[128, 512], help="a PARSynthesizer row per count")
    parser.add_argument(
        "--mostly-minutes",
        type=float,
        nargs="*",
        default=[5.0],
        help="a MOSTLY AI TabularARGN row per training-time cap in minutes (CPU). Default 5: over twice the ~2 min "
        "synthwear fitbit trains per fold on CPU, so the peer is not starved; the engine may stop sooner by its "
        "own early stopping, and the row's seconds to train show what it used",
    )
    parser.add_argument(
        "--quick", action="store_true", help="2 folds, 2 epochs, PAR 1 epoch, MOSTLY 0.2 min: a smoke test"
    )
    parser.add_argument("--out", type=Path, help="write results.json and table.md here instead of docs/")
    args = parser.parse_args(argv)

    recipes = {}
    for path in args.recipes:
        recipe = load_recipe(path)
        if args.quick:
            recipe.training.epochs, recipe.sampling.persons = 2, 60
        recipes[f"synthwear {path.stem}"] = recipe
    first_recipe = next(iter(recipes.values()))
    for spec in args.variant:
        label, recipe = variant(first_recipe, spec)
        recipes[f"synthwear, {label}"] = recipe
    folds, par_epochs, mostly_minutes = args.folds, args.par_epochs, args.mostly_minutes
    if args.quick:  # the smallest budgets, and still no row for a peer that was switched off
        folds, par_epochs, mostly_minutes = 2, [1] if par_epochs else [], [0.2] if mostly_minutes else []
    repeats = args.repeats if args.repeats is not None else 1 if args.quick else 3
    if repeats < 1:
        parser.error(f"--repeats must be at least 1, got {repeats}")
    peer_rows = available_peers(par_epochs, mostly_minutes)
    first = next(iter(recipes.values()))
    loaded = load_data(first, default_registry())
    _, persons, duplicates = usable_persons(first, loaded)
    dealt = person_folds(persons, folds, seed=args.seed, duplicate_groups=duplicates)
    results = {"folds": [], "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    chosen = args.only_folds or range(1, folds + 1)
    if not set(chosen) <= set(range(1, folds + 1)):
        parser.error(f"--only-folds must name folds 1 to {folds}, got {chosen}")
    for k in chosen:
        print(f"fold {k}/{folds}: {len(dealt[k - 1])} unseen persons", flush=True)
        results["folds"].append(run_fold(recipes, dealt[k - 1], peer_rows, args.seed, print, repeats) | {"fold": k})
    notes = peer_notes(par_epochs, mostly_minutes)
    meta = {
        "folds": folds,
        "folds_run": list(chosen),
        "seed": args.seed,
        "repeats": repeats,
        "data": loaded.source,
        "persons": len(persons),
        "notes": notes,
        "tstr_target": tstr_target(first),
        "command": "python benchmarks/fidelity.py " + shlex.join(argv or sys.argv[1:]),
    }
    table = aggregate(results["folds"])
    results |= {"meta": meta, "table": table}
    text = markdown(table, list(first.channels), meta)
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.json").write_text(json.dumps(results, indent=2))
        (args.out / "table.md").write_text(text)
    else:
        write_docs(text, results)


if __name__ == "__main__":
    main()
