"""Shared test setup.

`KGRAPH_VERIFY=1` makes `run_passes` run the IR verifier before the first pass and after every
pass (STYLE.md rule 5). It is read when `kgraph.compiler.passes.manager` is imported, so it is
set here, before any test module imports kgraph.

`KGRAPH_HOME` points at a fresh folder for the test session (unless the caller set one): the
tests never read the user's configuration nor fill the user's TVM cache.

The real-Keras comparisons run Keras 3 on JAX (the `dev` extra installs `keras` and `jax`;
`KERAS_BACKEND` is read when keras is first imported, so it is set here unless the caller
chose a backend).
"""
import os
import tempfile

os.environ["KGRAPH_VERIFY"] = "1"
os.environ.setdefault("KERAS_BACKEND", "jax")
if "KGRAPH_HOME" not in os.environ:
    _home = tempfile.mkdtemp(prefix="kgraph-test-home-")
    os.environ["KGRAPH_HOME"] = _home
