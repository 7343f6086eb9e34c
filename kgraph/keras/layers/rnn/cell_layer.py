"""`CellLayer`: an `RNN` that builds its own built-in cell from the layer's arguments
(SimpleRNN, LSTM, GRU). The cell holds the weights (`layer.cell.kernel`), as in Keras 3;
the layer forwards the cell's attributes and merges both configs into one."""
from __future__ import annotations

from kgraph.keras import regularizers
from kgraph.keras.layers.base import IncompatibleInputError
from kgraph.keras.layers.rnn.rnn import RNN

# cell arguments a layer accepts and hands to its cell
CELL_ARGUMENTS = ("activation", "recurrent_activation", "use_bias", "kernel_initializer",
                  "recurrent_initializer", "bias_initializer", "unit_forget_bias",
                  "kernel_regularizer", "recurrent_regularizer", "bias_regularizer",
                  "kernel_constraint", "recurrent_constraint", "bias_constraint", "dropout",
                  "recurrent_dropout", "reset_after", "seed", "implementation")


class CellLayer(RNN):
    """Subclasses set `cell_class` and `cell_name` (Keras' fixed cell names)."""

    cell_class = None
    cell_name = None
    config_leaves_out = ()  # cell config keys Keras does not write at the layer level

    def __init__(self, units, return_sequences=False, return_state=False, go_backwards=False,
                 stateful=False, unroll=False, use_cudnn="auto", **kwargs):
        if use_cudnn not in ("auto", True, False):
            raise ValueError(f"Invalid valid received for argument `use_cudnn`. Expected one "
                             f"of {{'auto', True, False}}. Received: use_cudnn={use_cudnn!r}")
        cell_kwargs = {k: kwargs.pop(k) for k in CELL_ARGUMENTS if k in kwargs}
        cell = self.cell_class(units, name=self.cell_name, dtype=kwargs.get("dtype"),
                               trainable=kwargs.get("trainable", True), **cell_kwargs)
        super().__init__(cell, return_sequences=return_sequences, return_state=return_state,
                         go_backwards=go_backwards, stateful=stateful, unroll=unroll, **kwargs)
        self.use_cudnn = use_cudnn
        self.input_spec_ndim = 3

    def call(self, sequences, initial_state=None, mask=None, training=False):
        if sequences.ndim != 3:
            raise IncompatibleInputError(
                f"Input 0 of layer {self.name!r} is incompatible with the layer: "
                f"expected ndim=3, found ndim={sequences.ndim}. Full shape "
                f"received: {tuple(sequences.shape)}")
        return super().call(sequences, initial_state=initial_state, mask=mask,
                            training=training)

    def get_config(self):
        config = super().get_config()
        del config["cell"]
        cell_config = self.cell.get_config()
        for key in ("name", "trainable", "dtype") + tuple(self.config_leaves_out):
            cell_config.pop(key, None)
        return {**config, **cell_config,
                "activity_regularizer": regularizers.serialize(self.activity_regularizer)}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return cls(**config)


def _forward(name):
    return property(lambda self: getattr(self.cell, name),
                    doc=f"The cell's `{name}`.")


for _name in ("units",) + CELL_ARGUMENTS:
    setattr(CellLayer, _name, _forward(_name))
