"""The one error every model-loading path raises (its own module so the option checks and the loaders
can share it without importing each other)."""


from tripwire.errors import TripwireError


class ModelLoadError(TripwireError, RuntimeError):
    """The model could not be loaded; the message says why and what to do instead."""
