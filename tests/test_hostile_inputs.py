"""Hostile and broken inputs, one test per kind (not per instance): every one ends with exit 2 (130 / 143 for
interrupts), exactly one ``error:`` line that says what, where and what to do, no traceback, and nothing left
behind; faults (kill -9, a full disk, concurrent writers) lose nothing.

Kinds: non-finite numbers, unwritable output locations, outputs that are inputs or already exist, crafted or
damaged bundles, paths leaving the bundle, decompression bombs and declared sizes, interrupts, silent corruption,
numeric options out of range, Lava workers that crash or hang, checkpoint import as users hit it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from export_testing import active_model, quantized
from snn_deploy.cli import cli
from snn_deploy.errors import UserError
from snn_deploy.exporters.formats import bundle_check
from snn_deploy.exporters.formats.bundle import MANIFEST_FILE, NETWORK_FILE, load_bundle, write_bundle
from snn_deploy.exporters.frontends.zoo import lower
from snn_deploy.graph import LOIHI2, ConvNode, Graph, InputNode, LIFNode, ReadoutNode
from snn_deploy.io import sha256_file
from snn_deploy.modelfile import save_model
from snn_deploy.models.tensors import state_digest

EXE = shutil.which("snn-deploy") or str(Path(sys.executable).parent / "snn-deploy")
TRAIN = ["--model", "spikformer-tiny-8x8", "--dataset", "digits", "--T", "2", "--batch-size", "20",
         "--labels-per-class", "4", "--warmup-epochs", "0", "--seed", "5", "--threads", "1", "--lr", "0.005"]
PRETRAIN = [a for a in TRAIN if a not in ("--labels-per-class", "4")]


# ---------------------------------------------------------------------------------------------------- helpers


def invoke(*args) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def listing(*folders: Path) -> list[str]:
    """Every path below ``folders`` (hidden temporaries included) with its size: "nothing left behind"."""
    return sorted(f"{p}:{p.stat().st_size if p.is_file() else 'dir'}" for d in folders for p in d.rglob("*"))


def refused(args, *fragments: str, watch: tuple[Path, ...] = (), code: int = 2) -> str:
    """Run the command; assert the exit code, one ``error:`` line holding ``fragments``, no traceback, and no file
    created, changed or removed under ``watch``. Returns the error line."""
    before = listing(*watch)
    status, out, err = invoke(*args)
    lines = [line for line in (out + err).splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert status == code, out + err
    assert len(errors) == 1 and err.strip() == errors[0], out + err
    assert "Traceback" not in out + err
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    assert listing(*watch) == before
    return errors[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A loihi-mode model file and a bundle, each in its own folder."""
    root = tmp_path_factory.mktemp("hostile")
    (root / "m").mkdir()
    model = save_model(active_model("qkformer-tiny"), root / "m" / "qk.pt", source="test", created_from="test")
    bundle = root / "b" / "qk.loihi"
    bundle.parent.mkdir()
    write_bundle(lower(quantized("qkformer-tiny")), bundle, target=LOIHI2, quantization={},
                 extra={"arch": "qkformer-tiny"})
    return model, bundle


def rewrite_model(src: Path, dst: Path, edit) -> Path:
    """A copy of a model file whose record ``edit`` changed; the digest is recomputed (only the values are bad)."""
    record = torch.load(src, weights_only=True)
    edit(record)
    record["state_sha256"] = state_digest(record["state_dict"])
    torch.save(record, dst)
    return dst


def crafted_bundle(src: Path, dst: Path, *, manifest=None, nir=None) -> Path:
    """A copy of a bundle after ``manifest(dict)`` / ``nir(h5py.File)`` edits, hashes updated to match."""
    shutil.copytree(src, dst)
    if nir is not None:
        with h5py.File(dst / NETWORK_FILE, "r+") as f:
            nir(f)
    data = json.loads((dst / MANIFEST_FILE).read_text())
    data["files"][NETWORK_FILE] = sha256_file(dst / NETWORK_FILE)
    if manifest is not None:
        data = manifest(data) or data
    (dst / MANIFEST_FILE).write_text(json.dumps(data))
    return dst


