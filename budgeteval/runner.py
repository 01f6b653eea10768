"""Run a budget sweep: prepare prompts, generate once at the largest budget, store, then score.

The runner owns the run directory's life cycle: it writes the manifest, refuses to mix a new
configuration into an old run (unless told to overwrite), and resumes an interrupted run by
generating only the units of work not stored yet. Generation has up to three stages, one per
budget mode that needs the model: the max-budget generation (cutoff and forced modes), forced
answer continuations (`budgeteval.forcing`), and one generation per budget for conditioned mode.
Scoring is `budgeteval.scoring`.
"""

import hashlib
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional

from budgeteval.backends import get_backend_class
from budgeteval.backends.base import GenerationRequest
from budgeteval.config import MODES, RunConfig
from budgeteval.errors import UserError
from budgeteval.metrics import DEFAULT_BOOTSTRAP
from budgeteval.forcing import (continuation_request, default_force_string, plan_force, still_thinking)
from budgeteval.manifest import (first_difference, hardware, now_utc, package_versions, read_manifest,
                                 write_manifest)
from budgeteval.prompts import (BudgetInstruction, default_think_end, encode_prompt, render_prompt,
                                response_is_thinking)
from budgeteval.store import (CONDITIONED, CONTINUATIONS, ConditionedRecord, ContinuationRecord, GenerationRecord,
                              read_task, stored_problem_ids, stored_units, write_problems, write_shard)
from budgeteval.tasks import Problem, Task, group_task_options, load_problem_set, load_task, problems_hash

RUN_OUTPUTS = ("generations", "continuations", "conditioned", "problems", "tokenizer", "scores.parquet",
               "metrics.csv", "metrics.json")
"""What a run directory holds besides its manifest (removed by --overwrite)."""


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


