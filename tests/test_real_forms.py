"""What real users write, beyond the loader (tests/specs/ has the canonical forms): each case locks, renders and
reports as the tool the user came from would, or fails with one message that says what, where and the fix.

Unit tier: no engine. Render runs against a nominal BaseImage (as tests/test_run.py does); the conda solve uses the
tests' local channel; uv's failure output is a recorded one (the real sdist build runs on PyPI's files).
"""

from __future__ import annotations

import json
import logging

import pytest

from envbuild.api import lock_python
from envbuild.bases import BaseImage
from envbuild.errors import ResolveError, SpecError
from envbuild.keys import canonical_spec
from envbuild.renderer import render
from envbuild.resolver import read_lock_set, resolve
from envbuild.resolver.pip import _uv_error
from envbuild.spec import Environment
from tests.support.cli import run_main
from tests.support.spec_cases import SPECS

NOMINAL = BaseImage(ref="base:nominal", id="nominal", python_version="3.11", glibc="2.36", from_ref="base:nominal")
MULTI = SPECS / "lock/multi-category/conda-lock.yml"
MD5 = SPECS / "lock/md5-only/conda-lock.yml"


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# -- conda-lock files --------------------------------------------------------------------------------------------


def test_lock_categories_are_chosen_with_extras_and_reported(capsys, home, tmp_path):
    code, _, err = run_main(capsys, "lock", str(MULTI), "-o", str(tmp_path / "main.yml"))
    assert code == 0 and "1 of 3 packages: main (not chosen: dev 1, test 1; add them with --extras NAME)" in err
    code, _, err = run_main(capsys, "lock", str(MULTI), "--extras", "dev", "-o", str(tmp_path / "dev.yml"))
    assert code == 0 and "2 of 3 packages: main, dev (not chosen: test 1" in err and "2 packages" in err
    code, _, err = run_main(capsys, "lock", str(MULTI), "--dev", "-e", "test", "-o", str(tmp_path / "all.yml"))
    assert code == 0 and "3 of 3 packages" in err
    code, _, err = run_main(capsys, "lock", str(MULTI), "--extras", "docs")
    assert code != 0 and "no category 'docs'" in err and "dev, main, test" in err


def test_lock_categories_change_what_is_installed_and_the_key():
    main = Environment.from_file(MULTI)
    dev = Environment.from_file(MULTI)
    dev.lock_categories = ("main", "dev")
    assert main.key != dev.key
    names = {p.name for p in resolve(canonical_spec(dev)).packages}
    assert names == {"python", "pytest"}
    assert {p.name for p in read_lock_set(MULTI).locks[0].packages} == {"python"}


def test_extras_on_a_spec_that_is_not_a_lock_file_is_refused(capsys, home):
    code, _, err = run_main(capsys, "key", str(SPECS / "conda/bare-name/environment.yml"), "--dev")
    assert code != 0 and "--extras/--dev choose categories of a conda-lock.yml" in err and "fix:" in err


def test_md5_only_lock_renders_and_its_installer_checks_md5(tmp_path):
    spec = canonical_spec(Environment.from_file(MD5))
    lock = resolve(spec)
    plan = render(spec, lock, NOMINAL)
    manifest = json.loads(plan.context["conda/packages.json"].data)
    assert manifest == [{"filename": "python-3.11.9-hb806964_0_cpython.conda", "md5": "ac68acfa8b558ed406c75e98d3428d7b",
                         "url": "https://conda.anaconda.org/conda-forge/linux-64/python-3.11.9-hb806964_0_cpython.conda"}]
    assert plan.lock_key == lock.key
    # Another md5 is another lock (the key is over the hash when there is no sha256).
    other = MD5.read_text().replace("ac68acfa8b558ed406c75e98d3428d7b", "bc68acfa8b558ed406c75e98d3428d7b")
    assert resolve(canonical_spec(Environment.from_file(write(tmp_path / "conda-lock.yml", other)))).key != lock.key


def test_lock_prints_the_key_build_labels_images_with(capsys, home, tmp_path):
    given = (SPECS / "lock/two-platforms/conda-lock.yml").read_text()
    two = write(tmp_path / "given" / "conda-lock.yml", given.replace("  manager: conda\n",
                                                                     "  manager: conda\n  optional: false\n"))
    code, _, err = run_main(capsys, "lock", str(two), "-o", str(tmp_path / "one.yml"))
    single = read_lock_set(two, ["linux-64"])
    assert code == 0 and f"linux-64: {len(single.locks[0].packages)} packages, lock {single.locks[0].key})" in err
    assert "lock set" not in err
    code, _, err = run_main(capsys, "lock", str(two), "-p", "linux-64", "-p", "osx-arm64", "-o",
                            str(tmp_path / "two.yml"))
    both = read_lock_set(two, ["linux-64", "osx-arm64"])
    assert code == 0 and all(f"lock {lock.key}" in err for lock in both.locks) and f"lock set {both.key}" in err
    assert render(canonical_spec(Environment.from_file(two)), single.locks[0], NOMINAL).lock_key == single.locks[0].key


