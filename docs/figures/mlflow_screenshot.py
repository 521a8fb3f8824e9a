"""How docs/figures/mlflow_demo.png was made: the MLflow UI over a demo run, in Chromium.

    make demo ARGS='--set tracking.mlflow_uri=sqlite:///mlflow.db'
    make mlflow-ui MLFLOW_URI=sqlite:///mlflow.db &
    pip install playwright     # in a separate environment; it drives the system's Chromium
    python docs/figures/mlflow_screenshot.py http://127.0.0.1:5000 1 docs/figures/mlflow_demo.png

Not part of the build or the tests: the figure is committed.
"""

from __future__ import annotations

import sys

from playwright.sync_api import sync_playwright

HIDDEN = ("Dataset", "Source", "Models")
SHOWN = ("level", "rewind_epoch", "control", "replicate", "result.top1",
         "result.weights_remaining_overall")


def main(ui: str, experiment: str, out: str, chromium: str = "/usr/bin/chromium") -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1600, "height": 1900})
        page.goto(f"{ui}/#/experiments/{experiment}/runs")
        page.wait_for_timeout(6000)
        close = page.query_selector("button[aria-label='Close']")  # the assistant's panel
        if close:
            close.click()
        page.get_by_role("button", name="Columns").click()
        search = page.get_by_placeholder("Search columns")
        for name in (*HIDDEN, *SHOWN):
            search.fill(name)
            page.wait_for_timeout(400)
            page.get_by_text(name, exact=True).last.click()
        page.keyboard.press("Escape")
        page.wait_for_timeout(500)
        for button in page.query_selector_all("button"):  # expand the parent run
            if button.get_attribute("aria-label") is None and not button.inner_text().strip():
                button.click()
                break
        page.wait_for_timeout(3000)
        page.screenshot(path=out)
        browser.close()


if __name__ == "__main__":
    main(*sys.argv[1:])
