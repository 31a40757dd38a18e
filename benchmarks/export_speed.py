"""Export time and peak memory of the large published configurations (random weights), one process each.

Usage: python benchmarks/export_speed.py [NAME ...]   (default: qkformer-10-768 spikformer-8-768)

Each model is built in the loihi neuron mode with random weights, saved, and exported to a Loihi 2 bundle by the
same code path as `snn-deploy export` (QKFormer with --rewrite maxpool-after-lif: its official analog max-pools
cannot be deployed). Prints wall time of the export (load, quantize, lower, write) and the process's peak RSS.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
import torch
torch.manual_seed(0)
from snn_deploy.graph import profile
import snn_deploy.models as zoo
from snn_deploy.modelfile import load_model, save_model
from snn_deploy.exporters.frontends.model_file import export_bundle
name, root = sys.argv[1], Path(sys.argv[2])
model = zoo.create(name, mode="loihi").eval()
save_model(model, root / "model.pt", source="benchmark", created_from="random weights")
del model
start = time.perf_counter()
mf = load_model(root / "model.pt")
rewrites = ["maxpool-after-lif"] if name.startswith("qkformer") else []
path, graph = export_bundle(mf, root / "bundle", target=profile("loihi2"), calibration=None, rewrites=rewrites,
                            force=False, source={"path": "model.pt"})
elapsed = time.perf_counter() - start
size = sum(f.stat().st_size for f in path.iterdir())
print(json.dumps({"model": name, "export_s": round(elapsed, 1), "nodes": len(graph.nodes),
                  "bundle_MB": round(size / 2**20, 1),
                  "peak_rss_GB": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)}))
"""


def main(names: list[str]) -> None:
    for name in names:
        with tempfile.TemporaryDirectory() as tmp:
            out = subprocess.run([sys.executable, "-c", CHILD, name, tmp], capture_output=True, text=True)
            if out.returncode:
                print(f"{name}: failed\n{out.stderr[-2000:]}")
                continue
            print(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main(sys.argv[1:] or ["qkformer-10-768", "spikformer-8-768"])
