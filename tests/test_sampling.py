"""Sampling into a file: requests a machine cannot serve are refused before work, with the estimate;
large ones are written batch by batch with exactly the values one generate call gives."""

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from synthwear.cli import cli
from synthwear.errors import SynthwearError
from synthwear.plugins import default_registry
from synthwear.recipe import load_recipe
from synthwear.sampling import MAX_DAYS, check_request, sample_to_file, to_long_frame
from synthwear.steps import build_model


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from cohorts import REPO

    torch.manual_seed(0)
    model = build_model(load_recipe(REPO / "recipes" / "tiny.yaml"), default_registry(), torch.device("cpu"))
    folder = tmp_path_factory.mktemp("model") / "model"
    model.save(folder)
    return model, folder


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_batched_file_equals_one_generate_call_with_the_same_batches(model, tmp_path, suffix):
    model, _ = model
    out = tmp_path / f"cohort{suffix}"
    sample_to_file(model, 20, 9, out, temperature=1.0, seed=3, start_date="2021-01-01", batch_size=7)
    written = pd.read_csv(out) if suffix == ".csv" else pd.read_parquet(out)
    whole = to_long_frame(model.generate(20, 9, seed=3, batch_size=7), model.channels, "2021-01-01")
    assert written["person_id"].tolist() == whole["person_id"].tolist()
    np.testing.assert_allclose(written[model.channels].to_numpy(float), whole[model.channels].to_numpy(float))


@pytest.mark.parametrize(
    "persons, days, temperature, expected",
    [
        (10, 7, float("nan"), "temperatures must be 0 .the most likely bin. or finite numbers >= 0.001, got nan"),
        (10, 7, float("inf"), "finite numbers >= 0.001, got inf"),
        (10, 7, 1e-46, "finite numbers >= 0.001, got 1e-46"),  # 0.0 in float32: would sample nothing
        (10, MAX_DAYS + 1, 1.0, "more than a hundred years"),
        (1_000_000_000, 365, 1.0, r"GiB, more than the .* GiB free"),
    ],
)
def test_impossible_requests_are_refused_with_the_estimate(tmp_path, persons, days, temperature, expected):
    with pytest.raises(SynthwearError, match=expected):
        check_request(persons, days, 3, temperature, tmp_path / "out.csv")


def test_sample_never_replaces_a_file_without_overwrite(model, tmp_path):
    _, folder = model
    out = tmp_path / "cohort.csv"
    out.write_text("mine\n")
    result = CliRunner().invoke(cli, ["sample", str(folder), "--persons", "3", "-o", str(out)])
    assert result.exit_code == 1 and "exists; pass --overwrite" in result.output and out.read_text() == "mine\n"
    result = CliRunner().invoke(cli, ["sample", str(folder), "--persons", "3", "-o", str(tmp_path)])
    assert result.exit_code == 1 and "is a folder" in result.output
    result = CliRunner().invoke(cli, ["sample", str(folder), "--persons", "3", "-o", str(out), "--overwrite"])
    assert result.exit_code == 0 and pd.read_csv(out)["person_id"].nunique() == 3


def test_a_huge_request_is_refused_before_any_sampling(model, tmp_path):
    _, folder = model
    result = CliRunner().invoke(cli, ["sample", str(folder), "--persons", "1000000000", "-o", str(tmp_path / "x.csv")])
    assert result.exit_code == 1 and "GiB" in result.output and not (tmp_path / "x.csv").exists()


def test_a_run_folder_not_made_yet_is_checked_on_the_disk_it_will_be_made_on(tmp_path):
    """``synthwear run`` checks its cohort before training, when its folder does not exist yet."""
    out = tmp_path / "runs" / "new" / "synthetic.csv"
    check_request(10, 7, 3, 1.0, out)
    with pytest.raises(SynthwearError, match=r"make a file of about .* GiB, more than the"):
        check_request(10**12, 7, 3, 1.0, out)
