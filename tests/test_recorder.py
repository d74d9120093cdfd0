"""The meta recorder on the patterns third-party models are made of (Hugging Face, torchvision
detection): each test is a small plain-torch model that reproduces one pattern, so that the
mechanism is checked without transformers or torchvision installed."""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from nnlint.findings import GraphMethod
from nnlint.graph import ModelGraph, build_graph
from nnlint.inputs import infer_input
from nnlint.sources import ModuleLocator


def recorded(model: nn.Module, example_input) -> ModelGraph:
    graph = build_graph(model, example_input, ModuleLocator(model), "auto")
    assert graph.method is GraphMethod.RECORDED
    return graph


def module_node(graph: ModelGraph, path: str):
    return next(node for node in graph.nodes if node.op == "call_module" and node.target == path)


VOCAB, HIDDEN = 100, 16


class MaskChecks(nn.Module):
    """Checks on the attention mask's values (transformers' masking utilities), and moving the mask
    to the weights' device first: all of it depends on the inputs alone."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, HIDDEN)
        self.head = nn.Linear(HIDDEN, 2)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if 0 in input_ids[:, [-1, 0]]:  # warn_if_padding_and_no_attention_mask
            pass
        mask = attention_mask.to(device=self.embed.weight.device, dtype=torch.bool)
        hidden = self.embed(input_ids)
        if not mask.all():  # only then is a padding mask applied
            hidden = hidden * mask[..., None]
        return self.head(hidden)


def test_checks_on_input_values_are_answered_on_meta():
    ids = torch.randint(1, VOCAB, (2, 6))
    graph = recorded(MaskChecks(), {"input_ids": ids, "attention_mask": torch.ones(2, 6, dtype=torch.long)})
    assert graph.recorded_on == "meta"
    assert graph.shape(module_node(graph, "head")) == (2, 6, 2)


class ConstantMask(nn.Module):
    """A mask built in forward on the activations' device (BART's decoder), then checked."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, HIDDEN)
        self.head = nn.Linear(HIDDEN, 2)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        hidden = self.embed(input_ids)
        mask = torch.ones(hidden.shape[:2], device=hidden.device)
        positions = torch.arange(hidden.shape[1], device=hidden.device)
        if mask.sum() == mask.numel() and (positions >= 0).all():
            hidden = hidden + positions[None, :, None]
        return self.head(hidden)


def test_small_constant_tensors_built_in_forward_keep_their_values():
    graph = recorded(ConstantMask(), torch.randint(0, VOCAB, (2, 6)))
    assert graph.recorded_on == "meta"


class BufferToInputDevice(nn.Module):
    """A buffer moved to an input's device (RoBERTa's `token_type_ids`), then used with weights."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, HIDDEN)
        self.types = nn.Embedding(2, HIDDEN)
        self.register_buffer("token_type_ids", torch.zeros(1, 32, dtype=torch.long), persistent=False)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        length = input_ids.shape[1]
        position_ids = torch.arange(length, device=input_ids.device)
        types = self.token_type_ids.to(position_ids.device)[:, :length].expand(input_ids.shape[0], -1)
        return self.embed(input_ids) + self.types(types)


def test_buffers_moved_to_an_inputs_device_stay_meta():
    graph = recorded_or_fx(BufferToInputDevice(), torch.randint(0, VOCAB, (3, 5)))
    assert graph.shape(graph.output_node().args[0]) == (3, 5, HIDDEN)


def recorded_or_fx(model: nn.Module, example_input) -> ModelGraph:
    """The recorder's graph (forced), after checking it was recorded on meta."""
    graph = build_graph(model, example_input, ModuleLocator(model), "recorded")
    assert graph.recorded_on == "meta"
    return graph


