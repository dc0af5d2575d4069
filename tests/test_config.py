from pathlib import Path

import pytest

from bot.config import PROJECT_ROOT, ConfigError, check_exposure, load_config

SHIPPED = PROJECT_ROOT / "config.toml"


def test_shipped_config_loads_with_safe_defaults() -> None:
    config = load_config(SHIPPED, environ={})
    assert config.server.host == "127.0.0.1"
    assert config.redis.url == ""  # embedded default
    assert config.database_url.startswith("sqlite+aiosqlite:///")
    assert config.database_url.endswith("var/gridbot.db")
    assert config.path(config.catalogue.file).exists()
    assert config.path(config.grids.file).exists()


def test_environment_overrides_every_section() -> None:
    config = load_config(SHIPPED, environ={
        "GRIDBOT_DATABASE_URL": "postgresql+asyncpg://db/x",
        "GRIDBOT_SERVER_PORT": "9090",
        "GRIDBOT_API_KEYS": "k1, k2",
        "GRIDBOT_CALENDAR_HOLIDAYS": "2026-10-01,2026-10-02",
        "GRIDBOT_TEST_SOMETHING": "ignored: not a setting section",
    })
    assert config.database_url == "postgresql+asyncpg://db/x"
    assert config.server.port == 9090
    assert config.api.keys == ["k1", "k2"]
    assert config.calendar.holidays == ["2026-10-01", "2026-10-02"]


@pytest.mark.parametrize(("environ", "named"), [
    ({"GRIDBOT_SERVER_PORT": "eighty"}, "server.port"),
    ({"GRIDBOT_SERVER_PORT": "70000"}, "server.port"),
    ({"GRIDBOT_SERVER_PROT": "80"}, "GRIDBOT_SERVER_PROT"),
    ({"GRIDBOT_CALENDAR_WORK_HOURS": "9-5"}, "calendar.work_hours"),
    ({"GRIDBOT_CASES_NUMBER_PREFIX": "cc-1"}, "cases.number_prefix"),
])
def test_bad_values_name_the_key(environ: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        load_config(SHIPPED, environ=environ)


def test_unknown_key_in_the_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[redis]\nurl = ""\nttl = 5\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"redis\.ttl"):
        load_config(path, environ={})


def test_broken_toml_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[server\nport = 1", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path, environ={})
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml", environ={})


def test_relative_paths_resolve_against_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "city.toml"
    path.write_text('[catalogue]\nfile = "my/catalogue.csv"\n', encoding="utf-8")
    config = load_config(path, environ={})
    assert config.path(config.catalogue.file) == tmp_path / "my/catalogue.csv"


def test_serving_beyond_loopback_without_keys_is_refused() -> None:
    config = load_config(SHIPPED, environ={})
    check_exposure(config, "127.0.0.1")
    check_exposure(config, "::1")
    with pytest.raises(ConfigError, match=r"api\.keys"):
        check_exposure(config, "0.0.0.0")
    keyed = load_config(SHIPPED, environ={"GRIDBOT_API_KEYS": "secret"})
    check_exposure(keyed, "0.0.0.0")


def test_several_workers_need_shared_redis_and_postgres() -> None:
    config = load_config(SHIPPED, environ={"GRIDBOT_SERVER_WORKERS": "2"})
    with pytest.raises(ConfigError, match=r"redis\.url"):
        check_exposure(config)
    redis_only = {"GRIDBOT_SERVER_WORKERS": "2", "GRIDBOT_REDIS_URL": "redis://127.0.0.1/0"}
    with pytest.raises(ConfigError, match="PostgreSQL"):  # SQLite: one process runs timers
        check_exposure(load_config(SHIPPED, environ=redis_only))
    shared = load_config(SHIPPED, environ={
        **redis_only, "GRIDBOT_DATABASE_URL": "postgresql+asyncpg://db/gridbot"})
    check_exposure(shared)


def test_password_hashing_is_strong_unless_configured_lower() -> None:
    """The shipped argon2 cost is argon2-cffi's default profile; the suite lowers it through
    the environment (tests/conftest.py), as any deployment could."""
    console = load_config(SHIPPED, environ={}).console
    assert (console.password_time_cost, console.password_parallelism,
            console.password_memory_kib) == (3, 4, 65536)
    cheap = load_config(SHIPPED, environ={"GRIDBOT_CONSOLE_PASSWORD_TIME_COST": "1",
                                          "GRIDBOT_CONSOLE_PASSWORD_PARALLELISM": "1",
                                          "GRIDBOT_CONSOLE_PASSWORD_MEMORY_KIB": "8"}).console
    assert (cheap.password_time_cost, cheap.password_memory_kib) == (1, 8)
    with pytest.raises(ConfigError, match=r"console\.password_memory_kib"):
        load_config(SHIPPED, environ={"GRIDBOT_CONSOLE_PASSWORD_MEMORY_KIB": "16"})  # 4 lanes
