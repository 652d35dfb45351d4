"""Refuse a run started from the top level of a script that worker processes import again.

Worker processes find steps defined in a script by importing that script again (as ``__mp_main__``).
A script that calls ``pipeline.run()`` outside ``if __name__ == "__main__":`` would so start the run again
in every worker, each of which starts workers of its own, until they die. The run is refused before it
starts, with the two lines that fix it; a worker that gets there anyway refuses too, before recording
anything.
"""

from __future__ import annotations

import ast
import linecache
import os
import sys
from types import FrameType

from evergreen.errors import RunError


def check_main_guard(pipeline: str) -> None:
    """Raise :class:`RunError` when this call comes from the unguarded top level of the ``__main__`` script
    (in this process, whose workers will import it), or from a worker's import of that script."""
    # multiprocessing imports the parent's script as `__mp_main__` while a new process starts (before
    # parent_process() is set), so a top-level frame of that name means this process is one of those.
    frame = _module_frame("__mp_main__")
    if frame is not None:
        raise RunError(_message(pipeline, frame, worker=True))
    frame = _module_frame("__main__")
    if frame is not None and _is_main_script(frame) and not _guarded(frame.f_code.co_filename, frame.f_lineno):
        raise RunError(_message(pipeline, frame, worker=False))


def _is_main_script(frame: FrameType) -> bool:
    """Whether the frame runs the script that workers import again (a notebook cell or ``python -c`` has no
    file for them to import, so none of this applies there)."""
    script = getattr(sys.modules.get("__main__"), "__file__", None)
    return script is not None and os.path.abspath(script) == os.path.abspath(frame.f_code.co_filename)


def _module_frame(module_name: str) -> FrameType | None:
    """The frame running the top level of the module called ``module_name``, if it is on the stack."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "<module>" and frame.f_globals.get("__name__") == module_name:
            return frame
        frame = frame.f_back
    return None


def _is_main_test(test: ast.expr) -> bool:
    """Whether ``test`` is ``__name__ == "__main__"`` (either way round)."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, test.comparators[0]]
    names = [s for s in sides if isinstance(s, ast.Name) and s.id == "__name__"]
    constants = [s for s in sides if isinstance(s, ast.Constant) and s.value == "__main__"]
    return len(names) == 1 and len(constants) == 1


def _guarded(filename: str, line: int) -> bool:
    """Whether ``line`` of the script lies inside a top-level ``if __name__ == "__main__":`` block.

    A script whose source cannot be read or parsed is given the benefit of the doubt.
    """
    source = "".join(linecache.getlines(filename))
    if not source:
        return True
    try:
        tree = ast.parse(source, filename)
    except SyntaxError:
        return True
    for node in tree.body:
        if isinstance(node, ast.If) and _is_main_test(node.test) and node.body:
            end = node.body[-1].end_lineno or node.body[-1].lineno
            if node.body[0].lineno <= line <= end:
                return True
    return False


def _message(pipeline: str, frame: FrameType, *, worker: bool) -> str:
    filename, line = frame.f_code.co_filename, frame.f_lineno
    call = linecache.getline(filename, line).strip() or f"{pipeline}.run(...)"
    where = "a worker process importing" if worker else "the top level of"
    return (
        f"pipeline {pipeline!r} was run from {where} the script {filename} (line {line}). Worker processes "
        "import that script again to find its steps, so every worker would start the run again. Put the "
        f'run under the main guard:\n\n    if __name__ == "__main__":\n        {call}\n\n'
        "or define the steps in a module of their own, or set [executor] kind = 'inline'"
    )
