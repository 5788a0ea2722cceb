"""The console in a real browser: headless Chromium (Debian's `chromium` and `chromium-driver`, driven by
Selenium, never a downloaded browser) on `vehicle-ocr up`'s /console/, the stack a subprocess on real
ports and the paid providers the fake upstream, which counts what it bills.

Without chromium these tests are skipped, saying which apt packages to install.
"""

from __future__ import annotations

import base64
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.fakes.fixtures import APIZERO_TEST_KEY, TIANAPI_TEST_KEY
from tests.fakes.upstream import DEFAULT_VEHICLE_LICENSE, FakeUpstream, Reply
from tests.integration.running_up import RunningUp, paid_providers_at, start_up

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
if CHROMIUM is None or CHROMEDRIVER is None:
    pytest.skip(
        "browser tests need Debian's chromium and its driver: apt-get install -y chromium chromium-driver",
        allow_module_level=True,
    )
webdriver = pytest.importorskip("selenium.webdriver", reason="browser tests need selenium: pip install -e '.[dev]'")
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

COACH = ROOT / "samples" / "plates" / "016-yellow-coach.jpg"
BLUE = ROOT / "samples" / "plates" / "001-blue-regular.jpg"
LICENCE = ROOT / "samples" / "vehicle-licenses" / "001-front.jpg"
BLUE_PLATE = {"color": "blue", "number": "沪A3H57K", "box": [150, 290, 480, 400]}
WAIT_S = 90


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream(tianapi_key=TIANAPI_TEST_KEY, apizero_key=APIZERO_TEST_KEY) as fake:
        yield fake


@pytest.fixture(scope="module")
def running(upstream: FakeUpstream) -> Iterator[RunningUp]:
    with start_up(paid_providers_at(upstream)) as stack:
        assert any(f"{stack.api_url}/console/" in line for line in stack.output)  # `up` says where the console is
        yield stack


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1200,1400"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def wait(driver: Any, condition: Any, what: str) -> Any:
    # The listing is redrawn when a record arrives: an element found just before may be gone.
    waiting = WebDriverWait(driver, WAIT_S, poll_frequency=0.3, ignored_exceptions=(StaleElementReferenceException,))
    return waiting.until(condition, message=what)


def card(driver: Any, key_suffix: str) -> Any:
    """The listing's card of the newest record whose key ends with ``key_suffix``, once it is there."""

    def found(d: Any) -> Any:
        for element in d.find_elements(By.CSS_SELECTOR, "#records li.record"):
            if element.get_attribute("data-key").endswith(key_suffix):
                return element
        return False

    return wait(driver, found, f"a card for {key_suffix}")


def upload(driver: Any, kind: str, path: Path) -> None:
    """Through the page's drop zone (its file input: what a drop hands the same upload code)."""
    Select(driver.find_element(By.ID, "upload-kind")).select_by_value(kind)
    driver.find_element(By.ID, "upload-file").send_keys(str(path))


def drop(driver: Any, kind: str, path: Path) -> None:
    """Drop a file on the page's drop zone, as a drag from the desktop does (a DataTransfer holding it)."""
    Select(driver.find_element(By.ID, "upload-kind")).select_by_value(kind)
    driver.execute_script(
        """
        const [name, b64] = arguments;
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const files = new DataTransfer();
        files.items.add(new File([bytes], name, { type: "image/jpeg" }));
        const zone = document.getElementById("upload");
        zone.dispatchEvent(new DragEvent("dragover", { dataTransfer: files, bubbles: true, cancelable: true }));
        zone.dispatchEvent(new DragEvent("drop", { dataTransfer: files, bubbles: true, cancelable: true }));
        """,
        path.name,
        base64.b64encode(path.read_bytes()).decode(),
    )


