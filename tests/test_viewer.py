"""`budgeteval view` in a real browser: headless Chromium (Debian's) driven by Playwright, site opened from file://.

Runs: a slice of the worked example (real Qwen2.5-Math outputs, `budgeteval import`), and small
runs written from texts with the Qwen3 tokenizer (thinking responses, a `level` group column, forced
mode, a hostile sample, a second run to compare with). One browser for the whole module.
"""

import dataclasses
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from conftest import shared_path
from guards import import_or_need, need
from viewer_runs import write_text_run

from budgeteval.cli import main
from budgeteval.report.runs import load_run
from budgeteval.rundir.manifest import TaskEntry, read_manifest, write_manifest
from budgeteval.viewer import build_site
from budgeteval.viewer.data import cut_offset, problem_entries
from budgeteval.viewer.site import script_json

pytestmark = [pytest.mark.shared]

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("BUDGETEVAL_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 # No name is ever looked up: the browser's own DNS queries would leave loopback (the guard saw one).
                 "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost", "--dns-prefetch-disable"]
BUDGETS = [16, 48, 256]
HOSTILE_ID = "<i>hostile</i>"
HOSTILE = ("<script>window.__pwned = 1</script></textarea></pre><img src=x onerror=\"window.__pwned = 2\">"
           " &amp; &lt;b&gt; &#x3C;script&#x3E; \\frac{1}{ $\\left( \\begin{cases} </script><!-- "
           "<script>window.__pwned = 3</script> \u2028 \u2029 ${window.__pwned = 4} " * 3
           + "\n</think>\n\nThe answer is \\boxed{5}.")
TEXTS = {
    "always": "Two and two.\n</think>\n\nThe answer is \\boxed{4}.",
    "never": "Two and two.\n</think>\n\nThe answer is \\boxed{5}.",
    "cut": "Let me think step by step about this. " * 8 + "\n</think>\n\nThe answer is \\boxed{4}.",
    "flip": "Sum.</think>\\boxed{4}. Wait, let me recheck everything once more, carefully, from the start: "
            "the answer is \\boxed{5}.",
    HOSTILE_ID: HOSTILE,
}
PROBLEMS = [
    {"problem_id": "always", "question": "2+2?", "reference": "4", "level": 1},
    {"problem_id": "never", "question": "2+2?", "reference": "4", "level": 2},
    {"problem_id": "cut", "question": "2+2?", "reference": "4", "level": 2},
    {"problem_id": "flip", "question": "2+2?", "reference": "4", "level": 3},
    {"problem_id": HOSTILE_ID, "question": HOSTILE, "reference": "7", "level": 1},
]


# --- fixtures ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the module; skips when Playwright or the browser cannot start."""
    psutil = import_or_need("psutil", "the viewer tests need psutil (pip install -e '.[view]')")
    sync_api = import_or_need("playwright.sync_api", "playwright is not installed (pip install -e '.[view]')")
    if not Path(CHROMIUM).exists():
        need(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set BUDGETEVAL_CHROMIUM)")
    playwright = sync_api.sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    except Exception as error:  # any launch failure means: no browser on this machine
        playwright.stop()
        need(f"Chromium at {CHROMIUM} does not start headless: {str(error).splitlines()[0]}")
    yield browser
    browser.close()
    playwright.stop()
    # Neither the browser nor Playwright's driver may outlive the tests.
    deadline = time.monotonic() + 10
    while (left := browser_processes(psutil)) and time.monotonic() < deadline:
        time.sleep(0.2)
    for process in left:
        process.kill()
    assert not left, f"processes outlived the browser tests: {[p.pid for p in left]}"


def browser_processes(psutil) -> list:
    """Child processes of this test process that are Chromium or Playwright's driver."""
    found = []
    for process in psutil.Process().children(recursive=True):
        try:
            command = " ".join(process.cmdline()).lower()
        except psutil.Error:
            continue
        if "chrom" in command or "playwright" in command:
            found.append(process)
    return found


