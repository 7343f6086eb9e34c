"""Datasets from directories and arrays (`keras.utils.*_dataset_from_directory`,
`timeseries_dataset_from_array`, `split_dataset`, `pack_x_y_sample_weight`).

A directory of class folders (`root/cat/1.jpg`, `root/dog/2.jpg`) becomes a lazy
`kgraph.data.Dataset` of `(batch, labels)`: the file list is indexed once (sorted, then
shuffled with `seed`), files are read batch by batch, and decoding errors name the file."""
from __future__ import annotations

import os
import wave

import numpy as np

from kgraph.data import Dataset


class FileDecodeError(ValueError):
    """A file of a `*_dataset_from_directory` call that could not be read or decoded."""


def index_directory(directory, labels, formats, class_names=None, shuffle=True, seed=None,
                    follow_links=False):
    """`(paths, labels, class_names)`: files under `directory` whose extension is in
    `formats`, labelled by their class folder (sorted names) or by the list `labels`."""
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"Could not find directory {directory!r}.")
    if labels == "inferred":
        found = sorted(d for d in os.listdir(directory)
                       if os.path.isdir(os.path.join(directory, d)))
        class_names = list(class_names) if class_names is not None else found
        if class_names is not None and sorted(set(class_names) - set(found)):
            raise ValueError(f"class_names {class_names} do not match the folders of "
                             f"{directory!r}: {found}")
        folders = [(os.path.join(directory, name), i) for i, name in enumerate(class_names)]
    else:
        class_names, folders = None, [(directory, None)]
    paths, targets = [], []
    for folder, label in folders:
        for root, _, files in sorted(os.walk(folder, followlinks=follow_links)):
            for name in sorted(files):
                if name.lower().endswith(formats):
                    paths.append(os.path.join(root, name))
                    targets.append(label)
    if labels not in ("inferred", None):
        if len(labels) != len(paths):
            raise ValueError(f"`labels` has {len(labels)} entries for the {len(paths)} files "
                             f"found in {directory!r}.")
        targets = list(labels)
    if shuffle:
        order = np.random.RandomState(1337 if seed is None else seed).permutation(len(paths))
        paths, targets = [paths[i] for i in order], [targets[i] for i in order]
    return paths, targets, class_names


def split_files(paths, targets, validation_split, subset, seed, shuffle=True):
    """The `subset` ("training", "validation", or "both": a pair) of the indexed files."""
    if not validation_split:
        if subset is not None:
            raise ValueError("`subset` needs a `validation_split`.")
        return paths, targets
    if not 0 < validation_split < 1 or subset not in ("training", "validation", "both"):
        raise ValueError(f"`validation_split` must be in (0, 1) with subset 'training', "
                         f"'validation' or 'both'. Received: validation_split="
                         f"{validation_split}, subset={subset!r}")
    if shuffle and seed is None:
        raise ValueError("When using `validation_split` and shuffling the data, you must "
                         "provide a `seed`, so the two subsets do not overlap.")
    cut = len(paths) - int(validation_split * len(paths))
    train, val = (paths[:cut], targets[:cut]), (paths[cut:], targets[cut:])
    return {"training": train, "validation": val, "both": (train, val)}[subset]


def encode_labels(targets, label_mode, num_classes):
    targets = np.asarray(targets)
    if label_mode == "int":
        return targets.astype("int32")
    if label_mode == "binary":
        return targets.astype("float32").reshape(-1, 1)
    if label_mode == "categorical":
        return np.eye(num_classes, dtype="float32")[targets.astype(int)]
    raise ValueError(f"`label_mode` must be 'int', 'categorical', 'binary' or None. "
                     f"Received: label_mode={label_mode!r}")


def files_dataset(paths, targets, read, label_mode, num_classes, batch_size, shuffle, seed):
    """A dataset reading `read(path)` per file, labelled, batched (and reshuffled per epoch
    when `shuffle`)."""
    def load(i):
        try:
            return read(paths[int(i)])
        except FileDecodeError:
            raise
        except Exception as error:  # noqa: BLE001 -- any decoder failure names the file
            raise FileDecodeError(f"Could not read {paths[int(i)]!r}: {error}") from error

    index = Dataset.range(len(paths))
    if shuffle:
        index = index.shuffle(max(len(paths), 1), seed=seed)
    if label_mode is None:
        ds = index.map(load)
    else:
        labels = encode_labels(targets, label_mode, num_classes)
        ds = index.map(lambda i: (load(i), labels[int(i)]))
    ds = ds.batch(batch_size) if batch_size is not None else ds
    ds.class_names = None
    ds.file_paths = list(paths)
    return ds


def _per_subset(directory, labels, label_mode, class_names, formats, batch_size, shuffle, seed,
                validation_split, subset, follow_links, read):
    paths, targets, names = index_directory(directory, labels, formats, class_names, shuffle,
                                            seed, follow_links)
    if label_mode == "binary" and names is not None and len(names) != 2:
        raise ValueError(f"label_mode='binary' needs exactly 2 classes; found {names}.")
    num_classes = len(names) if names else int(max(targets, default=0)) + 1
    chosen = split_files(paths, targets, validation_split, subset, seed, shuffle)
    parts = chosen if subset == "both" else (chosen,)
    datasets = []
    for part_paths, part_targets in parts:
        ds = files_dataset(part_paths, part_targets, read, None if labels is None else
                           label_mode, num_classes, batch_size, shuffle, seed)
        ds.class_names = names
        datasets.append(ds)
    return datasets[0] if subset != "both" else tuple(datasets)


