"""tripwire: probe, monitor and steer open-weight chat models in agentic-misalignment scenarios.

Four packages, imported one way only (each reads the ones before it):
``tripwire.scenarios`` (pure data, no torch) <- ``tripwire.activations`` (models, backends, the decode
loop, the ResidualStore) <- ``tripwire.probes`` (estimators, cards, scoring, monitor, steering) <-
``tripwire.experiments`` (pipelines and the ``tripwire`` CLI). Importing ``tripwire`` itself loads none
of them.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tripwire")
except PackageNotFoundError:  # a source checkout that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
