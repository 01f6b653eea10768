"""Tasks are data: a YAML file says where problems come from and how a row becomes a prompt.

This module reads task YAML (built-in ones from the installed `budgeteval.builtin_tasks` package, or any
path a user passes), validates it, and loads the problems with `datasets` — from the Hugging Face
hub, or from a local JSONL/parquet file with the hub dataset's columns when one is given — and
applies the task's options (`--task-option TASK.KEY=VALUE`: a choice of hub data files, or a row
filter such as a contest-date window). It does not render prompts (see `prompts`) or score anything (see `scorers`).
"""

import functools
import hashlib
import json
from dataclasses import dataclass, replace
from datetime import datetime
from importlib import resources
from pathlib import Path

import yaml

from budgeteval.errors import UnjudgeableProblem, UserError
from budgeteval.tasks.records import ConditionalTemplate, DatasetSource, Problem, ReferenceSpec, Task, TaskOption
from budgeteval.tasks.registry import REFERENCE_BUILDERS, SCORERS, get_reference_builder

TASK_FORMAT_VERSION = 3
"""The newest task YAML format this code reads (`format:` in a YAML; absent means 1). Format 2 adds
`options`, `prompt.templates` with `when`, `fields.reference` as a builder mapping and
`dataset.loader`/`data_files`; format 3 adds `dataset.row_builder` (a YAML using these says its
format so older readers refuse it). `groups:` and `dataset.aliases` need no format: a reader that
ignores them scores the same."""

PUBLISH_POLICIES = ("open", "gated")
"""`publish:` in a task YAML: its problems may be published in plain text, or their authors ask that
they not be (`budgeteval push` then needs --include-gated). Needs no format: scores do not depend on it."""

BASE_PROBLEM_COLUMNS = ("problem_id", "question", "reference")
"""The columns every `problems/<task>.parquet` has; a task's groups are stored beside them."""


def builtin_task_paths() -> dict[str, Path]:
    """Map each built-in task name to its YAML file."""
    folder = resources.files("budgeteval.builtin_tasks")
    return {
        Path(entry.name).stem: Path(str(entry))
        for entry in folder.iterdir()
        if entry.name.endswith((".yaml", ".yml"))
    }


def _require(mapping: dict, key: str, where: str):
    if not isinstance(mapping, dict) or key not in mapping or mapping[key] in (None, ""):
        raise UserError(f"Task file {where} is missing the required field {key!r}.")
    return mapping[key]


def parse_task(data: dict, where: str) -> Task:
    """Build a `Task` from parsed YAML, with one clear error per missing or wrong field."""
    if not isinstance(data, dict):
        raise UserError(f"Task file {where} must hold a YAML mapping (name, dataset, fields, prompt, scorer).")
    file_format = data.get("format", 1)
    if not isinstance(file_format, int) or file_format > TASK_FORMAT_VERSION:
        raise UserError(
            f"Task file {where} has format {file_format!r}, newer than this budgeteval reads "
            f"({TASK_FORMAT_VERSION}): upgrade budgeteval."
        )
    dataset = _require(data, "dataset", where)
    fields = _require(data, "fields", where)
    prompt = data.get("prompt") or {}
    scorer = _require(data, "scorer", where)
    if scorer not in SCORERS:
        raise UserError(f"Task file {where} names scorer {scorer!r}; use one of {', '.join(sorted(SCORERS))}.")
    version = data.get("version", 1)
    if not isinstance(version, int):
        raise UserError(f"Task file {where}: 'version' must be an integer, got {version!r}.")
    template, conditional = _parse_templates(prompt, where)
    reference_field, reference_builder = _parse_reference(_require(fields, "reference", where), where)
    dataset_files = dataset.get("data_files") or ()
    if isinstance(dataset_files, str):
        dataset_files = (dataset_files,)
    return Task(
        name=str(_require(data, "name", where)),
        version=version,
        description=str(data.get("description", "")),
        size=data.get("size"),
        source=DatasetSource(
            path=str(_require(dataset, "path", where)),
            name=dataset.get("name"),
            split=str(dataset.get("split", "test")),
            loader=dataset.get("loader"),
            data_files=tuple(str(name) for name in dataset_files),
            aliases=_parse_aliases(dataset.get("aliases") or {}, where),
            row_builder=_parse_row_builder(dataset.get("row_builder"), where),
        ),
        id_field=fields.get("problem_id"),
        question_field=str(_require(fields, "question", where)),
        reference_field=reference_field,
        prompt_template=template,
        system_prompt=prompt.get("system"),
        scorer=str(scorer),
        yaml_path=where,
        reference_builder=reference_builder,
        conditional_templates=conditional,
        options=_parse_options(data.get("options") or {}, where),
        groups=_parse_groups(data.get("groups") or [], where),
        publish=_parse_publish(data.get("publish", "open"), where),
    )


