"""Pictures of a model and of its training: `plot_model` (pydot + Graphviz), `plot_history`
(matplotlib), and the `kgraph plot MODEL --output model.svg` command."""
from __future__ import annotations

import os

from kgraph.keras.utils.layer_graph import layer_nodes

FORMATS = ("png", "svg", "pdf", "dot")


class PlotDependencyError(ImportError):
    """A library or program that drawing needs is missing (the message says what to
    install)."""


def _pydot():
    try:
        import pydot
    except ImportError as e:
        raise PlotDependencyError("plot_model draws with pydot and Graphviz: "
                                  "`pip install pydot` (or `pip install 'kgraph[plot]'`) and "
                                  "install Graphviz's `dot` program (`apt-get install "
                                  "graphviz`, `brew install graphviz` or `conda install "
                                  f"graphviz`). ({e})") from e
    return pydot


def _format_of(to_file):
    extension = os.path.splitext(os.fspath(to_file))[1][1:].lower()
    if extension not in FORMATS:
        raise ValueError(f"plot_model: cannot tell the image format from the file name; use "
                         f"one of {', '.join('.' + f for f in FORMATS)}. Received: "
                         f"to_file={os.fspath(to_file)!r}")
    return extension


def _shape_text(shapes):
    text = [str(tuple(s)).replace(",)", ")") for s in shapes]
    return text[0] if len(text) == 1 else "[" + ", ".join(text) + "]"


def _label(node, show_shapes, show_dtype, show_layer_names, show_trainable, layer):
    title = f"{node.name} ({node.class_name})" if show_layer_names else node.class_name
    lines = [title]
    if show_shapes:
        inputs = node.input_shapes or node.output_shapes
        lines.append(f"Input shape: {_shape_text(inputs)}")
        lines.append(f"Output shape: {_shape_text(node.output_shapes)}")
    if show_dtype:
        lines.append(f"Output dtype: {node.dtype}")
    if show_trainable and layer is not None:
        lines.append(f"Trainable: {'Y' if layer.trainable else 'N'}")
    return "\\n".join(lines)


def model_to_dot(model, show_shapes=False, show_dtype=False, show_layer_names=True,
                 rankdir="TB", expand_nested=False, dpi=200, show_trainable=False, **kwargs):
    """The layer graph of `model` as a `pydot.Dot` (see `plot_model` for the arguments)."""
    pydot = _pydot()
    if rankdir not in ("TB", "LR"):
        raise ValueError(f"plot_model: `rankdir` must be 'TB' or 'LR'. Received: "
                         f"rankdir={rankdir!r}")
    dot = pydot.Dot(graph_type="digraph", rankdir=rankdir, dpi=str(dpi), concentrate="true")
    dot.set_node_defaults(shape="box", fontname="Helvetica")
    layers = {layer.name: layer for layer in getattr(model, "layers", [])}
    clusters = {}
    for node in layer_nodes(model, expand_nested):
        owner = dot
        if node.cluster is not None:
            if node.cluster not in clusters:
                clusters[node.cluster] = pydot.Cluster(node.cluster.replace("/", "_"),
                                                       label=node.cluster, style="dashed")
                dot.add_subgraph(clusters[node.cluster])
            owner = clusters[node.cluster]
        label = _label(node, show_shapes, show_dtype, show_layer_names, show_trainable,
                       layers.get(node.name))
        owner.add_node(pydot.Node(_dot_id(node.name), label=label))
        for source in node.inputs:
            dot.add_edge(pydot.Edge(_dot_id(source), _dot_id(node.name)))
    return dot


def _dot_id(name):
    return '"' + name.replace('"', '\\"') + '"'


