"""The capture pipeline: run a model once (or take tensors the user has) and hold its attention as a `Capture`.

Modules: `run` (capture(): the request, tokens, decoder input), `record` (the attention calls, restoring
the model), `watchers` (architectures recorded through module hooks, one module per family), `budget`
(memory estimate and accounting), `result` (Capture and its records), `from_tensors` (a Capture from attention tensors),
`tokens` (display strings of tokens), `loading` (a model and tokenizer from local files, and the checks
of what was passed as the model).

Importing this package stays cheap: the names that load torch and transformers are imported on first use.
"""

from typing import TYPE_CHECKING

from .budget import DEFAULT_MAX_MEMORY_BYTES, MemoryBudgetError
from .from_tensors import capture_from_attention
from .result import Capture, Derivation, Generation, LayerRecord, Sink, StackRecord, TokenSide, rows_per_chunk
from .loading import ModelLoadError, check_model, load_model, resolve_tokenizer

__all__ = [
    "DEFAULT_MAX_MEMORY_BYTES",
    "Capture",
    "Derivation",
    "Generation",
    "IncompleteScoresWarning",
    "LayerRecord",
    "MemoryBudgetError",
    "ModelLoadError",
    "Sink",
    "StackRecord",
    "TextTooLongError",
    "TokenSide",
    "capture",
    "capture_from_attention",
    "check_model",
    "load_model",
    "resolve_tokenizer",
    "rows_per_chunk",
]

if TYPE_CHECKING:  # pragma: no cover
    from .record import IncompleteScoresWarning
    from .run import TextTooLongError, capture


def __getattr__(name: str):
    # These live with the code that runs a model, which imports torch and transformers: load it on first use.
    if name in ("capture", "TextTooLongError"):
        from . import run

        return getattr(run, name)
    if name == "IncompleteScoresWarning":
        from .record import IncompleteScoresWarning

        return IncompleteScoresWarning
    raise AttributeError(f"module 'attnwidget.capturing' has no attribute {name!r}")
