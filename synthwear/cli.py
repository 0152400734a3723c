"""The ``synthwear`` command line: run a recipe, sample from a model, render a report, list plugins."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich import box
from rich.console import Console
from rich.progress import Progress
from rich.table import Column, Table

from synthwear.errors import SynthwearError, one_line
from synthwear.plugins import KINDS, default_registry

if TYPE_CHECKING:
    from synthwear.model import SynthesisModel
    from synthwear.privacy.plan import PrivacyPlan
    from synthwear.recipe import SamplingSection

console = Console(stderr=True)


@contextmanager
def friendly_errors() -> Iterator[None]:
    """Bad input ends the command with its one-line message and exit code 1, never a traceback;
    Ctrl-C with one line and the shell's status for SIGINT, 130 (every file is written under a staging
    name and renamed into place, so none is left half-written)."""
    try:
        yield
    except SynthwearError as err:
        raise click.ClickException(one_line(err)) from None  # one line, whatever the cause said
    except KeyboardInterrupt:
        console.print("[red]interrupted:[/] stopped; no file was left half-written")
        raise click.exceptions.Exit(130) from None


def checked_device(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """``--device`` is checked as it is read: a typo is the option's error, not the recipe's."""
    from synthwear.recipe import DEVICE_NAMES, is_device

    if value is not None and not is_device(value):
        raise click.BadParameter(f"{value!r} is not one of {DEVICE_NAMES}")
    return value


def checked_start_date(ctx: click.Context, param: click.Parameter, value: datetime | None) -> datetime | None:
    """``--start-date`` within the days a written cohort can be read back (``recipe.START_DATES``)."""
    from synthwear.recipe import check_start_date

    if value is not None:
        try:
            check_start_date(value.date())
        except ValueError as err:
            raise click.BadParameter(str(err)) from None
    return value


def make_progress() -> Progress:
    from synthwear.progress import make_progress as bars

    return bars(console)


class PluginGroup(click.Group):
    """Loads plugin-provided subcommands (the ``register_commands`` hook) the first time it is used."""

    def _load_plugin_commands(self) -> None:
        if getattr(self, "_plugins_loaded", False):
            return
        self._plugins_loaded = True
        with friendly_errors():
            registry = default_registry()
            for plugin in registry.broken:  # said once, at start-up; commands that do not need it go on
                console.print(
                    f"[yellow]warning:[/] plugin {plugin.name!r} ({plugin.package}) failed to load: {plugin.error}"
                )
            registry.plugin_manager.hook.register_commands(cli=self)

    def list_commands(self, ctx):
        self._load_plugin_commands()
        return super().list_commands(ctx)

    def get_command(self, ctx, name):
        self._load_plugin_commands()
        return super().get_command(ctx, name)


@click.group(cls=PluginGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="synthwear")
def cli() -> None:
    """Synthetic wearable data: train a generative model on daily data, sample, evaluate.

    \b
    Example:
        synthwear run recipes/fitbit.yaml            # train on LifeSnaps, write runs/fitbit/
        synthwear sample runs/fitbit/model --persons 1000 -o more.csv
        synthwear evaluate runs/fitbit               # rerun the evaluators, without retraining
        synthwear report runs/fitbit                 # re-render runs/fitbit/report.html
        synthwear plugins                            # what is installed
        synthwear datasets                           # the real data shipped with it
    """
    signal.signal(signal.SIGTERM, terminated)


def terminated(signum: int, frame: object) -> None:
    """SIGTERM (``timeout``, ``kill``, a batch scheduler) unwinds like Ctrl-C: staged files and the run
    folder's lock are removed on the way out, and the exit status is the shell's for SIGTERM, 143."""
    console.print("[red]terminated:[/] stopped; no file was left half-written (a run keeps its checkpoint)")
    raise SystemExit(128 + signum)


@cli.command()
@click.argument("recipe_file", type=click.Path(path_type=Path))
@click.option("--out", "out_dir", type=click.Path(path_type=Path), help="Run folder (default: runs/<recipe name>).")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), help="Override the recipe's seed.")
@click.option("--overwrite", is_flag=True, help="Replace an earlier run in the run folder (never other files).")
@click.option(
    "--resume",
    is_flag=True,
    help="Continue a killed run from its last epoch's checkpoint, or finish its evaluation if it was killed after training.",
)
@click.option(
    "--device",
    callback=checked_device,
    help="cpu, cuda, cuda:N or mps (default: the recipe's training.device, auto = CUDA if present).",
)
def run(
    recipe_file: Path, out_dir: Path | None, seed: int | None, overwrite: bool, resume: bool, device: str | None
) -> None:
    """Load -> train -> sample -> evaluate -> report, as the recipe says.

    \b
    Example:
        synthwear run recipes/fitbit.yaml
        synthwear run recipes/tiny.yaml --out /tmp/tiny --seed 3 --overwrite
    """
    from synthwear.pipeline import run_recipe
    from synthwear.recipe import load_recipe
    from synthwear.synthesizer import with_device

    with friendly_errors():
        recipe = load_recipe(recipe_file)
        if seed is not None:
            recipe.seed = seed
        if device is not None:
            recipe = with_device(recipe, device)
        out_dir = out_dir or Path("runs") / recipe.name
        try:
            with make_progress() as progress:
                result = run_recipe(recipe, out_dir, progress=progress, overwrite=overwrite, resume=resume)
        except KeyboardInterrupt:
            raise interrupted(out_dir) from None
    finish(result)


def interrupted(out_dir: Path) -> click.exceptions.Exit:
    """Ctrl-C: one line saying what is left (the run folder is untouched, or in place with its
    evaluation cut off; the training checkpoint, if one was written, is kept for ``--resume``), and
    the shell's exit status for SIGINT, 130."""
    from synthwear.checkpoint import checkpoint_path
    from synthwear.run_folder import unfinished_evaluation

    kept = checkpoint_path(out_dir)
    if unfinished_evaluation(out_dir) and not kept.exists():
        console.print(f"[red]interrupted:[/] the run is in {out_dir} but not evaluated; add --resume to finish it")
    elif kept.exists():
        console.print(f"[red]interrupted:[/] training so far is kept in {kept}; add --resume to continue from it")
    else:
        console.print(f"[red]interrupted:[/] nothing was written to {out_dir}")
    return click.exceptions.Exit(130)


