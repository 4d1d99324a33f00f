"""Sphinx configuration of the airflow-provider-imagesearch documentation (stock Sphinx + autodoc).

``make docs`` builds it with warnings as errors and nitpicky cross-references (``-W --keep-going -n``).
The API reference pages (``_api/``) are generated here, one per module of the package, on every build,
so a new module or class is documented without anyone remembering to add it.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import pkgutil
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent
REPO = DOCS.parent
sys.path.insert(0, str(REPO))
# autodoc imports the package, which imports Airflow: give it a throwaway home, not ~/airflow.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="imagesearch-docs-airflow-home-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

import airflow_provider_imagesearch  # noqa: E402

project = "airflow-provider-imagesearch"
author = "airflow-provider-imagesearch maintainers"
copyright = "the airflow-provider-imagesearch maintainers"
# The installed distribution's version (make install installs this checkout, editable).
release = version = importlib.metadata.version(project)

extensions = ["sphinx.ext.autodoc", "myst_parser"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
html_theme = "furo"
html_title = "airflow-provider-imagesearch"
templates_path: list[str] = []

# A broken reference to this project's own objects is an error (-n). References to other projects'
# objects (Airflow, requests, httpx, the standard library) cannot be resolved offline (no intersphinx
# inventories can be fetched here), so only those are exempt.
# Private bases (``_HookBase``...) appear in "Bases:" lines but are not documented, on purpose.
nitpick_ignore_regex = [
    (r"py:.*", r"^(?!airflow_provider_imagesearch\.).*"),
    (r"py:.*", r"^airflow_provider_imagesearch\..*\._[A-Za-z]\w*$"),
]
autodoc_default_options = {"members": True, "show-inheritance": True, "member-order": "bysource"}
autodoc_typehints = "signature"
autodoc_inherit_docstrings = False
# Public names only; the emulator's own modules are documented by its package (Emulator, ...).
API_SKIP = ("airflow_provider_imagesearch.emulator.",)


def public_modules() -> list[str]:
    """Every module of the package, except the emulator's internals (its package page covers it)."""
    names = [airflow_provider_imagesearch.__name__]
    for info in pkgutil.walk_packages(airflow_provider_imagesearch.__path__, "airflow_provider_imagesearch."):
        if info.name.startswith(API_SKIP) or info.name.rsplit(".", 1)[-1].startswith("_"):
            continue
        names.append(info.name)
    return sorted(names)


def write_api_pages() -> None:
    out = DOCS / "_api"
    out.mkdir(exist_ok=True)
    modules = public_modules()
    wanted = {f"{name}.rst" for name in modules}
    for stale in out.glob("*.rst"):
        if stale.name not in wanted and stale.name != "index.rst":
            stale.unlink()
    for name in modules:
        importlib.import_module(name)
        title = f"``{name}``"
        body = f"{title}\n{'=' * len(title)}\n\n.. automodule:: {name}\n"
        if name == "airflow_provider_imagesearch.emulator":
            # Its module docstring is the emulator's own manual (see the emulator pages): classes only.
            body = f"{title}\n{'=' * len(title)}\n\n.. py:module:: {name}\n\n" + "".join(
                f".. autoclass:: airflow_provider_imagesearch.emulator.{cls}\n   :members:\n\n"
                for cls in ("Emulator", "EmulatorProcess", "EmulatorClient", "FaultConfig")
            )
        path = out / f"{name}.rst"
        if not path.exists() or path.read_text() != body:
            path.write_text(body)
    index = "API reference\n=============\n\nGenerated from the docstrings, one page per module.\n\n"
    index += ".. toctree::\n   :maxdepth: 1\n\n" + "".join(f"   {name}\n" for name in modules)
    if not (out / "index.rst").exists() or (out / "index.rst").read_text() != index:
        (out / "index.rst").write_text(index)


write_api_pages()
