"""The service guide from the example county hall: what a kiosk lists, search by hanzi and
pinyin, and the one-time notice slip read back from its ESC/POS bytes."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path

import pytest

from hall.config.check import check_command
from hall.config.loader import load_config
from hall.config.models import HallConfig
from kiosk import guide
from kiosk.escpos import Encoding, encode
from kiosk.layout import COLUMNS, width_of
from tests.kiosk.escpos_reader import read

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def county() -> HallConfig:
    return load_config(EXAMPLES / "county-hall.toml")


def entries(config: HallConfig, kiosk_id: str) -> list[guide.GuideEntry]:
    hall = config.halls[0]
    kiosk = hall.kiosk(kiosk_id)
    assert kiosk is not None
    return guide.entries_for(config, hall, kiosk)


def names(found: list[guide.GuideEntry]) -> list[str]:
    return [e.matter.name for e in found]


def test_a_kiosk_lists_the_matters_of_the_queues_it_offers(county: HallConfig) -> None:
    every = entries(county, "k1")  # k1 offers every service
    assert len(every) == len(county.matters)
    second_floor = entries(county, "k2")  # bdc, tax, qj, zx
    assert names(second_floor) == [
        "不动产首次登记",
        "不动产转移登记",
        "不动产抵押登记",
        "不动产登记资料查询",
        "发票领用",
        "税务登记(设立登记)",
    ]
    query = next(e for e in second_floor if e.matter.name == "不动产登记资料查询")
    assert query.services == (("bdc", "不动产登记"),)  # zh is not offered at k2


def test_search_by_hanzi_full_pinyin_and_initials(county: HallConfig) -> None:
    every = entries(county, "k1")
    assert names(guide.find(every, "不动产"))[:2] == ["不动产首次登记", "不动产转移登记"]
    assert names(guide.find(every, "bdc")) == names(guide.find(every, "不动产"))
    assert names(guide.find(every, "BDCDY")) == ["不动产抵押登记"]
    assert names(guide.find(every, "shehuibaozhang")) == ["社会保障卡申领"]
    assert names(guide.find(every, "gjj")) == ["住房公积金提取", "住房公积金个人住房贷款"]
    assert names(guide.find(every, "居民身份证")) == ["居民身份证申领"]
    assert guide.find(every, "xyz不存在") == []
    assert len(guide.find(every, "  ")) == len(every)  # blank: everything


def test_categories_follow_the_catalogue_classes(county: HallConfig) -> None:
    every = entries(county, "k1")
    cats = guide.categories(every)
    assert [label for _, label, _ in cats] == [
        "行政许可",
        "行政确认",
        "行政给付",
        "其他行政权力",
        "公共服务",
    ]
    assert sum(n for _, _, n in cats) == len(every)
    licensing = guide.find(every, category="licensing")
    assert names(licensing) == [
        "企业设立登记",
        "食品经营许可",
        "机动车驾驶证期满换证",
        "建筑工程施工许可证核发",
    ]
    assert names(guide.find(every, "qy", "licensing")) == ["企业设立登记"]


@pytest.mark.parametrize("paper", [58, 80])
def test_notice_slip_reads_back_as_the_materials_list(county: HallConfig, paper: int) -> None:
    [entry] = guide.find(entries(county, "k1"), "不动产首次登记")
    facts = guide.NoticeFacts("XX县政务服务中心", entry, datetime(2026, 5, 20, 9, 30))
    data = encode(guide.notice_lines(facts, paper), Encoding.GBK)
    page = read(data)
    assert page.initialised and page.chinese and page.cuts
    assert page.qr == []
    text = "\n".join(page.texts)
    assert page.texts[:2] == ["XX县政务服务中心", "一次性告知单"]
    for expected in [
        "事项：不动产首次登记",
        "承诺件（5 个工作日内办结）",
        "承诺时限 5 个工作日；法定时限 30 个工作日",
        "收费：不动产登记费(住宅) 80 元；证书工本费 10 元",
        "1. 不动产登记申请书（原件，1 份）",
        "3. 不动产权属来源证明材料（1 份）",
        "咨询电话：0000-1234567",
        "打印时间：2026-05-20 09:30",
        "请按清单备齐材料，一次办好",
    ]:
        assert expected.replace(" ", "") in text.replace("\n", "").replace(" ", ""), expected
    assert "申请人为不动产的权利人" in text.replace("\n", "")
    # Every line fits the paper; continuation lines of a numbered item are indented.
    for line in page.lines:
        assert width_of(line.text) * line.width <= COLUMNS[paper], line.text
    fourth = next(i for i, t in enumerate(page.texts) if t.startswith("4. "))
    if paper == 58:
        assert page.texts[fourth + 1].startswith("   ")


def test_a_free_matter_without_materials_says_so(county: HallConfig) -> None:
    [entry] = guide.find(entries(county, "k1"), "异地就医备案")
    facts = guide.NoticeFacts("XX县政务服务中心", entry, datetime(2026, 5, 20, 9, 30))
    texts = read(encode(guide.notice_lines(facts))).texts
    assert "收费：不收费" in texts
    assert "请到窗口咨询" in texts
    assert any("零跑动" in t and "可全程网办" in t for t in texts)


def _check(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    err = io.StringIO()
    assert check_command(str(path), out=io.StringIO(), err=err) == 1
    return err.getvalue().splitlines()


def test_config_check_names_the_key_path_of_guide_problems(tmp_path: Path) -> None:
    good = (EXAMPLES / "township-hall.toml").read_text(encoding="utf-8")
    conditions = '["持有本县常住户口", "家庭人均收入低于当地最低生活保障标准"]'
    assert conditions in good
    text = good.replace(conditions, '["持有本县常住户口", ""]')
    text = text.replace(
        'code = "mz"\nname = "民政残联"',
        'code = "mz"\nname = "民政残联"\ncategory = "一个过长的业务分类名称超出上限"',
    )
    lines = _check(tmp_path, text)
    assert any("matters[2].conditions[1]" in line for line in lines), lines
    assert any("halls[0].services[2].category" in line for line in lines), lines
    assert lines[-1].endswith("2 problems, configuration not valid")

    materials = '{ name = "户口簿及身份证", original = true }'
    assert materials in good
    lines = _check(tmp_path, good.replace(materials, '{ name = "申请书" }'))
    assert any(
        "matters[2].materials[1].name" in line and "duplicate material" in line for line in lines
    ), lines
