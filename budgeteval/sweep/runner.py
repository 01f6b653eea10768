"""Run a budget sweep: prepare prompts, generate once at the largest budget, store, then score.

The runner drives a run's life cycle: it opens the run directory (`budgeteval.rundir`, which
refuses to mix a new configuration into an old run unless told to overwrite), writes the run's
manifest, and resumes an interrupted run by generating only the units of work not stored yet. Generation has up to four stages, one per
budget mode that needs the model: the max-budget generation (cutoff and forced modes), forced
answer continuations (`budgeteval.generation.forcing`), one generation per budget for conditioned mode,
and one generation per budget with the engine's own thinking budget for engine mode.
Scoring is `budgeteval.scoring.evaluate`.
"""

import dataclasses
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from budgeteval.errors import UserError
from budgeteval.generation.backends import get_backend_class
from budgeteval.generation.backends.base import GenerationRequest
from budgeteval.generation.config import MODES, RunConfig
from budgeteval.generation.context import check_budgets_fit, model_context_limit
from budgeteval.generation.forcing import (
    continuation_request,
    default_force_string,
    default_think_start,
    engine_max_tokens,
    plan_force,
    still_thinking,
)
from budgeteval.generation.seeds import derive_seed, sample_seed
from budgeteval.generation.shards import select_shard, shard_manifest_section
from budgeteval.generation.tokenizer import load_tokenizer
from budgeteval.rundir.layout import save_tokenizer, tokenizer_dir
from budgeteval.rundir.lock import lock_run
from budgeteval.rundir.manifest import (
    Manifest,
    ModesSection,
    TaskEntry,
    hardware,
    now_utc,
    open_run,
    package_versions,
    task_entry,
    write_manifest,
)
from budgeteval.rundir.problems import write_problems
from budgeteval.rundir.store import (
    CONDITIONED,
    CONTINUATIONS,
    ENGINE,
    ConditionedRecord,
    ContinuationRecord,
    EngineRecord,
    GenerationRecord,
    read_task,
    stored_problem_ids,
    stored_units,
    write_shard,
)
from budgeteval.scoring.metrics import DEFAULT_BOOTSTRAP
from budgeteval.tasks.loading import Problem, Task, group_task_options, load_problem_set, load_task, problems_hash
from budgeteval.tasks.prompts import (
    BudgetInstruction,
    default_think_end,
    encode_prompt,
    prompt_opens_thinking,
    render_prompt,
    response_is_thinking,
)


@dataclass(frozen=True)
class PreparedTask:
    """A task with its problems and rendered prompts."""

    task: Task
    """The task definition."""
    problems: list[Problem]
    """Its problems, in dataset order."""
    prompts: list[str]
    """Rendered prompt text per problem."""
    prompt_token_ids: list[list[int]]
    """Prompt token ids per problem."""
    skipped: tuple[tuple[str, str], ...] = ()
    """(problem id, reason) of the rows left out because their scorer cannot judge them."""


def resolve_tasks(config: RunConfig) -> list[Task]:
    """Read and validate every task YAML (before anything slow is loaded)."""
    data_files = dict(config.data_files)
    task_options = group_task_options(config.task_options)
    tasks = [load_task(name, data_files, task_options) for name in config.tasks]
    names = [task.name for task in tasks]
    if len(names) != len(set(names)):
        raise UserError(f"--tasks names a task twice ({', '.join(names)}).")
    unknown = set(data_files) - set(names)
    if unknown:
        raise UserError(f"--data names task(s) not in --tasks: {', '.join(sorted(unknown))}.")
    unknown = set(task_options) - set(names)
    if unknown:
        raise UserError(f"--task-option names task(s) not in --tasks: {', '.join(sorted(unknown))}.")
    return tasks


