"""The notebook widget: synced selection traits, their validation, and routing of the browser's messages.

The traits, the `meta` dict and the messages follow docs/data-contract.md, whose names and
bytes are in `wire.py`; what goes up front and what is answered on request is `serving.py`,
pictures are `image.py`, and exported pages are `export.py`.
"""

from __future__ import annotations

import difflib
import inspect
import logging
import math
import os
import pathlib
import weakref
from typing import Any, Callable

import anywidget
import traitlets

from . import serving, wire
from .capturing import Capture, Derivation, resolve_tokenizer
from .capturing.derived import ATTENTION, derived_name, token_on_side, with_derived_stacks
from .capturing.progress import LayerProgress
from .export import DEFAULT_SIZE_BUDGET, ExportedPage, export_page
from .image import DEFAULT_SCALE, ImageRequests, PendingImage

STATIC = pathlib.Path(__file__).parent / "static"
BUNDLE_JS = STATIC / "widget.js"
BUNDLE_CSS = STATIC / "widget.css"

EMBED_ALWAYS = ("_view_name", "_view_module", "_view_module_version", "_anywidget_id")
"""Traits kept in embedded state although equal to their Python default (see get_state)."""

# The ranges of layer, head and token depend on the stack, so a browser change to several
# traits at once applies the stack first.
_APPLY_FIRST = ("stack",)

log = logging.getLogger(__name__)


# Indices refuse True and False: bool is an int to Python, so JSON true would pass as 1. Checked in the
# traits themselves: a browser update skips the validators when the value equals the old one (False == 0).
class _Index(traitlets.Int):
    """An integer index, never a bool."""

    def validate(self, obj: Any, value: Any) -> int:
        if isinstance(value, bool):
            raise traitlets.TraitError(f"{self.name} must be an integer index, not {value!r}")
        return super().validate(obj, value)


class _Indices(traitlets.List):
    """A list of integer indices, never bools."""

    def __init__(self, **kwargs: Any):
        super().__init__(traitlets.Int(), **kwargs)

    def validate(self, obj: Any, value: Any) -> list[int]:
        if isinstance(value, list) and any(isinstance(item, bool) for item in value):
            raise traitlets.TraitError(f"{self.name} must be a list of integer indices, not {wire.quoted(value)}")
        return super().validate(obj, value)


