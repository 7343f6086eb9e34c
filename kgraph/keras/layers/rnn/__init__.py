"""Recurrent layers: cells, the `RNN` wrapper, SimpleRNN/LSTM/GRU and Bidirectional."""
from kgraph.keras.layers.rnn.bidirectional import Bidirectional
from kgraph.keras.layers.rnn.dropout_rnn_cell import DropoutRNNCell
from kgraph.keras.layers.rnn.gru import GRU, GRUCell
from kgraph.keras.layers.rnn.lstm import LSTM, LSTMCell
from kgraph.keras.layers.rnn.rnn import RNN
from kgraph.keras.layers.rnn.simple_rnn import SimpleRNN, SimpleRNNCell
from kgraph.keras.layers.rnn.stacked_rnn_cells import StackedRNNCells

__all__ = ["Bidirectional", "DropoutRNNCell", "GRU", "GRUCell", "LSTM", "LSTMCell", "RNN",
           "SimpleRNN", "SimpleRNNCell", "StackedRNNCells"]