def derive_seed(run_seed: int, task: str, problem_id: str) -> int:
    """Per-request seed: depends on the run seed, the task and the problem, never on order or batch."""
    digest = hashlib.sha256(f"{run_seed}\x00{task}\x00{problem_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x3FFFFFFF


def load_tokenizer(name_or_path: str, revision: Optional[str] = None, flag: str = "--tokenizer"):
    """Load a Hugging Face tokenizer, with one clear sentence naming `flag` when it cannot be found."""
    from transformers import AutoTokenizer

    text = str(name_or_path)
    path = Path(text).expanduser()
    # A hub id is `name` or `org/name`; anything else is meant as a local path, and a missing one
    # would otherwise reach the hub client and come back as a complaint about repo-id characters.
    looks_local = path.exists() or text.startswith(("/", ".", "~")) or text.count("/") > 1 or "\\" in text
    if looks_local and not path.exists():
        raise UserError(f"{flag} {text} does not exist: pass a local checkpoint directory or a hub id "
                        f"such as Qwen/Qwen3-1.7B.")
    if looks_local and not path.is_dir():
        raise UserError(f"{flag} {text} is a file: pass the checkpoint directory that holds it.")
    try:
        return AutoTokenizer.from_pretrained(text, revision=revision)
    except (OSError, ValueError) as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        where = (f"the local directory {text} has no tokenizer files" if looks_local
                 else f"hub id {text!r} could not be fetched ({reason})")
        fix = ("pass --tokenizer with the tokenizer's directory or hub id" if looks_local
               else f"check the id, go online, or pass {flag} a local directory")
        raise UserError(f"Cannot load the tokenizer of {flag} {text}: {where}; {fix}.") from None


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


def prepare_tasks(config: RunConfig, tasks: list[Task], tokenizer) -> list[PreparedTask]:
    """Load every task's problems and render their prompts."""
    prepared = []
    for task in tasks:
        problem_set = load_problem_set(task, config.limit, strict=config.strict)
        problems = problem_set.problems
        if problem_set.skipped:
            ids = [problem_id for problem_id, _ in problem_set.skipped]
            print(f"warning: task {task.name}: skipped {len(ids)} problem(s) that {problem_set.skipped[0][1]}: "
                  f"{', '.join(ids[:5])}{' …' if len(ids) > 5 else ''} (counted in the manifest; --strict refuses "
                  f"them).", file=sys.stderr)
        prompts = [render_prompt(task, problem, tokenizer, config.prompt) for problem in problems]
        prepared.append(PreparedTask(task, problems, prompts, [encode_prompt(tokenizer, text) for text in prompts],
                                     problem_set.skipped))
    return prepared


def resolve_think_end(config: RunConfig, tokenizer) -> Optional[str]:
    """The end-of-thinking marker for this run ('' from the user disables thinking handling)."""
    if config.think_end is not None:
        return config.think_end or None
    return default_think_end(tokenizer)


@dataclass(frozen=True)
class ResolvedModes:
    """A run's mode settings with every default filled in (what the manifest records)."""

    modes: tuple[str, ...]
    """Budget modes evaluated."""
    force_string: Optional[str]
    """forced: the forcing string used (None when forced mode is off)."""
    answer_tokens: int
    """forced: answer-token limit A."""
    budget_prompt: Optional[str]
    """conditioned: the budget instruction template (None when conditioned mode is off)."""
    budget_prompt_position: str
    """conditioned: where the instruction goes."""
    conditioned_max_tokens: int
    """conditioned: token limit of each conditioned generation."""

    def fingerprint(self) -> dict:
        """The generation-relevant settings of each mode that generates (compared when resuming)."""
        sections = {}
        if "forced" in self.modes:
            sections["forced"] = {"force_string": self.force_string, "answer_tokens": self.answer_tokens}
        if "conditioned" in self.modes:
            sections["conditioned"] = {"budget_prompt": self.budget_prompt, "position": self.budget_prompt_position,
                                       "max_tokens": self.conditioned_max_tokens}
        return sections


MODE_SECTIONS = ("forced", "conditioned")
"""Fingerprint sections that belong to one mode: a resumed run may add a mode it did not have."""


def resolve_modes(config: RunConfig, tokenizer) -> ResolvedModes:
    """Check the mode settings and fill in their defaults (the forcing string of the model's family)."""
    settings = config.modes  # ranges and combinations were checked when the record was built
    conditioned = "conditioned" in settings.modes
    forced = "forced" in settings.modes
    force_string = (settings.force_string if settings.force_string is not None
                    else default_force_string(tokenizer)) if forced else None
    if forced and not force_string:
        raise UserError("--force-string is empty: give the end-of-thinking string and answer cue to append.")
    return ResolvedModes(
        modes=tuple(mode for mode in MODES if mode in settings.modes),
        force_string=force_string,
        answer_tokens=settings.answer_tokens,
        budget_prompt=settings.budget_prompt if conditioned else None,
        budget_prompt_position=settings.budget_prompt_position,
        conditioned_max_tokens=settings.conditioned_max_tokens or config.max_budget,
    )


def generation_fingerprint(config: RunConfig, prepared: list[PreparedTask],
                           modes: Optional[ResolvedModes] = None) -> dict:
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
                             **({"options": dict(item.task.option_values)} if item.task.option_values else {})}
            for item in prepared
        },
    }


def open_run_dir(run_dir: Path, fingerprint: dict, overwrite: bool) -> Optional[dict]:
    """Create the run directory, or check that an existing one was made with the same settings.

    Returns the existing manifest when resuming, None for a fresh run.
    """
    if not (run_dir / "manifest.json").exists():
        if run_dir.exists() and any(run_dir.iterdir()) and not overwrite:
            raise UserError(f"{run_dir} exists and is not a budgeteval run: choose another --out or pass --overwrite.")
        run_dir.mkdir(parents=True, exist_ok=True)
        return None
    if overwrite:
        for name in RUN_OUTPUTS + ("manifest.json",):
            target = run_dir / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
        return None
    manifest = read_manifest(run_dir)
    old = manifest.get("generation", {})
    # A mode's settings are compared only when both runs use the mode: adding forced mode to a
    # finished cutoff run re-uses its generation instead of refusing it.
    difference = first_difference(
        {key: value for key, value in old.items() if key not in MODE_SECTIONS or key in fingerprint},
        {key: value for key, value in fingerprint.items() if key not in MODE_SECTIONS or key in old})
    if difference:
        raise UserError(
            f"{run_dir} holds a run with a different configuration ({difference}): "
            f"pass --overwrite to start it over, or choose another --out."
        )
    return manifest


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