def set_meta(node: str, key: str, value):
    def edit(f: h5py.File) -> None:
        group = f[f"node/nodes/{node}/metadata/snn_deploy"]
        del group[key]
        group[key] = value
    return edit


# ------------------------------------------------------------------------------------------ non-finite numbers


@pytest.mark.parametrize("edit, message", [
    (lambda sd: sd["patch_embed1.proj_conv.weight"].view(-1)[0].fill_(float("nan")), "NaN or infinite"),
    (lambda sd: sd["patch_embed1.proj_bn.running_mean"].fill_(float("inf")), "NaN or infinite"),
    (lambda sd: sd["patch_embed1.proj_bn.running_var"].fill_(-1.0), "negative BatchNorm variances"),
    (lambda sd: sd.__setitem__("head.weight", sd["head.weight"].long()), "wrong dtype"),
])
@pytest.mark.parametrize("command", ["export", "export-onnx", "quantize", "eval", "train-init"])
def test_non_finite_or_invalid_model_tensors_are_refused_by_every_reader(files, tmp_path, edit, message, command):
    model, _ = files
    bad = rewrite_model(model, tmp_path / "bad.pt", lambda r: edit(r["state_dict"]))
    args = {"export": ["export", bad, "-o", tmp_path / "x.loihi"],
            "export-onnx": ["export", bad, "--target", "onnx", "-o", tmp_path / "x.onnx"],
            "quantize": ["quantize", bad, "-o", tmp_path / "q.pt"],
            "eval": ["eval", bad, "--dataset", "digits"],
            "train-init": ["train", "--model", "qkformer-tiny", "--dataset", "digits", "--init", bad, "--epochs", "1",
                           "--warmup-epochs", "0", "-o", tmp_path / "t.pt"]}[command]
    refused(args, message, str(bad), "create it again", watch=(tmp_path,))


def test_non_finite_training_checkpoint_is_refused_on_resume(tmp_path, monkeypatch):
    import snn_deploy.training.loop as loop

    real = loop.save_checkpoint

    def save_then_stop(path, state):
        real(path, state)
        raise KeyboardInterrupt  # the run stops right after the first epoch's checkpoint

    monkeypatch.setattr(loop, "save_checkpoint", save_then_stop)
    status, _, err = invoke("train", *TRAIN, "--epochs", "2", "-o", tmp_path / "m.pt")
    assert status == 130, err
    monkeypatch.setattr(loop, "save_checkpoint", real)
    ckpt = tmp_path / "m.ckpt"
    state = torch.load(ckpt, weights_only=True)
    state["model"]["head.weight"][0, 0] = float("nan")
    torch.save(state, ckpt)
    refused(["train", *TRAIN, "--epochs", "2", "-o", tmp_path / "m.pt", "--resume"], "NaN or infinite", "m.ckpt",
            "without --resume", watch=(tmp_path,))


@pytest.mark.parametrize("option, value", [("--lr", "nan"), ("--lr", "-1"), ("--weight-decay", "inf"),
                                           ("--weight-decay", "-nan"), ("--label-smoothing", "1e999")])
def test_non_finite_float_options_are_refused(tmp_path, option, value):
    refused(["train", *TRAIN, option, value, "-o", tmp_path / "m.pt"], option, watch=(tmp_path,))


# ----------------------------------------------------------------------- numeric options out of range, in --help


