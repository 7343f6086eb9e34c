"""Loaders: *_dataset_from_directory, timeseries windows, get_file (local and file:// only,
safe extraction), keras.datasets from the cache, split_dataset. Never reaches the network."""
import gzip
import io
import os
import struct
import tarfile
import wave
import zipfile

import numpy as np
import pytest

from kgraph import keras
from kgraph.datasets.keras_datasets import DatasetNotFoundError
from kgraph.keras.utils.dataset_utils import FileDecodeError
from kgraph.keras.utils.file_utils import ArchiveError, FileHashError, hash_file

PIL = pytest.importorskip("PIL.Image")


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("KGRAPH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KGRAPH_OFFLINE", "1")
    return tmp_path / "home"


def _images(root, counts=(3, 2), size=(10, 6)):
    for c, n in enumerate(counts):
        folder = root / f"class_{'ab'[c]}"
        folder.mkdir(parents=True)
        for i in range(n):
            pixels = np.full(size + (3,), 40 * c + i, np.uint8)
            PIL.fromarray(pixels).save(folder / f"{i}.png")
    return root


def test_image_dataset_labels_sizes_split_and_modes(tmp_path):
    root = _images(tmp_path / "imgs")
    ds = keras.utils.image_dataset_from_directory(root, image_size=(4, 5), batch_size=2,
                                                  shuffle=False)
    assert ds.class_names == ["class_a", "class_b"]
    batches = list(ds)
    images = np.concatenate([b[0] for b in batches])
    labels = np.concatenate([b[1] for b in batches])
    assert images.shape == (5, 4, 5, 3) and images.dtype == np.float32
    assert labels.tolist() == [0, 0, 0, 1, 1]
    # Pixel values survive decoding (flat colour images resize to the same colour).
    assert [float(im[0, 0, 0]) for im in images] == [0, 1, 2, 40, 41]
    gray = keras.utils.image_dataset_from_directory(root, image_size=(3, 3), color_mode=
                                                    "grayscale", label_mode="categorical",
                                                    batch_size=8, shuffle=False)
    x, y = next(iter(gray))
    assert x.shape == (5, 3, 3, 1) and y.shape == (5, 2) and y[4].tolist() == [0, 1]
    cropped = keras.utils.image_dataset_from_directory(root, image_size=(2, 2), batch_size=8,
                                                       crop_to_aspect_ratio=True, seed=1)
    assert next(iter(cropped))[0].shape == (5, 2, 2, 3)
    train, val = keras.utils.image_dataset_from_directory(
        root, image_size=(2, 2), validation_split=0.4, subset="both", seed=7)
    assert set(train.file_paths).isdisjoint(val.file_paths)
    assert len(train.file_paths) == 3 and len(val.file_paths) == 2
    again = keras.utils.image_dataset_from_directory(root, image_size=(2, 2),
                                                     validation_split=0.4,
                                                     subset="validation", seed=7)
    assert again.file_paths == val.file_paths
    with pytest.raises(ValueError, match="seed"):
        keras.utils.image_dataset_from_directory(root, validation_split=0.2, subset="training")


def test_image_dataset_trains_and_names_broken_files(tmp_path):
    root = _images(tmp_path / "imgs")
    ds = keras.utils.image_dataset_from_directory(root, image_size=(4, 4), batch_size=2)
    model = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Flatten(),
                              keras.layers.Dense(2)])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    assert len(model.fit(ds, epochs=2, verbose=0).history["loss"]) == 2
    (root / "class_a" / "broken.png").write_bytes(b"not a png")
    ds = keras.utils.image_dataset_from_directory(root, image_size=(4, 4), shuffle=False)
    with pytest.raises(FileDecodeError, match="broken.png"):
        list(ds)


