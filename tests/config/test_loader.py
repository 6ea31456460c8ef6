"""Loader: every kind of mistake is reported with the key path of the offending value."""

from __future__ import annotations

from pathlib import Path

import pytest

from hall.config.loader import (
    ConfigError,
    ConfigIssue,
    format_path,
    load_config,
    parse_config,
)
from hall.config.models import DeviceClass, MatterKind

BASE = """\
[[halls]]
id = "h1"
name = "测试县政务服务中心"
timezone = "Asia/Shanghai"
counters = [
{ number = 1, kind = "comprehensive", services = [{ code = "bdc" }, { code = "tax", weight = 2 }] },
{ number = 2, services = [{ code = "bdc" }] },
{ number = 3, services = [{ code = "tax" }] },
]
kiosks = [{ id = "k1", name = "取号机" }]
screens = [{ id = "s1", name = "综合屏", counters = [1, 2] }]

[halls.calendar]
holidays = [2026-10-01, 2026-10-02]
workdays = [2026-10-10]

[[halls.services]]
code = "bdc"
name = "不动产登记"
prefix = "A"
priority_classes = ["elderly"]

[[halls.services]]
code = "tax"
name = "税务"
prefix = "B"

[[departments]]
code = "zrzy"
name = "自然资源局"
hall = "h1"

[[matters]]
code = "000173002000"
impl_code = "IMPL-1"
name = "不动产首次登记"
department = "zrzy"
kind = "promised"
legal_days = 30
promised_days = 5
routes = [{ hall = "h1", services = ["bdc"] }]

[[staff]]
job_no = "001"
name = "张三"
halls = ["h1"]
counters = [1, 2]

[[buses]]
name = "bus1"
hall = "h1"
url = "/dev/ttyUSB0"

[[devices]]
bus = "bus1"
address = 1
class = "strip"
counter = 1

[[devices]]
bus = "bus1"
address = 2
class = "kiosk"
kiosk = "k1"

[[printers]]
name = "p1"
hall = "h1"
kiosk = "k1"
url = "/dev/usb/lp0"
"""


def edit(*pairs: tuple[str, str], base: str = BASE) -> str:
    text = base
    for old, new in pairs:
        assert text.count(old) == 1, f"test setup: {old!r} must occur once"
        text = text.replace(old, new)
    return text


def issues_of(text: str) -> list[ConfigIssue]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert caught.value.issues
    return caught.value.issues


def only_issue(text: str) -> ConfigIssue:
    issues = issues_of(text)
    assert len(issues) == 1, issues
    return issues[0]


def test_base_is_valid() -> None:
    config = parse_config(BASE)
    hall = config.halls[0]
    assert [c.number for c in hall.counters] == [1, 2, 3]
    assert config.devices[1].device_class is DeviceClass.KIOSK
    assert config.devices[1].target == "k1"
    assert config.matters[0].kind is MatterKind.PROMISED


def test_unknown_key_is_named_with_a_suggestion() -> None:
    issue = only_issue(edit(('timezone = "Asia/Shanghai"', "bussiness_hours = []")))
    assert issue.path == "halls[0].bussiness_hours"
    assert "unknown key 'bussiness_hours'" in issue.message
    assert "business_hours" in issue.message


def test_wrong_type_names_the_value() -> None:
    issue = only_issue(edit(("{ number = 3,", '{ number = "three",')))
    assert issue.path == "halls[0].counters[2].number"
    assert "'three'" in issue.message


def test_duplicate_counter_is_reported_at_the_repeat() -> None:
    issue = only_issue(edit(("{ number = 3,", "{ number = 2,")))
    assert issue.path == "halls[0].counters[2].number"
    assert "duplicate counter number 2" in issue.message


def test_counter_serving_unknown_service() -> None:
    issue = only_issue(edit(('{ code = "tax", weight = 2 }', '{ code = "nope", weight = 2 }')))
    assert issue.path == "halls[0].counters[0].services[1].code"
    assert "'nope'" in issue.message


def test_bad_prefix() -> None:
    issue = only_issue(edit(('prefix = "B"', 'prefix = "b1"')))
    assert issue.path == "halls[0].services[1].prefix"
    assert "'b1'" in issue.message


def test_prefix_shared_by_two_number_groups() -> None:
    issue = only_issue(edit(('prefix = "B"', 'prefix = "A"')))
    assert issue.path == "halls[0].services[1].prefix"
    assert "prefix 'A' is used by two number groups" in issue.message


