"""The `budgeteval` command line: a thin layer over the runner, scoring, import and report modules.

User mistakes (unknown task, malformed YAML, a bad budget, k > n, a missing run directory) end
with one sentence on stderr and exit status 2, never a traceback. Run as a program (`entry`), a
command ends its engine and workers on SIGINT/SIGTERM and leaves no process behind
(`budgeteval.processes`); exit status 130 for Ctrl-C, 128 + the signal number for a signal.
"""

import signal
import sys
from pathlib import Path

import click

from budgeteval.errors import UserError
from budgeteval.generation.budgets import DEFAULT_BUDGETS, check_max_tokens, format_budget, parse_budgets
from budgeteval.generation.config import DEFAULT_ANSWER_TOKENS

DEFAULT_BUDGETS_TEXT = ",".join(format_budget(budget) for budget in DEFAULT_BUDGETS)


class _UserErrorGroup(click.Group):
    """Print a `UserError` as one line and exit 2."""

    def invoke(self, ctx):
        from budgeteval.processes import Terminated

        try:
            return super().invoke(ctx)
        except UserError as error:
            click.echo(f"error: {error}", err=True)
            sys.exit(2)
        except Terminated as signalled:  # every cleanup under the command has run by now
            click.echo(f"\nstopped by {signalled}", err=True)
            sys.exit(128 + signalled.signum)
        except KeyboardInterrupt:
            click.echo("\nstopped by Ctrl-C", err=True)
            sys.exit(128 + signal.SIGINT)


def _budgets(_ctx, _param, value):
    return None if value is None else parse_budgets(value)


def _single_budget(value: str, option: str) -> int:
    from budgeteval.generation.budgets import parse_budget

    try:
        return parse_budget(value)
    except UserError as error:
        raise UserError(f"{option}: {error}") from None


def _modes(_ctx, _param, value):
    if value is None:
        return None
    from budgeteval.api import modes_of

    return modes_of(value)


def _bootstrap_options(command):
    """`--bootstrap N` and `--bootstrap-seed S`: the metrics' confidence intervals."""
    command = click.option("--bootstrap-seed", default=0, show_default=True, type=click.IntRange(min=0),
                           help="Seed of the bootstrap resamples (same seed, same intervals).")(command)
    return click.option("--bootstrap", default=1000, show_default=True, type=click.IntRange(min=0),
                        help="Bootstrap resamples over problems for 95% confidence intervals in metrics.csv; 0: none.")(command)


def _answer_policy_option(default):
    """`--answer-policy strict|lenient`: whether a response cut by its budget may be credited from fallback."""
    from budgeteval.scoring.answers import POLICIES

    text = ("How a response cut by its budget is read: strict counts it only with a boxed or stated final "
            "answer (the default); lenient also reads an answer from its text, as math-verify's and lm-eval's "
            "flexible extraction do.")
    if default is None:
        text += " Default: the policy the run was last scored with, else strict."
    return click.option("--answer-policy", "answer_policy", type=click.Choice(POLICIES), default=default,
                        show_default=default is not None, help=text)
def _verdict_cache_option(command):
    """`--verdict-cache DIR`: a verdict cache shared across runs, besides the run's own."""
    return click.option("--verdict-cache", "verdict_cache", type=click.Path(path_type=Path), default=None,
                        help="A folder of verdicts shared across runs (created if missing), read and added to "
                             "besides the run's own RUN/verdicts/: answers any run already verified are not "
                             "verified again. Scores are identical with or without it.")(command)


def _log_option(what: str = "the scored run"):
    """`--log wandb:PROJECT|trackio:PROJECT`: log the scored run (or each watched step) to a tracker."""
    return click.option("--log", "log", default=None, metavar="TRACKER:PROJECT",
                        help=f"Also log {what} to an experiment tracker: wandb:PROJECT or trackio:PROJECT "
                             f"(needs the track extra; WANDB_MODE=offline and Trackio's local store are honoured; "
                             f"see docs/publishing.md).")


def _shard(value: str):
    from budgeteval.generation.shards import parse_shard

    return parse_shard(value)


@click.group(cls=_UserErrorGroup)
@click.version_option(package_name="budgeteval")
def main():
    """Budget-sweep evaluation for reasoning models.

    Generate once at the largest token budget, replay every response at smaller budgets
    exactly as `max_tokens=B` would have cut it, score, and report accuracy per budget.
    """


@main.command("tasks")
@click.option("--lm-eval", "lm_eval", is_flag=True, help="List lm-eval's generate_until tasks instead (run them as "
                                                         "--tasks lm-eval:NAME; needs the lm-eval extra).")
