"""Steering as one concept: the edits on the residual stream, the `SteeringVector` that carries them
(with ``apply()`` as a context manager), the dose-response behind `tripwire steer`, and its figure."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tripwire._lazy import exports

if TYPE_CHECKING:
    from tripwire.probes.steering.dose_response import SteerSettings, parse_alphas, run_steer
    from tripwire.probes.steering.edits import MODES, Mode, add_direction, project_out, steer
    from tripwire.probes.steering.plot import monitor_figure, steer_figure
    from tripwire.probes.steering.vector import SteeringFileError, SteeringVector

__getattr__, __dir__, __all__ = exports(__name__, __file__)
