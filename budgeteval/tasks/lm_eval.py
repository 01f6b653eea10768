"""lm-eval tasks in a budget sweep: any `generate_until` task of EleutherAI's lm-evaluation-harness.

`--tasks lm-eval:NAME` names a task of lm-eval (built in, or in a folder given with
`--lm-eval-include DIR`, lm-eval's `include_path`). lm-eval itself loads it (`TaskManager`), and
these are lm-eval's: the documents and their ids (`doc_id`), the prompt (`fewshot_context` with the
task's `num_fewshot`, through the model's chat template the way `lm_eval --apply_chat_template`
renders it, few-shot examples as turns), the stop strings, the filters, `process_results` and the
metric. These are budgeteval's: one generation per sample at the largest budget *without* the stop
strings (they would fire inside a thinking trace), the replay at each budget, and the answer region
(the text after the end-of-thinking marker). The stop strings, filters and `process_results` are
applied to that region afterwards by the `lmeval` scorer (`budgeteval.scoring.scorers.lmeval`), so a cut at
B still equals a `max_tokens=B` run.

Each problem's reference is a JSON document holding what the scorer needs: the task's YAML, its
config hash, metric, filter, stop strings and the document itself, so scoring a run needs lm-eval
and the task's YAML, never its dataset. Everything from lm-eval is imported lazily.
"""

import hashlib
import inspect
import json
import os
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

from budgeteval.atomic import write_text_atomic
from budgeteval.errors import UserError

LM_EVAL_PREFIX = "lm-eval:"
"""Task names starting with this are lm-eval tasks (`lm-eval:gsm8k_cot`)."""

TASK_OPTIONS = {
    "num_fewshot": "few-shot examples in the prompt (default: the task's own num_fewshot)",
    "metric": "the verdict: METRIC or METRIC,FILTER as lm-eval reports it (default: the task's first metric "
              "and first filter), e.g. exact_match,flexible-extract",
    "scorer": "lmeval (lm-eval's filters and metric, the default) or a budgeteval scorer such as math, which "
              "reads the task's doc_to_target as the reference",
    "include": "a folder of lm-eval task YAMLs (what --lm-eval-include sets)",
}
"""`--task-option lm-eval:NAME.KEY=VALUE` keys an lm-eval task takes."""

_BUILTIN_PREFIX = "lm_eval/tasks/"
"""How a YAML inside the installed lm-eval package is recorded (portable across environments)."""


@dataclass(frozen=True)
class LmEvalSpec:
    """What budgeteval records about an lm-eval task; the `lmeval` scorer rebuilds the task from it."""

    task: str
    """lm-eval's task name (`gsm8k_cot`)."""
    yaml: str
    """The task's YAML: `lm_eval/tasks/...` inside the installed lm-eval, else an absolute path."""
    include: str | None
    """The `--lm-eval-include` folder the task was found with, or None for a built-in task."""
    num_fewshot: int
    """Few-shot examples in the prompt."""
    metric: str
    """The metric whose value is the verdict (a key of `process_results`)."""
    filter: str
    """The filter pipeline (`filter_list` name; `none` for tasks without filters) the metric reads."""
    until: tuple[str, ...]
    """The task's stop strings (`generation_kwargs.until`), applied to the answer region when scoring."""
    config_sha256: str
    """Hash of the task's YAML config as lm-eval resolves it (functions by their source) and num_fewshot."""
    lm_eval_version: str
    """The installed lm-eval version the task was loaded with."""

    def fingerprint(self) -> dict:
        """What of the task changes its prompts (compared when a run resumes)."""
        return {"task": self.task, "yaml": self.yaml, "num_fewshot": self.num_fewshot,
                "config_sha256": self.config_sha256}


def is_lm_eval_task(name: str) -> bool:
    """Whether a `--tasks` entry names an lm-eval task."""
    return name.startswith(LM_EVAL_PREFIX)


def lm_eval_version() -> str:
    """The installed lm-eval version (a `UserError` naming the extra when it is absent)."""
    from importlib import metadata

    try:
        return metadata.version("lm-eval")
    except metadata.PackageNotFoundError:
        raise UserError("lm-eval tasks need the lm-eval package: pip install 'budgeteval[lm-eval]'.") from None


def _require_lm_eval() -> None:
    lm_eval_version()