@click.option("--lm-eval-include", type=click.Path(file_okay=False), default=None,
              help="With --lm-eval: also a folder of your own lm-eval task YAMLs.")
def tasks_command(lm_eval, lm_eval_include):
    """List the built-in tasks: name, size, source, scorer."""
    from budgeteval.tasks.loading import builtin_task_paths, load_task_file

    if lm_eval or lm_eval_include:
        from budgeteval.tasks.lm_eval import generate_until_tasks

        rows = generate_until_tasks(lm_eval_include)
        width = max(len(name) for name, _ in rows)
        for name, yaml_path in rows:
            click.echo(f"lm-eval:{name.ljust(width)}  {yaml_path}")
        click.echo(f"\n{len(rows)} lm-eval generate_until tasks; options: --task-option lm-eval:NAME.KEY=VALUE with "
                   f"KEY num_fewshot, metric (METRIC,FILTER) or scorer.")
        return

    tasks = [load_task_file(path) for _, path in sorted(builtin_task_paths().items())]
    rows = []
    for task in tasks:
        source = task.source.path + (f" ({task.source.name})" if task.source.name else "") + f" [{task.source.split}]"
        groups = ",".join(name for name, _ in task.groups) or "-"
        rows.append((task.name, str(task.size or "?"), source, task.scorer, f"v{task.version}", groups, task.description))
    header = ("name", "size", "source", "scorer", "version", "groups", "description")
    widths = [max(len(row[i]) for row in rows + [header]) for i in range(len(header))]
    for row in [header] + rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    for task in tasks:
        if task.options:
            click.echo(f"\n{task.name} options (--task-option {task.name}.KEY=VALUE):")
            for option in task.options:
                values = f" [{', '.join(value for value, _ in option.choices)}]" if option.choices else ""
                click.echo(f"  {option.name}: {option.help} (default: {option.default or 'off'}){values}")
    _echo_suites()
    click.echo("\nA task of your own: write a YAML file (see docs/tasks.md, 'Adding a task') and pass its path to --tasks.")


def _echo_suites() -> None:
    from budgeteval.tasks.suites import builtin_suites

    suites = builtin_suites()
    if suites:
        click.echo("\nSuites (--tasks NAME runs all of its tasks):")
        width = max(len(name) for name in suites)
        for name, suite in suites.items():
            click.echo(f"  {name.ljust(width)}  {', '.join(suite.tasks)}  ({suite.description})")


@main.command("run")
@click.option("--model", required=True, help="Hugging Face model id or local checkpoint path.")
@click.option("--tasks", "tasks", required=True, help="Comma-separated task names (see `budgeteval tasks`) or YAML paths.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Run directory to create or resume.")
@click.option("--backend", type=click.Choice(["vllm", "openai", "hf", "ray"]), default="vllm", show_default=True,
              help="vllm: in-process engine; openai: OpenAI-compatible servers (--base-url); hf: transformers "
                   "generate; ray: a Ray Data pipeline of vLLM engines on a Ray cluster (--ray-address).")
@click.option("--n", default=1, show_default=True, type=click.IntRange(min=1), help="Samples per problem.")
@click.option("--budgets", default=DEFAULT_BUDGETS_TEXT, show_default=True, callback=_budgets,
              help="Token budgets to replay (2k = 2048); generation uses the largest.")
@click.option("--temperature", default=0.6, show_default=True, type=float)
@click.option("--top-p", default=0.95, show_default=True, type=float)
@click.option("--top-k", default=-1, show_default=True, type=int, help="-1 disables top-k.")
@click.option("--min-p", default=0.0, show_default=True, type=float)
@click.option("--seed", default=0, show_default=True, type=int, help="Run seed; each request's seed derives from it.")
@click.option("--limit", type=click.IntRange(min=1), help="Only the first N problems of each task.")
@click.option("--data", "data", multiple=True, metavar="TASK=PATH",
              help="Read TASK from a local JSONL/parquet file with the hub dataset's columns (repeatable).")
@click.option("--task-option", "task_options", multiple=True, metavar="TASK.KEY=VALUE",
              help="Set an option the task declares, e.g. livecodebench.release=release_v6 (repeatable; see `budgeteval tasks`).")
@click.option("--lm-eval-include", type=click.Path(file_okay=False), default=None,
              help="A folder of your own lm-eval task YAMLs (lm-eval's include_path) for lm-eval:NAME tasks.")
