"""Binary linear probes with the scikit-learn estimator contract and a raw-space ``direction_``."""

from tripwire.probes.estimators._base import LinearProbe, NotBinaryError
from tripwire.probes.estimators.lat import LATProbe, PairingError
from tripwire.probes.estimators.logistic import LogisticProbe, l2_logistic_objective
from tripwire.probes.estimators.mean_difference import DiffMeanProbe, LDAProbe

PROBE_METHODS: dict[str, type[LinearProbe]] = {
    cls.method_name: cls for cls in (LogisticProbe, DiffMeanProbe, LDAProbe, LATProbe)
}

__all__ = [
    "PROBE_METHODS",
    "DiffMeanProbe",
    "LATProbe",
    "LDAProbe",
    "LinearProbe",
    "LogisticProbe",
    "NotBinaryError",
    "PairingError",
    "l2_logistic_objective",
]
