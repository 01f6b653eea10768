"""The sandbox's harness: the first code that runs inside the sandbox (trusted, stdlib only).

Never imported: `budgeteval.scoring.sandbox` reads this file's text and runs it as
`python -S -c <text> CONFIG_FD RESULT_FD` inside the sandbox, with the scrubbed environment and no
`site` module. It reads its configuration (JSON) from CONFIG_FD, writes `started` to RESULT_FD,
loads site-packages and the prelude, drops to the unprivileged uid, sets no_new_privs and the
resource limits, writes `ready`, then runs the program as `__main__` (in call mode: calls its
function and writes the return value as one JSON line). Its own exit codes (lock-down failed,
MemoryError) come from the configuration, where the sandbox module defines them.
"""

import json
import os
import sys


def _harness():
    config_fd, result_fd = int(sys.argv[1]), int(sys.argv[2])
    with os.fdopen(config_fd, "rb") as stream:
        config = json.loads(stream.read())
    setup_failed_exit, memory_exit = config["setup_failed_exit"], config["memory_exit"]
    result = os.fdopen(result_fd, "w", encoding="utf-8")
    result.write("started\n")
    result.flush()
    try:
        sys.path.extend(config["sys_path"])
        import builtins
        import ctypes
        import resource
        builtins.exit = builtins.quit = sys.exit  # what `site` would add; scripts call exit()
        namespace = {"__name__": "__main__", "__builtins__": __builtins__}
        exec(compile(config["prelude"], "<prelude>", "exec"), namespace)
        function = config["function"]
        args = None
        if function is not None:
            args = [json.loads(line) for line in sys.stdin.read().split("\n")]
        drop = config["drop_to"]
        if drop is not None:
            os.setgroups([])
            os.setgid(drop[1])
            os.setuid(drop[0])
            if os.getuid() != drop[0] or os.geteuid() != drop[0] or os.getgid() != drop[1]:
                raise RuntimeError("could not switch to the unprivileged uid")
        if ctypes.CDLL(None, use_errno=True).prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
            raise RuntimeError("prctl(PR_SET_NO_NEW_PRIVS) failed")
        for name, soft, hard in config["rlimits"]:
            resource.setrlimit(getattr(resource, name), (soft, hard))
    except BaseException as error:
        sys.stderr.write(f"sandbox harness: {type(error).__name__}: {error}\n")
        sys.stderr.flush()
        os._exit(setup_failed_exit)
    result.write("ready\n")
    result.flush()
    if function is None:
        result.close()
    code = 0
    try:
        exec(compile(config["source"], "solution.py", "exec"), namespace)
        if function is not None:
            target = namespace.get(function)
            solution = namespace.get("Solution")
            if isinstance(solution, type) and hasattr(solution, function):
                target = getattr(solution(), function)
            if not callable(target):
                raise NameError(f"the program defines no function or Solution method {function!r}")
            value = target(*args)
            result.write(json.dumps(_encode(value, top=True), allow_nan=True) + "\n")
            result.flush()
    except SystemExit:
        if function is not None:
            code = 1
    except MemoryError:
        os.write(2, b"MemoryError\n")
        os._exit(memory_exit)
    except BaseException:
        import traceback
        traceback.print_exc()
        code = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        code = code or 1
    os._exit(code)


def _plain(value):
    # Only what json.loads can give back compares the way the program's own value would (LCB
    # compares `prediction == expected` with expected from json.loads); anything else is marked.
    if value is None or isinstance(value, bool):
        return True, value
    if isinstance(value, str):
        return True, str.__str__(value)
    if isinstance(value, int):
        return True, int(value)
    if isinstance(value, float):
        return True, float(value)
    if type(value).__module__ == "numpy" and hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return _plain(value.item())
    if isinstance(value, list):
        items = [_plain(item) for item in value]
        return all(ok for ok, _ in items), [item for _, item in items]
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            return False, None
        items = {key: _plain(item) for key, item in value.items()}
        return all(ok for ok, _ in items.values()), {key: item for key, (_, item) in items.items()}
    return False, None


def _encode(value, top):
    if top and isinstance(value, tuple):  # LCB turns a returned tuple into a list, nothing deeper
        value = list(value)
    ok, plain = _plain(value)
    return {"value": plain} if ok else {"unrepresentable": type(value).__name__}


if __name__ == "__main__":  # `-c` text runs as __main__; an accidental import runs nothing
    _harness()