def test_prefix_shared_inside_one_number_group_is_fine() -> None:
    text = edit(
        ('prefix = "B"', 'prefix = "A"\nnumber_group = "g"'),
        ('prefix = "A"\npriority_classes', 'prefix = "A"\nnumber_group = "g"\npriority_classes'),
    )
    assert parse_config(text).halls[0].services[1].group == "g"


def test_device_on_unknown_bus() -> None:
    issue = only_issue(edit(('bus = "bus1"\naddress = 1', 'bus = "bus9"\naddress = 1')))
    assert issue.path == "devices[0].bus"
    assert "'bus9'" in issue.message


def test_device_address_collision() -> None:
    issue = only_issue(edit(("address = 2\n", "address = 1\n")))
    assert issue.path == "devices[1].address"
    assert "duplicate (bus, address) ('bus1', 1)" in issue.message
    assert "devices[0].address" in issue.message


def test_device_address_outside_hb1_unicast_range() -> None:
    issue = only_issue(edit(("address = 2\n", "address = 240\n")))
    assert issue.path == "devices[1].address"
    assert "239" in issue.message
    assert "240" in issue.message


def test_device_pointing_at_missing_counter() -> None:
    issue = only_issue(edit(('class = "strip"\ncounter = 1', 'class = "strip"\ncounter = 99')))
    assert issue.path == "devices[0].counter"
    assert "counter 99" in issue.message
    assert "'h1'" in issue.message


def test_device_class_and_target_must_match() -> None:
    issues = issues_of(edit(('class = "strip"\ncounter = 1', 'class = "strip"\nkiosk = "k1"')))
    assert {i.path for i in issues} == {"devices[0].counter", "devices[0].kiosk"}


def test_printer_needs_exactly_one_of_url_and_tunnel() -> None:
    text = edit(
        ('url = "/dev/usb/lp0"', 'url = "/dev/usb/lp0"\ntunnel = { bus = "bus1", address = 2 }')
    )
    issue = only_issue(text)
    assert issue.path == "printers[0]"
    assert "exactly one of url or tunnel" in issue.message


def test_printer_tunnel_must_be_the_kiosk_device() -> None:
    text = edit(('url = "/dev/usb/lp0"', 'tunnel = { bus = "bus1", address = 1 }'))
    issue = only_issue(text)
    assert issue.path == "printers[0].tunnel.address"
    assert "bus1/1" in issue.message
    ok = edit(('url = "/dev/usb/lp0"', 'tunnel = { bus = "bus1", address = 2, port = 1 }'))
    tunnel = parse_config(ok).printers[0].tunnel
    assert tunnel is not None
    assert tunnel.port == 1


def test_printer_may_not_share_the_hb1_bus_port() -> None:
    issue = only_issue(edit(('url = "/dev/usb/lp0"', 'url = "/dev/ttyUSB0"')))
    assert issue.path == "printers[0].url"
    assert "'bus1'" in issue.message


def test_bus_url_and_baudrate_are_checked() -> None:
    issues = issues_of(edit(('url = "/dev/ttyUSB0"', 'url = "ttyUSB0"\nbaudrate = 4800')))
    by_path = {i.path: i.message for i in issues}
    assert set(by_path) == {"buses[0].url", "buses[0].baudrate"}
    assert "'ttyUSB0'" in by_path["buses[0].url"]
    assert "4800" in by_path["buses[0].baudrate"]


@pytest.mark.parametrize(
    "url", ["/dev/ttyS0", "COM3", "socket://192.168.1.20:4001", "rfc2217://edge-pc:7000"]
)
def test_bus_url_forms(url: str) -> None:
    config = parse_config(edit(('url = "/dev/ttyUSB0"', f'url = "{url}"')))
    assert config.buses[0].url == url
    assert config.buses[0].baudrate == 9600


def test_promised_days_over_legal_days() -> None:
    issue = only_issue(edit(("promised_days = 5", "promised_days = 31")))
    assert issue.path == "matters[0].promised_days"
    assert "promised_days 31 exceeds legal_days 30" in issue.message


def test_immediate_matter_has_zero_promised_days() -> None:
    issue = only_issue(edit(('kind = "promised"', 'kind = "immediate"')))
    assert issue.path == "matters[0].promised_days"
    assert "immediate" in issue.message
    text = edit(('kind = "promised"', 'kind = "immediate"'), ("promised_days = 5", ""))
    assert parse_config(text).matters[0].promised_days == 0


def test_matter_routed_to_unknown_service_and_department() -> None:
    issues = issues_of(
        edit(
            ('department = "zrzy"', 'department = "nope"'),
            ('services = ["bdc"]', 'services = ["x"]'),
        )
    )
    assert {i.path for i in issues} == {"matters[0].department", "matters[0].routes[0].services[0]"}