@click.option("--tokenizer", help="Tokenizer id/path (default: the model's).")
@click.option("--revision", help="Model revision on the hub.")
@click.option("--chat-template/--no-chat-template", default=True, show_default=True,
              help="Wrap questions in the tokenizer's chat template (off for base models).")
@click.option("--system-prompt", help="System message (overrides the task's).")
@click.option("--enable-thinking/--disable-thinking", default=None,
              help="Pass enable_thinking to the chat template (default: the template's own default).")
@click.option("--think-end", default=None,
              help="End-of-thinking marker; default: </think> when the tokenizer has it. '' treats output as plain answers.")
@click.option("--dtype", default="auto", show_default=True)
@click.option("--tensor-parallel-size", default=1, show_default=True, type=click.IntRange(min=1))
@click.option("--data-parallel-size", default=1, show_default=True, type=click.IntRange(min=1))
@click.option("--max-model-len", type=click.IntRange(min=1), help="vLLM context length (default: the model's).")
@click.option("--gpu-memory-utilization", default=0.9, show_default=True, type=float)
@click.option("--enforce-eager", is_flag=True, help="vLLM: disable CUDA graphs (always on for vLLM's CPU build).")
@click.option("--base-url", "base_urls", multiple=True,
              help="openai backend: server URL, e.g. http://127.0.0.1:8000/v1; repeat it for several servers of "
                   "the same model (least outstanding requests, failover).")
@click.option("--api-key-env", default="OPENAI_API_KEY", show_default=True,
              help="openai backend: environment variable with the API key.")
@click.option("--concurrency", default=32, show_default=True, type=click.IntRange(min=1),
              help="openai backend: requests in flight.")
@click.option("--max-retries", default=5, show_default=True, type=click.IntRange(min=0))
@click.option("--device", default="auto", show_default=True, help="hf backend: torch device.")
@click.option("--ray-address", default=None,
              help="ray backend: cluster address (auto, ray://host:10001, host:6379); default: start a local one.")
@click.option("--modes", default="cutoff", show_default=True, callback=_modes,
              help="Budget modes: cutoff (replay the one generation), forced (force an answer at each budget from "
                   "it), conditioned (the budget in the prompt, one generation per budget), engine (the engine's own "
                   "thinking budget, one generation per budget; vllm, ray, openai). Comma-separated.")
@click.option("--answer-tokens", default=DEFAULT_ANSWER_TOKENS, show_default=True, type=click.IntRange(min=1),
              help="forced, engine: answer tokens generated after the forcing string.")
@click.option("--force-string", default=None,
              help="forced, engine: end-of-thinking string + answer cue appended (forced by the engine) at the budget "
                   "(default: the model family's).")
@click.option("--budget-prompt", default=None, metavar="TEMPLATE",
              help="conditioned: instruction naming the budget, e.g. 'Think for {budget} tokens.' ({budget} is the "
                   "only placeholder).")
@click.option("--budget-prompt-position", type=click.Choice(["suffix", "prefix", "system"]), default="suffix",
              show_default=True, help="conditioned: put the instruction after the question, before it, or in the "
                                      "system prompt.")
@click.option("--conditioned-max-tokens", default=None, callback=lambda c, p, v: None if v is None else
              _single_budget(v, "--conditioned-max-tokens"),
              help="conditioned: token limit of each generation (default: the largest budget).")
@click.option("--shard", default=None, metavar="I/N",
              callback=lambda c, p, v: None if v is None else _shard(v),
              help="Generate only shard I of N (0 <= I < N; problems split by a hash of task and problem id) into "
                   "--out; `budgeteval merge` joins the N shard directories into one run.")
@click.option("--problems-per-shard", default=64, show_default=True, type=click.IntRange(min=1),
              help="Problems per engine call and per stored shard (resume granularity).")
@click.option("--workers", default=4, show_default=True, type=click.IntRange(min=1), help="Scoring processes.")
@click.option("--k", "ks", default=None, help="k values for the printed report (default: 1 and n).")
@click.option("--overwrite", is_flag=True, help="Discard an existing run in --out instead of resuming it.")
@click.option("--strict", is_flag=True,
              help="Refuse a task holding a problem that cannot be judged (LiveCodeBench without test cases) "
                   "instead of skipping it with a warning.")
