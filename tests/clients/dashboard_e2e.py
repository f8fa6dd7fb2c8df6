"""End-to-end test of the built-in dashboard (`GET /`) in headless Chromium, against a running
`coinstaker demo` (a block every second; subscribers alice@, bob@, carol@; dave@ refused because
it is not delay-locked).

usage: dashboard_e2e.py BASE_URL SCREENSHOT_DIR

Needs selenium 4 (`pip install selenium==4.27.1`), /usr/bin/chromium and /usr/bin/chromedriver
(Debian: `apt-get install chromium chromium-driver`). Expected values come from the GraphQL API
itself (urllib), never from the page. Checks, at 1440×900 then at 375×800:

1. `#pool-r-address` shows the pool's R-address;
2. `#processed-height` increases;
3. the live feed receives a STAKE_FOUND event that was not in its initial replay;
4. looking up alice@ shows ACTIVE; looking up dave@ shows the unmet condition (the delay lock)
   that `checkIdentity` gives, and the result survives the page's periodic refresh;
   an expanded stake stays expanded across refreshes;
5. after a forced reconnect the feed resumes: no duplicate cursor, no gap (the feed's cursors
   are exactly the API's events in that range), and new events keep arriving;
6. at 375 px: no horizontal page scroll, the key elements are visible;
7. the browser logged no warning or error during the whole run;
8. screenshots SCREENSHOT_DIR/dashboard-1440.png and dashboard-375.png (full page).

Exit code 0 on success; on failure it prints what failed, saves
SCREENSHOT_DIR/dashboard-failure.png and exits 1.
"""

import base64
import json
import math
import os
import sys
import time
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

WAIT = 60  # seconds, for anything the page should show soon
STAKE_WAIT = 120  # a new pool stake can take a while on a loaded CI machine
REFRESH_WAIT = 12  # longer than two refresh periods of the page (5 s)

STARTED = time.monotonic()


class Failure(Exception):
    """A check that failed, with a message for people."""


def log(message):
    print(f"[{time.monotonic() - STARTED:6.1f}s] {message}", flush=True)


def check(condition, message):
    if not condition:
        raise Failure(message)


def graphql(base_url, query, variables=None):
    """Runs a query against the API; returns `data` or raises Failure with the errors."""
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(
        f"{base_url}/graphql",
        data=body,
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        reply = json.load(response)
    if reply.get("errors"):
        raise Failure(f"the API refused {query!r}: {reply['errors']}")
    return reply["data"]


class Browser:
    """The driver, with the helpers the checks need; keeps every browser log entry."""

    def __init__(self):
        options = Options()
        options.binary_location = "/usr/bin/chromium"
        for argument in (
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--window-size=1440,900",
        ):
            options.add_argument(argument)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(
            service=Service(executable_path="/usr/bin/chromedriver"), options=options
        )
        self.logs = []

    def quit(self):
        self.driver.quit()

    def collect_logs(self):
        """Moves the browser's new console entries into `self.logs`."""
        self.logs.extend(self.driver.get_log("browser"))

    def viewport(self, width, height):
        """Sets the page's viewport (CSS pixels) exactly, whatever the window decorations."""
        self.driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        self.viewport_size = (width, height)

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def text(self, element_id):
        """The text of an element by id, or None when it is not on the page."""
        return self.js(
            "const e = document.getElementById(arguments[0]); return e ? e.textContent : null;",
            element_id,
        )

    def wait(self, what, predicate, timeout=WAIT):
        """Waits until predicate() is truthy and returns its value; Failure after timeout."""
        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.25).until(
                lambda _driver: predicate()
            )
        except TimeoutException:
            raise Failure(f"timed out after {timeout} s waiting for {what}") from None

    def feed(self):
        """The live feed's items, newest first: [(cursor, kind)]."""
        return [
            (item[0], item[1])
            for item in self.js(
                "return [...document.querySelectorAll('#event-feed > li')]"
                ".map(li => [li.dataset.cursor, li.dataset.kind]);"
            )
        ]

    def screenshot(self, path):
        """A full-page screenshot: the viewport is stretched to the page's height meanwhile."""
        width, height = self.viewport_size
        metrics = self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
        content = metrics.get("cssContentSize") or metrics["contentSize"]
        full_height = max(height, int(math.ceil(content["height"])))
        self.driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": full_height, "deviceScaleFactor": 1, "mobile": False},
        )
        try:
            time.sleep(0.5)  # let the charts redraw for the new size
            shot = self.driver.execute_cdp_cmd(
                "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}
            )
            with open(path, "wb") as file:
                file.write(base64.b64decode(shot["data"]))
        finally:
            self.viewport(width, height)
        log(f"screenshot {path}")


