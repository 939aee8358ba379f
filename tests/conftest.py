"""Test configuration: make the scenario helpers importable; engines start once per session;
the shared data folder for the tests that read public traces."""

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from browser import start_browser
from engines import start_engine

from suan.data import ENV, declared_absent, require_shared
from suan.errors import SpecError


@pytest.fixture(scope="session")
def shared():
    """parts -> the path of `parts` under the shared data folder (suan.data). A missing folder
    or file fails the asking test, naming the setting to change; with SUAN_SHARED=none (the
    data absent on purpose) the test is skipped instead."""

    def get(*parts: str) -> Path:
        if declared_absent():
            pytest.skip(f"{ENV}=none: the shared data is absent")
        try:
            return require_shared(*parts)
        except SpecError as error:
            missing = str(error)
        pytest.fail(f"{missing}\n({ENV}=none skips the tests that need the shared data)",
                    pytrace=False)

    return get


@pytest.fixture(scope="session")
def engines_started(tmp_path_factory):
    """name -> the running EngineUnderTest, started on first use; skips the asking test (with
    the engine's reason) where the engine cannot run here; stops every engine at the end."""
    started: dict = {}
    workdir = tmp_path_factory.mktemp("engines")

    def get(name: str):
        if name not in started:
            started[name] = start_engine(name, workdir)
        if isinstance(started[name], str):
            pytest.skip(f"{name}: {started[name]}")
        return started[name]

    yield get
    for engine in started.values():
        if not isinstance(engine, str):
            engine.stop()


@pytest.fixture
def slurm_engine(engines_started):
    """The local Slurm cluster (skips, saying why, where it cannot run)."""
    return engines_started("slurm")


TENANT = "suan-tenant"


def account(name: str) -> pwd.struct_passwd:
    """The unprivileged OS account `name`, made if missing (as root; skips otherwise)."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    if os.geteuid() != 0 or shutil.which("useradd") is None:
        pytest.skip("running ranks as another account needs root and useradd")
    subprocess.run(["useradd", "--system", "--no-create-home", name], check=True)
    return pwd.getpwnam(name)


@pytest.fixture(scope="session")
def os_account():
    """An unprivileged OS account for jobs to run as."""
    return account(TENANT)


@pytest.fixture(scope="session")
def second_account(os_account):
    """A second tenant's account, for attacks of one tenant on another."""
    return account(TENANT + "2")


@pytest.fixture(scope="session")
def tenant_can_run_python(os_account):
    """Let other accounts execute this interpreter: it may live under a 0700 home (/root).

    Adds the search (x) bit for others on the directories above it that lack it, for the test
    session only, as an operator installing Suan system-wide would."""
    changed = []
    for path in (Path(sys.executable).resolve(), Path(sys.prefix).resolve()):
        for directory in path.parents:
            mode = directory.stat().st_mode
            if not mode & 0o001:
                directory.chmod(mode | 0o001)
                changed.append((directory, mode))
    yield os_account
    for directory, mode in reversed(changed):
        directory.chmod(mode)


@pytest.fixture
def open_home():
    """A server home that other accounts can traverse (pytest's own tmp dirs are 0700)."""
    home = Path(tempfile.mkdtemp(prefix="suan-home-"))
    home.chmod(0o755)
    yield home
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium (selenium WebDriver) for the whole session; skips the asking test,
    saying why, where the browser cannot be installed (not root and not installed)."""
    driver = start_browser()
    if isinstance(driver, str):
        pytest.skip(driver)
    yield driver
    driver.quit()