@click.option("--quiet", is_flag=True, help="No progress bars or report.")
@_answer_policy_option("strict")
@_verdict_cache_option
@_bootstrap_options
@_log_option()
def run_command(**options):
    """Generate once at the largest budget, replay at every budget, score and report.

    Re-running the same command resumes an interrupted run; a different configuration is refused
    unless --overwrite.
    """
    from budgeteval import api

    settings = dict(options)
    model, tasks, out, ks = (settings.pop(name) for name in ("model", "tasks", "out", "ks"))
    settings["base_url"] = list(settings.pop("base_urls"))
    settings["progress"] = not settings.pop("quiet")
    config = api.run_config(model, tasks, out=out, **settings)
    ks = api.default_ks(config.n, ks)  # checked before the model loads
    run_dir = api.evaluate(model, tasks, out=out, **settings).path
    if not options["quiet"]:
        _print_report(run_dir, ks, "markdown")
        _print_endpoints(run_dir)
        click.echo(f"\nRun directory: {run_dir}")


@main.command("merge")
@click.argument("shard_dirs", nargs=-1, required=True, type=click.Path(path_type=Path), metavar="SHARD_DIR...")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Run directory to write the merged run to.")
@click.option("--workers", default=4, show_default=True, type=click.IntRange(min=1), help="Scoring processes.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out.")
@click.option("--quiet", is_flag=True, help="No progress bars or report.")
def merge_command(shard_dirs, out, workers, overwrite, quiet):
    """Join the shard directories of `run … --shard I/N` into one run directory and score it.

    Checks that the shards come from one command (same generation settings) and cover every
    problem exactly once; the merged scores equal those of the same run without --shard.
    """
    from budgeteval.ingest.merge import merge_runs

    run_dir = merge_runs(shard_dirs, out, overwrite=overwrite, workers=workers, progress=not quiet)
    if not quiet:
        _print_report(run_dir, None, "markdown")
        click.echo(f"\nRun directory: {run_dir}")


@main.command("score")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--budgets", default=None, callback=_budgets,
              help="Budgets to score at (default: the run's own); at most the budget it was generated with.")
@click.option("--modes", default=None, callback=_modes,
              help="Budget modes to score (default: the run's own); forced, conditioned and engine need their "
                   "stored generations.")
@click.option("--workers", default=4, show_default=True, type=click.IntRange(min=1), help="Scoring processes.")
@click.option("--quiet", is_flag=True, help="No progress bars or report.")
@_answer_policy_option(None)
@_verdict_cache_option
@_bootstrap_options
@_log_option()
def score_command(run_dir, budgets, modes, workers, quiet, answer_policy, verdict_cache, bootstrap, bootstrap_seed, log):
    """Re-score a saved run (no model needed), e.g. at new budgets: score RUN --budgets 1k,3k,
    or under the other answer policy: score RUN --answer-policy lenient."""
    from budgeteval.api import score

    score(run_dir, budgets=budgets, workers=workers, progress=not quiet, modes=modes, bootstrap=bootstrap,
          bootstrap_seed=bootstrap_seed, answer_policy=answer_policy, verdict_cache=verdict_cache, log=log)
    if not quiet:
        _print_report(run_dir, None, "markdown")


@main.command("repair")
@click.argument("run_dir", type=click.Path(path_type=Path))
def repair_command(run_dir):
    """Remove duplicate samples from a run's stores, keeping one copy of each (identical copies only).

    For a directory two runs wrote at once (before runs took a lock) or with shards copied in; it
    refuses when two copies of a sample differ. Re-run the run's own command afterwards.
    """
    from budgeteval.rundir.lock import lock_run
    from budgeteval.rundir.manifest import read_manifest
    from budgeteval.rundir.store import CONDITIONED, CONTINUATIONS, ENGINE, GENERATIONS, repair_task

    manifest = read_manifest(run_dir)
    with lock_run(run_dir, "repair"):
        removed = sum(repair_task(run_dir, task, kind) for kind in (GENERATIONS, CONTINUATIONS, CONDITIONED, ENGINE)
                      for task in manifest.tasks)
    click.echo(f"{run_dir}: removed {removed} duplicate row(s)" + (
        "; re-run the command that made the run (or `budgeteval score`) to finish it." if removed else
        " (none found)."))


@main.command("report")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--k", "ks", default=None, help="Comma-separated k values (default: 1 and n).")
@click.option("--format", "fmt", type=click.Choice(["markdown", "csv", "json"]), default="markdown", show_default=True)
@click.option("--by", "by", default=None, metavar="GROUP",
              help="Break each table down by a group the task declares (e.g. level, subject; see docs/tasks.md).")
def report_command(run_dir, ks, fmt, by):
    """Print a table per task x budget: mean@k, pass@k, maj@k, length, truncation."""
    from budgeteval.api import report

    click.echo(report(run_dir, k=ks, by=by, fmt=fmt))