def test_text_and_audio_datasets(tmp_path):
    for c, words in enumerate([["good", "fine"], ["bad"]]):
        folder = tmp_path / "text" / ("pos", "neg")[c]
        folder.mkdir(parents=True)
        for i, w in enumerate(words):
            (folder / f"{i}.txt").write_text(w)
    ds = keras.utils.text_dataset_from_directory(tmp_path / "text", shuffle=False, batch_size=8)
    texts, labels = next(iter(ds))
    assert ds.class_names == ["neg", "pos"]
    assert texts.tolist() == [b"bad", b"good", b"fine"] and labels.tolist() == [0, 1, 1]

    for c, lengths in enumerate([[5, 8], [3]]):
        folder = tmp_path / "audio" / f"c{c}"
        folder.mkdir(parents=True)
        for i, n in enumerate(lengths):
            with wave.open(str(folder / f"{i}.wav"), "wb") as w:
                w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000)
                w.writeframes((np.arange(n, dtype=np.int16) * 1000).tobytes())
    audio = keras.utils.audio_dataset_from_directory(tmp_path / "audio", shuffle=False)
    clips, labels = next(iter(audio))
    assert clips.shape == (3, 8, 1) and labels.tolist() == [0, 0, 1]
    np.testing.assert_allclose(clips[0, :5, 0], np.arange(5) * 1000 / 32767, rtol=1e-6)
    assert clips[0, 5:, 0].tolist() == [0, 0, 0]
    fixed = keras.utils.audio_dataset_from_directory(tmp_path / "audio",
                                                     output_sequence_length=4)
    assert next(iter(fixed))[0].shape == (3, 4, 1)


def test_timeseries_windows_match_a_python_reference():
    data, targets = np.arange(100).reshape(50, 2), np.arange(50) * 10
    ds = keras.utils.timeseries_dataset_from_array(data, targets, sequence_length=4,
                                                   sequence_stride=3, sampling_rate=2,
                                                   batch_size=5, start_index=2, end_index=40)
    xs = np.concatenate([x for x, _ in ds])
    ys = np.concatenate([y for _, y in ds])
    starts = list(range(2, 40 - 7 + 1, 3))
    np.testing.assert_array_equal(xs, [[data[s + 2 * k] for k in range(4)] for s in starts])
    np.testing.assert_array_equal(ys, [targets[s] for s in starts])
    shuffled = keras.utils.timeseries_dataset_from_array(data, None, 4, shuffle=True, seed=0,
                                                         batch_size=None)
    assert sorted(int(w[0, 0]) for w in shuffled) == [2 * s for s in range(47)]


def test_split_dataset_and_packing():
    x, y = np.arange(10), np.arange(10) * 2
    left, right = keras.utils.split_dataset((x, y), left_size=0.7)
    assert [int(a) for a, _ in left] == list(range(7)) and len(list(right)) == 3
    a, b = keras.utils.split_dataset(keras.utils.split_dataset(x, right_size=4)[0],
                                     left_size=2, shuffle=True, seed=1)
    assert len(list(a)) == 2 and len(list(b)) == 4
    assert keras.utils.pack_x_y_sample_weight(1, 2) == (1, 2)
    assert keras.utils.unpack_x_y_sample_weight((1,)) == (1, None, None)


def test_get_file_local_file_url_hash_and_cache(home, tmp_path):
    source = tmp_path / "blob.bin"
    source.write_bytes(b"payload")
    digest = hash_file(source)
    path = keras.utils.get_file(origin=source.as_uri(), file_hash=digest)
    assert path == str(home / "datasets" / "blob.bin") and open(path, "rb").read() == b"payload"
    source.write_bytes(b"changed")  # cached: not fetched again
    assert open(keras.utils.get_file("blob.bin", str(source)), "rb").read() == b"payload"
    with pytest.raises(FileHashError, match="blob2"):
        keras.utils.get_file("blob2.bin", str(source), file_hash=digest)
    assert not (home / "datasets" / "blob2.bin").exists()
    with pytest.raises(FileNotFoundError, match="missing"):
        keras.utils.get_file(origin=str(tmp_path / "missing"))
    # unreachable (a closed port on this machine): the message names where to put the file
    place = str(home / "datasets" / "volumes.npz")
    with pytest.raises(ConnectionError, match=f"place the file at '{place}'"):
        keras.utils.get_file(origin="http://127.0.0.1:9/files/volumes.npz?download=1")


def _tar(path, members):
    with tarfile.open(path, "w:gz") as archive:
        for info, data in members:
            archive.addfile(info, io.BytesIO(data) if data is not None else None)


