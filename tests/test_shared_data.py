"""The one setting for the shared data folder (suan.data) and the peers' figures file
(suan.sim.published)."""

from __future__ import annotations

from pathlib import Path

import pytest

from suan import data
from suan.errors import SpecError
from suan.sim import reproduce
from suan.sim.published import COLUMNS, DATA, published, read_figures


def test_the_folder_is_shared_beside_the_checkout_unless_the_setting_names_one(
        monkeypatch, tmp_path):
    monkeypatch.delenv(data.ENV, raising=False)
    assert data.shared_dir() == Path(__file__).resolve().parents[1].parent / "shared"
    monkeypatch.setenv(data.ENV, str(tmp_path))
    assert data.shared_dir() == tmp_path
    assert data.shared_path("traces", "philly") == tmp_path / "traces" / "philly"


def test_a_missing_folder_is_an_error_naming_the_setting(monkeypatch, tmp_path):
    monkeypatch.setenv(data.ENV, str(tmp_path / "nowhere"))
    with pytest.raises(SpecError) as caught:
        data.require_shared("traces")
    problem = caught.value.problems[0]
    assert problem.path == "SUAN_SHARED" and "set SUAN_SHARED" in problem.message
    assert caught.value.source == str(tmp_path / "nowhere" / "traces")
    (tmp_path / "nowhere" / "traces").mkdir(parents=True)
    assert data.require_shared("traces") == tmp_path / "nowhere" / "traces"


def test_none_declares_the_data_absent(monkeypatch):
    monkeypatch.setenv(data.ENV, "none")
    assert data.declared_absent()
    with pytest.raises(SpecError, match="SUAN_SHARED=none"):
        data.require_shared("traces")
    monkeypatch.setenv(data.ENV, "/somewhere")
    assert not data.declared_absent()


def test_every_reproduction_reads_the_data_through_the_setting(monkeypatch, tmp_path):
    monkeypatch.setenv(data.ENV, str(tmp_path))
    (tmp_path / "traces" / "philly").mkdir(parents=True)
    (tmp_path / "traces" / "philly" / "x.csv").write_text("")
    assert reproduce.philly("x.csv") == tmp_path / "traces" / "philly" / "x.csv"
    with pytest.raises(SpecError, match="SUAN_SHARED"):
        reproduce.peer_input("tiresias/60_job.csv")


def test_every_shipped_figure_has_a_source_and_an_https_url():
    figures = read_figures()
    assert len(figures) >= 29
    for figure in figures.values():
        assert figure.source.strip() and figure.url.startswith("https://github.com/")
        assert figure.value > 0 and figure.metric == "avg_jct_s"


def test_every_peer_run_has_its_figure_in_the_file():
    for trace, _, cluster, _, peer, policy in reproduce.PEER_RUNS:
        assert published(peer, policy, trace, cluster).trace == trace
    for policy in ("fifo", "dlas-gpu", "shortest-gpu"):
        for nodes in ("contended_nodes.csv", "philly_vc_nodes_helios.csv"):
            assert reproduce.tiresias_per_vc(policy, nodes) > 0


def test_the_loader_reads_what_the_file_says(tmp_path):
    path = tmp_path / "figures.csv"
    path.write_text(",".join(COLUMNS) + "\nGavel,fifo,gavel/t.trace,4x4xV100,avg_jct_s,12.5,"
                    "\"run, recorded here\",https://example.org/gavel\n")
    (figure,) = read_figures(path).values()
    assert (figure.peer, figure.policy, figure.cluster, figure.value) == (
        "Gavel", "fifo", "4x4xV100", 12.5)
    assert figure.source == "run, recorded here"


@pytest.mark.parametrize(("row", "field"), [
    ("Gavel,fifo,t,c,avg_jct_s,12.5,,https://example.org", "line 2: source"),
    ("Gavel,fifo,t,c,avg_jct_s,fast,s,https://example.org", "line 2: value"),
    ("Gavel,fifo,t,c,avg_jct_s,12.5,s,example.org", "line 2: url"),
])
def test_a_figure_without_a_source_or_a_number_is_refused(tmp_path, row, field):
    path = tmp_path / "figures.csv"
    path.write_text(",".join(COLUMNS) + "\n" + row + "\n")
    with pytest.raises(SpecError) as caught:
        read_figures(path)
    assert [problem.path for problem in caught.value.problems] == [field]


def test_a_figure_listed_twice_or_a_missing_column_is_refused(tmp_path):
    path = tmp_path / "figures.csv"
    row = "Gavel,fifo,t,c,avg_jct_s,12.5,s,https://example.org\n"
    path.write_text(",".join(COLUMNS) + "\n" + row + row)
    with pytest.raises(SpecError, match="line 3: listed twice"):
        read_figures(path)
    path.write_text("peer,policy\nGavel,fifo\n")
    with pytest.raises(SpecError, match="missing column trace"):
        read_figures(path)


def test_an_unknown_setup_names_itself():
    with pytest.raises(KeyError, match="no-such-policy"):
        published("Gavel", "no-such-policy", "gavel/x.trace", "4x4xV100")
    assert DATA.is_file()