class AttentionWidget(anywidget.AnyWidget):
    """Linked attention views of one capture. Selection traits are two-way: click in the page, read them here.

    Build one from a model (`AttentionWidget(model, text)`), from attention tensors you already have
    (`AttentionWidget.from_attention(attention, tokens)`) or from a `Capture` (`AttentionWidget.from_capture`).
    """

    # Filled per widget from static/ (see _read_bundle); declared here so anywidget adds no defaults.
    _esm = traitlets.Unicode(help="The built frontend module, static/widget.js.").tag(sync=True)
    _css = traitlets.Unicode(help="The built stylesheet, static/widget.css.").tag(sync=True)

    layer = _Index(0, help="Selected layer (0-based) of the selected stack.").tag(sync=True)
    head = _Index(0, help="Focused head (0-based).").tag(sync=True)
    heads = _Indices(help="Heads visible in the head view, ascending, no repeats.").tag(sync=True)
    token = _Index(None, allow_none=True, help="Selected query token index, or None.").tag(sync=True)
    stack = traitlets.Unicode("", help="Selected attention stack, one of the names in meta['stacks'].").tag(sync=True)
    view = traitlets.Enum(wire.VIEWS, default_value="head", help="Visible view.").tag(sync=True)
    theme = traitlets.Enum(wire.THEMES, default_value="auto", help="Colour theme; 'auto' follows the page.").tag(
        sync=True
    )
    pair_filter = traitlets.Enum(
        wire.PAIR_FILTERS,
        default_value=wire.ALL_PAIRS,
        help="Sentence-pair filter of the head view (query side, key side).",
    ).tag(sync=True)
    step = _Index(
        None, allow_none=True, help="Generation step shown (widgets made by generate): selects the token's query row."
    ).tag(sync=True)
    score = traitlets.Unicode(
        "", help="Head score the model view colours, sorts and filters by: a name in meta['head_scores'], or ''."
    ).tag(sync=True)

    meta = traitlets.Dict(help="Tokens, stacks and encoding of the attention (see docs/data-contract.md).").tag(
        sync=True
    )
    _chunks = traitlets.Dict(
        value_trait=traitlets.Bytes(), help="Preloaded uint8 attention chunks, one head each, keyed '<stack>/<layer>/<head>'."
    ).tag(sync=True)
    _thumbs = traitlets.Dict(
        value_trait=traitlets.Bytes(), help="Every head's max-pooled uint8 thumbnail, one value per '<stack>/<layer>'."
    ).tag(sync=True)
    _qk = traitlets.Dict(
        value_trait=traitlets.Bytes(), help="Preloaded query-key records (neuron view), one head each, keyed '<stack>/<layer>/<head>'."
    ).tag(sync=True)

    capture: Capture
    """The capture shown; kept whole so later views (neuron view: queries and keys) can read it."""
    _model: Callable[[], Any] = staticmethod(lambda: None)
    """The model the widget ran, while the user still holds it (a weak reference); nothing for other constructors."""
    _tokenizer: Any = None

    # -- constructors ---------------------------------------------------------------------
    def __init__(self, model: Any, text: str, tokenizer: Any = None, text_pair: str | None = None, **options: Any):
        """Run `model` once on `text` (and `text_pair`) and show its attention.

        `model` is a loaded transformers model, or the name of one to load from local files: a model
        folder, or a Hugging Face name already in your cache (nothing is downloaded).
        `options` are the widget options of `from_capture` (layer, head, view, ...) and, for the rest,
        options of `attnwidget.capture`.
        """
        # Loads torch and transformers only when a model is given.
        from .capturing import capture

        widget_options, capture_options = _split_options(options, "AttentionWidget", capture)
        model, tokenizer = _model_and_tokenizer(model, tokenizer)
        progress = widget_options.get("progress", True)  # both the capture's bar and the thumbnails'
        self._setup(capture(model, tokenizer, text, text_pair, progress=progress, **capture_options), **widget_options)
        self._keep_model(model, tokenizer)

    @classmethod
    def generate(
        cls, model: Any, prompt: str, tokenizer: Any = None, max_new_tokens: int = 20, **generate_kwargs: Any
    ) -> AttentionWidget:
        """Let `model` continue `prompt`, then show the attention of every generated token, one step at a time.

        `model.generate` runs with `max_new_tokens` and `generate_kwargs` (do_sample, temperature, num_beams, ...);
        then one forward pass over the prompt and the output token ids records the attention. Step s (the `step`
        trait, a slider in the page) selects the query that produced generated token s, with its attention to the
        prompt and to the output before it; an encoder-decoder shows it in the cross-attention. Keyword arguments
        named like the widget options (layer, view, step, ...) or `attention_dtype`, `max_memory_bytes` go to the
        widget and the capture, not to generate. The widget opens on step 0 unless `token` or `step` is given.
        """
        from .capturing.generating import generate_capture

        widget_options = {name: generate_kwargs.pop(name) for name in WIDGET_OPTIONS if name in generate_kwargs}
        capture_options = {name: generate_kwargs.pop(name) for name in _CAPTURE_OPTIONS if name in generate_kwargs}
        model, tokenizer = _model_and_tokenizer(model, tokenizer)
        capture = generate_capture(
            model, tokenizer, prompt, max_new_tokens, progress=widget_options.get("progress", True),
            generate_kwargs=generate_kwargs, **capture_options,
        )  # fmt: skip
        if "token" not in widget_options:
            widget_options.setdefault("step", 0)
        widget = cls.from_capture(capture, **widget_options)
        widget._keep_model(model, tokenizer)
        return widget

    def _keep_model(self, model: Any, tokenizer: Any) -> None:
        """Hold the model for `induction_scores`, weakly: the widget must not keep a model of several GB alive after
        the user drops it."""
        self._model = weakref.ref(model)
        self._tokenizer = tokenizer

    @classmethod
    def from_attention(cls, attention: Any = None, tokens: Any = None, **options: Any) -> AttentionWidget:
        """Show attention tensors you already have, e.g. `model(..., output_attentions=True).attentions`.

        `options` are the widget options of `from_capture` and, for the rest, options of
        `attnwidget.capturing.capture_from_attention` (sentence_b_start, encoder_attention, row, ...).
        """
        from .capturing import capture_from_attention

        widget_options, raw_options = _split_options(options, "AttentionWidget.from_attention", capture_from_attention)
        return cls.from_capture(capture_from_attention(attention, tokens, **raw_options), **widget_options)

    @classmethod
    def from_capture(cls, capture: Capture, **options: Any) -> AttentionWidget:
        """Show a `Capture`.

        Options: layer, head, heads, token, stack, view, theme, pair_filter, step (a generated capture's),
        preload_bytes, preload_qk_bytes, progress (False: no progress bar while a long capture's thumbnails are
        computed), word_level (True: open on the word-level stack, whose tokens are words) and derived: the stacks
        derived from the recorded ones, such as "self·rollout", "self·value" and "self·words" (None, the default: for
        inputs of up to `capturing.derived.MAX_DERIVED_VALUES` attention values; True: at any size; False: none, but
        the word-level ones when word_level asks for them). `stack`, `token` and `heads` refer to the stack opened on.
        """
        widget_options = _split_options(options, "AttentionWidget.from_capture")[0]
        widget = cls.__new__(cls)
        widget._setup(capture, **widget_options)
        return widget

    def _setup(
        self,
        capture: Capture,
        *,
        layer: int = 0,
        head: int = 0,
        heads: list[int] | None = None,
        token: int | None = None,
        stack: str | None = None,
        view: str = "head",
        theme: str = "auto",
        pair_filter: str = wire.ALL_PAIRS,
        step: int | None = None,
        score: str = "",
        preload_bytes: int = serving.DEFAULT_PRELOAD_BYTES,
        preload_qk_bytes: int = serving.DEFAULT_PRELOAD_QK_BYTES,
        progress: bool = True,
        word_level: bool = False,
        derived: bool | None = None,
    ) -> None:
        """The one real constructor; every public constructor ends here."""
        if not isinstance(capture, Capture):
            raise TypeError(f"expected an attnwidget.Capture, got {type(capture).__name__}")
        esm, css = _read_bundle()
        # Derived stacks (capturing/derived.py) compute their heads when read: adding them costs their thumbnails. A
        # capture shown before comes with its widget's derived stacks, made anew here for these options.
        capture = with_derived_stacks(capture, measures=derived, words=True if word_level else derived)
        if stack is None:
            stack = capture.stacks[0] if capture.generation is None else capture.generation.stack
        if word_level:
            stack = _words_stack(capture, stack)
        if heads is None:
            heads = list(range(capture.num_heads(stack))) if stack in capture.stacks else []
        self.capture = capture
        self._progress = progress
        self._preload = serving.Preload.within(capture, preload_bytes, preload_qk_bytes)
        self._scores: dict[wire.HeadId, dict[str, float]] = {}
        if _attention_values(capture) <= AUTO_SCORE_VALUES:
            self._add_scores(capture.head_scores(progress=False))
        # Trait validation runs once all of these are set, so the order here does not matter.
        super().__init__(
            _esm=esm,
            _css=css,
            meta=wire.build_meta(
                capture,
                chunks_complete=self._preload.all_attention,
                query_key_complete=self._preload.all_query_key,
                head_scores=wire.head_scores_meta(capture, self._scores),
            ),
            stack=stack,
            layer=layer,
            head=head,
            heads=heads,
            token=token,
            view=view,
            theme=theme,
            pair_filter=pair_filter,
            score=score,
        )
        if step is not None:  # after the token, which it sets
            try:
                self.step = step
            except traitlets.TraitError:
                self.close()  # the comm opened with the other traits: no half-made widget stays behind
                raise
        self.on_msg(self._answer_request)
        self._images = ImageRequests()
        self.on_msg(self._images.receive)

    @classmethod
    def compare(
        cls, a: Any, b: Any, names: tuple[str, str] = ("A", "B"), layers: list[int] | None = None, **options: Any
    ) -> Any:
        """Compare two runs: captures (`attnwidget.capture`) or AttentionWidgets, of two models sharing a tokenizer, or
        a model before and after fine-tuning.

        Over the same tokens (the same token ids on every side), one widget whose stacks are, for each stack S of the
        runs, "A-B:S" (A's attention minus B's, signed, drawn in diverging colours), "A:S" and "B:S", with the run
        names of `names`. It opens on A − B in the matrix view; its model view ranks the heads by the Jensen–Shannon
        distance of A's and B's rows (score "js_distance", also `compare_scores()`). `layers` keeps those layer
        indices of both runs: the difference is held in memory, up to 1 GiB of float32.

        Over different tokens, an `attnwidget.comparison.Comparison`: the two widgets side by side, their selection
        linked. `options` are widget options (`from_capture`), for both widgets there.
        """
        from .analysis.divergence import JS_DISTANCE
        from .capturing.comparing import compare_captures, same_tokens

        first, second = _capture_of(a, "a"), _capture_of(b, "b")
        if not same_tokens(first, second):
            from .comparison import Comparison

            if layers is not None:
                raise ValueError(
                    "layers= picks the layers to subtract, and these runs read different tokens: they are shown side "
                    "by side, every layer; leave layers out"
                )
            widgets = [run if isinstance(run, AttentionWidget) else cls.from_capture(run, **options) for run in (a, b)]
            return Comparison(*widgets, names=names)
        comparison = compare_captures(first, second, names, layers)
        options.setdefault("view", "matrix")
        options.setdefault("derived", False)  # A − B is the point; rollout and words of A and B only on request
        widget = cls.from_capture(comparison.capture, **options)
        widget._distances = comparison.distances
        widget._add_scores(widget.compare_scores())
        if not widget.score:  # the model view opens ranked by where the runs differ
            widget.score = JS_DISTANCE
        return widget

    def compare_scores(self):
        """A pandas DataFrame ranking the heads of a compared widget (`AttentionWidget.compare`) by how differently the
        two runs attend: stack (the difference stack, "A-B:S"), layer, head and `js_distance`, the mean over queries of
        the Jensen–Shannon distance (base 2, 0 to 1) between A's and B's rows; largest first (docs/analysis.md)."""
        from .analysis.divergence import JS_DISTANCE
        from .analysis.scores import scores_frame

        if not self._distances:
            raise ValueError(
                "compare_scores ranks the heads of two compared runs, and this widget shows one run; "
                "build one with AttentionWidget.compare(a, b)"
            )
        rows = [
            {"stack": stack, "layer": layer, "head": head, JS_DISTANCE: distance}
            for (stack, layer, head), distance in self._distances.items()
        ]
        frame = scores_frame(rows, [JS_DISTANCE])
        return frame.sort_values(JS_DISTANCE, ascending=False, kind="stable").reset_index(drop=True)

    _distances: dict[tuple[str, int, int], float] = {}
    """Jensen–Shannon distance of each head of a compared widget's difference stacks; empty for one run."""

    @traitlets.default(wire.ATTENTION_TRAIT)
    def _preloaded_chunks(self) -> dict[str, bytes]:
        # Computed on first read, which is when the comm opens: after the initial stack and layer
        # have been validated, so the one preloaded head of a large capture is the one on screen.
        return self._preload.attention_chunks(self.capture, self.stack, self.layer, self.head)

    @traitlets.default(wire.THUMBNAIL_TRAIT)
    def _thumbnails(self) -> dict[str, bytes]:
        bar = LayerProgress(len(wire.all_chunk_keys(self.capture)), shown=self._progress, description="thumbnails")
        try:
            return wire.all_thumbnails(self.capture, layer_done=bar)
        finally:
            bar.close()

    @traitlets.default(wire.QUERY_KEY_TRAIT)
    def _preloaded_query_keys(self) -> dict[str, bytes]:
        # Read when the comm opens, like `_chunks`: the one preloaded head of a large capture is the one on screen.
        return self._preload.query_key_records(self.capture, self.stack, self.layer, self.head)

    # -- validation: against the capture, the one source of the ranges ----------------------
    @traitlets.validate("stack")
    def _valid_stack(self, proposal: traitlets.Bunch) -> str:
        if proposal.value not in self.capture.stacks:
            raise traitlets.TraitError(
                f"stack {proposal.value!r} does not exist; this widget has stacks {list(self.capture.stacks)}"
            )
        return proposal.value

    @traitlets.validate("layer")
    def _valid_layer(self, proposal: traitlets.Bunch) -> int:
        count = self.capture.num_layers(self._checked_stack())
        return _in_range("layer", proposal.value, count, f"stack {self.stack!r} has")

    @traitlets.validate("head")
    def _valid_head(self, proposal: traitlets.Bunch) -> int:
        count = self.capture.num_heads(self._checked_stack())
        return _in_range("head", proposal.value, count, f"stack {self.stack!r} has")

    @traitlets.validate("heads")
    def _valid_heads(self, proposal: traitlets.Bunch) -> list[int]:
        heads, count = list(proposal.value), self.capture.num_heads(self._checked_stack())
        if heads != sorted(set(heads)) or any(not 0 <= h < count for h in heads):
            raise traitlets.TraitError(
                f"heads must be ascending, without repeats, each in 0..{count - 1}; got {heads}"
            )
        return heads

    @traitlets.validate("token")
    def _valid_token(self, proposal: traitlets.Bunch) -> int | None:
        if proposal.value is None:
            return None
        query_side, _key_side = self.capture.stack_tokens(self._checked_stack())
        return _in_range("token", proposal.value, len(query_side), f"the {query_side.name!r} side has", unit="tokens")

    @traitlets.validate("pair_filter")
    def _valid_pair_filter(self, proposal: traitlets.Bunch) -> str:
        if proposal.value != wire.ALL_PAIRS and not self._stack_has_pair(self._checked_stack()):
            raise traitlets.TraitError(
                f"pair_filter {proposal.value!r} needs a sentence pair, and stack {self.stack!r} has none; use 'all'"
            )
        return proposal.value

    @traitlets.validate("score")
    def _valid_score(self, proposal: traitlets.Bunch) -> str:
        names = [score["name"] for score in (self.meta.get(wire.HEAD_SCORES_META) or {}).get("scores", [])]
        if proposal.value and proposal.value not in names:
            has = f"it has {names}" if names else "it has none yet: call w.head_scores() to compute them"
            raise traitlets.TraitError(f"score {proposal.value!r} is not one of this widget's head scores; {has}")
        return proposal.value

    @traitlets.observe("stack")
    def _fit_selection_to_stack(self, change: traitlets.Bunch) -> None:
        """Fit the selection to the new stack, in one update: the rule of tests/fixtures/stack_fit.json.

        Layer and head are clamped; the visible heads keep those the stack has, or become all of
        them when none remain; the token stays on the same query side, becomes its word on the side of
        its words and a word's first token on the side of its tokens, and is dropped on any other side
        (the same index there names another token); the pair filter becomes "all" without a pair.
        """
        if change.old not in self.capture.stacks:
            return  # the first stack, set by the constructor, which validates the selection against it
        stack, heads = change.new, self.capture.num_heads(change.new)
        visible = [h for h in self.heads if h < heads]
        with self.hold_sync():
            self.layer = min(self.layer, self.capture.num_layers(stack) - 1)
            self.head = min(self.head, heads - 1)
            self.heads = visible or list(range(heads))
            self.token = token_on_side(self.capture, self.token, self._query_side(change.old), self._query_side(stack))
            if not self._stack_has_pair(stack):
                self.pair_filter = wire.ALL_PAIRS

    # -- generation steps: `step` and the token it selects, kept in agreement both ways --------------
    @traitlets.validate("step")
    def _valid_step(self, proposal: traitlets.Bunch) -> int | None:
        generation = self.capture.generation
        if proposal.value is None:
            return None
        if generation is None:
            raise traitlets.TraitError(
                "step is for widgets made by AttentionWidget.generate(model, prompt); this one shows no generation"
            )
        return _in_range("step", proposal.value, generation.steps, "the generation has", unit="steps")

    @traitlets.observe("step")
    def _select_step_row(self, change: traitlets.Bunch) -> None:
        """Select the query row of the new step (switching to the stack that shows it), or no token for None."""
        generation = self.capture.generation
        if generation is None or self._step_of_token() == change.new:
            return
        self._moving_to_step = True
        try:
            with self.hold_sync():
                if change.new is not None and self._query_side(self.stack) != generation.side:
                    self.stack = generation.stack
                self.token = None if change.new is None else generation.row(change.new)
        finally:
            self._moving_to_step = False

    _moving_to_step = False
    """True while `_select_step_row` moves the token (and perhaps the stack): the token passes through None (a stack
    switch clears it), and the step must stay."""

    @traitlets.observe("token", "stack")
    def _step_follows_token(self, _change: traitlets.Bunch) -> None:
        if self.capture.generation is not None and not self._moving_to_step:
            self.step = self._step_of_token()

    def _step_of_token(self) -> int | None:
        """The step whose query row is the selected token, or None."""
        generation = self.capture.generation
        if self.stack not in self.capture.stacks or self._query_side(self.stack) != generation.side:
            return None
        return generation.step_of(self.token)

    def _checked_stack(self) -> str:
        # During construction every trait is validated, the stack perhaps after the others.
        if self.stack not in self.capture.stacks:
            raise traitlets.TraitError(f"stack {self.stack!r} does not exist in this widget")
        return self.stack

    def _query_side(self, stack: str) -> str:
        return self.capture.stack(stack).query_side

    def _stack_has_pair(self, stack: str) -> bool:
        return all(side.segment_b_start is not None for side in self.capture.stack_tokens(stack))

    # -- sharing ----------------------------------------------------------------------------
    @property
    def selection(self) -> dict[str, Any]:
        """The selection traits and their values: what an exported page opens on."""
        return {name: getattr(self, name) for name in wire.SELECTION_TRAITS}

    def to_html(
        self, path: str | os.PathLike[str] | None = None, *, size_budget: int | None = DEFAULT_SIZE_BUDGET,
        title: str | None = None,
    ) -> str | None:
        """One self-contained HTML file of this widget, opening on the current selection; no kernel, no network.

        Writes `path` (replacing it atomically) and returns None, or returns the HTML when `path` is None.
        `size_budget` caps the file in bytes (None: no cap); layers that do not fit are left out, and the
        page says so. `title` defaults to "attnwidget — " and the start of the text.
        """
        page = self.exported_page(path, size_budget=size_budget, title=title)
        return page.html if path is None else None

    def exported_page(
        self, path: str | os.PathLike[str] | None = None, *, size_budget: int | None = DEFAULT_SIZE_BUDGET,
        title: str | None = None,
    ) -> ExportedPage:
        """What `to_html` writes, as an `attnwidget.export.ExportedPage`: the HTML and what its budget left out."""
        return export_page(
            self.capture, self.selection, path, size_budget=size_budget, title=title, thumbnails=self._thumbs,
            head_scores=self.meta.get(wire.HEAD_SCORES_META),
        )  # fmt: skip

    def save_image(
        self, path: str | os.PathLike[str], format: str | None = None, *, scale: float = DEFAULT_SCALE
    ) -> PendingImage:
        """Save the current view, with its selection and a caption, as PNG or SVG (from the extension).

        The displayed widget draws the picture, so the file is written once the browser answers,
        which in a notebook is after this cell has finished. Returns a `PendingImage`: check
        `.done()` or call `.result()` in a later cell. `scale` is PNG pixels per screen pixel.
        Outside a notebook, `attnwidget.headless.render_image(widget, path)` draws it in headless Chromium.
        """
        return self._images.ask(self, path, format, scale)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        # Remembered so save_image can warn that no view exists to draw the picture.
        self._displayed = True
        return super()._repr_mimebundle_(**kwargs)

    def get_state(self, key: Any = None, drop_defaults: bool = False) -> dict[str, Any]:
        """The synced state; with drop_defaults (ipywidgets.embed), still naming anywidget's view.

        A dropped trait takes the browser model's default, and DOMWidgetModel's default view is none
        (`_view_name: null`): an embedded page would then have nothing to render.
        """
        state = super().get_state(key, drop_defaults=drop_defaults)
        if drop_defaults and key is None:
            state.update(super().get_state(EMBED_ALWAYS))
        return state

    # -- analysis (docs/analysis.md) -----------------------------------------------------------
    def head_scores(self, stacks: Any = None, layers: Any = None, progress: bool = True):
        """A pandas DataFrame of head scores, one row per (stack, layer, head): `Capture.head_scores`, of the recorded
        stacks unless `stacks` names derived ones too. The page's model view can then colour, sort and filter its heads
        by them (a widget of a short text has them already)."""
        frame = self.capture.head_scores(stacks, layers, progress)
        self._add_scores(frame)
        return frame

    def induction_scores(self, seq_len: int = 50, batches: int = 4, seed: int = 0):
        """Induction and duplicate-token scores of the model this widget ran (`attnwidget.induction_scores`).

        They need the model itself, run on new input, so a widget built from a `Capture` or from tensors, or whose
        model is no longer held anywhere (the widget keeps only a weak reference, also to a model it loaded from a
        name), cannot give them.
        """
        model = self._model()
        if model is None:
            raise ValueError(
                "induction scores run the model on a repeated random sequence, and this widget holds no model (it "
                "was built from a capture or from tensors, it loaded the model from a name and let it go, or the "
                "model was deleted); load the model and call attnwidget.induction_scores(model, tokenizer)"
            )
        from .analysis.induction import induction_scores

        frame = induction_scores(model, self._tokenizer, seq_len=seq_len, batches=batches, seed=seed)
        self._add_scores(frame)  # the same model's heads: the page's atlas offers them too
        return frame

    def _add_scores(self, frame: Any) -> None:
        """Merge a DataFrame of head scores into the ones the page shows, for the heads this widget has."""
        if frame.empty:
            return
        names = [name for name in frame.columns if name not in ("stack", "layer", "head")]
        for row in frame.itertuples(index=False):
            head = (row.stack, int(row.layer), int(getattr(row, "head")))
            if row.stack in self.capture.stacks and head[1] < self.capture.num_layers(row.stack):
                self._scores.setdefault(head, {}).update({name: _number(getattr(row, name)) for name in names})
        if self.meta:  # constructed already: tell the page
            self.meta = {**self.meta, wire.HEAD_SCORES_META: wire.head_scores_meta(self.capture, self._scores)}

    # -- changes from the browser ---------------------------------------------------------
    def set_state(self, sync_data: dict[str, Any]) -> None:
        """Apply a browser update trait by trait; reject bad values and send the valid state back.

        ipywidgets calls this from the comm handler, so nothing here may raise: an exception would
        leave the browser showing a value Python never accepted.
        """
        rejected = []
        for name in sorted(sync_data, key=lambda name: name not in _APPLY_FIRST):
            value = sync_data[name]
            if name not in wire.BROWSER_WRITABLE:
                log.warning("ignored a browser change to %s: only Python writes it", wire.quoted(name))
                rejected.append(name)
                continue
            if not _flat(value):  # nested values would reach traitlets' recursive repr and validation
                log.warning("ignored %s=%s from the browser: no selection value is nested", name, wire.quoted(value))
                rejected.append(name)
                continue
            try:
                super().set_state({name: value})
            except traitlets.TraitError as error:
                log.warning(
                    "ignored %s=%s from the browser: %s", name, wire.quoted(value), wire.clipped(str(error))
                )
                rejected.append(name)
            except Exception:  # a bug, not bad input, but still must not escape into the comm
                log.exception("failed to apply %s=%s from the browser", name, wire.quoted(value))
                rejected.append(name)
        if rejected:
            self.send_state(rejected)

    def _answer_request(self, _widget: AttentionWidget, content: Any, _buffers: list[bytes]) -> None:
        """Custom-message handler: answer the browser's requests for layers; other messages have other owners."""
        reply = serving.answer_request(self.capture, content)
        if reply is not None:
            self.send(*reply)


