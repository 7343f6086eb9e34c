"""Shared test setup.

`KGRAPH_VERIFY=1` makes `run_passes` run the IR verifier before the first pass and after every
pass (STYLE.md rule 5). It is read when `kgraph.compiler.passes.manager` is imported, so it is
set here, before any test module imports kgraph.
"""
import os

os.environ["KGRAPH_VERIFY"] = "1"
