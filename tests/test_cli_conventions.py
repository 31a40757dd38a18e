"""Command-line conventions: config files and the effective config, the --time-steps spelling (--T hidden), a
default that never fails a valid request, one meaning for --json, -q/-v, exit status 2 for bad usage."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from snn_deploy.cli import cli
from snn_deploy.errors import UserError
from snn_deploy.training.settings import TrainSettings, resolve

TRAIN = ["train", "--model", "qkformer-tiny-8x8", "--dataset", "digits"]


def _run(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    return result.exit_code, result.output


def _toml(text: str) -> dict:
    import tomllib

    return tomllib.loads(text)


def test_config_file_sets_options_and_the_command_line_wins(tmp_path):
    (tmp_path / "run.toml").write_text('epochs = 3\nbatch-size = 8\nlr = 0.01\ntime-steps = 2\noutput = "m.pt"\n')
    code, text = _run(*TRAIN, "--config", tmp_path / "run.toml", "--epochs", "5", "--print-config")
    assert code == 0, text
    config = _toml(text)
    assert (config["epochs"], config["batch-size"], config["lr"], config["time-steps"]) == (5, 8, 0.01, 2)
    assert config["weight-decay"] == 0.01 and config["warmup-epochs"] == 1  # digits' defaults filled in
    assert not list(tmp_path.glob("*.pt"))  # --print-config runs nothing
    # the printed config is a valid config file that gives the same settings
    (tmp_path / "again.toml").write_text(text)
    assert _run("train", "--config", tmp_path / "again.toml", "--print-config") == (0, text)
    (tmp_path / "run.yaml").write_text("model: qkformer-tiny-8x8\ndataset: digits\noutput: m.pt\nepochs: 5\n"
                                       "batch_size: 8\nlr: 0.01\ntime_steps: 2\n")
    assert _toml(_run("train", "--config", tmp_path / "run.yaml", "--print-config")[1]) == config


@pytest.mark.parametrize("content, suffix, message", [
    ("epochz = 3\n", ".toml", "unknown option(s) epochz"),
    ("epochs = \n", ".toml", "not valid TOML"),
    ("- 3\n", ".yaml", "option = value pairs"),
    ("epochs = 3\n", ".ini", ".toml, .yaml or .yml"),
])
def test_bad_config_files_are_usage_errors(tmp_path, content, suffix, message):
    path = tmp_path / f"run{suffix}"
    path.write_text(content)
    code, text = _run(*TRAIN, "-o", tmp_path / "m.pt", "--config", path)
    assert code == 2 and message in text, text


def test_time_steps_and_the_hidden_T_alias():
    code, help_text = _run("train", "--help")
    assert code == 0 and "--time-steps" in help_text and "--T" not in help_text
    assert "default per data set: digits 20" in " ".join(help_text.split())  # per-data-set defaults shown
    for spelling in ("--time-steps", "--T"):
        code, text = _run(*TRAIN, "-o", "m.pt", spelling, "3", "--print-config")
        assert code == 0 and _toml(text)["time-steps"] == 3, text


def test_default_warmup_never_fails_a_valid_request():
    def settings(dataset: str, **given) -> TrainSettings:
        rest = dict(neuron="loihi", seed=0, augment=True, micro_batches=1, labels_per_class=None, init=None)
        return resolve(TrainSettings, "qkformer-tiny-8x8", dataset, **rest, **given)

    assert (settings("digits", epochs=1).epochs, settings("digits", epochs=1).warmup_epochs) == (1, 0)
    assert settings("cifar10", epochs=5).warmup_epochs == 4 and settings("cifar10").warmup_epochs == 20
    with pytest.raises(UserError, match="warm-up"):  # an explicit value is checked as given
        settings("digits", epochs=1, warmup_epochs=1)


def test_json_means_a_path_or_stdout_everywhere(tmp_path):
    code, text = _run("models", "--json", "-")
    assert code == 0 and {r["name"] for r in json.loads(text)} >= {"qkformer-tiny-8x8"}
    code, text = _run("datasets", "--json", tmp_path / "d.json")
    assert code == 0 and "digits" in text  # the table, and the file
    assert json.loads((tmp_path / "d.json").read_text())["datasets"][0]["name"] == "digits"
    code, text = _run("datasets", "--json")  # no value: stdout
    assert code == 0 and json.loads(text)["schema_version"] == 1


def test_usage_errors_exit_2_and_listings_take_no_quiet_flag():
    assert _run("train", "--epochs", "x")[0] == 2
    assert _run("simulate")[0] == 2
    code, text = _run("models", "-q")
    assert code == 2 and "No such option" in text
    code, text = _run("simulate", "--help")
    assert "-q, --quiet" in text and "-v, --verbose" in text
