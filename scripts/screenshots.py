#!/usr/bin/env python3
"""Screenshots of a running demo for the README (X3).

Drives Debian's headless Chromium through the DevTools protocol (websocket-client; no Odoo
import): logs in to the backend as the manager and to the portal as the tenant, opens the
main screens and saves one PNG per screen under ``docs/screenshots/``.

    make demo                      # in one terminal: the demo on http://127.0.0.1:8069
    make screenshots               # in another: docs/screenshots/*.png (with --pay)
    python3 scripts/screenshots.py --url http://127.0.0.1:8281 --db prepaid_demo --only meters

``--pay`` also pays a recharge of 50 for the tenant's meter with Odoo's demo payment
provider and shows the credited result (it changes the demo's data, as the tour does).

Screens in another language (``--lang zh_CN``, or by itself when the demo's manager reads
another language, as in ``DEMO_LANG=zh_CN make demo``) go to ``docs/screenshots/<lang>/``,
next to the English ones, with the same names: the manager, the tenant and the visitor's
pages are shown in that language for the run (the users' language is set back after).

A screen is saved only once it is really there: the page has loaded, Odoo's web client says
it is ready (``odoo.isReady``), no request is in flight, nothing shows "Loading", the
screen's own content (rows of a list, cards of a kanban, a form sheet, pivot cells...) is on
the page and the page has stopped changing.  A screen that does not get there within the
timeout, a login page or an error dialog where the screen should be, is reported and the
script exits with status 1 (the other screens are still taken).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

try:
    import websocket  # websocket-client, in requirements.txt
except ImportError:  # pragma: no cover
    sys.exit("websocket-client is missing: pip install websocket-client (make demo installs it)")

ROOT = Path(__file__).resolve().parent.parent
#: requests running longer than this are long polls (bus) and do not keep a page "busy"
LONG_REQUEST_SECONDS = 10.0
#: no request in flight and no change of the page for this long: the page is settled
QUIET_SECONDS = 0.8
#: the window of screens shown as on a phone (tenants scan QR codes with one)
PHONE_SIZE = "390x844"


def shrink(path: Path):
    """Re-save a screenshot with a 256-colour palette (screens are mostly flat colours)."""
    try:
        from PIL import Image  # noqa: PLC0415 (optional: only for big screenshots)
    except ImportError:
        return
    with Image.open(path) as image:
        image.convert("RGB").quantize(256, dither=Image.Dither.NONE).save(path, optimize=True)


def parse_size(size: str) -> tuple[int, int]:
    width, height = size.lower().split("x")
    return int(width), int(height)


class ScreenshotError(RuntimeError):
    pass


# === DEVTOOLS PROTOCOL === #


class DevTools:
    """One websocket to the browser; pages are attached sessions (``flatten``)."""

    def __init__(self, ws_url: str):
        self.ws = websocket.create_connection(ws_url, timeout=30, suppress_origin=True)
        self.last_id = 0
        self.events: list[dict] = []

    def close(self):
        self.ws.close()

    def _receive(self, deadline: float) -> dict | None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        self.ws.settimeout(remaining)
        try:
            return json.loads(self.ws.recv())
        except websocket.WebSocketTimeoutException:
            return None

    def call(
        self,
        method: str,
        params: dict | None = None,
        session: str | None = None,
        timeout: float = 60.0,
    ) -> dict:
        self.last_id += 1
        message = {"id": self.last_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self.ws.send(json.dumps(message))
        deadline = time.monotonic() + timeout
        while True:
            data = self._receive(deadline)
            if data is None:
                raise ScreenshotError(f"DevTools: no answer to {method} in {timeout:.0f} s")
            if data.get("id") == self.last_id:
                if "error" in data:
                    raise ScreenshotError(f"DevTools {method}: {data['error'].get('message')}")
                return data.get("result", {})
            if "method" in data:
                self.events.append(data)

    def pump(self, seconds: float):
        """Collect the events arriving during ``seconds``."""
        deadline = time.monotonic() + seconds
        while (data := self._receive(deadline)) is not None:
            if "method" in data:
                self.events.append(data)

    def take_events(self, session: str) -> list[dict]:
        mine = [e for e in self.events if e.get("sessionId") == session]
        self.events = [e for e in self.events if e.get("sessionId") != session]
        return mine


class Browser:
    """Headless Chromium started for this run, in a throw-away profile."""

    def __init__(self, binary: str, width: int, height: int, lang: str = "en_US"):
        self.width, self.height = width, height
        self.profile = tempfile.mkdtemp(prefix="prepaid-screenshots-")
        self.process = subprocess.Popen(
            [
                binary,
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-extensions",
                "--no-first-run",
                "--no-default-browser-check",
                "--hide-scrollbars",
                "--mute-audio",
                "--force-device-scale-factor=1",
                f"--lang={lang.replace('_', '-')}",
                f"--window-size={width},{height}",
                f"--user-data-dir={self.profile}",
                "--remote-debugging-port=0",
                "--remote-allow-origins=*",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = Path(self.profile, "DevToolsActivePort")
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise ScreenshotError(f"{binary} did not start its DevTools endpoint")
            time.sleep(0.1)
        port, path = port_file.read_text().split()[:2]
        self.devtools = DevTools(f"ws://127.0.0.1:{port}{path}")

    def new_page(self, base: str = "", lang: str = "") -> Page:
        """A page in its own browser context: its own cookies, so its own Odoo session;
        ``lang``: the portal's language for it (the cookie of its language selector)."""
        context = self.devtools.call("Target.createBrowserContext")["browserContextId"]
        target = self.devtools.call(
            "Target.createTarget", {"url": "about:blank", "browserContextId": context}
        )["targetId"]
        session = self.devtools.call(
            "Target.attachToTarget", {"targetId": target, "flatten": True}
        )["sessionId"]
        page = Page(self.devtools, session, f"{self.width}x{self.height}")
        if lang:
            cookie = {"name": "frontend_lang", "value": lang, "url": base}
            page.call("Network.setCookie", cookie)
        return page

    def close(self):
        if getattr(self, "devtools", None):
            try:
                self.devtools.close()
            except OSError:
                pass
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        shutil.rmtree(self.profile, ignore_errors=True)