def test_get_file_extracts_and_refuses_escapes(home, tmp_path):
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w") as z:
        z.writestr("data/a.txt", "A")
    out = keras.utils.get_file(origin=str(good), extract=True)
    assert open(os.path.join(out, "data", "a.txt")).read() == "A"

    evil_zip = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil_zip, "w") as z:
        z.writestr("../escaped.txt", "x")
    with pytest.raises(ArchiveError, match="escaped"):
        keras.utils.get_file(origin=str(evil_zip), extract=True)
    assert not (home / "escaped.txt").exists()

    for name, make in {
        "dots": lambda: [(tarfile.TarInfo("../../dots.txt"), b"")],
        "link": lambda: [(_link("ln", "/etc/passwd"), None)],
        "relink": lambda: [(_link("d/ln", "../../outside"), None)],
    }.items():
        archive = tmp_path / f"{name}.tar.gz"
        _tar(archive, make())
        with pytest.raises(ArchiveError, match="outside"):
            keras.utils.get_file(origin=str(archive), extract=True)
    assert not list((home / "datasets").glob("dots*")) or \
        not (home / "datasets" / "dots").exists()


def _link(name, target):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info


# -- keras.datasets: each loader reads fake files in the standard formats from the cache --------
def _objects(sequences):
    out = np.empty(len(sequences), dtype=object)
    out[:] = sequences
    return out


def _fake_mnist(cache, rng):
    arrays = {"x_train": rng.integers(0, 255, (6, 28, 28), dtype=np.uint8),
              "y_train": np.arange(6), "x_test": np.zeros((2, 28, 28), np.uint8),
              "y_test": np.arange(2)}
    np.savez(cache / "mnist.npz", **arrays)

    def check(data):
        (xt, yt), (xv, yv) = data
        np.testing.assert_array_equal(xt, arrays["x_train"])
        assert yt.tolist() == list(range(6)) and xv.shape == (2, 28, 28) and yv.tolist() == [0, 1]
    return check


def _fake_fashion_mnist(cache, rng):
    (cache / "fashion-mnist").mkdir()
    parts = []
    for prefix, n in (("train", 5), ("t10k", 3)):  # gzipped IDX files: big-endian header
        images = rng.integers(0, 255, (n, 28, 28), dtype=np.uint8)
        labels = np.arange(n, dtype=np.uint8)[::-1].copy()
        with gzip.open(cache / "fashion-mnist" / f"{prefix}-labels-idx1-ubyte.gz", "wb") as f:
            f.write(struct.pack(">II", 2049, n) + labels.tobytes())
        with gzip.open(cache / "fashion-mnist" / f"{prefix}-images-idx3-ubyte.gz", "wb") as f:
            f.write(struct.pack(">IIII", 2051, n, 28, 28) + images.tobytes())
        parts.append((images, labels))

    def check(data):
        for (x, y), (images, labels) in zip(data, parts):
            np.testing.assert_array_equal(x, images)
            assert y.tolist() == labels.tolist()
    return check


def _cifar_archive(path, folder, names, labels):
    """A CIFAR binary release: records of label byte(s) then 3072 channel-major pixels."""
    records = b"".join(bytes(label) + bytes(range(256)) * 12 for label in labels)
    with tarfile.open(path, "w:gz") as archive:
        for name in names:
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size = len(records)
            archive.addfile(info, io.BytesIO(records))


def _check_cifar_pixels(x):
    assert x.shape[1:] == (32, 32, 3)  # HWC, from the channel-major records
    assert x[0, 0, 0].tolist() == [0, 0, 0] and x[0, 0, 1].tolist() == [1, 1, 1]