@pytest.mark.parametrize("command, option, value", [
    ("train", "--threads", "0"), ("train", "--threads", "-1"), ("train", "--time-steps", "0"), ("train", "--epochs", "0"),
    ("train", "--warmup-epochs", "-3"), ("train", "--micro-batches", "0"), ("train", "--batch-size", "-4"),
    ("eval", "--batch-size", "0"), ("eval", "--threads", "0"), ("verify", "--samples", "-2"),
    ("quantize", "--eval-samples", "-1"), ("export", "--eval-samples", "0"), ("simulate", "--samples", "0"),
    ("simulate", "--batch-size", "0"), ("report", "--samples", "-5"), ("import", "--num-classes", "0"),
    ("pretrain", "--mask-ratio", "1.5"), ("pretrain", "--decoder-depth", "0"),
])
def test_numeric_options_out_of_range_are_refused_with_the_range_in_help(files, tmp_path, command, option, value):
    model, bundle = files
    base = {"train": ["train", *TRAIN, "-o", tmp_path / "m.pt"],
            "pretrain": ["pretrain", *PRETRAIN, "-o", tmp_path / "m.pt"],
            "eval": ["eval", model, "--dataset", "digits"], "verify": ["verify", model, "--dataset", "digits"],
            "quantize": ["quantize", model, "-o", tmp_path / "q.pt"], "export": ["export", model, "-o", tmp_path / "e"],
            "simulate": ["simulate", bundle, "--dataset", "digits"],
            "report": ["report", bundle, "--dataset", "digits", "-o", tmp_path / "r"],
            "import": ["import", model, "--arch", "qkformer-tiny", "-o", tmp_path / "i.pt"]}[command]
    if option in base:  # replace the option's value
        i = base.index(option)
        base = base[:i] + base[i + 2:]
    line = refused([*base, option, value], option, "--help", watch=(tmp_path,))
    assert "range" in line or "finite" in line
    status, out, _ = invoke(command, "--help")
    assert status == 0
    help_text = " ".join(out.split())
    assert option in help_text and ("x>=" in help_text or "<=x" in help_text or "<x" in help_text)


# ---------------------------------------------------------------------- output locations that cannot be written