@main.command("import")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--task", "task_name", required=True, help="Task the generations answer (name or YAML path).")
@click.option("--tokenizer", required=True, help="Tokenizer of the model that wrote them (id or path).")
@click.option("--field", "fields", multiple=True, metavar="NAME=COLUMN",
              help="Map a column: problem_id, response, sample_idx, reference, question, prompt, finish_reason.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Run directory to write.")
@click.option("--budgets", default=DEFAULT_BUDGETS_TEXT, show_default=True, callback=_budgets)
@click.option("--max-tokens", type=click.IntRange(min=1),
              help="Token limit the outputs were generated with; without it and without a finish_reason "
                   "field, whether a response was cut is unknown (truncation n/a).")
@click.option("--cut-tolerance", default=0.02, show_default=True, type=click.FloatRange(0, 1, max_open=True),
              help="With --max-tokens M: a response of at least (1 - tolerance) x M re-tokenized tokens with no "
                   "end-of-sequence and no final answer counts as cut (re-tokenizing undercounts).")
@click.option("--unfinished-text", type=click.Choice(["cut", "unknown"]), default="cut", show_default=True,
              help="Without a finish reason and --max-tokens: a response whose text stops mid-sentence (no "
                   ". ! ? ) ] } $ * > or \\] at its end) counts as cut (cut), or its finish stays unknown (unknown).")
@click.option("--model", help="Label for the model (default: the tokenizer).")
@click.option("--data", "data", multiple=True, metavar="TASK=PATH", help="Local data file for the task's references.")
@click.option("--task-option", "task_options", multiple=True, metavar="TASK.KEY=VALUE",
              help="Set an option the task declares (repeatable), as for `run`.")
@click.option("--think-end", default=None, help="End-of-thinking marker ('' for plain answers).")
@click.option("--format", "file_format", type=click.Choice(["table", "lm-eval", "lighteval"]), default="table",
              show_default=True, help="table: one row per sample (map columns with --field); lm-eval: lm-eval's "
                                      "--log_samples file (samples_<task>_<date>.jsonl); lighteval: lighteval's "
                                      "details parquet.")
@click.option("--lm-eval-include", type=click.Path(file_okay=False), default=None,
              help="A folder of your own lm-eval task YAMLs, for --task lm-eval:NAME.")
@click.option("--workers", default=4, show_default=True, type=click.IntRange(min=1))
@click.option("--overwrite", is_flag=True)
@click.option("--quiet", is_flag=True)
@_answer_policy_option("strict")
@_verdict_cache_option
@_bootstrap_options
def import_command(path, task_name, tokenizer, fields, out, budgets, max_tokens, cut_tolerance, unfinished_text, model, data,
                   task_options, think_end, file_format, lm_eval_include, workers, overwrite, quiet, answer_policy,
                   verdict_cache, bootstrap, bootstrap_seed):
    """Make a run directory from existing generations (JSONL/parquet, one row per sample, or another
    harness's output with --format), then score it."""
    from budgeteval.api import import_outputs

    run_dir = import_outputs(
        path, task=task_name, tokenizer=tokenizer, out=out, fields=fields, format=file_format, budgets=budgets,
        max_tokens=max_tokens, cut_tolerance=cut_tolerance, model=model, data=data, task_options=task_options,
        think_end=think_end, lm_eval_include=lm_eval_include, workers=workers, overwrite=overwrite,
        answer_policy=answer_policy, verdict_cache=verdict_cache, bootstrap=bootstrap, bootstrap_seed=bootstrap_seed,
        unfinished_text=unfinished_text, progress=not quiet).path
    if not quiet:
        _print_report(run_dir, None, "markdown")


@main.command("compare")
@click.argument("runs", nargs=-1, required=True, metavar="RUN[=LABEL]...")
@click.option("--baseline", default=None,
              help="The run the others are compared with: its label or path (default: the first run).")
@click.option("--k", "k", type=click.IntRange(min=1), default=None,
              help="Samples per problem for mean@k and pass@k (default: the largest k every run has).")
@click.option("--format", "fmt", type=click.Choice(["markdown", "latex", "csv"]), default="markdown", show_default=True)
@click.option("--params", "params", multiple=True, metavar="[RUN=]SIZE",
              help="Model parameter count for ACU, e.g. 1.7B or 500M: a bare SIZE for every run, RUN=SIZE (a run's "
                   "label or path) for one; repeatable. Without it ACU is left empty.")
@click.option("--modes", "modes", default=None, metavar="A,B",
              help="Compare two budget modes of one run instead (e.g. forced,engine): answer agreement per budget "
                   "and B's accuracy minus A's with a paired bootstrap interval.")
