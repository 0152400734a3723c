"""Advice before a privacy budget is spent (``synthwear privacy-plan``): for each ε, the noise a run
would add and how loud it is against the persons' gradients, and what fidelity was measured on the
nearest cohort and budget. Nothing is trained; the same split and noise calibration as a run are used,
so the numbers are the ones the run would get."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from rich.progress import Progress

from synthwear.errors import SynthwearError, one_line
from synthwear.plugins import default_registry
from synthwear.privacy.accounting import calibrate_noise, resolve_delta
from synthwear.progress import feedback
from synthwear.recipe import PrivacySection, Recipe, describe_error
from synthwear.split import PersonSplit
from synthwear.steps import load_data, split_cohort

if TYPE_CHECKING:
    from importlib.abc import Traversable

DEFAULT_EPSILONS = (1.0, 3.0, 8.0)  # priced when the recipe has no privacy: section and no --epsilon is given
BASE_ARM = "base"  # the public base model alone: it spends no private budget, so it stands beside every ε
CURVE_FIELDS = ("cohort", "simulated", "persons", "epsilon", "arm", "discriminative")


class Score(BaseModel):
    mean: float
    sd: float


class CurveRow(BaseModel):
    """One measured cell of a privacy-utility curve, as ``expected_fidelity`` and the plan's tables read
    it: a curve edited by hand is checked once, here, not by a traceback in the middle of the plan."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)
    cohort: str
    simulated: bool
    persons: int = Field(gt=0)  # compared on a log scale
    epsilon: float | None = Field(gt=0)  # None: trained without differential privacy
    arm: str
    discriminative: Score
    tstr: Score | None = None
    folds: int | None = None


CURVE_ROWS = TypeAdapter(list[CurveRow])


@dataclass
class Budget:
    """One ε priced: the noise a run with this target would add at each step, and how loud it is."""

    epsilon: float  # inf: no DP at all (only the measured curve has something to say)
    delta: float | None
    noise_multiplier: float | None  # None: the budget cannot be reached with these settings (see note)
    persons_per_step: float  # q·n, the expected batch of persons that the noise is averaged over
    noise_to_signal: float | None  # σ / (q·n): the averaged gradient's noise sd, in clipping bounds
    note: str | None = None
    fidelity: list[dict] = field(default_factory=list)  # the nearest measured cell of each arm

    def to_dict(self) -> dict:
        return {**asdict(self), "epsilon": None if math.isinf(self.epsilon) else self.epsilon}


@dataclass
class PrivacyPlan:
    """What ``synthwear privacy-plan`` reports: the split, the settings, each budget, the warnings."""

    recipe: str
    train_persons: int  # n, the DP unit's count: each step samples persons, not windows
    validation_persons: int
    holdout_persons: int
    settings: dict  # the privacy section planned with (the recipe's, else PrivacySection's defaults)
    from_recipe: bool
    budgets: list[Budget]
    curve: dict | None  # where the measured curve came from; None when none is shipped
    warnings: list[str]

    def to_dict(self) -> dict:
        return {**asdict(self), "budgets": [budget.to_dict() for budget in self.budgets]}


def make_plan(
    recipe: Recipe, epsilons: Sequence[float] = (), curve: dict | None = None, progress: Progress | None = None
) -> PrivacyPlan:
    """Split the recipe's persons as a run would and price each ε (default: the recipe's target,
    else ``DEFAULT_EPSILONS``); ``curve`` (``load_curve``) adds the measured fidelity."""
    with feedback(progress) as say:
        privacy, epsilons = planned_budgets(recipe.privacy, epsilons)
        split = split_as_a_run_would(recipe, say.note)
        advance = say.task("calibrating noise", len(epsilons))
        budgets = []
        for epsilon in epsilons:
            budgets.append(price_budget(privacy, len(split.train), epsilon, curve))
            advance()
    return PrivacyPlan(
        recipe=recipe.name,
        train_persons=len(split.train),
        validation_persons=len(split.validation),
        holdout_persons=len(split.holdout),
        settings=privacy.model_dump(exclude={"target_epsilon"}),
        from_recipe=recipe.privacy is not None,
        budgets=budgets,
        curve=None if curve is None else {key: curve.get(key) for key in ("source", "command", "commit")},
        warnings=plan_warnings(budgets, len(split.train), recipe.base is not None),
    )