@contextlib.contextmanager
def read_only_directory(tmp_path: Path):
    """A directory the current user cannot write: a read-only tmpfs as root, a 0555 directory otherwise."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield folder
        finally:
            folder.chmod(0o755)
        return
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(folder)],
                      capture_output=True).returncode != 0:
        pytest.skip("running as root without permission to mount a read-only tmpfs: root can write any directory")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


WRITERS = {
    "export": lambda m, b, o: ["export", m, "-o", o],
    "export-nir": lambda m, b, o: ["export", m, "--target", "nir", "-o", o],
    "export-onnx": lambda m, b, o: ["export", m, "--target", "onnx", "-o", o],
    "quantize": lambda m, b, o: ["quantize", m, "-o", o],
    "quantize-json": lambda m, b, o: ["quantize", m, "-o", m.parent.parent / "q.pt", "--json", o],
    "import": lambda m, b, o: ["import", m, "--arch", "qkformer-tiny", "-o", o],
    "report": lambda m, b, o: ["report", b, "--dataset", "digits", "-o", o],
    "simulate-json": lambda m, b, o: ["simulate", b, "--dataset", "digits", "--json", o],
    "simulate-traces": lambda m, b, o: ["simulate", b, "--dataset", "digits", "--traces", "all", "--traces-out", o],
    "verify-json": lambda m, b, o: ["verify", m, "--dataset", "digits", "--json", o],
    "train": lambda m, b, o: ["train", *TRAIN, "-o", o],
    "pretrain": lambda m, b, o: ["pretrain", *PRETRAIN, "-o", o],
}


@pytest.mark.parametrize("where", ["missing-parent", "parent-is-a-file", "read-only"])
@pytest.mark.parametrize("command", sorted(WRITERS))
def test_unwritable_output_locations_are_refused_before_any_work(files, tmp_path, command, where):
    model, bundle = files
    (tmp_path / "file").write_text("a file")
    with contextlib.ExitStack() as stack:
        if where == "missing-parent":
            out, fragment = tmp_path / "missing" / "dir" / "out.x", "does not exist; create it first"
        elif where == "parent-is-a-file":
            out, fragment = tmp_path / "file" / "out.x", "is a file, not a directory"
        else:
            out, fragment = stack.enter_context(read_only_directory(tmp_path)) / "out.x", "not writable"
        refused(WRITERS[command](model, bundle, out), fragment, str(out), watch=(tmp_path, model.parent, bundle))


# ------------------------------------------------------------- outputs that are inputs, outputs that exist


@pytest.mark.parametrize("command", ["export", "export-nir", "quantize", "import", "report", "simulate-json",
                                     "simulate-traces", "verify-json"])
def test_an_output_that_is_an_input_is_refused_even_with_force(files, tmp_path, command):
    model, bundle = files
    uses_bundle = command in ("report", "simulate-json", "simulate-traces")
    target = bundle if uses_bundle else model
    for out in ([target, target / MANIFEST_FILE] if uses_bundle else [target]):
        refused([*WRITERS[command](model, bundle, out), "--force"], "would overwrite the input",
                watch=(model.parent, bundle))


@pytest.mark.parametrize("command", ["simulate-json", "simulate-traces", "verify-json", "quantize-json",
                                     "export-onnx", "train", "train-metrics", "train-checkpoint"])
def test_every_existing_output_needs_force(files, tmp_path, command):
    model, bundle = files
    out = tmp_path / "out.x"
    existing = {"train-metrics": tmp_path / "out.metrics.json",
                "train-checkpoint": tmp_path / "out.ckpt"}.get(command, out)
    existing.write_bytes(b"precious")
    refused(WRITERS[command.split("-")[0] if command.startswith("train") else command](model, bundle, out),
            str(existing), "--force", watch=(tmp_path,))


# ------------------------------------------------------------------------- crafted, damaged, escaping bundles


MANIFEST_EDITS = {
    "T-string": (lambda d: d.update(T="4"), "T is '4'"),
    "T-negative": (lambda d: d.update(T=-1), "T is -1"),
    "T-absurd": (lambda d: d.update(T=10**12), "not an integer in 1..100000"),
    "target-number": (lambda d: d.update(target=5), "target is a int"),
    "files-list": (lambda d: d.update(files=[NETWORK_FILE]), "'files' must map"),
    "files-no-network": (lambda d: d.update(files={}), "'files' must map"),
    "digest-garbage": (lambda d: d["files"].update({NETWORK_FILE: "zz"}), "not a sha256"),
    "path-escape": (lambda d: d["files"].update({"../secret": "0" * 64}), "lies outside the bundle"),
    "path-absolute": (lambda d: d["files"].update({"/etc/passwd": "0" * 64}), "lies outside the bundle"),
    "not-an-object": (lambda d: [1, 2], "not an object"),
}
NIR_EDITS = {
    "kernel-shape": (set_meta("patch_embed1.proj_conv", "weight", np.ones((8, 2, 3, 3), np.int8)), "does not fit"),
    "negative-shape": (set_meta("patch_embed1.proj_conv", "shape", np.array([-8, 16, 16])), "not three integers"),
    "absurd-shape": (set_meta("patch_embed1.proj_conv", "shape", np.array([8, 10**9, 16])), "not three integers"),
    "zero-stride": (set_meta("patch_embed1.proj_conv", "stride", np.array([0, 0])), "stride"),
    "kind-unknown": (set_meta("patch_embed1.proj_conv", "kind", "banana"), "unknown snn-deploy kind"),
    "order-garbage": (set_meta("patch_embed1.proj_conv", "order", "first"), "damaged snn-deploy metadata"),
    "weight-strings": (set_meta("patch_embed1.proj_conv", "weight", np.array([b"a", b"b"])), "damaged"),
    "decay-range": (set_meta("patch_embed1.proj_lif", "du", 99999), "du"),
    "edge-mismatch": (set_meta("patch_embed1.proj_lif", "shape", np.array([8, 8, 8])), "differ from its shape"),
    "missing-field": (lambda f: f["node/nodes/patch_embed1.proj_lif/metadata/snn_deploy"].__delitem__("inputs"),
                      "damaged snn-deploy metadata"),
    "T-absurd": (lambda f: (f["node/metadata/snn_deploy"].__delitem__("T"),
                            f["node/metadata/snn_deploy"].create_dataset("T", data=10**9)), "not an integer in 1.."),
    "bomb": (lambda f: f.create_dataset("padding", shape=(2**31,), dtype="f8", chunks=(2**20,), compression="gzip",
                                        fillvalue=0.0), "decompression bomb"),
    "not-hdf5": (None, "not a readable NIR file"),
}


@pytest.mark.parametrize("case", sorted(MANIFEST_EDITS) + [f"nir-{k}" for k in sorted(NIR_EDITS)])
def test_crafted_or_damaged_bundles_are_one_line_before_any_allocation(files, tmp_path, case):
    _, bundle = files
    if case.startswith("nir-"):
        edit, fragment = NIR_EDITS[case[4:]]
        if edit is None:
            path = crafted_bundle(bundle, tmp_path / "c.loihi")
            (path / NETWORK_FILE).write_bytes(b"not hdf5 at all")
            data = json.loads((path / MANIFEST_FILE).read_text())
            data["files"][NETWORK_FILE] = sha256_file(path / NETWORK_FILE)
            (path / MANIFEST_FILE).write_text(json.dumps(data))
        else:
            path = crafted_bundle(bundle, tmp_path / "c.loihi", nir=edit)
    else:
        edit, fragment = MANIFEST_EDITS[case]
        path = crafted_bundle(bundle, tmp_path / "c.loihi", manifest=edit)
    line = refused(["simulate", path, "--dataset", "digits", "--samples", "2"], fragment, watch=(tmp_path,))
    assert "again" in line or "upgrade" in line  # what to do


def test_a_link_leading_out_of_the_bundle_is_refused(files, tmp_path):
    _, bundle = files
    secret = tmp_path / "secret.txt"
    secret.write_text("outside")
    path = crafted_bundle(bundle, tmp_path / "c.loihi",
                          manifest=lambda d: d["files"].update({"notes.txt": sha256_file(secret)}))
    (path / "notes.txt").symlink_to(secret)
    refused(["report", path, "--dataset", "digits", "-o", tmp_path / "r"], "link leading outside", watch=(tmp_path,))


def test_traces_larger_than_their_limit_are_refused_before_the_run(files, tmp_path, monkeypatch):
    from snn_deploy.cli import hardware

    _, bundle = files
    monkeypatch.setattr(hardware, "MAX_TRACE_BYTES", 10_000)  # the real limit (4 GiB), scaled down
    refused(["simulate", bundle, "--dataset", "digits", "--traces", "all", "--traces-out", tmp_path / "t.npz",
             "--trace-samples", "50"], "--traces", "smaller --trace-samples", watch=(tmp_path,))


def test_the_work_a_graph_implies_is_limited_before_any_loop():
    """A valid but gigantic graph (a 1024 x 1024 x 1024 conv) is refused from its shapes alone."""
    weight = np.ones((1024, 1, 3, 3), np.int16)
    nodes = [InputNode("in", (), (1, 1024, 1024)),
             ConvNode("c", ("in",), (1024, 1024, 1024), weight=weight, padding=(1, 1)),
             LIFNode("l", ("c",), (1024, 1024, 1024)),
             ReadoutNode("head", ("l",), (1024, 1024, 1024), weight=np.zeros((2, 1024)), bias=np.zeros(2))]
    with pytest.raises(UserError, match="over the limits"):
        bundle_check.check_graph(Graph(nodes, T=4), "crafted")
    ops, state = bundle_check.work(Graph(nodes, T=4))
    assert ops == 4 * 1024**3 * 9 and state == 4 * (1024**2 + 3 * 1024**3)


# ---------------------------------------------------------------------- bombs, declared sizes, silent corruption


def test_a_zip_bomb_model_file_is_refused_before_inflating(files, tmp_path):
    model, _ = files
    bomb = tmp_path / "bomb.pt"
    with zipfile.ZipFile(model) as src, zipfile.ZipFile(bomb, "w") as dst:
        for item in src.infolist():
            dst.writestr(item, src.read(item))
        dst.writestr("archive/data/999", b"\0" * (64 * 2**20), compress_type=zipfile.ZIP_DEFLATED)
    assert bomb.stat().st_size < 2 * 2**20
    refused(["export", bomb, "-o", tmp_path / "x"], "decompression bomb", watch=(tmp_path,))


@pytest.mark.parametrize("config, message", [(dict(embed_dim=2**16, depth=64), "more than the limit"),
                                             (dict(embed_dim=-32), "invalid configuration"),
                                             (dict(depth="two"), "invalid configuration")])
def test_a_config_declaring_a_huge_or_invalid_model_is_refused_before_allocation(files, tmp_path, config, message):
    model, _ = files
    bad = rewrite_model(model, tmp_path / "bad.pt", lambda r: r["config"].update(config))
    refused(["eval", bad, "--dataset", "digits"], message, watch=(tmp_path,))


def test_a_flipped_bit_in_a_model_file_is_detected(files, tmp_path):
    model, _ = files
    data = bytearray(model.read_bytes())
    with zipfile.ZipFile(model) as archive:
        info = max(archive.infolist(), key=lambda i: i.file_size if "/data/" in i.filename else 0)
    name_length, extra_length = struct.unpack("<HH", data[info.header_offset + 26:info.header_offset + 30])
    start = info.header_offset + 30 + name_length + extra_length
    data[start + info.file_size // 2] ^= 0x10
    flipped = tmp_path / "flipped.pt"
    flipped.write_bytes(bytes(data))
    refused(["export", flipped, "-o", tmp_path / "x"], "sha256", "flipped bit", watch=(tmp_path,))


def _npz(path: Path, arrays: dict[str, tuple[str, tuple[int, ...]]]) -> Path:
    """A deflated npz whose arrays are zeros of the given dtype and shape, streamed (never whole in memory)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for key, (dtype, shape) in arrays.items():
            with archive.open(f"{key}.npy", "w", force_zip64=True) as f:
                np.lib.format.write_array_header_1_0(f, {"descr": dtype, "fortran_order": False, "shape": shape})
                left = int(np.prod(shape)) * np.dtype(dtype).itemsize
                while left:
                    f.write(bytes(min(left, 2**22)))
                    left -= min(left, 2**22)
    return path


