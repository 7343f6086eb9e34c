"""`keras.callbacks`: the Callback protocol and the built-in callbacks.

Logs reach callbacks with keys sorted alphabetically and values as Python floats, as Keras 3
does (`pythonify_logs`)."""
from kgraph.keras.callbacks.backup_and_restore import (BackupAndRestore,  # noqa: F401
                                                       resume_point)
from kgraph.keras.callbacks.callback import (Callback, CallbackList, History,  # noqa: F401
                                             ProgbarLogger, pythonify_logs)
from kgraph.keras.callbacks.csv_logger import CSVLogger  # noqa: F401
from kgraph.keras.callbacks.early_stopping import EarlyStopping  # noqa: F401
from kgraph.keras.callbacks.learning_rate import (LearningRateScheduler,  # noqa: F401
                                                  ReduceLROnPlateau)
from kgraph.keras.callbacks.model_checkpoint import ModelCheckpoint  # noqa: F401
from kgraph.keras.callbacks.monitor import MonitorCallback  # noqa: F401
from kgraph.keras.callbacks.remote import RemoteMonitor, SwapEMAWeights  # noqa: F401
from kgraph.keras.callbacks.simple import LambdaCallback, TerminateOnNaN  # noqa: F401
from kgraph.keras.callbacks.tensorboard import TensorBoard  # noqa: F401
