"""A team's catalog: two envbuild homes (two machines) on one real PostgreSQL server.

Registrations from many processes on both homes get consecutive, distinct versions that both homes see; a version
registered from a build context builds and runs after its files are edited, and from the other home; a catalog
URL that names no reachable catalog says so in one message, without the password.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from envbuild.errors import CatalogError
from tests.conftest import write
from tests.support.cli import cli, cli_json, command, environment
from tests.support.postgres import PASSWORD


@pytest.fixture
def team(postgres, tmp_path):
    """Two homes, one catalog: the variables each machine's shell would have."""
    url = postgres.new_database()
    return url, [{"ENVBUILD_HOME": str(tmp_path / f"machine-{n}"), "ENVBUILD_CATALOG": url} for n in "ab"]


def test_eight_processes_on_two_machines_get_versions_one_to_eight_seen_from_both(team, tmp_path):
    _, machines = team
    specs = [write(tmp_path / f"spec-{n}" / "requirements.txt", f"pkg-{n}\n") for n in range(8)]
    cli("env", "list", env=machines[0])  # the schema exists before the race (its creation races are tested below)
    processes = [subprocess.Popen(command("env", "create", "--file", str(spec), "--name", "shared", "--json"),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=environment(machines[n % 2]))
                 for n, spec in enumerate(specs)]
    created = {}
    for spec, process in zip(specs, processes):
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        created[json.loads(out)["version"]] = spec.read_text().strip()
    assert sorted(created, key=int) == [str(n) for n in range(1, 9)]
    for machine in machines:
        history = cli_json("history", "shared", env=machine)
        assert [v["version"] for v in history["versions"]] == sorted(created, key=int)
        for version, package in created.items():
            shown = cli_json("env", "show", "--name", "shared", "--version", version, env=machine)
            assert shown["definition"]["python"]["conda_dependencies"]["pip_packages"] == [package]


def test_the_first_processes_on_an_empty_catalog_create_its_schema_once(team, tmp_path):
    _, machines = team
    spec = write(tmp_path / "requirements.txt", "six\n")
    processes = [subprocess.Popen(command("env", "create", "--file", str(spec), "--name", "same", "--json"),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=environment(machines[n % 2])) for n in range(4)]
    results = [process.communicate(timeout=300) for process in processes]
    assert all(process.returncode == 0 for process in processes), [err for _, err in results]
    assert {json.loads(out)["version"] for out, _ in results} == {"1"}


@pytest.mark.parametrize("how", ["variable", "option"])
def test_an_unreachable_or_wrong_catalog_url_is_one_message_without_the_password(postgres, home, how):
    urls = {
        f"postgresql://envbuild:{PASSWORD}@127.0.0.1:1/catalog": "cannot open the catalog "
                                                                 "postgresql://envbuild:***@127.0.0.1:1/catalog",
        postgres.url("no_such_database"): 'database "no_such_database" does not exist',
        f"mysql://envbuild:{PASSWORD}@127.0.0.1/catalog": "unsupported catalog URL mysql://envbuild:***@",
    }
    for url, said in urls.items():
        args, env = (("env", "list"), {"ENVBUILD_CATALOG": url}) if how == "variable" else \
            (("env", "list", "--catalog", url), None)
        done = cli(*args, env=env, check=False)
        assert done.returncode == CatalogError.exit_code, done.stderr
        assert said in done.stderr and PASSWORD not in done.stderr + done.stdout
        assert done.stderr.count("envbuild: error:") == 1 and "Traceback" not in done.stderr
        assert "--catalog" in done.stderr  # the fix names where the URL comes from


def test_a_build_context_version_runs_after_its_files_change_and_from_the_other_machine(engine, team, tmp_path):
    _, machines = team
    context = tmp_path / "context"
    write(context / "Dockerfile", "FROM envbuild/python:3.11-bookworm\nCOPY data.txt /data.txt\n")
    write(context / "data.txt", "registered\n")
    created = cli_json("env", "create", "--file", str(context / "Dockerfile"), "--name", "ctx", env=machines[0])
    write(context / "data.txt", "edited\n")
    (context / "Dockerfile").unlink()

    first = cli("run", "ctx:1", "--", "cat", "/data.txt", env=machines[0], cwd=tmp_path)
    assert first.stdout == "registered\n"
    other = cli("run", "azureml:ctx:1", "--", "cat", "/data.txt", env=machines[1], cwd=tmp_path)
    assert other.stdout == "registered\n"
    shown = cli_json("env", "show", "--name", "ctx", "--version", "1", env=machines[1])
    (build,) = shown["builds"]  # one image, recorded once, whichever machine ran it first
    assert build["spec_key"] == created["key"] == shown["key"]
