"""Script mode when the training script is slow, not broken: stopped by its time limit before its
first optimizer step, nnlint lints the model and optimizer the script had built, with the input of
its first forward, instead of giving up."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

from click.testing import CliRunner

from nnlint.cli import main
from nnlint.script.runner import script_deadline

SCRIPTS = Path(__file__).parent / "scripts"


def nnlint(*args: object) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, [str(arg) for arg in args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def findings(stdout: str) -> dict[str, list[tuple[str, int, str | None]]]:
    document = json.loads(stdout)
    return {t["name"]: sorted((f["code"], f["location"]["line"], f["module"]) for f in t["findings"]) for t in document["targets"]}


def test_a_script_still_in_its_first_evaluation_is_linted_from_what_it_built(tmp_path, process_state):
    shutil.copy(SCRIPTS / "nanogpt_slow_eval.py", tmp_path)
    script = tmp_path / "nanogpt_slow_eval.py"
    # 400 evaluation batches of 0.05 s each at iteration 0: 20 s before the first step, stopped at 2 s.
    code, stdout, stderr = nnlint(script, "--script-timeout", "2", "--format", "json")
    # NN502: AdamW's default weight_decay=0.01 decays the LayerNorms and biases (line 71): the
    # optimizer the script built, found although it never stepped.
    assert findings(stdout) == {"model": [("NN502", 71, None)]}
    assert code == 1, stderr  # from the findings: a slow script is not an unusable one
    notes = json.loads(stdout)["targets"][0]["notes"]
    assert notes[0] == (
        "the script did not reach its first optimizer step within 2 s; linted the model and optimizer it had built "
        "(input from its first forward, its first 4 of 16 samples)"
    )
    assert "the model's own loss (output[1])" in " ".join(notes)  # `logits, loss = model(X, Y)` under no_grad
    assert not (tmp_path / "ckpt.txt").exists()  # nothing after the first step ran


MODEL_NOT_CALLED_YET = """\
    '''A script whose data preparation is slow (a tokenizer pass over a corpus) after it has built
    its model and optimizer inside `main()` (pytorch/examples word_language_model/main.py builds
    the corpus first; many scripts build the model first): stopped there, the model is found in
    `main()`'s locals and its input is inferred.'''
    import os
    import time
    import torch
    from torch import nn

    HERE = os.path.dirname(os.path.abspath(__file__))

    def tokenize(n):
        for _ in range(n):
            time.sleep(0.05)
        return torch.randn(n, 20)

    def main():
        net = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 1))
        optimizer = torch.optim.SGD(net.parameters(), lr=0.01)
        data = tokenize(1000)
        for row in data:
            optimizer.zero_grad()
            net(row).pow(2).mean().backward()
            optimizer.step()
            open(os.path.join(HERE, "steps.txt"), "a").write("step\\n")

    if __name__ == "__main__":
        main()
"""


def test_a_model_built_but_not_called_yet_is_found_in_the_scripts_frames(tmp_path, process_state):
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(MODEL_NOT_CALLED_YET))
    code, stdout, stderr = nnlint(script, "--script-timeout", "2", "--format", "json")
    assert code == 0, stderr
    report = json.loads(stdout)
    assert [t["name"] for t in report["targets"]] == ["net"]  # its name in main()
    assert report["targets"][0]["graph"] is not None
    assert report["targets"][0]["notes"][0] == (
        "the script did not reach its first optimizer step within 2 s; linted the model and optimizer it had built "
        "(its input inferred: it had not called it yet)"
    )
    assert not (tmp_path / "steps.txt").exists()


def test_the_script_limit_leaves_the_lint_of_what_it_built_room_in_the_files_limit():
    assert script_deadline(600.0, 900.0, 60.0) == 600.0  # the defaults: --script-timeout as given
    assert script_deadline(600.0, 115.0, 60.0) == 46.0  # a 115 s file limit: 40 % of it for the script
    assert script_deadline(600.0, 300.0, 60.0) == 210.0  # the probe's 60 s and 30 s for the rest
    assert script_deadline(5.0, 115.0, 60.0) == 5.0
    assert script_deadline(None, 0.0, 60.0) is None  # no file limit, no script limit
