"""Size of attnwidget's self-contained HTML export against BertViz's head_view HTML, on MiniLM.

- attnwidget, attention: `AttentionWidget.from_attention(attentions, tokens).to_html()` on the
  eager attentions of a long text cut to --tokens tokens: the very input BertViz gets.
- attnwidget, model: `AttentionWidget(model, text).to_html()` on the same text, which also
  carries the neuron view's queries and keys, under the default 25 MB size budget.
- BertViz: `head_view(..., html_action="return")`, measured by payload_benchmark.py in its own
  process (at 512 tokens it takes about half a minute and 4-5 GB); --no-bertviz skips it.

    python benchmarks/export_benchmark.py
    python benchmarks/export_benchmark.py --tokens 128 --no-bertviz
"""

from __future__ import annotations

import argparse
import time

from payload_benchmark import LAYERS, HEADS, eager_attention, minilm, run_child

MB = 1e6


def export_from_attention(tokens: int) -> tuple[int, float, str]:
    from attnwidget import AttentionWidget

    attention, token_strings, _ = eager_attention("long", tokens)
    return _timed_export(AttentionWidget.from_attention(attention, token_strings))


def export_from_model(tokens: int) -> tuple[int, float, str]:
    from attnwidget import AttentionWidget
    from payload_benchmark import LONG_TEXT

    model, tokenizer = minilm()
    ids = tokenizer(LONG_TEXT * 8, truncation=True, max_length=tokens)["input_ids"]
    return _timed_export(AttentionWidget(model, tokenizer.decode(ids[1:-1]), tokenizer=tokenizer))


def _timed_export(widget) -> tuple[int, float, str]:
    """(bytes, seconds, what the default size budget left out) of the widget's page."""
    from attnwidget.export import export_page

    start = time.perf_counter()
    page = export_page(widget.capture, widget.selection)
    seconds = time.perf_counter() - start
    return len(page.html.encode()), seconds, f"left out {page.left_out_text()}" if page.left_out else "nothing left out"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=512, help="length of the long input (MiniLM takes up to 512)")
    parser.add_argument("--no-bertviz", action="store_true", help="skip BertViz, which takes minutes and GBs")
    args = parser.parse_args()

    values = LAYERS * HEADS * args.tokens**2
    rows = [
        ("attnwidget export, attention", *export_from_attention(args.tokens)),
        ("attnwidget export, model", *export_from_model(args.tokens)),
    ]
    if not args.no_bertviz:
        bertviz = run_child("bertviz", "long", args.tokens)
        rows.append(("BertViz head_view HTML", bertviz["bytes"], bertviz["seconds"], ""))

    print(f"MiniLM, {args.tokens} tokens, {values:,} attention values\n")
    header = f"{'':<32}{'bytes':>15}{'MB':>9}{'B/value':>9}{'seconds':>9}  contents"
    print(header)
    print("-" * (len(header) + 30))
    for label, size, seconds, contents in rows:
        print(f"{label:<32}{size:>15,}{size / MB:>9.1f}{size / values:>9.3f}{seconds:>9.1f}  {contents}")
    if not args.no_bertviz:
        print(f"\nBertViz's HTML is {rows[-1][1] / rows[0][1]:.0f}x the attnwidget export of the same attention")


if __name__ == "__main__":
    main()