def plot_model(model, to_file="model.png", show_shapes=False, show_dtype=False,
               show_layer_names=True, rankdir="TB", expand_nested=False, dpi=200,
               show_layer_activations=False, show_trainable=False, **kwargs):
    """Draw the layer graph of `model` to an image file (`keras.utils.plot_model`).

    Needs pydot and Graphviz's `dot` program (`pip install 'kgraph[plot]'` and
    `apt-get install graphviz`); a clear `PlotDependencyError` names what is missing.

    Args:
        model: A built model (Functional and Sequential models draw their edges; a
            subclassed model draws its layers).
        to_file: The image file; its extension picks the format: `.png`, `.svg`, `.pdf` or
            `.dot` (the Graphviz source).
        show_shapes: Show each layer's input and output shapes.
        show_dtype: Show each layer's output dtype.
        show_layer_names: Show layer names (else only their classes).
        rankdir: `"TB"` (top to bottom) or `"LR"` (left to right).
        expand_nested: Draw the layers of nested models inside a dashed cluster.
        dpi: Image resolution in dots per inch.
        show_layer_activations: Accepted for compatibility (activations are not drawn).
        show_trainable: Show whether each layer is trainable.

    Raises:
        ValueError: for an unknown file extension or `rankdir`.
        PlotDependencyError: when pydot or Graphviz's `dot` program is missing.

    Example:

    ```python
    keras.utils.plot_model(model, "model.svg", show_shapes=True)
    ```
    """
    fmt = _format_of(to_file)
    dot = model_to_dot(model, show_shapes, show_dtype, show_layer_names, rankdir,
                       expand_nested, dpi, show_trainable)
    if fmt == "dot":
        with open(to_file, "w") as fh:
            fh.write(dot.to_string())
        return
    try:
        data = dot.create(format=fmt)
    except FileNotFoundError as e:
        raise PlotDependencyError("plot_model needs Graphviz's `dot` program on the PATH: "
                                  "`apt-get install graphviz`, `brew install graphviz` or "
                                  f"`conda install graphviz`. ({e})") from e
    with open(to_file, "wb") as fh:
        fh.write(data)


def plot_history(history, to_file="history.png", metrics=None, dpi=100):
    """Plot the losses and metrics of a `fit` run per epoch, training against validation.

    Args:
        history: The `History` that `fit` returns, or its `.history` dict.
        to_file: The image file (any format matplotlib writes: `.png`, `.svg`, `.pdf`).
        metrics: The names to plot (without `val_`); default: every logged name, loss first.
        dpi: Image resolution.

    Raises:
        ValueError: for an empty history or a metric that was not logged.
        PlotDependencyError: when matplotlib is missing.

    Example:

    ```python
    history = model.fit(x, y, validation_split=0.2, epochs=10)
    kgraph.utils.plot_history(history, "history.png")
    ```
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise PlotDependencyError("plot_history draws with matplotlib: `pip install "
                                  f"matplotlib` (or `pip install 'kgraph[plot]'`). ({e})") from e
    logs = dict(getattr(history, "history", history) or {})
    names = metrics or sorted({k.removeprefix("val_") for k in logs},
                              key=lambda k: (k != "loss", k))
    missing = [n for n in names if n not in logs and f"val_{n}" not in logs]
    if not names or missing:
        raise ValueError(f"plot_history: nothing to plot for {missing or 'an empty history'}. "
                         f"Logged names: {sorted(logs)}")
    figure = Figure(figsize=(5 * len(names), 3.6), dpi=dpi)
    FigureCanvasAgg(figure)
    for i, name in enumerate(names):
        axes = figure.add_subplot(1, len(names), i + 1)
        for key, label in ((name, "train"), (f"val_{name}", "validation")):
            if key in logs:
                axes.plot(range(1, len(logs[key]) + 1), logs[key], marker="o", label=label)
        axes.set_title(name)
        axes.set_xlabel("epoch")
        axes.legend()
    figure.tight_layout()
    figure.savefig(os.fspath(to_file))


# -- `kgraph plot` --------------------------------------------------------------------------
def add_parser(sub):
    """Add `kgraph plot MODEL --output FILE` to the CLI's subparsers."""
    p = sub.add_parser("plot", help="draw a model's layer graph (PNG, SVG, PDF or DOT)",
                       description="Draw the layer graph of MODEL with Graphviz.")
    p.add_argument("model", help="a .keras, legacy .h5 or .json (with --weights) model file")
    p.add_argument("--weights", help="weights file for a .json architecture")
    p.add_argument("--output", "-o", required=True, help="the image: .png, .svg, .pdf, .dot")
    p.add_argument("--show-shapes", action="store_true")
    p.add_argument("--show-dtype", action="store_true")
    p.add_argument("--expand-nested", action="store_true")
    p.add_argument("--rankdir", default="TB", choices=("TB", "LR"))
    p.add_argument("--dpi", type=int, default=200)
    p.set_defaults(fn=_plot_command)


def _plot_command(args):
    import sys

    from kgraph.cli import load_model_file

    try:
        model = load_model_file(args.model, args.weights)
        plot_model(model, args.output, show_shapes=args.show_shapes,
                   show_dtype=args.show_dtype, expand_nested=args.expand_nested,
                   rankdir=args.rankdir, dpi=args.dpi)
    except (PlotDependencyError, ValueError, OSError) as e:
        print(f"kgraph plot: error: {e}", file=sys.stderr)
        return 1
    return 0
