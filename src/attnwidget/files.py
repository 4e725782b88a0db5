"""Files attnwidget writes (exported pages, images): the target checked up front, then written atomically."""

from __future__ import annotations

import os
import pathlib
import tempfile


def checked_target(path: str | os.PathLike[str]) -> pathlib.Path:
    """`path` as a file that can be written, or an error saying what to pass instead; checked before slow work."""
    target = pathlib.Path(os.fspath(path)).expanduser()
    if target.is_dir():
        raise IsADirectoryError(f"{target} is a folder; give a file name, e.g. {target / 'attention.html'}")
    if not target.parent.is_dir():
        raise FileNotFoundError(f"cannot write {target}: the folder {target.parent} does not exist; create it first")
    return target


def write_atomically(target: pathlib.Path, content: str | bytes) -> None:
    """Write next to `target`, then rename over it: a reader never sees half a file, a failure leaves nothing.

    `content` is text (written as UTF-8) or bytes (an image)."""
    try:
        descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except PermissionError as error:
        raise PermissionError(f"cannot write {target}: no permission to create files in {target.parent}") from error
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(content.encode("utf-8") if isinstance(content, str) else content)
        # mkstemp makes the file private (0600); a page is meant to be shared like any file the user saves.
        os.chmod(temporary, _mode_for(target))
        os.replace(temporary, target)
    except BaseException:
        pathlib.Path(temporary).unlink(missing_ok=True)
        raise


def _mode_for(target: pathlib.Path) -> int:
    if target.exists():
        return target.stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask
