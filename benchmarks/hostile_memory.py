"""Peak memory and time of refusing crafted inputs: each case runs ``snn-deploy`` in a fresh process on a file
that declares far more than it holds, and prints the exit code, the process's peak resident memory (ru_maxrss),
the wall time and the error line.

Usage: python benchmarks/hostile_memory.py [--workdir DIR]

Cases (each refused before anything of the declared size is allocated):

* ``nir-bomb``: a bundle whose network.nir holds an extra gzip-compressed 16 GiB array (a few kB on disk);
* ``nir-huge-T``: a bundle whose graph declares T = 10^9;
* ``model-zip-bomb``: a model file with an extra 1 GiB zip entry deflated to ~1 MB;
* ``model-huge-config``: a model file whose config declares embed_dim 65536 and depth 64 (~1e11 parameters);
* ``bundle-int8-widened``: a bundle whose network.nir declares 2e9 int8 values (2 GB stored, 16 GB as read);
* ``netx-dense-bomb``: a netx file whose dense layer declares 2^24 + 1 gzip-compressed weights;
* ``nir-standard-gzip`` / ``nir-standard-input``: standard NIR with a gzip'd 3.2 GB array / a [1, 20000, 20000]
  input;
* ``yaml-laughs``: a "billion laughs" YAML config (9 levels of 9 aliases);
* ``verify-steps-1e9``: ``verify BUNDLE --time-steps 1000000000 --dataset digits``;
* ``netx-dense-at-limit``: a 10 kB netx file with exactly 2^24 dense weights, accepted (exit 0): what the limit
  lets a file cost;
* ``baseline``: ``snn-deploy simulate`` of the intact bundle on 8 digits (for comparison).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import h5py
import numpy as np
import torch

EXE = str(Path(sys.executable).parent / "snn-deploy")


def _rehash(bundle: Path) -> None:
    from snn_deploy.io import sha256_file

    data = json.loads((bundle / "manifest.json").read_text())
    data["files"]["network.nir"] = sha256_file(bundle / "network.nir")
    (bundle / "manifest.json").write_text(json.dumps(data))


def make_cases(root: Path) -> dict[str, list[str]]:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from export_testing import active_model, quantized

    from snn_deploy.exporters.formats.bundle import write_bundle
    from snn_deploy.exporters.frontends.zoo import lower
    from snn_deploy.graph import LOIHI2
    from snn_deploy.modelfile import save_model
    from snn_deploy.models.tensors import state_digest

    bundle = root / "qk.loihi"
    write_bundle(lower(quantized("qkformer-tiny")), bundle, target=LOIHI2, quantization={}, extra={})
    bomb = root / "bomb.loihi"
    shutil.copytree(bundle, bomb)
    with h5py.File(bomb / "network.nir", "r+") as f:
        f.create_dataset("padding", shape=(2**31,), dtype="f8", chunks=(2**20,), compression="gzip", fillvalue=0.0)
    _rehash(bomb)
    long = root / "long.loihi"
    shutil.copytree(bundle, long)
    with h5py.File(long / "network.nir", "r+") as f:
        meta = f["node/metadata/snn_deploy"]
        del meta["T"]
        meta["T"] = 10**9
    _rehash(long)

    model = save_model(active_model("qkformer-tiny"), root / "qk.pt", source="bench", created_from="bench")
    zbomb = root / "zbomb.pt"
    with zipfile.ZipFile(model) as src, zipfile.ZipFile(zbomb, "w") as dst:
        for item in src.infolist():
            dst.writestr(item, src.read(item))
        entry = zipfile.ZipInfo("archive/data/999")
        entry.compress_type = zipfile.ZIP_DEFLATED
        with dst.open(entry, "w", force_zip64=True) as f:
            for _ in range(1024):
                f.write(bytes(2**20))
    huge = root / "huge.pt"
    record = torch.load(model, weights_only=True)
    record["config"].update(embed_dim=2**16, depth=64)
    record["state_sha256"] = state_digest(record["state_dict"])
    torch.save(record, huge)
    from test_hostile_doors import (BILLION_LAUGHS, _bundle_int8_bomb, _netx_dense_bomb, _standard_big_input,
                                    _standard_gzip_bomb)

    from test_netx_import import _cuba, _write

    (root / "laughs.yaml").write_text(BILLION_LAUGHS + "epochs: *i\n")
    at_limit = _write(root / "at-limit.net", [  # exactly 2^24 dense weights (ones): accepted, and what it costs
        {"type": np.bytes_(b"input"), "shape": np.array([4096])},
        {"type": np.bytes_(b"dense"), "shape": np.array([4096]), "weight": np.ones((1, 1)), "neuron": _cuba()}])
    with h5py.File(at_limit, "r+") as f:
        del f["layer/1/weight"]
        f.create_dataset("layer/1/weight", shape=(4096, 4096), dtype="f4", chunks=(256, 4096), compression="gzip",
                         fillvalue=1)
    sim = ["simulate", "--dataset", "digits", "--samples", "8"]
    return {"baseline": [sim[0], str(bundle), *sim[1:]], "nir-bomb": [sim[0], str(bomb), *sim[1:]],
            "nir-huge-T": [sim[0], str(long), *sim[1:]],
            "model-zip-bomb": ["export", str(zbomb), "-o", str(root / "x.loihi")],
            "model-huge-config": ["export", str(huge), "-o", str(root / "y.loihi")],
            "bundle-int8-widened": [sim[0], str(_bundle_int8_bomb(bundle, root / "int8.loihi")), *sim[1:]],
            "netx-dense-bomb": ["export", str(_netx_dense_bomb(root / "dense.net")), "-o", str(root / "n.loihi")],
            "nir-standard-gzip": ["export", str(_standard_gzip_bomb(root / "gz.nir")), "-o", str(root / "g.loihi")],
            "nir-standard-input": ["export", str(_standard_big_input(root / "in.nir")), "-o", str(root / "i.loihi")],
            "yaml-laughs": ["train", "--config", str(root / "laughs.yaml"), "--print-config"],
            "verify-steps-1e9": ["verify", str(bundle), "--time-steps", str(10**9), "--dataset", "digits"],
            "netx-dense-at-limit": ["export", str(at_limit), "-o", str(root / "at-limit.loihi")]}


PROBE = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
         "sys.stderr.write(r.stderr); print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
"""A fresh parent per case, so RUSAGE_CHILDREN's peak is that one snn-deploy process's."""


def measure(args: list[str]) -> tuple[int, float, float, str]:
    """(exit code, peak RSS in MiB, seconds, last stderr line) of one snn-deploy process."""
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", PROBE, EXE, *args], capture_output=True, text=True, timeout=600)
    code, peak_kib = result.stdout.split()
    lines = result.stderr.strip().splitlines()
    return int(code), int(peak_kib) / 1024, time.perf_counter() - start, lines[-1] if lines else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, help="Where to build the crafted files (default: a temporary one).")
    args = parser.parse_args()
    root = args.workdir or Path(tempfile.mkdtemp(prefix="hostile-"))
    root.mkdir(parents=True, exist_ok=True)
    cases = make_cases(root)
    sizes = {"nir-bomb": root / "bomb.loihi" / "network.nir", "model-zip-bomb": root / "zbomb.pt",
             "bundle-int8-widened": root / "int8.loihi" / "network.nir", "netx-dense-bomb": root / "dense.net",
             "nir-standard-gzip": root / "gz.nir", "netx-dense-at-limit": root / "at-limit.net"}
    print(f"{'case':20s} {'exit':>4s} {'peak RSS':>10s} {'time':>7s}  file size / error line")
    for name in cases:
        code, rss, seconds, line = measure(cases[name])
        size = f"[{sizes[name].stat().st_size / 2**20:.1f} MiB file] " if name in sizes else ""
        print(f"{name:20s} {code:4d} {rss:8.0f} MiB {seconds:6.1f}s  {size}{line[:150]}")


if __name__ == "__main__":
    main()
