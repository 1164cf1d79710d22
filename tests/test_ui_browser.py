"""`envbuild ui` in a real headless Chromium: what a person sees and does on each page.

The server is the real command in its own process on a loopback port, over a real catalog and cache index; the
build test builds on the real engine (a pip-only spec, a fresh environment variable so that BuildKit really runs,
its layers otherwise cached). Screenshots of every page land in the test's temp directory.
"""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import httpx
import pytest
from selenium.webdriver.common.by import By

from tests.conftest import docker, write
from tests.support.cli import cli, cli_json, command, environment
from tests.support.ui import chromium, free_port, ui_server, wait_for

BROKEN = "name: broken\ndependencies:\n  - python=3.11\n  - six: [1, 2\n"  # the flow list never closes


def register(home: Path, tmp_path: Path, name: str, text: str, filename: str = "requirements.txt", *extra: str):
    spec = write(tmp_path / f"{name}-{uuid.uuid4().hex[:6]}" / filename, text)
    return cli_json("env", "create", "--file", str(spec), "--name", name, "--cache-dir", str(home), *extra)


def test_list_filters_and_a_diff_of_two_versions_names_the_changed_package(tmp_path):
    home = tmp_path / "home"
    register(home, tmp_path, "web", "six>=1.16\n", "requirements.txt", "--tag", "team=web", "--description",
             "the web service")
    register(home, tmp_path, "web", "six>=1.16\nidna\n")
    register(home, tmp_path, "etl", "packaging\n", "requirements.txt", "--tag", "team=data")
    with ui_server(home) as base, chromium() as browser:
        browser.get(base + "/")
        table = wait_for(browser, "#environments")
        rows = {row.find_element(By.CSS_SELECTOR, "td a").text: row.text
                for row in table.find_elements(By.CSS_SELECTOR, "tbody tr")}
        assert set(rows) == {"web", "etl"}
        assert " 2 " in f" {rows['web']} " and "never" in rows["web"]  # latest version, not built yet
        assert "python-minimal" in browser.find_element(By.ID, "curated").text  # curated ones apart
        browser.save_screenshot(str(tmp_path / "environments.png"))

        browser.get(base + "/?tag=team=data")
        names = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "#environments tbody td:first-child a")]
        assert names == ["etl"]

        browser.get(base + "/env/web/2")
        browser.find_element(By.ID, "diff-previous").click()
        changes = wait_for(browser, "#changes", "idna")
        assert "added" in changes.text and "six" not in changes.text  # only what changed is named
        browser.save_screenshot(str(tmp_path / "diff.png"))

    api = cli_json("diff", "web:1", "web:2", "--cache-dir", str(home))
    assert [c["item"] for c in api["changes"]] == ["idna"]


def test_broken_yaml_shows_the_cli_error_and_registers_nothing(tmp_path):
    home = tmp_path / "home"
    spec = write(tmp_path / "cli" / "environment.yml", BROKEN)
    expected = cli("env", "create", "--file", "environment.yml", "--cache-dir", str(home), check=False,
                   cwd=spec.parent)
    assert expected.returncode != 0
    with ui_server(home) as base, chromium() as browser:
        browser.get(base + "/create")
        browser.find_element(By.ID, "text").send_keys(BROKEN)
        browser.find_element(By.ID, "filename").send_keys("environment.yml")
        browser.find_element(By.ID, "register").click()
        error = wait_for(browser, "#error")
        assert error.text.splitlines()[0] == expected.stderr.splitlines()[0]
        assert error.text.splitlines()[0].startswith("envbuild: error: environment.yml:5: not valid YAML")
        browser.save_screenshot(str(tmp_path / "create-error.png"))
        assert httpx.get(base + "/api/environments").json() == []


def test_off_loopback_the_ui_needs_its_token(tmp_path):
    home = tmp_path / "home"
    refused = subprocess.run(command("ui", "--host", "0.0.0.0", "--port", str(free_port()), "--cache-dir",
                                     str(home)), check=False, env=environment(), capture_output=True, text=True,
                             timeout=60)
    assert refused.returncode != 0 and "refusing to listen on 0.0.0.0 without a token" in refused.stderr

    token = uuid.uuid4().hex
    with ui_server(home, "--token", token, host="0.0.0.0", token=token) as base:
        assert httpx.get(base + "/api/environments").status_code == 401
        assert httpx.get(base + "/api/environments", headers={"Authorization": "Bearer wrong"}).status_code == 401
        created = httpx.post(base + "/api/environments", data={"text": "six\n", "filename": "requirements.txt",
                                                               "name": "sneaky"})
        assert created.status_code == 401
        allowed = {"Authorization": f"Bearer {token}"}
        assert httpx.get(base + "/api/environments", headers=allowed).json() == []  # nothing was registered
        created = httpx.post(base + "/api/environments", headers=allowed,
                             data={"text": "six\n", "filename": "requirements.txt", "name": "allowed"})
        assert created.status_code == 201 and created.json()["version"] == "1"
        with chromium() as browser:
            browser.get(base + f"/?token={token}")  # once: the server trades it for a cookie
            assert "token" not in browser.current_url
            assert "allowed" in wait_for(browser, "#environments").text


