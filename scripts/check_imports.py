"""Check the package import rules (README, "Layout"): every package and top-level module of snn-deploy sits in
one of :data:`LAYERS` and imports only downward (so ``exporters`` never imports ``sims``, and the graph and the
arithmetic import nothing above them), no import cycle, and library code never imports the CLI. Every import
counts, including those inside functions.

Nodes are the packages (``snn_deploy.graph``, ``snn_deploy.models``, ...) and the modules at the top of
``snn_deploy`` (``snn_deploy.neurons``, ...). Prints the offending edges and exits 1 if a rule is broken.

    scripts/run python scripts/check_imports.py
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = {"models": "snn_deploy.models", "exporters": "snn_deploy.exporters", "sims": "snn_deploy.sims"}
"""Top-level folders installed under ``snn_deploy`` (pyproject's package-dir)."""
CLI = "snn_deploy.cli"
LAYERS = (
    # the front doors: the command line parses and prints, the Python API takes and returns Python values
    "snn_deploy.cli", "snn_deploy.api",
    # the flows both doors share, written once
    "snn_deploy.workflows",
    # what reads a graph: backends, runs, the hardware model and its reports
    "snn_deploy.sims",
    # what produces and stores a graph: frontends, NIR, file formats
    "snn_deploy.exporters",
    # training, model files, quantization, the model zoo and its neurons
    "snn_deploy.training", "snn_deploy.modelfile", "snn_deploy.quant_check", "snn_deploy.quant", "snn_deploy.models",
    "snn_deploy.neurons", "snn_deploy.surrogate",
    # data sets
    "snn_deploy.data", "snn_deploy.optimisation",
    # the ground floor: the deployed graph and what a run of it measured, spike agreement, the arithmetic
    "snn_deploy.graph", "snn_deploy.agreement", "snn_deploy.lavaref", "snn_deploy.fixedpoint",
    # runtime helpers every layer may use: outputs, Lava's watchdog, errors, the console, interrupts, Lava's import
    "snn_deploy.io", "snn_deploy.watchdog", "snn_deploy.errors", "snn_deploy.console", "snn_deploy.interrupts",
    "snn_deploy.lava_compat",
)
"""Every package and top-level module of snn-deploy, top to bottom: each may import only those after it (the data
flow: the doors call the shared workflows, which run the hardware model and backends, which read what the
exporters produce from models, down to the graph, the arithmetic and the runtime helpers). A module that is not
listed is an error, so a new one is placed deliberately."""


def node_of(module: str) -> str | None:
    """The package (or top-level module) of snn-deploy that ``module`` belongs to; None outside snn-deploy."""
    parts = module.split(".")
    if parts[0] != "snn_deploy" or len(parts) == 1:
        return None
    return ".".join(parts[:2])


def source_files() -> dict[Path, str]:
    """Every library source file and its dotted module name."""
    files = {}
    for path in (ROOT / "snn_deploy").rglob("*.py"):
        files[path] = "snn_deploy." + ".".join(path.relative_to(ROOT / "snn_deploy").with_suffix("").parts)
    for folder, package in FOLDERS.items():
        for path in (ROOT / folder).rglob("*.py"):
            files[path] = package + "." + ".".join(path.relative_to(ROOT / folder).with_suffix("").parts)
    return {path: name.removesuffix(".__init__") for path, name in files.items()}


def imports(path: Path, module: str) -> set[str]:
    """Every module ``path`` imports, anywhere in the file (absolute names)."""
    found = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return found


def edges() -> dict[tuple[str, str], list[str]]:
    """(importing node, imported node) -> the files that import across that edge."""
    files = source_files()
    nodes = {node_of(m) for m in files.values()} - {None}
    out: dict[tuple[str, str], list[str]] = {}
    for path, module in sorted(files.items()):
        src = node_of(module)
        if src is None:
            continue
        for dst in {node_of(name) for name in imports(path, module)} & nodes - {src}:
            out.setdefault((src, dst), []).append(str(path.relative_to(ROOT)))
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def upward(found: dict[tuple[str, str], list[str]]) -> list[tuple[str, str]]:
    """Edges from a package of :data:`LAYERS` to one at its level or above it."""
    return sorted((s, d) for s, d in found if s in LAYERS and d in LAYERS and LAYERS.index(d) <= LAYERS.index(s))


def unlayered(found: dict[tuple[str, str], list[str]]) -> list[str]:
    """Packages and modules of snn-deploy that are not in :data:`LAYERS` (every module of the tree counts, even
    one that imports nothing of snn-deploy)."""
    nodes = {node_of(m) for m in source_files().values()} | {n for edge in found for n in edge}
    return sorted(nodes - set(LAYERS) - {None})


def problems() -> list[str]:
    """Every broken rule, one line each (empty when the rules hold)."""
    found = edges()
    graph: dict[str, set[str]] = {}
    for src, dst in found:
        graph.setdefault(src, set()).add(dst)
    out = []
    for (src, dst), files in sorted(found.items()):
        if dst == CLI and src != CLI:
            out.append(f"library code imports the CLI: {src} -> {dst} ({', '.join(files)})")
    for node in unlayered(found):
        out.append(f"{node} is in no layer: add it to LAYERS in scripts/check_imports.py")
    for src, dst in upward(found):
        out.append(f"upward import: {src} -> {dst} ({', '.join(found[(src, dst)])}); see LAYERS")
    for component in cycles(graph):
        members = set(component)
        inside = sorted(f"{s} -> {d} ({', '.join(f)})" for (s, d), f in found.items()
                        if s in members and d in members)
        out.append(f"import cycle among {', '.join(component)}: " + "; ".join(inside))
    return out


def main() -> int:
    broken = problems()
    for line in broken:
        print(line)
    if not broken:
        print(f"import rules hold: {len({node_of(m) for m in source_files().values()} - {None})} packages and "
              "modules, every one in a layer, no cycle, no library import of the CLI, no upward import")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
