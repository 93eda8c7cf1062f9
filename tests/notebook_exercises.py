"""The worked solutions inside the notebooks' exercise cells, for the tests of their checkers.

Not in conftest.py: `notebooks/` has a conftest of its own, and `from conftest import ...` would
reach whichever of the two was imported first."""

import json
import re
from pathlib import Path


def exercise_solution(stem: str, name: str):
    """The worked solution of exercise `name` in notebook `stem`: its exercise cell (tagged `exercise`,
    solution between the nbgrader markers) run in a namespace of its own. Exercise cells import what
    they use, so the function runs outside the notebook."""
    path = Path(__file__).resolve().parents[1] / "notebooks" / f"{stem}.ipynb"
    for cell in json.loads(path.read_text())["cells"]:
        source = "".join(cell["source"])
        if "exercise" in cell.get("metadata", {}).get("tags", []) and re.search(rf"^def {name}\(", source, re.M):
            namespace = {"__name__": f"notebook_{stem}"}
            exec(compile(source, f"{path.name}:{name}", "exec"), namespace)
            return namespace[name]
    raise LookupError(f"{path.name}: no exercise cell defines {name}")
