"""Progress lines: what a rank prints is what the control plane reads back."""

import io

from hypothesis import given, settings
from hypothesis import strategies as st

from suan.progress import Progress, parse, report, scan


def test_a_reported_step_reads_back_with_its_fields():
    out = io.StringIO()
    report(12, tokens=4096, step_time_s=0.25, stream=out)
    assert parse(out.getvalue()) == Progress(step=12, tokens=4096, step_time_s=0.25)


def test_other_output_and_malformed_progress_lines_are_ignored():
    text = (
        "loss 0.3\n"
        '{"suan": "progress", "step": -1}\n'
        '{"suan": "progress", "step": "7"}\n'
        '{"suan": "progress", "step": 3, "tokens": true}\n'
        '{"suan": "progress", "step": 4\n'
        '{"other": "progress", "step": 5}\n'
    )
    found, used = scan(text)
    assert found == [Progress(step=3)]
    assert used == len(text)


def test_a_partial_last_line_is_left_for_the_next_read():
    whole = '{"suan": "progress", "step": 1}\n'
    found, used = scan(whole + '{"suan": "prog')
    assert found == [Progress(step=1)] and used == len(whole)


@settings(max_examples=100, derandomize=True)
@given(
    st.integers(0, 2**40),
    st.none() | st.integers(0, 2**40),
    st.none() | st.floats(0, 1e6, allow_nan=False),
)
def test_every_record_survives_the_round_trip(step, tokens, step_time):
    out = io.StringIO()
    report(step, tokens=tokens, step_time_s=step_time, stream=out)
    assert scan(out.getvalue())[0] == [Progress(step, tokens, step_time)]
