"""What install.sh and test.sh have already put in place, so they can skip it. Run from the repository root.

    python scripts/install_state.py version DIST      print DIST's installed version (nothing when it is missing)
    python scripts/install_state.py node-modules      exit 0 when node_modules holds what package-lock.json lists
    python scripts/install_state.py tested-package    exit 0 when this Python's attnwidget is this tree, [test] extra included
    python scripts/install_state.py record-tested     note that `pip install .[test]` just ran from this tree
"""

from __future__ import annotations

import hashlib
import json
import sys
from importlib.util import find_spec
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

SOURCE = Path("src/attnwidget")
# In the gitignored build/ folder: which pyproject.toml the last `pip install .[test]` into which Python installed.
STAMP = Path("build/tested-package.json")


def installed_version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return ""


def node_modules_current() -> bool:
    # npm's own record of what it installed; npm ci and npm install both write it.
    record = Path("node_modules/.package-lock.json")
    if not record.is_file():
        return False
    wanted = json.loads(Path("package-lock.json").read_text())["packages"]
    installed = json.loads(record.read_text())["packages"]
    wanted.pop("", None)  # the project itself
    # Optional packages are the platform binaries of other systems: npm installs only this machine's.
    missing = [name for name, entry in wanted.items() if name not in installed and not entry.get("optional")]
    different = [name for name, entry in installed.items() if wanted.get(name) != entry]
    return not missing and not different


def _stamp() -> dict:
    return {"python": sys.prefix, "pyproject": hashlib.sha256(Path("pyproject.toml").read_bytes()).hexdigest()}


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in folder.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


def tested_package_current() -> bool:
    """The installed copy (not an editable one) has this tree's files, bundle included, and was installed with
    the [test] extra of this pyproject.toml, so its requirements are this tree's."""
    if not STAMP.is_file() or json.loads(STAMP.read_text()) != _stamp():
        return False
    spec = find_spec("attnwidget")  # found, not imported: importing it would load torch
    if spec is None or spec.origin is None:
        return False
    installed = Path(spec.origin).parent
    return "site-packages" in installed.parts and _files(installed) == _files(SOURCE)


def record_tested() -> None:
    STAMP.parent.mkdir(exist_ok=True)
    STAMP.write_text(json.dumps(_stamp()))


def main(argv: list[str]) -> int:
    match argv:
        case ["version", dist]:
            print(installed_version(dist))
            return 0
        case ["node-modules"]:
            return 0 if node_modules_current() else 1
        case ["tested-package"]:
            return 0 if tested_package_current() else 1
        case ["record-tested"]:
            record_tested()
            return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