@cli.command()
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--only", multiple=True, help="Rerun just this evaluator (repeatable); the others' results are kept.")
def evaluate(run_dir: Path, only: tuple[str, ...]) -> None:
    """Rerun a run's evaluators on its saved model and synthetic data, without retraining.

    \b
    Example:
        synthwear evaluate runs/fitbit                   # every evaluator of the recipe
        synthwear evaluate runs/fitbit --only membership
    """
    from synthwear.pipeline import evaluate_run_folder

    with friendly_errors(), make_progress() as progress:
        result = evaluate_run_folder(run_dir, only=list(only) or None, progress=progress)
    finish(result)


def finish(result) -> None:
    """The summary table; then, if an evaluator failed, one line naming it and a non-zero exit."""
    from synthwear.evaluation import unavailable_reasons

    print_summary(result.folder, result.run, result.metrics)
    for name, reason in unavailable_reasons(result.metrics).items():
        console.print(f"[yellow]note:[/] {name} could not be computed on this data: {reason}")
    if result.failures:
        raise click.ClickException(result.failures)


def print_summary(folder: Path, run: dict, metrics: dict) -> None:
    from synthwear.evaluation import failures, unavailable_reasons

    table = Table(title=f"synthwear run {run['recipe']['name']}", show_header=True)
    table.add_column("result")
    table.add_column("model", justify="right")
    table.add_column("baseline", justify="right")
    missing = failures(metrics) | unavailable_reasons(metrics)
    computed = {name: results for name, results in metrics.items() if name not in missing}
    for channel, r in computed.get("forecast", {}).items():
        if r["model_mae"] is not None:
            table.add_row(
                f"next-day MAE {channel}", f"{r['model_mae']:.3f}", f"{r['persistence_mae']:.3f} (persistence)"
            )
    summary = computed.get("similarity", {}).get("summary", {})
    if summary.get("model", {}).get("cosine") is not None:
        base = summary.get("other_person") or summary["persistence"]
        label = "other person" if "other_person" in summary else "persistence"
        table.add_row("cosine similarity", f"{summary['model']['cosine']:.3f}", f"{base['cosine']:.3f} ({label})")
        table.add_row("DTW distance", f"{summary['model']['dtw']:,.0f}", f"{base['dtw']:,.0f} ({label})")
    t = run["timings_seconds"]
    table.add_row("seconds train / sample", f"{t['train']:.1f} / {t['sample']:.1f}", "")
    console.print(table)
    written = sorted(entry.name + "/" * entry.is_dir() for entry in folder.iterdir() if not entry.name.startswith("."))
    console.print(f"Wrote [bold]{folder}[/]: {', '.join(written)}")