@lru_cache(maxsize=4)
def _task_manager(include: str | None, defaults: bool):
    """lm-eval's TaskManager (indexing lm-eval's own ~13k YAMLs takes tens of seconds: built once)."""
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=include, include_defaults=defaults)


def _find(name: str, include: str | None):
    """(TaskManager, index entry) for a task name: the include folder alone first (it takes precedence over
    lm-eval's own tasks anyway, and indexing it is fast), then lm-eval's built-in tasks."""
    folder = None
    if include is not None:
        if not Path(include).is_dir():
            raise UserError(f"--lm-eval-include {include} is not a folder of lm-eval task YAMLs.")
        folder = str(Path(include).resolve())
        manager = _task_manager(folder, False)
        if name in manager.task_index:
            return manager, manager.task_index[name]
    manager = _task_manager(folder, True)
    if name not in manager.task_index:
        raise UserError(f"lm-eval has no task {name!r}: run `budgeteval tasks --lm-eval` to list them "
                        f"(add --lm-eval-include DIR for your own lm-eval YAMLs).")
    return manager, manager.task_index[name]


def _check_generate_until(name: str, entry) -> None:
    from lm_eval.tasks._index import Kind

    if entry.kind is not Kind.TASK or entry.yaml_path is None:
        kind = {Kind.GROUP: "a group", Kind.TAG: "a tag", Kind.PY_TASK: "a Python-class task"}.get(entry.kind, "not a task")
        raise UserError(f"lm-eval's {name!r} is {kind}: budgeteval runs single YAML generate_until tasks, so "
                        f"name them one by one (`budgeteval tasks --lm-eval` lists them).")
    output_type = (entry.cfg or {}).get("output_type", "generate_until")
    if output_type != "generate_until":
        raise UserError(f"lm-eval task {name!r} is a {output_type} task, scored by the likelihood of given answers, "
                        f"not by a generated one, so it has no token budget to sweep: choose a generate_until task "
                        f"(`budgeteval tasks --lm-eval` lists them).")


def _portable_yaml(path: Path) -> str:
    import lm_eval.tasks

    root = Path(lm_eval.tasks.__file__).resolve().parent
    path = Path(path).resolve()
    try:
        return _BUILTIN_PREFIX + path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def resolve_yaml(recorded: str) -> Path:
    """The YAML file a recorded `LmEvalSpec.yaml` names, in this environment."""
    if recorded.startswith(_BUILTIN_PREFIX):
        import lm_eval.tasks

        return Path(lm_eval.tasks.__file__).resolve().parent / recorded[len(_BUILTIN_PREFIX):]
    return Path(recorded)


def raw_config(yaml_path: Path) -> dict:
    """The task's config as lm-eval reads its YAML (includes merged, `!function` resolved)."""
    from lm_eval.tasks._yaml_loader import load_yaml

    if not Path(yaml_path).is_file():
        raise UserError(f"The lm-eval task YAML {yaml_path} does not exist any more: score the run where it does.")
    return load_yaml(yaml_path, resolve_func=True)


def _stable(value):
    """JSON stand-in for what a task config holds besides data: a function by its source code."""
    if callable(value):
        try:
            return inspect.getsource(value)
        except (OSError, TypeError):
            return f"{getattr(value, '__module__', '')}.{getattr(value, '__qualname__', repr(value))}"
    return repr(value)


def config_hash(config: dict, num_fewshot: int) -> str:
    """sha256 of a task config and the num_fewshot in force (a changed YAML or function changes it)."""
    text = json.dumps({**config, "num_fewshot": num_fewshot}, sort_keys=True, default=_stable)
    return hashlib.sha256(text.encode()).hexdigest()


def _metric_names(config: dict) -> list[str]:
    from lm_eval.api.registry import DEFAULT_METRIC_REGISTRY

    names = []
    for item in config.get("metric_list") or []:
        metric = item.get("metric")
        names.append(metric.__name__ if callable(metric) else str(metric))
    return names or list(DEFAULT_METRIC_REGISTRY["generate_until"])


def _filter_names(config: dict) -> list[str]:
    return [str(item["name"]) for item in config.get("filter_list") or []] or ["none"]


