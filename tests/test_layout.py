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


# -- a test module named after every module -----------------------------------------------------
# tests/test_<leaf>.py for a module whose leaf name no other module has, and always
# tests/test_<package>_<leaf>.py (tests/test_cases_filing.py for bot/cases/filing.py); a package
# is named by its own name (tests/test_console.py for adapters/console/__init__.py).

# Modules with no test module of their own, and why: wiring and re-exports only. A module
# that gets a test module must leave this list (the test below says so).
NO_TEST_MODULE = {
    "bot": "empty package",
    "nlp": "empty package",
    "handlers": "empty package",
    "adapters": "empty package",
    "shell": "package docstring only",
    "shell.ops": "package docstring only",
    "shell.reports": "package docstring only",
    "bot.cases": "re-exports the parts of bot/cases (each has its own test module)",
    "bot.cases.context": "a dataclass of the parts CaseService shares; no behaviour",
    "adapters.sms.provider": "the provider interface: a Protocol, a dataclass, an exception",
    "shell.asgi": "wiring: `app = create_app(load_config())` for hypercorn",
}
# Modules tested in a feature-named file that is not named after them (renaming those files
# is a change of its own). Each file must import the module it stands for here.
TESTED_IN = {
    "adapters.app_state": "test_telegram.py",
    "adapters.case_photos": "test_telegram.py",
    "adapters.console.dashboard": "test_dashboard.py",
    "adapters.console.vendor": "test_dashboard.py",
    "adapters.guard": "test_security_login.py",
    "adapters.open311_xml": "test_open311.py",
    "adapters.openapi": "test_fuzz_api.py",
    "adapters.sms.templates": "test_sms.py",
    "adapters.suggest_api": "test_fuzz_api.py",
    "adapters.telegram": "test_telegram.py",
    "adapters.telegram_outbound": "test_telegram.py",
    "adapters.testing": "test_dialog.py",
    "adapters.wechat": "test_wechat.py",
    "adapters.wechat_api": "test_wechat.py",
    "adapters.wecom": "test_wecom.py",
    "bot.apikeys": "test_apikeys.py",
    "bot.changes": "test_console.py",
    "bot.coords": "test_geo.py",
    "bot.dashboard": "test_dashboard.py",
    "bot.duty": "test_patrol_duty.py",
    "bot.grid_store": "test_storage.py",
    "bot.grids": "test_geo.py",
    "bot.hotspots": "test_hotspots.py",
    "bot.kv": "test_storage.py",
    "bot.locator": "test_geo.py",
    "bot.media": "test_security_uploads.py",
    "bot.messages": "test_inbound.py",
    "bot.models": "test_schema.py",
    "bot.outbox": "test_engine.py",
    "bot.patrol": "test_patrol_tracks.py",
    "bot.periods": "test_appraisal.py",
    "bot.services": "test_storage.py",
    "bot.sms_consent": "test_sms.py",
    "bot.teams": "test_telegram.py",
    "bot.timers": "test_engine.py",
    "bot.worker_codes": "test_mp_worker.py",
    "bot.workflow": "test_actions.py",
    "handlers.filing": "test_filing.py",
    "handlers.one_shot": "test_open311.py",
    "handlers.router": "test_security_privacy.py",
    "nlp.char_ngrams": "test_training.py",
    "nlp.classifier": "test_model.py",
    "nlp.features": "test_triage.py",
    "nlp.hotspots": "test_hotspots.py",
    "nlp.message_text": "test_robust_input.py",
    "nlp.model_store": "test_model.py",
    "nlp.places": "test_geo.py",
    "nlp.stopwords": "test_training.py",
    "nlp.urgency": "test_triage.py",
    "shell.app": "test_http_api.py",
    "shell.cli.hotspots": "test_hotspots.py",
    "shell.ops.simulation": "test_stats.py",
    "shell.reports.monthly": "test_appraisal.py",
    "shell.server": "test_http_api.py",
    "training.catalogue_model": "test_model.py",
    "training.corpus": "test_training.py",
    "training.labels": "test_triage.py",
    "training.message_model": "test_training.py",
    "training.report": "test_training.py",
    "training.triage_model": "test_triage.py",
}


def _modules() -> list[str]:
    """Every product module, dotted; a package by its __init__ (migrations are Alembic's)."""
    found = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if "migrations" in parts:
                continue
            found.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return sorted(found)


def _test_names(module: str, leaves: set[str]) -> set[str]:
    """The test module file names that count for `module`; `leaves`: the ambiguous ones."""
    parts = module.split(".")
    names = {f"test_{parts[-2]}_{parts[-1]}.py"} if len(parts) > 1 else set()
    if parts[-1] not in leaves:
        names.add(f"test_{parts[-1]}.py")
    return names


@functools.cache  # a feature file stands for several modules: parse it once
def _imported_names(path: Path) -> frozenset[str]:
    """Every dotted name a file imports, at the top or inside a function: `a.b` for `import
    a.b` and `from a import b`, and `a` for `from a import …`."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return frozenset(names)


def _imports_module(path: Path, module: str) -> bool:
    return any(name == module or name.startswith(module + ".")
               for name in _imported_names(path))


def test_every_module_has_a_test_module_named_after_it() -> None:
    modules = _modules()
    counts: dict[str, int] = {}
    for module in modules:
        counts[module.rsplit(".", 1)[-1]] = counts.get(module.rsplit(".", 1)[-1], 0) + 1
    ambiguous = {leaf for leaf, n in counts.items() if n > 1}
    tests = {p.name for p in (ROOT / "tests").glob("test_*.py")}
    problems = []
    for module in modules:
        named = sorted(_test_names(module, ambiguous) & tests)
        if named:
            if module in NO_TEST_MODULE or module in TESTED_IN:
                problems.append(f"{module} has tests/{named[0]}: take it off the list")
        elif module in TESTED_IN:
            path = ROOT / "tests" / TESTED_IN[module]
            if not path.exists() or not _imports_module(path, module):
                problems.append(f"tests/{TESTED_IN[module]} does not import {module}")
        elif module not in NO_TEST_MODULE:
            problems.append(f"{module}: add tests/{min(_test_names(module, ambiguous), key=len)}")
    problems += [f"{m}: listed, but there is no such module"
                 for m in sorted((set(NO_TEST_MODULE) | set(TESTED_IN)) - set(modules))]
    problems += [f"{m}: in both lists" for m in sorted(set(NO_TEST_MODULE) & set(TESTED_IN))]
    assert not problems, "\n".join(problems)
