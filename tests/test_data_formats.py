"""On-disk data sets read from small files written in their published formats, and damaged files refused."""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from dataformats import aedat2_bytes, write_cifar10, write_dvs_gesture, write_image_tree, write_npz_tree
from snn_deploy.data import open_splits
from snn_deploy.data.events import Events, frames_by_number
from snn_deploy.errors import UserError


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message and message
    return message


# --- CIFAR -----------------------------------------------------------------------------------------------------

def test_cifar10_batches_load_exactly(tmp_path):
    written = write_cifar10(tmp_path / "cifar-10-batches-py", per_batch=6, rng=np.random.default_rng(0))
    splits = open_splits("cifar10", size=32, T=4, data_dir=tmp_path)
    assert len(splits.train) == 30 and len(splits.test) == 6
    assert splits.train.classes[0] == "airplane" and len(splits.train.classes) == 10
    first = written["data_batch_1"][0].reshape(3, 32, 32)
    x = splits.train.sample(0, None)
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32
    red = x[0] * 0.2470 + 0.4914  # undo the normalisation of channel 0
    assert torch.allclose(red * 255, torch.from_numpy(first[0]).float(), atol=1e-3)
    augmented = splits.train.sample(0, np.random.default_rng(1))
    assert augmented.shape == x.shape


def test_data_dir_may_be_the_dataset_folder_itself(tmp_path):
    write_cifar10(tmp_path / "cifar-10-batches-py", per_batch=2, rng=np.random.default_rng(0))
    assert len(open_splits("cifar10", size=32, T=4, data_dir=tmp_path / "cifar-10-batches-py").test) == 2


def test_missing_dataset_names_layout_and_options(tmp_path):
    with pytest.raises(UserError) as exc:
        open_splits("cifar10", size=32, T=4, data_dir=tmp_path)
    message = one_line(exc)
    assert "cifar-10-batches-py" in message and "--data-dir" in message and "SNN_DEPLOY_DATA" in message


def test_pickle_with_code_is_refused_without_running_it(tmp_path, pickled_code):
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar10(folder, per_batch=2, rng=np.random.default_rng(0))
    (folder / "data_batch_3").write_bytes(pickle.dumps({b"data": pickled_code.payload}, protocol=2))
    with pytest.raises(UserError) as exc:
        open_splits("cifar10", size=32, T=4, data_dir=tmp_path)
    assert "refusing" in one_line(exc) and "system" in str(exc.value)
    assert not pickled_code.ran


@pytest.mark.parametrize("damage", ["truncate", "wrong_shape", "bad_labels", "not_a_dict"])
def test_damaged_cifar_batches_are_one_clear_error(tmp_path, damage):
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar10(folder, per_batch=4, rng=np.random.default_rng(0))
    target = folder / "test_batch"
    if damage == "truncate":
        target.write_bytes(target.read_bytes()[:500])
    elif damage == "wrong_shape":
        target.write_bytes(pickle.dumps({b"data": np.zeros((4, 100), np.uint8), b"labels": [0] * 4}, protocol=2))
    elif damage == "bad_labels":
        target.write_bytes(pickle.dumps({b"data": np.zeros((4, 3072), np.uint8), b"labels": [0, 1, 2, 99]},
                                        protocol=2))
    else:
        target.write_bytes(pickle.dumps([1, 2, 3], protocol=2))
    with pytest.raises(UserError) as exc:
        open_splits("cifar10", size=32, T=4, data_dir=tmp_path)
    assert str(target) in one_line(exc)


# --- ImageFolder -----------------------------------------------------------------------------------------------

def test_imagefolder_tree(tmp_path):
    write_image_tree(tmp_path / "imagefolder", ["cat", "dog", "emu"], per_class=3, rng=np.random.default_rng(0))
    splits = open_splits("imagefolder", size=16, T=4, data_dir=tmp_path)
    assert splits.train.classes == ("cat", "dog", "emu") and len(splits.train) == 9 and len(splits.test) == 9
    assert splits.train.labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    centre = splits.test.sample(4, None)
    assert centre.shape == (3, 16, 16) and torch.isfinite(centre).all()
    assert torch.equal(centre, splits.test.sample(4, None))
    a, b = (splits.train.sample(4, np.random.default_rng(7)) for _ in range(2))
    assert a.shape == (3, 16, 16) and torch.equal(a, b)


def test_unreadable_image_is_one_error_naming_it(tmp_path):
    root = tmp_path / "imagefolder"
    write_image_tree(root, ["a", "b"], per_class=1, rng=np.random.default_rng(0))
    bad = root / "train" / "b" / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    splits = open_splits("imagefolder", size=8, T=4, data_dir=tmp_path)
    index = [str(f) for f in sorted((root / "train" / "b").iterdir())].index(str(bad)) + 1
    with pytest.raises(UserError) as exc:
        splits.train.sample(index, None)
    assert "broken.jpg" in one_line(exc)


# --- events ----------------------------------------------------------------------------------------------------

def test_frames_by_event_number_match_hand_count():
    x = np.array([0, 1, 1, 2, 0, 0, 3])
    y = np.array([0, 0, 0, 1, 1, 1, 2])
    p = np.array([1, 0, 1, 1, 0, 0, 1])
    frames = frames_by_number(Events(x, y, p, np.arange(7)), 3, 3, 4, "test")
    assert frames.shape == (3, 2, 3, 4)
    # 7 events in 3 frames: 2, 2 and the remaining 3
    assert frames[0, 1, 0, 0] == 1 and frames[0, 0, 0, 1] == 1
    assert frames[1, 1, 0, 1] == 1 and frames[1, 1, 1, 2] == 1
    assert frames[2, 0, 1, 0] == 2 and frames[2, 1, 2, 3] == 1
    assert frames.sum() == 7


