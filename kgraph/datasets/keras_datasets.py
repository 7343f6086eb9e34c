"""`keras.datasets`: the standard files, read from `$KGRAPH_HOME/datasets`.

Each loader looks for the file Keras downloads (the same name and content) in the cache; when
it is missing it is fetched from its usual origin, unless `KGRAPH_OFFLINE=1` or the network is
unreachable, in which case `DatasetNotFoundError` names the exact file to place there. Nothing
is unpickled: CIFAR is read from its binary release, and the object arrays of imdb/reuters
through an unpickler that admits numpy arrays of Python lists only."""
from __future__ import annotations

import gzip
import io
import os
import pickle
import tarfile
import zipfile

import numpy as np

_KERAS = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"


class DatasetNotFoundError(FileNotFoundError):
    """A `keras.datasets` file that is not in the cache and could not be fetched."""


def cached_file(fname, origin):
    """The path of `fname` in `$KGRAPH_HOME/datasets`, fetched from `origin` if allowed."""
    from kgraph.keras.utils.file_utils import cache_dir, get_file

    path = os.path.join(cache_dir(), fname)
    if os.path.exists(path):
        return path
    if os.environ.get("KGRAPH_OFFLINE", "0") not in ("", "0"):
        reason = "KGRAPH_OFFLINE is set"
    else:
        try:
            return get_file(fname, origin)
        except (ConnectionError, OSError) as error:
            reason = str(error)
    raise DatasetNotFoundError(f"{fname} is not in the dataset cache ({reason}). Download "
                               f"{origin} and place it at {path!r}.")


class _ListArrays(pickle.Unpickler):
    """Object arrays of lists (imdb/reuters sequences): numpy's array reconstruction only."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray",
                                                            "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused to load {module}.{name} from a dataset file")


def _load_npz(path, keys):
    out = {}
    with zipfile.ZipFile(path) as archive:
        for key in keys:
            with archive.open(key + ".npy") as f:
                data = io.BytesIO(f.read())
            version = np.lib.format.read_magic(data)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0) else
                           np.lib.format.read_array_header_2_0)
            dtype = read_header(data)[2]
            if dtype.hasobject:
                out[key] = _ListArrays(data).load()
            else:
                data.seek(0)
                out[key] = np.load(data, allow_pickle=False)
    return out


def _split(x, y, test_split, seed):
    rng = np.random.RandomState(seed)
    indices = np.arange(len(x))
    rng.shuffle(indices)
    x, y = x[indices], y[indices]
    cut = int(len(x) * (1 - test_split))
    return (np.array(x[:cut]), np.array(y[:cut])), (np.array(x[cut:]), np.array(y[cut:]))


def load_mnist(path="mnist.npz"):
    data = _load_npz(cached_file(path, _KERAS + "mnist.npz"),
                     ["x_train", "y_train", "x_test", "y_test"])
    return (data["x_train"], data["y_train"]), (data["x_test"], data["y_test"])


def load_fashion_mnist():
    def read(name, offset):
        path = cached_file(os.path.join("fashion-mnist", name), _KERAS + "fashion-mnist/" + name)
        with gzip.open(path, "rb") as f:
            return np.frombuffer(f.read(), np.uint8, offset=offset)

    parts = []
    for prefix in ("train", "t10k"):
        labels = read(f"{prefix}-labels-idx1-ubyte.gz", 8)
        images = read(f"{prefix}-images-idx3-ubyte.gz", 16).reshape(len(labels), 28, 28)
        parts.append((images, labels))
    return tuple(parts)


def _cifar(archive_name, url, record_labels, label_index, train_names, test_names):
    path = cached_file(archive_name, url)
    record = record_labels + 3072
    out = {}
    with tarfile.open(path) as archive:
        for split, names in (("train", train_names), ("test", test_names)):
            chunks = []
            for name in names:
                member = next(m for m in archive.getmembers() if m.name.endswith("/" + name))
                chunks.append(np.frombuffer(archive.extractfile(member).read(), np.uint8))
            raw = np.concatenate(chunks).reshape(-1, record)
            images = raw[:, record_labels:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
            out[split] = (np.ascontiguousarray(images),
                          raw[:, label_index].astype(np.int64).reshape(-1, 1))
    return out["train"], out["test"]


def load_cifar10():
    """CIFAR-10 from `cifar-10-binary.tar.gz` (the binary release: no pickle)."""
    return _cifar("cifar-10-binary.tar.gz", "https://www.cs.toronto.edu/~kriz/"
                  "cifar-10-binary.tar.gz", 1, 0,
                  [f"data_batch_{i}.bin" for i in range(1, 6)], ["test_batch.bin"])


def load_cifar100(label_mode="fine"):
    """CIFAR-100 from `cifar-100-binary.tar.gz` (coarse or fine labels)."""
    if label_mode not in ("fine", "coarse"):
        raise ValueError(f"`label_mode` must be 'fine' or 'coarse'. Received: {label_mode!r}")
    return _cifar("cifar-100-binary.tar.gz", "https://www.cs.toronto.edu/~kriz/"
                  "cifar-100-binary.tar.gz", 2, 1 if label_mode == "fine" else 0,
                  ["train.bin"], ["test.bin"])


def _sequences(fname, num_words=None, skip_top=0, maxlen=None, seed=113, start_char=1,
               oov_char=2, index_from=3):
    data = _load_npz(cached_file(fname, _KERAS + fname), ["x_train", "y_train", "x_test",
                                                          "y_test"])
    rng = np.random.RandomState(seed)
    splits = []
    for part in ("train", "test"):
        x, y = data[f"x_{part}"], data[f"y_{part}"]
        order = np.arange(len(x))
        rng.shuffle(order)
        x, y = x[order], y[order]
        seqs = [[start_char] + [w + index_from for w in s] if start_char is not None else
                [w + index_from for w in s] for s in x]
        if maxlen:
            keep = [i for i, s in enumerate(seqs) if len(s) < maxlen]
            seqs, y = [seqs[i] for i in keep], y[keep]
        limit = num_words or max(max(s) for s in seqs) + 1
        seqs = [[w if skip_top <= w < limit else oov_char for w in s] for s in seqs]
        splits.append((np.array(seqs, dtype=object), y))
    return tuple(splits)


def load_imdb(path="imdb.npz", num_words=None, skip_top=0, maxlen=None, seed=113,
              start_char=1, oov_char=2, index_from=3, **kwargs):
    return _sequences(path, num_words, skip_top, maxlen, seed, start_char, oov_char, index_from)


def load_reuters(path="reuters.npz", num_words=None, skip_top=0, maxlen=None,
                 test_split=0.2, seed=113, start_char=1, oov_char=2, index_from=3):
    data = _load_npz(cached_file(path, _KERAS + path), ["x", "y"])
    x = np.array([[start_char] + [w + index_from for w in s] for s in data["x"]], dtype=object)
    if num_words:
        x = np.array([[w if skip_top <= w < num_words else oov_char for w in s] for s in x],
                     dtype=object)
    return _split(x, data["y"], test_split, seed)


def load_boston_housing(path="boston_housing.npz", test_split=0.2, seed=113):
    data = _load_npz(cached_file(path, _KERAS + path), ["x", "y"])
    return _split(data["x"], data["y"], test_split, seed)


def load_california_housing(path="california_housing.npz", test_split=0.2, seed=113,
                            version="large"):
    data = _load_npz(cached_file(path, _KERAS + path), ["x", "y"])
    x, y = data["x"], data["y"]
    if version == "small":
        x, y = x[:600], y[:600]
    return _split(x, y, test_split, seed)
