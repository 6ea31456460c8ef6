"""``hall config check FILE``."""

from __future__ import annotations

import io
from pathlib import Path

from hall.config.check import check_command

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_valid_file_prints_summary_and_exits_0() -> None:
    out, err = io.StringIO(), io.StringIO()
    code = check_command(str(EXAMPLES / "county-hall.toml"), out=out, err=err)
    assert code == 0
    assert err.getvalue() == ""
    text = out.getvalue()
    assert "1 halls, 14 services, 44 counters" in text
    assert "33 devices" in text


def test_invalid_file_prints_every_issue_with_its_path_and_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        """
[[halls]]
id = "h"
name = "大厅"
timezone = "Nowhere/City"
[[halls.services]]
code = "a"
name = "甲"
prefix = "a"
""",
        encoding="utf-8",
    )
    out, err = io.StringIO(), io.StringIO()
    code = check_command(str(path), out=out, err=err)
    assert code == 1
    assert out.getvalue() == ""
    lines = err.getvalue().splitlines()
    assert any("halls[0].timezone" in line and "Nowhere/City" in line for line in lines)
    assert any("halls[0].services[0].prefix" in line and "'a'" in line for line in lines)
    assert lines[-1].endswith("2 problems, configuration not valid")


def test_missing_file_exits_1(tmp_path: Path) -> None:
    err = io.StringIO()
    assert check_command(str(tmp_path / "nope.toml"), out=io.StringIO(), err=err) == 1
    assert "cannot read file" in err.getvalue()


HALL = """
[[halls]]
id = "h"
name = "大厅"
[[halls.services]]
code = "a"
name = "甲"
prefix = "A"
"""


def _problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "bad.toml"
    path.write_text(HALL + text, encoding="utf-8")
    err = io.StringIO()
    assert check_command(str(path), out=io.StringIO(), err=err) == 1
    return err.getvalue().splitlines()[:-1]


def test_evaluation_settings_are_checked_with_their_key_paths(tmp_path: Path) -> None:
    fields = _problems(
        tmp_path,
        """
[evaluation]
followup_days = 0
[evaluation.upstream]
url = "ftp://platform"
""",
    )
    assert [line.split(": ")[1] for line in fields] == [
        "evaluation.followup_days",
        "evaluation.upstream.url",
    ]
    reasons = _problems(
        tmp_path,
        '[evaluation]\nbad_reasons = [{ code = "slow", text = "慢" }, '
        '{ code = "slow", text = "很慢" }]\n',
    )
    assert len(reasons) == 1
    assert "evaluation.bad_reasons[1].code: duplicate reason code 'slow'" in reasons[0]
    owner = _problems(tmp_path, '[evaluation]\nfollowup_owner = "nobody"\n')
    assert len(owner) == 1
    assert "evaluation.followup_owner: followup_owner names unknown staff 'nobody'" in owner[0]
