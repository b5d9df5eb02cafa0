"""The one error a model backend raises for a failure the user can act on."""


class ModelBackendError(Exception):
    """A model could not be loaded or queried; the message is one line, fit for stderr."""
