"""`kgraph.tpu` (`tf.tpu`): `experimental.initialize_tpu_system` for the static target."""
from kgraph.tpu import experimental  # noqa: F401
