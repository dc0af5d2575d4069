"""Load config.toml, apply GRIDBOT_<SECTION>_<KEY> environment overrides, validate."""

from __future__ import annotations

import functools
import ipaddress
import os
import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from nlp.topics import DEFAULT_DEPARTMENTS

ENV_PREFIX = "GRIDBOT_"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class ConfigError(Exception):
    """A setting is missing, unknown or has a bad value; the message names the key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServerConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    workers: int = Field(1, ge=1, le=64)
    max_body_bytes: int = Field(1_048_576, ge=1024)
    # Reverse proxies (addresses or networks) whose `proxy_header` names the client. Only a
    # request that comes from one of them is read that way; empty = the peer address is the
    # client (the header is ignored, so nobody can claim another address).
    trusted_proxies: list[str] = []
    proxy_header: str = Field("X-Forwarded-For", pattern=r"^[A-Za-z0-9-]{1,64}$")

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError:
                raise ValueError(f"'{entry}' is not an IP address or network") from None
        return [entry.strip() for entry in value]


class DatabaseConfig(_Section):
    url: str = ""


class RedisConfig(_Section):
    url: str = ""
    dialog_ttl_s: int = Field(1800, ge=10)
    dedupe_ttl_s: int = Field(600, ge=10)


class ApiConfig(_Section):
    keys: list[str] = []
    # Browser origins (scheme://host[:port]) whose pages may call /api/*; a request with any
    # other Origin header is refused. Empty = no browser page may (server-side clients send
    # no Origin).
    allowed_origins: list[str] = []
    # Host headers /api/* answers, besides 127.0.0.1, localhost, ::1, server.host and the
    # address the request came in on (any port): the names the deployment is reached by.
    # ".example.org" also allows its subdomains; "*" turns the check off.
    allowed_hosts: list[str] = []

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        cleaned = []
        for entry in value:
            origin = entry.strip().rstrip("/").lower()
            if not _ORIGIN.match(origin):
                raise ValueError(f"'{entry}' is not an origin like https://web.example.org")
            cleaned.append(origin)
        return cleaned

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        cleaned = []
        for entry in value:
            host = entry.strip().lower().strip("[]").rstrip(".")
            if not host or any(c.isspace() or c in "/@?#" for c in host):
                raise ValueError(f"'{entry}' is not a host name (no scheme, path or port)")
            cleaned.append(host)
        return cleaned


_ORIGIN = re.compile(r"^https?://[^/\s?#@]+$")


class CatalogueConfig(_Section):
    file: str = "data/catalogue.csv"


class GridsConfig(_Section):
    file: str = "data/demo/grids.geojson"
    gazetteer: str = "data/demo/gazetteer.csv"


class NlpConfig(_Section):
    model_dir: str = "var/models"
    seed_corpus: str = "data/seed_corpus"
    max_text_chars: int = Field(2000, ge=50)
    confidence_threshold: float = Field(-1.0, ge=-1.0, le=1.0)


class TriageConfig(_Section):
    """Scope before item (nlp.triage): where the labelled real messages' texts are, and
    which department a non-grid topic goes to."""
    # board_messages.csv + dev_raw.csv; missing → the default model is trained seed-only.
    real_data: str = "../shared/data/tipdm"
    departments: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_DEPARTMENTS))


class CasesConfig(_Section):
    number_prefix: str = Field("", max_length=8, pattern=r"^[A-Z]*$")
    timezone: str = "Asia/Shanghai"
    duplicate_radius_m: float = Field(100.0, ge=0)  # 0 turns attaching duplicates off
    duplicate_window_h: float = Field(72.0, ge=0)
    # Above a street a case goes to a district department. An item whose own department is
    # a local body (a 居委会 or 街道办 is never above a street) goes to the department
    # `district_departments` names for its code, else to `district_default`.
    local_bodies: list[str] = ["社区居委会", "街道办事处"]
    district_default: str = "区城市管理和综合执法局"
    district_departments: dict[str, str] = {}

    def district_department(self, item_code: str, department: str) -> str:
        """Who handles an item at the district."""
        if department not in self.local_bodies:
            return department
        return self.district_departments.get(item_code, self.district_default)


class CalendarConfig(_Section):
    work_hours: list[str] = ["08:30-12:00", "14:00-17:30"]
    weekend: list[int] = [6, 7]
    # The national holidays and 调休 workdays from the chinese-calendar library; the two
    # lists below are local extras and overrides (a city's own day off, a changed 调休).
    national: bool = True
    holidays: list[str] = []
    workdays: list[str] = []

    @field_validator("work_hours")
    @classmethod
    def _hours(cls, value: list[str]) -> list[str]:
        for span in value:
            start, sep, end = span.partition("-")
            if not sep or not (_is_hhmm(start) and _is_hhmm(end)) or start >= end:
                raise ValueError(f"'{span}' is not a span like 08:30-12:00")
        return value

    @field_validator("weekend")
    @classmethod
    def _weekend(cls, value: list[int]) -> list[int]:
        if any(d < 1 or d > 7 for d in value):
            raise ValueError("weekdays are numbered 1 (Monday) to 7 (Sunday)")
        return value


def _is_hhmm(text: str) -> bool:
    hh, sep, mm = text.partition(":")
    return bool(sep) and hh.isdigit() and mm.isdigit() and int(hh) < 24 and int(mm) < 60


class TelegramConfig(_Section):
    token: str = ""  # empty = the Telegram channel is off
    secret_token: str = ""  # checked against X-Telegram-Bot-Api-Secret-Token
    base_url: str = "https://api.telegram.org/bot"
    base_file_url: str = "https://api.telegram.org/file/bot"


class WechatConfig(_Section):
    token: str = ""  # empty = the official-account channel is off
    app_id: str = ""
    app_secret: str = ""
    encoding_aes_key: str = ""  # empty = plaintext mode
    api_base_url: str = "https://api.weixin.qq.com/"
    status_template_id: str = ""  # template message for updates after the 48-hour window
    mp_app_id: str = ""  # mini-program
    mp_app_secret: str = ""
    mp_subscribe_template_id: str = ""
    session_secret: str = ""  # signs mini-program session tokens
    session_ttl_s: int = Field(7 * 24 * 3600, ge=60)
    # Mini-program photo uploads: caps per photo, quota per user and local day (counted in
    # Redis), and how often orphans (stored photos no case uses, over an hour old) are swept.
    mp_photo_max_bytes: int = Field(10_485_760, ge=1024)
    mp_photo_max_pixels: int = Field(50_000_000, ge=1)
    mp_photos_per_day: int = Field(60, ge=0)
    mp_photo_bytes_per_day: int = Field(67_108_864, ge=0)
    mp_media_sweep_interval_s: int = Field(600, ge=0)  # 0 = only `gridbot media sweep`
    # Open cases of the same kind this close to a report are shown before it is filed.
    mp_nearby_radius_m: float = Field(300.0, ge=0)


class WecomConfig(_Section):
    corp_id: str = ""  # empty = the WeCom channel is off
    agent_id: str = ""
    secret: str = ""
    token: str = ""
    encoding_aes_key: str = ""
    api_base_url: str = "https://qyapi.weixin.qq.com/"
    webhook_base_url: str = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"


class AlertsConfig(_Section):
    """Area alerts (「关注 东华里」): the daily note's reach and hour (local time)."""

    radius_m: float = Field(500.0, gt=0, le=5000)
    hour: int = Field(18, ge=0, le=23)
    max_per_person: int = Field(5, ge=1, le=50)