def test_npz_bombs_are_refused_from_their_headers_before_reading(tmp_path, monkeypatch):
    from snn_deploy.data import npzframes

    frames = _npz(tmp_path / "frames.npz", {"frames": ("<f4", (400, 2, 128, 128))})  # 52 MB in a tiny file
    assert frames.stat().st_size < 2**20
    with pytest.raises(UserError, match=r"needs \(16, 2, 128, 128\)"):
        npzframes.load_sample(frames, T=16, size=128)
    events = _npz(tmp_path / "events.npz", {k: ("<i8", (2**20,)) for k in "xyp"})
    monkeypatch.setattr(npzframes, "MAX_SAMPLE_BYTES", 16 * 2**20)  # the real limit, scaled down for speed
    with pytest.raises(UserError, match="decompression bomb"):
        npzframes.load_sample(events, T=16, size=128)


# ------------------------------------------------------------------------------------------------- interrupts


def _signal_during(monkeypatch, target, name, signum, swallow=False):
    real = getattr(target, name)

    def interrupted(*args, **kwargs):
        result = real(*args, **kwargs)  # the output is half-way: written to its temporary name
        try:
            os.kill(os.getpid(), signum)
            time.sleep(1)
        except BaseException:
            if not swallow:  # some libraries swallow exceptions raised in their callbacks
                raise
        return result

    monkeypatch.setattr(target, name, interrupted)


