import re
from pathlib import Path

from recpilot.config.settings import Settings, env_example

REPO = Path(__file__).resolve().parents[2]


def test_env_example_lists_every_setting():
    text = (REPO / ".env.example").read_text()
    listed = set(re.findall(r"^# RECPILOT_([A-Z0-9_]+)=", text, re.M))
    assert listed == {name.upper() for name in Settings.model_fields}
    # regenerate with: python -m recpilot.config.settings > .env.example
    assert text == env_example()


def test_precedence_flags_over_env_over_dotenv(tmp_path, monkeypatch):
    dotenv = tmp_path / ".env"
    dotenv.write_text("RECPILOT_DATASET=from-dotenv\nRECPILOT_COARSE_KEEP=33\nRECPILOT_K=1\n")
    monkeypatch.setenv("RECPILOT_DATASET", "from-env")
    s = Settings(_env_file=dotenv)
    assert s.dataset == "from-env" and s.coarse_keep == 33
    assert Settings(_env_file=dotenv, dataset="from-flag").dataset == "from-flag"


def test_home_expands_user_and_derives_folders(monkeypatch):
    monkeypatch.delenv("RECPILOT_HOME", raising=False)
    s = Settings(home="~/rp", dataset="d", _env_file=None)
    assert s.home == Path.home() / "rp"
    assert s.dataset_dir == s.home / "datasets" / "d"
    assert s.models_dir == s.home / "models" / "d"


def test_dataset_name_cannot_be_a_path():
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="no paths"):
        Settings(dataset="../../escape", _env_file=None)


def test_an_unset_command_flag_keeps_the_global_option(tmp_path):
    from types import SimpleNamespace

    from recpilot.cli.main import settings_from

    ctx = SimpleNamespace(obj={"home": tmp_path, "dataset": "from-global"})
    assert settings_from(ctx, dataset=None).dataset == "from-global"  # type: ignore[arg-type]
    assert settings_from(ctx, dataset="from-command").dataset == "from-command"  # type: ignore[arg-type]


def test_derived_folders_follow_a_copied_home(tmp_path):
    base = Settings(home=tmp_path / "a", _env_file=None)
    assert base.models_dir == tmp_path / "a" / "models" / base.dataset
    moved = base.model_copy(update={"home": tmp_path / "b", "dataset": "other"})
    assert moved.models_dir == tmp_path / "b" / "models" / "other"
    assert moved.dataset_dir == tmp_path / "b" / "datasets" / "other"
    assert moved.chroma_dir == tmp_path / "b" / "chroma"
