"""The rooms and their doors (design.md): which top-level package may import which, and the
README's layout table naming every folder there is. Read from the source with `ast`, so a
new import that breaks the layering fails here, not in a review."""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("shell", "adapters", "handlers", "bot", "training", "nlp")
# What each room may import of ours (arrows point down; the shell sits on top).
ALLOWED = {
    "shell": {"adapters", "handlers", "bot", "training", "nlp"},
    "adapters": {"handlers", "bot", "nlp"},
    "handlers": {"bot", "nlp"},
    "bot": {"nlp"},
    # training reads the catalogue file format and stored examples from bot (no cycle:
    # bot never imports training).
    "training": {"bot", "nlp"},
    "nlp": set(),
}
# Channel SDKs: only adapters (and the shell's channel commands) talk to them.
SDKS = ("telegram", "wechatpy")


@functools.cache  # both import tests read every source: parse each file once
def _imports(path: Path) -> frozenset[str]:
    """Top-level modules a file imports, including imports inside functions."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return frozenset(found)


def _sources(package: str) -> list[Path]:
    return [p for p in (ROOT / package).rglob("*.py") if "migrations" not in p.parts
            or p.name != "env.py"]


def test_each_room_imports_only_the_rooms_below_it() -> None:
    wrong = []
    for package in PACKAGES:
        for path in _sources(package):
            ours = _imports(path) & set(PACKAGES)
            for target in sorted(ours - ALLOWED[package] - {package}):
                wrong.append(f"{path.relative_to(ROOT)} imports {target}")
    assert wrong == []


def test_handlers_and_the_core_import_no_channel_sdk() -> None:
    wrong = [f"{path.relative_to(ROOT)} imports {sdk}"
             for package in ("handlers", "bot", "nlp", "training")
             for path in _sources(package)
             for sdk in SDKS if sdk in _imports(path)]
    assert wrong == []


def test_readme_layout_table_names_every_folder() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Layout", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `([\w.-]+)/` \|", section, flags=re.MULTILINE))
    on_disk = {p.name for p in ROOT.iterdir()
               if p.is_dir() and not p.name.startswith(".") and p.name not in
               {"var", "test-artifacts", "node_modules", "__pycache__"}
               and not p.name.endswith(".egg-info")}
    assert listed == on_disk