# -- helpers ----------------------------------------------------------------------------------
def _capture_of(run: Any, argument: str) -> Capture:
    """The capture of one run given to `compare`: a Capture, or an AttentionWidget's."""
    if isinstance(run, AttentionWidget):
        return run.capture
    if isinstance(run, Capture):
        return run
    raise TypeError(
        f"compare() argument {argument} must be a capture (attnwidget.capture(model, tokenizer, text)) or an "
        f"AttentionWidget, not {type(run).__name__}"
    )


def _model_and_tokenizer(model: Any, tokenizer: Any) -> tuple[Any, Any]:
    """The model, loaded from local files when it is a name, and its tokenizer, the one saved with it by default."""
    from .capturing import check_model, load_model

    if isinstance(model, (str, os.PathLike)):
        return load_model(model, tokenizer)
    check_model(model)  # before looking for its tokenizer: a tokenizer here has one too
    return model, resolve_tokenizer(model) if tokenizer is None else tokenizer


def _read_bundle() -> tuple[str, str]:
    # Read per widget rather than as class-level paths: anywidget opens a class-level path at
    # import time, and a missing bundle would then fail `import attnwidget` with no hint.
    missing = [path for path in (BUNDLE_JS, BUNDLE_CSS) if not path.is_file()]
    if missing:
        raise FileNotFoundError(
            f"the attnwidget frontend bundle is missing ({', '.join(str(path) for path in missing)}). "
            "It is built from js/ with Node: run `pip install .` in a checkout with Node and npm on PATH, "
            "or `npm install && npm run build` in the checkout for a development install."
        )
    return BUNDLE_JS.read_text(encoding="utf-8"), BUNDLE_CSS.read_text(encoding="utf-8")


