"""Recurrent layers (`keras.layers.RNN`, `SimpleRNN`, `LSTM`, `GRU`, their cells,
`StackedRNNCells`, `Bidirectional`); the code lives in the `rnn` package."""
from kgraph.keras.layers.rnn import (GRU, LSTM, RNN, Bidirectional, GRUCell, LSTMCell,
                                     SimpleRNN, SimpleRNNCell, StackedRNNCells)

__all__ = ["Bidirectional", "GRU", "GRUCell", "LSTM", "LSTMCell", "RNN", "SimpleRNN",
           "SimpleRNNCell", "StackedRNNCells"]
