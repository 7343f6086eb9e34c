"""`keras.models`."""
from kgraph.keras.models.cloning import clone_model  # noqa: F401
from kgraph.keras.models.config import model_from_json  # noqa: F401
from kgraph.keras.models.model import Functional, Model  # noqa: F401
from kgraph.keras.models.sequential import Sequential  # noqa: F401
from kgraph.keras.saving.saving_api import load_model, save_model  # noqa: F401
from kgraph.keras.saving import saving_api as _saving_api


def _save(self, filepath, overwrite=True, include_optimizer=True, save_format=None, **kwargs):
    """Save the model: `.keras` archive, or legacy HDF5 for `.h5` / other names."""
    _saving_api.save_model(self, filepath, overwrite=overwrite,
                           include_optimizer=include_optimizer, save_format=save_format,
                           **kwargs)


def _save_weights(self, filepath, overwrite=True, save_format=None, **kwargs):
    """Save the weights: `.weights.h5` (Keras 3 layout) or legacy `.h5`."""
    _saving_api.save_weights(self, filepath, overwrite=overwrite, save_format=save_format)


def _load_weights(self, filepath, by_name=False, skip_mismatch=False, **kwargs):
    """Load weights from any Keras weights or model file (`by_name` for legacy `.h5`)."""
    _saving_api.load_weights(self, filepath, by_name=by_name, skip_mismatch=skip_mismatch)


Model.save = _save
Model.save_weights = _save_weights
Model.load_weights = _load_weights
