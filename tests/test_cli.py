"""End to end through the command line, in-process with click's CliRunner."""

import json
import shutil
import signal
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from click.testing import CliRunner
from cohorts import REPO, make_daily_frame

from synthwear.cli import cli
from synthwear.default_plugins.apple_health import read_apple_health

RUN_FILES = {"synthetic.csv", "metrics.json", "model", "run.json", "report.html"}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "tiny"
    result = CliRunner().invoke(
        cli, ["run", str(Path(__file__).parents[1] / "recipes" / "tiny.yaml"), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    return out


def test_tiny_run_writes_every_file(tiny_run):
    assert {p.name for p in tiny_run.iterdir()} == RUN_FILES
    synthetic = pd.read_csv(tiny_run / "synthetic.csv")
    assert list(synthetic.columns) == ["person_id", "date", "resting_hr", "sleep_minutes", "steps"]
    assert synthetic.person_id.nunique() == 10 and len(synthetic) == 10 * 7 and synthetic.notna().all().all()
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    forecast = metrics["forecast"]["resting_hr"]
    assert forecast["model_mae"] > 0 and forecast["persistence_mae"] > 0 and forecast["days_scored"] > 0
    assert {"model", "persistence", "other_person"} <= set(metrics["similarity"]["summary"])
    run = json.loads((tiny_run / "run.json").read_text())
    assert run["seed"] == 0 and run["data"]["fingerprint"].startswith("sha256:")
    assert run["versions"]["torch"] and run["timings_seconds"]["train"] > 0
    assert run["split"]["duplicate_groups"] and run["windows"]["train"]["with_gaps"] > 0
    assert "LifeSnaps" in (tiny_run / "report.html").read_text()


def test_sample_from_saved_model(tiny_run, tmp_path):
    out = tmp_path / "more.parquet"
    result = CliRunner().invoke(
        cli, ["sample", str(tiny_run / "model"), "--persons", "25", "--days", "10", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(out)
    assert frame.person_id.nunique() == 25 and frame.groupby("person_id").size().eq(10).all()


def test_report_regenerates(tiny_run):
    (tiny_run / "report.html").unlink()
    assert CliRunner().invoke(cli, ["report", str(tiny_run)]).exit_code == 0
    assert (tiny_run / "report.html").stat().st_size > 1000


@pytest.mark.parametrize("command", ["evaluate", "report"])
def test_a_cohort_file_cut_short_is_refused_by_evaluate_and_report(tiny_run, tmp_path, command):
    """Evaluated as it was, a truncated synthetic.csv gave null metrics and exit 0."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    assert json.loads((run / "run.json").read_text())["files"]["synthetic.csv"].startswith("sha256:")
    lines = (run / "synthetic.csv").read_text().splitlines(keepends=True)
    (run / "synthetic.csv").write_text("".join(lines[: len(lines) // 2]))
    before = (run / "metrics.json").read_bytes()
    result = CliRunner().invoke(cli, [command, str(run)])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: {run / 'synthetic.csv'}: not the file this run wrote (its sha256 differs from the one in "
        "run.json): cut short or edited, so what is evaluated would not be this run's cohort; run the recipe again"
    ]
    assert (run / "metrics.json").read_bytes() == before


@pytest.mark.parametrize(
    "files, expected",
    [
        ("x", "run.json: 'files' is not what a synthwear run writes"),
        ({"synthetic.csv": ""}, "run.json: 'files' is not what a synthwear run writes"),
        ({"synthetic.csv": 5}, "run.json: 'files' is not what a synthwear run writes"),
        ({}, "synthetic.csv: this run wrote no synthetic.csv; it was added later"),
    ],
)
def test_an_edited_record_of_the_cohort_files_is_refused(tiny_run, tmp_path, files, expected):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    record = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps(record | {"files": files}))
    result = CliRunner().invoke(cli, ["report", str(run)])
    assert result.exit_code == 1 and expected in result.output and "Traceback" not in result.output


def test_misspelled_recipe_key_is_one_line_and_writes_nothing(tmp_path):
    raw = yaml.safe_load((Path(__file__).parents[1] / "recipes" / "tiny.yaml").read_text())
    raw["generatr"] = raw.pop("generator")
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(yaml.safe_dump(raw))
    result = CliRunner().invoke(cli, ["run", str(recipe), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [f"Error: {recipe}: unknown key 'generatr'"]
    assert not (tmp_path / "out").exists()


def test_bad_data_fails_cleanly_and_leaves_no_folder(tmp_path):
    frame = make_daily_frame()
    frame.loc[17, "steps"] = -3
    frame.to_csv(tmp_path / "daily.csv", index=False)
    raw = yaml.safe_load((Path(__file__).parents[1] / "recipes" / "tiny.yaml").read_text())
    raw["data"] = {"path": "daily.csv"}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(raw))
    result = CliRunner().invoke(cli, ["run", str(tmp_path / "r.yaml"), "--out", str(tmp_path / "runs" / "x")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "daily.csv: line 19: column 'steps': negative value -3" in result.output
    assert not (tmp_path / "runs" / "x").exists() and not list((tmp_path / "runs").glob(".*"))


def test_generated_csv_data_runs(tmp_path):
    make_daily_frame(persons=10, days=30).to_csv(tmp_path / "daily.csv", index=False)
    raw = yaml.safe_load((Path(__file__).parents[1] / "recipes" / "tiny.yaml").read_text())
    raw["data"] = {"path": "daily.csv"}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(raw))
    result = CliRunner().invoke(cli, ["run", str(tmp_path / "r.yaml"), "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "run" / "run.json").read_text())["split"]["holdout"] >= 1


def test_help_shows_examples():
    runner = CliRunner()
    assert "Example" in runner.invoke(cli, ["--help"]).output
    for command in ("run", "sample", "report", "plugins", "import"):
        assert "Example" in runner.invoke(cli, [command, "--help"]).output


def test_plugins_lists_name_kind_package_version():
    result = CliRunner().invoke(cli, ["plugins", "--json"])
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert rows["transformer"] == {
        "name": "transformer",
        "kind": "generator",
        "package": "synthwear",
        "version": rows["transformer"]["version"],
        "module": "transformer",
    }
    assert rows["transformer"]["version"]


def write_fitbit_export(frame: pd.DataFrame, folder: Path) -> None:
    """One sub-folder per person in Fitbit's account-export layout (a day's steps in minutes of at most
    1,000 steps from noon, as the importer refuses more in one minute)."""
    for person, days in frame.groupby("person_id"):
        out = folder / person
        out.mkdir(parents=True)
        dates = days["date"].dt.strftime("%Y-%m-%d")
        (out / "resting_heart_rate.json").write_text(
            json.dumps(
                [
                    {"dateTime": f"{d} 00:00:00", "value": {"date": d, "value": 0 if pd.isna(v) else v, "error": 1.0}}
                    for d, v in zip(dates, days["resting_hr"])
                ]
            )
        )
        (out / "sleep.json").write_text(
            json.dumps(
                [
                    {"logId": i, "dateOfSleep": d, "minutesAsleep": int(v), "mainSleep": True}
                    for i, (d, v) in enumerate(zip(dates, days["sleep_minutes"]))
                    if not pd.isna(v)
                ]
            )
        )
        (out / "steps.json").write_text(
            json.dumps(
                [
                    {"dateTime": f"{d} {12 + m // 60}:{m % 60:02d}:00", "value": str(min(1000, int(v) - 1000 * m))}
                    for d, v in zip(dates, days["steps"])
                    if not pd.isna(v)
                    for m in range(max(1, -(-int(v) // 1000)))
                ]
            )
        )


def test_recipe_reads_a_fitbit_export_folder(tmp_path):
    exports = tmp_path / "exports"
    generated = make_daily_frame(persons=5, days=30, missing=0.0)
    write_fitbit_export(generated.assign(person_id="gen-" + generated["person_id"]), exports)
    shutil.copytree(Path(__file__).parent / "data" / "fitbit_export_sample" / "p03", exports / "p03")
    raw = yaml.safe_load((Path(__file__).parents[1] / "recipes" / "tiny.yaml").read_text())
    raw["data"] = {"importer": "fitbit", "path": "exports"}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(raw))
    result = CliRunner().invoke(cli, ["run", str(tmp_path / "r.yaml"), "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["data"]["persons"] == 6 and run["data"]["source"].startswith("fitbit export")
    assert run["data"]["person_days"] == 5 * 30 + 122  # p03 imports to 122 days (see the importer's tests)


def test_import_command_writes_the_tidy_table(tmp_path):
    write_fitbit_export(make_daily_frame(persons=2, days=5, missing=0.0), tmp_path / "exports")
    result = CliRunner().invoke(cli, ["import", "fitbit", str(tmp_path / "exports"), "-o", str(tmp_path / "daily.csv")])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "daily.csv")
    assert list(table.columns) == ["person_id", "date", "resting_hr", "sleep_minutes", "steps"] and len(table) == 10


def test_import_never_overwrites_a_file_of_the_export_it_reads(tmp_path):
    export = tmp_path / "exports"
    write_fitbit_export(make_daily_frame(persons=1, days=5, missing=0.0), export)
    inside = next(path for path in sorted(export.rglob("*")) if path.is_file())
    before = inside.read_bytes()
    result = CliRunner().invoke(cli, ["import", "fitbit", str(export), "-o", str(inside), "--overwrite"])
    assert result.exit_code == 1 and f"is a file of {export}, which this command reads" in result.output
    assert inside.read_bytes() == before


def test_an_export_without_a_daily_value_is_an_error_and_writes_nothing(tmp_path):
    """An Oura export whose only sleep record has no durations: a header-only table would pass for data."""
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "sleep.json").write_text('{"data": [{"id": "a", "day": "2021-01-01", "type": "long_sleep"}]}')
    result = CliRunner().invoke(cli, ["import", "oura", str(tmp_path / "o"), "-o", str(tmp_path / "daily.csv")])
    assert result.exit_code == 1 and "found no daily values in it, so nothing was written" in result.output
    assert not (tmp_path / "daily.csv").exists()


def test_datasets_lists_the_shipped_data_with_licence_and_size():
    result = CliRunner().invoke(cli, ["datasets", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)}
    lifesnaps = rows["lifesnaps"]
    assert lifesnaps["licence"] == "CC BY 4.0" and "LifeSnaps" in lifesnaps["citation"]
    assert lifesnaps["channels"] == ["resting_hr", "sleep_minutes", "steps"]
    frame = pd.read_csv(REPO / "synthwear" / "datasets" / "lifesnaps" / "daily.csv")
    assert lifesnaps["persons"] == frame["person_id"].nunique() and lifesnaps["person_days"] == len(frame)
    assert len(rows["lifesnaps-extended"]["channels"]) > 3


def test_sample_redraws_the_runs_cohort_with_the_recipes_temperatures(tiny_run, tmp_path):
    out = tmp_path / "again.csv"
    result = CliRunner().invoke(
        cli, ["sample", str(tiny_run / "model"), "--persons", "10", "--seed", "0", "--device", "cpu", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    pd.testing.assert_frame_equal(pd.read_csv(out), pd.read_csv(tiny_run / "synthetic.csv"))


def test_sample_where_on_a_statistic_of_the_days_keeps_only_persons_meeting_it(tiny_run, tmp_path):
    plain = pd.read_csv(tiny_run / "synthetic.csv")
    middle = float(plain.groupby("person_id")["sleep_minutes"].mean().median())
    out = tmp_path / "short-sleepers.csv"
    where = f"mean(sleep_minutes) < {middle}"
    args = ["sample", str(tiny_run / "model"), "--persons", "30", "--where", where, "-o", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    means = pd.read_csv(out).groupby("person_id")["sleep_minutes"].mean()
    assert len(means) == 30 and (means < middle).all()
    assert f"'{where}': acceptance rate" in " ".join(result.output.split())
    bad = CliRunner().invoke(cli, [*args[:-2], "--where", "mean(sleep) < 5", "-o", str(tmp_path / "x.csv")])
    assert bad.exit_code == 1 and "'sleep' is not a channel" in bad.output and not (tmp_path / "x.csv").exists()


@pytest.mark.parametrize("command", ["run", "sample"])
def test_a_device_this_machine_lacks_is_one_line(tiny_run, tmp_path, command):
    missing = "cuda:7" if not torch.cuda.is_available() or torch.cuda.device_count() < 8 else "cuda:99"
    target = str(REPO / "recipes" / "tiny.yaml") if command == "run" else str(tiny_run / "model")
    out = tmp_path / ("x.csv" if command == "sample" else "x")
    result = CliRunner().invoke(
        cli, [command, target, "--device", missing, "-o" if command == "sample" else "--out", str(out)]
    )
    assert result.exit_code == 1
    blamed = "training.device" if command == "run" else "Error: device"  # sample's --device is not the recipe's
    assert f"{blamed} '{missing}'" in result.output and "Traceback" not in result.output
    assert not out.exists()


@pytest.mark.parametrize(
    "args, expected",
    [
        (["run", "TINY", "--seed", "-1", "--out", "OUT"], "'--seed': -1 is not in the range 0<=x<=4294967295"),
        (
            ["run", "TINY", "--device", "gpu", "--out", "OUT"],
            "'--device': 'gpu' is not one of auto, cpu, cuda, cuda:N, mps",
        ),
        (["sample", "FOLDER", "--device", "gpu", "-o", "OUT"], "'--device': 'gpu' is not one of"),
        (
            ["sample", "FOLDER", "--start-date", "0001-01-01", "-o", "OUT"],
            "0001-01-01 is outside 1678-01-01..2162-01-01",
        ),
        (["sample", "FILE", "-o", "OUT"], "Invalid value for 'MODEL_DIR': Directory"),
        (["report", "FILE"], "Invalid value for 'RUN_DIR': Directory"),
    ],
)
def test_bad_options_are_refused_as_they_are_read(tmp_path, args, expected):
    """Before a recipe or a model is read: the option at fault is named (not the recipe), no traceback."""
    (tmp_path / "notes.txt").write_text("mine")
    places = {"TINY": str(REPO / "recipes" / "tiny.yaml"), "FOLDER": str(tmp_path), "FILE": str(tmp_path / "notes.txt")}
    result = CliRunner().invoke(
        cli, [places.get(arg, str(tmp_path / "out.csv") if arg == "OUT" else arg) for arg in args]
    )
    assert result.exit_code == 2 and expected in " ".join(result.output.split())
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_piped_output_still_reports_every_epoch(tmp_path):
    """A bar cannot redraw in a log file or a CI console: each epoch is also one plain line on stderr."""
    import subprocess
    import sys

    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from synthwear.cli import main; main()",
            "run",
            str(REPO / "recipes" / "tiny.yaml"),
            "--out",
            str(tmp_path / "run"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    epochs = json.loads((tmp_path / "run" / "run.json").read_text())["training"]["epochs"]
    lines = [line for line in done.stderr.splitlines() if line.startswith("epoch ")]
    assert len(lines) == epochs and lines[0].startswith("epoch 1: train loss ") and "validation loss" in lines[0]
    assert "note: persons" in done.stderr and "note: note:" not in done.stderr  # the shipped data's twin enrolment


SAMPLES = Path(__file__).parent / "data"
CORE_COLUMNS = ["person_id", "date", "resting_hr", "sleep_minutes", "steps"]


@pytest.mark.parametrize(
    ("importer", "sample", "extra_columns", "persons", "checked"),
    [
        # each (person, day, channel, value) is a hand-checked value of the importer's own tests
        ("apple_health", "apple_health_sample", ["hrv_sdnn", "spo2", "respiratory_rate"], 1,
         ("person-1", "2023-03-25", "steps", 2980)),  # watch first, the phone only where the watch was off
        ("garmin", "garmin_export_sample", ["stress", "body_battery", "hrv"], 1,
         ("person-1", "2024-02-28", "sleep_minutes", 426)),  # (deep + light + REM) / 60, awake left out
        ("oura", "oura_export_sample", ["readiness", "temperature_deviation"], 2,
         ("person-1", "2024-03-02", "sleep_minutes", 415)),  # two long sleeps summed
        ("google_fit", "google_fit_sample", ["heart_rate_mean", "heart_rate_min"], 1,
         ("person-1", "2024-03-04", "steps", 2591)),  # only a per-day file: its 15-minute counts summed
    ],
    ids=["apple_health", "garmin", "oura", "google_fit"],
)  # fmt: skip
def test_import_command_reads_each_shipped_sample(tmp_path, importer, sample, extra_columns, persons, checked):
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(cli, ["import", importer, str(SAMPLES / sample), "-o", str(out)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out)
    assert list(table.columns) == [*CORE_COLUMNS, *extra_columns]
    assert sorted(table["person_id"].unique()) == [f"person-{i}" for i in range(1, persons + 1)]
    person, day, channel, value = checked
    row = table[(table["person_id"] == person) & (table["date"] == day)]
    assert row[channel].tolist() == [pytest.approx(value)]
    assert f"{persons} persons, {len(table):,} person-days" in " ".join(result.output.split())  # rich wraps lines


APPLE_WATCH = (
    'sourceName="Sam’s Apple Watch" sourceVersion="9.3.1" '
    'device="&lt;&lt;HKDevice: 0x1&gt;, name:Apple Watch, manufacturer:Apple Inc., model:Watch&gt;"'
)


def apple_record(kind: str, start: pd.Timestamp, minutes: float, value: object, unit: str | None = None) -> str:
    """One ``<Record>`` of the Apple Watch, at +0100 (Europe/Berlin in winter), lasting ``minutes``."""
    end = start + pd.Timedelta(minutes=minutes)
    unit_attribute = f' unit="{unit}"' if unit else ""
    when = f'startDate="{start:%Y-%m-%d %H:%M:%S} +0100" endDate="{end:%Y-%m-%d %H:%M:%S} +0100"'
    return f' <Record type="{kind}" {APPLE_WATCH}{unit_attribute} {when} value="{value}"/>'


def apple_health_export(days: pd.DataFrame, exported: str) -> str:
    """An export.xml in the Health app's layout (tests/data/apple_health_sample/export.xml, without
    its DTD) from one person's daily rows: a resting HR record per day, a sleep ending at 07:00 that
    day, and a half hour of steps at noon."""
    records = []
    for row in days.itertuples():
        asleep = row.date + pd.Timedelta(hours=7) - pd.Timedelta(minutes=row.sleep_minutes)
        records += [
            apple_record("HKQuantityTypeIdentifierRestingHeartRate", row.date, 23 * 60, row.resting_hr, "count/min"),
            apple_record(
                "HKQuantityTypeIdentifierStepCount", row.date + pd.Timedelta(hours=12), 30, row.steps, "count"
            ),
            apple_record(
                "HKCategoryTypeIdentifierSleepAnalysis",
                asleep,
                row.sleep_minutes,
                "HKCategoryValueSleepAnalysisAsleepCore",
            ),
        ]
    head = ['<?xml version="1.0" encoding="UTF-8"?>', '<HealthData locale="en_DE">']
    return "\n".join([*head, f' <ExportDate value="{exported} +0100"/>', *records, "</HealthData>", ""])


def test_recipe_reads_apple_health_zips_side_by_side(tmp_path):
    """The sample holds 3 days, too few for 7-day windows: 6 persons of 30 days are written, one
    export.zip each, named after the person as a cohort's folder would be."""
    exports = tmp_path / "exports"
    exports.mkdir()
    generated = make_daily_frame(persons=6, days=30, missing=0.0)
    for person, days in generated.groupby("person_id"):
        with zipfile.ZipFile(exports / f"{person}.zip", "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("apple_health_export/export.xml", apple_health_export(days, "2022-02-01 08:00:00"))
    (exports / "README.md").write_text("one export.zip per person")
    imported = read_apple_health(exports).frame  # the written exports give back the generated days
    channels = ["resting_hr", "sleep_minutes", "steps"]
    assert imported[channels].to_numpy() == pytest.approx(generated[channels].to_numpy())
    raw = yaml.safe_load((Path(__file__).parents[1] / "recipes" / "tiny.yaml").read_text())
    raw["data"] = {"importer": "apple_health", "path": "exports"}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(raw))
    result = CliRunner().invoke(cli, ["run", str(tmp_path / "r.yaml"), "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert {p.name for p in (tmp_path / "run").iterdir()} == RUN_FILES
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["data"]["persons"] == 6 and run["data"]["source"].startswith("apple_health export")
    assert run["data"]["person_days"] == 6 * 30  # every generated day, each with all three channels


def test_a_model_with_gaps_and_weekdays_samples_them_or_complete_days_on_real_first_days(tmp_path):
    raw = yaml.safe_load((REPO / "recipes" / "tiny.yaml").read_text())
    raw["windows"].update(gaps=True, calendar=["weekday"])
    raw["evaluation"]["evaluators"] = [{"name": "calendar_gaps"}]
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(raw))
    result = CliRunner().invoke(cli, ["run", str(tmp_path / "r.yaml"), "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["calendar_gaps"]["channels"]["sleep_minutes"]["synthetic"]["missing_share"] > 0
    real_first_days = set(
        pd.read_csv(REPO / "synthwear" / "datasets" / "lifesnaps" / "daily.csv").groupby("person_id")["date"].min()
    )
    written = pd.read_csv(tmp_path / "run" / "synthetic.csv")
    assert set(written.groupby("person_id")["date"].min()) <= real_first_days
    model = str(tmp_path / "run" / "model")
    for flags, gaps in (([], True), (["--complete", "--start-date", "2026-11-28"], False)):
        out = tmp_path / f"cohort{len(flags)}.csv"
        result = CliRunner().invoke(cli, ["sample", model, "--persons", "200", "--days", "14", "-o", str(out), *flags])
        assert result.exit_code == 0, result.output
        cohort = pd.read_csv(out)
        assert cohort[["resting_hr", "sleep_minutes", "steps"]].isna().any().any() == gaps
    assert (cohort.groupby("person_id")["date"].min() == "2026-11-28").all()


def test_a_run_with_persons_writes_them_and_sample_conditions_on_them(tmp_path):
    raw = yaml.safe_load((REPO / "recipes" / "tiny.yaml").read_text())
    raw["data"]["persons"] = True  # LifeSnaps' own persons.csv
    raw["evaluation"]["evaluators"] = [{"name": "marginals"}]
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(raw))
    result = CliRunner().invoke(cli, ["run", str(tmp_path / "r.yaml"), "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    persons = pd.read_csv(tmp_path / "run" / "persons.csv")
    assert list(persons.columns) == ["person_id", "age_group", "gender", "bmi"]
    assert set(persons["person_id"]) == set(pd.read_csv(tmp_path / "run" / "synthetic.csv")["person_id"])
    out, model = tmp_path / "women.csv", str(tmp_path / "run" / "model")
    where = ["--where", "gender == 'female'", "--where", "age_group == '>=30'"]
    result = CliRunner().invoke(cli, ["sample", model, "--persons", "40", *where, "-o", str(out)])
    assert result.exit_code == 0, result.output
    women = pd.read_csv(tmp_path / "women.persons.csv")
    assert len(women) == 40 and (women["gender"] == "female").all() and (women["age_group"] == ">=30").all()
    result = CliRunner().invoke(cli, ["sample", model, "--where", "height > 2", "-o", str(tmp_path / "x.csv")])
    assert result.exit_code == 1 and result.output.strip().splitlines()[-1].startswith("Error: --where")
    assert "unknown column 'height'" in result.output and not (tmp_path / "x.csv").exists()
    seeds = tmp_path / "seeds.csv"
    seeds.write_text("gender\nfemale\nmale\n")
    result = CliRunner().invoke(
        cli, ["sample", model, "--seed-table", str(seeds), "--persons", "9", "-o", str(tmp_path / "t.csv")]
    )
    assert result.exit_code == 1 and "--persons does not apply beside it" in result.output
    result = CliRunner().invoke(cli, ["sample", model, "--seed-table", str(seeds), "-o", str(tmp_path / "s.csv")])
    assert result.exit_code == 0, result.output
    assert pd.read_csv(tmp_path / "s.persons.csv")["gender"].tolist() == ["female", "male"]
    mine = tmp_path / "mine.persons.csv"  # the seed table sits where -o mine.csv would put its persons
    mine.write_text("gender\nfemale\n")
    result = CliRunner().invoke(
        cli, ["sample", model, "--seed-table", str(mine), "-o", str(tmp_path / "mine.csv"), "--overwrite"]
    )
    assert result.exit_code == 1 and "which this command reads; write to another file" in result.output
    assert mine.read_text() == "gender\nfemale\n" and not (tmp_path / "mine.csv").exists()
    continue_primed_persons_with_their_attributes(model, tmp_path)


def continue_primed_persons_with_their_attributes(model: str, tmp_path: Path) -> None:
    """``--prime`` with ``--seed-table``: each primed person's given attributes kept, the rest drawn."""
    daily = pd.read_csv(REPO / "synthwear" / "datasets" / "lifesnaps" / "daily.csv")
    ids = sorted(daily["person_id"].unique())[:2]
    daily[daily["person_id"].isin(ids)].groupby("person_id").head(6).to_csv(tmp_path / "history.csv", index=False)
    (tmp_path / "who.csv").write_text(f"person_id,gender\n{ids[0]},male\n")

    def primed(table: str, out: str):
        history, who = str(tmp_path / "history.csv"), str(tmp_path / table)
        return CliRunner().invoke(cli, ["sample", model, "--prime", history, "--seed-table", who, "-o", str(out)])

    result = primed("who.csv", tmp_path / "continued.csv")
    assert result.exit_code == 0, result.output
    persons = pd.read_csv(tmp_path / "continued.persons.csv")
    assert persons["person_id"].tolist() == ids and persons["gender"].iloc[0] == "male"
    assert persons[["age_group", "gender", "bmi"]].notna().all().all()  # the rest drawn given what was said
    (tmp_path / "stranger.csv").write_text("person_id,gender\nnobody,male\n")
    result = primed("stranger.csv", tmp_path / "x.csv")
    assert result.exit_code == 1 and "stranger.csv: person 'nobody' has no days in the history" in result.output
    assert not (tmp_path / "x.csv").exists() and not (tmp_path / "x.persons.csv").exists()


def test_sample_continues_the_persons_of_a_history_file(tiny_run, tmp_path):
    daily = pd.read_csv(REPO / "synthwear" / "datasets" / "lifesnaps" / "daily.csv")
    history = daily[daily["person_id"].isin(daily["person_id"].unique()[:3])].groupby("person_id").head(6)
    history.to_csv(tmp_path / "history.csv", index=False)

    def primed(out: Path, *options: str):
        model, given = str(tiny_run / "model"), str(tmp_path / "history.csv")
        return CliRunner().invoke(cli, ["sample", model, "--prime", given, *options, "-o", str(out)])

    result = primed(tmp_path / "continued.csv", "--days", "15")
    assert result.exit_code == 0, result.output
    assert "outside the model's ranges" not in result.output
    continued = pd.read_csv(tmp_path / "continued.csv")
    assert continued.groupby("person_id").size().eq(15).all() and continued["person_id"].nunique() == 3
    given = continued.groupby("person_id").head(6).reset_index(drop=True)
    expected = history[given.columns].sort_values(["person_id", "date"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(given, expected, check_dtype=False)  # the given days are kept as they were
    result = primed(tmp_path / "y.csv", "--days", "3")
    assert result.exit_code == 1 and "span 6 days" in result.output and not (tmp_path / "y.csv").exists()
    result = primed(tmp_path / "y.csv", "--persons", "5")
    assert result.exit_code == 1 and "--persons do not apply" in result.output
    result = primed(tmp_path / "y.csv", "--days", "40000")  # refused before drawing, as without --prime
    assert result.exit_code == 1 and "more than a hundred years" in result.output
    result = primed(tmp_path / "y.csv", "--temperature", "nan")
    assert result.exit_code != 0 and "temperature" in result.output and not (tmp_path / "y.csv").exists()
    long_ago = history.groupby("person_id").head(1).assign(date="1700-01-01")  # spans a century with the rest
    pd.concat([history, long_ago]).to_csv(tmp_path / "century.csv", index=False)
    result = CliRunner().invoke(
        cli,
        ["sample", str(tiny_run / "model"), "--prime", str(tmp_path / "century.csv"), "-o", str(tmp_path / "c.csv")],
    )
    assert result.exit_code == 1 and "century.csv: persons span" in result.output and "--days" not in result.output
    result = primed(tmp_path / "history.csv", "--days", "9", "--overwrite")  # the history as its own output
    assert result.exit_code == 1 and "history.csv, which this command reads" in result.output
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "history.csv"), history.reset_index(drop=True))
    history.assign(steps=99_999).to_csv(tmp_path / "far.csv", index=False)  # beyond the recipe's 40,000
    result = CliRunner().invoke(
        cli, ["sample", str(tiny_run / "model"), "--prime", str(tmp_path / "far.csv"), "-o", str(tmp_path / "f.csv")]
    )
    assert result.exit_code == 0 and "values outside the model's ranges are read as its edges" in result.output
    assert "'steps': 18" in result.output  # 3 persons x 6 days
    history.assign(sleep_minutes=np.nan).to_csv(tmp_path / "history.csv", index=False)  # a channel never worn
    result = primed(tmp_path / "no_sleep.csv", "--days", "9")
    assert result.exit_code == 0, result.output
    continued = pd.read_csv(tmp_path / "no_sleep.csv")
    assert continued.groupby("person_id")["sleep_minutes"].apply(lambda s: s.iloc[6:].notna().all()).all()


def test_export_base_writes_a_card_and_a_recipe_fine_tunes_it_under_dp(tiny_run, tmp_path):
    base = tmp_path / "bases" / "mine"
    result = CliRunner().invoke(cli, ["export-base", str(tiny_run), str(base)])
    assert result.exit_code == 0, result.output
    card = (base / "MODEL_CARD.md").read_text()
    assert "CC BY 4.0" in card and "Fidelity on the" in card and "No differential privacy" in card
    mode = {name: (base / name).stat().st_mode & 0o777 for name in ("weights.safetensors", "model.json")}
    assert mode["weights.safetensors"] == mode["model.json"]  # shared as the user's files are, not 0600
    again = CliRunner().invoke(cli, ["export-base", str(tiny_run), str(base)])
    assert again.exit_code == 1 and "exists; a base is exported to a new folder" in again.output
    recipe = yaml.safe_load((REPO / "recipes" / "tiny.yaml").read_text())
    for key in ("generator", "encoder", "windows"):
        del recipe[key]  # the base's
    recipe["base"] = {"model": "bases/mine", "train": "heads"}  # relative to the recipe
    recipe["privacy"] = {"target_epsilon": 2, "steps": 6, "sample_rate": 0.5, "checkpoints": 2, "accountant": "rdp"}
    recipe["evaluation"]["evaluators"] = [{"name": "marginals"}]
    (tmp_path / "tuned.yaml").write_text(yaml.safe_dump(recipe))
    tuned = tmp_path / "tuned"
    result = CliRunner().invoke(cli, ["run", str(tmp_path / "tuned.yaml"), "--out", str(tuned)])
    assert result.exit_code == 0, result.output
    run = json.loads((tuned / "run.json").read_text())
    assert run["base"]["folder"] == str(base.resolve()) and run["base"]["new"] == []
    assert 0 < run["privacy"]["trained_values"] <= run["base"]["trained_values"] < run["base"]["total_values"]
    assert "the base bases/mine: trained heads" in (tuned / "report.html").read_text()
    assert CliRunner().invoke(cli, ["export-base", str(tuned), str(tmp_path / "tuned-base")]).exit_code == 0
    card = (tmp_path / "tuned-base" / "MODEL_CARD.md").read_text()
    assert "Started from the base `bases/mine`" in card and "person-level DP-SGD: epsilon" in card


def test_export_base_refuses_a_run_whose_weights_are_damaged_and_writes_nothing(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    with (run / "model" / "weights.safetensors").open("r+b") as weights:
        weights.truncate(100)
    result = CliRunner().invoke(cli, ["export-base", str(run), str(tmp_path / "base")])
    assert result.exit_code == 1 and "weights.safetensors: damaged or not a safetensors file" in result.output
    assert not (tmp_path / "base").exists()


@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_while_sampling_leaves_no_staged_file_and_exits_as_a_shell_expects(tiny_run, tmp_path, signum, status):
    """``timeout`` or a scheduler stops ``sample`` with SIGTERM, a person with Ctrl-C (SIGINT): the
    hidden staging file goes with it, and the status is the shell's for that signal."""
    import subprocess
    import sys
    import time

    out = tmp_path / "big.csv"
    synthwear = Path(sys.executable).parent / "synthwear"  # the installed command, as a shell runs it
    command = [str(synthwear), "sample", str(tiny_run / "model"), "--persons", "2000000"]
    process = subprocess.Popen(  # SIGINT as a terminal delivers it, even where this suite runs in the background
        [*command, "--days", "60", "-o", str(out)],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".big.csv.*.tmp")) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    assert list(tmp_path.glob(".big.csv.*.tmp")), "sampling never staged its output"
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == status, stderr.decode()
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    said = "interrupted" if signum == signal.SIGINT else "terminated"
    assert f"{said}: stopped; no file was left half-written" in stderr.decode()
    assert "Traceback" not in stderr.decode()
