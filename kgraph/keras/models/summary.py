"""`Model.summary()`: layers, output shapes and parameter counts."""
from __future__ import annotations


def _shape(layer):
    try:
        shape = layer.output_shape
    except AttributeError:
        return "?"
    return str(shape).replace("None", "None")


def _fmt_count(n):
    return f"{n:,}"


def print_summary(model, line_length=None, print_fn=None):
    print_fn = print_fn or print
    width = line_length or 80
    cols = [int(width * 0.45), int(width * 0.30), width - int(width * 0.45) - int(width * 0.30)]
    rule = "─" * width

    def row(*cells):
        return "".join(str(c)[:w - 1].ljust(w) for c, w in zip(cells, cols))

    kind = "Sequential" if hasattr(model, "_stack") else "Functional"
    print_fn(f'Model: "{model.name}"')
    print_fn(rule)
    print_fn(row("Layer (type)", "Output Shape", "Param #"))
    print_fn("═" * width)
    layers = model.layers
    if kind == "Functional" and getattr(model, "_graph", None) is not None:
        layers = model._layers
    for layer in layers:
        print_fn(row(f"{layer.name} ({type(layer).__name__})", _shape(layer),
                     _fmt_count(layer.count_params())))
    print_fn(rule)
    trainable = sum(int(__import__("numpy").prod(v.shape)) for v in model.trainable_weights)
    total = model.count_params()
    print_fn(f" Total params: {_fmt_count(total)}")
    print_fn(f" Trainable params: {_fmt_count(trainable)}")
    print_fn(f" Non-trainable params: {_fmt_count(total - trainable)}")
