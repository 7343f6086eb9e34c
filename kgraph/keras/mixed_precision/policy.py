"""Dtype policies (`keras.DTypePolicy`): the compute and variable dtypes of a layer.

A policy named after a float dtype computes and stores in that dtype; `"mixed_float16"` and
`"mixed_bfloat16"` compute in float16/bfloat16 and keep variables in float32. The global
policy is what layers created without `dtype=` get.
"""
from __future__ import annotations

from kgraph.ir.types import dtype_name

_MIXED = {"mixed_float16": "float16", "mixed_bfloat16": "bfloat16"}
# Keras 3 writes DTypePolicy; 3.3-3.5 wrote FloatDTypePolicy; tf-keras wrote Policy.
_POLICY_CLASSES = ("DTypePolicy", "FloatDTypePolicy", "Policy")
_global = {"policy": None}


class DTypePolicy:
    """A dtype policy for a layer.

    Args:
        name: `"mixed_float16"` or `"mixed_bfloat16"` (compute in float16/bfloat16, keep
            variables in float32), or a dtype name such as `"float32"` (both dtypes).
            None takes the global policy's name.

    Example:

    >>> policy = keras.mixed_precision.DTypePolicy("mixed_float16")
    >>> policy.compute_dtype, policy.variable_dtype
    ('float16', 'float32')
    """

    def __init__(self, name=None):
        if name is None:
            name = global_policy().name
        if not isinstance(name, str):
            raise TypeError(f"'name' must be a string, such as 'mixed_float16'. Received: "
                            f"name={name!r} (of type {type(name)})")
        self._name = name
        self._compute_dtype, self._variable_dtype = _parse(name)

    @property
    def name(self):
        return self._name

    @property
    def compute_dtype(self):
        """The dtype layers compute and output in."""
        return self._compute_dtype

    @property
    def variable_dtype(self):
        """The dtype layers create their variables in."""
        return self._variable_dtype

    @property
    def quantization_mode(self):
        return None

    def get_config(self):
        return {"name": self._name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __eq__(self, other):
        return isinstance(other, DTypePolicy) and other._name == self._name

    __hash__ = object.__hash__

    def __repr__(self):
        return f'<DTypePolicy "{self._name}">'


FloatDTypePolicy = DTypePolicy
Policy = DTypePolicy


def _parse(name):
    if name in _MIXED:
        return _MIXED[name], "float32"
    try:
        dtype = dtype_name(name)
    except (TypeError, ValueError, KeyError):
        raise ValueError(f"Cannot convert {name!r} to a mixed precision DTypePolicy. Valid "
                         "policies include 'mixed_float16', 'mixed_bfloat16', and the name "
                         "of any float dtype such as 'float32'.") from None
    return dtype, dtype


def set_global_policy(policy):
    """Set the policy of layers created without `dtype=` (`keras.mixed_precision`).

    Args:
        policy: a `DTypePolicy` or a policy name (`"mixed_float16"`, `"float32"`, ...).

    Example:

    >>> keras.mixed_precision.set_global_policy("mixed_float16")
    >>> keras.layers.Dense(4).compute_dtype
    'float16'
    >>> keras.mixed_precision.set_global_policy("float32")
    """
    if isinstance(policy, str):
        policy = DTypePolicy(policy)
    elif not isinstance(policy, DTypePolicy):
        raise ValueError("Invalid `policy` argument. Expected the string name of a policy "
                         "(such as 'mixed_float16') or a `DTypePolicy` instance. Received: "
                         f"policy={policy!r} (of type {type(policy)})")
    _global["policy"] = policy


def global_policy() -> DTypePolicy:
    """The global policy; `DTypePolicy(floatx())` until one is set."""
    if _global["policy"] is None:
        from kgraph import config

        return DTypePolicy(config.floatx())
    return _global["policy"]


set_dtype_policy, dtype_policy = set_global_policy, global_policy


def get(dtype) -> DTypePolicy:
    """The policy a layer's `dtype=` argument names: None (the global policy), a policy,
    a policy name, or a serialized policy as Keras writes it in configs."""
    if dtype is None:
        return global_policy()
    if isinstance(dtype, DTypePolicy):
        return dtype
    if isinstance(dtype, dict):
        if dtype.get("class_name") not in _POLICY_CLASSES:
            raise ValueError(f"Unknown dtype policy class in a layer config. Received: "
                             f"dtype={dtype!r}; expected class_name in {_POLICY_CLASSES}")
        return DTypePolicy(dict(dtype.get("config") or {}).get("name", "float32"))
    if hasattr(dtype, "name") and not isinstance(dtype, str):  # a numpy dtype
        dtype = dtype.name
    return DTypePolicy(dtype)


def serialize(policy: DTypePolicy) -> dict:
    """The config entry Keras 3 writes for a layer's policy."""
    return {"module": "keras", "class_name": "DTypePolicy",
            "config": policy.get_config(), "registered_name": None}
