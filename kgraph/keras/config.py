"""`keras.config`: the settings of `$KGRAPH_HOME/kgraph.json` (see `kgraph.config`).

`backend()` names the executor kgraph compiles for ("onnxruntime", "numpy", "tvm",
"tvm:cuda"); `keras.backend.backend()` answers "kgraph", the framework itself.
"""
from kgraph.config import (backend, config_path, epsilon, floatx, image_data_format,  # noqa: F401
                           save_config, set_backend, set_epsilon, set_floatx,
                           set_image_data_format)
from kgraph.keras.saving_safety import enable_unsafe_deserialization  # noqa: F401