@cli.command()
@click.argument("model_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--persons", type=click.IntRange(min=1), default=100, show_default=True, help="Synthetic persons.")
@click.option("--days", type=click.IntRange(min=1), help="Days per person (default: the model's window).")
@click.option(
    "--temperature",
    type=click.FloatRange(min=0),
    help="For every channel and day, the summary day too (default: the recipe's sampling temperatures).",
)
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True)
@click.option(
    "--start-date",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    callback=checked_start_date,
    help="First day of every synthetic person (YYYY-MM-DD); default: the recipe's, else drawn from the real first days.",
)
@click.option("--complete", is_flag=True, help="No gaps: a value on every day (models that learned gaps).")
@click.option(
    "--where",
    "where",
    multiple=True,
    help='Who to generate, e.g. "gender == \'female\'" or "mean(sleep_minutes) < 300" (repeatable: all hold).',
)
@click.option(
    "--quota", "quotas", multiple=True, help='Exact share of a category, e.g. "gender=female:0.5" (repeatable).'
)
@click.option(
    "--prime",
    type=click.Path(path_type=Path),
    help="A daily table (CSV or Parquet) of real persons to continue, each to --days days in all.",
)
@click.option(
    "--seed-table",
    type=click.Path(path_type=Path),
    help="CSV or Parquet: one row per person to generate, filled cells kept (sets --persons); with --prime, "
    "a row per primed person_id giving their attributes.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default="synthetic.csv",
    show_default=True,
    help="CSV or Parquet (by suffix).",
)
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
@click.option("--device", callback=checked_device, help="cpu, cuda, cuda:N or mps (default: CUDA if present).")
def sample(
    model_dir: Path,
    persons: int,
    days: int | None,
    temperature: float | None,
    seed: int,
    start_date: datetime | None,
    complete: bool,
    where: tuple[str, ...],
    quotas: tuple[str, ...],
    prime: Path | None,
    seed_table: Path | None,
    output: Path,
    overwrite: bool,
    device: str | None,
) -> None:
    """Sample a synthetic cohort from a saved model, without retraining. A model with person
    attributes also writes them beside OUTPUT (cohort.csv -> cohort.persons.csv).

    \b
    Examples:
        synthwear sample runs/fitbit/model --persons 1000 --days 365 -o cohort.parquet
        synthwear sample runs/fitbit/model --persons 1000 --where "gender == 'female'" --where "age_group == '>=30'"
        synthwear sample runs/fitbit/model --prime history.csv --days 30 -o continued.csv
    """
    from synthwear.behaviour import Acceptance
    from synthwear.sampling import check_request, persons_path
    from synthwear.synthesizer import Synthesizer
    from synthwear.tables import check_output_file, read_person_table

    with friendly_errors():
        refuse_beside_seed_table(click.get_current_context())
        check_output_file(output, overwrite=overwrite, inputs=[seed_table, prime])
        synth = Synthesizer.load(model_dir, device=device)
        if prime is not None:
            refuse_beside_prime(click.get_current_context())
            continue_from_file(synth, prime, seed_table, days, seed, temperature, output, overwrite)
            return
        table = read_person_table(seed_table, ids=False) if seed_table else None
        persons = len(table) if table is not None else persons
        days = days or synth.fitted.window_days
        temperatures = requested_temperatures(synth.recipe.sampling, synth.fitted.channels, temperature)
        check_request(persons, days, len(synth.fitted.channels), temperatures[0], output)
        who = synth.synthetic_persons(
            persons,
            seed,
            where=list(where) or None,
            quotas=list(quotas) or None,
            seed_table=table,
            seed_source=str(seed_table),
        )
        if who is not None:
            check_output_file(persons_path(output), overwrite=overwrite, inputs=[seed_table])
        sampling, tally = synth.recipe.sampling, Acceptance()
        conditions = synth.day_conditions(list(where) or (None if table is None else []))
        write_with_progress(
            synth.fitted,
            persons,
            days,
            output,
            temperature=temperatures[0],
            summary_temperature=temperatures[1],
            persistence=sampling.persistences(synth.fitted.channels, synth.fitted.persistence),
            seed=seed,
            start_date=start_date.date() if start_date else sampling.start_date,
            complete=complete or sampling.complete,
            persons_table=who,
            conditions=conditions,
            tally=tally,
        )
    if conditions:
        console.print(f"[yellow]note:[/] {tally.line(conditions)}", soft_wrap=True)
    beside = f" and their attributes in [bold]{persons_path(output)}[/]" if who is not None else ""
    console.print(f"Wrote [bold]{output}[/]: {persons:,} persons × {days} days{beside}")