def split_as_a_run_would(recipe: Recipe, log: Callable[[str], None]) -> PersonSplit:
    """The recipe's train / validation / holdout persons, by the very steps ``synthwear run`` takes."""
    split, _ = split_cohort(recipe, load_data(recipe, default_registry()), log)
    return split


def planned_budgets(privacy: PrivacySection | None, asked: Sequence[float]) -> tuple[PrivacySection, list[float]]:
    """The settings to plan with and the ε to price: a recipe without a privacy: section is priced
    with the section's defaults, so its user sees what adding one would cost."""
    epsilons = list(asked) or ([privacy.target_epsilon] if privacy else list(DEFAULT_EPSILONS))
    for epsilon in epsilons:
        if not epsilon > 0:  # NaN included
            raise SynthwearError(
                f"epsilon {epsilon:g}: a privacy budget is a number > 0 (inf: no differential privacy)"
            )
    planned = next((epsilon for epsilon in epsilons if math.isfinite(epsilon)), DEFAULT_EPSILONS[0])  # inf: no DP
    return privacy or PrivacySection(target_epsilon=planned), epsilons


def price_budget(privacy: PrivacySection, persons: int, epsilon: float, curve: dict | None = None) -> Budget:
    """The noise ``privacy`` with target ``epsilon`` calibrates to for ``persons`` training persons;
    an unreachable ε becomes a note, so the other budgets are still priced."""
    per_step, fidelity = privacy.sample_rate * persons, expected_fidelity(curve, persons, epsilon) if curve else []
    if math.isinf(epsilon):
        return Budget(epsilon, None, 0.0, per_step, 0.0, note="no DP: no formal guarantee", fidelity=fidelity)
    delta = resolve_delta(privacy, persons)
    try:
        sigma = calibrate_noise(privacy.model_copy(update={"target_epsilon": epsilon}), delta)
    except SynthwearError as err:  # a budget no run can spend: no measured cell applies to it
        return Budget(epsilon, delta, None, per_step, None, note=one_line(err))
    return Budget(
        epsilon, delta, sigma, per_step, noise_to_signal(sigma, privacy.sample_rate, persons), fidelity=fidelity
    )


def noise_to_signal(noise_multiplier: float, sample_rate: float, persons: int) -> float:
    """σ / (q·n): Opacus adds noise of sd σ·C to the sum of clipped gradients and divides by the expected
    batch q·n, so this is the noise's sd in the averaged gradient in units of the clipping bound C;
    above 1, each step's update is mostly noise."""
    return noise_multiplier / (sample_rate * persons)


def shipped_curve() -> Traversable:
    """Where the measured privacy-utility curve ships (benchmarks/privacy_utility.py writes it)."""
    return files("synthwear") / "privacy" / "curve.json"


def load_curve(path: Path | None = None) -> dict | None:
    """The measured curve at ``path``, else the shipped one; None when none is shipped (not yet measured)."""
    source = path or shipped_curve()
    if path is None and not source.is_file():
        return None
    try:
        curve = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:  # ValueError: not JSON, or not UTF-8
        raise SynthwearError(f"{source}: not a privacy-utility curve ({one_line(err)})") from None
    if not isinstance(curve, dict) or "rows" not in curve:
        found = (
            f"an object with keys {', '.join(map(repr, curve))}" if isinstance(curve, dict) else type(curve).__name__
        )
        raise SynthwearError(f"{source}: not a privacy-utility curve (expected an object with 'rows', found {found})")
    rows = curve["rows"]
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise SynthwearError(f"{source}: not a privacy-utility curve (its rows must be a list of objects)")
    lacking = [key for key in CURVE_FIELDS if any(key not in row for row in rows)]
    if lacking:
        raise SynthwearError(f"{source}: a curve row lacks {', '.join(lacking)}")
    try:
        CURVE_ROWS.validate_python(rows)
    except ValidationError as err:
        raise SynthwearError(f"{source}: curve rows: {describe_error(err)}") from None
    return {**curve, "source": str(source)}