def compare_command(runs, baseline, k, fmt, params, modes):
    """Compare runs with a baseline per task x budget: mean@k, pass@k, length, AES, OckScore, ACU, curve area,
    budget at 95%.

    Label a run with RUN=label (default: the basename of its model). With --modes A,B: compare two
    modes of one RUN.
    """
    if modes is not None:
        from budgeteval.report.modes import compare_run_modes

        if len(runs) != 1 or baseline is not None or k is not None or params:
            raise UserError(f"compare --modes {modes} compares two modes of one run: give exactly one RUN and no "
                            f"--baseline, --k or --params.")
        names = tuple(mode.strip() for mode in modes.split(",") if mode.strip())
        click.echo(compare_run_modes(runs[0].split("=", 1)[0], names).format(fmt), nl=False)
        return
    from budgeteval.api import load_runs
    from budgeteval.report.compare import compare_runs, parse_params
    from budgeteval.report.runs import resolve_label

    loaded = load_runs(runs)
    _note_unshared_tasks(loaded)
    if baseline is not None:
        baseline = resolve_label(loaded, baseline)
    sizes = {}
    for entry in params:
        name, _, size = entry.rpartition("=")
        sizes[resolve_label(loaded, name, "--params") if name else None] = parse_params(size)
    click.echo(compare_runs(loaded, baseline=baseline, k=k, params=sizes).format(fmt), nl=False)


@main.command("analyze")
@click.argument("runs", nargs=-1, required=True, metavar="RUN[=LABEL]...")
@click.option("--baseline", default=None,
              help="The run the others are compared with and the difficulty buckets come from (default: the first).")
@click.option("--format", "fmt", type=click.Choice(["markdown", "latex", "csv"]), default="markdown", show_default=True)
@click.option("--table", "tables", default=None,
              help="Comma-separated tables to print: profile, gains, buckets, trace, early_exit (default: all "
                   "available; CSV takes one).")
@click.option("--buckets", "buckets", default="0,0.5,1", show_default=True,
              help="Edges of the difficulty buckets (the baseline's pass rate at its largest budget), e.g. "
                   "0,0.25,0.5,0.75,1.")
@click.option("--trace/--no-trace", default=None,
              help="First-correct-answer positions (math tasks with stored generations); default: where possible.")
@click.option("--early-exit", is_flag=True,
              help="Simulate stopping at the first forced-mode probe where the last m answers agree.")
@click.option("--agree", "windows", default="2,3,4", show_default=True, help="The m values of --early-exit.")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(min=1),
              help="Scoring processes for the intermediate answers.")
def analyze_command(runs, baseline, fmt, tables, buckets, trace, early_exit, windows, workers):
    """Per-problem budget profiles, problems gained/lost, difficulty buckets, first-correct positions, early exit.

    Label a run with RUN=label (default: the basename of its model).
    """
    from budgeteval.api import analyze, load_runs

    names = [name.strip() for name in tables.split(",") if name.strip()] if tables else None
    result = analyze(load_runs(runs), baseline=baseline, tables=names, buckets=buckets, trace=trace,
                     early_exit=early_exit, agree=windows, workers=workers)
    click.echo(result.format(fmt, names), nl=False)


@main.command("plot")
@click.argument("runs", nargs=-1, required=True, metavar="RUN[=LABEL]...")
@click.option("-o", "--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the figures (created if needed).")
@click.option("--format", "formats", default="pdf,png", show_default=True,
              help="Comma-separated file formats: pdf, png, svg.")
@click.option("--k", "k", type=click.IntRange(min=1), default=None,
              help="Samples per problem for mean@k (default: the largest k every run has).")
@click.option("--by", "by", type=click.Choice(["budget", "step"]), default="budget", show_default=True,
              help="x axis: token budget, or training step (RUN is then a folder `budgeteval watch` or "
                   "BudgetEvalCallback wrote).")
@click.option("--kind", "kinds", default="budget", show_default=True,
              help="Comma-separated figures: budget (the four budget-sweep figures), tokens (thinking and answer "
                   "tokens stacked per budget), pareto, pass_at_k, difficulty, after_first_correct, early_exit.")
@click.option("--pass-budgets", default=None, callback=_budgets,
              help="pass_at_k: budgets to draw (default: each run's smallest and largest).")
@click.option("--buckets", "buckets", default="0,0.5,1", show_default=True,
              help="difficulty: edges of the baseline's pass-rate buckets, e.g. 0,0.25,0.5,0.75,1.")
