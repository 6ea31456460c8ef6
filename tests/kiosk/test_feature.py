"""The feature-slice mechanism: FEATURE objects, their migration folders and the import rule."""

from __future__ import annotations

import ast
from pathlib import Path

import asyncpg
import pytest

from hall.app import FEATURES, feature_migrations
from hall.features import Feature, Migrations, check_ranges
from hall.storage.db import _all_migrations

ROOT = Path(__file__).resolve().parents[2]
FEATURE_PACKAGES = ("kiosk", "counters", "display", "evaluator", "manager")
KNOWN_KERNEL_IMPORTS: set[tuple[str, str]] = set()


def _imported_top_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_kernel_imports_no_feature_except_the_composition_root() -> None:
    offending = set()
    for path in sorted((ROOT / "hall").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel == "hall/app.py":
            continue
        for package in _imported_top_packages(path) & set(FEATURE_PACKAGES):
            offending.add((rel, package))
    assert offending == KNOWN_KERNEL_IMPORTS


def test_features_import_no_other_feature() -> None:
    for package in FEATURE_PACKAGES:
        others = set(FEATURE_PACKAGES) - {package}
        for path in sorted((ROOT / package).rglob("*.py")):
            assert not _imported_top_packages(path) & others, path


def test_kiosk_migrations_come_from_its_own_folder_in_its_range() -> None:
    from kiosk.feature import FEATURE as KIOSK

    assert "0030_print_jobs.sql" in [name for name, _ in feature_migrations()]
    assert KIOSK.migrations is not None
    names = [name for name, _ in KIOSK.migrations.files()]
    assert "0030_print_jobs.sql" in names
    assert all(30 <= int(name[:4]) <= 39 for name in names)
    assert set(names) <= {name for name, _ in feature_migrations()}
    assert "kiosk" in [f.name for f in FEATURES]


def test_manager_migrations_come_from_its_own_folder_in_its_range() -> None:
    from manager.feature import FEATURE as MANAGER

    assert MANAGER.migrations is not None
    names = [name for name, _ in MANAGER.migrations.files()]
    assert names == ["0070_manager_reports.sql", "0071_manager_ticket_facts.sql"]
    assert "0070_manager_reports.sql" in [name for name, _ in feature_migrations()]


async def test_migrate_applies_the_feature_folders(pool: asyncpg.Pool) -> None:
    applied = {r["name"] for r in await pool.fetch("SELECT name FROM schema_migrations")}
    assert "0030_print_jobs.sql" in applied
    assert "0001_core.sql" in applied
    assert await pool.fetchval("SELECT to_regclass('kiosk_print_jobs')::text") == (
        "kiosk_print_jobs"
    )


def _package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *files: str) -> str:
    pkg = tmp_path / "fakefeature"
    (pkg / "migrations").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    for name in files:
        (pkg / "migrations" / name).write_text("SELECT 1;")
    monkeypatch.syspath_prepend(str(tmp_path))
    return "fakefeature"


def test_a_migration_outside_the_range_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = _package(tmp_path, monkeypatch, "0040_a.sql", "0052_b.sql")
    with pytest.raises(ValueError, match=r"0052_b\.sql"):
        Migrations(package, first=40, last=49).files()
    assert Migrations(package, first=40, last=59).files() == [
        ("0040_a.sql", "SELECT 1;"),
        ("0052_b.sql", "SELECT 1;"),
    ]


def test_overlapping_ranges_and_kernel_numbers_are_refused() -> None:
    a = Feature("a", migrations=Migrations("a", first=30, last=39))
    b = Feature("b", migrations=Migrations("b", first=35, last=44))
    with pytest.raises(ValueError, match="share migration numbers"):
        check_ranges([a, b])
    with pytest.raises(ValueError, match="0030 or higher"):
        check_ranges([Feature("c", migrations=Migrations("c", first=20, last=29))])
    with pytest.raises(ValueError, match="twice"):
        check_ranges([a, a])


def test_a_feature_range_in_the_kernels_late_range_is_refused() -> None:
    """Core migrations continue at 0100-0119: no feature may take any of those numbers."""
    check_ranges([Feature("d", migrations=Migrations("d", first=90, last=99))])
    check_ranges([Feature("e", migrations=Migrations("e", first=120, last=129))])
    for first, last in ((95, 100), (100, 109), (110, 119), (119, 125), (90, 130)):
        feature = Feature("f", migrations=Migrations("f", first=first, last=last))
        with pytest.raises(ValueError, match="0100-0119"):
            check_ranges([feature])


def test_a_feature_file_named_like_a_kernel_one_is_refused() -> None:
    with pytest.raises(ValueError, match=r"0001_core\.sql"):
        _all_migrations([("0001_core.sql", "SELECT 1;")])