def _parse_publish(value, where: str) -> str:
    if value not in PUBLISH_POLICIES:
        raise UserError(f"Task file {where}: 'publish' must be one of {', '.join(PUBLISH_POLICIES)}, not {value!r}.")
    return value


def _parse_groups(groups, where: str) -> tuple[tuple[str, str], ...]:
    """`groups:` is a list of column names, or a mapping of group name -> column."""
    pairs = groups.items() if isinstance(groups, dict) else (
        [(name, name) for name in groups] if isinstance(groups, list) else None)
    if pairs is None or not all(isinstance(name, str) and isinstance(column, str) and name and column
                                for name, column in pairs):
        raise UserError(f"Task file {where}: 'groups' must be a list of column names or map group names to columns.")
    for name, _ in pairs:
        if name in BASE_PROBLEM_COLUMNS:
            raise UserError(f"Task file {where}: group {name!r} clashes with a stored problem column; rename it "
                            f"(groups: {{my_name: {name}}}).")
    return tuple((str(name), str(column)) for name, column in pairs)


def _parse_aliases(aliases, where: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(aliases, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in aliases.items()):
        raise UserError(f"Task file {where}: dataset.aliases must map a column to the column read in its place.")
    return tuple(aliases.items())


def _parse_row_builder(name, where: str) -> str | None:
    from budgeteval.tasks.row_builders import ROW_BUILDERS

    if name is not None and name not in ROW_BUILDERS:
        raise UserError(f"Task file {where}: dataset.row_builder must be one of {', '.join(sorted(ROW_BUILDERS))}, "
                        f"not {name!r}.")
    return name


def _parse_templates(prompt: dict, where: str) -> tuple[str, tuple[ConditionalTemplate, ...]]:
    if "templates" not in prompt:
        template = str(prompt.get("template", "{question}"))
        if "{question}" not in template:
            raise UserError(f"Task file {where}: prompt.template must contain {{question}}.")
        return template, ()
    entries = prompt["templates"]
    if "template" in prompt or not isinstance(entries, list) or not entries:
        raise UserError(f"Task file {where}: give either prompt.template or a non-empty list prompt.templates.")
    variants = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("template"), str):
            raise UserError(f"Task file {where}: prompt.templates[{index}] needs a 'template' string.")
        if "{question}" not in entry["template"]:
            raise UserError(f"Task file {where}: prompt.templates[{index}].template must contain {{question}}.")
        last = index == len(entries) - 1
        if last == ("when" in entry):
            raise UserError(f"Task file {where}: every prompt.templates entry but the last needs 'when: COLUMN'; "
                            f"the last, the fallback, has none.")
        variants.append(ConditionalTemplate(str(entry.get("when")), entry["template"]))
    return variants[-1].template, tuple(variants[:-1])


def _parse_reference(reference, where: str) -> tuple[str | None, ReferenceSpec | None]:
    if not isinstance(reference, dict):
        return str(reference), None
    builder, columns = reference.get("builder"), reference.get("columns")
    if builder not in REFERENCE_BUILDERS:
        raise UserError(f"Task file {where}: fields.reference.builder must be one of "
                        f"{', '.join(sorted(REFERENCE_BUILDERS))}, not {builder!r}.")
    if not isinstance(columns, dict) or not columns:
        raise UserError(f"Task file {where}: fields.reference.columns must map builder inputs to dataset columns.")
    return None, ReferenceSpec(str(builder), tuple((str(k), str(v)) for k, v in columns.items()))


_FILTER_KEEPS = ("on_or_after", "on_or_before", "equals")


