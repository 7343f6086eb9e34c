"""The executor protocol every backend implements.

`Compiled.run(feeds)` takes a dict of input name -> numpy array or backend buffer and returns
the outputs as backend buffers, in `output_names` order; `to_numpy` and `upload` convert.
Keeping buffers on the backend between calls is what lets parameters stay resident.
"""
from __future__ import annotations

from typing import Protocol


class Compiled(Protocol):
    input_names: list
    output_names: list

    def run(self, feeds: dict) -> list: ...

    def upload(self, array): ...

    def to_numpy(self, buffer): ...
