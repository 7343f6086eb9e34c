"""`keras.optimizers.legacy`: as in Keras 3, every name is there so that tf.keras 2 code
imports, and creating one raises ImportError saying what to use instead."""


class LegacyOptimizerWarning:
    """Keras 3's stand-in for a tf.keras 2 legacy optimizer: instantiating it raises."""

    def __init__(self, *args, **kwargs):
        raise ImportError("`keras.optimizers.legacy` is not supported in Keras 3 (nor in "
                          "kgraph). Use the optimizer of the same name in `keras.optimizers` "
                          "(e.g. `keras.optimizers.Adam`); its arguments are Keras 3's.")


Adagrad = Adam = Ftrl = Optimizer = RMSprop = SGD = LegacyOptimizerWarning