def _parse_options(options, where: str) -> tuple[TaskOption, ...]:
    if not isinstance(options, dict):
        raise UserError(f"Task file {where}: 'options' must map option names to their settings.")
    parsed = []
    for name, spec in options.items():
        if not isinstance(spec, dict) or ("choices" in spec) == ("filter" in spec):
            raise UserError(f"Task file {where}: option {name!r} needs exactly one of 'choices' or 'filter'.")
        default = spec.get("default")
        default = None if default is None else str(default)
        if "choices" in spec:
            choices = spec["choices"]
            if not isinstance(choices, dict) or not choices or not all(
                    isinstance(effect, dict) and set(effect) == {"data_files"} for effect in choices.values()):
                raise UserError(f"Task file {where}: option {name!r}: 'choices' must map each value to "
                                f"{{data_files: [...]}}.")
            if default not in choices:
                raise UserError(f"Task file {where}: option {name!r}: the default must be one of its choices.")
            parsed.append(TaskOption(str(name), str(spec.get("help", "")), default, choices=tuple(
                (str(value), tuple(str(f) for f in effect["data_files"])) for value, effect in choices.items())))
        else:
            rule = spec["filter"]
            if not isinstance(rule, dict) or not rule.get("column") or rule.get("keep") not in _FILTER_KEEPS:
                raise UserError(f"Task file {where}: option {name!r}: 'filter' needs a 'column' and 'keep' "
                                f"({', '.join(_FILTER_KEEPS)}).")
            parsed.append(TaskOption(str(name), str(spec.get("help", "")), default,
                                     filter_column=str(rule["column"]), filter_keep=str(rule["keep"])))
    return tuple(parsed)


