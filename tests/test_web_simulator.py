"""The Simulator page's reading of uploaded documents: replay and pack JSON become tables and
charts; anything else is one clear sentence."""

from __future__ import annotations

import json

import pytest

from suan.web.simulator import MAX_UPLOAD_BYTES, BadDocument, parse_document, sim_report

PACK = {
    "nodes": "nodes.csv", "pods": "pods.csv", "inflate": 1.0, "seeds": [1, 2],
    "placements": {
        "fgd": {"unallocated_gpu_pct_at_100": 4.5, "fragmented_gpus_at_100": 2.0,
                "seeds": [1, 2], "per_seed": [4.0, 5.0]},
        "random": {"unallocated_gpu_pct_at_100": 9.25, "fragmented_gpus_at_100": 6.0,
                   "seeds": [1, 2], "per_seed": [9.0, 9.5]},
    },
    "published": {},
}


def test_a_pack_document_gives_one_row_per_strategy_with_its_numbers():
    report = sim_report(parse_document(json.dumps(PACK).encode()))
    assert report.kind == "pack"
    assert report.columns == ["fragmented_gpus_at_100", "unallocated_gpu_pct_at_100"]
    assert report.rows == [
        {"name": "fgd", "fragmented_gpus_at_100": 2.0, "unallocated_gpu_pct_at_100": 4.5},
        {"name": "random", "fragmented_gpus_at_100": 6.0, "unallocated_gpu_pct_at_100": 9.25},
    ]
    assert report.about == {"nodes": "nodes.csv", "pods": "pods.csv", "inflate": 1.0}
    assert len(report.charts) == 2 and all(c.startswith("<svg") for c in report.charts)


@pytest.mark.parametrize(("data", "words"), [
    (b"\xff\xfe", "not JSON"),
    (b"{", "not JSON"),
    (b"[1]", "not an object"),
    (b'{"policies": {}}', "no `policies`"),
    (b'{"jobs": 3}', "no `policies`"),
    (b'{"placements": {"fgd": 3}}', "must be an object"),
])
def test_other_files_are_refused_in_words(data, words):
    with pytest.raises(BadDocument, match=words):
        sim_report(parse_document(data))


def test_an_oversized_file_is_refused_before_parsing():
    with pytest.raises(BadDocument, match="larger than 16 MiB"):
        parse_document(b" " * (MAX_UPLOAD_BYTES + 1))