def _fake_cifar10(cache, rng):
    _cifar_archive(cache / "cifar-10-binary.tar.gz", "cifar-10-batches-bin",
                   [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"],
                   [[i] for i in range(4)])

    def check(data):
        (cx, cy), (ex, ey) = data
        assert len(cx) == 20 and cy[:4, 0].tolist() == [0, 1, 2, 3] and len(ex) == 4
        _check_cifar_pixels(cx)
        _check_cifar_pixels(ex)
    return check


def _fake_cifar100(label_mode):
    def fake(cache, rng):
        _cifar_archive(cache / "cifar-100-binary.tar.gz", "cifar-100-binary",
                       ["train.bin", "test.bin"], [[i, 50 + i] for i in range(3)])  # coarse, fine

        def check(data):
            (cx, cy), (ex, ey) = data
            first = 50 if label_mode == "fine" else 0
            assert cy[:, 0].tolist() == ey[:, 0].tolist() == [first, first + 1, first + 2]
            _check_cifar_pixels(cx)
        return check
    return fake


def _check_sequences(data, splits, order_of):
    """Each sequence is its source shifted by index_from=3 after start_char=1, its label the
    index of its source; `order_of(split)` is the order Keras' seeded shuffle gives."""
    for (x, y), source, order in zip(data, splits, map(order_of, range(len(splits)))):
        assert y.tolist() == order
        for s, label in zip(x, y):
            assert s[0] == 1 and [w - 3 for w in s[1:]] == list(source[label])


def _fake_imdb(cache, rng):
    splits = [[[1, 2], [3], [4, 5, 6], [7]], [[8, 9], [10]]]
    np.savez(cache / "imdb.npz", x_train=_objects(splits[0]), y_train=np.arange(4),
             x_test=_objects(splits[1]), y_test=np.arange(2))
    shuffle = np.random.RandomState(113)  # one generator for both splits, as Keras
    orders = [shuffle.permutation(len(split)).tolist() for split in splits]
    return lambda data: _check_sequences(data, splits, orders.__getitem__)


def _fake_reuters(cache, rng):
    sequences = [[1, 2], [3], [4, 5, 6]]
    np.savez(cache / "reuters.npz", x=_objects(sequences), y=np.arange(3))
    order = np.random.RandomState(113).permutation(3).tolist()  # Keras' split: 2 train, 1 test
    return lambda data: _check_sequences(data, [sequences] * 2,
                                         lambda split: order[:2] if split == 0 else order[2:])


def _fake_housing(fname, features):
    def fake(cache, rng):
        x, y = rng.random((20, features)), rng.random(20)
        np.savez(cache / fname, x=x, y=y)
        order = np.random.RandomState(113).permutation(20)  # Keras' split: 80% train

        def check(data):
            (bx, by), (tx, ty) = data
            np.testing.assert_array_equal(bx, x[order][:16])
            np.testing.assert_array_equal(ty, y[order][16:])
        return check
    return fake


KERAS_DATASETS = [  # module, load_data arguments, the file it reads first, fake files + check
    ("mnist", {}, "mnist.npz", _fake_mnist),
    ("fashion_mnist", {}, "fashion-mnist/train-labels-idx1-ubyte.gz", _fake_fashion_mnist),
    ("cifar10", {}, "cifar-10-binary.tar.gz", _fake_cifar10),
    ("cifar100", {"label_mode": "fine"}, "cifar-100-binary.tar.gz", _fake_cifar100("fine")),
    ("cifar100", {"label_mode": "coarse"}, "cifar-100-binary.tar.gz", _fake_cifar100("coarse")),
    ("imdb", {}, "imdb.npz", _fake_imdb),
    ("reuters", {"test_split": 1 / 3}, "reuters.npz", _fake_reuters),
    ("boston_housing", {}, "boston_housing.npz", _fake_housing("boston_housing.npz", 13)),
    ("california_housing", {}, "california_housing.npz",
     _fake_housing("california_housing.npz", 8)),
]


@pytest.mark.parametrize("name, kwargs, fname, fake", KERAS_DATASETS,
                         ids=[f"{row[0]}-{row[1].get('label_mode', '')}".rstrip("-")
                              for row in KERAS_DATASETS])
def test_keras_datasets_read_the_cache_or_name_the_file(home, name, kwargs, fname, fake):
    load_data = getattr(keras.datasets, name).load_data
    cache = home / "datasets"
    with pytest.raises(DatasetNotFoundError) as info:  # offline, empty cache
        load_data(**kwargs)
    assert str(info.value).startswith(f"{fname} is not in the dataset cache")
    assert f"place it at {str(cache / fname)!r}" in str(info.value)
    cache.mkdir(parents=True, exist_ok=True)
    check = fake(cache, np.random.default_rng(0))
    check(load_data(**kwargs))


def test_keras_preprocessing_names_the_faq_uses():
    import kgraph as tf

    assert tf.keras.preprocessing.image_dataset_from_directory is \
        tf.keras.utils.image_dataset_from_directory
    assert tf.keras.preprocessing.timeseries_dataset_from_array is \
        tf.keras.utils.timeseries_dataset_from_array