@pytest.mark.parametrize("signum, swallow", [(signal.SIGINT, False), (signal.SIGTERM, False), (signal.SIGINT, True)])
@pytest.mark.parametrize("command", ["export-nir", "export", "report"])
def test_interrupts_leave_no_partial_output_and_no_temporary(files, tmp_path, monkeypatch, command, signum, swallow):
    from snn_deploy.exporters.nir import io as nir_io
    from snn_deploy.sims.hardware import report

    model, bundle = files
    if command == "report":
        _signal_during(monkeypatch, report, "report_files", signum, swallow)
    else:
        _signal_during(monkeypatch, nir_io, "write", signum, swallow)
    args = WRITERS[command](model, bundle, tmp_path / "out")
    if command == "report":
        args += ["--samples", "2"]
    line = refused(args, "interrupted", "Ctrl-C" if signum == signal.SIGINT else "SIGTERM",
                   watch=(tmp_path,), code=128 + signum)
    assert "no partial output" in line


def test_stale_temporaries_of_killed_runs_are_removed_and_live_ones_kept(files, tmp_path):
    model, _ = files
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    try:
        stale_file = tmp_path / f".out.nir.{dead_pid}.abcd1234.tmp"
        stale_dir = tmp_path / f".out.loihi.{dead_pid}.abcd1234.tmpdir"
        live = tmp_path / f".out.nir.{sleeper.pid}.abcd1234.tmp"
        stale_file.write_bytes(b"half")
        stale_dir.mkdir()
        (stale_dir / NETWORK_FILE).write_bytes(b"half")
        live.write_bytes(b"another run, still writing")
        assert invoke("export", model, "--target", "nir", "-o", tmp_path / "out.nir")[0] == 0
        assert invoke("export", model, "-o", tmp_path / "out.loihi")[0] == 0
        assert not stale_file.exists() and not stale_dir.exists() and live.exists()
    finally:
        sleeper.kill()
        sleeper.wait()