def prepare_tasks(config: RunConfig, tasks: list[Task], tokenizer, strict: bool = False) -> list[PreparedTask]:
    """Load every task's problems and render their prompts (unjudgeable problems are skipped, or
    refused with `strict`)."""
    prepared = []
    for task in tasks:
        problem_set = load_problem_set(task, config.limit, strict=strict)
        problems = problem_set.problems
        if problem_set.skipped:
            ids = [problem_id for problem_id, _ in problem_set.skipped]
            print(f"warning: task {task.name}: skipped {len(ids)} problem(s) that {problem_set.skipped[0][1]}: "
                  f"{', '.join(ids[:5])}{' …' if len(ids) > 5 else ''} (counted in the manifest; --strict refuses "
                  f"them).", file=sys.stderr)
        if task.lm_eval is not None:
            from budgeteval.tasks.lm_eval import render_lm_eval_prompts

            prompts = render_lm_eval_prompts(task, problems, tokenizer, config.prompt)
        else:
            prompts = [render_prompt(task, problem, tokenizer, config.prompt) for problem in problems]
        prepared.append(PreparedTask(task, problems, prompts, [encode_prompt(tokenizer, text) for text in prompts],
                                     problem_set.skipped))
    return prepared


def resolve_think_end(config: RunConfig, tokenizer) -> str | None:
    """The end-of-thinking marker for this run ('' from the user disables thinking handling)."""
    if config.think_end is not None:
        return config.think_end or None
    return default_think_end(tokenizer)


def resolve_modes(config: RunConfig, tokenizer) -> ModesSection:
    """Check the mode settings and fill in their defaults (the forcing string of the model's family)."""
    settings = config.modes  # ranges and combinations were checked when the record was built
    conditioned = "conditioned" in settings.modes
    forced = "forced" in settings.modes
    engine = "engine" in settings.modes
    force_string = (settings.force_string if settings.force_string is not None
                    else default_force_string(tokenizer)) if forced or engine else None
    if (forced or engine) and not force_string:
        raise UserError("--force-string is empty: give the end-of-thinking string and answer cue to append.")
    return ModesSection(
        think_start=default_think_start(tokenizer) if engine else None,
        modes=tuple(mode for mode in MODES if mode in settings.modes),
        force_string=force_string,
        answer_tokens=settings.answer_tokens,
        budget_prompt=settings.budget_prompt if conditioned else None,
        budget_prompt_position=settings.budget_prompt_position,
        conditioned_max_tokens=settings.conditioned_max_tokens or config.max_budget,
    )


def check_context(config: RunConfig, prepared: list[PreparedTask], modes: ModesSection, tokenizer) -> None:
    """Refuse a sweep whose longest prompt and response the model cannot hold (before anything loads)."""
    longest_prompt = max((len(ids) for item in prepared for ids in item.prompt_token_ids), default=0)
    if not longest_prompt:
        return
    limit = model_context_limit(config.backend, config.model, config.revision, config.engine.max_model_len)
    if limit is None:
        return
    extra = 0
    if "forced" in modes.modes or "engine" in modes.modes:
        extra = len(encode_prompt(tokenizer, modes.force_string)) + modes.answer_tokens
        if "engine" in modes.modes:
            extra += len(encode_prompt(tokenizer, modes.think_start))
    check_budgets_fit(limit, config.max_budget, extra, longest_prompt, config.model)
    if "conditioned" in modes.modes:
        check_budgets_fit(limit, modes.conditioned_max_tokens, 0, longest_prompt, config.model)


def generation_fingerprint(config: RunConfig, prepared: list[PreparedTask],
                           modes: ModesSection | None = None) -> dict:
    """Everything that changes what the model generates (compared when resuming)."""
    return {
        **(modes.fingerprint() if modes else {}),
        "model": config.model,
        "revision": config.revision,
        "tokenizer": config.tokenizer or config.model,
        "backend": config.backend,
        "n": config.n,
        "max_tokens": config.max_budget,
        "seed": config.seed,
        "sampling": config.to_dict()["sampling"],
        "prompt": config.to_dict()["prompt"],
        "tasks": {
            item.task.name: {"version": item.task.version, "scorer": item.task.scorer,
                             "num_problems": len(item.problems), "data_sha256": problems_hash(item.problems),
                             **({"options": dict(item.task.option_values)} if item.task.option_values else {}),
                             **({"lm_eval": item.task.lm_eval.fingerprint()} if item.task.lm_eval else {})}
            for item in prepared
        },
    }


