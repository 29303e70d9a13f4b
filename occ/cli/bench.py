"""``occ bench``: run the load-testing harness of the source checkout (``benchmarks/bench_online.py``).

The harness is benchmark code, never imported by the product: this command only runs it as a subprocess
(``python -m benchmarks.bench_online``) with the checkout on ``PYTHONPATH``, passes every argument through
(``occ bench --help`` shows the harness's options) and exits with its status.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click

CHECKOUT = Path(__file__).resolve().parents[2]
HARNESS = CHECKOUT / "benchmarks" / "bench_online.py"


@click.command(context_settings={"ignore_unknown_options": True, "help_option_names": []})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def bench(args: tuple[str, ...]) -> None:
    """Load-test OCC: softswitch simulator, echo and Redis ceilings, correctness, plots (--help for options)."""
    if not HARNESS.is_file():
        raise click.ClickException(
            f"the load harness is not here ({HARNESS} is missing): occ bench runs from a source checkout of OCC"
        )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(CHECKOUT), env.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-m", "benchmarks.bench_online", *args], env=env, check=False)
    raise click.exceptions.Exit(done.returncode)
