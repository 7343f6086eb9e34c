"""Each `tf.data` transformation against a plain-Python reference of the same pipeline (and,
where TensorFlow's documentation gives one, against its documented output)."""
import gzip
import itertools

import h5py
import numpy as np
import pytest

import kgraph as tf

Dataset = tf.data.Dataset


def _ints(ds):
    return [np.asarray(e).tolist() for e in ds]


def test_flat_map_and_interleave():
    ds = Dataset.range(1, 4)
    assert _ints(ds.flat_map(lambda x: Dataset.range(int(x)))) == \
        [i for x in range(1, 4) for i in range(x)]
    # TensorFlow's documented interleave example.
    out = Dataset.range(1, 6).interleave(lambda x: Dataset.from_tensors(x).repeat(6),
                                         cycle_length=2, block_length=4)
    assert _ints(out) == [1, 1, 1, 1, 2, 2, 2, 2, 1, 1, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 3, 3,
                          4, 4, 5, 5, 5, 5, 5, 5]

    def reference(inputs, fn, cycle, block):
        slots, source, out = [], iter(inputs), []
        slots = [iter(fn(x)) for x in itertools.islice(source, cycle)]
        while any(slots):
            for pos, slot in enumerate(slots):
                if slot:
                    taken = list(itertools.islice(slot, block))
                    out += taken
                    if len(taken) < block:
                        nxt = next(source, None)
                        slots[pos] = iter(fn(nxt)) if nxt is not None else None
        return out

    fn = lambda x: range(10 * x, 10 * x + x % 4)  # noqa: E731 -- some empty
    expected = reference(range(9), fn, 3, 2)
    got = Dataset.range(9).interleave(lambda x: Dataset.range(10 * int(x), 10 * int(x) +
                                                              int(x) % 4), 3, 2)
    assert _ints(got) == expected


def test_padded_batch_and_bucket_by_sequence_length():
    lengths = [3, 1, 4, 1, 5, 2, 6]
    ds = Dataset.from_generator(lambda: (np.arange(n) + 1 for n in lengths))
    batches = _ints(ds.padded_batch(3))
    reference = []
    for chunk in (lengths[0:3], lengths[3:6], lengths[6:]):
        width = max(chunk)
        reference.append([list(range(1, n + 1)) + [0] * (width - n) for n in chunk])
    assert batches == reference
    fixed = _ints(ds.padded_batch(2, padded_shapes=(8,), padding_values=-1,
                                  drop_remainder=True))
    assert len(fixed) == 3 and all(len(row) == 8 for b in fixed for row in b)
    assert fixed[0][1] == [1] + [-1] * 7
    pairs = Dataset.from_generator(lambda: ((np.arange(n), n) for n in lengths)).padded_batch(2)
    first = next(iter(pairs))
    assert first[0].shape == (2, 3) and first[1].tolist() == [3, 1]

    buckets = ds.bucket_by_sequence_length(lambda x: len(x), [3, 5], [2, 2, 2])
    out = [b.tolist() for b in buckets]
    # reference: lengths <3 -> bucket 0, [3,5) -> 1, >=5 -> 2; emit when 2 gathered.
    groups, expected = {0: [], 1: [], 2: []}, []
    for n in lengths:
        b = 0 if n < 3 else 1 if n < 5 else 2
        groups[b].append(n)
        if len(groups[b]) == 2:
            expected.append(groups[b])
            groups[b] = []
    expected += [g for g in groups.values() if g]
    assert [[sum(1 for v in row if v) for row in batch] for batch in out] == expected
    with pytest.raises(ValueError, match="boundaries"):
        ds.bucket_by_sequence_length(len, [3, 5], [2, 2])


