"""The WeChat mini-program's own tests, run inside the suite (node and the packages from
miniprogram/package-lock.json, which `./run test` installs with npm ci):

- the jest unit tests (jsdom, miniprogram-simulate, wx.* stubbed): one pytest test per jest
  test file, from one jest run with --json; a failure lists the jest tests that failed, and
  the jest totals are printed at the end of the session (conftest.py);
- the end-to-end test: the mini-program's request layer, in node with wx.request and
  wx.uploadFile over real HTTP, against a real `gridbot serve` on loopback whose
  code2session (and subscribe messages) the fake WeChat API answers; staff move the case
  through the console's HTTP API.

Missing node or node_modules fails these tests: they never skip.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.config import PROJECT_ROOT
from bot.coords import wgs84_to_gcj02
from tests.fixtures.suite_totals import JEST_TOTALS
from tests.fixtures.wechat.fake_api import JPEG, FakeWeChat
from tests.gridbot_cli import gridbot as cli

MP = PROJECT_ROOT / "miniprogram"
UNIT_FILES = sorted(p.relative_to(MP).as_posix() for p in (MP / "tests").glob("*.test.js"))
GRID = "440604001030103"  # 同济社区第3网格: where the pin is
PIN = wgs84_to_gcj02(23.0215, 113.1214)  # as wx.chooseLocation gives it
STAFF_PASSWORD = "e2e-leader-password-2026"
WECOM = {"CORP_ID": "ww5f3c2a1b0e9d8c7b", "TOKEN": "e2e-wecom-token",
         "AES_KEY": base64.b64encode(b"gridbot-e2e-wecom-aes-key-32by!!").decode().rstrip("="),
         "USER": "e2e-wecom-worker"}


def _jest() -> list[str]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed: the mini-program's tests need Node 20")
    jest = MP / "node_modules" / "jest" / "bin" / "jest.js"
    if not jest.exists():
        pytest.fail("miniprogram/node_modules is missing: `./run test` installs it "
                    "(or: cd miniprogram && npm ci)")
    return [node, str(jest), "--ci", "--json"]


def _run_jest(project: str, out: Path, env: dict[str, str] | None = None,
              timeout: int = 600) -> tuple[dict[str, Any], str]:
    proc = subprocess.run([*_jest(), "--selectProjects", project, f"--outputFile={out}"],
                          cwd=MP, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "TZ": "Asia/Shanghai", **(env or {})})
    if not out.exists():
        pytest.fail(f"jest wrote no results (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(out.read_text(encoding="utf-8")), proc.stderr


def _failures(result: dict[str, Any]) -> list[str]:
    failed = []
    for a in result["assertionResults"]:
        if a["status"] != "passed":
            message = (a.get("failureMessages") or [""])[0].strip().splitlines()
            shown = [line for line in message if not line.strip().startswith("at ")][:14]
            failed.append(f"{' › '.join([*a['ancestorTitles'], a['title']])} [{a['status']}]:\n"
                          + "\n".join(shown))
    return failed


@pytest.fixture(scope="module")
def jest_unit(tmp_path_factory: pytest.TempPathFactory,
              pytestconfig: pytest.Config) -> dict[str, Any]:
    """One jest run of every unit test file."""
    started = time.monotonic()
    report, _ = _run_jest("unit", tmp_path_factory.mktemp("jest") / "unit.json")
    pytestconfig.stash[JEST_TOTALS] = (report["numPassedTests"], report["numFailedTests"],
                                       report["numPendingTests"], time.monotonic() - started)
    return report


def test_the_jest_test_files_are_found() -> None:
    # Every page and component has its file (an empty list would leave nothing to run).
    assert {"tests/report.test.js", "tests/mine.test.js", "tests/case.test.js",
            "tests/components.test.js", "tests/api.test.js", "tests/check.test.js"} \
        <= set(UNIT_FILES)


@pytest.mark.parametrize("test_file", UNIT_FILES)
def test_jest(jest_unit: dict[str, Any], test_file: str) -> None:
    results = {Path(r["name"]).relative_to(MP).as_posix(): r for r in jest_unit["testResults"]}
    assert test_file in results, f"jest did not run {test_file}"
    result = results[test_file]
    failed = _failures(result)
    assert result["status"] == "passed" and not failed, \
        "\n".join(failed) or result.get("message", "")[-3000:]
    assert any(a["status"] == "passed" for a in result["assertionResults"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(base: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    with httpx.Client(timeout=1) as http:  # one client: each builds an SSL context
        while time.monotonic() < deadline:
            if server.poll() is not None:
                pytest.fail("gridbot serve ended:\n" + log.read_text(errors="replace")[-4000:])
            try:
                if http.get(f"{base}/healthz").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
    pytest.fail("gridbot serve did not start:\n" + log.read_text(errors="replace")[-4000:])


def test_end_to_end_against_gridbot_serve(tmp_path: Path, model_dir: Path) -> None:
    from tests.conftest import make_config

    gridbot = str(Path(sys.executable).parent / "gridbot")
    fake = FakeWeChat().start()
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ,
           "GRIDBOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/e2e.db",
           "GRIDBOT_REDIS_URL": "",
           "GRIDBOT_NLP_MODEL_DIR": str(make_config(tmp_path, model_dir).nlp.model_dir),
           "GRIDBOT_WECHAT_MP_APP_ID": "wxmp0123456789ab",
           "GRIDBOT_WECHAT_MP_APP_SECRET": "mp-secret",
           "GRIDBOT_WECHAT_SESSION_SECRET": "e2e-session-secret",
           "GRIDBOT_WECHAT_MP_SUBSCRIBE_TEMPLATE_ID": "SUB-status",
           "GRIDBOT_WECHAT_API_BASE_URL": fake.base_url,
           "GRIDBOT_WECHAT_MP_MEDIA_SWEEP_INTERVAL_S": "0",
           # The grid worker's WeCom app (its API is the same fake: token, media download).
           "GRIDBOT_WECOM_CORP_ID": WECOM["CORP_ID"], "GRIDBOT_WECOM_SECRET": "wecom-secret",
           "GRIDBOT_WECOM_AGENT_ID": "1000002", "GRIDBOT_WECOM_TOKEN": WECOM["TOKEN"],
           "GRIDBOT_WECOM_ENCODING_AES_KEY": WECOM["AES_KEY"],
           "GRIDBOT_WECOM_API_BASE_URL": fake.base_url}
    folders = [PROJECT_ROOT / "var" / "media" / name for name in ("mp", "wecom")]
    before = {path for folder in folders if folder.exists() for path in folder.glob("*")}
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen([gridbot, "serve", "--port", str(port)], env=env,
                                  cwd=PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_healthy(base, server, log)
        # The grid leader handles the case; a supervisor checks it (not its handler).
        # Staff set-up through the CLI, in this process (tests/gridbot_cli.py): the server
        # is the process under test here, the commands only write the shared database.
        for user, *role in (("e2e-leader", "grid_leader", "--scope", f"grid:{GRID}"),
                            ("e2e-checker", "supervisor")):
            added = cli("users", "add", user, "--role", *role, "--password-stdin",
                        input=STAFF_PASSWORD + "\n", env=env)
            assert added.returncode == 0, added.stdout + added.stderr
        worker = cli("workers", "add", "王网格员", "--role", "grid_worker", "--scope",
                     f"grid:{GRID}", "--channel", "wecom", "--id", WECOM["USER"], env=env)
        assert worker.returncode == 0, worker.stdout + worker.stderr
        # The same worker's one-time code for the mini-program's worker mode.
        worker_id = re.search(r"worker (\d+):", worker.stdout)
        assert worker_id, worker.stdout
        coded = cli("wechat", "worker-code", worker_id.group(1), env=env)
        assert coded.returncode == 0 and re.fullmatch(r"[0-9A-F]{8}\n", coded.stdout), coded
        photo = tmp_path / "photo.jpg"
        photo.write_bytes(JPEG)
        report, stderr = _run_jest("e2e", tmp_path / "e2e.json", env={
            "GRIDBOT_E2E_URL": base, "GRIDBOT_E2E_PHOTO": str(photo),
            "GRIDBOT_E2E_LAT": str(PIN[0]), "GRIDBOT_E2E_LON": str(PIN[1]),
            "GRIDBOT_E2E_STAFF_USER": "e2e-leader", "GRIDBOT_E2E_CHECKER_USER": "e2e-checker",
            "GRIDBOT_E2E_STAFF_PASSWORD": STAFF_PASSWORD,
            "GRIDBOT_E2E_WORKER_CODE": coded.stdout.strip(),
            **{f"GRIDBOT_E2E_WECOM_{k}": v for k, v in WECOM.items()}}, timeout=300)
        [result] = report["testResults"]
        failed = _failures(result)
        assert report["numPassedTests"] == 2 and not failed, \
            "\n".join(failed) or result.get("message", "")[-3000:] or stderr[-3000:]

        # What the server holds afterwards: the citizen's case, closed and rated 5, and the
        # worker's patrol find, handled on the spot.
        listed = cli("cases", "list", "--json", env=env)
        patrol, case = json.loads(listed.stdout)  # newest first
        assert patrol["status"] == "handled" and patrol["grid"]["code"] == GRID, patrol
        assert case["status"] == "closed" and case["rating"] == 5, case
        assert case["grid"]["code"] == GRID
        # The status change also went out as a subscribe message (one grant, one message).
        deadline = time.monotonic() + 15
        while not fake.sent("/cgi-bin/message/subscribe/send") and time.monotonic() < deadline:
            time.sleep(0.2)
        [push] = fake.sent("/cgi-bin/message/subscribe/send")
        assert push.body["touser"] == "mp-e2e-citizen"
        assert push.body["data"]["character_string1"]["value"] == case["number"]
        assert push.body["page"] == f"pages/case/index?number={case['number']}"
        assert fake.sent("/sns/jscode2session")
        # The after-photo came from WeCom's media API (then kept: the links read the store).
        assert {c.query["media_id"] for c in fake.sent("/cgi-bin/media/get")} == {"AFTER-PHOTO-1"}
    finally:
        server.terminate()
        server.wait(timeout=30)
        fake.stop()
        for folder in folders:  # the photos this run stored under the project's var/
            for path in (set(folder.glob("*")) if folder.exists() else set()) - before:
                path.unlink(missing_ok=True)
