"""`gridbot chat`: a terminal client of the HTTP chat API (interactive or piped stdin)."""

from __future__ import annotations

import re
import sys
from typing import Any, TextIO

import httpx

from bot.texts import t

_LOC = re.compile(r"^/loc\s+(-?\d+(?:\.\d+)?)\s*[,，\s]\s*(-?\d+(?:\.\d+)?)(?:\s+(wgs84|gcj02))?$")


def parse_line(line: str, user: str) -> dict[str, Any]:
    """A typed line → the API request body; `/loc lat,lon [gcj02]` sends a location."""
    match = _LOC.match(line.strip())
    if match:
        lat, lon, coord = float(match[1]), float(match[2]), match[3] or "wgs84"
        return {"user": user, "location": {"lat": lat, "lon": lon, "coord": coord}}
    if line.strip().startswith("/photo "):
        return {"user": user, "media": [line.strip()[7:].strip()]}
    return {"user": user, "text": line}


def run_chat(url: str, user: str, api_key: str, stdin: TextIO = sys.stdin,
             stdout: TextIO = sys.stdout) -> int:
    interactive = stdin.isatty()
    headers = {"X-API-Key": api_key} if api_key else {}
    if interactive:
        print(t("chat.connected", url=url), file=stdout)
    with httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=30) as client:
        while True:
            if interactive:
                print(t("chat.you", text=""), end="", file=stdout, flush=True)
            line = stdin.readline()
            if not line:
                return 0
            line = line.rstrip("\n")
            if not line.strip():
                continue
            if not interactive:
                print(t("chat.you", text=line), file=stdout)
            try:
                response = client.post("/api/v1/messages", json=parse_line(line, user))
            except httpx.HTTPError as exc:
                print(t("chat.unreachable", url=url, error=exc), file=stdout)
                return 1
            body = response.json()
            if response.status_code != 200:
                print(f"[{response.status_code}] {body.get('error')}", file=stdout)
                continue
            for reply in body["replies"]:
                print(t("chat.bot", text=reply["text"]), file=stdout)
            stdout.flush()