def _choose_metric(name: str, config: dict, value: str | None) -> tuple[str, str]:
    metrics, filters = _metric_names(config), _filter_names(config)
    if value is None:
        return metrics[0], filters[0]
    metric, _, filter_name = value.partition(",")
    filter_name = filter_name or filters[0]
    if metric not in metrics or filter_name not in filters:
        raise UserError(f"--task-option {LM_EVAL_PREFIX}{name}.metric={value!r}: choose METRIC,FILTER with a metric "
                        f"of {', '.join(metrics)} and a filter of {', '.join(filters)}.")
    return metric, filter_name


def load_lm_eval_task(name: str, options: dict[str, str] | None = None, data_file: str | None = None):
    """A budgeteval `Task` for `lm-eval:NAME`, read from lm-eval's index (its dataset is not loaded yet)."""
    from budgeteval.tasks.records import DatasetSource, Task
    from budgeteval.tasks.registry import SCORERS

    lm_name = name[len(LM_EVAL_PREFIX):]
    if not lm_name:
        raise UserError(f"--tasks {name!r} names no lm-eval task: write lm-eval:NAME, e.g. lm-eval:gsm8k_cot.")
    options = dict(options or {})
    unknown = sorted(set(options) - set(TASK_OPTIONS))
    if unknown:
        raise UserError(f"lm-eval task {name} has no option {unknown[0]!r} (its options: {', '.join(TASK_OPTIONS)}).")
    version = lm_eval_version()
    include = options.get("include")
    _, entry = _find(lm_name, include)
    _check_generate_until(lm_name, entry)
    config = raw_config(entry.yaml_path)
    num_fewshot = config.get("num_fewshot") or 0
    if options.get("num_fewshot") is not None:
        try:
            num_fewshot = int(options["num_fewshot"])
        except ValueError:
            num_fewshot = -1
        if num_fewshot < 0:
            raise UserError(f"--task-option {name}.num_fewshot={options['num_fewshot']!r} must be a whole number >= 0.")
    if data_file:
        include = str(local_data_include(lm_name, Path(entry.yaml_path), config, data_file, num_fewshot))
        options["include"] = include
        _, entry = _find(lm_name, include)
        config = raw_config(entry.yaml_path)
    metric, filter_name = _choose_metric(lm_name, config, options.get("metric"))
    scorer = options.get("scorer") or "lmeval"
    if scorer not in SCORERS:
        raise UserError(f"--task-option {name}.scorer={scorer!r}: use one of {', '.join(sorted(SCORERS))}.")
    until = (config.get("generation_kwargs") or {}).get("until", [config.get("fewshot_delimiter", "\n\n")])
    spec = LmEvalSpec(
        task=lm_name, yaml=_portable_yaml(entry.yaml_path), include=str(Path(include).resolve()) if include else None,
        num_fewshot=num_fewshot, metric=metric, filter=filter_name,
        until=tuple([until] if isinstance(until, str) else until),
        config_sha256=config_hash(config, num_fewshot), lm_eval_version=version)
    description = f"lm-eval {lm_name} ({num_fewshot}-shot; verdict: {metric},{filter_name})"
    return Task(
        name=name, version=1, description=description, size=None,
        source=DatasetSource(path=str(config.get("dataset_path") or "lm-eval"), name=config.get("dataset_name"),
                             split=str(config.get("test_split") or config.get("validation_split") or "")),
        id_field=None, question_field="doc_to_text", reference_field=None, prompt_template="{question}",
        system_prompt=None, scorer=scorer, yaml_path=str(entry.yaml_path),
        option_values=tuple(sorted((key, value) for key, value in options.items() if key != "include")),
        lm_eval=spec)


DATA_FORMATS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}
"""`--data lm-eval:NAME=PATH` file suffixes and the `datasets` builder (`dataset_path`) that reads each."""


def local_data_dir() -> Path:
    """Where `--data lm-eval:NAME=PATH` wrapper YAMLs are kept: `$BUDGETEVAL_CACHE/lm-eval-data`, else
    `~/.cache/budgeteval/lm-eval-data` (they must outlive the command: scoring reads the task's YAML)."""
    root = os.environ.get("BUDGETEVAL_CACHE") or Path.home() / ".cache" / "budgeteval"
    return Path(root) / "lm-eval-data"