def test_shard_window_scan_rebatch_unique():
    ds = Dataset.range(10)
    assert _ints(ds.shard(3, 1)) == list(range(10))[1::3]
    assert ds.shard(3, 1).cardinality() == 3 and ds.shard(3, 0).cardinality() == 4
    with pytest.raises(ValueError, match="index"):
        ds.shard(2, 2)
    # TensorFlow's documented window examples.
    windows = lambda *a: [_ints(w) for w in Dataset.range(7).window(*a)]  # noqa: E731
    assert windows(3, 2, 1, True) == [[0, 1, 2], [2, 3, 4], [4, 5, 6]]
    assert windows(3, 1, 2, True) == [[0, 2, 4], [1, 3, 5], [2, 4, 6]]
    assert windows(3) == [[0, 1, 2], [3, 4, 5], [6]]
    pair_windows = Dataset.from_tensor_slices((np.arange(4), np.arange(4) * 10)).window(2)
    flat = pair_windows.flat_map(lambda a, b: Dataset.zip((a.batch(2), b.batch(2))))
    assert [(a.tolist(), b.tolist()) for a, b in flat] == [([0, 1], [0, 10]), ([2, 3], [20, 30])]

    running = ds.scan(np.int64(0), lambda state, x: (state + x, state * 2))
    assert _ints(running) == [2 * s for s in itertools.accumulate(range(10), initial=0)][:10]
    assert _ints(ds.batch(4).rebatch(3)) == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    assert _ints(Dataset.from_tensor_slices([1, 3, 1, 2, 3, 4]).unique()) == [1, 3, 2, 4]
    with pytest.raises(TypeError, match="scalar"):
        list(Dataset.from_tensor_slices(np.ones((2, 2))).unique())


def _reference_windows(n, size, shift, stride, drop_remainder):
    """TensorFlow's window semantics in plain Python: a window starts every `shift` elements
    and takes `size` of them `stride` apart; the short ones at the end are kept unless
    `drop_remainder`."""
    out = []
    for start in range(0, n, shift):
        window = list(range(n))[start:start + (size - 1) * stride + 1:stride]
        if len(window) == size or not drop_remainder:
            out.append(window)
    return out


@pytest.mark.parametrize("n, size, shift, stride", [(10, 3, None, 1), (10, 3, 2, 1),
                                                    (10, 3, 1, 2), (7, 3, 3, 1), (2, 3, 1, 1),
                                                    (9, 4, 5, 2), (0, 2, None, 1)])
@pytest.mark.parametrize("drop_remainder", [False, True])
def test_window_elements_and_cardinality_match_a_python_reference(n, size, shift, stride,
                                                                  drop_remainder):
    windows = Dataset.range(n).window(size, shift, stride, drop_remainder)
    expected = _reference_windows(n, size, shift or size, stride, drop_remainder)
    assert [_ints(w) for w in windows] == expected
    assert windows.cardinality() == len(expected)  # known, as TensorFlow's (-2 before)
    assert len(windows) == len(expected)


def test_window_cardinality_of_unknown_and_infinite_inputs():
    assert Dataset.range(10).window(3).cardinality() == 4  # TensorFlow: ceil(10 / 3)
    assert Dataset.range(10).window(3, drop_remainder=True).cardinality() == 3
    assert Dataset.range(10).filter(lambda x: x > 2).window(3).cardinality() == \
        tf.data.UNKNOWN_CARDINALITY
    assert Dataset.range(10).repeat().window(3).cardinality() == tf.data.INFINITE_CARDINALITY


def _csv_rows(ds, count=None):
    """The (a, b, name, y) rows of `count` batches (all when None) of a make_csv_dataset."""
    rows = []
    for features, label in ds.take(-1 if count is None else count):
        rows += zip(features["a"].tolist(), features["b"].tolist(), features["name"].tolist(),
                    label.tolist())
    return rows


@pytest.fixture
def csv_file(tmp_path):
    rows = [(i, i / 4, b"n%d" % (i % 3), i % 2) for i in range(20)]
    path = tmp_path / "rows.csv"
    path.write_text("a,b,name,y\n" + "".join(f"{a},{b},{n.decode()},{y}\n"
                                             for a, b, n, y in rows))
    return str(path), rows


@pytest.mark.parametrize("buffer_size", [10000, 4])
def test_make_csv_dataset_shuffles_each_epoch_reproducibly(csv_file, buffer_size):
    path, rows = csv_file

    def csv(seed, num_epochs=1, shuffle=True):
        return tf.data.experimental.make_csv_dataset(
            path, batch_size=5, label_name="y", shuffle=shuffle, shuffle_seed=seed,
            shuffle_buffer_size=buffer_size, num_epochs=num_epochs)

    epoch = _csv_rows(csv(7))
    assert sorted(epoch) == rows and epoch != rows  # the same rows, in another order
    assert _csv_rows(csv(7)) == epoch  # the seed reproduces the order
    assert _csv_rows(csv(8)) != epoch
    # Three epochs: each a permutation of the rows (shuffled before repeating, as TensorFlow),
    # each in its own order.
    three = _csv_rows(csv(7, num_epochs=3))
    blocks = [three[i:i + len(rows)] for i in range(0, 3 * len(rows), len(rows))]
    assert len(three) == 3 * len(rows) and all(sorted(b) == rows for b in blocks)
    assert blocks[0] == epoch and len({tuple(b) for b in blocks}) == 3


