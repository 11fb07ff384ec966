"""The layers of docs/architecture.md hold: the import contract in pyproject.toml (the one .ci/run
checks with lint-imports) is kept, and it does catch an import that breaks it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--config", "pyproject.toml"],
                          cwd=project, capture_output=True, text=True, timeout=120)


def test_the_code_keeps_every_import_contract() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_rule_module_that_imports_the_database_breaks_the_contract(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "tradectl", tmp_path / "tradectl",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    rules = tmp_path / "tradectl" / "domain" / "pre_trade.py"
    late = "\n\ndef _late() -> None:\n    import tradectl.db.journal\n"
    rules.write_text(rules.read_text() + late)
    result = lint_imports(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert any(line.startswith("The domain core imports nothing of ours but errors")
               and line.endswith("BROKEN") for line in result.stdout.splitlines())
    assert "tradectl.domain.pre_trade -> tradectl.db.journal" in result.stdout
