"""What every console page gets in the browser tests: a screenshot and an accessibility check (axe-core)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

BLOCKING = ("serious", "critical")


@cache
def _axe() -> Any:
    """axe-core, as ``axe-playwright-python`` bundles it (imported here: the default run, without the ``browser``
    extra installed, still collects this folder and deselects its tests)."""
    from axe_playwright_python.sync_playwright import Axe

    return Axe()


def serious_violations(page: Any) -> list[str]:
    """axe-core's serious and critical violations on ``page`` as it is now: ``rule (impact): target, …`` each."""
    results = _axe().run(page)
    found = []
    for violation in results.response["violations"]:
        if violation.get("impact") in BLOCKING:
            targets = ", ".join(" ".join(node["target"]) for node in violation["nodes"][:5])
            found.append(f"{violation['id']} ({violation['impact']}): {violation['help']} — {targets}")
    return found


def look(page: Any, name: str, folders: list[Path]) -> None:
    """Save a full-page screenshot of ``page`` as ``<name>.png`` in each folder, then fail on serious or critical
    accessibility violations."""
    page.wait_for_load_state("load")
    for folder in folders:
        page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
    problems = serious_violations(page)
    assert not problems, f"{name} ({page.url}) has accessibility violations:\n" + "\n".join(problems)