class LimitsConfig(_Section):
    """Inbound rate limits, counted in Redis so they hold across server processes."""
    per_user_per_minute: int = Field(60, ge=1)  # chat turns and API posts of one user
    per_ip_per_minute: int = Field(1200, ge=1)  # /api/* requests of one client address
    # Trusted front ends on this machine (the load benchmark, a local web back end).
    exempt_ips: list[str] = ["127.0.0.1", "::1"]


class ConsoleConfig(_Section):
    session_ttl_s: int = Field(28800, ge=60)  # a staff session ends after this long idle
    secure_cookies: bool = False  # set true behind HTTPS: the cookie is then never sent plain
    login_attempts: int = Field(10, ge=1)  # per account, per 15 minutes
    login_attempts_per_ip: int = Field(30, ge=1)  # per client address, per 15 minutes
    login_hash_workers: int = Field(2, ge=1, le=16)  # password checks at once (threads)
    login_queue: int = Field(8, ge=0)  # checks allowed to wait; beyond that: "too many"
    map_tiles: str = ""  # URL template for map tiles; empty = draw the grid GeoJSON only
    # argon2id cost of new password hashes (argon2-cffi's RFC 9106 low-memory profile by
    # default). Lower only where hashing speed matters more than guessing cost: the test
    # suite sets 1 / 8 / 1. A login with a hash of other parameters rehashes it.
    password_time_cost: int = Field(3, ge=1)  # passes over the memory
    password_parallelism: int = Field(4, ge=1, le=16)  # lanes (threads) per hash
    password_memory_kib: int = Field(65536, ge=8)  # memory per hash, KiB

    @field_validator("password_memory_kib")
    @classmethod
    def _memory_for_lanes(cls, value: int, info: ValidationInfo) -> int:
        lanes = info.data.get("password_parallelism", 1)
        if value < 8 * lanes:  # argon2 needs 8 KiB per lane
            raise ValueError(f"at least 8 KiB per lane (password_parallelism {lanes})")
        return value


