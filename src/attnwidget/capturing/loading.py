"""The model and tokenizer a user names or passes: loaded from local files, or checked before they run.

A name is a model folder or a Hugging Face name already in the local cache; nothing is ever
downloaded. Used by `AttentionWidget(model_or_name, text)` and by the command line alike.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


class ModelLoadError(ValueError):
    """A model or tokenizer that could not be loaded from local files; the message says what to do."""


def load_model(source: str | os.PathLike[str], tokenizer: Any = None) -> tuple[Any, Any]:
    """(model, tokenizer) from a local folder or the Hugging Face cache, never from the network.

    The tokenizer is loaded from the same place unless one is given. An encoder-decoder loads with its
    generation head: by default its decoder reads the model's own output.
    """
    name = os.fspath(source)
    folder = Path(name).expanduser()
    if _looks_like_path(name) and not folder.is_dir():
        raise ModelLoadError(
            f"there is no model folder {name!r}; pass an existing folder or a cached Hugging Face name"
        )
    name = str(folder) if folder.is_dir() else name

    import transformers  # on use: importing attnwidget must not load transformers

    try:
        config = transformers.AutoConfig.from_pretrained(name, local_files_only=True)
        if tokenizer is None:
            tokenizer = _saved_tokenizer(name)
        auto = transformers.AutoModelForSeq2SeqLM if config.is_encoder_decoder else transformers.AutoModel
        model = auto.from_pretrained(name, local_files_only=True)
    except (OSError, ValueError) as error:
        if folder.is_dir():
            raise ModelLoadError(f"could not load a model from the folder {name!r}: {_first_line(error)}") from error
        # transformers words this as a failed download; attnwidget never tried one.
        raise ModelLoadError(
            f"{name!r} is neither a model folder nor a model in your Hugging Face cache, and attnwidget downloads "
            "nothing: download the model once (e.g. `hf download NAME`), or pass a local folder or a loaded model"
        ) from error
    model.eval()
    return model, tokenizer


def resolve_tokenizer(model: Any) -> Any:
    """The tokenizer saved next to `model`, from local files only (no downloads)."""
    config = getattr(model, "config", None)
    name = getattr(model, "name_or_path", None) or getattr(config, "_name_or_path", None)
    if not name:
        raise ValueError(
            "cannot find a tokenizer for this model: it has no name_or_path to load one from. "
            "Pass tokenizer=... (the tokenizer that prepares this model's inputs)."
        )
    try:
        return _saved_tokenizer(name)
    except Exception as error:
        raise ValueError(
            f"could not load a tokenizer for {name!r} from local files ({type(error).__name__}: "
            f"{_first_line(error)}). Pass tokenizer=... (the tokenizer that prepares this model's inputs)."
        ) from error


def _saved_tokenizer(name: str) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=True)
    # Without tokenizer files, transformers 5 builds one of the config's class with an empty vocabulary,
    # which reads every word as unknown: that is no tokenizer at all.
    if len(tokenizer) <= len(tokenizer.all_special_ids):
        raise ValueError(
            f"no tokenizer is saved with {name!r} (only its {len(tokenizer)} special tokens were found); save it "
            "there with tokenizer.save_pretrained(...), or pass the tokenizer"
        )
    return tokenizer


def check_model(model: Any) -> None:
    """Refuse, with what to pass instead, anything that cannot run as the model: a name, a tokenizer, no weights."""
    if isinstance(model, (str, os.PathLike)):
        raise TypeError(
            f"model is the name {os.fspath(model)!r}, not a loaded model; AttentionWidget(name, text) loads it, "
            "or load it yourself with attnwidget.capturing.load_model(name)"
        )
    if _is_tokenizer(model):
        raise TypeError(
            f"a tokenizer ({type(model).__name__}) was passed where the model goes; pass the model first and the "
            "tokenizer after the text: AttentionWidget(model, text, tokenizer=tokenizer)"
        )
    from torch import nn

    if not isinstance(model, nn.Module):
        raise TypeError(
            f"model must be a transformers model (a torch.nn.Module), not {type(model).__name__}; for attention "
            "tensors you already have, use AttentionWidget.from_attention(attention, tokens)"
        )
    on_meta = any(parameter.device.type == "meta" for parameter in model.parameters())
    offloaded = any(hasattr(module, "_hf_hook") for module in model.modules())  # accelerate loads them on use
    if on_meta and not offloaded:
        raise ValueError(
            f"{type(model).__name__} has its weights on the 'meta' device: it was built without weights (e.g. under "
            "init_empty_weights or torch.device('meta')), so it cannot run. Load it with from_pretrained(...), "
            "or load its weights into it first"
        )


def _is_tokenizer(value: Any) -> bool:
    # Duck-typed: transformers' tokenizers and tokenizers' own both have these; no model does.
    return callable(getattr(value, "convert_ids_to_tokens", None)) and not hasattr(value, "forward")


def _looks_like_path(source: str) -> bool:
    # Hub names are "name" or "owner/name"; anything else with a separator or a leading dot is a path.
    return source.startswith((".", "~", "/")) or source.count("/") > 1 or "\\" in source


def _first_line(error: Exception) -> str:
    # transformers' loading errors run to several lines of alternatives; the first one names the problem.
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
