"""A report as CSV (UTF-8 with BOM, so Excel opens Chinese correctly), XLSX and printable HTML."""

from __future__ import annotations

import csv
import html
import io

import xlsxwriter

from manager.reports import (
    CASE_FIGURES,
    COLUMN_LABELS,
    DIMENSION_LABELS,
    ROW_FIELDS,
    Report,
    ReportRow,
)

_RATIOS = {"service_level", "satisfaction"}
_SECONDS = {f for f in ROW_FIELDS if f.endswith("_s")}


def _title(report: Report) -> str:
    return f"{report.hall_name} 运行报表（按{DIMENSION_LABELS[report.by]}） {report.period.label()}"


def _cell(row: ReportRow, name: str) -> str:
    value = getattr(row, name)
    if value is None:
        return ""
    if name in _RATIOS:
        return f"{value * 100:.1f}%"
    if name in _SECONDS:
        return f"{value:.0f}"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _cases_line(report: Report) -> str:
    if report.cases is None:
        return "按时办结率、现场办结率：—（待办件数据）"
    parts = []
    for key, label in CASE_FIGURES:
        if key not in report.cases:
            continue
        value = report.cases[key]
        if value is None:
            shown = "—"
        elif key == "bad_ratings":
            shown = f"{value:.0f}"
        else:
            shown = f"{value * 100:.1f}%"
        parts.append(f"{label}：{shown}")
    return "，".join(parts)


def to_csv(report: Report) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([_title(report)])
    writer.writerow([COLUMN_LABELS[f] for f in ROW_FIELDS])
    for row in [*report.rows, report.total]:
        writer.writerow([_cell(row, f) for f in ROW_FIELDS])
    writer.writerow([_cases_line(report)])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def to_xlsx(report: Report) -> bytes:
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet = book.add_worksheet("报表")
    bold = book.add_format({"bold": True})
    percent = book.add_format({"num_format": "0.0%"})
    whole = book.add_format({"num_format": "0"})
    sheet.write(0, 0, _title(report), bold)
    for col, name in enumerate(ROW_FIELDS):
        sheet.write(1, col, COLUMN_LABELS[name], bold)
        sheet.set_column(col, col, 14 if col > 1 else 18)
    for offset, row in enumerate([*report.rows, report.total]):
        for col, name in enumerate(ROW_FIELDS):
            value = getattr(row, name)
            if value is None:
                sheet.write_blank(2 + offset, col, None)
            elif name in _RATIOS:
                sheet.write_number(2 + offset, col, value, percent)
            elif name in _SECONDS:
                sheet.write_number(2 + offset, col, value, whole)
            elif isinstance(value, int | float):
                sheet.write_number(2 + offset, col, value)
            else:
                sheet.write_string(2 + offset, col, str(value))
    sheet.write(3 + len(report.rows) + 1, 0, _cases_line(report))
    book.close()
    return buffer.getvalue()


def to_html(report: Report) -> str:
    """A self-contained printable page (A4 landscape)."""
    head = "".join(f"<th>{html.escape(COLUMN_LABELS[f])}</th>" for f in ROW_FIELDS)
    body = [
        "<tr>" + "".join(f"<td>{html.escape(_cell(row, f))}</td>" for f in ROW_FIELDS)
        for row in report.rows
    ]
    total = "".join(f"<td>{html.escape(_cell(report.total, f))}</td>" for f in ROW_FIELDS)
    empty = "" if report.rows else f'<tr><td colspan="{len(ROW_FIELDS)}">本期间没有数据</td></tr>'
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{html.escape(_title(report))}</title>
<style>
@page {{ size: A4 landscape; margin: 12mm; }}
body {{ font-family: "Noto Sans CJK SC", "Source Han Sans SC", sans-serif; font-size: 11pt; }}
h1 {{ font-size: 16pt; margin: 0 0 4mm; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ border: 1px solid #555; padding: 2px 4px; text-align: right; }}
th {{ background: #eee; }}
td:nth-child(-n+2), th:nth-child(-n+2) {{ text-align: left; }}
tfoot td {{ font-weight: bold; }}
.note {{ margin-top: 4mm; font-size: 9pt; color: #333; }}
</style></head><body>
<h1>{html.escape(_title(report))}</h1>
<table><thead><tr>{head}</tr></thead>
<tbody>{"".join(body)}{empty}</tbody>
<tfoot><tr>{total}</tr></tfoot></table>
<p class="note">{html.escape(_cases_line(report))}。
等待时间：取号至首次叫号；办理时间：开始办理至办结；
服务水平：办结号码中等待不超过该业务目标等待时间的比例；
满意率：评价为 3 级及以上的占已评价数。</p>
</body></html>"""
