"""Static + probe together: a static finding whose effect the probe measured carries the numbers.

The static rules run first and never run the model; when the probe has measured what a static
finding predicts, the engine passes the finding through here to add the measurement to its
evidence and its message. One function per code.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Callable

from nnlint.findings import Finding
from nnlint.probe.result import ProbeResult, number


def with_probe_evidence(finding: Finding, probe: ProbeResult) -> Finding:
    measure = _MEASURED.get(finding.code)
    return measure(finding, probe) if measure is not None else finding


def _batchnorm_spread(finding: Finding, probe: ProbeResult) -> Finding:
    """NN105: how far a channel's batch mean wanders between batches of the training size,
    measured on `example_batch`'s real data (from the spread of per-sample channel means:
    sd / √batch). Random example inputs would understate it: their samples differ only by noise,
    which averages out over an image."""
    # NaN or Inf in the data (NN803's finding) leaves nothing to measure a spread with.
    if "last_batch" in finding.evidence:  # the DataLoader's last batch of one (script mode): not about the spread
        return finding
    spreads = [spread for spread in probe.batchnorm_spread if math.isfinite(spread.mean_spread)]
    if not spreads or probe.input_source != "example_batch":
        return finding  # on made-up inputs samples differ only by noise: the spread would understate real data's
    median = statistics.median(spread.mean_spread for spread in spreads)
    worst = max(spreads, key=lambda spread: spread.mean_spread)
    measured = (
        f"; measured by the probe on example_batch: at batch {spreads[0].batch_size} a channel's batch mean moves by {number(median)} "
        f"of the channel's standard deviation from batch to batch (median over {len(spreads)} BatchNorm layer(s); "
        f"{number(worst.mean_spread)} at `{worst.module}`)"
    )
    evidence = dict(finding.evidence) | {
        "measured_batch_mean_spread": {spread.module: spread.mean_spread for spread in spreads},
        "measured_batch_mean_spread_median": median,
    }
    return dataclasses.replace(finding, message=finding.message + measured, evidence=evidence)


_MEASURED: dict[str, Callable[[Finding, ProbeResult], Finding]] = {"NN105": _batchnorm_spread}
# Static codes the probe measures extra for, when they fired (the probe is told, so it does the work).
PROBE_MEASURES = frozenset(_MEASURED)
