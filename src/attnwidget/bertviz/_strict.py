"""Unknown keyword arguments name what the function does accept."""

from __future__ import annotations

import difflib
import functools
import inspect
from typing import Callable, TypeVar

F = TypeVar("F", bound=Callable)


def strict_parameters(function: F) -> F:
    """Wrap `function` so a wrong argument's TypeError lists the accepted parameters (and a near miss).

    Code ported from BertViz may pass a parameter of another BertViz version; Python's own message
    names the stranger but not what to write instead.
    """
    signature = inspect.signature(function)
    accepted = list(signature.parameters)

    @functools.wraps(function)
    def checked(*args, **kwargs):
        try:
            signature.bind(*args, **kwargs)
        except TypeError as error:
            unknown = [name for name in kwargs if name not in signature.parameters]
            hints = [f"{name!r}: did you mean {close[0]!r}?" for name in unknown
                     if (close := difflib.get_close_matches(name, accepted, n=1))]  # fmt: skip
            hint = f" ({'; '.join(hints)})" if hints else ""
            raise TypeError(f"{function.__name__}(): {error}{hint}. It accepts: {', '.join(accepted)}") from None
        return function(*args, **kwargs)

    return checked  # type: ignore[return-value]