class _LazyBackend:
    """Creates the backend on the first generate call (nothing is loaded when all is stored)."""

    def __init__(self, factory: Callable[[], object]):
        self._factory = factory
        self._backend = None

    @property
    def started(self) -> bool:
        """Whether anything was generated through this backend."""
        return self._backend is not None

    def generate(self, requests, sampling):
        if self._backend is None:
            self._backend = self._factory()
        return self._backend.generate(requests, sampling)

    def describe(self) -> dict:
        return self._backend.describe() if self._backend is not None else {}

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()


def _run_stage(work: list[tuple], chunk_size: int, desc: str, unit: str, progress: bool, initial: int,
               total: int, write_chunk: Callable[[list[tuple]], None]) -> None:
    """Walk one generation stage's pending units in chunks of `chunk_size`, one task per chunk.

    Each unit is a tuple whose first element is its `PreparedTask`; `write_chunk` generates and
    stores one chunk (one shard), so a killed stage resumes from the chunks already written.
    """
    from tqdm import tqdm

    with tqdm(total=total, initial=initial, unit=unit, desc=desc, disable=not progress) as bar:
        for start in range(0, len(work), max(1, chunk_size)):
            chunk = work[start:start + max(1, chunk_size)]
            for task_name in dict.fromkeys(unit_[0].task.name for unit_ in chunk):
                task_chunk = [unit_ for unit_ in chunk if unit_[0].task.name == task_name]
                write_chunk(task_chunk)
                bar.update(len(task_chunk))


def generate_missing(config: RunConfig, prepared: list[PreparedTask], run_dir: Path, backend,
                     progress: bool = True) -> int:
    """Generate and store (at the largest budget) every problem not yet in the store; returns how many."""
    pending = []
    for item in prepared:
        done = stored_problem_ids(run_dir, item.task.name)
        pending.extend((item, index) for index, problem in enumerate(item.problems) if problem.problem_id not in done)
    if pending:
        total = sum(len(item.problems) for item in prepared)
        _run_stage(pending, config.problems_per_shard, "generating", "problem", progress, total - len(pending), total,
                   lambda chunk: _generate_chunk(config, backend, chunk, run_dir))
    return len(pending)


def _generate_chunk(config: RunConfig, backend, chunk: list[tuple[PreparedTask, int]], run_dir: Path) -> None:
    requests = []
    for item, index in chunk:
        problem = item.problems[index]
        requests.append(GenerationRequest(
            key=f"{item.task.name}/{problem.problem_id}",
            prompt_token_ids=tuple(item.prompt_token_ids[index]),
            n=config.n,
            seed=derive_seed(config.seed, item.task.name, problem.problem_id),
            max_tokens=config.max_budget,
        ))
    outputs = backend.generate(requests, config.sampling)
    records = []
    for (item, index), request, samples in zip(chunk, requests, outputs):
        _check_sample_count(samples, request, config.n)
        for sample_idx, sample in enumerate(samples):
            records.append(GenerationRecord(
                task=item.task.name,
                problem_id=item.problems[index].problem_id,
                sample_idx=sample_idx,
                prompt=item.prompts[index],
                prompt_num_tokens=len(request.prompt_token_ids),
                token_ids=sample.token_ids,
                text=sample.text,
                finish_reason=sample.finish_reason,
                seed=request.seed,
                max_tokens=request.max_tokens,
                model=config.model,
                backend=config.backend,
            ))
    write_shard(run_dir, chunk[0][0].task.name, records)


def _check_sample_count(samples, request: GenerationRequest, n: int) -> None:
    if len(samples) != n:
        raise RuntimeError(f"backend returned {len(samples)} samples for {request.key}, expected {n}")


def _pending_budget_units(prepared: list[PreparedTask], run_dir: Path, budgets, kind) -> list[tuple]:
    """(prepared task, problem index, budget) for every (problem, budget) unit not yet in the `kind` store."""
    work = []
    for item in prepared:
        done = stored_units(run_dir, item.task.name, kind)
        work.extend((item, index, budget) for budget in budgets for index, problem in enumerate(item.problems)
                    if (problem.problem_id, budget) not in done)
    return work