@click.option("--baseline", default=None, help="difficulty: the run whose pass rates define the buckets (default: the first).")
def plot_command(runs, out, formats, k, by, kinds, pass_budgets, buckets, baseline):
    """Draw budget-sweep figures: accuracy, truncation, mean length and length distribution vs budget.

    Label a run with RUN=label (default: the basename of its model). Writes
    accuracy, truncation, length and length_distribution in each format to --out.
    With --by step: accuracy and mean length vs training step, a line per budget (training_dynamics).
    With --kind: tokens (mean thinking and answer tokens stacked per budget) or the analysis figures
    (accuracy vs tokens with the Pareto front, pass@k vs k, accuracy per difficulty bucket, tokens after
    the first correct answer, early exit).
    """
    from budgeteval.api import figure_kinds, load_runs, plot

    if by == "step":
        paths = plot(runs, out, formats=formats, k=k, by="step")
    else:
        figure_kinds(kinds)  # an unknown kind before any run is read
        loaded = load_runs(runs)
        _note_unshared_tasks(loaded)
        paths = plot(loaded, out, formats=formats, k=k, kind=kinds, pass_budgets=pass_budgets, buckets=buckets,
                     baseline=baseline)
    for path in paths:
        click.echo(str(path))


@main.command("watch")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--task", "task_name", required=True,
              help="Task the validation set is (name or YAML path): picks the scorer.")
@click.option("--tokenizer", required=True, help="The policy's tokenizer (hub id or local path).")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for step runs, metrics_by_step.csv and watch.json.")
@click.option("--budgets", default=DEFAULT_BUDGETS_TEXT, show_default=True, callback=_budgets)
@click.option("--max-tokens", type=click.IntRange(min=1),
              help="verl's data.max_response_length (default: the largest budget).")
@click.option("--think-end", default=None, help="End-of-thinking marker ('' for plain answers; default: the tokenizer's).")
@click.option("--data", "data", multiple=True, metavar="TASK=PATH", help="Local data file for the task.")
@click.option("--workers", default=4, show_default=True, type=click.IntRange(min=1), help="Scoring processes.")
@click.option("--once", is_flag=True, help="Score the steps present now and exit (no polling).")
@click.option("--interval", default=60.0, show_default=True, type=click.FloatRange(min=0.1),
              help="Seconds between polls of FOLDER.")
@click.option("--quiet", is_flag=True)
@_log_option("each scored step's metrics (at its training step; one tracker run named after --out)")
def watch_command(folder, task_name, tokenizer, out, budgets, max_tokens, think_end, data, workers, once, interval,
                  quiet, log):
    """Follow verl's validation_data_dir (one <step>.jsonl per validation) and score each step at the budgets.

    Appends every step's metrics to OUT/metrics_by_step.csv (plot it with `budgeteval plot OUT --by step`).
    """
    from budgeteval.api import data_files_of, log_destination
    from budgeteval.train.watch import WatchConfig, watch

    check_max_tokens(max_tokens, budgets)
    config = WatchConfig(folder=folder, out=out, task=task_name, tokenizer=tokenizer, budgets=tuple(budgets),
                         max_tokens=max_tokens, think_end=think_end, data_files=dict(data_files_of(data)),
                         workers=workers)
    destination = log_destination(log)
    step_logger = None
    if destination is not None:
        from budgeteval.publish.trackers import StepLogger, watch_config

        step_logger = StepLogger(destination, watch_config(config))
    try:
        watch(config, once=once, interval_s=interval, progress=not quiet,
              report=(lambda line: None) if quiet else click.echo, on_step=step_logger)
    except KeyboardInterrupt:
        click.echo("stopped", err=True)
    finally:
        if step_logger is not None:
            step_logger.close()


@main.command("view")
@click.argument("runs", nargs=-1, required=True, metavar="RUN[=LABEL]...")
@click.option("-o", "--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for the site (created; required unless --serve, which defaults to a temporary folder).")
@click.option("--baseline", default=None, help="With several runs: the baseline's label or path (default: the first run).")
@click.option("--k", "k", type=click.IntRange(min=1), default=None,
              help="Samples per problem for the figures' and comparison's mean@k (default: the largest k every run has).")
@click.option("--serve", is_flag=True, help="Serve the site on 127.0.0.1 after writing it, until Ctrl-C.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(min=0, max=65535),
              help="Port for --serve (0: any free port).")
