"""The kernel's shape holds: its import contracts (layers, no cycles, independent services,
no dev tools in services; pyproject.toml ``[tool.importlinter]``) and its public API."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import leadflow.events

ROOT = Path(__file__).resolve().parents[3]
INIT = ROOT / "libs/events/src/leadflow/events/__init__.py"


def test_the_import_contracts_are_kept() -> None:
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint_imports), "--no-cache", "--no-logo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def _type_checking_imports() -> dict[str, str]:
    """name -> module, as the ``if TYPE_CHECKING:`` block of the package imports them."""
    tree = ast.parse(INIT.read_text())
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for statement in node.body:
                assert isinstance(statement, ast.ImportFrom) and statement.module
                for alias in statement.names:
                    found[alias.name] = statement.module.removeprefix("leadflow.events.")
    return found


def test_the_public_api_is_what_the_package_declares_and_every_name_resolves() -> None:
    homes = _type_checking_imports()
    assert sorted(homes) == sorted(leadflow.events.__all__)
    for name, home in homes.items():
        defined = getattr(importlib.import_module(f"leadflow.events.{home}"), name)
        assert getattr(leadflow.events, name) is defined, name


def test_an_unknown_name_is_an_attribute_error() -> None:
    try:
        leadflow.events.NoSuchThing  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("leadflow.events.NoSuchThing resolved")


def test_importing_the_envelope_does_not_load_the_service_kit() -> None:
    """The public API loads on first use: a tool that only needs the catalogue (schemagen,
    a consumer script) does not pay for FastAPI and the kit."""
    code = (
        "import sys, leadflow.events.envelope, leadflow.events.catalogue; "
        "print('leadflow.events.kit' in sys.modules, 'fastapi' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.split() == ["False", "False"]