def test_upload_redrive_and_cost_through_the_page(running, upstream, browser):
    # Given the console, and tianapi out of quota (150) for the next call only
    upstream.script("tianapi", [Reply(code=150)])
    upstream.set_answer(BLUE.read_bytes(), [BLUE_PLATE])
    browser.get(f"{running.api_url}/console/")

    # When a plate photo is dropped on the page
    upload(browser, "plate", COACH)

    # Then its record appears FAILED with tianapi's code, what to do, and a redrive button
    failed = card(browser, "016-yellow-coach.jpg")
    assert "status-FAILED" in failed.get_attribute("class")
    assert failed.find_element(By.CSS_SELECTOR, ".error-code").text == "150"
    assert "top it up" in failed.find_element(By.CSS_SELECTOR, ".what-to-do").text
    # and the failures are summed up by code above the listing
    group = wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#failure-codes tr[data-code='150']"), "by code")
    assert group[0].find_element(By.CSS_SELECTOR, ".count").text == "1"

    # When the quota is back and the failure is redriven from the page
    failed.find_element(By.CSS_SELECTOR, ".redrive-one").click()

    # Then it is recognised this time, and the listing shows the plate read
    wait(browser, lambda d: "re-run: SUCCEEDED" in d.find_element(By.ID, "message").text, "the redrive's outcome")
    redriven = wait(
        browser,
        lambda d: (c := card(d, "016-yellow-coach.jpg")).find_elements(By.CSS_SELECTOR, ".plate-number") and c,
        "the redriven plate",
    )
    assert redriven.find_element(By.CSS_SELECTOR, ".plate-number").text == "沪A12345"
    wait(browser, lambda d: not d.find_element(By.ID, "failures").is_displayed(), "no failures left to sum up")

    # When another photo is dropped, one the provider locates the plate on
    upload(browser, "plate", BLUE)

    # Then it appears with its plate, boxed on the photo where the provider said
    blue = card(browser, "001-blue-regular.jpg")
    assert blue.find_element(By.CSS_SELECTOR, ".plate-number").text == "沪A3H57K"
    box = wait(
        browser, lambda d: card(d, "001-blue-regular.jpg").find_elements(By.CSS_SELECTOR, "rect.plate-box"), "the box"
    )
    assert [box[0].get_attribute(name) for name in ("x", "y", "width", "height")] == ["150", "290", "330", "110"]

    # And the cost page counts what the upstream itself billed, at tianapi's list price
    browser.get(f"{running.api_url}/console/#/cost")
    row = wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#cost-table tr[data-provider=tianapi]"), "cost")
    billed = int(row[0].find_element(By.CSS_SELECTOR, ".billed").text)
    assert billed == upstream.billed("tianapi") == 2
    assert row[0].find_element(By.CSS_SELECTOR, ".cost").text == f"{billed * 0.05:.2f} CNY"
    assert browser.find_elements(By.CSS_SELECTOR, "#cost-chart svg rect.bar-billed")


def test_filter_and_the_record_page_keep_owner_and_address_to_the_record(running, upstream, browser):
    # Given a vehicle licence dropped on the page
    browser.get(f"{running.api_url}/console/")
    drop(browser, "vehicle_license", LICENCE)
    licence_id = card(browser, "001-front.jpg").get_attribute("data-id")

    # When the listing is filtered to vehicle licences
    Select(browser.find_element(By.ID, "filter-kind")).select_by_value("vehicle_license")
    browser.find_element(By.ID, "filter-apply").click()

    # Then only licences are listed, without owner or address
    def kinds(d: Any) -> set[str]:
        return {r.find_element(By.CSS_SELECTOR, ".kind").text for r in d.find_elements(By.CSS_SELECTOR, "li.record")}

    wait(browser, lambda d: kinds(d) == {"vehicle_license"}, "only licences listed")
    listing = browser.find_element(By.ID, "records").text
    assert "001-front.jpg" in listing
    assert DEFAULT_VEHICLE_LICENSE["owner"] not in listing and DEFAULT_VEHICLE_LICENSE["address"] not in listing

    # When its own page is opened
    card(browser, "001-front.jpg").find_element(By.CSS_SELECTOR, "a.open").click()

    # Then the record's page shows every field, owner and address included
    page = wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#record-page .field-owner"), "record page")
    assert DEFAULT_VEHICLE_LICENSE["owner"] in page[0].text
    assert browser.current_url.endswith(f"#/record/{licence_id}")


def test_demo_screenshot_pictures_the_console(running, tmp_path):
    # Given the console with records, when `vehicle-ocr demo --screenshot` pictures it (its function, here)
    from vehicle_ocr_local.cli import console_screenshot

    line = console_screenshot(f"{running.api_url}/console/", tmp_path / "console.png")

    # Then a PNG of the page is written, and the line says where
    assert line == f"console screenshot: {tmp_path / 'console.png'}"
    assert (tmp_path / "console.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