def _chunks(items: list, size: int) -> list[list]:
    size = max(1, size)
    return [items[start:start + size] for start in range(0, len(items), size)]


def generate_missing(config: RunConfig, prepared: list[PreparedTask], run_dir: Path, backend,
                     progress: bool = True) -> int:
    """Generate and store (at the largest budget) every problem not yet in the store; returns how many."""
    from tqdm import tqdm

    pending = []
    for item in prepared:
        done = stored_problem_ids(run_dir, item.task.name)
        pending.extend((item, index) for index, problem in enumerate(item.problems) if problem.problem_id not in done)
    if not pending:
        return 0
    total = sum(len(item.problems) for item in prepared)
    with tqdm(total=total, initial=total - len(pending), unit="problem", desc="generating",
              disable=not progress) as bar:
        for chunk in _chunks(pending, config.problems_per_shard):
            for task_name in dict.fromkeys(item.task.name for item, _ in chunk):
                task_chunk = [(item, index) for item, index in chunk if item.task.name == task_name]
                _generate_chunk(config, backend, task_chunk, run_dir)
                bar.update(len(task_chunk))
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
                  think_end: Optional[str], modes: ResolvedModes, progress: bool = True) -> int:
    """Store forced-mode continuations for every (problem, budget) not stored yet; returns answers generated.

    Reads the stored max-budget samples, plans each sample at each budget (`forcing.plan_force`),
    asks the backend only for the unfinished ones (prompt + first B ids + forcing ids, n=1), and
    writes one row per sample and budget, continued or not, so resuming knows what is done.
    """
    from tqdm import tqdm

    force_ids = encode_prompt(tokenizer, modes.force_string)
    work = _pending_budget_units(prepared, run_dir, config.budgets, CONTINUATIONS)
    if not work:
        return 0
    samples_by_task = {item.task.name: _stored_samples(run_dir, item.task.name) for item in prepared}
    generated = 0
    with tqdm(total=len(work), unit="problem x budget", desc="forcing answers", disable=not progress) as bar:
        for chunk in _chunks(work, config.problems_per_shard):
            for task_name in dict.fromkeys(item.task.name for item, _, _ in chunk):
                task_chunk = [unit for unit in chunk if unit[0].task.name == task_name]
                generated += _force_chunk(task_chunk, samples_by_task[task_name], backend, tokenizer, think_end,
                                          force_ids, modes, config, run_dir)
                bar.update(len(task_chunk))
    return generated


def _stored_samples(run_dir: Path, task: str) -> dict[str, list[dict]]:
    """problem_id -> its stored max-budget samples in sample order."""
    samples: dict[str, list[dict]] = {}
    columns = ["problem_id", "sample_idx", "prompt", "token_ids", "finish_reason", "seed"]
    for row in read_task(run_dir, task, columns=columns).to_pylist():
        samples.setdefault(row["problem_id"], []).append(row)
    for rows in samples.values():
        rows.sort(key=lambda row: row["sample_idx"])
    return samples


def _force_chunk(chunk, samples, backend, tokenizer, think_end, force_ids, modes: ResolvedModes,
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
                    item.prompt_token_ids[index], ids, budget, plan, sample["seed"] + sample["sample_idx"],
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
                      modes: ResolvedModes, progress: bool = True) -> int:
    """Generate conditioned-mode responses (the budget in the prompt), one generation per budget value.

    Each (problem, budget) is one request of n samples with the problem's own seed and
    `conditioned_max_tokens`; returns the number of (problem, budget) units generated.
    """
    from tqdm import tqdm

    work = _pending_budget_units(prepared, run_dir, config.budgets, CONDITIONED)
    if not work:
        return 0
    with tqdm(total=len(work), unit="problem x budget", desc="conditioned generation", disable=not progress) as bar:
        for chunk in _chunks(work, config.problems_per_shard):
            for task_name in dict.fromkeys(item.task.name for item, _, _ in chunk):
                task_chunk = [unit for unit in chunk if unit[0].task.name == task_name]
                _condition_chunk(task_chunk, backend, tokenizer, modes, config, run_dir)
                bar.update(len(task_chunk))
    return len(work)