def digits(text):
    """The integer in a text like "1,234", or None."""
    only = "".join(c for c in (text or "") if c.isdigit())
    return int(only) if only else None


def lookup(browser, identity):
    field = browser.driver.find_element(By.ID, "lookup-input")
    field.clear()
    field.send_keys(identity)
    browser.driver.find_element(By.ID, "lookup-button").click()


def check_pool_address(browser, base_url):
    expected = graphql(base_url, "{ pools { primaryAddress } }")["pools"][0]["primaryAddress"]
    check(expected.startswith("R"), f"the API's primaryAddress {expected!r} is not an R-address")
    browser.wait(
        f"#pool-r-address to show {expected}",
        lambda: (browser.text("pool-r-address") or "").strip() == expected,
    )
    log(f"1. #pool-r-address shows {expected}")


def check_processed_height(browser):
    first = browser.wait(
        "#processed-height to show a number", lambda: digits(browser.text("processed-height"))
    )
    later = browser.wait(
        f"#processed-height to rise above {first}",
        lambda: (digits(browser.text("processed-height")) or 0) > first
        and digits(browser.text("processed-height")),
    )
    tip = digits(browser.text("tip-height"))
    check(tip is not None, f"#tip-height shows no number: {browser.text('tip-height')!r}")
    log(f"2. #processed-height rose from {first} to {later} (tip {tip})")


def wait_live(browser, what):
    browser.wait(
        f"#live-status to say live ({what})",
        lambda: browser.js("return document.getElementById('live-status').dataset.state")
        == "live",
    )


def check_stake_found(browser, base_url):
    wait_live(browser, "after the initial replay")
    replayed = {cursor for cursor, _ in browser.feed()}
    log(f"3. feed replayed {len(replayed)} stored events; waiting for a new STAKE_FOUND")
    new_stake = browser.wait(
        "a STAKE_FOUND item in #event-feed that was not in the initial replay",
        lambda: next(
            (c for c, kind in browser.feed() if kind == "STAKE_FOUND" and c not in replayed),
            None,
        ),
        timeout=STAKE_WAIT,
    )
    if replayed and all(c.isdigit() for c in replayed):
        check(
            int(new_stake) > max(int(c) for c in replayed),
            f"the new STAKE_FOUND has cursor {new_stake}, not after the replay's last "
            f"{max(int(c) for c in replayed)}",
        )
    # The API agrees that this cursor is a STAKE_FOUND.
    stored = graphql(
        base_url,
        "query($after: String) { events(after: $after, first: 1) { nodes { cursor kind } } }",
        {"after": str(int(new_stake) - 1)},
    )["events"]["nodes"]
    check(
        stored and stored[0]["cursor"] == new_stake and stored[0]["kind"] == "STAKE_FOUND",
        f"the API's event at cursor {new_stake} is {stored}, not a STAKE_FOUND",
    )
    log(f"3. live STAKE_FOUND arrived (cursor {new_stake})")