def local_data_include(task: str, yaml_path: Path, config: dict, data_file: str, num_fewshot: int) -> Path:
    """A folder holding one lm-eval YAML that `include:`s the task's own YAML and reads its evaluation
    split from a local file (`dataset_path: json|parquet|csv`, `dataset_kwargs.data_files`); what
    `--data lm-eval:NAME=PATH` runs. Everything else (prompt, few-shot, filters, metric) is the
    task's own. The folder is named by a hash of (task YAML, data file), so the same command finds
    the same YAML again (a changed data path is a changed config: a run refuses to resume)."""
    data = Path(data_file).expanduser().resolve()
    if not data.is_file():
        raise UserError(f"--data lm-eval:{task}={data_file}: no such file; pass a local JSONL, JSON, parquet or CSV "
                        f"copy of the task's evaluation split.")
    builder = DATA_FORMATS.get(data.suffix.lower())
    if builder is None:
        raise UserError(f"--data lm-eval:{task}={data_file}: lm-eval reads {', '.join(DATA_FORMATS)} files; convert "
                        f"it to one of these.")
    split = config.get("test_split") or config.get("validation_split")
    if not split:
        raise UserError(f"lm-eval task {task} names no test_split or validation_split, so --data has no split to "
                        f"replace: write an lm-eval YAML for it and pass its folder with --lm-eval-include.")
    fewshot = config.get("fewshot_config") or {}
    fewshot_split = config.get("fewshot_split") or config.get("training_split") or config.get("validation_split")
    if num_fewshot and not fewshot.get("samples") and fewshot_split and fewshot_split != split:
        raise UserError(f"lm-eval task {task} draws its {num_fewshot} few-shot examples from its {fewshot_split!r} split, "
                        f"which --data lm-eval:{task}=PATH does not replace: add --task-option "
                        f"lm-eval:{task}.num_fewshot=0, or write an lm-eval YAML with both splits and pass its folder "
                        f"with --lm-eval-include.")
    digest = hashlib.sha256(json.dumps([task, str(Path(yaml_path).resolve()), str(data)]).encode()).hexdigest()[:16]
    folder = local_data_dir() / digest
    text = (f"# written by budgeteval for --data lm-eval:{task}={data}\n"
            f"include: {json.dumps(str(Path(yaml_path).resolve()))}\ntask: {json.dumps(task)}\n"
            f"dataset_path: {builder}\ndataset_name: null\n"
            f"dataset_kwargs:\n  data_files:\n    {json.dumps(str(split))}: {json.dumps(str(data))}\n"
            f"test_split: {json.dumps(str(split))}\n")
    target = folder / f"{task}.yaml"
    if not target.is_file() or target.read_text(encoding="utf-8") != text:
        write_text_atomic(target, text)  # a concurrent command reads the old or the new file, never half
    return folder


@lru_cache(maxsize=8)
def _loaded_task(spec: LmEvalSpec):
    """lm-eval's own task object (this loads its dataset), with num_fewshot set as the spec says."""
    manager, entry = _find(spec.task, spec.include)
    try:
        task = manager.load([spec.task])["tasks"][spec.task]
    except Exception as error:  # datasets and lm-eval raise many types for a dataset they cannot load
        raise UserError(f"lm-eval could not load task {spec.task} from {entry.yaml_path} ({error}); offline? "
                        f"point an lm-eval YAML at a local copy (dataset_path: json) and pass --lm-eval-include.") from None
    task.set_config(key="num_fewshot", value=spec.num_fewshot)
    return task


def problem_reference(spec: LmEvalSpec, scorer: str, doc_id: int, doc: dict, target) -> str:
    """The reference stored for one document: the `lmeval` scorer's JSON, or the target for another scorer."""
    if scorer != "lmeval":
        return str(target[0] if isinstance(target, list) and target else target)
    return json.dumps({"lm_eval": asdict(spec), "doc_id": doc_id, "doc": doc}, sort_keys=True, default=str,
                      ensure_ascii=False)


def load_lm_eval_problems(task, limit: int | None = None) -> list:
    """The task's documents as `Problem`s, in lm-eval's order; problem ids are lm-eval's doc_id."""
    from budgeteval.tasks.records import Problem

    lm_task = _loaded_task(task.lm_eval)
    problems = []
    for doc_id, doc in lm_task.doc_iterator(limit=limit):
        doc = dict(doc)
        problems.append(Problem(
            problem_id=str(doc_id), question=str(lm_task.doc_to_text(doc)),
            reference=problem_reference(task.lm_eval, task.scorer, doc_id, doc, lm_task.doc_to_target(doc)),
            prompt_fields={"lm_eval_doc": doc}))
    return problems


