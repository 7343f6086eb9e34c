"""`keras.layers`."""
from kgraph.keras.layers.base import KerasTensor, Layer  # noqa: F401
from kgraph.keras.layers.core import (Activation, Dense, Dropout, Identity, Input,  # noqa: F401
                                      InputLayer, Lambda)
from kgraph.keras.layers.activation import *  # noqa: F401,F403,E402
from kgraph.keras.layers.convolutional import *  # noqa: F401,F403,E402
from kgraph.keras.layers.embedding import *  # noqa: F401,F403,E402
from kgraph.keras.layers.merge import *  # noqa: F401,F403,E402
from kgraph.keras.layers.normalization import *  # noqa: F401,F403,E402
from kgraph.keras.layers.pooling import *  # noqa: F401,F403,E402
from kgraph.keras.layers.recurrent import *  # noqa: F401,F403,E402
from kgraph.keras.layers.regularization import *  # noqa: F401,F403,E402
from kgraph.keras.layers.reshaping import *  # noqa: F401,F403,E402
from kgraph.keras.layers.spatial import *  # noqa: F401,F403,E402
from kgraph.keras.layers.preprocessing import *  # noqa: F401,F403,E402
from kgraph.keras.layers.einsum_dense import *  # noqa: F401,F403,E402
from kgraph.keras.layers.multi_head_attention import *  # noqa: F401,F403,E402
from kgraph.keras.layers.grouped_query_attention import *  # noqa: F401,F403,E402
from kgraph.keras.layers.attention import *  # noqa: F401,F403,E402
from kgraph.keras.layers.rms_normalization import *  # noqa: F401,F403,E402
from kgraph.keras.layers.wrapper import InputSpec, Wrapper, deserialize, serialize  # noqa: F401,E402
from kgraph.keras.layers.conv_lstm import *  # noqa: F401,F403,E402
from kgraph.keras.layers.stft_spectrogram import *  # noqa: F401,F403,E402
from kgraph.keras.layers.adaptive_pooling import *  # noqa: F401,F403,E402
from kgraph.keras.layers.spectral_normalization import *  # noqa: F401,F403,E402
from kgraph.keras.layers.reversible_embedding import *  # noqa: F401,F403,E402