def check_lookup(browser, base_url):
    alice = graphql(
        base_url, '{ checkIdentity(identity: "alice@") { identityAddress name status } }'
    )["checkIdentity"]
    check(alice["status"] == "ACTIVE", f"the API says alice@ is {alice['status']}, not ACTIVE")
    lookup(browser, "alice@")
    browser.wait(
        "#lookup-status to say ACTIVE for alice@",
        lambda: (browser.text("lookup-status") or "").strip() == "ACTIVE"
        and alice["name"] in (browser.text("lookup-identity") or ""),
    )
    result = browser.text("lookup-result")
    check(
        alice["identityAddress"] in result,
        f"the lookup of alice@ does not show her i-address {alice['identityAddress']}",
    )
    check("In flight" in result, "the lookup of alice@ does not show her balance in flight")
    # Read in the page (the lookup re-renders on every refresh: a held element goes stale).
    link = browser.wait(
        "the statement link in the lookup",
        lambda: browser.js(
            "const a = document.getElementById('lookup-statement'); return a ? a.href : null;"
        ),
    )
    with urllib.request.urlopen(link, timeout=10) as reply:
        csv_text = reply.read().decode()
        check(
            reply.status == 200 and reply.headers.get_content_type() == "text/csv",
            f"the statement link {link} gave {reply.status} {reply.headers.get_content_type()}",
        )
    check(
        csv_text.startswith("kind,height,time_utc,amount,pending_after")
        and "\r\nCLOSING," in csv_text,
        f"the statement of alice@ is not the CSV statement: {csv_text[:200]!r}",
    )
    log(f"4. lookup alice@: ACTIVE, {alice['name']} {alice['identityAddress']}, statement CSV")

    dave = graphql(
        base_url, '{ checkIdentity(identity: "dave@") { name eligible status unmet } }'
    )["checkIdentity"]
    check(not dave["eligible"], f"the API says dave@ is eligible: {dave}")
    lock_reasons = [u for u in dave["unmet"] if "delay-lock" in u or "unlock delay" in u]
    check(lock_reasons, f"the API's reasons for dave@ do not mention the delay lock: {dave['unmet']}")
    lookup(browser, "dave@")
    browser.wait(
        "#lookup-conditions to show dave@'s unmet conditions",
        lambda: dave["name"] in (browser.text("lookup-identity") or "")
        and all(u in (browser.text("lookup-conditions") or "") for u in dave["unmet"]),
    )
    status = (browser.text("lookup-status") or "").strip()
    check(status != "ACTIVE", f"#lookup-status says {status!r} for dave@")
    check(
        browser.driver.find_element(By.ID, "lookup-conditions").is_displayed(),
        "#lookup-conditions is not visible",
    )
    log(f"4. lookup dave@: {status}; shows {lock_reasons[0]!r}")

    # The page refreshes every few seconds (and on every event): the result must stay.
    time.sleep(REFRESH_WAIT)
    check(
        dave["name"] in (browser.text("lookup-identity") or "")
        and lock_reasons[0] in (browser.text("lookup-conditions") or ""),
        "the lookup result of dave@ did not survive the page's refresh",
    )
    log("4. the lookup result survived the refreshes")


def check_expanded_stake(browser):
    key = browser.wait(
        "a stake in #stakes",
        lambda: browser.js(
            "const b = document.querySelector('#stakes tbody'); return b && b.dataset.key;"
        ),
    )
    browser.driver.find_element(
        By.CSS_SELECTOR, f'#stakes tbody[data-key="{key}"] button.toggle'
    ).click()
    is_open = (
        "const b = document.querySelector(`#stakes tbody[data-key=\"${arguments[0]}\"]`);"
        "return !!b && b.classList.contains('open') && !b.rows[1].hidden"
        " && b.rows[1].textContent.includes(arguments[0]);"
    )
    browser.wait("the stake's details to open", lambda: browser.js(is_open, key))
    time.sleep(REFRESH_WAIT)
    check(browser.js(is_open, key), f"the expanded stake {key} closed after a refresh")
    log(f"4. stake {key[:16]}… stays expanded across refreshes")


def check_resume(browser, base_url):
    wait_live(browser, "before the reconnect")
    before = {cursor for cursor, _ in browser.feed()}
    # Offline for 3 s: a few blocks (and their events) go by while the socket is closed.
    browser.js("window.coinstakerDashboard.reconnect(3000);")
    browser.wait(
        "#live-status to leave the live state after the forced reconnect",
        lambda: browser.js("return document.getElementById('live-status').dataset.state")
        != "live",
        timeout=10,
    )
    log("5. socket closed by the test hook; waiting for the page to resume")
    wait_live(browser, "after the reconnect")
    browser.wait(
        "two new events in #event-feed after the reconnect",
        lambda: len({c for c, _ in browser.feed()} - before) >= 2,
        timeout=STAKE_WAIT,
    )
    cursors = [c for c, _ in browser.feed()]
    duplicates = sorted({c for c in cursors if cursors.count(c) > 1})
    check(not duplicates, f"duplicate data-cursor in #event-feed: {duplicates}")
    check(all(c.isdigit() for c in cursors), f"non-numeric cursors in the feed: {cursors[:5]}")
    # No gap either: the feed holds exactly the API's events between its oldest and newest.
    low, high = min(map(int, cursors)), max(map(int, cursors))
    stored = graphql(
        base_url,
        "query($after: String) { events(after: $after, first: 500) { nodes { cursor } } }",
        {"after": str(low - 1)},
    )["events"]["nodes"]
    expected = {n["cursor"] for n in stored if int(n["cursor"]) <= high}
    check(
        set(cursors) == expected,
        f"the feed after the reconnect differs from the API's events {low}..{high}: "
        f"missing {sorted(expected - set(cursors), key=int)}, "
        f"extra {sorted(set(cursors) - expected, key=int)}",
    )
    log(f"5. resumed: {len(set(cursors) - before)} new events, no duplicate, no gap ({low}..{high})")


