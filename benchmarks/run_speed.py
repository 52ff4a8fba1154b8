"""Measure how much of `runbook run` is kernels: the run as a user starts it, next to the same steps'
code cells in one Python process; prints the figures, asserts nothing.

Target (issue 11): `runbook run parameters/sandbox.yaml` on a sandbox with instant jobs, median at
most 1.5 x the one-process figure, while every step still runs in a fresh kernel. Both figures are
whole processes (interpreter start included), measured in turns on one sandbox of this benchmark,
reset to `walkthrough` before each, into a fresh run folder each time. The one-process figure
injects each step's parameters as papermill does and runs every code cell in order in one IPython
shell, a fresh namespace per notebook: what a run would cost if kernels were free.
Run: make benchmark   (or .venv/bin/python benchmarks/run_speed.py [ROUNDS])
"""

from __future__ import annotations

import argparse
import compileall
import dataclasses
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNBOOK = str(Path(sys.executable).parent / "runbook")
PARAMETERS = ROOT / "parameters" / "sandbox.yaml"
TARGET_RATIO = 1.5


def one_process(out: Path) -> None:
    """Every default step's code cells in this process, in the run folder, each step's variables set as
    the runner sets them for its kernel; raises on the first failing cell."""
    # As runbook_lib.app.runner does: nbformat without jsonschema's IRI check (a grammar compiled at import).
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
    import papermill
    from IPython.core.interactiveshell import InteractiveShell
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook
    from traitlets.config import Config

    from runbook_lib.aws import clients
    from runbook_lib.core import params
    from runbook_lib.core.steps import DEFAULT

    values = dataclasses.replace(params.load(PARAMETERS), run_dir=str(out)).as_dict()
    out.mkdir(parents=True, exist_ok=True)
    os.chdir(out)
    os.environ[clients.RETRY_LOG_ENV] = str(out / "retries.jsonl")
    config = Config()
    config.HistoryManager.hist_file = ":memory:"  # as nbclient starts its kernels
    shell = InteractiveShell.instance(config=config)
    for step in DEFAULT:
        path = ROOT / "notebooks" / f"{step}.ipynb"
        declared = set(papermill.inspect_notebook(str(path)))
        given = {name: value for name, value in values.items() if name in declared}
        notebook = parameterize_notebook(load_notebook_node(str(path)), given, kernel_name="python3")
        os.environ[clients.STEP_ENV] = step
        shell.reset(new_session=False)
        for cell in notebook.cells:
            if cell.cell_type == "code":
                shell.run_cell(cell.source, store_history=False).raise_error()


@dataclasses.dataclass
class Figures:
    """One measured command's rounds: wall time, and CPU time (user and system, with every process it waited
    for: the kernels of a run; not the sandbox's), which a busy machine stretches less."""

    seconds: list[float] = dataclasses.field(default_factory=list)
    cpu: list[float] = dataclasses.field(default_factory=list)
    failed: int = 0

    def measure(self, command: list[str], env: dict[str, str]) -> None:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        began = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        self.seconds.append(time.perf_counter() - began)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        if done.returncode != 0:
            self.failed += 1
            print(f"FAILED ({done.returncode}): {' '.join(command)}\n{done.stderr[-2000:]}", file=sys.stderr)

    def report(self, name: str) -> None:
        rounds = " ".join(f"{figure:.1f}" for figure in self.seconds)
        note = f"   {self.failed} FAILED" if self.failed else ""
        print(
            f"{name:<40} median {statistics.median(self.seconds):6.2f} s   rounds {rounds}   "
            f"CPU median {statistics.median(self.cpu):6.2f} s{note}"
        )


def main(rounds: int = 3) -> None:
    from runbook_sandbox import process

    compileall.compile_dir(ROOT / "runbook_lib", quiet=1)
    load = os.getloadavg()[0]
    runs, cells = Figures(), Figures()
    with tempfile.TemporaryDirectory() as folder:
        sandbox_dir = Path(folder) / "sandbox"
        sandbox, _ = process.start(sandbox_dir, job_seconds=0)
        try:
            env = {**os.environ, **sandbox.environment()}
            for name in [k for k in env if k.startswith("AWS_ENDPOINT_URL") or k == "AWS_PROFILE"]:
                del env[name]
            for index in range(rounds):
                sandbox.reset("walkthrough")
                out = Path(folder) / f"run{index}"
                runs.measure([RUNBOOK, "run", str(PARAMETERS), "--out", str(out)], env)
                sandbox.reset("walkthrough")
                out = Path(folder) / f"cells{index}"
                cells.measure([sys.executable, __file__, "--one-process", str(out)], env)
        finally:
            process.stop(sandbox_dir)
    runs.report("runbook run (sandbox, instant jobs)")
    cells.report("the same cells in one process")
    ratio = statistics.median(runs.seconds) / statistics.median(cells.seconds)
    cpu_ratio = statistics.median(runs.cpu) / statistics.median(cells.cpu)
    verdict = "meets" if ratio <= TARGET_RATIO else "MISSES"
    print(f"{'ratio':<40} {ratio:13.2f} x   target {TARGET_RATIO:.1f} x: {verdict} it   (CPU {cpu_ratio:.2f} x)")
    print(f"load average before: {load:.1f}, after: {os.getloadavg()[0]:.1f} (on {os.cpu_count()} cores)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rounds", nargs="?", type=int, default=3)
    parser.add_argument("--one-process", type=Path, metavar="OUT", help="run the cells here, into OUT, and exit")
    arguments = parser.parse_args()
    if arguments.one_process:
        one_process(arguments.one_process.resolve())
    else:
        main(arguments.rounds)