def view_command(runs, out, baseline, k, serve, port):
    """Write a static site to look at runs in a browser: report, problem grid, each response with its budget cuts.

    The site opens from file:// with no network (open DIR/index.html). With two runs, their samples
    of a problem are shown side by side.
    """
    import tempfile

    from budgeteval.api import load_runs
    from budgeteval.viewer import serve_site

    if out is None and not serve:
        raise UserError("view needs -o DIR (the folder to write the site to), or --serve.")
    first, *others = load_runs(runs)
    with tempfile.TemporaryDirectory(prefix="budgeteval-view-") as temporary:
        index = first.view(out if out is not None else Path(temporary) / "site", *others, baseline=baseline, k=k)
        click.echo(str(index))
        if serve:
            serve_site(index.parent, port, announce=lambda url: click.echo(f"Serving {url} (Ctrl-C stops)"))
            click.echo("stopped", err=True)


@main.command("push")
@click.argument("runs", nargs=-1, required=True, metavar="RUN[=LABEL]...")
@click.option("--repo", default=None, metavar="ORG/NAME",
              help="The Hugging Face dataset repository (created when missing; an existing one gets a new commit).")
@click.option("--local", "local", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write the dataset folder here and upload nothing (what a push would upload).")
@click.option("--private", is_flag=True, help="Create the repository private (an existing one keeps its visibility).")
@click.option("--revision", default=None, metavar="BRANCH", help="Commit to this branch (created when missing).")
@click.option("--include-gated", is_flag=True,
              help="Publish tasks whose authors ask that they not be posted in plain text (GPQA): only if you "
                   "have the right to.")
@click.option("--replace", is_flag=True,
              help="Overwrite a run of the same name that the repository holds with other content (else refused).")
@click.option("--license", "license_id", default="other", show_default=True,
              help="License id for the card's metadata (e.g. apache-2.0, cc-by-4.0, mit).")
def push_command(runs, repo, local, private, revision, include_gated, replace, license_id):
    """Publish scored runs as one Hugging Face dataset: a config per table (scores, metrics,
    generations, problems), parquet files and a dataset card.

    The token is the usual one (HF_TOKEN or `hf auth login`). Label a run with RUN=label (its
    folder and `run` value in the dataset; default: the basename of its model).
    """
    from budgeteval.api import load_runs, push

    result = push(load_runs(runs), repo, local=local, private=private, revision=revision,
                  include_gated=include_gated, replace=replace, license=license_id)
    if result.url is None:
        click.echo(f"Wrote {result.folder} ({', '.join(result.runs)}); nothing uploaded (the same command without "
                   f"--local uploads it).")
    else:
        click.echo(f"Pushed {', '.join(result.runs)} to {result.url}")


@main.command("log")
@click.argument("runs", nargs=-1, required=True, metavar="RUN[=LABEL]...")
@click.option("--to", "to", required=True, type=click.Choice(["wandb", "trackio"]), help="The experiment tracker.")
@click.option("--project", required=True, help="The tracker's project.")
@click.option("--name", default=None,
              help="The tracker run's name (default: the run's label; with several runs, NAME-<label>).")
def log_command(runs, to, project, name):
    """Log scored runs to Weights & Biases or Trackio: one tracker run per run, its manifest as config,
    every metric as a table and as curves against the budget, the figures as images.

    WANDB_MODE=offline writes a local W&B run; Trackio writes its local store unless a Space is set.
    """
    from budgeteval.api import load_runs, log
    from budgeteval.publish.trackers import Destination, check_destination

    check_destination(Destination(to, project, name))  # a missing package before any run is read
    for logged in log(load_runs(runs), to=to, project=project, name=name):
        click.echo(f"Logged {logged} to {to} project {project}")


def _print_endpoints(run_dir) -> None:
    """Each server's share and failures, when a run spread its requests over several (--base-url repeated)."""
    from budgeteval.generation.backends.endpoints import format_endpoint_report
    from budgeteval.rundir.manifest import read_manifest

    endpoints = (read_manifest(Path(run_dir)).engine or {}).get("endpoints") or []
    if len(endpoints) > 1 or any(endpoint["failures"] for endpoint in endpoints):
        click.echo("\n" + format_endpoint_report(endpoints))


def _note_unshared_tasks(runs) -> None:
    """Say on stderr which tasks not every run has (refusing runs that share none)."""
    from budgeteval.report.compare import check_shared_tasks

    for note in check_shared_tasks(runs):
        click.echo(f"note: {note}", err=True)


def _print_report(run_dir, ks, fmt) -> None:
    from budgeteval.report.tables import report_run

    click.echo(report_run(Path(run_dir), ks, fmt))


def entry() -> None:
    """The `budgeteval` program: the CLI inside `command_scope` (signals, no leftover processes)."""
    from budgeteval.processes import command_scope

    with command_scope():
        main()


if __name__ == "__main__":
    entry()