def _condition_chunk(chunk, backend, tokenizer, modes: ResolvedModes, config: RunConfig, run_dir: Path) -> None:
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


def make_backend(config: RunConfig, tokenizer_path: str):
    """Instantiate the configured backend (imports its heavy packages only now)."""
    backend_class = get_backend_class(config.backend)
    return backend_class.from_config(config, tokenizer_path)


def run(config: RunConfig, overwrite: bool = False, progress: bool = True, backend=None,
        bootstrap: int = DEFAULT_BOOTSTRAP, bootstrap_seed: int = 0) -> Path:
    """Run (or resume) a sweep end to end and return the run directory.

    `backend` lets a caller reuse a live engine across runs (tests, notebooks); by default the
    configured backend is created only if something is left to generate. `bootstrap` and
    `bootstrap_seed` go to `evaluate_run` (the metrics' confidence intervals).
    """
    from budgeteval.scoring import evaluate_run

    run_dir = Path(config.out)
    tasks = resolve_tasks(config)
    tokenizer = load_tokenizer(config.tokenizer or config.model, config.revision,
                               "--tokenizer" if config.tokenizer else "--model")
    modes = resolve_modes(config, tokenizer)
    prepared = prepare_tasks(config, tasks, tokenizer)
    fingerprint = generation_fingerprint(config, prepared, modes)
    existing = open_run_dir(run_dir, fingerprint, overwrite)
    tokenizer_dir = run_dir / "tokenizer"
    if existing is None or not tokenizer_dir.is_dir():
        tokenizer.save_pretrained(str(tokenizer_dir))
        for item in prepared:
            write_problems(run_dir, item.task.name, [
                {"problem_id": p.problem_id, "question": p.question, "reference": p.reference} for p in item.problems])
    think_end = resolve_think_end(config, tokenizer)
    manifest = dict(existing or {})
    manifest.update({
        "budgeteval_manifest": "run",
        "created": manifest.get("created", now_utc()),
        "config": config.to_dict(),
        "generation": {**manifest.get("generation", {}), **fingerprint},
        "modes": {**manifest.get("modes", {}), **asdict(modes),
                  "modes": sorted(set(manifest.get("modes", {}).get("modes", [])) | set(modes.modes),
                                  key=MODES.index)},
        "think_end": think_end,
        "tasks": {item.task.name: {"yaml": item.task.yaml_path, "description": item.task.description,
                                   "source": item.task.source.__dict__, "scorer": item.task.scorer,
                                   "version": item.task.version, "options": dict(item.task.option_values),
                                   "num_skipped": len(item.skipped),
                                   "skipped": [{"problem_id": problem_id, "reason": reason}
                                               for problem_id, reason in item.skipped]}
                  for item in prepared},
        "packages": package_versions(),
        "hardware": hardware(),
    })
    write_manifest(run_dir, manifest)

    engine = _LazyBackend(lambda: _Borrowed(backend) if backend is not None
                          else make_backend(config, str(tokenizer_dir)))
    try:
        if "cutoff" in modes.modes or "forced" in modes.modes:
            generate_missing(config, prepared, run_dir, engine, progress)
        if "forced" in modes.modes:
            force_missing(config, prepared, run_dir, engine, tokenizer, think_end, modes, progress)
        if "conditioned" in modes.modes:
            condition_missing(config, prepared, run_dir, engine, tokenizer, modes, progress)
        engine_facts = engine.describe() if engine.started else None
    finally:
        engine.close()
    if engine_facts is not None:
        # Taken after generation, so counters a backend keeps (retries, re-tokenized responses) are final.
        manifest["engine"] = engine_facts
        manifest["generated_at"] = now_utc()
        write_manifest(run_dir, manifest)
    evaluate_run(run_dir, budgets=config.budgets, modes=modes.modes, workers=config.workers, progress=progress,
                 bootstrap=bootstrap, bootstrap_seed=bootstrap_seed)
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