class MediaConfig(_Section):
    """Where photos are kept: the local folder var/media (one server; `gridbot backup`
    archives it) or an S3-compatible bucket shared by several servers."""
    store: str = Field("local", pattern="^(local|s3)$")
    local_dir: str = "var/media"  # the local folder (with s3: the local copies)
    s3_endpoint_url: str = ""  # empty = AWS; MinIO or another S3-compatible server's URL
    s3_bucket: str = ""
    s3_prefix: str = ""
    s3_region: str = ""
    s3_access_key: str = ""
    s3_secret_key: str = ""
    # A citizen's short video (Telegram, WeChat). Telegram bots download at most 20 MB.
    video_max_bytes: int = Field(20 * 1024 * 1024, ge=1)


APPRAISAL_PARTS = ("discovery", "on_spot", "on_time", "closure", "satisfaction", "urges",
                   "coverage")


class AppraisalConfig(_Section):
    """考核: the weight of each part of the monthly score (bot/appraisal.py says how each
    part is scored 0–100). Weights are non-negative and need not sum to 1: they are divided
    by their sum; at least one must be above 0."""

    discovery: float = Field(0.15, ge=0)  # patrol reports per worker-day
    on_spot: float = Field(0.15, ge=0)  # share of cases handled on the spot (即办)
    on_time: float = Field(0.20, ge=0)  # on-time rate
    closure: float = Field(0.15, ge=0)  # closure rate
    satisfaction: float = Field(0.15, ge=0)  # first-rating satisfaction
    urges: float = Field(0.10, ge=0)  # 督办 per case (fewer is better)
    coverage: float = Field(0.10, ge=0)  # share of the grid a patrol covers
    discovery_target: float = Field(1.0, gt=0)  # patrol reports per worker-day = full marks
    on_spot_target: float = Field(0.3, gt=0, le=1)  # 即办 share = full marks (Chancheng: 30%)

    @model_validator(mode="after")
    def _some_weight(self) -> AppraisalConfig:
        if sum(getattr(self, part) for part in APPRAISAL_PARTS) <= 0:
            raise ValueError("at least one appraisal weight must be above 0")
        return self

    def weights(self) -> dict[str, float]:
        """The weights scaled to sum to 1."""
        total = sum(getattr(self, part) for part in APPRAISAL_PARTS)
        return {part: getattr(self, part) / total for part in APPRAISAL_PARTS}


class SmsConfig(_Section):
    """Case updates by SMS to hotline callers who gave a mobile number and agreed
    (adapters/sms). Off while provider or sdk_app_id is empty. Providers send only approved
    templates: one template id per kind of update, its parameters in the order noted in
    config.toml."""
    provider: str = Field("", pattern="^(|tencent)$")
    sdk_app_id: str = ""  # Tencent Cloud SMS SdkAppId (1400…)
    sign_name: str = ""  # the approved signature (短信签名), without 【】
    region: str = "ap-guangzhou"
    endpoint: str = "sms.tencentcloudapi.com"
    scheme: str = Field("https", pattern="^https?$")
    secret_id: str = ""  # GRIDBOT_SMS_SECRET_ID in the environment
    secret_key: str = ""  # GRIDBOT_SMS_SECRET_KEY in the environment
    param_max_chars: int = Field(20, ge=1, le=100)  # a template variable is cut to this
    timeout_s: int = Field(10, ge=1, le=60)
    template_status: str = ""  # {1} case number, {2} new status (also the fallback)
    template_handled: str = ""  # {1} case number, {2} the handler's result note
    template_back: str = ""  # {1} case number, {2} why the check failed
    template_escalated: str = ""  # {1} number, {2} level, {3} who now holds it, {4} deadline
    template_closed: str = ""  # {1} case number
    template_merged: str = ""  # {1} case number, {2} the case it joined


class PatrolConfig(_Section):
    """Grid workers' patrols: which of their reports are looked at again (核实) before they
    are filed, and how their duty lists are checked."""

    # A patrol report of an item handled at one of these levels (grid / street / district),
    # or whose code or big class is listed, waits for 核实 by the grid leader or the street
    # before it is filed. Empty = patrol reports are filed at once.
    verify_levels: list[str] = []
    verify_items: list[str] = []
    # Working hours a report may wait unverified before the verifiers are urged (督办), and
    # again after each reminder.
    verify_within_wh: int = Field(2, ge=1, le=80)
    # A planned place (duty list) is ticked when a patrol's track passes this close.
    place_reach_m: float = Field(50.0, gt=0, le=1000)

    @field_validator("verify_levels")
    @classmethod
    def _levels(cls, value: list[str]) -> list[str]:
        for level in value:
            if level not in ("grid", "street", "district"):
                raise ValueError(f"'{level}' is not a level (grid, street or district)")
        return value


