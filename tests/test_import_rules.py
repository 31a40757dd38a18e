"""The package import rules of README's Layout section, checked by scripts/check_imports.py."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import check_imports  # noqa: E402


def test_the_tree_follows_the_import_rules():
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "check_imports.py")], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "no cycle" in run.stdout


def test_cycles_and_cli_imports_are_found():
    assert check_imports.cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert check_imports.cycles({"a": {"b"}, "b": set()}) == []
    assert check_imports.node_of("snn_deploy.sims.runs.driver") == "snn_deploy.sims"
    assert check_imports.node_of("torch.nn") is None


def test_upward_imports_are_found():
    found = {("snn_deploy.exporters", "snn_deploy.sims"): ["exporters/x.py"],
             ("snn_deploy.sims", "snn_deploy.exporters"): ["sims/y.py"]}
    assert check_imports.upward(found) == [("snn_deploy.exporters", "snn_deploy.sims")]


def test_function_level_imports_count(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from snn_deploy.cli.deploy import x\n    from . import y\n")
    found = check_imports.imports(source, "snn_deploy.sims.m")
    assert {"snn_deploy.cli.deploy", "snn_deploy.sims.y"} <= found


def test_every_module_is_in_a_layer(monkeypatch):
    assert check_imports.unlayered({}) == []  # the tree as it is
    files = {Path("snn_deploy/new_helper.py"): "snn_deploy.new_helper"}
    monkeypatch.setattr(check_imports, "source_files", lambda: files)
    assert check_imports.unlayered({}) == ["snn_deploy.new_helper"]


def test_errors_needs_no_click():
    """Library code raises UserError; turning it into one line and an exit status is the CLI's (cli/handler.py)."""
    found = check_imports.imports(ROOT / "snn_deploy" / "errors.py", "snn_deploy.errors")
    assert not {name for name in found if name.split(".")[0] == "click"}
