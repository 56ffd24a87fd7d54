"""``kimi-lsp doctor``: is everything in place, and if not, what to do about it.

Each check is a function returning a ``Check``; the report lists the effective settings with
where each came from (the key only as set / not set), then the checks. The exit code is 0
only when every *required* check passes.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO

import httpx

from kimi_lsp import __version__
from kimi_lsp.config import API_KEY_ENV, LoadedSettings, load_settings
from kimi_lsp.logs import log_path


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    required: bool = True
    fix: str = ""
    data: dict[str, Any] = field(default_factory=dict)


def check_key(loaded: LoadedSettings) -> Check:
    if loaded.settings.has_api_key:
        return Check("api key", True, f"set (from {loaded.sources['api_key']})")
    return Check(
        "api key",
        False,
        "not set",
        fix=(
            "export MOONSHOT_API_KEY=sk-... (create a key at platform.kimi.ai, or "
            "platform.kimi.com for api.moonshot.cn); editors may pass it as apiKey in "
            f"initializationOptions. Also accepted: {', '.join(API_KEY_ENV[1:] + API_KEY_ENV[:1])}"
        ),
    )


def check_state_dir(loaded: LoadedSettings) -> Check:
    state = loaded.settings.state_dir
    try:
        state.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=state, prefix=".doctor-"):
            pass
    except OSError as exc:
        return Check(
            "state dir",
            False,
            f"{state} is not writable: {exc.strerror or exc}",
            fix="set KIMI_LSP_STATE_DIR to a writable folder",
        )
    return Check("state dir", True, f"{state} (log: {log_path(state)})")


def check_settings(loaded: LoadedSettings) -> Check:
    if not loaded.problems:
        return Check("settings", True, "all values valid")
    return Check(
        "settings",
        False,
        "; ".join(loaded.problems),
        required=False,
        fix="correct the values named above (defaults are used meanwhile)",
    )


def check_api(loaded: LoadedSettings, *, timeout: float = 5.0) -> Check:
    """Does the base URL answer ``GET /models`` with this key?"""
    s = loaded.settings
    url = f"{s.base_url}/models"
    if not s.has_api_key:
        return Check("api", False, f"{url} not tried: no key", fix="set the key first")
    assert s.api_key is not None
    headers = {"Authorization": f"Bearer {s.api_key.get_secret_value()}"}
    try:
        resp = httpx.get(url, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        return Check(
            "api",
            False,
            f"{url} did not answer: {type(exc).__name__}: {exc}",
            fix="check the network, a proxy (HTTPS_PROXY) or KIMI_LSP_BASE_URL",
        )
    if resp.status_code in (401, 403):
        return Check(
            "api",
            False,
            f"{url} refused the key (HTTP {resp.status_code})",
            fix=(
                "keys from platform.kimi.ai work only with api.moonshot.ai, keys from "
                "platform.kimi.com only with api.moonshot.cn"
            ),
        )
    if resp.status_code != 200:
        return Check("api", False, f"{url} answered HTTP {resp.status_code}")
    try:
        models = [m["id"] for m in resp.json().get("data", [])]
    except (ValueError, KeyError, TypeError, AttributeError):
        return Check("api", False, f"{url} answered, but not with a model list")
    ok_model = s.model in models
    detail = f"{url} answers; {len(models)} models: {', '.join(models[:8])}"
    if not ok_model:
        detail += f" — the configured model {s.model!r} is not among them"
    return Check(
        "api",
        ok_model,
        detail,
        fix="" if ok_model else "set KIMI_LSP_MODEL to one of the models listed",
        data={"models": models},
    )


def check_account(loaded: LoadedSettings) -> Check:
    """Balance and the configured model's contract, through the Kimi client (optional)."""
    import asyncio

    from kimi_lsp.llm import CACHE_FILE, KimiClient, KimiError

    s = loaded.settings
    if not s.has_api_key or s.api_key is None:
        return Check("account", False, "not tried: no key", required=False)
    key = s.api_key.get_secret_value()

    async def fetch() -> Check:
        async with KimiClient(
            s.base_url, key, model_table_path=s.state_dir / CACHE_FILE, timeout=5, max_retries=1
        ) as client:
            try:
                specs = {m.id: m for m in await client.list_models()}
                money = await client.balance()
            except KimiError as exc:
                return Check("account", False, str(exc), required=False)
        spec = specs.get(s.model)
        model = (
            f"{s.model}: context {spec.context_length:,}, "
            f"{'thinks' if spec.thinks else 'no reasoning'}"
            if spec
            else f"{s.model}: not listed"
        )
        detail = (
            f"balance {money.available:.2f} {money.currency} available (voucher "
            f"{money.voucher:.2f}, cash {money.cash:.2f}); {len(specs)} models; {model}"
        )
        ok = money.available > 0
        fix = "" if ok else "recharge the account: requests fail while the balance is <= 0"
        data = {"balance": money.available, "currency": money.currency, "models": list(specs)}
        return Check("account", ok, detail, required=False, fix=fix, data=data)

    return asyncio.run(fetch())


def check_quota(loaded: LoadedSettings) -> Check:
    """The limits admission plans with, each with its source (the tier table, your setting,
    or what Kimi stated in a 429), and the tier to set when what Kimi stated fits one."""
    from kimi_lsp.actions.factory import open_governor
    from kimi_lsp.quota.report import limits_with_sources, tier_advice

    try:
        snap = open_governor(loaded.settings).snapshot()
    except Exception as exc:  # the other checks still tell what is wrong
        return Check("quota", False, f"could not read the quota store: {exc}", required=False)
    advice = tier_advice(snap)
    detail = "; ".join(limits_with_sources(snap))
    if snap["fallback"]:
        detail += f" — {snap['fallback']}"
    data = {k: snap[k] for k in ("limits", "sources", "learned", "matchingTiers", "tier")}
    return Check("quota", not advice, detail, required=False, fix=advice, data=data)


CHECKS: list[Callable[[LoadedSettings], Check]] = [
    check_settings,
    check_state_dir,
    check_key,
    check_api,
    check_account,
    check_quota,
]


def run_doctor(*, json_output: bool = False, out: TextIO = sys.stdout) -> int:
    loaded = load_settings(os.environ)
    checks = [check(loaded) for check in CHECKS]
    healthy = all(c.ok for c in checks if c.required)
    settings = loaded.report()
    if json_output:
        report = {
            "version": __version__,
            "python": sys.version.split()[0],
            "ok": healthy,
            "settings": settings,
            "checks": [asdict(c) for c in checks],
        }
        json.dump(report, out, indent=2)
        out.write("\n")
        return 0 if healthy else 1
    out.write(f"kimi-lsp {__version__} (Python {sys.version.split()[0]})\n\nSettings:\n")
    width = max(len(n) for n in settings)
    for name, entry in settings.items():
        out.write(f"  {name.ljust(width)}  {entry['value']}  [{entry['source']}]\n")
    out.write("\nChecks:\n")
    for c in checks:
        mark = "ok  " if c.ok else ("FAIL" if c.required else "warn")
        out.write(f"  [{mark}] {c.name}: {c.detail}\n")
        if not c.ok and c.fix:
            out.write(f"         fix: {c.fix}\n")
    out.write(
        "\n" + ("Everything needed is in place.\n" if healthy else "Not ready: see FAIL above.\n")
    )
    return 0 if healthy else 1