def test_pasted_yaml_becomes_version_1_and_its_build_streams_to_the_image(engine, tmp_path):
    home = tmp_path / "home"
    marker = uuid.uuid4().hex[:12]
    text = f"name: uitest\ndependencies:\n  - pip:\n    - six\nvariables:\n  UI_TEST: '{marker}'\n"
    images = []
    try:
        with ui_server(home) as base, chromium() as browser:
            browser.get(base + "/create")
            browser.find_element(By.ID, "text").send_keys(text)
            browser.find_element(By.ID, "filename").send_keys("environment.yml")
            browser.find_element(By.ID, "description").send_keys("made in the browser")
            browser.find_element(By.ID, "register-build").click()

            result = wait_for(browser, "#image", "v1:", timeout=600)
            log = browser.find_element(By.ID, "log").text
            assert "envbuild: building uitest:1" in log and "envbuild: build: built" in log
            assert any(line.startswith("#") for line in log.splitlines())  # BuildKit's own lines, streamed
            assert browser.find_element(By.ID, "state").text == "done: built"
            entry = cli_json("env", "show", "--name", "uitest", "--cache-dir", str(home))
            assert entry["version"] == "1" and entry["description"] == "made in the browser"
            built = entry["builds"][0]
            images.append(built["image"])
            assert built["build_key"] in result.text and "built" in result.text
            browser.save_screenshot(str(tmp_path / "build.png"))

            browser.set_window_size(1280, 2200)  # the whole version page in its screenshot
            browser.get(base + "/env/uitest/1")
            assert "FROM " in wait_for(browser, "#dockerfile").text
            lock = browser.find_element(By.ID, "lock").text
            assert "six" in lock and "files.pythonhosted.org" in lock
            assert built["build_key"] in browser.find_element(By.ID, "images").text
            browser.save_screenshot(str(tmp_path / "version.png"))

            # A build started from the command line on the same home shows up on an open page, live.
            browser.set_window_size(1280, 900)
            browser.get(base + "/builds")
            spec = write(tmp_path / "cli" / "environment.yml", text)
            process = subprocess.Popen(command("build", str(spec), "--rebuild", "--cache-dir", str(home), "-q"),
                                       env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            table = wait_for(browser, "#builds", f"process {process.pid}", timeout=120)
            browser.get(_row_link(table, process.pid))
            followed = wait_for(browser, "#image", built["build_key"], timeout=600)
            assert "built" in followed.text
            assert process.wait(timeout=600) == 0
            browser.save_screenshot(str(tmp_path / "build-cli.png"))

            browser.get(base + "/cache")
            assert built["build_key"] in wait_for(browser, "#entries").text
            assert browser.find_elements(By.CSS_SELECTOR, "svg.chart rect.miss")
            browser.save_screenshot(str(tmp_path / "cache.png"))
    finally:
        for image in images:
            docker("rmi", image, check=False)


def _row_link(table, pid: int) -> str:
    """The address of the build that process `pid` runs, from its row of the builds table."""
    for row in table.find_elements(By.CSS_SELECTOR, "tbody tr"):
        if f"process {pid}" in row.text:
            return row.find_element(By.CSS_SELECTOR, "td a").get_attribute("href")
    pytest.fail(f"no build of process {pid} listed")


def test_on_a_team_catalog_the_ui_shows_what_another_machine_registered(postgres, tmp_path):
    url = postgres.new_database()
    register(tmp_path / "machine-a", tmp_path, "shared-env", "six\n", "requirements.txt", "--catalog", url,
             "--description", "registered on machine A")
    with ui_server(tmp_path / "machine-b", "--catalog", url) as base, chromium() as browser:
        browser.get(base + "/")
        table = wait_for(browser, "#environments", "shared-env")
        assert "registered on machine A" in table.text
        header = browser.find_element(By.CSS_SELECTOR, "header .where").text
        assert "postgresql" in header and "not-a-secret" not in header  # which catalog, never its password
        browser.get(base + "/env/shared-env/1")
        assert "six" in wait_for(browser, "#definition").text
