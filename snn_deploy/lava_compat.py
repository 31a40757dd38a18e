"""Make lava-nc 0.10 and lava-dl 0.6 importable on Python 3.11, without touching site-packages.

Both packages are archived at releases that declare Python <3.11. Two things stop them here:

1. ``lava/magma/compiler/var_model.py`` gives dataclass fields instance defaults (``x: ByteEncoder =
   ByteEncoder()``). Python 3.11 rejects defaults whose class is unhashable ("mutable default ... use
   default_factory"), so every ``import lava.magma...`` fails.
2. ``lava.lib.dl.slayer``'s package ``__init__`` imports its ``object_detection`` subpackage, which needs
   torchvision, OpenCV and PIL. ``lava.lib.dl.netx`` only needs ``slayer.neuron``, but Python runs the package
   ``__init__`` first, and torchvision cannot load next to the CPU torch wheel.

We install a meta-path finder that, for exactly those two modules, compiles a corrected syntax tree of the
installed source (the file on disk is never modified, no bytecode is cached):

1. dataclass fields whose default is a constructor call become ``field(default_factory=...)``; on Python 3.10,
   where the original is legal, nothing is installed for this module;
2. ``from . import object_detection as obd`` becomes a lazy module attribute: the subpackage is imported (and
   fails with its real error) only when someone touches ``slayer.obd``.

Lava forks its worker processes (``mp.set_start_method('fork')``), so the children inherit the finder.
If an upstream release fixes either file, the transform finds nothing to change and the module loads as is.
"""

from __future__ import annotations

import ast
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Callable, Sequence
from types import CodeType, ModuleType

_Transform = Callable[[ast.Module], ast.Module]


def _is_dataclass_decorator(node: ast.expr) -> bool:
    target = node.func if isinstance(node, ast.Call) else node
    return (isinstance(target, ast.Name) and target.id == "dataclass") or (
        isinstance(target, ast.Attribute) and target.attr == "dataclass"
    )


def instance_defaults_to_factories(tree: ast.Module) -> ast.Module:
    """Rewrite ``name: T = Cls(...)`` inside @dataclass classes to ``field(default_factory=lambda: Cls(...))``."""
    for cls in ast.walk(tree):
        if not isinstance(cls, ast.ClassDef) or not any(map(_is_dataclass_decorator, cls.decorator_list)):
            continue
        for stmt in cls.body:
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.value, ast.Call):
                call = stmt.value
                is_field_call = isinstance(call.func, (ast.Name, ast.Attribute)) and (
                    getattr(call.func, "id", None) == "field" or getattr(call.func, "attr", None) == "field"
                )
                if is_field_call:
                    continue
                factory = ast.Lambda(
                    args=ast.arguments(posonlyargs=[], args=[], kwonlyargs=[], kw_defaults=[], defaults=[]),
                    body=call,
                )
                field_func = ast.Attribute(
                    value=ast.Call(func=ast.Name(id="__import__", ctx=ast.Load()),
                                   args=[ast.Constant("dataclasses")], keywords=[]),
                    attr="field", ctx=ast.Load(),
                )
                stmt.value = ast.Call(func=field_func, args=[],
                                      keywords=[ast.keyword(arg="default_factory", value=factory)])
    return ast.fix_missing_locations(tree)


def lazy_object_detection(tree: ast.Module) -> ast.Module:
    """Turn ``from . import object_detection as obd`` into an attribute imported on first access."""
    lazy: dict[str, str] = {}
    body: list[ast.stmt] = []
    for stmt in tree.body:
        if isinstance(stmt, ast.ImportFrom) and stmt.level == 1 and stmt.module is None and any(
            alias.name == "object_detection" for alias in stmt.names
        ):
            kept = [alias for alias in stmt.names if alias.name != "object_detection"]
            for alias in stmt.names:
                if alias.name == "object_detection":
                    lazy[alias.asname or alias.name] = alias.name
            if kept:
                body.append(ast.ImportFrom(module=None, names=kept, level=1))
            continue
        body.append(stmt)
    if not lazy:
        return tree
    getattr_src = (
        "def __getattr__(name):\n"
        f"    lazy = {lazy!r}\n"
        "    if name in lazy:\n"
        "        import importlib\n"
        "        module = importlib.import_module('.' + lazy[name], __name__)\n"
        "        globals()[name] = module\n"
        "        return module\n"
        "    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')\n"
    )
    body.extend(ast.parse(getattr_src).body)
    tree.body = body
    return ast.fix_missing_locations(tree)


def _transforms() -> dict[str, _Transform]:
    transforms: dict[str, _Transform] = {"lava.lib.dl.slayer": lazy_object_detection}
    if sys.version_info >= (3, 11):
        transforms["lava.magma.compiler.var_model"] = instance_defaults_to_factories
    return transforms


class PatchedSourceLoader(importlib.machinery.SourceFileLoader):
    """Compiles the transformed syntax tree of the installed source; never reads or writes bytecode caches."""

    def __init__(self, fullname: str, path: str, transform: _Transform) -> None:
        super().__init__(fullname, path)
        self._transform = transform

    def get_code(self, fullname: str) -> CodeType:
        source = self.get_data(self.path)
        tree = self._transform(ast.parse(source, filename=self.path))
        return compile(tree, self.path, "exec", dont_inherit=True)


class LavaCompatFinder(importlib.abc.MetaPathFinder):
    """Meta-path finder that hands out patched loaders for the modules in ``_transforms()``."""

    def __init__(self) -> None:
        self.transforms = _transforms()

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None):
        transform = self.transforms.get(fullname)
        if transform is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not isinstance(spec.loader, importlib.machinery.SourceFileLoader):
            return spec
        spec.loader = PatchedSourceLoader(fullname, spec.origin, transform)
        return spec


def install() -> None:
    """Put the finder first on ``sys.meta_path`` (idempotent). Must run before the first lava import."""
    if not any(isinstance(finder, LavaCompatFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, LavaCompatFinder())
