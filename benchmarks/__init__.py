"""Benchmark suite of the ImageSearch provider, against the local emulator (in its own process).

``python -m benchmarks`` runs every figure of the issue and prints a table (figure, goal, measured,
pass/fail, the emulator's own request rate during the figure); ``--smoke`` runs tiny sizes (CI),
``--json FILE`` also writes the results, ``--only GROUP[,GROUP]`` picks figure groups
(``calls``, ``tokens``, ``deferral``, ``fleet``, ``import``, ``parse``, ``archive``, ``ui``).

From Python: ``benchmarks.run(smoke=True) -> list[Result]``. Importing this package imports neither
Airflow nor the provider's hooks: :func:`run` configures a throwaway ``AIRFLOW_HOME`` first (unless
Airflow is already imported, e.g. by a pytest conftest that configured it).
"""

from __future__ import annotations

from collections.abc import Collection

from benchmarks.results import Result

__all__ = ["Result", "run"]


def run(smoke: bool = False, *, only: Collection[str] | None = None) -> list[Result]:
    """Run the figures (all, or the groups in ``only``) and return their results.

    A figure whose benchmark code breaks is returned with ``status == "error"`` rather than raising;
    a goal that is missed gives ``status == "fail"`` (in smoke mode the sizes are too small for the
    goals to mean much: check for errors only).
    """
    from benchmarks.runner import run_suite

    return run_suite(smoke=smoke, only=only).results
