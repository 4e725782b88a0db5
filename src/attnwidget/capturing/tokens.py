"""Token ids -> display strings a person can read, with the raw token kept alongside.

The display convention, the same for every tokenizer family:

* The scheme's word markers are removed, so a token reads as the text it stands for:
  WordPiece ``##ing`` -> ``ing``; byte-level BPE ``Ġcat`` -> ``cat`` (and an
  end-of-word suffix such as CLIP's ``cat</w>`` -> ``cat``); SentencePiece ``▁cat`` -> ``cat``.
  A single leading space (what ``Ġ`` and ``▁`` stand for) is removed only when visible
  text follows it; a token that is nothing but whitespace keeps all of it
  (``Ġ`` -> ``␣``, ``ĠĠĠ`` -> ``␣␣␣``). Word boundaries stay in the raw token.
* Byte-level tokens are mapped back to bytes and decoded as UTF-8. Bytes that do not
  form a whole character (a token holding half an emoji) are shown in hex: ``<F0 9F>``.
  SentencePiece byte-fallback tokens (``<0x0A>``) are decoded the same way.
* Whitespace and control characters are drawn with visible symbols: space ``␣``,
  newline ``↵``, tab ``⇥``, carriage return ``␍``, other C0 controls as their Unicode
  control pictures (NUL ``␀``), DEL ``␡``. Invisible and direction-changing characters
  (bidi overrides such as U+202E, zero-width spaces, other format characters, unusual
  spaces, lone surrogates) are written as ``<U+202E>`` so they can neither hide nor
  reorder what is around them. A token that starts with a combining mark gets a
  dotted circle ``◌`` to sit on.
* Special and added tokens (``[CLS]``, ``<|endoftext|>``) are shown as they are.

Display strings are plain data. Nothing here escapes HTML, because the browser side
inserts tokens as text (``textContent``), never as markup: ``<b>`` stays ``<b>``.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

WORDPIECE = "wordpiece"
BYTE_LEVEL = "byte_level"
SENTENCEPIECE = "sentencepiece"
PLAIN = "plain"

_METASPACE = "\u2581"  # ▁
_NAMED_SYMBOLS = {" ": "\u2423", "\n": "\u21b5", "\t": "\u21e5", "\r": "\u240d", "\x7f": "\u2421"}
_JOINERS = {"\u200c", "\u200d"}  # ZWNJ/ZWJ shape emoji and scripts; harmless between two visible characters
_HIDDEN_CATEGORIES = {"Cc", "Cf", "Cs", "Zl", "Zp", "Zs"}
_BYTE_FALLBACK = re.compile(r"<0x([0-9A-Fa-f]{2})>")
# Python's "surrogateescape" puts an undecodable byte b at U+DC00 + b (b >= 0x80).
_ESCAPED_BYTES = range(0xDC80, 0xDD00)


@dataclass(frozen=True)
class TokenScheme:
    """How a tokenizer marks its pieces: which family, and the marker it uses."""

    kind: str
    marker: str = ""
    """The WordPiece continuation prefix (``##``) or the SentencePiece space (``▁``)."""
    word_end: str = ""
    """A BPE end-of-word suffix (CLIP's ``</w>``), or empty."""


# -- visible text --------------------------------------------------------------------------


def visible_text(text: str) -> str:
    """Draw whitespace, control and invisible characters as visible symbols (see module doc)."""
    return _render(text, escaped_bytes=False)


def _render(text: str, escaped_bytes: bool) -> str:
    pieces: list[str] = []
    pending_bytes: list[int] = []
    for index, char in enumerate(text):
        code = ord(char)
        if escaped_bytes and code in _ESCAPED_BYTES:
            pending_bytes.append(code - 0xDC00)
            continue
        if pending_bytes:
            pieces.append(_hex_bytes(pending_bytes))
            pending_bytes = []
        pieces.append(_visible_char(text, index))
    if pending_bytes:
        pieces.append(_hex_bytes(pending_bytes))
    shown = "".join(pieces)
    if shown and unicodedata.category(shown[0]) in ("Mn", "Mc", "Me"):
        shown = "\u25cc" + shown
    return shown


def _visible_char(text: str, index: int) -> str:
    char = text[index]
    if char in _NAMED_SYMBOLS:
        return _NAMED_SYMBOLS[char]
    code = ord(char)
    if code < 0x20:
        return chr(0x2400 + code)  # the Unicode "control pictures" block mirrors C0 in order
    if char in _JOINERS and 0 < index < len(text) - 1:
        if not (text[index - 1].isspace() or text[index + 1].isspace()):
            return char
    if unicodedata.category(char) in _HIDDEN_CATEGORIES:
        return f"<U+{code:04X}>"
    return char


def _hex_bytes(values: list[int]) -> str:
    return "<" + " ".join(f"{value:02X}" for value in values) + ">"


# -- byte-level alphabet ---------------------------------------------------------------------


@lru_cache(maxsize=1)
def _byte_of_char() -> dict[str, int]:
    """Invert the GPT-2 byte-level alphabet: printable Latin-1 bytes stand for themselves,
    the other 68 bytes are moved, in order, to U+0100 onwards (so a space becomes Ġ)."""
    printable = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    mapping = {chr(byte): byte for byte in printable}
    moved = [byte for byte in range(256) if byte not in mapping.values()]
    mapping.update({chr(0x100 + offset): byte for offset, byte in enumerate(moved)})
    return mapping


def _byte_level_text(raw: str) -> str | None:
    """Decode a byte-level token; undecodable bytes become surrogate escapes. None if not byte-level."""
    alphabet = _byte_of_char()
    if not raw or any(char not in alphabet for char in raw):
        return None
    return bytes(alphabet[char] for char in raw).decode("utf-8", errors="surrogateescape")


# -- one token ---------------------------------------------------------------------------------


def display_token(raw: str, scheme: TokenScheme, special: bool = False) -> str:
    """The display string of one raw token under a scheme (see module doc)."""
    if special:
        return visible_text(raw)
    text, escaped = token_text(raw, scheme)
    shown = _render(_drop_marker_space(text), escaped)
    return shown or visible_text(raw)


def token_text(raw: str, scheme: TokenScheme) -> tuple[str, bool]:
    """(the text a token stands for, whether it may hold surrogate-escaped bytes)."""
    if scheme.kind == WORDPIECE:
        return (raw[len(scheme.marker):] if raw.startswith(scheme.marker) else raw), False
    if scheme.kind == BYTE_LEVEL:
        if scheme.word_end and raw.endswith(scheme.word_end) and len(raw) > len(scheme.word_end):
            raw = raw[: -len(scheme.word_end)]
        decoded = _byte_level_text(raw)
        return (raw, False) if decoded is None else (decoded, True)
    if scheme.kind == SENTENCEPIECE:
        fallback = _BYTE_FALLBACK.fullmatch(raw)
        if fallback:
            return bytes([int(fallback.group(1), 16)]).decode("utf-8", errors="surrogateescape"), True
        return raw.replace(scheme.marker, " "), False
    return raw, False


def _drop_marker_space(text: str) -> str:
    # The one leading space is the word-start marker; keep it when nothing visible follows.
    if len(text) > 1 and text[0] == " " and not text[1].isspace():
        return text[1:]
    return text


# -- schemes -------------------------------------------------------------------------------------


def detect_scheme(tokenizer) -> TokenScheme:
    """The tokenizer's scheme, read from its fast backend (model, pre-tokenizer, decoder),
    or for a tokenizer without one, from the markers its vocabulary uses."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return scheme_from_tokens(list(tokenizer.get_vocab()))
    component_types: set[str] = set()
    metaspace = _METASPACE
    for component in (backend.pre_tokenizer, backend.decoder):
        for node in _json_nodes(_component_state(component)):
            component_types.add(node.get("type", ""))
            if node.get("type") == "Metaspace":
                metaspace = node.get("replacement", metaspace)
            if node.get("type") == "Replace" and _METASPACE in json.dumps(node.get("pattern"), ensure_ascii=False):
                component_types.add("Metaspace")  # Llama-style: "▁" handled by the normalizer and a decoder Replace
    if "ByteLevel" in component_types:
        return TokenScheme(BYTE_LEVEL, word_end=getattr(backend.model, "end_of_word_suffix", None) or "")
    if "Metaspace" in component_types:
        return TokenScheme(SENTENCEPIECE, metaspace)
    if type(backend.model).__name__ == "WordPiece":
        return TokenScheme(WORDPIECE, backend.model.continuing_subword_prefix)
    if "WordPiece" in component_types:
        return TokenScheme(WORDPIECE, "##")
    return TokenScheme(PLAIN)


def _component_state(component) -> object:
    if component is None:
        return None
    return json.loads(component.__getstate__())


def _json_nodes(value: object):
    """Every dict inside a serialized tokenizer component (Sequence nests them)."""
    if isinstance(value, dict):
        yield value
        for child in value.values():
            yield from _json_nodes(child)
    elif isinstance(value, list):
        for child in value:
            yield from _json_nodes(child)


def scheme_from_tokens(tokens: list[str]) -> TokenScheme:
    """Guess the scheme from a whole list of raw tokens by the markers they carry.

    Used when there is no tokenizer to ask (tokens passed in by hand, a slow tokenizer).
    Byte-level needs every token to be spelled in the byte alphabet, so readable text is
    never "decoded" by mistake.
    """
    alphabet = _byte_of_char()
    if any(("\u0120" in token or "\u010a" in token) for token in tokens) and all(
        all(char in alphabet for char in token) for token in tokens if not is_special_token(token)
    ):
        return TokenScheme(BYTE_LEVEL)
    if any(_METASPACE in token for token in tokens):
        return TokenScheme(SENTENCEPIECE, _METASPACE)
    if any(token.startswith("##") and len(token) > 2 for token in tokens):
        return TokenScheme(WORDPIECE, "##")
    return TokenScheme(PLAIN)


_SPECIAL_SHAPES = re.compile(
    r"\[[A-Z][A-Z0-9_]*\]"  # [CLS] [SEP] [PAD] [MASK] [UNK]
    r"|<\|[^|<>\s]+\|>"  # <|endoftext|> <|im_start|> <|eot_id|>
    r"|</?(?:s|pad|unk|mask|bos|eos|cls|sep)>"  # <s> </s> <pad>
    r"|<extra_id_\d+>"  # T5 sentinels
)


def is_special_token(token: str) -> bool:
    """Whether a raw token looks like one of the common special tokens ([CLS], </s>, <|endoftext|>...)."""
    return _SPECIAL_SHAPES.fullmatch(token) is not None


# -- the tokenizer entry point ---------------------------------------------------------------------


def display_tokens(tokenizer, token_ids: list[int]) -> tuple[list[str], list[str]]:
    """Return (display strings, raw tokens) for the ids, one per position.

    An id the tokenizer lacks shows, raw and displayed, as `unknown_id_token(id)`: a model's output can
    hold one, because embedding matrices are often padded past the vocabulary (t5-small has 32,128 rows
    against 32,100 tokens), and what the model produced is shown as it is rather than refused.
    """
    ids = [int(token_id) for token_id in token_ids]
    size = len(tokenizer)
    # Slow tokenizers raise on an id past their vocabulary where fast ones answer None: ask only for the rest.
    raw = [tokenizer.convert_ids_to_tokens(token_id) if 0 <= token_id < size else None for token_id in ids]
    scheme = detect_scheme(tokenizer)
    # Added tokens are stored as plain text, not in the scheme's alphabet, so they are never decoded.
    added = set(getattr(tokenizer, "added_tokens_decoder", {}) or {})
    display = []
    for index, (token_id, token) in enumerate(zip(ids, raw)):
        if token is None:
            raw[index] = unknown_id_token(token_id)
            display.append(raw[index])
        else:
            raw[index] = str(token)
            display.append(display_token(raw[index], scheme, special=token_id in added))
    return display, raw


def unknown_id_token(token_id: int) -> str:
    """The visible stand-in for an id the tokenizer has no token for, e.g. `<id 32101>`."""
    return f"<id {token_id}>"


def readable_tokens(tokens: list[str]) -> list[str]:
    """Display strings for raw tokens given without a tokenizer (scheme guessed from markers)."""
    scheme = scheme_from_tokens(tokens)
    return [display_token(token, scheme, special=is_special_token(token)) for token in tokens]
