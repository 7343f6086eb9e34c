"""Read the code blocks of the Keras FAQ (shared/spec/keras-faq.md) and swap the imports:
`tensorflow` -> `kgraph`, which is the only change a kgraph user makes."""
import os
import re

FAQ = os.path.join(os.path.dirname(__file__), "spec", "keras-faq.md")


def sections():
    with open(FAQ) as f:
        text = f.read()
    parts = re.split(r"^### ", text, flags=re.M)
    out = {}
    for part in parts[1:]:
        title, _, body = part.partition("\n")
        out[title.strip()] = re.findall(r"```python\n(.*?)```", body, flags=re.S)
    return out


def block(title_part, index):
    matches = [blocks for title, blocks in sections().items() if title_part in title]
    if len(matches) != 1:
        raise KeyError(f"FAQ section {title_part!r} matched {len(matches)} sections")
    return swap_imports(matches[0][index])


def swap_imports(code):
    return code.replace("tensorflow", "kgraph")


def doctest_source(code):
    """The statements of a `>>>` console transcript."""
    return "\n".join(line[4:] for line in code.splitlines() if line.startswith(">>> "))