def force_missing(config: RunConfig, prepared: list[PreparedTask], run_dir: Path, backend, tokenizer,
                  think_end: str | None, modes: ModesSection, progress: bool = True) -> int:
    """Store forced-mode continuations for every (problem, budget) not stored yet; returns answers generated.

    Reads the stored max-budget samples, plans each sample at each budget (`forcing.plan_force`),
    asks the backend only for the unfinished ones (prompt + first B ids + forcing ids, n=1), and
    writes one row per sample and budget, continued or not, so resuming knows what is done.
    """
    force_ids = encode_prompt(tokenizer, modes.force_string)
    work = _pending_budget_units(prepared, run_dir, config.budgets, CONTINUATIONS)
    if not work:
        return 0
    samples_by_task = {item.task.name: _stored_samples(run_dir, item.task.name) for item in prepared}
    generated = [0]

    def write_chunk(chunk):
        generated[0] += _force_chunk(chunk, samples_by_task[chunk[0][0].task.name], backend, tokenizer, think_end,
                                     force_ids, modes, config, run_dir)

    _run_stage(work, config.problems_per_shard, "forcing answers", "problem x budget", progress, 0, len(work),
               write_chunk)
    return generated[0]


def _stored_samples(run_dir: Path, task: str) -> dict[str, list[dict]]:
    """problem_id -> its stored max-budget samples in sample order."""
    samples: dict[str, list[dict]] = {}
    columns = ["problem_id", "sample_idx", "prompt", "token_ids", "finish_reason", "seed"]
    for row in read_task(run_dir, task, columns=columns).to_pylist():
        samples.setdefault(row["problem_id"], []).append(row)
    for rows in samples.values():
        rows.sort(key=lambda row: row["sample_idx"])
    return samples


def _force_chunk(chunk, samples, backend, tokenizer, think_end, force_ids, modes: ModesSection,
                 config: RunConfig, run_dir: Path) -> int:
    planned, requests = [], []
    for item, index, budget in chunk:
        problem = item.problems[index]
        for sample in samples[problem.problem_id]:
            ids = sample["token_ids"]
            thinking = response_is_thinking(sample["prompt"], think_end)
            prefix_text = tokenizer.decode(ids[:budget], skip_special_tokens=True) if thinking else ""
            plan = plan_force(ids, sample["finish_reason"], budget, still_thinking(prefix_text, think_end, thinking),
                              force_ids)
            request = None
            if plan.continued:
                request = continuation_request(
                    f"{item.task.name}/{problem.problem_id}/{sample['sample_idx']}@{budget}",
                    item.prompt_token_ids[index], ids, budget, plan, sample_seed(sample["seed"], sample["sample_idx"]),
                    modes.answer_tokens)
                requests.append(request)
            planned.append((item.task.name, problem.problem_id, sample["sample_idx"], budget, plan, request))
    outputs = iter(backend.generate(requests, config.sampling) if requests else [])
    records, generated = [], 0
    for task_name, problem_id, sample_idx, budget, plan, request in planned:
        answer = None
        if request is not None:
            answers = next(outputs)
            _check_sample_count(answers, request, 1)
            answer = answers[0]
            generated += len(answer.token_ids)
        records.append(ContinuationRecord(
            task=task_name, problem_id=problem_id, sample_idx=sample_idx, budget=budget, continued=plan.continued,
            force_token_ids=plan.force_token_ids, force_string=modes.force_string,
            token_ids=answer.token_ids if answer else (), text=answer.text if answer else "",
            finish_reason=answer.finish_reason if answer else "stop",
            seed=request.seed if request else -1, max_tokens=modes.answer_tokens))
    write_shard(run_dir, chunk[0][0].task.name, records, kind=CONTINUATIONS)
    return generated


