"""Shared fixtures: a trained model (once per run), and the storage back ends.

PostgreSQL and Redis come from GRIDBOT_TEST_POSTGRES_URL / GRIDBOT_TEST_REDIS_URL (defaults:
the local servers). When they cannot be reached the tests that need them skip — except with
GRIDBOT_REQUIRE_SERVICES=1 (as .ci/run sets), where they fail.
"""

from __future__ import annotations

import asyncio
import copy
import fcntl
import os
import shutil
import warnings
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis.asyncio as aioredis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.config import PROJECT_ROOT, Config, load_config
from tests.fixtures.suite_totals import JEST_TOTALS
from tests.fixtures.wechat.fake_api import FakeWeChat
from tests.templates import DatabaseTemplates

if TYPE_CHECKING:  # imported where used: pytest-xdist's controller loads this file too, and
    # needs none of the product (bot.services pulls in scikit-learn: seconds before the
    # workers start)
    from bot.cases import Clock
    from bot.services import Services

POSTGRES_URL = os.environ.get(
    "GRIDBOT_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)


def _own_redis_database(url: str) -> str:
    """Under pytest-xdist (`./run test` spreads the suite over the cores) each worker flushes
    a Redis database of its own: gw0 the configured one, gw1 the one below, and so on."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw"):
        return url
    parts = urlsplit(url)
    database = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{(database - int(worker[2:])) % 16}"))


REDIS_URL = _own_redis_database(
    os.environ.get("GRIDBOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/15"))
REQUIRE = os.environ.get("GRIDBOT_REQUIRE_SERVICES") == "1"
# In CI (CI set, as GitHub Actions and GitLab do, or .ci/run's GRIDBOT_REQUIRE_SERVICES=1)
# nothing a test needs may be missing; elsewhere a test whose data is absent skips.
IN_CI = REQUIRE or os.environ.get("CI", "").lower() not in ("", "0", "false", "no")
# The data kept outside the repository (the labelled real messages, ../shared/data/tipdm).
SHARED_DATA = PROJECT_ROOT.parent / "shared/data"
# GRIDBOT_TEST_NO_TEMPLATES=1: every `services` / `clocked` migrates an empty database of its
# own (SQLite) or the one at GRIDBOT_TEST_POSTGRES_URL, as before tests/templates.py; to
# compare timings or rule the templates out when a test behaves oddly.
NO_TEMPLATES = os.environ.get("GRIDBOT_TEST_NO_TEMPLATES") == "1"
FIXTURES = Path(__file__).parent / "fixtures"
# argon2 at its cheapest for every config the tests load (make_config, and the CLI run
# in-process or as a subprocess, which read os.environ): a console login or `users add`
# then hashes in microseconds instead of ~0.1–0.5 s. The shipped cost is config.toml's
# (tests/test_config.py checks it stays strong).
CHEAP_PASSWORDS = {
    "GRIDBOT_CONSOLE_PASSWORD_TIME_COST": "1",
    "GRIDBOT_CONSOLE_PASSWORD_PARALLELISM": "1",
    "GRIDBOT_CONSOLE_PASSWORD_MEMORY_KIB": "8",
}
for _name, _value in CHEAP_PASSWORDS.items():
    os.environ.setdefault(_name, _value)


def needs_shared_data(*names: str) -> list[Path]:
    """The files under ../shared/data a test reads (e.g. "tipdm/dev_raw.csv"). When one is
    missing the test skips, saying which and where, outside CI, and fails in CI."""
    paths = [SHARED_DATA / name for name in names]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        message = (f"needs the shared data next to the repository, not found: "
                   f"{', '.join(missing)}")
        if IN_CI:
            pytest.fail(message + " (in CI these tests must run)")
        pytest.skip(message + " (skipped outside CI; CI runs these tests)")
    return paths


# `./run test` spreads the suite over the cores with pytest-xdist's loadscope: each module
# goes to one worker whole (its module fixtures — a trained model, a jest run, a browser — are
# made once) and a worker gets the next module when it is nearly done with its own. Modules
# are handed out heaviest first (rough seconds on the 2-core machine; the rest by their
# number of tests), so the last ones to run are short and the workers finish together.
MODULE_SECONDS = {
    "tests/test_training.py": 60, "tests/test_http_api.py": 35,
    "tests/test_load_harness.py": 30, "tests/test_triage.py": 30,
    "tests/test_miniprogram.py": 30, "tests/test_dashboard.py": 22,
    "tests/browser/test_case_media_browser.py": 18, "tests/browser/test_console_browser.py": 18,
    "tests/test_stats.py": 16, "tests/test_telegram.py": 15, "tests/test_hotspots.py": 13,
    "tests/test_console.py": 13, "tests/browser/test_appraisal_browser.py": 12,
    "tests/test_fuzz_api.py": 10,
}


def _module_seconds(path: str, tests: int) -> float:
    return MODULE_SECONDS.get(path, 0.25 * tests)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return  # one process: the files' order
    modules: dict[str, list[pytest.Item]] = {}
    for item in items:
        modules.setdefault(item.nodeid.split("::", 1)[0], []).append(item)
    order = sorted(modules, key=lambda m: -_module_seconds(m, len(modules[m])))
    items[:] = [item for module in order for item in modules[module]]


def pytest_sessionfinish(session: pytest.Session) -> None:
    """An xdist worker hands the jest totals it holds to the controller, which prints them."""
    totals = session.config.stash.get(JEST_TOTALS, None)
    output = getattr(session.config, "workeroutput", None)
    if totals is not None and output is not None:
        output["jest_totals"] = list(totals)


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: absent without the plugin
def pytest_testnodedown(node: Any, error: object) -> None:
    totals = getattr(node, "workeroutput", {}).get("jest_totals")
    if totals is not None:
        passed, failed, skipped, seconds = totals
        node.config.stash[JEST_TOTALS] = (int(passed), int(failed), int(skipped),
                                          float(seconds))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter,
                            config: pytest.Config) -> None:
    totals = config.stash.get(JEST_TOTALS, None)
    if totals is not None:
        passed, failed, skipped, seconds = totals
        terminalreporter.write_line(
            f"mini-program jest unit tests: {passed} passed, {failed} failed, {skipped} "
            f"skipped in {seconds:.1f}s (tests/test_miniprogram.py)")


def _unavailable(what: str, exc: Exception) -> None:
    message = f"{what} not reachable: {exc}"
    if REQUIRE:
        pytest.fail(message + " (GRIDBOT_REQUIRE_SERVICES=1: these tests must run)")
    pytest.skip(message)


async def _reset_postgres(url: str) -> None:
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()


async def _reset_redis(url: str) -> None:
    client = aioredis.from_url(url)
    await client.flushdb()
    await client.aclose()


@pytest.fixture
def fake_api() -> Iterator[FakeWeChat]:
    """The local stand-in for WeChat's API (tests/fixtures/wechat/fake_api.py), one per test:
    wechatpy's real client is pointed at it."""
    fake = FakeWeChat().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Path:
    """The catalogue model trained from the shipped seed corpus, as `./run demo` does.

    Trained once for all runs of the same inputs: kept in pytest's cache folder
    (.pytest_cache), under a digest of everything the training reads and runs (data/, nlp/,
    training/, the catalogue code, the library versions), so a change to any of them trains
    it again. The first xdist worker to need it trains it; another waits for it. Without the
    cache plugin (-p no:cacheprovider) every session trains its own, as before."""
    root = tmp_path_factory.mktemp("models")
    cache = getattr(pytestconfig, "cache", None)
    if cache is None:
        _train_seed_model(root)
        return root
    kept = cache.mkdir("gridbot-seed-model") / _seed_model_digest()
    with open(f"{kept}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not (kept / "CURRENT").exists():
            partial = Path(f"{kept}.partial")
            shutil.rmtree(partial, ignore_errors=True)
            _train_seed_model(partial)
            partial.rename(kept)  # whole or not at all
    shutil.copytree(kept, root, copy_function=_link_or_copy, dirs_exist_ok=True)
    return root


def _train_seed_model(root: Path) -> None:
    from bot.catalogue import load_catalogue
    from nlp.model_store import ModelStore
    from nlp.places import Gazetteer, load_gazetteer
    from training.catalogue_model import train_catalogue_model

    catalogue = load_catalogue(PROJECT_ROOT / "data/catalogue.csv")
    gazetteer = Gazetteer(load_gazetteer(PROJECT_ROOT / "data/demo/gazetteer.csv"))
    model, report = train_catalogue_model(
        PROJECT_ROOT / "data/seed_corpus", catalogue, gazetteer.words()
    )
    store = ModelStore(root)
    directory = store.new_version_dir("test")
    model.save(directory)
    store.use(directory.name)
    (root / "report.txt").write_text(repr(report), encoding="utf-8")


def _seed_model_digest() -> str:
    """A digest of what the seed model is made of and by: the data, the code that trains,
    pickles and loads it, and the versions of the libraries in the pickle."""
    import hashlib
    import sys
    from importlib.metadata import version

    digest = hashlib.sha256(sys.version.encode())
    for name in ("scikit-learn", "numpy", "scipy", "jieba"):
        digest.update(f"{name} {version(name)}\n".encode())
    files = [*(PROJECT_ROOT / "data").rglob("*"), *(PROJECT_ROOT / "nlp").rglob("*.py"),
             *(PROJECT_ROOT / "training").rglob("*.py"), PROJECT_ROOT / "bot/catalogue.py"]
    for path in sorted(f for f in files if f.is_file()):
        digest.update(f"{path.relative_to(PROJECT_ROOT)}\n".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:24]


@pytest.fixture(scope="session", autouse=True)
def _models_unpickled_once() -> Iterator[None]:
    """Every Services loads its model (a ~95 MB pickle, 0.1–0.4 s) on its first message;
    the tests' model directories hard-link one model.pkl (make_config), so the file is the
    same one almost every time. Here a load of a file already loaded (same inode, size and
    mtime) returns a shallow copy of that model: its own threshold and max_chars (which
    ModelHolder sets), the fitted pipeline shared, read-only, as in one server process.
    A retrained or rewritten file is a new file and is unpickled as before."""
    from nlp import segment
    from nlp.classifier import MODEL_FILE, TextClassifier

    unpickle = TextClassifier.load.__func__  # type: ignore[attr-defined]
    loaded: dict[tuple[Any, ...], TextClassifier] = {}

    def load(cls: type[TextClassifier], directory: Path) -> TextClassifier:
        try:
            st = (Path(directory) / MODEL_FILE).stat()
        except OSError:
            return unpickle(cls, directory)  # says what is missing
        key = (cls, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        model = loaded.pop(key, None)
        if model is None:
            model = unpickle(cls, directory)
            if len(loaded) >= 3:  # the least recently used goes (each holds ~0.3 GB)
                loaded.pop(next(iter(loaded)))
        else:
            segment.add_words(model.user_words)  # as a load does: jieba is process-wide
        loaded[key] = model  # the most recently used last
        return copy.copy(model)

    patch = pytest.MonkeyPatch()
    patch.setattr(TextClassifier, "load", classmethod(load))
    yield
    patch.undo()


@pytest.fixture(scope="session", autouse=True)
def _gazetteers_indexed_once() -> Iterator[None]:
    """build_services reads the gazetteer CSV and indexes its ~840 names (a third of a
    build's time on a template copy). It is read-only once built, so every Services of a
    run that names the same file (same path, size and mtime) gets the one index."""
    import bot.services
    from nlp.places import Gazetteer, Place

    read = bot.services.load_gazetteer
    indexed: dict[tuple[Any, ...], tuple[list[Place], Gazetteer]] = {}

    def load_gazetteer(path: Path) -> list[Place]:
        try:
            st = Path(path).stat()
        except OSError:
            return read(path)  # says what is missing
        key = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
        if key not in indexed:
            places = read(path)
            indexed[key] = (places, Gazetteer(places))
        return indexed[key][0]

    def gazetteer(places: list[Place]) -> Gazetteer:
        for known, index in indexed.values():
            if known is places:
                return index
        return Gazetteer(places)

    patch = pytest.MonkeyPatch()
    patch.setattr(bot.services, "load_gazetteer", load_gazetteer)
    patch.setattr(bot.services, "Gazetteer", gazetteer)
    yield
    patch.undo()


@pytest.fixture(scope="session", autouse=True)
def _apps_compiled_once() -> Iterator[None]:
    """Most tests build the app (create_app) or render a console page, and each new app
    compiled the same things again: werkzeug generates and compiles a URL builder function
    per route (~80% of create_app's ~50 ms), and each app's Jinja environment compiled every
    template it rendered. Here the builders are kept by everything they are generated from
    (the rule's parsed parts, defaults and converters) and each Rule binds the shared one,
    as werkzeug does its own; the templates go through one Jinja bytecode cache, which
    recompiles a template whose source changed. Only for the werkzeug line this was read
    against (3.1): another version builds its rules as it does."""
    from importlib.metadata import version

    from jinja2.bccache import Bucket, BytecodeCache
    from quart import Quart
    from werkzeug.routing.rules import Rule

    patch = pytest.MonkeyPatch()
    if version("werkzeug").startswith("3.1."):
        compile_builder = Rule._compile_builder
        builders: dict[tuple[Any, ...], Any] = {}

        def _compile_builder(self: Rule, append_unknown: bool = True) -> Any:
            defaults = self.defaults or {}
            key = (self.rule, tuple(self._trace), append_unknown,
                   tuple((str(k), type(v), repr(v)) for k, v in defaults.items()),
                   tuple((name, type(c)) for name, c in self._converters.items()))
            if key not in builders:
                builders[key] = compile_builder(self, append_unknown)
            return builders[key]

        patch.setattr(Rule, "_compile_builder", _compile_builder)

    class SharedBytecode(BytecodeCache):
        def __init__(self) -> None:
            self.kept: dict[str, bytes] = {}

        def load_bytecode(self, bucket: Bucket) -> None:
            if bucket.key in self.kept:  # resets itself if the source's checksum differs
                bucket.bytecode_from_string(self.kept[bucket.key])

        def dump_bytecode(self, bucket: Bucket) -> None:
            self.kept[bucket.key] = bucket.bytecode_to_string()

    shared = SharedBytecode()
    create_environment = Quart.create_jinja_environment

    def create_jinja_environment(self: Quart) -> Any:
        environment = create_environment(self)
        environment.bytecode_cache = shared
        return environment

    patch.setattr(Quart, "create_jinja_environment", create_jinja_environment)
    yield
    patch.undo()


def _link_or_copy(src: str, dst: str) -> None:
    """The pickled model (~80 MB) is written once and never changed in place: a hard link
    per test instead of a copy keeps a whole run's temporary files small. CURRENT and the
    rest are copied, since tests switch versions."""
    if src.endswith(".pkl"):
        try:
            os.link(src, dst)
            return
        except OSError:
            pass
    shutil.copy2(src, dst)


def make_config(tmp_path: Path, model_dir: Path, database_url: str = "",
                redis_url: str = "", **env: str) -> Config:
    """The shipped config.toml with storage and model pointed at test places."""
    models = tmp_path / "models"
    if not models.exists():
        shutil.copytree(model_dir, models, copy_function=_link_or_copy)
    environ = {
        "GRIDBOT_DATABASE_URL": database_url or f"sqlite+aiosqlite:///{tmp_path}/gridbot.db",
        "GRIDBOT_REDIS_URL": redis_url,
        "GRIDBOT_NLP_MODEL_DIR": str(models),
        **CHEAP_PASSWORDS,
        **env,
    }
    return load_config(PROJECT_ROOT / "config.toml", environ=environ)


class FakeClock:
    """A clock tests move by hand: deadlines and timers without waiting."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> FakeClock:
    # Monday 2026-11-23 09:00 in Foshan.
    return FakeClock(datetime(2026, 11, 23, 1, 0, tzinfo=UTC))


@pytest.fixture(scope="session")
def db_templates(tmp_path_factory: pytest.TempPathFactory,
                 model_dir: Path) -> Iterator[DatabaseTemplates]:
    """Databases migrated once per session (tests/templates.py): `services` and `clocked`
    start from copies instead of running every migration for every test."""
    from bot.services import build_services

    templates = DatabaseTemplates(tmp_path_factory.mktemp("db-templates"), model_dir,
                                  POSTGRES_URL, make_config, build_services)
    yield templates
    try:
        asyncio.run(asyncio.wait_for(templates.close(), 30))
    except Exception as exc:  # a leftover database is no test failure
        warnings.warn(f"could not drop the session's PostgreSQL database: {exc}", stacklevel=1)


@pytest.fixture(params=["sqlite+embedded", "postgres+redis"])
async def services(request: pytest.FixtureRequest, tmp_path: Path, model_dir: Path,
                   db_templates: DatabaseTemplates) -> AsyncIterator[Services]:
    """Services on both storage set-ups the project ships: the embedded default and the
    production pair."""
    from bot.cases import utcnow

    built = await _build(request.param, tmp_path, model_dir, utcnow, db_templates)
    yield built
    await built.close()


@pytest.fixture(params=["sqlite+embedded", "postgres+redis"])
async def clocked(request: pytest.FixtureRequest, tmp_path: Path, model_dir: Path,
                  clock: FakeClock, db_templates: DatabaseTemplates) -> AsyncIterator[Services]:
    """Like `services`, with time in the test's hands (`clock`)."""
    built = await _build(request.param, tmp_path, model_dir, clock, db_templates)
    yield built
    await built.close()


async def _build(kind: str, tmp_path: Path, model_dir: Path, clock: Clock,
                 templates: DatabaseTemplates) -> Services:
    """Services on a clean database already at the head revision (build_services' own
    upgrade then only reads the version)."""
    from bot.services import build_services

    if kind == "postgres+redis":
        try:
            if NO_TEMPLATES:
                await asyncio.wait_for(_reset_postgres(POSTGRES_URL), 10)
                database_url = POSTGRES_URL
            else:
                database_url = await asyncio.wait_for(templates.postgres_clean(), 60)
        except Exception as exc:
            _unavailable("PostgreSQL", exc)
        try:
            await asyncio.wait_for(_reset_redis(REDIS_URL), 5)
        except Exception as exc:
            _unavailable("Redis", exc)
        config = make_config(tmp_path, model_dir, database_url, REDIS_URL)
    else:
        if not NO_TEMPLATES:
            await templates.sqlite_copy(tmp_path / "gridbot.db")
        config = make_config(tmp_path, model_dir)
    return await build_services(config, clock)