@pytest.fixture()
def page(browser):
    """A fresh page; fails the test on any script error the page reports."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, f"the page raised: {errors}"


@pytest.fixture(scope="module")
def qwen3():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(shared_path("tokenizers", "qwen3")))


@pytest.fixture(scope="module")
def example_site(tmp_path_factory):
    """Six problems x 8 samples of the worked example, imported and scored as results/make_example.py does."""
    source = shared_path("generations", "qwen25math_math_cot_100.jsonl")
    tokenizer = shared_path("tokenizers", "qwen2.5")
    root = tmp_path_factory.mktemp("example")
    lines = [line for line in source.read_text(encoding="utf-8").splitlines()
             if json.loads(line)["problem_idx"] < 6]
    (root / "slice.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    fields = ["problem_id=problem_idx", "sample_idx=sample_idx", "response=response", "reference=gold",
              "question=question"]
    result = CliRunner().invoke(main, [
        "import", str(root / "slice.jsonl"), "--task", "math500", "--tokenizer", str(tokenizer),
        *[a for f in fields for a in ("--field", f)], "--budgets", "128,256,384,512,768,1k,2k",
        "--model", "Qwen2.5-Math-7B-Instruct", "--workers", "1", "--out", str(root / "run"), "--quiet",
        "--bootstrap", "0"])
    assert result.exit_code == 0, result.output
    index = build_site([load_run(root / "run")], root / "site")
    return root / "run", index


@pytest.fixture(scope="module")
def text_sites(tmp_path_factory, qwen3):
    """The hand-made run alone (with forced mode), and beside a second run that answers two problems the other way."""
    root = tmp_path_factory.mktemp("texts")
    responses = {pid: [text, text] for pid, text in TEXTS.items()}
    base = write_text_run(root / "base", qwen3, "math500", PROBLEMS, responses, BUDGETS, model="org/base",
                          forced_answer="\\boxed{4}")
    other_responses = {**responses, "always": [TEXTS["never"]] * 2, "never": [TEXTS["always"]] * 2}
    other = write_text_run(root / "other", qwen3, "math500", PROBLEMS, other_responses, BUDGETS, model="org/other")
    # Answer sources set by hand (boxed where an answer was read, else none), so the page's column is known.
    table = pq.read_table(other / "scores.parquet")
    sources = ["boxed" if e is not None else "none" for e in table.column("extracted").to_pylist()]
    position = table.column_names.index("answer_source")
    table = table.set_column(position, "answer_source", pa.array(sources, type=table.schema.field(position).type))
    pq.write_table(table, other / "scores.parquet")
    pair = build_site([load_run(base), load_run(other)], root / "pair")
    return {"base": base, "other": other, "pair": pair}


def open_site(page, index: Path, route: str, ready: str):
    page.goto(index.as_uri() + route)
    wait_ready(page, ready)


def wait_ready(page, ready: str):
    # A function, not a string: the page's CSP forbids the eval a string predicate needs.
    page.wait_for_function("ready => (document.body.dataset.ready || '').startsWith(ready)", arg=ready, timeout=20000)


def visible_problems(page) -> set[str]:
    return set(page.eval_on_selector_all("#grid-table tbody tr", "rows => rows.map(r => r.dataset.problemId)"))


# --- the pure parts ------------------------------------------------------------------------------------


def test_script_json_cannot_end_a_script_and_keeps_the_value():
    value = {"text": "</script><!-- \u2028\u2029 & <b>", "n": [1, 2.5, None]}
    encoded = script_json(value)
    for forbidden in ("</", "<!--", "\u2028", "\u2029", "<", "&"):
        assert forbidden not in encoded
    assert json.loads(encoded) == value


def test_cut_offset_at_a_split_character(qwen3):
    text = "𓀀 𝔸 🦜 ꙮ " * 2  # rare characters: byte-level BPE spreads each over two tokens
    ids = qwen3(text, add_special_tokens=False)["input_ids"]
    split = [b for b in range(1, len(ids)) if qwen3.decode(ids[:b]).endswith("\ufffd")]
    assert split, "the text should have a character spread over several tokens"
    for budget in split:
        prefix = qwen3.decode(ids[:budget])
        offset = cut_offset(text, prefix)
        assert text[:offset] == prefix[:offset] and prefix[offset:].startswith("\ufffd")
    whole = qwen3.decode(ids[:3])
    assert cut_offset(text, whole) == len(whole)


# --- overview, grid, sample page -----------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.browser
def test_overview_numbers_equal_metrics_csv(page, example_site):
    from budgeteval.report.cells import percent as _percent
    from budgeteval.report.cells import percent_with_stderr as _percent_with_stderr
    from budgeteval.report.cells import tokens as _tokens

    run_dir, index = example_site
    open_site(page, index, "#overview", "overview")
    cells = page.eval_on_selector_all("table.report td.metric", "tds => tds.map(td => ({...td.dataset, text: td.textContent}))")
    shown = {(c["mode"], int(c["budget"]), c["metric"], int(c["k"]) if c["k"] else None): c for c in cells}
    metrics = pd.read_csv(run_dir / "metrics.csv")
    expected = metrics[metrics["metric"].isin(["mean", "pass", "maj", "length_mean", "length_median", "truncation_rate"])]
    assert len(shown) == len(expected) > 0
    for row in expected.itertuples(index=False):
        cell = shown[(row.mode, int(row.budget), row.metric, None if math.isnan(row.k) else int(row.k))]
        if math.isnan(row.value):  # a truncation rate the import cannot know: empty in metrics.csv, n/a as in report
            assert row.metric == "truncation_rate" and cell["value"] == "" and cell["text"] == "n/a"
            continue
        assert float(cell["value"]) == row.value
        if row.metric in ("length_mean", "length_median"):
            assert cell["text"] == _tokens(row.value)
        elif row.metric == "truncation_rate":
            assert cell["text"] == _percent(row.value)
        else:
            assert cell["text"] == _percent_with_stderr(row.value, row.stderr)
    assert page.eval_on_selector_all(".figures img", "imgs => imgs.every(i => i.complete && i.naturalWidth > 0)")


@pytest.mark.slow
@pytest.mark.browser
def test_clicking_a_grid_cell_opens_that_problem_at_that_budget(page, example_site):
    run_dir, index = example_site
    open_site(page, index, "#grid", "grid")
    scores = pd.read_parquet(run_dir / "scores.parquet")
    cell = page.locator("#grid-table td.cell[data-budget='384']").nth(2)
    key, correct, total = (cell.get_attribute(f"data-{name}") for name in ("key", "correct", "total"))
    problem_id = page.locator(f"#grid-table tr[data-key='{key}']").get_attribute("data-problem-id")
    rows = scores[(scores["problem_id"] == problem_id) & (scores["budget"] == 384)]
    assert (int(correct), int(total)) == (int(rows["correct"].sum()), len(rows))
    cell.click()
    wait_ready(page, f"sample:{key}:0:384:cutoff")
    assert page.text_content("#sample-problem") == problem_id
    assert page.get_attribute("button.budget.current", "data-budget") == "384"
    assert page.get_attribute("table.verdicts tr.current", "data-budget") == "384"


@pytest.mark.slow
@pytest.mark.browser
def test_cut_markers_sit_at_the_stored_token_offsets(page, example_site):
    from transformers import AutoTokenizer

    run_dir, index = example_site
    tokenizer = AutoTokenizer.from_pretrained(str(run_dir / "tokenizer"))
    generations = pq.read_table(next((run_dir / "generations" / "math500").glob("part-*.parquet"))).to_pandas()
    text = (index.parent / "data" / "index.js").read_text(encoding="utf-8")
    keys = {p["problem_id"]: p["key"] for p in json.loads(text[len("budgeteval.index("):-len(");\n")])["problems"]}
    checked = 0
    for problem_id in sorted(generations["problem_id"].unique(), key=int)[:3]:
        key = keys[problem_id]
        for sample in generations[generations["problem_id"] == problem_id].itertuples():
            ids = list(sample.token_ids)
            if len(ids) <= 256:
                continue
            open_site(page, index, f"#sample/{key}/{sample.sample_idx}/256/cutoff", f"sample:{key}:{sample.sample_idx}:")
            # The response's text before each marker, walking the nodes in order (markers hold no text).
            offsets = page.evaluate("""() => {
                const found = {}; let text = "";
                const walk = (node) => { for (const child of node.childNodes) {
                    if (child.nodeType === 1 && child.classList.contains("cut")) found[child.dataset.budget] = text;
                    else if (child.nodeType === 3) text += child.data; else walk(child); } };
                walk(document.getElementById("response-0"));
                return {found, text};
            }""")
            assert offsets["text"] == tokenizer.decode(ids, skip_special_tokens=True)
            expected = [b for b in (128, 256, 384, 512, 768, 1024, 2048) if b < len(ids)]
            assert sorted(map(int, offsets["found"])) == expected
            for budget in expected:
                prefix = tokenizer.decode(ids[:budget], skip_special_tokens=True)
                assert offsets["found"][str(budget)] == prefix[:cut_offset(offsets["text"], prefix)]
                checked += 1
    assert checked >= 3


@pytest.mark.slow
@pytest.mark.browser
def test_filters_change_the_visible_rows(page, text_sites):
    open_site(page, text_sites["pair"], "#grid", "grid")  # outcomes of the baseline run
    everything = set(TEXTS)
    assert visible_problems(page) == everything
    expected = {"always": {"always"}, "never": {"never", HOSTILE_ID}, "flips": {"flip"},
                "cut_thinking": {"cut", HOSTILE_ID}, "all": everything}
    for outcome, problems in expected.items():
        page.select_option("#filter-outcome", outcome)
        assert visible_problems(page) == problems, outcome
        assert page.text_content("#grid-count") == f"{len(problems)} of {len(everything)} problems"
    page.select_option("#filter-group-column", "level")
    page.select_option("#filter-group-value", "2")
    assert visible_problems(page) == {"never", "cut"}
    page.select_option("#filter-mode", "forced")
    page.select_option("#filter-outcome", "never")
    assert visible_problems(page) == {"never"}  # forced at 16 and 48, `cut` answers 4: right


@pytest.mark.slow
@pytest.mark.browser
def test_two_runs_filters_and_side_by_side(page, text_sites):
    open_site(page, text_sites["pair"], "#grid", "grid")
    page.select_option("#filter-outcome", "base_only")
    assert visible_problems(page) == {"always"}
    page.select_option("#filter-outcome", "other_only")
    assert visible_problems(page) == {"never"}
    page.locator("#grid-table td.cell[data-budget='256'][data-run='1']").first.click()
    wait_ready(page, "sample:1:0:256")
    assert page.eval_on_selector_all("section.run h2", "hs => hs.map(h => h.textContent)") == ["base", "other"]
    assert page.text_content("#response-0") == TEXTS["never"] and page.text_content("#response-1") == TEXTS["always"]
    assert page.locator("section.run[data-run='1'] table.verdicts tr.current td.verdict").text_content() == "✓ correct"
    headers = page.eval_on_selector_all("section.run table.verdicts", "ts => ts.map(t => t.tHead.textContent)")
    assert all("answer source" in header for header in headers)  # every scores.parquet records its sources
    assert page.locator("section.run[data-run='1'] table.verdicts tr.current td").last.text_content() == "boxed"


@pytest.mark.slow
@pytest.mark.browser
def test_forced_mode_shows_the_forcing_string_and_the_stored_answer(page, text_sites):
    open_site(page, text_sites["pair"], "#sample/2/0/16/forced", "sample:2:0:16:forced")
    assert page.text_content("#forced-0 .force-string") == "\n</think>\n\nFinal answer: "
    assert page.text_content("#forced-0 .continuation") == "\\boxed{4}"
    assert page.locator("table.verdicts tr.current td.verdict").text_content() == "✓ correct"
    header = page.eval_on_selector_all("table.verdicts thead th", "ths => ths.map(th => th.textContent)")
    cells = page.eval_on_selector_all("table.verdicts tr.current td", "tds => tds.map(td => td.textContent)")
    row = dict(zip(header, cells))  # forced while thinking: B thinking tokens, the forced answer's tokens
    assert row["cut while thinking"] == "yes" and row["thinking / answer"].startswith("16 / ")
    assert page.text_content("mark.think-end") == "</think>"
    open_site(page, text_sites["pair"], "#sample/0/0/16/forced", "sample:0:0:16:forced")
    assert "nothing was forced" in page.text_content("#forced-0")


@pytest.mark.slow
@pytest.mark.browser
def test_hostile_sample_renders_as_text_and_runs_no_script(page, text_sites):
    site = text_sites["pair"].parent
    for path in (site / "data").rglob("*.js"):
        assert "</script" not in path.read_text(encoding="utf-8").lower()
    for route, ready in (("#grid", "grid"), ("#sample/4/1/48/cutoff", "sample:4:1:48")):
        open_site(page, text_sites["pair"], route, ready)
        assert page.evaluate("window.__pwned") is None
        assert page.evaluate("document.querySelectorAll('main img, main textarea, main script').length") == 0
    assert page.text_content("#sample-problem") == HOSTILE_ID
    assert page.text_content("#question") == HOSTILE
    for response in (page.text_content("#response-0"), page.text_content("#response-1")):
        assert len(response) > 600 and HOSTILE.startswith(response)  # the first 256 tokens, as stored
    assert page.title() == "budgeteval viewer"


def test_code_runs_show_the_program_verdict(tmp_path):
    from synthetic_runs import write_run

    extra = pd.DataFrame([{"task": "t", "problem_id": "p1", "sample_idx": 0, "budget": 1024, "mode": "forced",
                           "num_tokens": 10, "finished": True, "extracted": "time_limit:0123456789ab",
                           "correct": False, "timed_out": False}])
    run_dir = write_run(tmp_path / "run", "org/coder", {1024: {"p1": [(False, 10)]}}, ks=(1,), bootstrap=0,
                        extra_scores=extra)
    write_manifest(run_dir, dataclasses.replace(read_manifest(run_dir), tasks={"t": TaskEntry(scorer="code")}))
    (entry,) = problem_entries([load_run(run_dir)], str)
    (sample,) = entry.payload["runs"][0]["samples"]
    assert sample["verdicts"]["forced"]["1024"]["test_verdict"] == "time_limit"
    assert "test_verdict" not in sample["verdicts"]["cutoff"]["1024"]  # "wrong" is no program verdict
    assert entry.summary["runs"][0]["cutoff"] == {"c": [0], "n": [1], "flags": ["never"]}


def test_payload_carries_the_token_split_and_the_cut_thinking_flag_comes_from_the_scores(text_sites, tmp_path):
    from budgeteval.viewer.data import overview_tables

    run = load_run(text_sites["base"])
    entries = {entry.summary["problem_id"]: entry for entry in problem_entries([run], str)}
    cut = entries["cut"].payload["runs"][0]["samples"][0]["verdicts"]
    at_16, at_256 = cut["cutoff"]["16"], cut["cutoff"]["256"]
    assert (at_16["thinking_tokens"], at_16["answer_tokens"], at_16["cut_thinking"]) == (16, 0, True)
    assert at_256["thinking_tokens"] + at_256["answer_tokens"] == at_256["num_tokens"] and not at_256["cut_thinking"]
    assert "cut_thinking" in entries["cut"].summary["runs"][0]["cutoff"]["flags"]
    assert "cut_thinking" not in entries["always"].summary["runs"][0]["cutoff"]["flags"]
    (table,) = overview_tables(run)
    assert table["header"][-3:] == ["thinking", "answer", "cut thinking %"]
    index = (text_sites["pair"].parent / "data" / "index.js").read_text(encoding="utf-8")
    assert '"name":"tokens"' in index.replace(" ", "")  # the stacked thinking/answer figure is on the overview
    # A run scored before the split (a format-2 scores file): no flag, the split reads None (the page shows n/a).
    old = shutil.copytree(text_sites["base"], tmp_path / "old")
    table = pq.read_table(old / "scores.parquet").drop_columns(["thinking_tokens", "answer_tokens", "cut_thinking"])
    pq.write_table(table.replace_schema_metadata({b"budgeteval_scores_format": b"2"}), old / "scores.parquet")
    before = {e.summary["problem_id"]: e for e in problem_entries([load_run(old)], str)}
    verdict = before["cut"].payload["runs"][0]["samples"][0]["verdicts"]["cutoff"]["16"]
    assert verdict["thinking_tokens"] is None and verdict["cut_thinking"] is None
    assert "cut_thinking" not in before["cut"].summary["runs"][0]["cutoff"]["flags"]


# --- the command ---------------------------------------------------------------------------------------


def test_view_refuses_a_foreign_folder_and_rebuilds_its_own_byte_for_byte(text_sites, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    result = CliRunner().invoke(main, ["view", str(text_sites["base"]), "-o", str(tmp_path)])
    assert result.exit_code == 2 and "not empty" in result.output
    assert CliRunner().invoke(main, ["view", str(text_sites["base"])]).exit_code == 2
    site = text_sites["pair"].parent
    before = {p.relative_to(site): p.read_bytes() for p in site.rglob("*") if p.is_file()}
    result = CliRunner().invoke(main, ["view", str(text_sites["base"]), str(text_sites["other"]), "-o", str(site)])
    assert result.exit_code == 0, result.output
    assert {p.relative_to(site): p.read_bytes() for p in site.rglob("*") if p.is_file()} == before


def test_serve_listens_on_loopback_and_stops_on_ctrl_c(tmp_path):
    from synthetic_runs import RUN_A, write_run

    run = write_run(tmp_path / "run", "org/model-a", RUN_A)  # scores only: no texts, so no tokenizer to load
    process = subprocess.Popen([sys.executable, "-m", "budgeteval.cli", "view", str(run),
                                "-o", str(tmp_path / "site"), "--serve", "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        line = ""
        while not line.startswith("Serving"):
            line = process.stdout.readline()
            assert line, process.stderr.read()
        url = line.split()[1]
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url, timeout=10) as response:
            assert b"viewer.js" in response.read()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