def write_with_progress(model: SynthesisModel, persons: int, days: int, output: Path, **options: Any) -> None:
    """``sampling.sample_to_file`` (``options``: its keywords) with a progress bar over the persons written."""
    from synthwear.sampling import sample_to_file

    with make_progress() as progress:
        task = progress.add_task("sampling", total=persons)
        sample_to_file(
            model, persons, days, output, on_progress=lambda done: progress.update(task, completed=done), **options
        )


def requested_temperatures(
    sampling: SamplingSection, channels: list[str], temperature: float | None
) -> tuple[float | list[float], float | list[float]]:
    """The days' and the summary day's temperatures: ``--temperature`` for both, else the recipe's."""
    if temperature is not None:
        return temperature, temperature
    return sampling.temperatures(channels), sampling.summary_temperatures(channels)


def refuse_beside_seed_table(ctx: click.Context) -> None:
    """A seed table makes one person per row: a count of persons beside it would be silently ignored."""
    given = ctx.get_parameter_source("persons") == click.core.ParameterSource.COMMANDLINE
    if ctx.params.get("seed_table") is not None and given:
        raise SynthwearError("--seed-table makes one person per row: --persons does not apply beside it")


def refuse_beside_prime(ctx: click.Context) -> None:
    """``--prime`` continues the persons it is given: options that choose or shape new persons do not apply."""
    given = [
        f"--{name.replace('_', '-')}"
        for name in ("persons", "where", "quotas", "start_date", "complete")
        if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE
    ]
    if given:
        raise SynthwearError(f"--prime continues the persons it is given: {', '.join(given)} do not apply to it")


def continue_from_file(
    synth,
    prime: Path,
    seed_table: Path | None,
    days: int | None,
    seed: int,
    temperature: float | None,
    output: Path,
    overwrite: bool,
) -> None:
    """``sample --prime``: each person of the daily table ``prime`` continued to ``days`` days in all;
    ``seed_table``: their attributes by person_id, written beside OUTPUT as drawn."""
    import pandas as pd

    from synthwear.recipe import MAX_DAYS
    from synthwear.sampling import check_request, persons_path
    from synthwear.steps import nonnegative_channels
    from synthwear.tables import check_output_file, read_daily_table, read_person_table, write_daily_table

    model = synth.fitted
    history = read_daily_table(
        prime, model.channels, nonnegative=nonnegative_channels(synth.recipe), empty_channels=True
    )
    day = history["date"].to_numpy().astype("datetime64[D]").astype("int64")  # over 292 years too (no Timedelta)
    ends = pd.Series(day).groupby(history["person_id"].to_numpy()).agg(["min", "max"])
    given = int((ends["max"] - ends["min"]).max()) + 1
    if days is not None and days < given:
        raise SynthwearError(f"{prime}: persons span {given} days; --days {days} would continue none of them")
    if days is None and given + model.window_days > MAX_DAYS:
        raise SynthwearError(
            f"{prime}: persons span {given:,} days; continued by a window, more than a hundred years "
            f"({MAX_DAYS:,} days) per person"
        )
    days = days or given + model.window_days
    outside = {
        channel: int(((history[channel] < low) | (history[channel] > high)).sum())
        for channel, (low, high) in zip(model.channels, model.ranges)
    }
    if any(outside.values()):  # the model reads them as its nearest bin, as training read the data
        console.print(f"[yellow]note:[/] {prime}: values outside the model's ranges are read as its edges: {outside}")
    temperatures = requested_temperatures(synth.recipe.sampling, model.channels, temperature)[0]
    check_request(history["person_id"].nunique(), days, len(model.channels), temperatures, output)
    persons = None
    if seed_table is not None:
        check_output_file(persons_path(output), overwrite=overwrite, inputs=[prime, seed_table])
        persons = read_person_table(seed_table)
    frame, attributes = synth.continue_persons(
        history,
        days,
        seed=seed,
        temperature=temperature,
        persons=persons,
        persons_source=str(seed_table),
    )
    write_daily_table(frame, output)
    if attributes is not None:
        write_daily_table(attributes, persons_path(output))
    beside = f" and their attributes in [bold]{persons_path(output)}[/]" if attributes is not None else ""
    console.print(
        f"Wrote [bold]{output}[/]: {frame['person_id'].nunique():,} persons continued to "
        f"{frame.groupby('person_id').size().iloc[0]} days{beside}"
    )