# the page's state as one string: "" when the screen is ready, else what is missing
READY_JS = """
(() => {
    const expect = %(expect)s, backend = %(backend)s, login = %(login)s, empty = %(empty)s;
    if (document.readyState !== 'complete') return 'document loading';
    if (!login && location.pathname.startsWith('/web/login')) return 'FATAL login page';
    const error = document.querySelector('.o_error_dialog, .o_dialog .o_error_detail');
    if (error) return 'FATAL error dialog: ' + error.innerText.slice(0, 300);
    if (backend && !(window.odoo && odoo.isReady === true)) return 'web client starting';
    if (document.querySelector('.o_loading_indicator, .o_blockUI')) return 'loading';
    if (!empty && document.querySelector('.o_view_nocontent')) return 'empty view (no records)';
    for (const selector of expect) {
        const element = document.querySelector(selector);
        if (!element || !element.getClientRects().length) return 'waiting for ' + selector;
    }
    return '';
})()
"""
# what changes while a screen is still building itself
SIGNATURE_JS = "document.body ? document.body.innerHTML.length + ':' + location.href : ''"


class Page:
    def __init__(self, devtools: DevTools, session: str, size: str):
        self.devtools, self.session, self.size = devtools, session, size
        self.requests: dict[str, float] = {}
        self.metrics = None
        for domain in ("Page", "Network", "Runtime"):
            self.call(f"{domain}.enable")
        self.resize()

    def call(self, method: str, params: dict | None = None, timeout: float = 60.0) -> dict:
        return self.devtools.call(method, params, session=self.session, timeout=timeout)

    def evaluate(self, expression: str, timeout: float = 60.0):
        result = self.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            timeout=timeout,
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise ScreenshotError(f"script error in the page: {text}")
        return result["result"].get("value")

    def _track_requests(self):
        for event in self.devtools.take_events(self.session):
            method, params = event["method"], event.get("params", {})
            if method == "Network.requestWillBeSent":
                self.requests[params["requestId"]] = time.monotonic()
            elif method in ("Network.loadingFinished", "Network.loadingFailed"):
                self.requests.pop(params["requestId"], None)

    def busy(self) -> bool:
        now = time.monotonic()
        return any(now - started < LONG_REQUEST_SECONDS for started in self.requests.values())

    def goto(self, url: str):
        self.requests.clear()
        self.devtools.take_events(self.session)
        answer = self.call("Page.navigate", {"url": url})
        if answer.get("errorText"):
            raise ScreenshotError(f"cannot open {url}: {answer['errorText']}")

    def wait_ready(
        self, expect: list[str], backend: bool, timeout: float, login=False, empty=False
    ) -> None:
        """Until the screen is ready and has stopped changing (see the module's doc);
        ``empty``: an empty list or kanban will do (a step before the screen itself)."""
        script = READY_JS % {
            "expect": json.dumps(expect),
            "backend": json.dumps(backend),
            "login": json.dumps(login),
            "empty": json.dumps(empty),
        }
        deadline = time.monotonic() + timeout
        quiet_since, signature, state = None, None, "not checked"
        while time.monotonic() < deadline:
            self.devtools.pump(0.2)
            self._track_requests()
            try:
                state = self.evaluate(script, timeout=10)
                current = self.evaluate(SIGNATURE_JS, timeout=10)
            except ScreenshotError as exc:  # the page is being replaced (navigation)
                state, current = str(exc), None
            if state and state.startswith("FATAL"):
                raise ScreenshotError(state[6:])
            if state or self.busy() or current != signature:
                quiet_since, signature = None, current
                continue
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= QUIET_SECONDS:
                return
        raise ScreenshotError(f"not ready after {timeout:.0f} s: {state or 'still changing'}")

    def screenshot(self, path: Path, max_kb: int):
        # no caret or selected text in the picture
        self.evaluate("document.activeElement && document.activeElement.blur()")
        self.devtools.pump(0.3)
        data = self.call("Page.captureScreenshot", {"format": "png", "fromSurface": True})
        path.write_bytes(base64.b64decode(data["data"]))
        if path.stat().st_size > max_kb * 1024:
            shrink(path)

    def use_all_companies(self, login: str):
        """Show the records of every company the user may see (Odoo's company switcher
        keeps its choice in the ``cids`` cookie): both landlords of the demo."""
        fields = ["company_id", "company_ids"]
        user = self.rpc("res.users", "search_read", [[("login", "=", login)], fields])
        if not user:
            return
        main = user[0]["company_id"][0]
        ids = [main, *(cid for cid in user[0]["company_ids"] if cid != main)]
        if len(ids) > 1:
            self.evaluate(f"document.cookie = 'cids={'-'.join(map(str, ids))}; path=/'")

    def click(self, selector: str, text: str = ""):
        """Click the first element matching ``selector`` (and showing ``text``, if given)."""
        found = self.evaluate(
            f"""(() => {{
                const text = {json.dumps(text)};
                const element = [...document.querySelectorAll({json.dumps(selector)})]
                    .find(e => !text || e.innerText.trim() === text);
                if (!element) return false;
                element.click();
                return true;
            }})()"""
        )
        if not found:
            raise ScreenshotError(f"nothing to click: {selector} {text}".strip())

    def resize(self, size: str = ""):
        """The window size of the next screen: the run's, WIDTHxHEIGHT, or "phone"."""
        mobile = size == "phone"
        width, height = parse_size(PHONE_SIZE if mobile else size or self.size)
        if (width, height, mobile) == self.metrics:
            return
        self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
        )
        self.call("Emulation.setTouchEmulationEnabled", {"enabled": mobile})
        self.metrics = (width, height, mobile)

    def pay(self, url: str, timeout: float):
        """Pay a recharge page with Odoo's demo provider (its default: a successful payment)
        and wait until the payment form lands back on the meter's page."""
        self.goto(url)
        button = "button[name=o_payment_submit_button]"
        self.wait_ready(["#o_payment_form", button], backend=False, timeout=timeout)
        landing = urllib.parse.urlsplit(url).path.rsplit("/recharge", 1)[0]
        self.click(button)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.devtools.pump(0.5)
            path = self.evaluate("document.readyState === 'complete' ? location.pathname : ''")
            if path == landing:
                return
        raise ScreenshotError(f"the payment did not land on {landing} in {timeout:.0f} s")

    def login(self, base: str, db: str | None, login: str, password: str, timeout: float):
        query = {"redirect": "/odoo"} | ({"db": db} if db else {})
        self.goto(f"{base}/web/login?{urllib.parse.urlencode(query)}")
        self.wait_ready(
            ["form.oe_login_form input[name=login]"], backend=False, timeout=timeout, login=True
        )
        self.evaluate(
            "(() => { const form = document.querySelector('form.oe_login_form');"
            f" form.querySelector('input[name=login]').value = {json.dumps(login)};"
            f" form.querySelector('input[name=password]').value = {json.dumps(password)};"
            " form.submit(); })()"
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.devtools.pump(0.3)
            href = self.evaluate("document.readyState === 'complete' ? location.href : ''")
            if href and "/web/login" not in href:
                return
            error = self.evaluate(
                "(document.querySelector('.oe_login_form .alert-danger') || {}).innerText || ''"
            )
            if error:
                raise ScreenshotError(f"login {login!r} refused: {error.strip()}")
        raise ScreenshotError(f"login {login!r}: still on the login page after {timeout:.0f} s")

    def rpc(self, model: str, method: str, args: list, kwargs: dict | None = None):
        """A JSON-RPC call with the page's session (to find the records to show)."""
        body = {
            "jsonrpc": "2.0",
            "method": "call",
            "params": {"model": model, "method": method, "args": args, "kwargs": kwargs or {}},
        }
        answer = self.evaluate(
            f"fetch('/web/dataset/call_kw/{model}/{method}', {{method: 'POST',"
            " headers: {'Content-Type': 'application/json'},"
            f" body: JSON.stringify({json.dumps(body)})}}).then(r => r.json())"
        )
        if answer.get("error"):
            message = answer["error"].get("data", {}).get("message") or answer["error"]
            raise ScreenshotError(f"{model}.{method}: {message}")
        return answer["result"]


# === THE SCREENS === #

# what shows that a kind of screen is there (besides "ready" and "not empty")
LIST = [".o_list_view :is(.o_data_row, .o_group_header)"]
KANBAN = [".o_kanban_view .o_kanban_record:not(.o_kanban_ghost)"]
FORM = [".o_form_view .o_form_sheet"]
PIVOT = [".o_pivot table td.o_pivot_cell_value"]
GRAPH = [".o_graph_renderer canvas"]


@dataclass
class Shot:
    name: str
    caption: str
    path: str  # URL path, may contain {placeholders} filled from the records found
    expect: list[str]
    role: str = "admin"  # admin, tenant, visitor (not logged in)
    #: then click these, waiting after each for the shot's ``expect`` and the given selector:
    #: (selector of the element to click, its text or "", selector that shows it worked)
    click: list[tuple[str, str, str]] = field(default_factory=list)
    size: str = ""  # another window size for this screen ("phone": 390x844, mobile)
    pays: str = ""  # first pay this recharge page with the demo provider (only with --pay)
    settle: float = 0.0  # extra seconds for charts that animate after they are drawn
    scroll: str = ""  # brought into view before the shot (a part below the first screen)

    @property
    def backend(self) -> bool:
        return self.role == "admin"


def act(xmlid: str, record: str = "", view: str = "") -> str:
    path = f"/odoo/action-{xmlid}" + (f"/{record}" if record else "")
    return path + (f"?view_type={view}" if view else "")


#: (what to click, its text, what shows it opened)
OPEN_VERSION = (".o_field_widget[name=version_ids] .o_data_cell", "", ".modal .o_form_view")
SORT_BY_STATUS = (
    ".o_list_view th[data-name=status]",
    "",
    ".o_list_view th[data-name=status] .fa-sort-asc",
)
REMOVE_FILTER = (".o_facet_remove", "", ".o_searchview:not(:has(.o_searchview_facet))")
REPORTING_MENU = (  # by its id, whatever the language
    ".o_menu_sections button[data-menu-xmlid='prepaid_meter.prepaid_menu_reporting']",
    "",
    ".o-dropdown--menu .dropdown-item",
)

CONSUMPTION_TAB = (  # by the page's name, whatever the language
    ".o_notebook a[name=consumption]",
    "",
    ".o_prepaid_consumption_chart canvas",
)

SHOTS = [
    # --- the manager's day: dashboard, meters, a meter, its account, tariffs, alarms ---
    Shot(
        "dashboard",
        "Dashboard: sales, energy sold, arrears, meters by status, largest consumers, channels",
        act("prepaid_billing.prepaid_dashboard_action"),
        [".o_prepaid_dashboard canvas"],
        settle=1.0,
    ),
    Shot(
        "meters_kanban",
        "Meters by status: normal, alarm 1, alarm 2, arrears, supply off, lost connection",
        act("prepaid_meter.prepaid_meter_action", view="kanban"),
        KANBAN,
    ),
    Shot(
        "meters_list",
        "Meter list: last reading, relay desired and actual, credit, status colours",
        act("prepaid_meter.prepaid_meter_action", view="list"),
        LIST,
        click=[SORT_BY_STATUS],  # alarms and arrears first
    ),
    Shot(
        "meter_form",
        "A meter: installation, gateway and bus, supply (desired/actual relay), latest reading",
        act("prepaid_meter.prepaid_meter_action", "{meter}"),
        FORM,
    ),
    Shot(
        "meter_consumption",
        "A meter's consumption by day with the balance at the end of each day",
        act("prepaid_meter.prepaid_meter_action", "{meter}"),
        FORM,
        click=[CONSUMPTION_TAB],
        scroll=".o_notebook",
        settle=1.0,
    ),
    Shot(
        "account_ledger",
        "A prepaid account: balance, alarms, and its ledger (recharges, deductions)",
        act("prepaid_billing.prepaid_account_action", "{account}"),
        [*FORM, ".o_notebook .o_field_one2many .o_data_row"],
        size="1380x1150",  # below 1400 px the chatter goes under the form: the ledger is wide
    ),
    Shot(
        "tariff_tou",
        "A time-of-use tariff version: prices per band and the daily segments",
        act("prepaid_billing.prepaid_tariff_action", "{tariff_tou}"),
        FORM,
        click=[OPEN_VERSION],
    ),
    Shot(
        "tariff_ladder",
        "A ladder tariff version: steps on the consumption of the settlement cycle",
        act("prepaid_billing.prepaid_tariff_action", "{tariff_ladder}"),
        FORM,
        click=[OPEN_VERSION],
    ),
    Shot(
        "alarms_now",
        "Alarms now: meters below alarm 1 or 2, in arrears, supply cut",
        act("prepaid_billing.prepaid_alarm_current_action"),
        LIST,
    ),
    # --- devices ---
    Shot(
        "gateways",
        "Gateways: TCP collectors, 4G/MQTT, Bluetooth bridges; online or lost",
        act("prepaid_meter.prepaid_gateway_action", view="list"),
        LIST,
    ),
    Shot(
        "gateway_form",
        "A TCP collector: RS-485 buses with their TCP port, protocol and driver",
        act("prepaid_meter.prepaid_gateway_action", "{gateway}"),
        FORM,
    ),
    Shot(
        "meter_commands",
        "The command queue: relay, price, thresholds... queued, sent, confirmed, superseded",
        act("meter_gateway.meter_gateway_command_action", view="list"),
        LIST,
        click=[REMOVE_FILTER],  # all commands, not only those in progress
    ),
    # --- reports and accounting ---
    Shot(
        "report_centre",
        "Report centre: sales per day and site, and the Reporting menu",
        act("prepaid_billing.prepaid_sales_report_action", view="graph"),
        GRAPH,
        click=[REPORTING_MENU],
        settle=1.0,
    ),
    Shot(
        "report_consumption",
        "Consumption by building and unit, per month (pivot, exports to Excel)",
        act("prepaid_billing.prepaid_consumption_report_action", view="pivot"),
        PIVOT,
    ),
    Shot(
        "accounting_agreement",
        "Balances vs accounting: each prepaid balance proven against the ledgers",
        act("prepaid_billing.prepaid_agreement_report_action"),
        LIST,
    ),
    Shot(
        "accounting_payments",
        "Recharges are customer payments in the landlord's journal",
        act("account.action_account_payments"),
        LIST,
    ),
    # --- the tenant ---
    Shot(
        "portal_my_meters",
        "Portal: the tenant's meters with credit and status",
        "/my/meters",
        ["a[href^='/my/meters/']"],
        role="tenant",
    ),
    Shot(
        "portal_meter",
        "Portal: one meter: credit and how many days it lasts, supply, last reading, recharge",
        "/my/meters/{tenant_meter}",
        [".o_prepaid_recharge_form"],
        role="tenant",
    ),
    Shot(
        "portal_recharge",
        "Portal: paying a recharge with Odoo's payment form",
        "/my/meters/{tenant_meter}/recharge?amount=50",
        [".o_prepaid_recharge_page", ".o_prepaid_recharge_page #o_payment_form"],
        role="tenant",
    ),
    Shot(
        "portal_recharged",
        "Portal, after paying 50 with the demo provider: credited once, supply back on",
        "/my/meters/{tenant_meter}",
        [".o_prepaid_recharge_row"],
        role="tenant",
        pays="/my/meters/{tenant_meter}/recharge?amount=50",
    ),
    Shot(
        "portal_history",
        "Portal: consumption by day with the money charged, payments, latest readings",
        "/my/meters/{tenant_meter}/history?period=day",
        ["main .card"],
        role="tenant",
    ),
    Shot(
        "qr_landing",
        "QR landing on a phone: the meter's printed QR code opens its page",
        "{qr_path}",
        [".o_prepaid_recharge_form"],
        role="visitor",
        size="phone",
    ),
]


def find_records(page: Page, tenant_partner: int) -> dict[str, str]:
    """The records the screens show, chosen from what the demo has."""
    found: dict[str, str] = {}

    def first(model, domain, order="id", fields=("id",)):
        rows = page.rpc(model, "search_read", [domain, list(fields)], {"limit": 1, "order": order})
        return rows[0] if rows else None

    meter = first(
        "prepaid.meter",
        [("state", "=", "in_service"), ("gateway_command_ids", "!=", False)],
    ) or first("prepaid.meter", [("state", "=", "in_service"), ("tenant_id", "!=", False)])
    tenant_meter = first(
        "prepaid.meter",
        [("state", "=", "in_service"), ("tenant_id", "child_of", tenant_partner)],
        fields=("id", "qr_url"),
    )
    account = first("prepaid.account", [("line_ids", "!=", False)], order="id")
    tariffs = page.rpc("prepaid.tariff", "search_read", [[], ["tariff_type"]], {"order": "id"})
    tou = next((t for t in tariffs if t["tariff_type"] == "tou"), None)
    ladder = next((t for t in tariffs if t["tariff_type"] == "ladder"), None)
    gateway = first("prepaid.gateway", [("gateway_type", "=", "tcp_collector")])
    for key, row in (
        ("meter", meter),
        ("tenant_meter", tenant_meter),
        ("account", account),
        ("tariff_tou", tou),
        ("tariff_ladder", ladder),
        ("gateway", gateway),
    ):
        if row:
            found[key] = str(row["id"])
    if tenant_meter and tenant_meter.get("qr_url"):
        url = urllib.parse.urlsplit(tenant_meter["qr_url"])
        found["qr_path"] = url.path + (f"?{url.query}" if url.query else "")
    return found


# === MAIN === #


def take(page: Page, shot: Shot, base: str, records: dict, args) -> Path:
    try:
        path = shot.path.format(**records)
    except KeyError as exc:
        raise ScreenshotError(f"the demo has no record for {exc.args[0]}") from None
    page.resize(shot.size)
    if shot.pays:
        page.pay(base + shot.pays.format(**records), args.timeout)
    page.goto(base + path)
    # clicks first (the screen may be empty until then, e.g. before a filter is removed),
    # each once what it clicks is there and then once what it opens is there
    for selector, text, shows in shot.click:
        page.wait_ready([selector], shot.backend, args.timeout, empty=True)
        page.click(selector, text)
        page.wait_ready([shows], shot.backend, args.timeout, empty=True)
    page.wait_ready(shot.expect, shot.backend, args.timeout)
    if shot.scroll:
        page.evaluate(f"document.querySelector({json.dumps(shot.scroll)}).scrollIntoView()")
    if shot.settle:
        time.sleep(shot.settle)
    target = args.out / f"{shot.name}.png"
    page.screenshot(target, args.max_kb)
    return target


def find_chromium(given: str | None) -> str:
    for candidate in (
        given,
        os.environ.get("ODOO_BROWSER_BIN"),
        "chromium",
        "chromium-browser",
        "google-chrome",
    ):
        if candidate and (path := shutil.which(candidate)):
            return path
    raise ScreenshotError("Chromium not found: install it (apt-get install chromium)")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--url",
        default=f"http://127.0.0.1:{os.environ.get('DEMO_PORT', '8069')}",
        help="the running demo (default: http://127.0.0.1:$DEMO_PORT, 8069)",
    )
    parser.add_argument(
        "--db", default=os.environ.get("DEMO_DB"), help="database, if the server has several"
    )
    parser.add_argument("--out", type=Path, help="default: docs/screenshots/[LANG/]")
    parser.add_argument(
        "--lang",
        default=os.environ.get("DEMO_LANG") or "en_US",
        help="the screens' language, e.g. zh_CN (default: $DEMO_LANG, else en_US)",
    )
    parser.add_argument("--admin", default="admin:admin", help="backend login:password")
    parser.add_argument("--tenant", default="tenant:tenant", help="portal login:password")
    parser.add_argument("--size", default="1400x900", help="window size, WIDTHxHEIGHT")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per screen")
    parser.add_argument("--only", nargs="*", help="screens to take (names, prefixes)")
    parser.add_argument("--chromium", help="browser binary (default: chromium)")
    parser.add_argument(
        "--max-kb", type=int, default=150, help="bigger PNGs get a 256-colour palette"
    )
    parser.add_argument(
        "--pay",
        action="store_true",
        help="also recharge the tenant's meter (50, demo provider) and show the result",
    )
    parser.add_argument("--list", action="store_true", help="list the screens and exit")
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = ROOT / "docs" / "screenshots"
        if args.lang != "en_US":
            args.out /= args.lang  # next to the English ones, with the same names
    return args


