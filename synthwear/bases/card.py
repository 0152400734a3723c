"""A model card for a trained model, and the export that makes a finished run a base others start from.

The card is what a reader of a shared model needs before trusting it: what data it learned from
and under which licence, how the data was binned, how well it does on persons it never saw, what the
membership attacks found, and (for a model fine-tuned from a base) which parts were learned from the
private persons and under what guarantee. Everything on it is read from the run's run.json and
metrics.json: nothing is typed in by hand.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from synthwear.errors import SynthwearError
from synthwear.model import SynthesisModel
from synthwear.plugins import default_registry
from synthwear.report.page import read_json, record_problem
from synthwear.run_folder import publish, staging_folder
from synthwear.tables import nearest_existing

CARD = "MODEL_CARD.md"
MODEL_FILES = ("model.json", "weights.safetensors")  # what a base is: the model, never the run's data


def export_base(run_folder: Path, out: Path) -> Path:
    """Copy a finished run's model to ``out`` with its card (never over an existing folder)."""
    run_folder, out = Path(run_folder), Path(out)
    check_export(run_folder, out)
    run, metrics = read_json(run_folder / "run.json"), read_json(run_folder / "metrics.json")
    try:
        card = model_card(run, metrics, out.name)
    except (KeyError, TypeError) as err:
        raise SynthwearError(f"{run_folder}: run.json or metrics.json is {record_problem(err)}") from None
    # loaded once, so damaged weights or an edited model.json are refused here, not by whoever samples the base
    SynthesisModel.load(run_folder / "model", default_registry())
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise SynthwearError(f"{out}: cannot make its folder ({err.strerror})") from None
    with staging_folder(out) as staging:
        for name in MODEL_FILES:
            shutil.copy2(run_folder / "model" / name, staging / name)
        (staging / CARD).write_text(card)
        publish(staging, out)
    return out


def check_export(run_folder: Path, out: Path) -> None:
    """What would stop the export half-way, refused before anything is written: a model file the run
    lacks, and a place for the base that is taken or lies under a file."""
    for name in MODEL_FILES:
        if not (run_folder / "model" / name).is_file():
            raise SynthwearError(f"{run_folder}: not a finished run (no model/{name})")
    if out.exists():
        raise SynthwearError(f"{out}: exists; a base is exported to a new folder")
    in_the_way = nearest_existing(out.parent)
    if not in_the_way.is_dir():
        raise SynthwearError(f"{out}: {in_the_way} is a file, not a folder")


def model_card(run: dict[str, Any], metrics: dict[str, Any], name: str) -> str:
    """The card as Markdown, from a run's run.json and metrics.json."""
    sections = [
        f"# {name}\n\nA synthwear model, made by the recipe `{run['recipe']['name']}` (seed {run['seed']}) and "
        "`synthwear export-base`: `synthwear sample <this folder>` draws synthetic persons from it, and a recipe "
        "with `base: {model: <this folder>}` fine-tunes it on other persons (docs/privacy.md).",
        data_section(run),
        architecture_section(run),
        fidelity_section(run, metrics),
        attacks_section(metrics),
        private_section(run),
    ]
    return "\n\n".join(section for section in sections if section) + "\n"


def data_section(run: dict[str, Any]) -> str:
    data, split = run["data"], run["split"]
    return "\n".join(
        [
            "## Trained on",
            "",
            f"- Data: {data['source']} ({data['persons']} persons, {data['person_days']} person-days)",
            f"- Licence: {data.get('licence') or 'not stated by the run; check the data source'}",
            f"- Citation: {data.get('citation') or 'not stated by the run'}",
            f"- Persons: {split['train']} trained on, {split['validation']} chose the stopping epoch"
            f"{' and the training kept' if run.get('candidates') else ''}, "
            f"{split['holdout']} held out for the scores below",
            f"- Fingerprint of the data: `{data['fingerprint']}`",
        ]
    )