@cli.command()
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
def report(run_dir: Path) -> None:
    """Render RUN_DIR/report.html from the files of a finished run.

    \b
    Example:
        synthwear report runs/fitbit
    """
    from synthwear.report import write_report

    with friendly_errors():
        path = write_report(run_dir)
    console.print(f"Wrote [bold]{path}[/]")


@cli.command(name="import")
@click.argument("importer")
@click.argument("export_dir", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="CSV or Parquet (by suffix).")
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
def import_(importer: str, export_dir: Path, output: Path, overwrite: bool) -> None:
    """Turn a device export (e.g. a Fitbit account export) into the tidy daily table.

    \b
    Example:
        synthwear import fitbit ~/fitbit-export -o daily.csv
    """
    from synthwear.tables import check_output_file, write_daily_table

    with friendly_errors():
        check_output_file(output, overwrite=overwrite, inputs=[export_dir])
        result = default_registry().get("importers", importer)(export_dir)
        for note in result.notes:
            console.print(f"[yellow]note:[/] {note}")
        values = result.frame.drop(columns=["person_id", "date"], errors="ignore")
        if not values.notna().to_numpy().any():
            raise SynthwearError(
                f"{export_dir}: the {importer} importer found no daily values in it, so nothing was written "
                "(is it the export's top folder, with the files the importer reads?)"
            )
        write_daily_table(result.frame, output)
    console.print(
        f"Wrote [bold]{output}[/]: {result.frame['person_id'].nunique()} persons, {len(result.frame):,} person-days"
    )


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def datasets(as_json: bool) -> None:
    """List the real datasets shipped with synthwear: persons, days, channels, licence (--json names the channels).

    \b
    Example:
        synthwear datasets              # a recipe names one as data: {dataset: lifesnaps}
    """
    from synthwear.datasets import describe_datasets

    rows = describe_datasets()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table("name", "persons", "person-days", "channels", "size", "licence")
    for row in rows:
        table.add_row(
            row["name"],
            f"{row['persons']:,}",
            f"{row['person_days']:,}",
            str(len(row["channels"])),
            f"{row['bytes'] / 2**20:.1f} MiB",
            row["licence"],
        )
    Console().print(table)
    console.print("Cite: " + "; ".join(sorted({row["citation"] for row in rows})))


@cli.command(name="export-base")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.argument("out_dir", type=click.Path(path_type=Path))
def export_base(run_dir: Path, out_dir: Path) -> None:
    """Make a finished run's model a base others fine-tune (a recipe's `base:`), with its model card.

    \b
    Example:
        synthwear run recipes/fitbit.yaml && synthwear export-base runs/fitbit bases/lifesnaps
    """
    from synthwear.bases.card import CARD, export_base

    with friendly_errors():
        folder = export_base(run_dir, out_dir)
    console.print(f"base written to {folder} (its card: {folder / CARD})")


