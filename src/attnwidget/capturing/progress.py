"""A progress bar over the layers of a capture, of its thumbnails or of scoring its heads, long enough to wait for.

It is `tqdm.auto`'s: a widget in a notebook, a line on stderr in a terminal (`attnwidget export`). Whether a
capture is long is known at its first layer, from that layer's size and the number of layers the config gives.
"""

from __future__ import annotations

PROGRESS_MIN_SCORES = 2**28
"""Attention scores (heads x n_query x n_key, over all layers) from which a capture shows a bar: about 268 million,
which a 2-core CPU captures in a few seconds. MiniLM at 512 tokens computes 19 million and shows none; a 32-layer,
32-head model at 512 tokens computes this many, and at 4096 tokens 64 times more (a minute or more)."""


class LayerProgress:
    """Called once per recorded layer with its scores; opens a bar at the first layer if the whole capture
    will compute at least `PROGRESS_MIN_SCORES` of them, and advances it at every layer."""

    def __init__(self, layers: int | None, shown: bool = True, description: str = "capturing attention"):
        self._layers = layers
        """Attention calls the forward pass makes, from the config; None when it does not say."""
        self._shown = shown
        self._description = description
        self._bar = None
        self._seen = 0

    def __call__(self, scores: int) -> None:
        self._seen += 1
        if self._seen == 1 and self._shown and scores * (self._layers or 1) >= PROGRESS_MIN_SCORES:
            from tqdm.auto import tqdm  # transformers depends on tqdm already

            self._bar = tqdm(total=self._layers, desc=self._description, unit="layer")
        if self._bar is not None:
            self._bar.update()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
