"""Test configuration: make the scenario helpers importable; engines start once per session."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from engines import start_engine


@pytest.fixture(scope="session")
def engines_started(tmp_path_factory):
    """name -> EngineUnderTest or skip reason, filled lazily; stops every engine at the end."""
    started: dict = {}
    workdir = tmp_path_factory.mktemp("engines")

    def get(name: str):
        if name not in started:
            started[name] = start_engine(name, workdir)
        return started[name]

    yield get
    for engine in started.values():
        if not isinstance(engine, str):
            engine.stop()


@pytest.fixture
def slurm_engine(engines_started):
    """The local Slurm cluster (skips, saying why, where it cannot run)."""
    engine = engines_started("slurm")
    if isinstance(engine, str):
        pytest.skip(engine)
    return engine