def _flat(value: Any) -> bool:
    """A selection value's shape: a number, a string, None, or a list of those (heads)."""
    if isinstance(value, dict):
        return False
    return not isinstance(value, list) or not any(isinstance(item, (list, dict)) for item in value)


AUTO_SCORE_VALUES = 2**22
"""Attention values (heads × queries × keys over every stack) up to which a widget scores every head as it is built,
in a fraction of a second: MiniLM up to about 240 tokens. Beyond, `w.head_scores()` computes them."""


def _attention_values(capture: Capture) -> int:
    """Attention values of the recorded stacks: what scoring them all reads."""
    return sum(
        capture.num_layers(stack) * capture.num_heads(stack) * len(query) * len(key)
        for stack in capture.recorded_stacks
        for query, key in [capture.stack_tokens(stack)]
    )


def _number(value: Any) -> float:
    """A score as a float, NaN where pandas has none (an undefined offset is <NA>)."""
    import pandas as pd

    return math.nan if pd.isna(value) else float(value)


def _words_stack(capture: Capture, stack: str) -> str:
    """The word-level stack of the one asked for (itself when it is one), for `word_level=True`."""
    record = capture.stack(stack) if stack in capture.stacks else None
    if record is None:
        raise ValueError(f"stack {stack!r} does not exist; this widget has stacks {list(capture.recorded_stacks)}")
    derivation = record.derivation or Derivation(stack, ATTENTION, False)
    return derived_name(derivation.base, derivation.measure, words=True)