def architecture_section(run: dict[str, Any]) -> str:
    recipe, training = run["recipe"], run["training"]
    lines = ["## Channels and model", "", "| channel | range | bins |", "|---|---|---|"]
    for channel, spec in recipe["channels"].items():
        encoder = spec.get("encoder") or recipe["encoder"]
        lines.append(f"| {channel} | {spec['range'][0]:g} to {spec['range'][1]:g} | {encoder.get('bins', '?')} |")
    generator = ", ".join(f"{k} {v}" for k, v in recipe["generator"].items() if k != "name")
    windows = recipe["windows"]
    lines += [
        "",
        f"- Generator: {recipe['generator']['name']} ({generator})",
        f"- Windows: {windows['days']} days" + (", opened by a summary day" if windows.get("summary") else ""),
        f"- Training: {training['epochs']} epochs, kept epoch {training['best_epoch']} ({training['stopped']})",
    ]
    return "\n".join(lines)


def fidelity_section(run: dict[str, Any], metrics: dict[str, Any]) -> str:
    """The headline scores on the held-out persons, where the run's evaluators computed them."""
    rows = []
    score = metrics.get("discriminative", {})
    if "synthetic" in score:
        rows.append(
            f"| discriminative score (0 = indistinguishable) | {score['synthetic']['score']:.3f} | "
            f"{score['ceiling']['score']:.3f} (real persons) |"
        )
    tstr = metrics.get("tstr", {})
    if "mae" in tstr:
        rows.append(
            f"| next-day {tstr['target']} MAE of a model trained on synthetic data | {tstr['mae']['synthetic']:.3f} | "
            f"{tstr['mae']['ceiling']:.3f} (trained on real); tomorrow = today {tstr['persistence_mae']:.3f} |"
        )
    for channel, value in metrics.get("forecast", {}).items():
        if isinstance(value, dict) and "model_mae" in value:
            rows.append(
                f"| next-day {channel} forecast MAE | {value['model_mae']:.3f} | "
                f"tomorrow = today {value['persistence_mae']:.3f} |"
            )
    if not rows:
        return ""
    holdout = run["split"]["holdout"]
    head = [f"## Fidelity on the {holdout} held-out persons", "", "| score | this model | reference |", "|---|---|---|"]
    return "\n".join(head + rows)


def attacks_section(metrics: dict[str, Any]) -> str:
    attacks = metrics.get("membership", {}).get("attacks", {})
    if not attacks:
        return ""
    lines = [
        "## Membership attacks (trained persons vs held-out persons)",
        "",
        "| attack | AUC [95% CI] |",
        "|---|---|",
    ]
    for attack, value in attacks.items():
        if isinstance(value, dict) and "auc" in value:
            low, high = value["auc_ci"]
            lines.append(f"| {attack.replace('_', ' ')} | {value['auc']:.2f} [{low:.2f}, {high:.2f}] |")
    return "\n".join(lines)


def private_section(run: dict[str, Any]) -> str:
    """Which weights came from which persons, and under what guarantee."""
    base, privacy = run.get("base"), run.get("privacy")
    lines = ["## What was learned from whom", ""]
    if base:
        lines.append(
            f"Started from the base `{base['base']}`; training changed {base['trained_values']:,} of "
            f"{base['total_values']:,} values (`train: {base['train']}`). New for this model (the base had "
            f"nothing for them): {', '.join(f'`{n}`' for n in base['new']) or 'nothing'}."
        )
        if base.get("latent"):
            lines.append(
                f"Generated as the base generates them, read by the other channels and never written: "
                f"{', '.join(f'`{n}`' for n in base['latent'])} (the base's weights, untouched by training)."
            )
        if run["training"]["best_epoch"] == 0:
            lines.append("Validation kept the base's own weights: every checkpoint of training scored worse.")
    else:
        lines.append("Trained from random weights on the data above only.")
    if privacy:
        lines.append(
            f"\nLearned under person-level DP-SGD: epsilon {privacy['epsilon']:.3f} (the accountant's, "
            f"{privacy['accountant']}) at delta {privacy['delta']:.1e}, noise multiplier "
            f"{privacy['noise_multiplier']:.2f}, {privacy['steps']} steps at sample rate {privacy['sample_rate']:g}."
        )
    else:
        lines.append("\nNo differential privacy: share this model only where the training data itself may be shared.")
    return "\n".join(lines)