@cli.command(name="privacy-plan")
@click.argument("recipe_file", type=click.Path(path_type=Path))
@click.option(
    "--epsilon",
    "epsilons",
    type=click.FloatRange(min=0, min_open=True),
    multiple=True,
    help="A budget to price (repeatable; inf = no DP). Default: the recipe's target_epsilon, else 1, 3 and 8.",
)
@click.option(
    "--curve",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A measured privacy-utility curve (JSON) instead of the one shipped with synthwear.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def privacy_plan(recipe_file: Path, epsilons: tuple[float, ...], curve: Path | None, as_json: bool) -> None:
    """Before spending a privacy budget: the noise each ε buys for the recipe's training persons, how
    loud it is per step, and the fidelity measured on the nearest cohort and budget. Trains nothing.

    \b
    Example:
        synthwear privacy-plan recipes/fitbit-dp.yaml
        synthwear privacy-plan recipes/fitbit.yaml --epsilon 1 --epsilon 8 --json
    """
    from synthwear.privacy.plan import load_curve, make_plan
    from synthwear.recipe import load_recipe

    with friendly_errors():
        recipe = load_recipe(recipe_file)
        measured = load_curve(curve)
        with make_progress() as progress:
            plan = make_plan(recipe, epsilons, measured, progress=progress)
    if as_json:
        click.echo(json.dumps(plan.to_dict(), indent=2))
        return
    print_plan(plan)


def print_plan(plan: PrivacyPlan) -> None:
    """The settings, one row per budget and the nearest measured cells on stdout; the warnings in yellow."""
    out, settings = Console(), plan.settings
    origin = "the recipe's privacy: section" if plan.from_recipe else "no privacy: section, so its defaults"
    out.print(
        f"{plan.recipe}: {plan.train_persons} training persons (the DP unit; {plan.validation_persons} validation, "
        f"{plan.holdout_persons} holdout); {settings['accountant']} accountant, sample rate q = "
        f"{settings['sample_rate']:g}, {settings['steps']} steps, clipping bound {settings['max_grad_norm']:g} "
        f"({origin})",
        soft_wrap=True,
    )
    table = Table("ε", "δ", "noise σ", "persons per step q·n", "noise / signal σ/(q·n)")
    for budget in plan.budgets:
        table.add_row(
            f"{budget.epsilon:g}",
            "-" if budget.delta is None else f"{budget.delta:.1e}",
            "-" if budget.noise_multiplier is None else f"{budget.noise_multiplier:.2f}",
            f"{budget.persons_per_step:g}",
            "-" if budget.noise_to_signal is None else f"{budget.noise_to_signal:.2f}",
        )
    out.print(table)
    for budget in plan.budgets:
        if budget.note:
            out.print(f"ε = {budget.epsilon:g}: {budget.note}", soft_wrap=True)
    print_fidelity(plan, out)
    for warning in plan.warnings:
        console.print(f"[yellow]warning:[/] {warning}", soft_wrap=True)


def print_fidelity(plan: PrivacyPlan, out: Console) -> None:
    """Per budget, the measured cells the estimate rests on: which cohort, how many persons, real or simulated."""
    if plan.curve is None:
        out.print("no measured privacy-utility curve is shipped yet: expected fidelity is skipped", soft_wrap=True)
        return
    for budget in (budget for budget in plan.budgets if budget.noise_multiplier is not None):  # reachable ones
        if not budget.fidelity:
            out.print(f"no measured cell matches ε = {budget.epsilon:g}")
            continue
        table = Table(  # columns made for each table: a rich Column holds its table's cells
            *[Column(name, overflow="fold") for name in ("arm", "cohort")],  # folded, not cut: they name the cell
            *[Column(name, no_wrap=True) for name in ("persons", "simulated", "ε", "discrim.", "TSTR", "folds")],
            box=box.SIMPLE_HEAD,
            title=f"measured nearest to {plan.train_persons} persons at ε = {budget.epsilon:g}",
            caption="discrim.: |accuracy - 0.5| of a real-vs-synthetic classifier, lower is better",
        )
        for cell in budget.fidelity:
            table.add_row(
                cell["arm"],
                cell["cohort"],
                str(cell["persons"]),
                "yes" if cell["simulated"] else "no",
                "-" if cell["epsilon"] is None else f"{cell['epsilon']:g}",
                mean_sd(cell["discriminative"]),
                mean_sd(cell.get("tstr")),
                str(cell.get("folds", "")),
            )
        out.print(table)
    out.print(
        f"measured by: {plan.curve['command']} (commit {plan.curve['commit']}; {plan.curve['source']})", soft_wrap=True
    )


def mean_sd(score: dict | None) -> str:
    """A measured cell's mean ± sd: three decimals for scores, whole numbers for errors in the data's units."""
    if score is None:
        return ""
    digits = 0 if abs(score["mean"]) >= 100 else 3
    return f"{score['mean']:,.{digits}f}±{score['sd']:,.{digits}f}"


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plugins(as_json: bool) -> None:
    """List installed plugins: name, kind, providing package, version.

    \b
    Example:
        synthwear plugins --json
    """
    with friendly_errors():
        entries = default_registry().entries()
    rows = [
        {"name": e.name, "kind": KINDS[e.role], "package": e.package, "version": e.version, "module": e.plugin}
        for e in entries
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table("name", "kind", "package", "version", "module")
    for row in rows:
        table.add_row(*row.values())
    Console().print(table)


def main() -> None:
    cli()
