"""The one way feature slices serve their page folders."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp import web

from hall.domain.errors import NotFound
from hall.web.page_files import PageFolder


def folder(tmp_path: Path) -> PageFolder:
    root = (tmp_path / "pages").resolve()
    (root / "vendor" / "lib-1.0").mkdir(parents=True)
    (root / "app.js").write_text("export {};", encoding="utf-8")
    (root / "page.html").write_text("<title>{{title}}</title>", encoding="utf-8")
    (root / "vendor" / "lib-1.0" / "lib.js").write_text("export {};", encoding="utf-8")
    (root / "notes.py").write_text("secret = 1", encoding="utf-8")
    (tmp_path / "outside.js").write_text("export {};", encoding="utf-8")
    return PageFolder(root, immutable_dir="vendor")


def test_files_are_served_fresh_and_the_vendored_library_for_good(tmp_path: Path) -> None:
    pages = folder(tmp_path)
    app = pages.file("app.js")
    assert (app.content_type, app.headers["Cache-Control"]) == ("text/javascript", "no-cache")
    lib = pages.file("vendor/lib-1.0/lib.js")
    assert "immutable" in lib.headers["Cache-Control"]
    page = pages.page("page.html", "<取号>")
    assert page.text == "<title>&lt;取号&gt;</title>"


@pytest.mark.parametrize("name", ["../outside.js", "notes.py", "missing.js", "vendor"])
def test_nothing_outside_the_folder_or_of_another_kind_is_served(tmp_path: Path, name: str) -> None:
    with pytest.raises(NotFound):
        folder(tmp_path).file(name)


def test_shared_markup_is_included_once_written(tmp_path: Path) -> None:
    pages = folder(tmp_path)
    (pages.root / "login.part.html").write_text("<h2>{{heading}}</h2>\n", encoding="utf-8")
    (pages.root / "a.html").write_text(
        '<title>{{title}}</title>\n<!--#include login.part.html heading="管理员登录" -->\n',
        encoding="utf-8",
    )
    assert pages.page("a.html", "甲").text == "<title>甲</title>\n<h2>管理员登录</h2>\n"
    served = pages.file("a.html")  # pages reached as files get the same
    assert isinstance(served, web.Response)
    assert served.text == "<title>{{title}}</title>\n<h2>管理员登录</h2>\n"
    assert served.headers["Cache-Control"] == "no-cache"
    # Only a part of this folder: a name that would leave it is left as it is.
    (pages.root / "b.html").write_text("<!--#include ../x.part.html -->", encoding="utf-8")
    assert pages.file("b.html").text == "<!--#include ../x.part.html -->"  # type: ignore[attr-defined]
