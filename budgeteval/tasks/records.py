"""The records a task is made of: where its data lives, its options, the task itself, one problem.

`budgeteval.tasks.loading` builds them from YAML (and `budgeteval.tasks.lm_eval` from lm-eval's index);
every stage after that reads them. Kept apart from the loaders so both loaders can build them
without importing each other.
"""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class DatasetSource:
    """Where a task's rows come from."""

    path: str
    """Hugging Face dataset id (or a local file when `local_file` is set)."""
    name: str | None
    """Dataset configuration name (`main` for GSM8K), or None."""
    split: str
    """The split to evaluate on."""
    local_file: str | None = None
    """A local JSONL or parquet file with the hub dataset's columns; overrides the hub."""
    loader: str | None = None
    """Read the hub repository's `data_files` with this `datasets` builder (`json`, `parquet`, `csv`)
    instead of the repository's own loading configuration (e.g. a script `datasets` no longer runs)."""
    data_files: tuple[str, ...] = ()
    """Files of the hub repository to read (with `loader`); a task option may choose them."""
    aliases: tuple[tuple[str, str], ...] = ()
    """(column, alternative) pairs: data without `column` but with `alternative` reads the latter in
    its place (a local copy laid out like another repository, e.g. Qwen2.5-Math's `problem`)."""
    row_builder: str | None = None
    """Name in `budgeteval.tasks.row_builders.ROW_BUILDERS`: adds derived columns to every row before the
    fields are read (GPQA's shuffled choices and correct letter)."""


@dataclass(frozen=True)
class ReferenceSpec:
    """A reference built from several columns by a registered builder (`fields.reference` mapping)."""

    builder: str
    """Name in `budgeteval.scoring.scorers.REFERENCE_BUILDERS`."""
    columns: tuple[tuple[str, str], ...]
    """(builder input name, dataset column) pairs."""


@dataclass(frozen=True)
class ConditionalTemplate:
    """A prompt template used for the rows whose `when` column is non-empty."""

    when: str
    """Column that selects this template when its value is a non-blank string (or non-zero number)."""
    template: str
    """`str.format` template, like `Task.prompt_template`."""


@dataclass(frozen=True)
class TaskOption:
    """A setting a user may change with `--task-option TASK.NAME=VALUE` (declared under `options:`)."""

    name: str
    """Option name."""
    help: str
    """One line for `budgeteval tasks` and error messages."""
    default: str | None
    """Value used when the user gives none; None leaves the option off."""
    choices: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """Choice option: allowed value -> the hub `data_files` it selects."""
    filter_column: str | None = None
    """Filter option: the column compared with the value."""
    filter_keep: str | None = None
    """Filter option: keep rows whose column is `on_or_after` / `on_or_before` the date, or `equals` it."""


@dataclass(frozen=True)
class Task:
    """One benchmark: its data source, prompt and scorer, as written in its YAML."""

    name: str
    """Short name used on the command line and in every output row."""
    version: int
    """Bumped whenever a change to the YAML could change scores."""
    description: str
    """One line for `budgeteval tasks`."""
    size: int | None
    """Number of problems the full dataset has (documentation for `budgeteval tasks`)."""
    source: DatasetSource
    """Where the problems come from."""
    id_field: str | None
    """Column holding a unique problem id; None means the row index."""
    question_field: str
    """Column holding the problem statement."""
    reference_field: str | None
    """Column holding what the scorer compares against (None when `reference_builder` builds it)."""
    prompt_template: str
    """`str.format` template; `{question}` and any column name may appear (the fallback when
    `conditional_templates` are given)."""
    system_prompt: str | None
    """System message for chat models, or None."""
    scorer: str
    """Name of the scorer in `budgeteval.scoring.scorers.SCORERS`."""
    yaml_path: str
    """The file this task was read from."""
    reference_builder: ReferenceSpec | None = None
    """How to build the reference from several columns, instead of `reference_field`."""
    conditional_templates: tuple[ConditionalTemplate, ...] = ()
    """Templates tried in order before `prompt_template`: the first whose column is non-empty wins."""
    options: tuple[TaskOption, ...] = ()
    """The options the task declares."""
    option_values: tuple[tuple[str, str | None], ...] = ()
    """Every declared option with the value in force (the user's, else the default)."""
    groups: tuple[tuple[str, str], ...] = ()
    """(group name, dataset column) pairs: the problem metadata `report --by NAME` breaks results down
    by (MATH-500 level and subject, ...), stored with the problems of a run."""
    publish: str = "open"
    """Whether its problems may be published in plain text: `open`, or `gated` where the benchmark's
    authors ask that they not be (GPQA); `budgeteval push` refuses a gated task without --include-gated."""
    lm_eval: object | None = None
    """For an `lm-eval:NAME` task, its `budgeteval.tasks.lm_eval.LmEvalSpec` (lm-eval builds its
    problems and prompts); None for a budgeteval task."""

    def template_for(self, prompt_fields: dict) -> str:
        """The prompt template for a row with these columns."""
        for variant in self.conditional_templates:
            value = prompt_fields.get(variant.when)
            if (value.strip() if isinstance(value, str) else value):
                return variant.template
        return self.prompt_template


@dataclass(frozen=True)
class Problem:
    """One row of a task, reduced to what generation and scoring need."""

    problem_id: str
    """Unique id within the task (the id column, or the row index as a string)."""
    question: str
    """The problem statement."""
    reference: str
    """The reference the scorer compares against."""
    prompt_fields: dict
    """All string-valued columns of the row, for prompt templates that use more than `question`."""
    groups: dict = field(default_factory=dict)
    """Group name -> this problem's value as text (None where the data has no such column)."""
