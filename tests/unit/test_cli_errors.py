"""CLI bad input: one `error:` line and exit 2, checked before any work starts."""

from __future__ import annotations

import pytest
import typer
from pydantic import ValidationError
from typer.testing import CliRunner

from recpilot.cli.main import app, make_out_dir, one_line, stop_on_interrupt
from recpilot.config.settings import Settings

runner = CliRunner()


def run(tmp_path, *args: str):
    return runner.invoke(app, ["--home", str(tmp_path / "home"), *args])


@pytest.mark.parametrize("command", ["eval", "eval-chat"])
def test_an_out_that_is_a_file_fails_before_loading_anything(tmp_path, command):
    target = tmp_path / "a-file"
    target.write_text("x")
    out = run(tmp_path, command, "--no-llm", "--out", str(target))
    assert out.exit_code == 2
    assert "--out" in out.output and "cannot create" in out.output
    assert "No dataset" not in out.output  # failed before loading the dataset


def test_ctrl_c_removes_an_empty_out_folder_it_made_and_keeps_one_with_work(tmp_path):
    made = tmp_path / "made"
    assert make_out_dir(made)
    with pytest.raises(typer.Exit) as stopped, stop_on_interrupt(made, created=True):
        raise KeyboardInterrupt
    assert stopped.value.exit_code == 130 and not made.exists()

    kept = tmp_path / "kept"
    assert make_out_dir(kept) and not make_out_dir(kept)  # the second call finds it there
    with pytest.raises(typer.Exit), stop_on_interrupt(kept, created=True):
        (kept / "episodes.jsonl").write_text("{}\n")
        raise KeyboardInterrupt
    assert (kept / "episodes.jsonl").is_file()

    theirs = tmp_path / "theirs"  # an existing empty folder is the user's: left alone
    theirs.mkdir()
    with pytest.raises(typer.Exit), stop_on_interrupt(theirs, created=make_out_dir(theirs)):
        raise KeyboardInterrupt
    assert theirs.is_dir()


def test_eval_resume_of_a_missing_folder_is_bad_input(tmp_path):
    out = run(tmp_path, "eval", "--resume", "--out", str(tmp_path / "nope"))
    assert out.exit_code == 2 and "--resume" in out.output


def test_validation_errors_print_on_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("RECPILOT_ALS_FACTORS", "-1")
    out = run(tmp_path, "train")
    assert out.exit_code == 2
    lines = [line for line in out.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: invalid Settings: als_factors:")


def test_one_line_joins_every_field_error():
    try:
        Settings(als_factors=-1, fine_weight=5, _env_file=None)
    except ValidationError as err:
        text = one_line(err)
    assert text.startswith("invalid Settings: ") and "\n" not in text
    assert "als_factors:" in text and "fine_weight:" in text