def test_a_directory_prefers_its_lock_file_and_says_so(tmp_path, caplog):
    project = tmp_path / "project"
    write(project / "conda-lock.yml", MD5.read_text())
    assert Environment.from_file(project).lock_file == str((project / "conda-lock.yml").resolve())
    write(project / "environment.yml", "channels: [conda-forge]\ndependencies: [numpy]\n")
    with caplog.at_level(logging.WARNING):
        env = Environment.from_file(project)
    assert env.lock_file and "loading conda-lock.yml, not environment.yml" in caplog.text


# -- python in every environment, --python ------------------------------------------------------------------------


def test_an_environment_of_no_packages_still_has_python(tmp_path):
    spec = canonical_spec(Environment.from_file(write(tmp_path / "requirements.txt",
                                                      'pywin32==306 ; sys_platform == "win32"\n')))
    lock = resolve(spec._replace(pip=()), python_version="3.11")  # what the markers leave on linux: nothing
    dockerfile = render(spec, lock, NOMINAL).dockerfile
    assert "RUN python3 -m venv /opt/env" in dockerfile and "ENV PATH=/opt/env/bin:$PATH" in dockerfile
    assert "COPY --from=env-installer /opt/env /opt/env" in dockerfile


def test_python_of_a_pip_only_build_must_be_the_bases(tmp_path):
    spec = canonical_spec(Environment.from_file(write(tmp_path / "requirements.txt", "idna==3.7\n")))
    assert lock_python(spec, NOMINAL, None) == "3.11" and lock_python(spec, NOMINAL, "3.11") == "3.11"
    with pytest.raises(SpecError) as caught:
        lock_python(spec, NOMINAL, "3.8")
    assert "has Python 3.11" in caught.value.what and "--base-image" in caught.value.fix
    assert str(tmp_path / "requirements.txt") in caught.value.where


def test_python_of_a_conda_environment_is_pinned_in_it(capsys, home, tmp_path):
    spec = write(tmp_path / "environment.yml", "channels: [conda-forge]\ndependencies: [python=3.11, numpy]\n")
    from envbuild.commands import with_python

    env = with_python(Environment.from_file(spec), "3.10")
    assert env.python.conda_dependencies.conda_packages[0] == "python=3.10"
    with pytest.raises(SpecError):
        with_python(Environment.from_file(MD5), "3.10")


# -- messages ---------------------------------------------------------------------------------------------------

# What uv 0.9 prints when `sklearn==0.0.post12` (an sdist whose setup.py refuses) is locked, cut to its shape.
UV_BUILD_FAILURE = "error: Failed to build `sklearn==0.0.post12`\n  cause: The build backend returned an error\n" \
    "  cause: Call to `setuptools.build_meta:__legacy__.get_requires_for_build_wheel` failed (exit status: 1)\n\n" \
    "         [stderr]\n" + "".join(f"         Traceback line {n}\n" for n in range(40)) + \
    "         The 'sklearn' PyPI package is deprecated, use 'scikit-learn'\n\n" \
    "hint: `sklearn` is often confused for `scikit-learn`. Did you mean to install `scikit-learn` instead?\n"


def test_a_pip_package_that_fails_to_build_is_named_with_the_lines_that_explain_it():
    error = _uv_error(UV_BUILD_FAILURE, "3.11", "linux-64")
    assert error.what.startswith("pip package sklearn==0.0.post12 cannot be built for Python 3.11 on linux-64")
    assert "Failed to build `sklearn==0.0.post12`" in error.what  # uv's first lines are kept
    assert "deprecated, use 'scikit-learn'" in error.what and "Did you mean" in error.what  # and its last
    assert "lines cut" in error.what and "Traceback line 20" not in error.what
    assert "sklearn" in error.fix
    other = _uv_error("error: No solution found when resolving dependencies:\n  Because nope was not found...\n",
                      "3.11", "linux-64")
    assert other.what.startswith("pip requirements cannot be resolved") and "nope was not found" in other.what


def test_a_missing_conda_package_names_its_line(tmp_path, conda_channel):
    spec = write(tmp_path / "environment.yml",
                 f"channels: [{conda_channel.as_uri()}]\ndependencies:\n  - libgreet\n  - no-such-package\n")
    with pytest.raises(ResolveError) as caught:
        resolve(canonical_spec(Environment.from_file(spec)))
    assert caught.value.where == f"{spec}:4" and "no-such-package" in caught.value.what


def test_user_managed_packages_are_warned_about_and_not_keyed(tmp_path, caplog):
    def env(*packages):
        return Environment.from_file(write(tmp_path / f"u{len(packages)}" / "environment.yml",
                                           "name: byo\nimage: python:3.11\nconda_file:\n  channels: [conda-forge]\n"
                                           f"  dependencies: [{', '.join(packages) or 'python=3.11'}]\n"
                                           "envbuild:\n  user_managed_dependencies: true\n"))

    with caplog.at_level(logging.WARNING):
        numpy = env("python=3.11", "numpy")
        assert numpy.key == env().key == env("scipy", "pandas", "torch").key
    assert "packages listed are not installed" in caplog.text
    assert canonical_spec(numpy).conda == () and canonical_spec(numpy).user_managed


def test_inference_config_is_warned_about_at_its_line(tmp_path, caplog):
    path = write(tmp_path / "env.yml", "name: serve\nimage: python:3.11\ninference_config:\n"
                                       "  scoring_route: {port: 5001, path: /score}\n")
    with caplog.at_level(logging.WARNING):
        Environment.from_file(path)
    assert f"{path}:3: `inference_config` is not used" in caplog.text
