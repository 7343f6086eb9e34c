"""keras.tree against Keras 3.15.1 (optree): every expected value below is what real Keras on
JAX returned for the same call (namedtuples, OrderedDicts, None leaves, sorted dict keys
rebuilt in their own order, deques)."""
import collections

import pytest

from kgraph.keras import tree

P = collections.namedtuple("P", "x y")


def _structure():
    return {"b": [1, (2, None)], "a": P(3, {"z": 4, "c": 5}),
            "o": collections.OrderedDict([("q", 6), ("p", 7)])}


def test_flatten_and_paths_follow_keras_order():
    s = _structure()
    assert tree.flatten(s) == [3, 5, 4, 1, 2, None, 6, 7]
    assert tree.flatten_with_path(s) == [
        (("a", 0), 3), (("a", 1, "c"), 5), (("a", 1, "z"), 4), (("b", 0), 1),
        (("b", 1, 0), 2), (("b", 1, 1), None), (("o", "q"), 6), (("o", "p"), 7)]
    assert tree.flatten(collections.deque([1, 2])) == [1, 2]
    assert tree.flatten_with_path(P(1, [2])) == [((0,), 1), ((1, 0), 2)]
    assert tree.flatten(None) == [None] and tree.flatten("ab") == ["ab"]


def test_pack_sequence_as_rebuilds_types_and_key_order():
    packed = tree.pack_sequence_as(_structure(), list(range(10, 18)))
    assert packed == {"b": [13, (14, 15)], "a": P(x=10, y={"z": 12, "c": 11}),
                      "o": collections.OrderedDict([("q", 16), ("p", 17)])}
    assert type(packed["a"]) is P and type(packed["o"]) is collections.OrderedDict
    assert list(packed) == ["b", "a", "o"] and list(packed["a"].y) == ["z", "c"]
    with pytest.raises(ValueError, match="2 leaves"):
        tree.pack_sequence_as([1, 2], [1])
    default = collections.defaultdict(list, {"k": 1})
    rebuilt = tree.pack_sequence_as(default, [5])
    assert rebuilt == {"k": 5} and rebuilt.default_factory is list


def test_is_nested():
    assert [tree.is_nested(x) for x in (None, P(1, 2), "ab", [], {}, 3)] == [
        False, True, False, True, True, False]


def test_map_structure_and_its_checks():
    s = _structure()
    assert tree.map_structure(lambda x: x, s, none_is_leaf=False) == s
    assert tree.map_structure(lambda x: x is None, [None, 1]) == [True, False]
    assert tree.map_structure(lambda x: x is None, [None, 1], none_is_leaf=False) == [None,
                                                                                       False]
    assert tree.map_structure(lambda a, b: a + b, {"x": 1, "y": [2]}, {"y": [3], "x": 4}) == \
        {"x": 5, "y": [5]}
    with pytest.raises(ValueError, match="same nested structure"):
        tree.map_structure(lambda a, b: a, [1, 2], [1, [2]])
    with pytest.raises(ValueError, match="Expected an instance of list"):
        tree.map_structure(lambda a, b: a, [1, 2], (1, 2))
    with pytest.raises(ValueError, match="at least one structure"):
        tree.map_structure(lambda: 0)


def test_map_structure_up_to_and_map_shape_structure():
    assert tree.map_structure_up_to([1, 2], lambda a, b: (a, b), [[1, 2], 3], [4, 5]) == \
        [([1, 2], 4), (3, 5)]
    assert tree.map_shape_structure(len, {"a": (None, 3), "b": [(1, 2), [4]]}) == \
        {"a": 2, "b": [2, 1]}


def test_assert_same_structure_and_paths():
    tree.assert_same_structure({"a": [1, (2,)]}, {"a": [5, (6,)]})
    with pytest.raises(ValueError, match="Expected an instance of list, got \\(1, 2\\)"):
        tree.assert_same_structure([1, 2], (1, 2))
    with pytest.warns(DeprecationWarning, match="check_types"):
        tree.assert_same_structure([1], [2], check_types=False)
    tree.assert_same_paths([1, 2], (1, 2))  # a list and a tuple share paths
    with pytest.raises(ValueError, match="Paths in `a` missing in `b`:\n{\\(1,\\)}"):
        tree.assert_same_paths([1, 2], [1])


def test_traverse_and_lists_to_tuples():
    seen = []
    s = [(1, 2), [3], {"a": 4}]
    assert tree.traverse(seen.append, s, top_down=False) == s
    assert seen == [1, 2, (1, 2), 3, [3], 4, {"a": 4}, s]
    seen.clear()
    assert tree.traverse(seen.append, s, top_down=True) == s
    assert seen == [s, (1, 2), 1, 2, [3], 3, {"a": 4}, 4]
    assert tree.traverse(lambda x: tree.MAP_TO_NONE if x == 2 else None, [1, 2, [2]]) == \
        [1, None, [None]]
    assert tree.traverse(lambda x: "cut" if isinstance(x, tuple) else None, s) == \
        ["cut", [3], {"a": 4}]
    assert tree.lists_to_tuples([1, [2, {"a": [3]}]]) == (1, (2, {"a": (3,)}))
    with pytest.raises(TypeError, match="callable"):
        tree.traverse(3, [1])