def condition_missing(config: RunConfig, prepared: list[PreparedTask], run_dir: Path, backend, tokenizer,
                      modes: ModesSection, progress: bool = True) -> int:
    """Generate conditioned-mode responses (the budget in the prompt), one generation per budget value.

    Each (problem, budget) is one request of n samples with the problem's own seed and
    `conditioned_max_tokens`; returns the number of (problem, budget) units generated.
    """
    work = _pending_budget_units(prepared, run_dir, config.budgets, CONDITIONED)
    if work:
        _run_stage(work, config.problems_per_shard, "conditioned generation", "problem x budget", progress, 0,
                   len(work), lambda chunk: _condition_chunk(chunk, backend, tokenizer, modes, config, run_dir))
    return len(work)


def _condition_chunk(chunk, backend, tokenizer, modes: ModesSection, config: RunConfig, run_dir: Path) -> None:
    requests, prompts = [], []
    for item, index, budget in chunk:
        problem = item.problems[index]
        instruction = BudgetInstruction(modes.budget_prompt, modes.budget_prompt_position, budget)
        prompt = render_prompt(item.task, problem, tokenizer, config.prompt, instruction)
        prompts.append(prompt)
        requests.append(GenerationRequest(
            key=f"{item.task.name}/{problem.problem_id}@{budget}",
            prompt_token_ids=tuple(encode_prompt(tokenizer, prompt)),
            n=config.n,
            seed=derive_seed(config.seed, item.task.name, problem.problem_id),
            max_tokens=modes.conditioned_max_tokens,
        ))
    outputs = backend.generate(requests, config.sampling)
    records = []
    for (item, index, budget), prompt, request, samples in zip(chunk, prompts, requests, outputs):
        _check_sample_count(samples, request, config.n)
        for sample_idx, sample in enumerate(samples):
            records.append(ConditionedRecord(
                task=item.task.name, problem_id=item.problems[index].problem_id, sample_idx=sample_idx,
                prompt=prompt, prompt_num_tokens=len(request.prompt_token_ids), token_ids=sample.token_ids,
                text=sample.text, finish_reason=sample.finish_reason, seed=request.seed,
                max_tokens=request.max_tokens, model=config.model, backend=config.backend, budget=budget))
    write_shard(run_dir, chunk[0][0].task.name, records, kind=CONDITIONED)


def engine_missing(config: RunConfig, prepared: list[PreparedTask], run_dir: Path, backend, tokenizer,
                   modes: ModesSection, think_end: str | None, progress: bool = True) -> int:
    """Generate engine-mode responses (the engine's own thinking budget), one generation per budget value.

    Each (problem, budget) is one request of n samples with the problem's own seed, the seed of its
    max-budget generation, so the engine's thinking matches cutoff's first tokens until it forces
    the end string at B; returns the number of (problem, budget) units generated.
    """
    work = _pending_budget_units(prepared, run_dir, config.budgets, ENGINE)
    if work:
        start_tokens = len(encode_prompt(tokenizer, modes.think_start))
        force_tokens = len(encode_prompt(tokenizer, modes.force_string))
        _run_stage(work, config.problems_per_shard, "engine thinking budget", "problem x budget", progress, 0,
                   len(work), lambda chunk: _engine_chunk(chunk, backend, config, run_dir, modes, think_end,
                                                          start_tokens, force_tokens))
    return len(work)


def _engine_chunk(chunk, backend, config: RunConfig, run_dir: Path, modes: ModesSection, think_end: str | None,
                  start_tokens: int, force_tokens: int) -> None:
    requests = []
    for item, index, budget in chunk:
        problem = item.problems[index]
        # A prompt that opened the thinking block leaves no start marker for the model to write.
        opened = prompt_opens_thinking(item.prompts[index], modes.think_start, think_end)
        requests.append(GenerationRequest(
            key=f"{item.task.name}/{problem.problem_id}@{budget}",
            prompt_token_ids=tuple(item.prompt_token_ids[index]),
            n=config.n,
            seed=derive_seed(config.seed, item.task.name, problem.problem_id),
            max_tokens=engine_max_tokens(budget, 0 if opened else start_tokens, force_tokens, modes.answer_tokens),
            thinking_budget=budget,
        ))
    outputs = backend.generate(requests, config.sampling)
    records = []
    for (item, index, budget), request, samples in zip(chunk, requests, outputs):
        _check_sample_count(samples, request, config.n)
        for sample_idx, sample in enumerate(samples):
            records.append(EngineRecord(
                task=item.task.name, problem_id=item.problems[index].problem_id, sample_idx=sample_idx,
                prompt=item.prompts[index], prompt_num_tokens=len(request.prompt_token_ids),
                token_ids=sample.token_ids, text=sample.text, finish_reason=sample.finish_reason, seed=request.seed,
                max_tokens=request.max_tokens, model=config.model, backend=config.backend, budget=budget))
    write_shard(run_dir, chunk[0][0].task.name, records, kind=ENGINE)