# ------------------------------------------------------------------------------------ faults lose nothing


def test_kill_9_during_training_then_resume_gives_the_uninterrupted_model(tmp_path):
    args = [*TRAIN, "--epochs", "2"]
    assert invoke("train", *args, "-o", tmp_path / "straight.pt")[0] == 0
    out = tmp_path / "killed.pt"
    run = subprocess.Popen([EXE, "train", *args, "-o", str(out)], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not out.with_suffix(".ckpt").exists() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    run.send_signal(signal.SIGKILL)
    run.wait()
    assert run.returncode == -signal.SIGKILL
    assert out.with_suffix(".ckpt").exists() and not out.exists()
    status, _, err = invoke("train", *args, "-o", out, "--resume")
    assert status == 0, err
    assert out.read_bytes() == (tmp_path / "straight.pt").read_bytes()
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_full_disk_during_a_checkpoint_write_keeps_the_previous_checkpoint(tmp_path):
    from snn_deploy.training.checkpoint import save_checkpoint

    if os.geteuid() != 0:
        pytest.skip("mounting a tiny tmpfs (a disk that fills up) needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)],
                      capture_output=True).returncode != 0:
        pytest.skip("no permission to mount a tmpfs in this container")
    try:
        path = disk / "m.ckpt"
        save_checkpoint(path, {"model": {"w": torch.zeros(10_000)}})  # 40 kB
        before = path.read_bytes()
        with pytest.raises(UserError, match="cannot write .*m.ckpt.*No space left on device.*free space"):
            save_checkpoint(path, {"model": {"w": torch.zeros(100_000)}})  # 400 kB: the disk fills
        assert path.read_bytes() == before and sorted(p.name for p in disk.iterdir()) == ["m.ckpt"]
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_two_concurrent_exports_to_the_same_output_end_with_one_complete_bundle(files, tmp_path):
    model, _ = files
    out = tmp_path / "same.loihi"
    runs = [subprocess.Popen([EXE, "export", str(model), "-o", str(out), "--force"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(r.communicate(timeout=300)[1], r.returncode) for r in runs]
    assert all(code == 0 for _, code in results), results
    loaded = load_bundle(out)  # every hash checks: one bundle, not a mix
    assert loaded.manifest["arch"] == "qkformer-tiny"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["same.loihi"]


def test_identical_inputs_give_byte_identical_artifacts(files, tmp_path):
    from snn_deploy.exporters.formats.netx import to_netx
    from test_netx_export import conv_chain

    model, bundle = files
    for run in ("1", "2"):
        (tmp_path / run).mkdir()
        for name, extra in (("b.loihi", []), ("n.nir", ["--target", "nir"]), ("o.onnx", ["--target", "onnx"])):
            assert invoke("export", model, *extra, "-o", tmp_path / run / name)[0] == 0
        assert invoke("report", bundle, "--dataset", "digits", "--samples", "4", "-o", tmp_path / run / "r")[0] == 0
        to_netx(conv_chain(np.random.default_rng(0)), tmp_path / run / "chain.net")  # the zoo is not a netx chain
    for path in sorted((tmp_path / "1").rglob("*")):
        other = tmp_path / "2" / path.relative_to(tmp_path / "1")
        if path.name == "report.json":  # wall-clock throughput is measured, not derived from the inputs
            a, b = (json.loads(p.read_text()) for p in (path, other))
            for record in (a["run"], b["run"]):
                for key in [k for k in record if k.endswith(("seconds", "_per_s", "wall_s"))]:
                    record.pop(key)
            assert a == b
        elif path.is_file() and path.suffix != ".html":
            assert path.read_bytes() == other.read_bytes(), path


# --------------------------------------------------------------------------------- no hangs: Lava workers


@pytest.mark.lava
@pytest.mark.parametrize("behaviour", ["crash", "hang"])
def test_a_lava_worker_that_crashes_or_hangs_ends_the_run_with_one_error(monkeypatch, behaviour):
    from lava.proc.io.extractor import PyLoihiExtractorModel

    from snn_deploy.sims.backends import lava_build
    from snn_deploy.graph import input_sequence
    from test_lava_build import residual_and_graph

    def broken(self):
        if behaviour == "hang":
            time.sleep(3600)
        os._exit(3)

    monkeypatch.setattr(PyLoihiExtractorModel, "run_spk", broken)  # the workers are forked: they inherit it
    graph = residual_and_graph()
    payload = input_sequence(graph, torch.rand(1, *graph.input.shape, generator=torch.Generator().manual_seed(0)))
    timeout = 4 if behaviour == "hang" else 120  # a crash is seen within a second, however slow the machine
    start = time.monotonic()
    with pytest.raises(UserError, match="Lava stopped answering") as info:
        lava_build.run(graph, payload, progress=lambda done, total: None, timeout_s=timeout)
    assert time.monotonic() - start < 60
    assert ("ended with status 3" if behaviour == "crash" else "no answer for 4 s") in str(info.value)


# --------------------------------------------------------------------------- checkpoint import as users hit it


def _official(tmp_path: Path, *, drop_counters=False, ema=False, arch="qkformer-tiny") -> Path:
    state = {f"module.{k}": v for k, v in active_model(arch, mode="float").state_dict().items()
             if not (drop_counters and k.endswith("num_batches_tracked"))}
    record = {"state_dict": state, "epoch": 3}
    if ema:
        record["state_dict_ema"] = {k: v + 1 if v.is_floating_point() else v for k, v in state.items()}
    path = tmp_path / "official.pth.tar"
    torch.save(record, path)
    return path


def test_import_accepts_checkpoints_without_batchnorm_counters(tmp_path):
    status, out, err = invoke("import", _official(tmp_path, drop_counters=True), "--arch", "qkformer-tiny",
                              "-o", tmp_path / "m.pt")
    assert status == 0, err


def test_import_chooses_the_ema_weights_and_says_which_copy(tmp_path):
    ckpt = _official(tmp_path, ema=True)
    status, out, _ = invoke("import", ckpt, "--arch", "qkformer-tiny", "-o", tmp_path / "plain.pt")
    assert status == 0 and "--ema imports those" in out
    status, out, _ = invoke("import", ckpt, "--arch", "qkformer-tiny", "-o", tmp_path / "ema.pt", "--ema")
    assert status == 0 and "EMA copy" in out
    from snn_deploy.modelfile import load_model
    plain, ema = (load_model(tmp_path / n).model.state_dict() for n in ("plain.pt", "ema.pt"))
    assert torch.equal(ema["head.bias"], plain["head.bias"] + 1)
    refused(["import", _official(tmp_path), "--arch", "qkformer-tiny", "-o", tmp_path / "x.pt", "--ema"],
            "no EMA weights", "without --ema", watch=(tmp_path,))


def test_a_mismatched_checkpoint_names_the_architecture_it_looks_like(tmp_path):
    line = refused(["import", _official(tmp_path, arch="spikformer-tiny"), "--arch", "qkformer-tiny", "-o",
                    tmp_path / "x.pt"], "looks like spikformer-tiny", "spikformer model", watch=(tmp_path,))
    assert "check --model" in line