def _option_date(task_name: str, option: TaskOption, value: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise UserError(f"--task-option {task_name}.{option.name}={value!r}: give a date as YYYY-MM-DD.") from None


def publish_policy(name: str, yaml_path: str | None = None, source_path: str | None = None) -> str:
    """How a task a run recorded may be published (`PUBLISH_POLICIES`), for runs made before the
    manifest said: its YAML's `publish:` (the file it was read from, else the built-in of that name),
    and `gated` for any task reading a hub dataset a gated built-in reads (lm-eval's GPQA, a copied YAML)."""
    paths = builtin_task_paths()
    policy = "open"
    for candidate in (Path(yaml_path) if yaml_path else None, paths.get(name)):
        if candidate is not None and candidate.is_file():
            try:
                policy = load_task_file(candidate).publish
                break
            except UserError:
                continue
    if policy == "open" and source_path in _gated_sources(tuple(sorted(map(str, paths.values())))):
        return "gated"
    return policy


@functools.lru_cache(maxsize=4)
def _gated_sources(paths: tuple[str, ...]) -> frozenset[str]:
    """The hub datasets the gated tasks among the YAML files `paths` read (read once per set of files)."""
    return frozenset(task.source.path for task in map(load_task_file, map(Path, paths)) if task.publish == "gated")


def parse_task_option(text: str) -> tuple[str, str, str]:
    """Parse one `--task-option TASK.KEY=VALUE` into (task, key, value)."""
    target, sep, value = text.partition("=")
    task, dot, key = target.partition(".")
    if not sep or not dot or not task or not key:
        raise UserError(f"--task-option {text!r} must look like TASK.KEY=VALUE, e.g. livecodebench.release=release_v5.")
    return task, key, value


def group_task_options(triples) -> dict[str, dict[str, str]]:
    """(task, key, value) triples -> {task: {key: value}} (a later value for the same key wins)."""
    grouped: dict[str, dict[str, str]] = {}
    for task, key, value in triples:
        grouped.setdefault(task, {})[key] = value
    return grouped


def apply_options(task: Task, values: dict[str, str]) -> Task:
    """Resolve the task's options (the user's values over the defaults) and apply the data choices."""
    declared = {option.name: option for option in task.options}
    unknown = sorted(set(values) - set(declared))
    if unknown:
        known = ", ".join(declared) if declared else "none"
        raise UserError(f"Task {task.name} has no option {unknown[0]!r} (its options: {known}); "
                        f"see `budgeteval tasks`.")
    resolved, source = [], task.source
    for option in task.options:
        value = values.get(option.name, option.default)
        if option.choices:
            files = dict(option.choices)
            if value not in files:
                raise UserError(f"--task-option {task.name}.{option.name}={value!r}: choose one of "
                                f"{', '.join(files)}.")
            source = replace(source, data_files=files[value])
        elif value is not None and option.filter_keep != "equals":
            _option_date(task.name, option, value)
        resolved.append((option.name, value))
    return replace(task, source=source, option_values=tuple(resolved))


def load_task_file(path: Path) -> Task:
    """Read and validate one task YAML file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise UserError(f"Cannot read task file {path}: {error.strerror}.") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise UserError(f"Task file {path} is not valid YAML{at}: fix the syntax and retry.") from None
    return parse_task(data, str(path))


def load_task(name_or_path: str, data_files: dict[str, str] | None = None,
              task_options: dict[str, dict[str, str]] | None = None) -> Task:
    """Resolve a built-in task name or a YAML path, applying a `--data TASK=PATH` override and the
    `--task-option TASK.KEY=VALUE` values for it, if any. `lm-eval:NAME` is an lm-eval task."""
    if name_or_path.startswith("lm-eval:"):
        from budgeteval.tasks.lm_eval import load_lm_eval_task

        return load_lm_eval_task(name_or_path, (task_options or {}).get(name_or_path),
                                 (data_files or {}).get(name_or_path))
    candidate = Path(name_or_path)
    if name_or_path.endswith((".yaml", ".yml")) or candidate.is_file():
        if not candidate.is_file():
            raise UserError(f"Task file {name_or_path} does not exist.")
        task = load_task_file(candidate)
    else:
        paths = builtin_task_paths()
        if name_or_path not in paths:
            raise UserError(
                f"Unknown task {name_or_path!r}: run `budgeteval tasks` to list them, or pass a YAML file path."
            )
        task = load_task_file(paths[name_or_path])
    local = (data_files or {}).get(task.name)
    if local:
        if Path(local).is_dir():
            raise UserError(f"--data {task.name}={local} is a directory: pass the JSONL or parquet file inside it.")
        if not Path(local).is_file():
            raise UserError(f"Data file {local} given for task {task.name} does not exist.")
        if Path(local).stat().st_size == 0:
            raise UserError(f"Data file {local} given for task {task.name} is empty: pass a JSONL or parquet file "
                            f"with one problem per row.")
        task = replace(task, source=replace(task.source, local_file=str(Path(local).resolve())))
    return apply_options(task, (task_options or {}).get(task.name, {}))


def _load_rows(source: DatasetSource):
    import datasets

    if source.local_file:
        kind = "parquet" if source.local_file.endswith(".parquet") else "json"
        try:
            return datasets.load_dataset(kind, data_files=source.local_file, split="train")
        except Exception as error:  # datasets raises many types for a malformed file
            while error.__cause__ is not None or error.__context__ is not None:  # datasets wraps the reason
                error = error.__cause__ or error.__context__
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise UserError(f"Cannot read data file {source.local_file} as {'parquet' if kind == 'parquet' else 'JSONL'} "
                            f"({reason}): check the file's format.") from None
    try:
        if source.loader:
            files = [f"hf://datasets/{source.path}/{name}" for name in source.data_files]
            return datasets.load_dataset(source.loader, data_files=files, split="train")
        return datasets.load_dataset(source.path, source.name, split=source.split)
    except Exception as error:
        raise UserError(
            f"Cannot load dataset {source.path} (split {source.split}) from the Hugging Face hub: {error}. "
            f"Offline? Pass --data TASK=PATH with a local JSONL/parquet copy."
        ) from None


def _as_datetime(value) -> datetime | None:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


def _filtered_indices(task: Task, rows, where: str) -> list[int]:
    """Indices of the rows every filter option in force keeps (reading only the filtered columns)."""
    keep = list(range(len(rows)))
    for option in task.options:
        value = dict(task.option_values).get(option.name)
        if option.filter_column is None or value is None:
            continue
        column = rows[option.filter_column]
        if option.filter_keep == "equals":
            keep = [index for index in keep if str(column[index]) == value]
            continue
        bound = _option_date(task.name, option, value)
        kept = []
        for index in keep:
            when = _as_datetime(column[index])
            if when is None:
                raise UserError(f"Dataset {where} for task {task.name}: row {index} has no date in column "
                                f"{option.filter_column!r} ({column[index]!r}).")
            if (when >= bound) if option.filter_keep == "on_or_after" else (when <= bound):
                kept.append(index)
        keep = kept
    return keep


@dataclass(frozen=True)
class ProblemSet:
    """A task's problems, and the ones left out because no answer to them can be judged."""

    problems: list[Problem]
    """The problems to evaluate, in dataset order."""
    skipped: tuple[tuple[str, str], ...] = ()
    """(problem id, reason) of every row skipped as unjudgeable (recorded in the manifest)."""


def load_problems(task: Task, limit: int | None = None) -> list[Problem]:
    """Load the task's rows as `Problem`s (those its filter options keep; the first `limit` when
    given), checking the columns and building references; unjudgeable rows are left out
    (`load_problem_set` says which)."""
    return load_problem_set(task, limit).problems


def load_problem_set(task: Task, limit: int | None = None, strict: bool = False) -> ProblemSet:
    """`load_problems`, also returning the rows skipped because their scorer cannot judge them.

    A row without test cases (`UnjudgeableProblem`) is skipped, so one such problem in a file does
    not refuse the other hundreds; `strict` refuses it instead. `limit` counts kept problems.
    """
    if task.lm_eval is not None:
        from budgeteval.tasks.lm_eval import load_lm_eval_problems

        return ProblemSet(problems=load_lm_eval_problems(task, limit))
    rows = _prepare_rows(task, _load_rows(task.source))
    where = task.source.local_file or f"{task.source.path}:{task.source.split}"
    reference_columns = ([column for _, column in task.reference_builder.columns] if task.reference_builder
                         else [task.reference_field])
    needed = ([task.question_field] + reference_columns + ([task.id_field] if task.id_field else [])
              + [option.filter_column for option in task.options if option.filter_column]
              + [variant.when for variant in task.conditional_templates])
    for column in needed:
        if column not in rows.column_names:
            raise UserError(
                f"Dataset {where} for task {task.name} has no column {column!r} "
                f"(columns: {', '.join(rows.column_names)}); fix the task's `fields`."
            )
    indices = _filtered_indices(task, rows, where)
    builder = get_reference_builder(task.reference_builder.builder) if task.reference_builder else None
    problems, skipped = [], []
    for index in indices:
        if limit is not None and len(problems) >= limit:
            break
        row = rows[index]
        problem_id = str(row[task.id_field]) if task.id_field else str(index)
        if builder is not None:
            try:
                reference = builder({name: row[column] for name, column in task.reference_builder.columns}, problem_id)
            except UnjudgeableProblem as error:
                if strict:
                    raise UserError(f"Dataset {where} for task {task.name}: {error}; --strict refuses it (without "
                                    f"--strict such problems are skipped and counted in the manifest).") from None
                skipped.append((error.problem_id, error.reason))
                continue
        else:
            reference = str(row[task.reference_field])
        problems.append(Problem(
            problem_id=problem_id,
            question=str(row[task.question_field]),
            reference=reference,
            prompt_fields={key: value for key, value in row.items() if isinstance(value, (str, int, float))},
            groups={name: group_value(row.get(column)) for name, column in task.groups},
        ))
    seen = set()
    for problem in problems:
        if problem.problem_id in seen:
            raise UserError(f"Dataset {where} for task {task.name} repeats problem id {problem.problem_id!r}.")
        seen.add(problem.problem_id)
    if skipped and not problems:
        raise UserError(f"Dataset {where} for task {task.name}: every one of its {len(skipped)} problems "
                        f"{skipped[0][1]} (e.g. {skipped[0][0]}): use data with test cases.")
    return ProblemSet(problems, tuple(skipped))


def _prepare_rows(task: Task, rows):
    """Apply the task's column aliases and row builder to freshly loaded rows."""
    for column, alternative in task.source.aliases:
        if column not in rows.column_names and alternative in rows.column_names:
            rows = rows.rename_column(alternative, column)
    if task.source.row_builder:
        from budgeteval.tasks.row_builders import get_row_builder

        rows = rows.map(get_row_builder(task.source.row_builder), keep_in_memory=True)
    return rows


def group_value(value) -> str | None:
    """A group value as stored and printed: text; a list joins its items with `, `; missing is None."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return ", ".join(str(item) for item in value)
    return str(value)


def problems_hash(problems: list[Problem]) -> str:
    """A content hash of the problems (ids, questions, references), recorded in the manifest."""
    digest = hashlib.sha256()
    for problem in problems:
        digest.update(json.dumps([problem.problem_id, problem.question, problem.reference]).encode())
    return digest.hexdigest()