def task_entries(prepared: list[PreparedTask]) -> dict[str, TaskEntry]:
    """The manifest's `tasks` section: what each task loaded."""
    return {item.task.name: task_entry(item.task, item.problems, item.skipped) for item in prepared}


def run_manifest(config: RunConfig, prepared: list[PreparedTask], modes: ModesSection, fingerprint: dict,
                 think_end: str | None, existing: Manifest | None) -> Manifest:
    """The manifest of a run being started or resumed.

    A resumed run keeps its creation time, engine facts and last scoring; the modes it evaluates
    are the union of the stored and the new ones (adding forced mode keeps the cutoff results).
    """
    stored_modes = existing.run_modes if existing and existing.modes else ()
    all_modes = tuple(mode for mode in MODES if mode in set(stored_modes) | set(modes.modes))
    if "engine" in stored_modes and "engine" not in modes.modes:
        modes = _keep_engine_settings(modes, existing.modes)
    base = existing or Manifest(kind="run", config=config, tasks={}, created=now_utc())
    return base.replace(
        kind="run", config=config, generation={**base.generation, **fingerprint},
        modes=ModesSection(**{**dataclasses.asdict(modes), "modes": all_modes}), think_end=think_end,
        tasks=task_entries(prepared), packages=package_versions(), hardware=hardware())


def _keep_engine_settings(modes: ModesSection, stored: ModesSection) -> ModesSection:
    """The new modes with the stored engine-mode settings, which scoring its stored responses needs
    (the run resumed without engine mode); forced mode shares the forced string, so it must agree."""
    if "forced" in modes.modes and (modes.force_string, modes.answer_tokens) != (stored.force_string,
                                                                                stored.answer_tokens):
        raise UserError(f"This run's engine mode forced {stored.force_string!r} with --answer-tokens "
                        f"{stored.answer_tokens}; forced mode must use the same: pass --force-string and "
                        f"--answer-tokens as the engine-mode run did, or add engine to --modes with the new ones "
                        f"after --overwrite.")
    return dataclasses.replace(modes, think_start=stored.think_start, force_string=stored.force_string,
                               answer_tokens=stored.answer_tokens)


def make_backend(config: RunConfig, tokenizer_path: str, modes: ModesSection | None = None):
    """Instantiate the configured backend (imports its heavy packages only now); with engine mode in
    `modes`, an in-process engine starts with the thinking budget's reasoning strings."""
    backend_class = get_backend_class(config.backend)
    if modes is not None and "engine" in modes.modes:
        config = dataclasses.replace(config, engine=dataclasses.replace(
            config.engine, reasoning=(modes.think_start, modes.force_string)))
    return backend_class.from_config(config, tokenizer_path)


def run(config: RunConfig, overwrite: bool = False, progress: bool = True, backend=None,
        bootstrap: int = DEFAULT_BOOTSTRAP, bootstrap_seed: int = 0, answer_policy: str = "strict",
        strict: bool = False, verdict_cache: Path | None = None) -> Path:
    """Run (or resume) a sweep end to end and return the run directory.

    `backend` lets a caller reuse a live engine across runs (tests, notebooks); by default the
    configured backend is created only if something is left to generate. `bootstrap`,
    `bootstrap_seed` (the metrics' confidence intervals) and `answer_policy`
    (`budgeteval.scoring.answers.POLICIES`) go to `evaluate_run`; the policy only changes scoring, so it
    is not part of the configuration a resumed run must match; so does `verdict_cache` (a shared
    verdict-cache folder). `strict` goes to `prepare_tasks`.
    The run directory's write lock is held throughout (`run_dir.lock_run`).
    """
    config.validate()
    run_dir = Path(config.out)
    tasks = resolve_tasks(config)
    with lock_run(run_dir, "run"):
        return _run_locked(config, tasks, run_dir, overwrite, progress, backend, bootstrap, bootstrap_seed,
                           answer_policy, strict, verdict_cache)


