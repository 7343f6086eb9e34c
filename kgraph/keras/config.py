"""`keras.config`: the settings of `$KGRAPH_HOME/kgraph.json` (see `kgraph.config`).

`backend()` names the executor kgraph compiles for ("onnxruntime", "numpy", "tvm",
"tvm:cuda"); `keras.backend.backend()` answers "kgraph", the framework itself.
"""
from kgraph.config import (backend, config_path, epsilon, floatx, image_data_format,  # noqa: F401
                           save_config, set_backend, set_epsilon, set_floatx,
                           set_image_data_format)
from kgraph.keras.mixed_precision.policy import dtype_policy, set_dtype_policy  # noqa: F401
from kgraph.keras.saving_safety import enable_unsafe_deserialization  # noqa: F401
from kgraph.keras.utils.global_state import (disable_flash_attention,  # noqa: F401
                                             disable_interactive_logging,
                                             disable_traceback_filtering, enable_flash_attention,
                                             enable_interactive_logging,
                                             enable_traceback_filtering,
                                             is_flash_attention_enabled,
                                             is_interactive_logging_enabled, is_nnx_enabled,
                                             is_traceback_filtering_enabled, max_epochs,
                                             max_steps_per_epoch, set_max_epochs,
                                             set_max_steps_per_epoch)
