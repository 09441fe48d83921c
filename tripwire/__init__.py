"""tripwire: probe, monitor and steer open-weight chat models in agentic-misalignment scenarios.

Four packages, imported one way only (each reads the ones before it):
``tripwire.scenarios`` (pure data, no torch) <- ``tripwire.activations`` (models, backends, the decode
loop, the ResidualStore) <- ``tripwire.probes`` (estimators, cards, scoring, monitor, steering, training)
<- ``tripwire.experiments`` (configs, runs, stages, the report); ``tripwire.cli`` sits on top. Importing
``tripwire`` itself loads none of them.
"""

from importlib.metadata import PackageNotFoundError, version


def package_version(name: str) -> str | None:
    """The installed version of distribution `name`, or None when it is not installed."""
    try:
        return version(name)
    except PackageNotFoundError:
        return None


__version__ = package_version("tripwire") or "0+unknown"  # "0+unknown": a source checkout never installed

__all__ = ["__version__", "package_version"]
