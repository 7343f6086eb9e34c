"""`keras_tuner.errors`: exceptions a hypermodel or `run_trial` raises to steer the search.

`FailedTrialError` ends a trial as failed without its retries; `FatalError` (and its
`FatalValueError`, `FatalTypeError`, `FatalRuntimeError`) ends the whole search at once.
Any other exception is retried up to the tuner's `max_retries_per_trial` times. kgraph.tuner
raises the fatal kinds itself for a tuner set up wrong (an objective no trial logs, no
hypermodel to build), so those stop the search at once with their message."""


class FailedTrialError(Exception):
    """The trial cannot succeed (a model too large): no retries; the search goes on."""


class FatalError(Exception):
    """Stop the search now (a bug): raised out of `Tuner.search`."""


class FatalValueError(FatalError, ValueError):
    pass


class FatalTypeError(FatalError, TypeError):
    pass


class FatalRuntimeError(FatalError, RuntimeError):
    pass


class FatalKeyError(FatalError, KeyError):
    """A tuner set up wrong (its objective is not among the metrics): no trial can succeed."""
