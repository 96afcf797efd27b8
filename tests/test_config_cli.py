"""Config loading, --set overrides and the CLI's handling of user mistakes."""

import subprocess
import sys

import pytest

from drsn_edge import config
from drsn_edge.cli import main
from drsn_edge.errors import UserError
from tests.conftest import ROOT


def test_default_and_smoke_configs_have_the_same_keys():
    default, smoke = config.load(ROOT / "configs/default.toml"), config.load(ROOT / "configs/smoke.toml")

    def keys(d, prefix=""):
        return {prefix + k for k, v in d.items() if not isinstance(v, dict) and k != "_source"} | {
            x for k, v in d.items() if isinstance(v, dict) for x in keys(v, prefix + k + ".")}

    assert keys(default) == keys(smoke)


def test_set_overrides_parse_toml_values():
    cfg = config.load(overrides=["train.epochs=3", "model.arch=resnet", "eval.snr_db=[-5, 0]",
                                 "train.learning_rate=1", "data.files.overlap=0.25"])
    assert cfg["train"]["epochs"] == 3
    assert cfg["model"]["arch"] == "resnet"
    assert cfg["eval"]["snr_db"] == [-5, 0]
    assert cfg["train"]["learning_rate"] == 1.0 and isinstance(cfg["train"]["learning_rate"], float)
    assert cfg["data"]["files"]["overlap"] == 0.25


@pytest.mark.parametrize("item, message", [
    ("train.epoch=3", "unknown key 'train.epoch'"),
    ("nosuch.x=1", "no config section 'nosuch'"),
    ("train.epochs=many", "expects a int"),
    ("train.epochs", "expected key=value"),
])
def test_bad_overrides_name_the_key(item, message):
    with pytest.raises(UserError, match=message):
        config.load(overrides=[item])


def test_missing_config_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="not found"):
        config.load(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("seed = \n")
    with pytest.raises(UserError, match="not valid TOML"):
        config.load(bad)


def test_cli_reports_user_errors_in_one_line_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "drsn_edge.cli", "train", "--config", str(tmp_path / "x.toml")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [f"drsn-edge train: error: config file {tmp_path / 'x.toml'} "
                                                f"not found; pass an existing TOML file (e.g. configs/default.toml "
                                                f"or configs/smoke.toml)"]


def test_cli_rejects_unknown_architecture_before_training(tmp_path, capsys):
    code = main(["train", "--config", str(ROOT / "configs/smoke.toml"), "--set", "model.arch=vgg",
                 "--build-dir", str(tmp_path)])
    assert code == 2
    assert "model.arch = 'vgg'" in capsys.readouterr().err


def test_artifacts_are_renamed_into_place_with_the_usual_file_mode(tmp_path, monkeypatch):
    """Written through a private temporary file, an artifact still ends up readable like any
    file the user creates (umask applied), and a failed write leaves nothing behind."""
    import stat
    from drsn_edge import artifacts
    monkeypatch.setattr(artifacts, "_UMASK", 0o022)
    path = artifacts.write_json(tmp_path / "r" / "report.json", {"a": 1})
    assert path.read_text() == '{\n  "a": 1\n}\n'
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # not mkstemp's private 0o600
    try:
        with artifacts.atomic_path(tmp_path / "r" / "half.bin") as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("the stage failed here")
    except RuntimeError:
        pass
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["report.json"]