def check_charts(browser):
    for chart in ("chart-supply", "chart-subscribers"):
        browser.wait(
            f"a line in #{chart}",
            lambda chart=chart: browser.js(
                f"return !!document.querySelector('#{chart} svg path.line');"
            ),
        )
    luck = browser.wait(
        "#chart-luck to draw or say there is no network data",
        lambda: (
            "drawn"
            if browser.js("return !!document.querySelector('#chart-luck svg path.line');")
            else "no network data" in (browser.text("chart-luck") or "") and "no network data yet"
        ),
    )
    log(f"charts drawn; luck chart: {luck} {browser.text('luck-value') or ''}")


def check_small_screen(browser):
    browser.viewport(375, 800)
    browser.wait(
        "the page to lay out at 375 px",
        lambda: browser.js("return window.innerWidth") == 375,
        timeout=10,
    )
    time.sleep(1)
    scroll_width, inner_width = browser.js(
        "return [document.documentElement.scrollWidth, window.innerWidth];"
    )
    check(
        scroll_width <= inner_width,
        f"horizontal page scroll at 375 px: scrollWidth {scroll_width} > innerWidth {inner_width}",
    )
    for element_id in (
        "pool-r-address",
        "processed-height",
        "tip-height",
        "live-status",
        "lookup-input",
        "lookup-button",
        "lookup-result",
        "stakes-card",
        "payments-card",
        "event-feed",
        "chart-supply",
        "chart-subscribers",
        "chart-luck",
    ):
        element = browser.driver.find_element(By.ID, element_id)
        check(element.is_displayed(), f"#{element_id} is not visible at 375 px")
        left, right = browser.js(
            "const r = arguments[0].getBoundingClientRect(); return [r.left, r.right];", element
        )
        check(
            left >= -0.5 and right <= inner_width + 0.5,
            f"#{element_id} sticks out of the 375 px viewport ({left:.0f}..{right:.0f})",
        )
    log(f"6. 375 px: scrollWidth {scroll_width} ≤ {inner_width}; key elements visible")


def check_console(browser):
    browser.collect_logs()
    bad = [entry for entry in browser.logs if entry.get("level") in ("SEVERE", "WARNING")]
    check(
        not bad,
        "the browser logged warnings or errors:\n"
        + "\n".join(f"  {e['level']}: {e['message']}" for e in bad),
    )
    log(f"7. no console warning or error ({len(browser.logs)} entries in all)")


def run(base_url, screenshot_dir, browser):
    browser.viewport(1440, 900)
    browser.driver.get(f"{base_url}/")
    check_pool_address(browser, base_url)
    check_processed_height(browser)
    check_stake_found(browser, base_url)
    browser.collect_logs()
    check_charts(browser)
    check_lookup(browser, base_url)
    check_expanded_stake(browser)
    browser.collect_logs()
    check_resume(browser, base_url)
    browser.collect_logs()
    browser.screenshot(os.path.join(screenshot_dir, "dashboard-1440.png"))
    check_small_screen(browser)
    browser.screenshot(os.path.join(screenshot_dir, "dashboard-375.png"))
    check_console(browser)


def main():
    if len(sys.argv) != 3:
        print("usage: dashboard_e2e.py BASE_URL SCREENSHOT_DIR", file=sys.stderr)
        return 2
    base_url, screenshot_dir = sys.argv[1].rstrip("/"), sys.argv[2]
    os.makedirs(screenshot_dir, exist_ok=True)
    browser = Browser()
    try:
        run(base_url, screenshot_dir, browser)
    except (Failure, WebDriverException, OSError) as error:
        kind = "FAILED" if isinstance(error, Failure) else f"ERROR ({type(error).__name__})"
        print(f"{kind}: {error}", file=sys.stderr)
        try:
            browser.collect_logs()
            for entry in browser.logs:
                print(f"  browser {entry['level']}: {entry['message']}", file=sys.stderr)
            path = os.path.join(screenshot_dir, "dashboard-failure.png")
            browser.driver.save_screenshot(path)
            print(f"screenshot of the failure: {path}", file=sys.stderr)
        except WebDriverException as screenshot_error:
            print(f"(no screenshot: {screenshot_error})", file=sys.stderr)
        return 1
    finally:
        browser.quit()
    log("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
