"""snn_deploy.lava_compat: the source transforms, and that lava-nc / lava-dl netx import through them."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap

from snn_deploy import lava_compat

DATACLASS_SOURCE = textwrap.dedent("""
    from dataclasses import dataclass, field

    @dataclass
    class Inner:
        a: int = 0

    @dataclass
    class Outer:
        x: Inner = Inner()
        y: Inner = field(default_factory=Inner)
        n: int = 3
""")


def _exec(tree: ast.Module) -> dict:
    namespace: dict = {}
    exec(compile(tree, "<test>", "exec"), namespace)  # noqa: S102 - our own test source
    return namespace


def test_instance_defaults_become_factories():
    ns = _exec(lava_compat.instance_defaults_to_factories(ast.parse(DATACLASS_SOURCE)))
    a, b = ns["Outer"](), ns["Outer"]()
    assert a.x == ns["Inner"]() and a.x is not b.x and a.n == 3
    assert a.y == ns["Inner"]()


def test_untouched_source_is_unchanged():
    source = "from dataclasses import dataclass\n@dataclass\nclass A:\n    n: int = 1\n"
    before = ast.dump(ast.parse(source))
    assert ast.dump(lava_compat.instance_defaults_to_factories(ast.parse(source))) == before
    assert ast.dump(lava_compat.lazy_object_detection(ast.parse("from . import neuron\n"))) == ast.dump(
        ast.parse("from . import neuron\n"))


def test_lazy_object_detection_defers_the_import():
    tree = lava_compat.lazy_object_detection(ast.parse("from . import neuron\nfrom . import object_detection as obd\n"))
    names = [stmt.names[0].name for stmt in tree.body if isinstance(stmt, ast.ImportFrom)]
    assert names == ["neuron"]
    assert any(isinstance(stmt, ast.FunctionDef) and stmt.name == "__getattr__" for stmt in tree.body)


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


def test_lava_and_netx_import_in_a_fresh_interpreter():
    result = _python(
        "import snn_deploy, sys\n"
        "from lava.proc.lif.process import LIF\n"
        "import lava.lib.dl.netx\n"
        "import lava.lib.dl.slayer as slayer\n"
        "assert 'lava.lib.dl.slayer.object_detection' not in sys.modules\n"
        "try:\n"
        "    slayer.obd\n"
        "except ImportError as exc:\n"
        "    print('obd:', type(exc).__name__)\n"
        "else:\n"
        "    print('obd: loaded')\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("obd:")  # the heavy subpackage loads, or fails with its own error, on access


def test_without_snn_deploy_lava_fails_on_python_311():
    """The finder is what makes lava importable here: without it the documented error appears."""
    if sys.version_info < (3, 11):
        return
    result = _python("import lava.magma.compiler.var_model")
    assert result.returncode != 0 and "default_factory" in result.stderr
