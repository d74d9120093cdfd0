"""The probe: a short instrumented training run on the real model (docs/architecture.md, "The probe").

`run_probe` measures inputs, activations and gradients over a few forward → loss → backward
steps on copies of the weights, then takes the extra measurements (`nnlint.measures.Measure`)
the selected rules need. It raises
`ProbeSkipped` (meta weights: a note), `ProbeFailed` (the user's forward, loss or backward
failed) or `ProbeTimedOut` (`--probe-timeout`); the model is left exactly as it was in every case.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nnlint.lazy import lazy_attributes

if TYPE_CHECKING:  # what type checkers see; at run time these load on first use (below)
    from nnlint.probe.result import ProbeResult
    from nnlint.probe.session import ProbeFailed, ProbeSettings, ProbeSkipped, ProbeTimedOut, run_probe

__all__ = ["ProbeFailed", "ProbeResult", "ProbeSettings", "ProbeSkipped", "ProbeTimedOut", "run_probe"]

# Lazy, so that the static rules can import `nnlint.probe.result` without loading the whole probe.
_LAZY = {name: "nnlint.probe.session" for name in __all__} | {"ProbeResult": "nnlint.probe.result"}


__getattr__ = lazy_attributes(__name__, globals(), _LAZY)
