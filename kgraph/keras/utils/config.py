"""`keras.utils.Config`: a dict of named values, read and set as attributes, freezable."""
from __future__ import annotations

import copy
import difflib
import json


class Config:
    """A dict-like container of named values (`keras.utils.Config`).

    Values are set and read as attributes or items; `freeze()` makes every later change a
    ValueError; `as_dict()` and `to_json()` export it. Iterating gives the keys, sorted.

    Example:

    >>> config = keras.utils.Config(learning_rate=0.1, momentum=0.9)
    >>> config.seed = 123
    >>> config["learning_rate"], config.seed
    (0.1, 123)
    >>> config.freeze()
    >>> config.foo = "bar"  # ValueError: the config is frozen
    """

    __attrs__ = None

    def __init__(self, **kwargs):
        self._config = kwargs
        self._frozen = False
        self.__attrs__ = set(dir(self))  # attribute names that are the object's own

    @property
    def frozen(self):
        """True once `freeze()` was called (and not `unfreeze()`)."""
        return self._frozen

    def freeze(self):
        """Refuse every later change (a ValueError) until `unfreeze()`."""
        self._frozen = True

    def unfreeze(self):
        self._frozen = False

    def _raise_if_frozen(self):
        if self._frozen:
            raise ValueError("Cannot mutate attribute(s) because the config is frozen.")

    def as_dict(self):
        return copy.copy(self._config)

    def to_json(self):
        return json.dumps(self._config)

    def keys(self):
        return self._config.keys()

    def values(self):
        return self._config.values()

    def items(self):
        return self._config.items()

    def pop(self, *args):
        self._raise_if_frozen()
        return self._config.pop(*args)

    def update(self, *args, **kwargs):
        self._raise_if_frozen()
        return self._config.update(*args, **kwargs)

    def get(self, keyname, value=None):
        return self._config.get(keyname, value)

    def __setattr__(self, name, value):
        own = object.__getattribute__(self, "__attrs__")
        if own is None or name in own:
            object.__setattr__(self, name, value)
            return
        self._raise_if_frozen()
        self._config[name] = value

    def __getattr__(self, name):  # only called for names that are not attributes
        config = object.__getattribute__(self, "_config")
        if name in config:
            return config[name]
        message = f"Unknown attribute: '{name}'."
        close = difflib.get_close_matches(name, config.keys(), n=1, cutoff=0.7)
        if close:
            message += f" Did you mean '{close[0]}'?"
        raise AttributeError(message)

    def __setitem__(self, key, item):
        self._raise_if_frozen()
        self._config[key] = item

    def __getitem__(self, key):
        return self._config[key]

    def __delitem__(self, key):
        self._raise_if_frozen()
        del self._config[key]

    def __contains__(self, item):
        return item in self._config

    def __iter__(self):
        return iter(sorted(self._config.keys()))

    def __len__(self):
        return len(self._config)

    def __repr__(self):
        return f"<Config {self._config}>"
