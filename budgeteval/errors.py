"""User-facing errors: one clear sentence, no traceback.

Raise `UserError` for anything the user can fix (a bad flag, a missing file, a malformed YAML).
The CLI prints its message and exits with status 2; library callers get an ordinary exception.
"""


class UserError(Exception):
    """A problem with the user's input, described in one sentence that says what to do."""


class UnjudgeableProblem(UserError):
    """A problem its scorer can never judge (a LiveCodeBench problem with no test cases at all).

    Loading skips such a problem with a warning counted in the manifest, or refuses the task with
    `--strict`; raised by reference builders, caught by `budgeteval.tasks.loading.load_problem_set`.
    """

    def __init__(self, problem_id: str, reason: str):
        super().__init__(f"Problem {problem_id} {reason}")
        self.problem_id = problem_id
        """The problem's id."""
        self.reason = reason
        """Why it cannot be judged, as a phrase (`has no test cases ...`)."""