def set_users_lang(page: Page, logins: list[str], lang: str) -> dict[int, str]:
    """The language of these users for the run (as in their preferences): ``{user id: the
    language they had}`` for those it changed."""
    users = page.rpc("res.users", "search_read", [[("login", "in", logins)], ["lang"]])
    before = {user["id"]: user["lang"] for user in users if user["lang"] != lang}
    for user_id in before:
        page.rpc("res.users", "write", [[user_id], {"lang": lang}])
    return before


def take_all(browser: Browser, shots: list[Shot], base: str, args) -> list[str]:
    """Every shot, each with the page of its role (logged in once); the names that failed."""
    failed, restore = [], {}
    admin_login, tenant_login = args.admin.split(":", 1)[0], args.tenant.split(":", 1)[0]
    pages = {"admin": browser.new_page(base, args.lang)}
    admin = pages["admin"]
    admin.login(base, args.db, *args.admin.split(":", 1), timeout=args.timeout)
    try:
        restore = set_users_lang(admin, [admin_login, tenant_login], args.lang)
        partner = admin.rpc(
            "res.users", "search_read", [[("login", "=", tenant_login)], ["partner_id"]]
        )
        if not partner:
            raise ScreenshotError(f"no user {tenant_login!r} in the demo")
        admin.use_all_companies(admin_login)
        records = find_records(admin, partner[0]["partner_id"][0])
        for shot in shots:
            if shot.role not in pages:
                pages[shot.role] = browser.new_page(base, args.lang)
                if shot.role == "tenant":
                    pages["tenant"].login(
                        base, args.db, *args.tenant.split(":", 1), timeout=args.timeout
                    )
            started = time.monotonic()
            try:
                target = take(pages[shot.role], shot, base, records, args)
            except ScreenshotError as exc:
                failed.append(shot.name)
                print(f"FAILED {shot.name}: {exc}", file=sys.stderr)
                continue
            size = target.stat().st_size // 1024
            seconds = time.monotonic() - started
            print(
                f"{target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}"
                f"  {size} KB  {seconds:.1f} s  {shot.caption}"
            )
    finally:
        for user_id, lang in restore.items():
            admin.rpc("res.users", "write", [[user_id], {"lang": lang}])
    return failed


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.list:
        for shot in SHOTS:
            print(f"{shot.name:22} {shot.caption}")
        return 0
    shots = [
        shot
        for shot in SHOTS
        if (not args.only or any(shot.name.startswith(o) for o in args.only))
        and (args.pay or not shot.pays)
    ]
    width, height = parse_size(args.size)
    base = args.url.rstrip("/")
    try:
        urllib.request.urlopen(f"{base}/web/login", timeout=10).close()
    except OSError as exc:
        print(f"no Odoo at {base} ({exc}): start the demo first (make demo)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    browser = Browser(find_chromium(args.chromium), width, height, args.lang)
    try:
        failed = take_all(browser, shots, base, args)
    except ScreenshotError as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        browser.close()
    if failed:
        print(f"{len(failed)} screen(s) not taken: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
