"""`kgraph.utils`: pictures of models and of their training (`plot_model`,
`plot_history`)."""
from kgraph.keras.utils.plotting import (PlotDependencyError, model_to_dot,  # noqa: F401
                                         plot_history, plot_model)
