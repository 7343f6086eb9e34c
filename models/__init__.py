"""kgraph.applications: reference architectures with Keras layer names."""
from kgraph.applications.mlp import MLP  # noqa: F401
