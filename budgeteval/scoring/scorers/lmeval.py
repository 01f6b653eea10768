"""The `lmeval` scorer: lm-eval's own verdict on the answer region of each replayed response.

A reference is the JSON document `budgeteval.tasks.lm_eval.problem_reference` wrote: the task
(`LmEvalSpec`: YAML, config hash, metric, filter, stop strings) and the lm-eval document. For each
task in a batch the scorer rebuilds lm-eval's task from its YAML over the stored documents (lm-eval's
`custom_dataset` hook, so no dataset is downloaded), refusing a YAML whose config hash changed. Then,
as lm-eval's evaluator does: the response is cut at the first stop string
(`lm_eval.models.utils.postprocess_generated_text`), becomes an `Instance` (`construct_requests`)
with it as its one response, the task's filters run (`apply_filters`), and `process_results` gives
the metric, whose value (0 or 1) is the verdict (once per distinct document and filtered
answer). The filtered response is the extracted answer
(None when a regex filter found nothing). A response still thinking at the budget (no answer
region) is wrong without asking lm-eval.
"""

import json
import os
from collections.abc import Sequence

from budgeteval.errors import UserError
from budgeteval.scoring.scorers.base import ProgressCallback, ScoreItem, Verdict

NO_MATCH = "[invalid]"
"""What lm-eval's regex filters return when nothing matches (`RegexFilter`'s default fallback)."""


def scoring_task(spec, docs: Sequence[dict]):
    """lm-eval's task built from its YAML over `docs` (already processed by its `process_docs`)."""
    import datasets
    from lm_eval.tasks import TaskManager

    from budgeteval.tasks.lm_eval import config_hash, raw_config, resolve_yaml

    config = raw_config(resolve_yaml(spec.yaml))
    if config_hash(config, spec.num_fewshot) != spec.config_sha256:
        raise UserError(f"lm-eval task {spec.task} ({resolve_yaml(spec.yaml)}) has changed since the run was made "
                        f"(config hash differs): score it with the lm-eval and task YAML it was run with.")
    rows = datasets.Dataset.from_list([dict(doc) for doc in docs])
    config.update({
        # The stored documents are the dataset: they were processed once already, and few-shot
        # examples are not needed to score.
        "custom_dataset": lambda **_: datasets.DatasetDict({"test": rows}),
        "process_docs": None, "test_split": "test", "validation_split": None, "training_split": None,
        "fewshot_split": None, "fewshot_config": None, "num_fewshot": 0,
    })
    for key in ("tag", "group", "task_list"):
        config.pop(key, None)
    return TaskManager(include_defaults=False).load(config)["tasks"][spec.task]


def _verdict(value, filtered, metric: str, task: str) -> Verdict:
    if isinstance(value, bool) or value in (0, 1):
        extracted = None if filtered is None or filtered == NO_MATCH else str(filtered)
        return Verdict(extracted, bool(value))
    raise UserError(f"lm-eval metric {metric} of task {task} gave {value!r}, not 0 or 1: a budget sweep scores each "
                    f"answer right or wrong, so choose a 0/1 metric with --task-option lm-eval:{task}.metric=METRIC.")


def score_batch(
    items: Sequence[ScoreItem],
    *,
    workers: int = min(4, os.cpu_count() or 1),
    progress: ProgressCallback = None,
    answer_policy: str | None = None,
    verdict_cache=None,
) -> list[Verdict]:
    """One verdict per item, in order; each distinct (reference, answer) is judged once.

    `workers` is accepted for the common signature and unused: lm-eval's filters and metrics run in
    this process, the way lm-eval's evaluator runs them. `answer_policy` is accepted and not applied:
    what counts as an answer is the lm-eval task's own filter (`answer_source` stays None).
    `verdict_cache` is accepted and unused: lm-eval's filters and metrics run in microseconds."""
    from lm_eval.models.utils import postprocess_generated_text

    from budgeteval.tasks.lm_eval import spec_from_reference

    del workers, verdict_cache
    parsed: dict[str, dict] = {}
    pending: dict[tuple, list[int]] = {}
    verdicts: list[Verdict | None] = [None] * len(items)
    for position, item in enumerate(items):
        if item.answer_text is None:
            verdicts[position] = Verdict(None, False)
            continue
        if item.reference not in parsed:
            try:
                parsed[item.reference] = json.loads(item.reference)
                parsed[item.reference]["spec"] = spec_from_reference(parsed[item.reference])
            except (ValueError, KeyError, TypeError):
                raise UserError(f"Problem {item.problem_id} has no lm-eval reference: the lmeval scorer scores "
                                f"lm-eval:NAME tasks only.") from None
        spec = parsed[item.reference]["spec"]
        answer = postprocess_generated_text(item.answer_text, list(spec.until), None)
        pending.setdefault((item.reference, answer), []).append(position)
    by_spec: dict = {}
    for reference, answer in pending:
        by_spec.setdefault(parsed[reference]["spec"], []).append((reference, answer))
    for spec, keys in by_spec.items():
        docs = {parsed[reference]["doc_id"]: parsed[reference]["doc"] for reference, _ in keys}
        task = scoring_task(spec, list(docs.values()))
        instances = []
        for reference, answer in keys:
            instance = task.construct_requests(doc=parsed[reference]["doc"], ctx="",
                                               metadata=(spec.task, parsed[reference]["doc_id"], 1))
            instance.resps = [answer]
            instances.append(instance)
        # lm-eval keeps a task's instances here; apply_filters runs every filter pipeline over them.
        task._instances = instances
        task.apply_filters()
        # process_results depends on the document and the filtered answer only, and many responses
        # filter to the same answer (a number, or no match): each distinct pair is judged once.
        judged: dict[tuple, Verdict] = {}
        for (reference, answer), instance in zip(keys, instances):
            filtered = instance.filtered_resps[spec.filter]
            key = (reference, json.dumps(filtered, sort_keys=True, default=repr))
            if key not in judged:
                metrics = task.process_results(instance.doc, [filtered])
                if spec.metric not in metrics:
                    raise UserError(f"lm-eval task {spec.task} reports no metric {spec.metric!r} "
                                    f"(it reports {', '.join(metrics)}): choose one with --task-option.")
                judged[key] = _verdict(metrics[spec.metric], filtered, spec.metric, spec.task)
            for position in pending[(reference, answer)]:
                verdicts[position] = judged[key]
    if progress is not None:
        progress(len(items))
    return verdicts
