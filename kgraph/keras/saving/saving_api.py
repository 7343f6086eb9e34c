"""`save_model` / `load_model` / `save_weights` / `load_weights`: pick the format, write
atomically, read safely.

Writing picks the format from the name: `.keras` is the Keras 3 archive, `.weights.h5` the
Keras 3 weights layout; anything else (`.h5`, `.hdf5`, no extension: the FAQ's
`model.save('my_model')`) is legacy HDF5, written at exactly the path given. Reading looks at
the content (zip magic vs HDF5 signature), so `load_model('my_model')` works whatever the
name. Every write goes to a temporary file in the same directory and is moved into place
with `os.replace`, so an interrupted save never leaves a half-written file behind.
"""
from __future__ import annotations

import contextlib
import os
import stat
import warnings

import h5py
import numpy as np

from kgraph.keras.saving import (h5_safe, keras_zip, legacy_h5, legacy_model,
                                 weights_store)
from kgraph.keras.saving.errors import InvalidFileError, SavingError, with_file
from kgraph.keras import saving_safety
from kgraph.keras.saving_safety import UnsafeDeserializationError
from kgraph.runtime.atomic_file import atomic_write


# -- files ------------------------------------------------------------------------------
def detect_format(path) -> str:
    """"keras" for a zip archive, "h5" for an HDF5 file, judged by content."""
    if os.path.isdir(path):
        raise InvalidFileError(f"{path}: is a directory. TensorFlow SavedModel and unzipped "
                               f".keras directories are not supported; save with "
                               f"model.save('model.keras') or model.save('model.h5').")
    if not os.path.exists(path):
        raise FileNotFoundError(f"No file found at {path!r}")
    if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO or device would block or never end
        raise InvalidFileError(f"{path}: not a regular file (a pipe, socket or device); "
                               f"refused")
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head[:4] in keras_zip.ZIP_MAGIC:
        return "keras"
    if head == h5_safe.HDF5_SIGNATURE or h5py.is_hdf5(path):
        return "h5"
    raise InvalidFileError(f"{path}: neither a .keras archive (zip) nor an HDF5 file "
                           f"(it starts with {head!r})")


@contextlib.contextmanager
def _errors_name(path):
    """Errors raised while reading name the file."""
    try:
        yield
    except (SavingError, UnsafeDeserializationError) as e:
        err = with_file(e, path)
        if err is e:
            raise
        raise err from e
    except OSError as e:  # h5py reports corrupt data as OSError
        if isinstance(e, (FileNotFoundError, PermissionError, IsADirectoryError)):
            raise
        raise InvalidFileError(f"{path}: the file is corrupt or truncated ({e})") from e
    except (RuntimeError, SystemError, KeyError, ValueError, TypeError) as e:
        if not _raised_by_h5py(e):  # HDF5 reports corrupt metadata with these too
            raise
        raise InvalidFileError(f"{path}: the HDF5 file is corrupt ({type(e).__name__}: "
                               f"{e})") from e


def _raised_by_h5py(error) -> bool:
    """Whether `error` came out of h5py (its Python or Cython frames), not out of kgraph."""
    tb = error.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    filename = tb.tb_frame.f_code.co_filename
    return filename.startswith("h5py") or f"{os.sep}h5py{os.sep}" in filename


def _check_overwrite(path, overwrite):
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"{path!r} exists and overwrite=False")


def _build_optimizer(model):
    """Give a compiled model's optimizer its slots before saving, as loading will, so the
    file's optimizer state always matches what `load_model` rebuilds."""
    optimizer = getattr(model, "optimizer", None)
    if getattr(model, "compiled", False) and model.built and hasattr(optimizer, "build") \
            and not getattr(optimizer, "built", True):
        optimizer.build(model.trainable_weights)


def _warn_unbuilt(model):
    if getattr(model, "_graph", True) is None and not model.weights:
        warnings.warn(f"Saving model {model.name!r}, which has not been built yet: the file "
                      f"will hold no weights. Build it (call it on data) first.", stacklevel=3)


# -- whole models -------------------------------------------------------------------------
def save_model(model, filepath, overwrite=True, include_optimizer=True, save_format=None,
               **kwargs):
    """Save the config, weights and (if compiled) training config and optimizer state.

    Args:
        model: The model.
        filepath: `.keras` for the Keras 3 archive; `.h5`, `.hdf5` or any other name for
            legacy HDF5 (written at exactly this path).
        overwrite: If False and the file exists, raise `FileExistsError`.
        include_optimizer: Legacy HDF5 only: also save the training config and optimizer.
        save_format: None, "keras" or "h5". "tf" (SavedModel) is not supported.

    Example:
        >>> model.save("my_model.keras")
        >>> model = keras.models.load_model("my_model.keras")
    """
    path = os.fspath(filepath)
    fmt = _model_format(path, save_format)
    _check_overwrite(path, overwrite)
    _warn_unbuilt(model)
    _build_optimizer(model)
    if fmt == "keras":
        def write(tmp):
            with open(tmp, "wb") as fh:
                keras_zip.write_keras_archive(model, fh)
    else:
        def write(tmp):
            with h5py.File(tmp, "w") as f:
                legacy_model.save_legacy_model(model, f, include_optimizer)
    atomic_write(path, write)


