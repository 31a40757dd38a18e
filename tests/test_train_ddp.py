"""Scale-out: ``torchrun --nproc_per_node 2`` (gloo on CPU, loopback) trains the same model as one process that
splits each global batch into two micro-batches (the same BatchNorm groups)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import torch

from snn_deploy.modelfile import load_model

BIN = Path(sys.executable).parent
EXE = shutil.which("snn-deploy") or str(BIN / "snn-deploy")
TORCHRUN = shutil.which("torchrun") or str(BIN / "torchrun")
COMMON = ["train", "--model", "spikformer-tiny-8x8", "--dataset", "digits", "--epochs", "2", "--warmup-epochs", "0",
          "--batch-size", "16", "--labels-per-class", "8", "--T", "2", "--seed", "1", "--lr", "5e-3"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_equal_one_process_with_two_micro_batches(tmp_path):
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "OMP_NUM_THREADS": "1"}
    ddp = subprocess.run([TORCHRUN, "--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port",
                          str(free_port()), EXE, *COMMON, "-o", str(tmp_path / "ddp.pt")],
                         capture_output=True, text=True, timeout=300, env=env)
    assert ddp.returncode == 0, ddp.stdout + ddp.stderr
    assert sum(line.startswith("test accuracy") for line in ddp.stdout.splitlines()) == 1  # only rank 0 prints
    one = subprocess.run([EXE, *COMMON, "--micro-batches", "2", "-o", str(tmp_path / "one.pt")],
                         capture_output=True, text=True, timeout=300, env=env)
    assert one.returncode == 0, one.stdout + one.stderr

    a, b = load_model(tmp_path / "ddp.pt").model, load_model(tmp_path / "one.pt").model
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        assert torch.allclose(p, q, rtol=1e-4, atol=1e-5), name
    ma, mb = (json.loads((tmp_path / f"{n}.metrics.json").read_text()) for n in ("ddp", "one"))
    assert ma["processes"] == 2 and mb["processes"] == 1
    for ea, eb in zip(ma["epochs"], mb["epochs"]):
        assert abs(ea["train_loss"] - eb["train_loss"]) < 1e-4
        assert ea["train_accuracy"] == eb["train_accuracy"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp.metrics.json", "ddp.pt", "one.metrics.json", "one.pt"]