def _in_range(name: str, value: int, count: int, owner: str, unit: str | None = None) -> int:
    if not 0 <= value < count:
        raise traitlets.TraitError(
            f"{name} {value} is out of range: {owner} {count} {unit or name + 's'}, so {name} must be in 0..{count - 1}"
        )
    return value


WIDGET_OPTIONS = tuple(name for name in inspect.signature(AttentionWidget._setup).parameters if name not in ("self", "capture"))
_CAPTURE_OPTIONS = ("attention_dtype", "max_memory_bytes")
"""Keyword arguments of `generate` that go to the capture, not to `model.generate`."""


def _split_options(
    options: dict[str, Any], caller: str, rest_of: Callable[..., Any] | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(widget options, options of `rest_of`) of a constructor's keyword arguments.

    An option neither takes is refused here, with the closest one named: passed on, it would be
    blamed on a function the user never called.
    """
    accepted = [*WIDGET_OPTIONS, *_keyword_only(rest_of)]
    for name in options:
        if name not in accepted:
            close = difflib.get_close_matches(name, accepted, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise TypeError(f"{caller}() has no option {name!r}{hint}; its options are {', '.join(accepted)}")
    widget = {name: value for name, value in options.items() if name in WIDGET_OPTIONS}
    rest = {name: value for name, value in options.items() if name not in WIDGET_OPTIONS}
    return widget, rest


def _keyword_only(function: Callable[..., Any] | None) -> list[str]:
    if function is None:
        return []
    parameters = inspect.signature(function).parameters.values()
    return [parameter.name for parameter in parameters if parameter.kind is inspect.Parameter.KEYWORD_ONLY]
