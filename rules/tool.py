"""NN0 — the tool itself: how the graph was recovered, targets that could not be linted,
suppressions that matched nothing."""

from __future__ import annotations

from collections.abc import Iterator

from nnlint.context import RuleContext
from nnlint.findings import GraphMethod, Severity
from nnlint.graph import ModelGraph
from nnlint.registry import Hit, engine_rule, rule


@rule("NN001", "graph-fallback", Severity.INFO)
def graph_fallback(graph: ModelGraph, context: RuleContext) -> Iterator[Hit]:
    """torch.fx could not trace the model; its graph was recorded from an eager run instead.

    ## What it does
    Reports, once per target, that `torch.fx.symbolic_trace` failed and why (in one line), and
    that nnlint recorded the graph from one eager forward instead — on the meta device (no
    weights, no compute) or, when the forward needs real values, on one real sample (on the whole
    example input when the forward rejects a single sample).

    ## Why is this bad?
    It is not: the findings are the same either way. It tells you that FX-based tools
    (`torch.fx` passes, FX quantization) will not work on this model as written, which is often
    worth knowing, and explains a graph built on one sample if shapes look odd.

    ## Example
    ```python
    def forward(self, x):
        for t in range(x.size(1)):  # a loop over a tensor's size: FX cannot trace it
            h = self.cell(x[:, t], h)
    ```

    ## Fix
    Nothing is needed. To make the model FX-traceable, avoid Python control flow on tensor
    values and sizes, or pass the varying sizes as `concrete_args`.

    ## References
    - PyTorch, "torch.fx — Limitations of Symbolic Tracing": https://pytorch.org/docs/stable/fx.html
    """
    if graph.method is not GraphMethod.RECORDED or graph.fx_error is None:
        return
    on = _RECORDED_ON.get(graph.recorded_on, "one real sample")
    yield Hit(
        message=f"torch.fx could not trace the model ({graph.fx_error}); the graph was recorded from an eager run on {on}",
        fix="nothing to do: findings are the same; to make it FX-traceable, avoid Python control flow on tensor values and sizes",
        location=context.target_location,
        evidence={"fx_error": graph.fx_error, "recorded_on": graph.recorded_on},
    )


# What the graph was recorded on (ModelGraph.recorded_on), as NN001's message says it.
_RECORDED_ON = {
    "meta": "meta tensors (no weights, no compute)",
    "real": "one real sample",
    "example": "the whole example input (real values: the forward rejects a single sample)",
}


target_unusable = engine_rule(
    "NN002",
    "target-unusable",
    Severity.ERROR,
    """A target could not be built, given an input, or run; nothing else was checked on it.

    ## What it does
    Reports why a target could not be linted: its constructor or `@nnlint.target` function
    raised, no example input was given and none could be inferred, or the forward raised on the
    example input (naming the module that raised). Other targets are still linted. The exit
    code is 2, as for a file that does not import.

    ## Why is this bad?
    A model nnlint cannot run is a model none of its checks have looked at; passing silently
    would hide that.

    ## Example
    ```python
    model = nn.Sequential(nn.Conv2d(3, 16, 3), nn.Flatten(), nn.Linear(100, 10))
    example_input = torch.randn(8, 3, 32, 32)  # Flatten gives 14400 features, not 100
    ```

    ## Fix
    Make the model build and run on its example input: run it once in Python to see the full
    error, or run nnlint with `--verbose` for the traceback. Give `example_input` (or
    `--input-shape`) when nnlint cannot infer one.

    ## References
    - nnlint README, "What nnlint lints in a file"; docs/architecture.md, "The pipeline"
    """,
)

unused_suppression = engine_rule(
    "NN003",
    "unused-suppression",
    Severity.WARNING,
    """An inline `# nnlint: ignore[...]` comment matched no finding.

    ## What it does
    Reports `# nnlint: ignore[CODE]` and `# nnlint: ignore-file[CODE]` comments that silenced
    nothing in this run, and ones that name a code nnlint does not have. Suppressions of rules
    that were not selected are not judged.

    ## Why is this bad?
    A stale suppression hides the next real finding on that line: after the model was fixed,
    the comment stays and silently swallows a future regression.

    ## Example
    ```python
    self.conv = nn.Conv2d(3, 16, 3, bias=False)  # nnlint: ignore[NN104]  (nothing left to ignore)
    ```

    ## Fix
    Remove the comment, or correct its code.

    ## References
    - ruff, "unused-noqa (RUF100)": https://docs.astral.sh/ruff/rules/unused-noqa/
    """,
)
