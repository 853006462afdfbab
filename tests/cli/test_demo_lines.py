"""What `golive demo` prints after the run, read from the evidence it left."""

from __future__ import annotations

import json

from cli.demo import _shadow_lines
from golive import layout


def test_the_demo_prints_the_shadow_stages_own_checks_at_its_last_decision(tmp_path):
    rows = [{"Stage": "shadow", "Decision": "Hold", "shadow": ["consistency drift: insufficient: 3 matched pairs"]},
            {"Stage": "shadow", "Decision": "Proceed", "shadow": ["stable's api_p95_ms with the mirror on: 131",
                                                                  "consistency drift: pass: 84 pairs"]},
            {"Stage": "1%", "Decision": "Proceed"}]
    (tmp_path / layout.WAR_ROOM_JSON).write_text(json.dumps(rows))
    assert _shadow_lines(tmp_path) == ["shadow (Proceed): stable's api_p95_ms with the mirror on: 131",
                                       "shadow (Proceed): consistency drift: pass: 84 pairs"]


def test_a_go_live_without_a_shadow_stage_or_a_war_room_prints_no_shadow_line(tmp_path):
    assert _shadow_lines(tmp_path) == []
    (tmp_path / layout.WAR_ROOM_JSON).write_text(json.dumps([{"Stage": "1%", "Decision": "Proceed"}]))
    assert _shadow_lines(tmp_path) == []