def test_dvs128_gesture_from_aedat_and_csv(tmp_path):
    written = write_dvs_gesture(tmp_path / "DvsGesture", np.random.default_rng(0))
    splits = open_splits("dvs128-gesture", size=128, T=4, data_dir=tmp_path)
    assert len(splits.train) == 3 and len(splits.test) == 3
    assert splits.train.labels.tolist() == [0, 4, 10] and len(splits.train.classes) == 11
    x, y, p, t = written["train_events"]
    for i, (label, rows) in enumerate(written["train"]):
        expected = frames_by_number(Events(x[rows], y[rows], p[rows], t[rows]), 4, 128, 128, "expected")
        assert torch.equal(splits.train.sample(i, None), torch.from_numpy(expected))


def test_truncated_aedat3_is_one_clear_error(tmp_path):
    folder = tmp_path / "DvsGesture"
    write_dvs_gesture(folder, np.random.default_rng(0))
    recording = folder / "user01_fluorescent.aedat"
    recording.write_bytes(recording.read_bytes()[:-13])
    with pytest.raises(UserError) as exc:
        open_splits("dvs128-gesture", size=128, T=4, data_dir=tmp_path)
    assert "truncated" in one_line(exc) and "user01_fluorescent.aedat" in str(exc.value)


def _write_cifar10dvs(root: Path, per_class: int, rng: np.random.Generator) -> dict[tuple[str, int], tuple]:
    from snn_deploy.data.cifar10dvs import CLASSES

    raw = {}
    for c in CLASSES:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            n = 200
            x, y, p = rng.integers(0, 128, n), rng.integers(0, 128, n), rng.integers(0, 2, n)
            t = np.sort(rng.integers(0, 10**6, n))
            (root / c / f"cifar10_{c}_{i}.aedat").write_bytes(aedat2_bytes(x, y, p, t))
            raw[(c, i)] = (x, y, p, t)
    return raw


def test_cifar10_dvs_from_aedat2_with_spikingjelly_orientation(tmp_path):
    raw = _write_cifar10dvs(tmp_path / "CIFAR10-DVS", per_class=10, rng=np.random.default_rng(0))
    splits = open_splits("cifar10-dvs", size=128, T=2, data_dir=tmp_path)
    assert len(splits.train) == 90 and len(splits.test) == 10
    # natural order: files 0..8 train, 9 test; the first test sample is airplane #9
    x, y, p, t = raw[("airplane", 9)]
    expected = frames_by_number(Events(127 - y, x, 1 - p, t), 2, 128, 128, "expected")
    assert torch.equal(splits.test.sample(0, None), torch.from_numpy(expected))


def test_truncated_aedat2_is_one_clear_error(tmp_path):
    _write_cifar10dvs(tmp_path / "CIFAR10-DVS", per_class=10, rng=np.random.default_rng(0))
    bad = tmp_path / "CIFAR10-DVS" / "cat" / "cifar10_cat_9.aedat"
    bad.write_bytes(bad.read_bytes()[:-3])
    splits = open_splits("cifar10-dvs", size=128, T=2, data_dir=tmp_path)
    index = [i for i, lab in enumerate(splits.test.labels.tolist()) if lab == 3][0]
    with pytest.raises(UserError) as exc:
        splits.test.sample(index, None)
    assert "truncated" in one_line(exc)


def test_npz_frame_tree(tmp_path):
    write_npz_tree(tmp_path / "DvsGesture", [str(i) for i in range(11)], per_class=2, T=3, size=128,
                   rng=np.random.default_rng(0))
    splits = open_splits("dvs128-gesture", size=128, T=3, data_dir=tmp_path)
    assert len(splits.train) == 22 and splits.train.classes[:3] == ("0", "1", "2")
    stored = np.load(tmp_path / "DvsGesture" / "train" / "0" / "1.npz")["frames"]
    assert torch.equal(splits.train.sample(1, None), torch.from_numpy(stored))
    with pytest.raises(UserError) as exc:
        open_splits("dvs128-gesture", size=128, T=5, data_dir=tmp_path).train.sample(0, None)
    assert "--time-steps 3" in one_line(exc)


def test_npz_events_are_integrated(tmp_path):
    from snn_deploy.data.npzframes import load_sample

    path = tmp_path / "sample.npz"
    x, y, p = np.array([1, 2, 3, 3]), np.array([0, 0, 1, 1]), np.array([1, 0, 1, 1])
    np.savez(path, t=np.arange(4), x=x, y=y, p=p)
    frames = load_sample(path, T=2, size=4)
    assert frames.shape == (2, 2, 4, 4) and frames[1, 1, 1, 3] == 2 and frames.sum() == 4


def _lying_npz(path: Path) -> None:
    """An npz whose 'frames' header declares far more data than the member holds."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<f4", "fortran_order": False, "shape": (16, 2, 128, 128)})
    buffer.write(b"\x00" * 64)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("frames.npy", buffer.getvalue())


@pytest.mark.parametrize("damage", ["lying_header", "not_zip", "object_array"])
def test_damaged_npz_is_one_clear_error(tmp_path, damage):
    from snn_deploy.data.npzframes import load_sample

    path = tmp_path / "bad.npz"
    if damage == "lying_header":
        _lying_npz(path)
    elif damage == "not_zip":
        path.write_bytes(b"garbage")
    else:
        np.savez(path, frames=np.array([{"a": 1}], dtype=object))
    with pytest.raises(UserError) as exc:
        load_sample(path, T=16, size=128)
    assert "bad.npz" in one_line(exc)