def text_dataset_from_directory(directory, labels="inferred", label_mode="int",
                                class_names=None, batch_size=32, max_length=None, shuffle=True,
                                seed=None, validation_split=None, subset=None,
                                follow_links=False, verbose=True):
    """A dataset of `(texts, labels)` from `.txt` files in class folders; texts are byte
    strings (truncated to `max_length` characters)."""
    def read(path):
        with open(path, "rb") as f:
            text = f.read()
        return np.asarray(text[:max_length] if max_length else text)

    return _per_subset(directory, labels, label_mode, class_names, (".txt",), batch_size,
                       shuffle, seed, validation_split, subset, follow_links, read)


def read_wav(path, output_sequence_length=None):
    """A float32 `(samples, channels)` array in [-1, 1] from a PCM wav file."""
    with wave.open(path, "rb") as f:
        width, channels, frames = f.getsampwidth(), f.getnchannels(), f.getnframes()
        raw = f.readframes(frames)
    if width not in (1, 2, 4):
        raise FileDecodeError(f"{path!r}: {8 * width}-bit wav is not supported (8, 16, 32).")
    dtype = {1: np.uint8, 2: np.int16, 4: np.int32}[width]
    audio = np.frombuffer(raw, dtype).reshape(-1, channels).astype("float32")
    audio = (audio - 128) / 128 if width == 1 else audio / float(np.iinfo(dtype).max)
    if output_sequence_length is not None:
        audio = audio[:output_sequence_length]
        audio = np.pad(audio, ((0, output_sequence_length - len(audio)), (0, 0)))
    return audio


def audio_dataset_from_directory(directory, labels="inferred", label_mode="int",
                                 class_names=None, batch_size=32, sampling_rate=None,
                                 output_sequence_length=None, ragged=False, shuffle=True,
                                 seed=None, validation_split=None, subset=None,
                                 follow_links=False, verbose=True):
    """A dataset of `(audio, labels)` from `.wav` files in class folders, read with the
    standard library; clips in a batch are zero-padded to the longest (or cut/padded to
    `output_sequence_length`)."""
    ds = _per_subset(directory, labels, label_mode, class_names, (".wav",), None, shuffle,
                     seed, validation_split, subset, follow_links,
                     lambda p: read_wav(p, output_sequence_length))
    parts = ds if isinstance(ds, tuple) else (ds,)
    batched = []
    for part in parts:
        out = part.padded_batch(batch_size) if batch_size is not None else part
        out.class_names, out.file_paths = part.class_names, part.file_paths
        batched.append(out)
    return tuple(batched) if isinstance(ds, tuple) else batched[0]


def timeseries_dataset_from_array(data, targets, sequence_length, sequence_stride=1,
                                  sampling_rate=1, batch_size=128, shuffle=False, seed=None,
                                  start_index=None, end_index=None):
    """Sliding windows over `data` (`keras.utils.timeseries_dataset_from_array`): window i
    holds rows `start + i*sequence_stride + k*sampling_rate` for k < sequence_length; its
    target is `targets[start + i*sequence_stride]`."""
    data = np.asarray(data)
    start = start_index or 0
    end = len(data) if end_index is None else end_index
    span = (sequence_length - 1) * sampling_rate + 1
    starts = np.arange(start, end - span + 1, sequence_stride)
    if shuffle:
        starts = np.random.RandomState(seed).permutation(starts)
    offsets = np.arange(sequence_length) * sampling_rate
    index = Dataset.from_tensor_slices(starts)

    def window(i):
        rows = data[int(i) + offsets]
        return rows if targets is None else (rows, np.asarray(targets)[int(i)])

    ds = index.map(window)
    return ds.batch(batch_size) if batch_size is not None else ds


def split_dataset(dataset, left_size=None, right_size=None, shuffle=False, seed=None):
    """Split arrays (or a tuple of them, or a finite dataset) into two datasets of
    `left_size` / `right_size` samples (fractions or counts)."""
    if isinstance(dataset, Dataset):
        elements = list(dataset)
        arrays = tuple(np.stack(part) for part in zip(*elements)) if isinstance(
            elements[0], tuple) else np.stack(elements)
    else:
        arrays = tuple(np.asarray(a) for a in dataset) if isinstance(dataset, (tuple, list)) \
            else np.asarray(dataset)
    n = len(arrays[0] if isinstance(arrays, tuple) else arrays)
    size = (lambda s: None if s is None else int(s * n) if isinstance(s, float) else int(s))
    left, right = size(left_size), size(right_size)
    if left is None and right is None:
        raise ValueError("split_dataset: give `left_size` or `right_size`.")
    left = n - right if left is None else left
    right = n - left if right is None else right
    if left < 0 or right < 0 or left + right > n:
        raise ValueError(f"split_dataset: sizes {left} + {right} do not fit {n} samples.")
    order = np.random.RandomState(seed).permutation(n) if shuffle else np.arange(n)
    pick = (lambda idx: tuple(a[idx] for a in arrays) if isinstance(arrays, tuple)
            else arrays[idx])
    return (Dataset.from_tensor_slices(pick(order[:left])),
            Dataset.from_tensor_slices(pick(order[left:left + right])))


def pack_x_y_sample_weight(x, y=None, sample_weight=None):
    """`(x,)`, `(x, y)` or `(x, y, sample_weight)`, as Keras packs a batch."""
    if y is None:
        return (x,)
    return (x, y) if sample_weight is None else (x, y, sample_weight)


def unpack_x_y_sample_weight(data):
    """`(x, y, sample_weight)` from a packed batch (missing parts None)."""
    if isinstance(data, list):
        data = tuple(data)
    if not isinstance(data, tuple):
        return data, None, None
    if not 1 <= len(data) <= 3:
        raise ValueError(f"Data is expected to be (x,), (x, y) or (x, y, sample_weight). "
                         f"Received a tuple of {len(data)} items.")
    return (tuple(data) + (None, None))[:3]