class WritesIntoConstant(nn.Module):
    """Weight outputs written into a tensor the forward built (MoE layers' `index_add_`, `out[i] = y`)."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, HIDDEN)
        self.first = nn.Linear(HIDDEN, HIDDEN)
        self.rest = nn.Linear(HIDDEN, HIDDEN)
        self.head = nn.Linear(HIDDEN, 2)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        hidden = self.embed(input_ids)
        out = torch.zeros(*input_ids.shape, HIDDEN, device=input_ids.device)  # real: built from an input's device
        out[:, :1] = self.first(hidden[:, :1])
        out.index_add_(1, torch.arange(1, input_ids.shape[1]), self.rest(hidden[:, 1:]))
        return self.head(out)


def test_writes_of_meta_values_into_real_tensors_keep_the_data_flow():
    graph = recorded_or_fx(WritesIntoConstant(), torch.randint(0, VOCAB, (2, 6)))
    head = module_node(graph, "head")
    assert graph.reaches(module_node(graph, "first"), head)
    assert graph.reaches(module_node(graph, "rest"), head)
    assert graph.shape(head) == (2, 6, 2)


class ScalesItsInput(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x.mul_(2)  # writes into the caller's tensor
        return self.fc(x)


def test_a_forward_that_writes_into_its_input_leaves_the_callers_tensor_alone():
    model, x = ScalesItsInput(), torch.ones(3, 4)
    for method in ("fx", "recorded"):
        build_graph(model, x, ModuleLocator(model), method)
    infer_input(model)
    assert torch.equal(x, torch.ones(3, 4))


class Selects(nn.Module):
    """Outputs whose size depends on values: boolean masks and nonzero (detection post-processing)."""

    def __init__(self) -> None:
        super().__init__()
        self.score = nn.Linear(8, 1)
        self.box = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scores = self.score(x).squeeze(-1)
        keep = torch.nonzero(scores > 0.5).squeeze(-1)
        return self.box(x[keep][scores[keep] > 0.7])


def test_value_dependent_sizes_are_upper_bounds_on_meta():
    graph = recorded_or_fx(Selects(), torch.randn(10, 8))
    assert graph.shape(module_node(graph, "box")) == (10, 4)  # every element assumed kept


class PerClass(nn.Module):
    """An op meta has no kernel for (`torch.unique`), looped over like torchvision's batched NMS."""

    def __init__(self) -> None:
        super().__init__()
        self.classify = nn.Linear(8, 3)
        self.refine = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        labels = self.classify(x).argmax(-1)
        out = torch.zeros_like(x)
        for label in torch.unique(labels):
            out = out + self.refine(x) * (labels == label)[:, None]
        return out


def test_ops_without_a_meta_kernel_run_on_small_stand_ins():
    graph = recorded_or_fx(PerClass(), torch.randn(6, 8))
    assert graph.modules["refine"].calls >= 1


class GroupedExperts(nn.Module):
    """A kernel whose meta version is stricter than its CPU one stands in for the op: a forward
    that needs a weight's value (`.item()`) still gets an inferred input, from one real sample."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, HIDDEN)
        self.gate = nn.Linear(HIDDEN, 4)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        hidden = self.embed(input_ids)
        if self.gate(hidden).softmax(-1).max().item() > 2.0:  # a weight-dependent value
            raise RuntimeError("unreachable")
        return hidden


def test_input_inference_runs_one_real_sample_when_meta_needs_values():
    example = infer_input(GroupedExperts())
    assert example.shape[-1] == 16 and example.dtype == torch.long


@dataclasses.dataclass
class Output:
    logits: torch.Tensor
    hidden_states: tuple[torch.Tensor, ...] | None = None


class KeywordOnly(nn.Module):
    """Keyword-only inputs and a dataclass output, as transformers models have."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, HIDDEN)
        self.head = nn.Linear(HIDDEN, 3)

    def forward(self, *, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> Output:
        hidden = self.embed(input_ids)
        if attention_mask is not None:
            hidden = hidden * attention_mask[..., None]
        return Output(F.gelu(self.head(hidden)), (hidden,))


def test_keyword_only_inputs_are_inferred_and_dataclass_outputs_recorded():
    model = KeywordOnly()
    example = infer_input(model)
    assert set(example) == {"input_ids"} and example["input_ids"].shape == (4, 16)
    graph = build_graph(model, example, ModuleLocator(model), "recorded")
    output = graph.output_node().args[0]
    assert set(output) == {"logits", "hidden_states"}
    assert graph.op(output["logits"]) == "gelu"
