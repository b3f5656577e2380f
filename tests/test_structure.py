"""The rules of ../shared/ARCHITECTURE.md, read off the source: who imports whom, one tag vocabulary, and no library
module reading the environment. One test over the whole package, so a new module is checked the day it lands."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("atlas", "serving")

#: Package -> the Atlas packages it may import (besides itself and the standard library and third parties).
ALLOWED = {
    "atlas.config": {"atlas.exceptions"},  # a bad config file is a ConfigError
    "atlas.exceptions": set(),
    "atlas.data": {"atlas.config", "atlas.exceptions"},
    "atlas.runs": {"atlas.config", "atlas.exceptions"},
    "atlas.models": {"atlas.config", "atlas.exceptions", "atlas.data"},
    "atlas.stats": {"atlas.config", "atlas.exceptions", "atlas.data", "atlas.runs"},
    "atlas.infra": {"atlas.config", "atlas.exceptions", "atlas.data", "atlas.models", "atlas.runs", "atlas.stats"},
    # promotion: scores challengers with the digest's statistics; serving only reads the aliases it moves
    "atlas.registry": {"atlas.config", "atlas.exceptions", "atlas.data", "atlas.models", "atlas.runs",
                       "atlas.stats"},
    "atlas.commands": {"atlas", "atlas.config", "atlas.exceptions", "atlas.data", "atlas.models", "atlas.runs",
                       "atlas.stats", "atlas.infra", "atlas.registry", "atlas.commands", "serving"},
    "atlas.cli": {"atlas", "atlas.config", "atlas.exceptions", "atlas.commands"},
    "atlas": {"atlas.config", "atlas.stats"},  # the top-level façade: atlas.harvest
    "serving": {"atlas.config", "atlas.exceptions", "atlas.data", "atlas.models", "atlas.runs"},
}
#: Modules that are entry points, allowed to read the environment (the command line, the interactive façade, and
#: the pyfunc adapter MLflow loads in any process). Everything else gets its settings passed in.
ENTRY_POINTS = {"atlas/config.py", "atlas/cli.py", "atlas/__init__.py", "atlas/models/_pyfunc.py"}
ENTRY_FOLDERS = ("atlas/commands/",)


def modules() -> list[Path]:
    return sorted(p for package in PACKAGES if (ROOT / package).exists() for p in (ROOT / package).rglob("*.py"))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def layer(name: str) -> str:
    """The layer a module belongs to: ``atlas.data`` for ``atlas.data.store._store``, ``atlas`` for the package."""
    parts = name.split(".")
    if parts[0] == "serving":
        return "serving"
    return ".".join(parts[:2]) if len(parts) > 1 else "atlas"


def imports(path: Path) -> list[tuple[int, str]]:
    """Every module an import statement names, at any depth (function-level imports count too)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names
                      if node.module in ("atlas", "serving")]
    return found


def test_every_module_imports_only_what_its_layer_may():
    broken = []
    for path in modules():
        own = layer(module_name(path))
        allowed = ALLOWED[own] | {own}
        for line, name in imports(path):
            if not name.startswith(("atlas", "serving")) or name in ("atlas", "serving"):
                continue
            if name == "atlas.__version__":
                continue
            target = layer(name)
            if target not in allowed and name not in allowed:
                broken.append(f"{path.relative_to(ROOT)}:{line} ({own}) imports {name}")
    assert broken == [], "\n".join(broken)


def test_the_rules_themselves_catch_a_forbidden_import(tmp_path):
    """The checker is not vacuous: a stats module importing infra would be reported."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from atlas.infra import train\n")
    names = [name for _, name in imports(bad)]
    assert "atlas.infra" in names and layer("atlas.infra") not in ALLOWED["atlas.stats"]


def environment_reads(path: Path) -> list[str]:
    """Where code (not a docstring or a comment) reads the environment: ``os.environ`` other than an assignment to
    one key, ``getenv``, ``Settings.from_env``, ``getpass.getuser``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        name = None
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "from_env", "getuser"):
            name = node.attr
        elif isinstance(node, ast.Name) and node.id in ("getenv", "environ"):
            name = node.id
        if name:
            found.append((node.lineno, name))
    stores = {n.targets[0].value.lineno for n in ast.walk(ast.parse(path.read_text()))
              if isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Subscript)
              and isinstance(n.targets[0].value, ast.Attribute) and n.targets[0].value.attr == "environ"}
    return [f"{path.relative_to(ROOT)}:{line}: {name}" for line, name in found if line not in stores]


def test_no_library_module_reads_the_environment():
    readers = []
    for path in modules():
        relative = path.relative_to(ROOT).as_posix()
        if relative in ENTRY_POINTS or relative.startswith(ENTRY_FOLDERS):
            continue
        readers += environment_reads(path)
    assert readers == [], "\n".join(readers)


def test_the_environment_check_sees_a_read(tmp_path):
    reader = tmp_path / "reader.py"
    reader.write_text("import os\n\n\ndef home():\n    return os.environ.get('HOME')\n")
    writer = tmp_path / "writer.py"
    writer.write_text("import os\n\nos.environ['TF_CPP_MIN_LOG_LEVEL'] = '2'\n")
    assert [r.split(": ")[-1] for r in _reads(reader)] == ["environ"] and _reads(writer) == []


def _reads(path: Path) -> list[str]:
    global ROOT
    saved, ROOT = ROOT, path.parent
    try:
        return environment_reads(path)
    finally:
        ROOT = saved


def test_tags_are_named_in_one_place_and_harvest_reads_what_the_driver_writes():
    from atlas.runs import Tag

    vocabulary = Tag.names()
    literal = re.compile(r"""["'](atlas\.[a-z_]+)["']""")
    packages = {"atlas.data", "atlas.infra", "atlas.models", "atlas.runs", "atlas.stats", "atlas.config",
                "atlas.exceptions", "atlas.commands", "atlas.cli", "atlas.predictions", "atlas.store",
                "atlas.after_failure", "atlas.tracking_uri"}
    strays = []
    for path in [*modules(), *sorted((ROOT / "tests").rglob("*.py")), *sorted((ROOT / "benchmarks").glob("*.py"))]:
        if path.name == "_tags.py" or path == Path(__file__).resolve():
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for name in literal.findall(line):
                if name in vocabulary and name not in packages:
                    strays.append(f"{path.relative_to(ROOT)}:{number}: {name}")
    assert strays == [], "tag names written as literals instead of atlas.runs.Tag:\n" + "\n".join(strays)


@pytest.mark.parametrize("name", ["Tag.STATE", "Tag.WORK_UNIT", "Tag.EXECUTION", "Tag.TRIAL", "Tag.MODEL_SPEC"])
def test_the_tags_harvest_reads_are_the_ones_the_driver_writes(name):
    driver = "".join(p.read_text() for p in (ROOT / "atlas" / "infra").glob("*.py"))
    harvest = (ROOT / "atlas" / "runs" / "_harvest.py").read_text()
    assert name in driver and name in harvest