def _model_format(path, save_format):
    if save_format not in (None, "keras", "h5", "hdf5", "tf"):
        raise ValueError(f"Unknown save_format {save_format!r}; use 'keras' or 'h5'.")
    if save_format == "tf":
        raise SavingError("save_format='tf' (TensorFlow SavedModel) is not supported by kgraph; "
                          "save as '.keras' or '.h5' instead.")
    if path.endswith(".keras") or save_format == "keras":
        if not path.endswith(".keras"):
            raise ValueError(f"save_format='keras' needs a '.keras' path. Received: {path!r}")
        return "keras"
    return "h5"


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):
    """Load a model saved by `save_model` (or by Keras / tf-keras).

    Args:
        filepath: A `.keras` archive or a legacy HDF5 whole-model file (any name: the
            format is detected from the content).
        custom_objects: Dict mapping names to custom classes or functions.
        compile: Compile the model with the saved training config, if there is one, and
            restore the optimizer state.
        safe_mode: Refuse Python code (lambdas) stored in the file. Lambda layers also need
            `keras.config.enable_unsafe_deserialization()`.

    Returns:
        The model, compiled when the file has a training config and `compile=True`.

    Raises:
        LoadLimitError: Loading would allocate more than `KGRAPH_MAX_LOAD_BYTES` (default:
            16 times the file's size, at least 64 MiB).
    """
    path = os.fspath(filepath)
    fmt = detect_format(path)
    limit = saving_safety.max_load_bytes(os.path.getsize(path))
    with _errors_name(path), saving_safety.load_budget(limit, path):
        if fmt == "keras":
            return keras_zip.load_keras_archive(path, path, custom_objects, compile, safe_mode)
        with h5_safe.open_h5(path) as f:
            return legacy_model.load_legacy_model(f, path, custom_objects, compile, safe_mode)


# -- weights ------------------------------------------------------------------------------
def save_weights(model, filepath, overwrite=True, save_format=None, **kwargs):
    """`.weights.h5`: the Keras 3 layout (optimizer included); any other name (`.h5`): the
    legacy tf-keras layout that `load_weights(..., by_name=True)` reads."""
    path = os.fspath(filepath)
    if path.endswith(".keras"):
        raise ValueError(f"save_weights() writes weights only; use model.save({path!r}) for a "
                         f".keras archive, or a '.weights.h5' path.")
    _check_overwrite(path, overwrite)
    if path.endswith(".weights.h5"):
        _build_optimizer(model)
        def write(tmp):
            with h5py.File(tmp, "w") as f:
                weights_store.save_weights_to_h5(model, f)
    else:
        def write(tmp):
            with h5py.File(tmp, "w") as f:
                legacy_h5.save_weights_to_group(f, model)
    atomic_write(path, write)


def load_weights(model, filepath, by_name=False, skip_mismatch=False, **kwargs):
    """Load weights from a `.keras`, `.weights.h5`, legacy `.h5` weights or whole-model file.

    Args:
        by_name: Legacy HDF5 only: load into the layers of the same name, leaving the rest.
        skip_mismatch: Skip (with a warning) weights whose shape or count does not match.
    """
    path = os.fspath(filepath)
    if getattr(model, "_stack", None) is not None and model._graph is None:
        raise SavingError(f"Sequential model {model.name!r} has not been built, so it has no "
                          f"weights to load into. Give it an Input or call it on data first.")
    fmt = detect_format(path)
    with _errors_name(path), _all_or_nothing(model):
        if fmt == "keras":
            _refuse_by_name(by_name, path)
            return keras_zip.load_archive_weights(model, path, path, skip_mismatch)
        with h5_safe.open_h5(path) as f:
            if _is_keras3_layout(f):
                _refuse_by_name(by_name, path)
                return weights_store.load_weights_from_h5(model, f, path, skip_mismatch)
            root = legacy_h5.weights_root(f, path)
            load = legacy_h5.load_weights_from_group_by_name if by_name else \
                legacy_h5.load_weights_from_group
            return load(root, model, path, skip_mismatch)


@contextlib.contextmanager
def _all_or_nothing(model):
    """Put every variable of `model` (and of its optimizer) back as it was when loading
    fails part way, so a bad file never leaves a half-loaded model."""
    optimizer = getattr(model, "optimizer", None)
    variables = list(model.weights) + list(getattr(optimizer, "variables", None) or [])
    saved = [np.array(v.numpy()) for v in variables]
    try:
        yield
    except BaseException:
        for var, value in zip(variables, saved):
            var.assign(value)
        raise


def _is_keras3_layout(f) -> bool:
    return not h5_safe.has_string_list(f, "layer_names") and "model_weights" not in f and (
        "vars" in f or "layers" in f)


def _refuse_by_name(by_name, path):
    if by_name:
        raise ValueError(f"{path}: by_name=True is only supported for legacy HDF5 weights "
                         f"('.h5'); Keras 3 files are loaded by structure.")
