"""`gridbot doctor`: check a deployment and say what is wrong in plain words (中文 and English).

Each check gives ok / warn / fail with a sentence in both languages; any fail makes the
command exit non-zero. Nothing is changed: the media check writes and removes one probe file.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import os
import re
import uuid
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Literal

from bot.config import Config, ConfigError, load_config

Status = Literal["ok", "warn", "fail"]
MEDIA_DIR = "var/media"
TIMEOUT_S = 5.0

TELEGRAM_TOKEN = re.compile(r"^\d{5,12}:[A-Za-z0-9_-]{30,64}$")
TELEGRAM_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")  # what setWebhook accepts
WECHAT_APP_ID = re.compile(r"^wx[0-9a-f]{16}$")
WECOM_CORP_ID = re.compile(r"^w[wx][0-9a-zA-Z]{16}$")
HEX32 = re.compile(r"^[0-9a-f]{32}$")
CALLBACK_TOKEN = re.compile(r"^[A-Za-z0-9]{3,32}$")  # WeChat's rule for the server token


@dataclass
class Check:
    name: str
    status: Status
    zh: str
    en: str

    @property
    def ok(self) -> bool:
        return self.status != "fail"


def _ok(name: str, zh: str, en: str) -> Check:
    return Check(name, "ok", zh, en)


def _fail(name: str, zh: str, en: str) -> Check:
    return Check(name, "fail", zh, en)


def _warn(name: str, zh: str, en: str) -> Check:
    return Check(name, "warn", zh, en)


# -- configuration ----------------------------------------------------------------------------

def check_config(path: Path | None) -> tuple[Check, Config | None]:
    try:
        config = load_config(path)
    except ConfigError as exc:
        return _fail("config", f"配置文件有错误：{exc}", f"The configuration is invalid: {exc}"), \
            None
    where = config.source_file or "config.toml"
    return _ok("config", f"配置文件可以读取：{where}", f"Configuration loaded from {where}"), \
        config


def check_exposure(config: Config) -> Check:
    from bot.config import check_exposure as refuse

    try:
        refuse(config)
    except ConfigError as exc:
        return _fail("exposure", f"服务设置不安全：{exc}", f"Unsafe server settings: {exc}")
    weak = [k for k in config.api.keys if len(k) < 16]
    if weak:
        return _warn("exposure", f"有 {len(weak)} 个 API 密钥短于 16 个字符，容易被猜中。",
                     f"{len(weak)} API key(s) are shorter than 16 characters: easy to guess.")
    if config.api.keys:
        return _ok("exposure", f"已配置 {len(config.api.keys)} 个 API 密钥。",
                   f"{len(config.api.keys)} API key(s) configured.")
    return _ok("exposure", "未配置 API 密钥：接口只对本机开放。",
               "No API keys: the API serves this machine only.")


# -- services ---------------------------------------------------------------------------------

async def check_database(config: Config) -> list[Check]:
    from sqlalchemy import func, select, text
    from sqlalchemy.ext.asyncio import create_async_engine

    from bot.models import AreaRow
    from shell.ops.backup import current_revision, head_revision, known_revisions

    url = config.database_url
    shown = _without_password(url)
    if url.startswith("sqlite"):
        file = Path(url.split("///", 1)[-1])
        if not file.exists():  # connecting would create it: say so instead
            return [_warn("database", f"SQLite 数据库文件 {file} 还不存在：首次启动时会创建。",
                          f"The SQLite file {file} does not exist yet: the first start "
                          "creates it.")]
    engine = create_async_engine(url)
    try:
        async with asyncio.timeout(TIMEOUT_S), engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            revision = await current_revision(conn)
            head = head_revision(url)
            if revision is None:
                return [_warn("database", f"数据库 {shown} 可以连接，但还没有建表：首次启动或 "
                              "gridbot db upgrade 会建表。",
                              f"Database {shown} is reachable but empty: the first start or "
                              "`gridbot db upgrade` creates the tables.")]
            if revision not in known_revisions(url):
                return [_fail("database", f"数据库结构版本 {revision} 比本程序新：请使用更新版本"
                              "的 gridbot。", f"The database schema {revision} is newer than "
                              "this gridbot: run the newer release.")]
            checks = [_ok("database", f"数据库 {shown} 可以连接，结构版本 {revision}（最新）。",
                          f"Database {shown} reachable, schema at {revision} (head).")
                      if revision == head else
                      _warn("database", f"数据库结构版本是 {revision}，程序需要 {head}：下次启动"
                            "会自动升级，请先用 gridbot backup 备份。",
                            f"Database schema is at {revision}, this gridbot needs {head}: the "
                            "next start upgrades it; back up first (`gridbot backup`).")]
            if revision == head:
                areas = (await conn.execute(select(func.count()).select_from(AreaRow))).scalar()
                checks.append(_ok("grids", f"数据库中有 {areas} 个网格区域。",
                                  f"{areas} grid areas in the database.") if areas else
                              _warn("grids", "数据库中还没有网格：首次启动时会导入 "
                                    f"{config.grids.file}。", "No grids in the database yet: "
                                    f"the first start imports {config.grids.file}."))
            return checks
    except Exception as exc:  # whatever stops a connection is the finding
        return [_fail("database", f"无法连接数据库 {shown}：{_short(exc)}",
                      f"Cannot reach the database {shown}: {_short(exc)}")]
    finally:
        await engine.dispose()


async def check_redis(config: Config) -> Check:
    if not config.redis.url:
        if config.server.workers > 1:
            return _fail("redis", "多个服务进程需要 Redis（redis.url），"
                         "内置存储只在一个进程内有效。",
                         "Several server processes need Redis (redis.url): the embedded "
                         "store lives in one process.")
        return _ok("redis", "使用内置的 Redis 替代（只适合单进程）。",
                   "Using the embedded Redis stand-in (one process only).")
    import redis.asyncio as aioredis

    shown = _without_password(config.redis.url)
    client = aioredis.from_url(config.redis.url, socket_timeout=TIMEOUT_S,
                               socket_connect_timeout=TIMEOUT_S)
    try:
        await client.ping()
    except Exception as exc:
        return _fail("redis", f"无法连接 Redis {shown}：{_short(exc)}",
                     f"Cannot reach Redis {shown}: {_short(exc)}")
    finally:
        await client.aclose()
    return _ok("redis", f"Redis {shown} 可以连接。", f"Redis {shown} is reachable.")


# -- channels ---------------------------------------------------------------------------------

def _aes_key_ok(key: str) -> bool:
    if len(key) != 43 or not key.isalnum():
        return False
    try:
        return len(base64.b64decode(key + "=")) == 32
    except (binascii.Error, ValueError):
        return False


def check_channels(config: Config) -> list[Check]:
    checks: list[Check] = []
    tg = config.telegram
    if tg.token:
        problems = []
        if not TELEGRAM_TOKEN.match(tg.token):
            problems.append(("Telegram 令牌的格式不对（应为 数字:35位左右的字符）",
                             "the Telegram token does not look like 123456789:AA…"))
        if not tg.secret_token:
            problems.append(("没有设置 telegram.secret_token，任何人都能伪造更新",
                             "telegram.secret_token is empty: anyone could forge updates"))
        elif not TELEGRAM_SECRET.match(tg.secret_token):
            problems.append(("telegram.secret_token 只能包含字母、数字、_ 和 -",
                             "telegram.secret_token may hold only A-Z, a-z, 0-9, _ and -"))
        checks.append(_channel("telegram", "Telegram", problems))
    wx = config.wechat
    if wx.token:
        problems = []
        if not CALLBACK_TOKEN.match(wx.token):
            problems.append(("公众号 Token 应为 3–32 位字母或数字",
                             "the WeChat token must be 3–32 letters or digits"))
        if not WECHAT_APP_ID.match(wx.app_id):
            problems.append(("公众号 AppID 应为 wx 开头的 18 位", "the WeChat AppID must be "
                             "'wx' and 16 hex digits"))
        if not HEX32.match(wx.app_secret):
            problems.append(("公众号 AppSecret 应为 32 位十六进制", "the WeChat AppSecret must be "
                             "32 hex digits"))
        if wx.encoding_aes_key and not _aes_key_ok(wx.encoding_aes_key):
            problems.append(("EncodingAESKey 应为 43 位字母或数字",
                             "the EncodingAESKey must be 43 letters or digits"))
        checks.append(_channel("wechat", "微信公众号 / WeChat official account", problems))
        if not wx.encoding_aes_key:
            checks.append(_warn(
                "wechat_mode", "微信公众号使用明文模式，不安全：消息不加密，签名也不覆盖消息内容。"
                "应以安全模式为默认：请在公众号后台改为安全模式，并设置 "
                "GRIDBOT_WECHAT_ENCODING_AES_KEY（wechat.encoding_aes_key）。",
                "The WeChat official account runs in plaintext mode, which is unsafe: messages "
                "are not encrypted and the signature does not cover them. Safe mode should be "
                "the default: switch the account to safe mode (安全模式) and set "
                "GRIDBOT_WECHAT_ENCODING_AES_KEY (wechat.encoding_aes_key)."))
    if wx.mp_app_id:
        problems = []
        if not WECHAT_APP_ID.match(wx.mp_app_id):
            problems.append(("小程序 AppID 应为 wx 开头的 18 位", "the mini-program AppID must "
                             "be 'wx' and 16 hex digits"))
        if not HEX32.match(wx.mp_app_secret):
            problems.append(("小程序 AppSecret 应为 32 位十六进制", "the mini-program AppSecret "
                             "must be 32 hex digits"))
        if len(wx.session_secret) < 32:
            problems.append(("wechat.session_secret 至少要 32 个字符",
                             "wechat.session_secret must be at least 32 characters"))
        checks.append(_channel("wechat_mp", "微信小程序 / mini-program", problems))
    wc = config.wecom
    if wc.corp_id:
        problems = []
        if not WECOM_CORP_ID.match(wc.corp_id):
            problems.append(("企业微信 CorpID 应为 ww 开头的 18 位", "the WeCom CorpID must be "
                             "'ww' and 16 letters or digits"))
        if not wc.agent_id.isdigit():
            problems.append(("企业微信 AgentId 应为数字", "the WeCom AgentId must be a number"))
        if len(wc.secret) != 43:
            problems.append(("企业微信应用 Secret 应为 43 位", "the WeCom app secret must be "
                             "43 characters"))
        if not CALLBACK_TOKEN.match(wc.token):
            problems.append(("企业微信回调 Token 应为 3–32 位字母或数字",
                             "the WeCom callback token must be 3–32 letters or digits"))
        if not _aes_key_ok(wc.encoding_aes_key):
            problems.append(("企业微信 EncodingAESKey 应为 43 位字母或数字",
                             "the WeCom EncodingAESKey must be 43 letters or digits"))
        checks.append(_channel("wecom", "企业微信 / WeCom", problems))
    if not checks:
        checks.append(_ok("channels", "没有启用任何聊天渠道（只有 HTTP 接口）。",
                          "No chat channel is enabled (the HTTP API only)."))
    return checks


def _channel(name: str, label: str, problems: list[tuple[str, str]]) -> Check:
    if not problems:
        return _ok(name, f"{label}：凭据格式正确。", f"{label}: credentials are well-formed.")
    return _fail(name, f"{label}：" + "；".join(p[0] for p in problems) + "。",
                 f"{label}: " + "; ".join(p[1] for p in problems) + ".")


async def check_sms(config: Config) -> list[Check]:
    """SMS updates for hotline callers: when configured, the credentials are there, the
    provider answers (signed with them) and each configured template is approved there."""
    from adapters.sms import configured, make_provider
    from adapters.sms.templates import template_fields

    sms = config.sms
    if not configured(sms):
        return []
    problems = []
    if not sms.sdk_app_id.isdigit():
        problems.append(("短信 SdkAppId 应为数字（1400 开头）", "the SMS SdkAppId must be digits"))
    if not sms.sign_name:
        problems.append(("没有设置短信签名 sms.sign_name", "sms.sign_name is empty"))
    if not (sms.secret_id and sms.secret_key):
        problems.append(("没有设置 GRIDBOT_SMS_SECRET_ID / GRIDBOT_SMS_SECRET_KEY",
                         "GRIDBOT_SMS_SECRET_ID / GRIDBOT_SMS_SECRET_KEY are not set"))
    if not sms.template_status:
        problems.append(("没有设置通用进展模板 sms.template_status（其他模板缺失时都用它）",
                         "sms.template_status (the fallback of every update) is empty"))
    if problems:
        return [_channel("sms", "短信 / SMS", problems)]
    wanted = {name: getattr(sms, name) for name in template_fields() if getattr(sms, name)}
    try:
        provider = make_provider(sms)
    except ImportError:
        return [_fail("sms", "没有安装短信服务的 SDK：请运行 pip install 'gridbot[sms]'。",
                      "The SMS provider's SDK is not installed: pip install 'gridbot[sms]'.")]
    try:
        async with asyncio.timeout(TIMEOUT_S + sms.timeout_s):
            approved = await provider.approved(list(wanted.values()))
    except Exception as exc:  # unreachable, refused credentials: the finding either way
        return [_fail("sms", f"短信服务 {sms.endpoint} 无法使用：{_short(exc)}",
                      f"The SMS provider at {sms.endpoint} cannot be used: {_short(exc)}")]
    finally:
        await provider.close()
    missing = sorted(f"{name}={tid}" for name, tid in wanted.items() if tid not in approved)
    unset = sorted(name for name in template_fields() if name not in wanted)
    if missing:
        return [_fail("sms", f"短信模板未通过审核或不存在：{'、'.join(missing)}。",
                      f"SMS templates not approved or unknown: {', '.join(missing)}.")]
    if unset:
        return [_warn("sms", f"短信服务可用；这些进展没有专用模板，将用通用模板发送："
                      f"{'、'.join(unset)}。", "SMS works; these updates have no template of "
                      f"their own and go as the generic one: {', '.join(unset)}.")]
    return [_ok("sms", f"短信服务可用，{len(wanted)} 个模板均已审核通过。",
                f"SMS works; all {len(wanted)} templates are approved.")]


# -- files ------------------------------------------------------------------------------------

def check_model(config: Config) -> Check:
    from nlp.model_store import ModelHolder, ModelStore

    store = ModelStore(config.path(config.nlp.model_dir))
    version = store.current()
    if version is None:
        return _fail("model", f"{store.root} 中没有训练好的模型：请运行 gridbot train。",
                     f"No trained model in {store.root}: run `gridbot train`.")
    try:
        model = ModelHolder(store).get()
        model.rank("路灯不亮", k=1)
    except Exception as exc:
        return _fail("model", f"模型 {version} 无法加载：{_short(exc)}",
                     f"Model {version} cannot be loaded: {_short(exc)}")
    return _ok("model", f"分类模型 {version} 可以加载。", f"Model {version} loads and answers.")


def check_data_files(config: Config) -> Check:
    from bot.catalogue import load_catalogue
    from bot.grids import load_geojson

    try:
        items = len(load_catalogue(config.path(config.catalogue.file)).items)
        areas = len(load_geojson(config.path(config.grids.file)))
    except Exception as exc:
        return _fail("data", f"事项清单或网格文件无法读取：{_short(exc)}",
                     f"The catalogue or grid file cannot be read: {_short(exc)}")
    return _ok("data", f"事项清单 {items} 项，网格文件 {areas} 个区域。",
               f"Catalogue: {items} items; grid file: {areas} areas.")


def check_media(config: Config) -> Check:
    root = config.path(MEDIA_DIR)
    if not root.exists():  # created at the first photo: its nearest parent must allow it
        parent = next(p for p in root.parents if p.exists())
        if os.access(parent, os.W_OK | os.X_OK):
            return _ok("media", f"照片目录 {root} 尚未创建，收到第一张照片时会创建。",
                       f"The media folder {root} will be created with the first photo.")
        return _fail("media", f"无法创建照片目录 {root}：{parent} 不可写。",
                     f"The media folder {root} cannot be created: {parent} is not writable.")
    probe = root / f".doctor-{uuid.uuid4().hex}"
    try:
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        return _fail("media", f"照片目录 {root} 不可写：{exc.strerror or exc}",
                     f"The media folder {root} is not writable: {exc.strerror or exc}")
    return _ok("media", f"照片目录 {root} 可写。", f"The media folder {root} is writable.")


def check_calendar(config: Config, today: date | None = None) -> Check:
    """Deadlines count working days: a year whose holidays are unknown counts its holidays
    as working days. chinese-calendar learns a year once the State Council publishes it
    (usually in November): upgrade it then."""
    from bot.worktime import WorkCalendar, national_years

    calendar = WorkCalendar(config.calendar, config.cases.timezone)
    year = (today or date.today()).year
    if not config.calendar.national:
        return _ok("calendar", "节假日按配置文件 [calendar] 计算（未使用全国节假日库）。",
                   "Holidays come from [calendar] only (the national calendar is off).")
    missing = [y for y in (year, year + 1) if not calendar.knows(y)]
    if missing:
        shown = "、".join(str(y) for y in missing)
        return _warn("calendar",
                     f"节假日库 chinese-calendar 还不知道 {shown} 年的节假日和调休：这些日子会按"
                     "普通工作日计算期限。请升级该库，或在 [calendar] holidays/workdays 中补充。",
                     f"chinese-calendar does not know the holidays of "
                     f"{', '.join(map(str, missing))} yet: deadlines will count them as working "
                     "days. Upgrade it, or list the days in [calendar] holidays/workdays.")
    last = national_years()[1]
    return _ok("calendar", f"全国节假日和调休已知至 {last} 年。",
               f"National holidays and make-up days known up to {last}.")


# -- all --------------------------------------------------------------------------------------

async def run_checks(path: Path | None) -> list[Check]:
    first, config = check_config(path)
    if config is None:
        return [first]
    checks = [first, check_exposure(config)]
    checks += await check_database(config)
    checks.append(await check_redis(config))
    checks += check_channels(config)
    checks += await check_sms(config)
    checks.append(check_data_files(config))
    checks.append(check_calendar(config))
    checks.append(await asyncio.to_thread(check_model, config))
    checks.append(check_media(config))
    return checks


def as_dicts(checks: list[Check]) -> list[dict[str, str]]:
    return [asdict(c) for c in checks]


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def _without_password(url: str) -> str:
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)