class Config(_Section):
    server: ServerConfig = ServerConfig()
    database: DatabaseConfig = DatabaseConfig()
    redis: RedisConfig = RedisConfig()
    api: ApiConfig = ApiConfig()
    catalogue: CatalogueConfig = CatalogueConfig()
    grids: GridsConfig = GridsConfig()
    nlp: NlpConfig = NlpConfig()
    triage: TriageConfig = TriageConfig()
    cases: CasesConfig = CasesConfig()
    calendar: CalendarConfig = CalendarConfig()
    telegram: TelegramConfig = TelegramConfig()
    wechat: WechatConfig = WechatConfig()
    wecom: WecomConfig = WecomConfig()
    console: ConsoleConfig = ConsoleConfig()
    limits: LimitsConfig = LimitsConfig()
    alerts: AlertsConfig = AlertsConfig()
    media: MediaConfig = MediaConfig()
    appraisal: AppraisalConfig = AppraisalConfig()
    sms: SmsConfig = SmsConfig()
    patrol: PatrolConfig = PatrolConfig()
    # Where relative paths in this config are resolved from (the config file's folder).
    base_dir: Path = PROJECT_ROOT
    source_file: Path | None = None

    def path(self, value: str) -> Path:
        """Resolve a configured path against the config file's folder."""
        p = Path(value)
        return p if p.is_absolute() else self.base_dir / p

    @property
    def database_url(self) -> str:
        if self.database.url:
            return self.database.url
        return f"sqlite+aiosqlite:///{self.path('var/gridbot.db')}"


def _coerce_env(raw: str, annotation: Any) -> Any:
    """Environment values are strings; lists are comma-separated."""
    origin = getattr(annotation, "__origin__", None)
    if origin is list:
        return [part.strip() for part in raw.split(",") if part.strip()]
    return raw  # pydantic converts "8080" → 8080 and names the key if it cannot


def _apply_env(data: dict[str, Any], environ: dict[str, str]) -> None:
    sections = {name: field.annotation for name, field in Config.model_fields.items()}
    for var, raw in environ.items():
        if not var.startswith(ENV_PREFIX):
            continue
        rest = var[len(ENV_PREFIX):].lower()
        section = next((s for s in sections if rest.startswith(s + "_")), None)
        if section is None or section == "base_dir":
            continue  # GRIDBOT_CONFIG, GRIDBOT_TEST_* and the like are not settings
        key = rest[len(section) + 1:]
        fields = sections[section].model_fields  # type: ignore[union-attr]
        if key not in fields:
            raise ConfigError(f"{var}: no setting '{section}.{key}'")
        data.setdefault(section, {})[key] = _coerce_env(raw, fields[key].annotation)


def load_config(path: Path | str | None = None, environ: dict[str, str] | None = None) -> Config:
    """Read the TOML file (default: $GRIDBOT_CONFIG or ./config.toml) plus env overrides."""
    environ = dict(os.environ if environ is None else environ)
    if path is None:
        path = environ.get("GRIDBOT_CONFIG") or PROJECT_ROOT / "config.toml"
    path = Path(path)
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    environ.pop("GRIDBOT_CONFIG", None)
    _apply_env(data, environ)
    data["base_dir"] = path.resolve().parent
    data["source_file"] = path.resolve()
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{path}: bad setting '{key}': {first['msg']}") from exc


@functools.lru_cache(maxsize=256)
def is_loopback(address: str | None) -> bool:
    """Cached: every API request asks about its client's address, and clients are few."""
    try:
        return address is not None and ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def check_exposure(config: Config, host: str | None = None) -> None:
    """Refuse to serve the API beyond this machine without keys, or share state
    between workers through process memory."""
    host = host or config.server.host
    if not config.api.keys and not is_loopback(host) and host != "localhost":
        raise ConfigError(
            f"serving on {host} without api.keys would open the API to anyone; "
            "set GRIDBOT_API_KEYS or serve on 127.0.0.1"
        )
    if config.server.workers > 1 and not config.redis.url:
        raise ConfigError("server.workers > 1 needs redis.url: the embedded store is per process")
    if config.server.workers > 1 and config.database_url.startswith("sqlite"):
        raise ConfigError("server.workers > 1 needs PostgreSQL (database.url): on SQLite one "
                          "process runs the timers and the outbox")
