"""Errors whose messages name the problem and the fix."""


class ModelUnavailableError(RuntimeError):
    """The weights of a model cannot be found; the message names the model and how to provide them."""