def test_unknown_time_zone() -> None:
    issue = only_issue(edit(('timezone = "Asia/Shanghai"', 'timezone = "Asia/Beijing"')))
    assert issue.path == "halls[0].timezone"
    assert "'Asia/Beijing'" in issue.message


def test_day_boundary_inside_business_hours() -> None:
    issue = only_issue(edit(('timezone = "Asia/Shanghai"', "day_boundary = 09:00:00")))
    assert issue.path == "halls[0].day_boundary"
    assert "09:00" in issue.message


def test_day_listed_as_holiday_and_workday() -> None:
    issue = only_issue(edit(("workdays = [2026-10-10]", "workdays = [2026-10-02]")))
    assert issue.path == "halls[0].calendar.workdays[0]"
    assert "2026-10-02" in issue.message


def test_unknown_priority_class_and_staff_references() -> None:
    issues = issues_of(
        edit(
            ('priority_classes = ["elderly"]', 'priority_classes = ["vip"]'),
            (
                "counters = [1, 2]\n\n[[buses]]",
                'counters = [1, 7]\nroles = ["clerk", "boss"]\n\n[[buses]]',
            ),
        )
    )
    by_path = {i.path: i.message for i in issues}
    assert set(by_path) == {"staff[0].roles[1]"}, "field errors first; fix them, then references"
    assert "'boss'" in by_path["staff[0].roles[1]"]
    issues = issues_of(
        edit(
            ('priority_classes = ["elderly"]', 'priority_classes = ["vip"]'),
            ("counters = [1, 2]\n\n[[buses]]", "counters = [1, 7]\n\n[[buses]]"),
        )
    )
    assert {i.path for i in issues} == {
        "halls[0].services[0].priority_classes[0]",
        "staff[0].counters[1]",
    }


def test_parent_must_be_a_known_hall() -> None:
    issue = only_issue(edit(('id = "h1"\n', 'id = "h1"\nparent = "city"\n')))
    assert issue.path == "halls[0].parent"
    assert "'city'" in issue.message


def test_toml_syntax_error_gives_line_and_column() -> None:
    text = edit(('name = "税务"', 'name = "税务'))
    issue = only_issue(text)
    expected_line = text.splitlines().index('name = "税务') + 1
    assert issue.line == expected_line
    assert issue.column is not None
    assert issue.path == f"line {expected_line}, column {issue.column}"
    assert issue.message.startswith("TOML syntax error")


def test_several_mistakes_are_all_reported() -> None:
    text = edit(
        # two cross-reference problems in one hall
        ("{ number = 3,", "{ number = 2,"),
        ('{ code = "tax", weight = 2 }', '{ code = "nope", weight = 2 }'),
        # a matter rule
        ("promised_days = 5", "promised_days = 31"),
        # a field error and an unknown key elsewhere
        ("address = 2\n", "address = 0\n"),
        ('url = "/dev/ttyUSB0"', 'url = "/dev/ttyUSB0"\nspeed = 9600'),
    )
    paths = [i.path for i in issues_of(text)]
    assert sorted(paths) == sorted(
        [
            "halls[0].counters[2].number",
            "halls[0].counters[0].services[1].code",
            "matters[0].promised_days",
            "devices[1].address",
            "buses[0].speed",
        ]
    )


def test_missing_required_key() -> None:
    issue = only_issue(edit(('name = "税务"\n', "")))
    assert issue.path == "halls[0].services[1].name"
    assert issue.message == "missing required key"


def test_config_error_message_lists_every_issue() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(edit(("{ number = 3,", "{ number = 2,"), ("address = 2\n", "address = 0\n")))
    text = str(caught.value)
    assert "2 configuration problems" in text
    assert "halls[0].counters[2].number" in text
    assert "devices[1].address" in text


def test_load_config_reads_utf8_with_bom(tmp_path: Path) -> None:
    path = tmp_path / "hall.toml"
    path.write_bytes(b"\xef\xbb\xbf" + BASE.encode("utf-8"))
    assert load_config(path).halls[0].name == "测试县政务服务中心"


def test_load_config_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "absent.toml")
    assert "absent.toml" in str(caught.value)
    assert caught.value.issues[0].message.startswith("cannot read file")


def test_format_path() -> None:
    assert format_path(("halls", 0, "counters", 12, "services", 1, "code")) == (
        "halls[0].counters[12].services[1].code"
    )
    assert format_path(("options", "a key")) == "options['a key']"
    assert format_path(()) == ""


def test_a_deployment_needs_a_hall() -> None:
    issue = only_issue("halls = []")
    assert issue.path == "halls"
    assert "at least 1 item" in issue.message
