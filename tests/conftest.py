"""Shared test setup.

`KGRAPH_VERIFY=1` makes `run_passes` run the IR verifier before the first pass and after every
pass (STYLE.md rule 5). It is read when `kgraph.compiler.passes.manager` is imported, so it is
set here, before any test module imports kgraph.

`KGRAPH_HOME` points at a fresh folder for the test session (unless the caller set one): the
tests never read the user's configuration nor fill the user's TVM cache.
"""
import os
import tempfile

os.environ["KGRAPH_VERIFY"] = "1"
if "KGRAPH_HOME" not in os.environ:
    _home = tempfile.mkdtemp(prefix="kgraph-test-home-")
    os.environ["KGRAPH_HOME"] = _home