def test_make_csv_dataset_num_epochs_none_repeats_forever(csv_file):
    path, rows = csv_file
    ordered = tf.data.experimental.make_csv_dataset(path, batch_size=6, label_name="y",
                                                    shuffle=False, num_epochs=None)
    assert ordered.cardinality() == tf.data.INFINITE_CARDINALITY
    assert _csv_rows(ordered, 10) == (rows * 3)[:60]  # batches run across the epoch ends
    shuffled = tf.data.experimental.make_csv_dataset(path, batch_size=4, label_name="y",
                                                     shuffle_seed=1)  # TensorFlow's defaults
    endless = _csv_rows(shuffled, 25)  # five epochs of 20 rows
    assert all(sorted(endless[i:i + 20]) == rows for i in range(0, 100, 20))


def test_reduce_single_element_options_and_cardinality():
    ds = Dataset.range(5)
    assert int(ds.reduce(np.int64(0), lambda s, x: s + x)) == 10
    assert int(Dataset.range(1).get_single_element()) == 0
    with pytest.raises(ValueError, match="exactly one"):
        ds.get_single_element()
    options = tf.data.Options()
    options.experimental_deterministic = False
    assert _ints(ds.with_options(options)) == _ints(ds)
    cards = {
        "batch": (ds.batch(2), 3), "padded": (ds.padded_batch(2, drop_remainder=True), 2),
        "shard": (ds.shard(2, 0), 3), "repeat": (ds.repeat(), tf.data.INFINITE_CARDINALITY),
        "filter": (ds.filter(lambda x: x > 1), tf.data.UNKNOWN_CARDINALITY),
        "flat_map": (ds.flat_map(Dataset.from_tensors), tf.data.UNKNOWN_CARDINALITY),
        "prefetch": (ds.prefetch(2), 5), "map": (ds.map(lambda x: x, 2), 5),
        "scan": (ds.scan(0, lambda s, x: (s, x)), 5),
    }
    for name, (derived, expected) in cards.items():
        assert derived.cardinality() == expected, name
        assert tf.data.experimental.cardinality(derived) == expected


def test_sample_and_choose_from_datasets():
    a, b = Dataset.range(0, 50), Dataset.range(100, 110)
    mixed = _ints(Dataset.sample_from_datasets([a, b], weights=[0.5, 0.5], seed=3))
    assert sorted(mixed) == list(range(50)) + list(range(100, 110))  # exhausted ones drop out
    rng = np.random.default_rng([3, 0])  # the same draws, in plain Python
    iters, live, expected = [iter(range(50)), iter(range(100, 110))], np.array([.5, .5]), []
    while live.sum() > 0:
        i = int(rng.choice(2, p=live / live.sum()))
        value = next(iters[i], None)
        if value is None:
            live[i] = 0
        else:
            expected.append(value)
    assert mixed == expected
    second = _ints(Dataset.sample_from_datasets([a, b], seed=3))
    assert sorted(second) == sorted(mixed)
    stopped = _ints(tf.data.experimental.sample_from_datasets([a, b], seed=3,
                                                             stop_on_empty_dataset=True))
    assert len(stopped) < 60 and sum(v >= 100 for v in stopped) in (9, 10)
    choice = Dataset.from_tensor_slices(np.array([0, 1, 1, 0, 2]))
    chosen = Dataset.choose_from_datasets([a, b, Dataset.range(7, 8)], choice)
    assert _ints(chosen) == [0, 100, 101, 1, 7]
    with pytest.raises(ValueError, match="out of range"):
        list(Dataset.choose_from_datasets([a], choice))


