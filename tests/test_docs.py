"""Every ```python block in README.md and docs/*.md runs (blocks of one file share a namespace,
in order, in a temporary directory). A block preceded by `<!-- skip: reason -->` is skipped."""
import os
import re

import pytest

ROOT = os.path.join(os.path.dirname(__file__), "..")
DOCS = ["README.md"] + [os.path.join("docs", f) for f in sorted(os.listdir(os.path.join(ROOT, "docs")))
                        if f.endswith(".md")]
BLOCK = re.compile(r"(<!-- skip: [^>]*-->\s*)?```python\n(.*?)```", re.S)


def blocks(path):
    with open(os.path.join(ROOT, path)) as f:
        text = f.read()
    return [(m.group(2), bool(m.group(1))) for m in BLOCK.finditer(text)]


@pytest.mark.parametrize("path", [d for d in DOCS if blocks(d)])
def test_doc_code_runs(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__docs__"}
    for i, (code, skipped) in enumerate(blocks(path)):
        if skipped:
            continue
        try:
            exec(compile(code, f"{path}[block {i}]", "exec"), namespace)
        except Exception as e:  # noqa: BLE001
            pytest.fail(f"{path} block {i} failed: {type(e).__name__}: {e}\n{code}")