def _run_locked(config: RunConfig, tasks: list[Task], run_dir: Path, overwrite: bool, progress: bool, backend,
                bootstrap: int, bootstrap_seed: int, answer_policy: str, strict: bool,
                verdict_cache: Path | None = None) -> Path:
    """`run` once the run directory's write lock is held."""
    from budgeteval.scoring.evaluate import evaluate_run

    tokenizer = load_tokenizer(config.tokenizer or config.model, config.revision,
                               "--tokenizer" if config.tokenizer else "--model")
    modes = resolve_modes(config, tokenizer)
    prepared = prepare_tasks(config, tasks, tokenizer, strict)
    check_context(config, prepared, modes, tokenizer)
    fingerprint = generation_fingerprint(config, prepared, modes)
    shard_section = None
    if config.shard is not None:
        # The fingerprint stays that of the whole run (every shard's must match for `merge`).
        shard_section = shard_manifest_section(config.shard, prepared)
        fingerprint["shard"] = {"index": config.shard.index, "count": config.shard.count}
        prepared = select_shard(prepared, config.shard)
    existing = open_run(run_dir, fingerprint, overwrite)
    manifest = run_manifest(config, prepared, modes, fingerprint, resolve_think_end(config, tokenizer), existing)
    if shard_section is not None:
        manifest = manifest.replace(shard=shard_section)
    # The manifest first: from here on a kill leaves a directory this command resumes. The
    # tokenizer and problems are rewritten on every start (same content, same bytes), so a kill
    # while writing them is repaired by the next start.
    write_manifest(run_dir, manifest)
    save_tokenizer(run_dir, tokenizer)
    saved_tokenizer = tokenizer_dir(run_dir)
    for item in prepared:
        write_problems(run_dir, item.task.name, [
            {"problem_id": p.problem_id, "question": p.question, "reference": p.reference, **p.groups}
            for p in item.problems])
    think_end = manifest.think_end

    engine = _LazyBackend(lambda: _Borrowed(backend) if backend is not None
                          else make_backend(config, str(saved_tokenizer), modes))
    try:
        if "cutoff" in modes.modes or "forced" in modes.modes:
            generate_missing(config, prepared, run_dir, engine, progress)
        if "forced" in modes.modes:
            force_missing(config, prepared, run_dir, engine, tokenizer, think_end, modes, progress)
        if "conditioned" in modes.modes:
            condition_missing(config, prepared, run_dir, engine, tokenizer, modes, progress)
        if "engine" in modes.modes:
            engine_missing(config, prepared, run_dir, engine, tokenizer, modes, think_end, progress)
        engine_facts = engine.describe() if engine.started else None
    finally:
        engine.close()
    if engine_facts is not None:
        # Taken after generation, so counters a backend keeps (retries, re-tokenized responses) are final.
        write_manifest(run_dir, manifest.replace(engine=engine_facts, generated_at=now_utc()))
    if any(item.problems for item in prepared):  # a shard may hold no problem at all
        evaluate_run(run_dir, budgets=config.budgets, modes=modes.modes, workers=config.workers, progress=progress,
                     bootstrap=bootstrap, bootstrap_seed=bootstrap_seed, answer_policy=answer_policy,
                     verdict_cache=verdict_cache)
    return run_dir


class _Borrowed:
    """A caller-owned backend: used like ours, but not closed when generation ends."""

    def __init__(self, backend):
        self._backend = backend

    def generate(self, requests, sampling):
        return self._backend.generate(requests, sampling)

    def describe(self):
        return self._backend.describe()

    def close(self):
        pass
