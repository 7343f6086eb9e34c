"""Typed errors of saving and loading. Every error names the file (when there is one), the
object and the problem, and says what to do next."""
from __future__ import annotations

from kgraph.keras.saving_safety import UnsafeDeserializationError


class SavingError(ValueError):
    """Base class of the errors raised while saving or loading models and weights."""


class InvalidFileError(SavingError):
    """The file is not a model/weights file kgraph can read (wrong format, corrupt,
    a member or group missing)."""


class UnsafeFileError(SavingError, UnsafeDeserializationError):
    """The file was refused for safety: HDF5 soft/external links, external or virtual
    datasets, shape bombs, zip members outside the archive or absurdly large, or a config
    that names code outside Keras."""


class LoadLimitError(UnsafeFileError):
    """Loading would allocate more than the load limit (`KGRAPH_MAX_LOAD_BYTES`): a zip
    member, a weight whose shape comes from a config, or an array stored in a config."""


class UnknownObjectError(SavingError, TypeError):
    """A config names a class that is neither a kgraph Keras class nor a custom object."""


class DisallowedModuleError(UnsafeFileError, UnknownObjectError):
    """A config names a class in a module outside Keras; kgraph never imports modules
    named in a file."""


class InvalidConfigError(SavingError):
    """A model config is malformed or an object cannot be rebuilt from its config."""


class NotSerializableError(SavingError):
    """An object of the model cannot be written to a config (e.g. raw arithmetic on
    symbolic tensors)."""


class WeightMismatchError(SavingError):
    """Saved weights do not fit the model (layer count, weight count or shape)."""


def with_file(error: Exception, path) -> Exception:
    """The same kind of error, its message prefixed with the file it came from."""
    if path is None or str(path) in str(error):
        return error
    try:
        return type(error)(f"{path}: {error}")
    except Exception:  # an exception type with a different constructor
        return error