def test_cache_on_disk_snapshot_save_and_load(tmp_path):
    calls = []

    def gen():
        calls.append(1)
        for i in range(600):  # more than one shard
            yield {"x": np.full(2, i, "f4"), "label": np.int64(i % 3)}, np.bytes_(b"r%d" % i)

    ds = Dataset.from_generator(gen).cache(tmp_path / "cache")
    first, second = list(ds), list(ds)
    assert len(calls) == 1 and len(first) == 600
    assert second[599][0]["x"].tolist() == [599, 599] and second[5][1].item() == b"r5"
    again = Dataset.from_generator(gen).snapshot(tmp_path / "cache")  # another "process"
    assert len(list(again)) == 600 and len(calls) == 1

    partial = Dataset.from_generator(gen).cache(tmp_path / "partial")
    list(itertools.islice(iter(partial), 10))  # abandoned: nothing complete is left
    assert not (tmp_path / "partial").exists()

    Dataset.range(5).map(lambda x: (x, x * 2)).save(tmp_path / "saved")
    loaded = Dataset.load(tmp_path / "saved")
    assert loaded.cardinality() == 5 and [(int(a), int(b)) for a, b in loaded] == \
        [(i, 2 * i) for i in range(5)]
    with pytest.raises(tf.data.DatasetFileError, match="spec.json"):
        Dataset.load(tmp_path / "nothing")


def test_text_lines_list_files_csv_and_hdf5(tmp_path):
    for i in range(3):
        (tmp_path / f"part{i}.txt").write_bytes(b"".join(b"f%d-l%d\n" % (i, j)
                                                         for j in range(i + 1)))
    with gzip.open(tmp_path / "z.txt.gz", "wb") as f:
        f.write(b"a\nb\n")
    files = Dataset.list_files(str(tmp_path / "part*.txt"), shuffle=False)
    assert [f.item() for f in files] == [str(tmp_path / f"part{i}.txt").encode()
                                         for i in range(3)]
    shuffled = Dataset.list_files(str(tmp_path / "part*.txt"), seed=1)
    assert sorted(f.item() for f in shuffled) == [f.item() for f in files]
    lines = tf.data.TextLineDataset([str(tmp_path / f"part{i}.txt") for i in range(3)])
    assert [x.item() for x in lines] == [b"f%d-l%d" % (i, j) for i in range(3)
                                         for j in range(i + 1)]
    assert [x.item() for x in tf.data.TextLineDataset(str(tmp_path / "z.txt.gz"), "GZIP")] \
        == [b"a", b"b"]
    interleaved = files.interleave(tf.data.TextLineDataset, cycle_length=3)
    assert sorted(x.item() for x in interleaved) == sorted(x.item() for x in lines)
    with pytest.raises(FileNotFoundError, match="no files match"):
        Dataset.list_files(str(tmp_path / "none*"))

    (tmp_path / "t.csv").write_text("a,b,name,y\n1,2.5,x,0\n3,4.5,yy,1\n5,,z,0\n")
    ds = tf.data.experimental.make_csv_dataset(str(tmp_path / "t.csv"), batch_size=2,
                                               label_name="y", num_epochs=1, shuffle=False)
    (f1, y1), (f2, y2) = list(ds)
    assert f1["a"].dtype == np.int32 and f1["b"].dtype == np.float32
    assert f1["a"].tolist() == [1, 3] and f1["b"].tolist() == [2.5, 4.5]
    assert f1["name"].tolist() == [b"x", b"yy"] and y1.tolist() == [0, 1]
    assert f2["b"].tolist() == [0.0] and y2.tolist() == [0]
    with pytest.raises(ValueError, match="label_name"):
        tf.data.experimental.make_csv_dataset(str(tmp_path / "t.csv"), 2, label_name="q")

    with h5py.File(tmp_path / "d.h5", "w") as f:
        f.create_dataset("x", data=np.arange(50, dtype="f4").reshape(25, 2), chunks=(4, 2))
        f.create_dataset("y", data=np.arange(25))
    h5 = Dataset.from_hdf5(str(tmp_path / "d.h5"), ("x", "y"))
    assert h5.cardinality() == 25
    rows = [(a.tolist(), int(b)) for a, b in h5]
    assert rows == [([2.0 * i, 2.0 * i + 1], i) for i in range(25)]
    assert next(iter(Dataset.from_hdf5(str(tmp_path / "d.h5"), {"feat": "x"})))["feat"].shape \
        == (2,)
    with pytest.raises(KeyError, match="no dataset 'z'"):
        Dataset.from_hdf5(str(tmp_path / "d.h5"), "z")
