"""A tiny W3C WebDriver client for Debian's `chromedriver` + headless `chromium` (requests only).

WebDriver is plain HTTP + JSON, so a browser test needs no Selenium or Playwright download: start
`chromedriver --port=P`, open a session with Chromium's headless flags, then navigate, find
elements, type a file path into an `<input type=file>`, run scripts and take screenshots.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import time

import requests

from tests.net_helpers import free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C key of an element reference
# Headless on a machine with a closed network: no GPU, no sandbox (root in CI), no background fetches.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                  "--no-first-run", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--hide-scrollbars"]




class Browser:
    """One headless Chromium session. Use as a context manager."""

    def __init__(self, profile_dir, width: int = 1280, height: int = 900, timeout: float = 60):
        self.port = free_port()
        self._driver = subprocess.Popen([CHROMEDRIVER, f"--port={self.port}"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{self.port}"
        self.timeout = timeout
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{self.url}/status", timeout=2).json()["value"]["ready"]:
                    break
            except (requests.ConnectionError, KeyError, ValueError):
                pass
            if time.monotonic() > deadline or self._driver.poll() is not None:
                self.close()
                raise RuntimeError("chromedriver did not start")
            time.sleep(0.1)
        options = {"binary": CHROMIUM, "args": [*CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}",
                                                f"--window-size={width},{height}"]}
        try:
            value = self._post("/session", {"capabilities": {"alwaysMatch": {
                "browserName": "chrome", "goog:chromeOptions": options}}})
        except Exception:
            self.close()
            raise
        self.session = f"/session/{value['sessionId']}"

    def _post(self, path: str, body: dict):
        reply = requests.post(self.url + path, json=body, timeout=self.timeout).json()
        if isinstance(reply.get("value"), dict) and "error" in reply["value"]:
            raise RuntimeError(f"WebDriver {path}: {reply['value']['error']}: {reply['value'].get('message', '')[:500]}")
        return reply["value"]

    def get(self, url: str) -> None:
        self._post(self.session + "/url", {"url": url})

    def find(self, css: str) -> str:
        return self._post(self.session + "/element", {"using": "css selector", "value": css})[ELEMENT]

    def upload(self, css: str, path) -> None:
        """Chooses the file at `path` in the `<input type=file>` matched by `css` (as a user would)."""
        self._post(f"{self.session}/element/{self.find(css)}/value", {"text": str(path)})

    def script(self, source: str, *args):
        """Runs `source` (a function body; `arguments` holds `args`) in the page; returns its value."""
        return self._post(self.session + "/execute/sync", {"script": source, "args": list(args)})

    def wait_for(self, source: str, timeout: float = 120, interval: float = 0.2):
        """Polls the script `source` until it returns something truthy; returns that."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.script(source)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"the page never satisfied: {source}")
            time.sleep(interval)

    def screenshot(self, path) -> None:
        data = requests.get(f"{self.url}{self.session}/screenshot", timeout=self.timeout).json()["value"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    def close(self) -> None:
        if hasattr(self, "session"):
            try:
                requests.delete(self.url + self.session, timeout=30)
            except requests.RequestException:
                pass
        self._driver.terminate()
        try:
            self._driver.wait(10)
        except subprocess.TimeoutExpired:
            self._driver.kill()
            self._driver.wait()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
