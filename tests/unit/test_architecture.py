"""The layering, checked on the source: the domain depends on nothing outside it.

The domain is what the product is (pure Python and eventsourcing's domain
model); the API, the infrastructure and the read models depend on it, never
the other way round. The imports are read with ``ast``, without importing
anything, so a violation is found even in a module no test loads.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("domain", "projections", "api", "infrastructure")
# The outer layers of the product, and the web, database and HTTP libraries they use.
OUTSIDE_THE_DOMAIN = {"api", "infrastructure", "projections", "fastapi", "starlette", "psycopg", "httpx",
                      "sqlite3", "uvicorn"}
MAX_LINES = 350


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def imported(path: Path) -> set[str]:
    """The top-level names of every absolute import in the module, wherever it sits (functions too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_the_domain_imports_nothing_from_outer_layers_or_io_libraries() -> None:
    domain = modules("domain")

    outward = {str(path.relative_to(ROOT)): sorted(imported(path) & OUTSIDE_THE_DOMAIN) for path in domain}

    assert domain, "no domain modules found"
    assert {path: names for path, names in outward.items() if names} == {}


def test_the_import_check_sees_imports_inside_functions_too(tmp_path: Path) -> None:
    module = tmp_path / "sample.py"
    module.write_text("import json\n\ndef f():\n    from infrastructure.node import Node\n    import httpx.client\n")

    assert imported(module) == {"json", "infrastructure", "httpx"}


def test_no_product_module_is_over_350_lines() -> None:
    sizes = {str(path.relative_to(ROOT)): len(path.read_text().splitlines())
             for package in PRODUCT for path in modules(package)}

    assert {path: lines for path, lines in sizes.items() if lines > MAX_LINES} == {}
