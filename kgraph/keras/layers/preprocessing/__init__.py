"""Preprocessing layers. Numeric and image layers run inside the compiled graph (random
augmentation only when `training=True`, drawn from the step's rng key); string layers
(`StringLookup`, `TextVectorization`, string `Hashing`, `HashedCrossing`) map numpy
string/object arrays to integers on the host before the graph (see `host_layer.py`)."""
from kgraph.keras.layers.preprocessing.normalization import *  # noqa: F401,F403
from kgraph.keras.layers.preprocessing.image import *  # noqa: F401,F403
from kgraph.keras.layers.preprocessing.augmentation import *  # noqa: F401,F403
from kgraph.keras.layers.preprocessing.affine import *  # noqa: F401,F403
from kgraph.keras.layers.preprocessing.categorical import *  # noqa: F401,F403
from kgraph.keras.layers.preprocessing.hashing import *  # noqa: F401,F403
from kgraph.keras.layers.preprocessing.hashed_crossing import *  # noqa: F401,F403
from kgraph.keras.layers.preprocessing.lookup import *  # noqa: F401,F403
from kgraph.keras.layers.preprocessing.text_vectorization import *  # noqa: F401,F403
from kgraph.keras.layers.preprocessing.pipeline import *  # noqa: F401,F403
from kgraph.keras.layers.preprocessing.mel_spectrogram import *  # noqa: F401,F403
from kgraph.keras.layers.preprocessing.color import *  # noqa: F401,F403
from kgraph.keras.layers.preprocessing.blur_shear import *  # noqa: F401,F403
from kgraph.keras.layers.preprocessing.mixing import *  # noqa: F401,F403
from kgraph.keras.layers.preprocessing.color_jitter import *  # noqa: F401,F403
from kgraph.keras.layers.preprocessing.perspective import *  # noqa: F401,F403
from kgraph.keras.layers.preprocessing.bounding_boxes import *  # noqa: F401,F403
from kgraph.keras.layers.preprocessing.elastic import *  # noqa: F401,F403
from kgraph.keras.layers.preprocessing.rand_augment import *  # noqa: F401,F403
from kgraph.keras.layers.preprocessing.aug_mix import *  # noqa: F401,F403
from kgraph.keras.layers.preprocessing.clahe import *  # noqa: F401,F403
