"""The tokenizer saved with a model, for callers that pass a model alone."""

from __future__ import annotations

from typing import Any


def resolve_tokenizer(model: Any) -> Any:
    """The tokenizer saved next to `model`, from local files only (no downloads)."""
    config = getattr(model, "config", None)
    name = getattr(model, "name_or_path", None) or getattr(config, "_name_or_path", None)
    if not name:
        raise ValueError(
            "cannot find a tokenizer for this model: it has no name_or_path to load one from. "
            "Pass tokenizer=... (the tokenizer that prepares this model's inputs)."
        )
    from transformers import AutoTokenizer  # on use: importing the widget must not load transformers

    try:
        return AutoTokenizer.from_pretrained(name, local_files_only=True)
    except Exception as error:
        raise ValueError(
            f"could not load a tokenizer for {name!r} from local files ({_first_line(error)}). "
            "Pass tokenizer=... (the tokenizer that prepares this model's inputs)."
        ) from error


def _first_line(error: Exception) -> str:
    # transformers' loading errors run to several lines of alternatives; the first one names the problem.
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else 'no details'}"