def expected_fidelity(curve: dict, persons: int, epsilon: float) -> list[dict]:
    """For each arm, the measured row nearest to ``persons`` (log scale: 30 vs 60 persons is as far as
    300 vs 600) and then to ``epsilon``; ties go to the smaller ε (the more pessimistic estimate) and
    to real cohorts over simulated ones. Base rows match any ε, non-private rows only ε = inf."""
    rows = [row for row in curve["rows"] if matches_budget(row, epsilon)]
    arms = dict.fromkeys(row["arm"] for row in rows)
    return [
        min((row for row in rows if row["arm"] == arm), key=lambda row: distance(row, persons, epsilon)) for arm in arms
    ]


def matches_budget(row: dict, epsilon: float) -> bool:
    if row["arm"] == BASE_ARM:
        return True
    return (row["epsilon"] is None) == math.isinf(epsilon)


def distance(row: dict, persons: int, epsilon: float) -> tuple:
    gap = 0.0 if row["epsilon"] is None else abs(row["epsilon"] - epsilon)
    return abs(math.log(row["persons"] / persons)), gap, row["epsilon"] or 0.0, row["simulated"], row["cohort"]


def plan_warnings(budgets: list[Budget], persons: int, from_base: bool = False) -> list[str]:
    """What should give a user pause before spending: noise that drowns the persons, fine-tuning that
    the measurements say buys nothing over the base model, and attacks too few persons can judge."""
    warnings = [drowned(budget, persons, from_base) for budget in budgets if (budget.noise_to_signal or 0) > 1]
    warnings += [
        f"at ε={budget.epsilon:g}, {beaten}" for budget in budgets if (beaten := base_unbeaten(budget.fidelity))
    ]
    if persons < 100:
        warnings.append(
            f"only {persons} training persons: the membership-attack confidence intervals on so few persons "
            "are wide (read the intervals, not the point estimates)"
        )
    return warnings


def drowned(budget: Budget, persons: int, from_base: bool) -> str:
    remedies = "fewer trained values (`base.train: biases`)" if from_base else "a base model (`base:`)"
    return (
        f"at ε={budget.epsilon:g}, each step's noise outweighs the {persons} persons' clipped gradients "
        f"(σ/(q·n) = {budget.noise_multiplier:.2f}/{budget.persons_per_step:g} = {budget.noise_to_signal:.2f}); "
        f"DP will learn little beyond the starting point — use {remedies}, fewer steps, "
        "a larger sample rate or a larger ε"
    )


def base_unbeaten(cells: list[dict]) -> str | None:
    """A sentence when the nearest cells hold a base arm and fine-tune arms, none with a lower
    (better) discriminative score than the base model alone; else None."""
    base = next((cell for cell in cells if cell["arm"] == BASE_ARM), None)
    tuned = [cell for cell in cells if cell["arm"].startswith("fine-tune")]
    if base is None or not tuned:
        return None
    best = min(tuned, key=lambda cell: cell["discriminative"]["mean"])
    if best["discriminative"]["mean"] < base["discriminative"]["mean"]:
        return None
    return (
        f"no fine-tune arm beats the base model on the discriminative score in the nearest measured cells "
        f"(base {base['discriminative']['mean']:.3f}, best {best['arm']} {best['discriminative']['mean']:.3f}; "
        "lower is better): the budget may buy nothing over the base model alone"
    )