def chat_template(tokenizer, chat_template_args: dict):
    """A chat-template function that renders like lm-eval's `HFLM.apply_chat_template` (lm-eval's
    `--apply_chat_template`): continue a final assistant message when no generation prompt is added,
    and drop a system message the template rejects."""
    import jinja2

    def render(chat_history: list[dict], add_generation_prompt: bool = True) -> str:
        try:
            return tokenizer.apply_chat_template(chat_history, tokenize=False, add_generation_prompt=add_generation_prompt,
                                                 continue_final_message=not add_generation_prompt, **chat_template_args)
        except jinja2.exceptions.TemplateError:
            chat_history = [message for message in chat_history if message["role"] != "system"]
            return tokenizer.apply_chat_template(chat_history, tokenize=False, add_generation_prompt=add_generation_prompt,
                                                 continue_final_message=not add_generation_prompt, **chat_template_args)

    return render


def render_lm_eval_prompts(task, problems: list, tokenizer, settings) -> list[str]:
    """The prompt of every problem, as lm-eval's `build_all_requests` builds them: `fewshot_context` in document
    order from lm-eval's default few-shot seed, with `--system-prompt` as lm-eval's `system_instruction`."""
    from lm_eval.defaults import DEFAULT_OTHER_SEED

    lm_task = _loaded_task(task.lm_eval)
    # lm-eval's evaluator seeds the few-shot sampler once and then draws per document in order.
    lm_task.set_fewshot_seed(seed=DEFAULT_OTHER_SEED)
    render = None
    if settings.chat_template:
        if not getattr(tokenizer, "chat_template", None):
            raise UserError("The model's tokenizer has no chat template: pass --no-chat-template to prompt it as a "
                            "base model (lm-eval without --apply_chat_template).")
        render = chat_template(tokenizer, {} if settings.enable_thinking is None
                               else {"enable_thinking": settings.enable_thinking})
    prompts = []
    for problem in problems:
        doc = problem.prompt_fields["lm_eval_doc"]
        context = lm_task.fewshot_context(
            doc=doc, num_fewshot=task.lm_eval.num_fewshot, system_instruction=settings.system_prompt,
            apply_chat_template=render is not None, fewshot_as_multiturn=render is not None, chat_template=render,
            gen_prefix=lm_task.doc_to_prefix(doc))
        if not isinstance(context, str):
            raise UserError(f"lm-eval task {task.lm_eval.task} builds one prompt per answer choice; budgeteval runs "
                            f"tasks with one prompt per document.")
        prompts.append(context)
    return prompts


def generate_until_tasks(include: str | None = None, defaults: bool = True) -> list[tuple[str, str]]:
    """(name, YAML) of every lm-eval `generate_until` task (lm-eval's own, and those in `include`)."""
    from lm_eval.tasks._index import Kind

    _require_lm_eval()
    manager = _task_manager(str(Path(include).resolve()) if include else None, defaults)
    rows = []
    for name, entry in sorted(manager.task_index.items()):
        if entry.kind is Kind.TASK and entry.yaml_path is not None and \
                (entry.cfg or {}).get("output_type", "generate_until") == "generate_until":
            rows.append((name, _portable_yaml(entry.yaml_path)))
    return rows


def with_include(task_options: tuple, tasks, include: str | None) -> tuple:
    """`--lm-eval-include DIR` as an `include` task option of every lm-eval task in `tasks`."""
    if include is None:
        return tuple(task_options)
    names = [name for name in tasks if is_lm_eval_task(name)]
    if not names:
        raise UserError("--lm-eval-include applies to lm-eval tasks: name one as lm-eval:NAME.")
    return tuple(task_options) + tuple((name, "include", str(include)) for name in names)


def spec_from_reference(reference: dict) -> LmEvalSpec:
    """The `LmEvalSpec` a stored reference carries."""
    fields = dict(reference["lm_eval"])
    fields["until"] = tuple(fields["until"])
    return LmEvalSpec(**fields)

