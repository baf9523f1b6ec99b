"""The install puts one namespace, `iot_jobs_bridge`, into site-packages, and the code imports only it."""

import importlib
import pkgutil
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("broker", "device_sdk", "jobs_service", "schemas", "simulator")
GENERIC_IMPORT = re.compile(rf"^\s*(?:from|import)\s+(?:{'|'.join(FOLDERS)})\b", re.MULTILINE)


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_package_folder_is_installed_under_the_namespace():
    folders = {
        "iot_jobs_bridge." + ".".join(init.parent.relative_to(ROOT).parts)
        for folder in FOLDERS
        for init in (ROOT / folder).rglob("__init__.py")
    }
    assert set(_pyproject()["tool"]["setuptools"]["packages"]) == folders


def test_each_top_level_folder_is_mapped_to_its_subpackage():
    mapping = _pyproject()["tool"]["setuptools"]["package-dir"]
    assert mapping == {f"iot_jobs_bridge.{folder}": folder for folder in FOLDERS}


def test_no_code_test_or_doc_imports_a_folder_by_its_bare_name():
    files = [path for folder in (*FOLDERS, "tests", "bench") for path in (ROOT / folder).rglob("*.py")] + [
        *ROOT.glob("*.md"),
        *(ROOT / "docs").rglob("*.md"),
    ]
    offenders = [
        f"{path.relative_to(ROOT)}: {match.group().strip()}"
        for path in files
        for match in GENERIC_IMPORT.finditer(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_importing_every_module_loads_no_generic_top_level_name():
    imported = []
    for folder in FOLDERS:
        package = importlib.import_module(f"iot_jobs_bridge.{folder}")
        for module in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            imported.append(importlib.import_module(module.name))
    assert len(imported) > 80  # every module, not a walk that found nothing
    assert not set(FOLDERS) & set(sys.modules)
