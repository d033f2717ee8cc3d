"""The real `aggregator` command in a subprocess, as a user runs it."""

from __future__ import annotations

from pathlib import Path

import feedparser
import yaml
from conftest import run_cli
from feedworld import DATA, rsshub_feed, rsshub_item


def write_config(tmp_path: Path, sources: list[dict]) -> Path:
    path = tmp_path / "config.yaml"
    data = {"database": "state/agg.db", "documents": "site/source/_posts", "sources": sources}
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_update_end_to_end(feed_server, tmp_path: Path) -> None:
    feed_server.serve("/aljazeera/chinese/news", (DATA / "aljazeera.rss").read_bytes())
    feed_server.serve("/more", rsshub_feed([rsshub_item(i) for i in range(3)]))
    config = write_config(
        tmp_path,
        [
            {
                "name": "aljazeera",
                "url": feed_server.url("/aljazeera/chinese/news"),
                "author": "Aljazeera 半岛网",
                "categories": ["新媒体", "Aljazeera 半岛网", "新闻"],
            },
            {"name": "more", "url": feed_server.url("/more")},
        ],
    )
    first = run_cli("update", "--config", str(config))
    assert first.returncode == 0, first.stderr
    assert "aljazeera: 1 new, 0 changed" in first.stdout
    assert "more: 3 new, 0 changed" in first.stdout
    posts = sorted((tmp_path / "site/source/_posts").glob("*.md"))
    assert len(posts) == 4
    expected = (DATA / "aljazeera.expected.md").read_text(encoding="utf-8")
    golden = [p for p in posts if "安理会" in p.name]
    assert len(golden) == 1
    assert [line.rstrip() for line in golden[0].read_text().splitlines() if line.strip()] == [
        line.rstrip() for line in expected.splitlines() if line.strip()
    ]
    merged = feedparser.parse((tmp_path / "public/feed.xml").read_bytes())
    assert len(merged.entries) == 4 and not merged.bozo

    second = run_cli("update", "--config", str(config))
    assert second.returncode == 0
    assert "0 new, 0 changed, 0 failed" in second.stdout
    assert sorted((tmp_path / "site/source/_posts").glob("*.md")) == posts

    table = run_cli("sources", "--config", str(config))
    assert table.returncode == 0
    lines = table.stdout.splitlines()
    assert lines[0].split()[:4] == ["NAME", "URL", "LAST", "FETCH"]
    assert any(line.startswith("aljazeera") and " ok " in line for line in lines)


def test_failing_source_exit_code_1_and_others_still_done(feed_server, tmp_path: Path) -> None:
    feed_server.serve("/ok", rsshub_feed([rsshub_item(1)]))
    feed_server.serve("/gone", b"", status=404, etag=False)
    config = write_config(
        tmp_path,
        [
            {"name": "gone", "url": feed_server.url("/gone")},
            {"name": "ok", "url": feed_server.url("/ok")},
        ],
    )
    result = run_cli("update", "--config", str(config))
    assert result.returncode == 1
    assert "gone: error: HTTP 404 Not Found" in result.stdout
    assert "ok: 1 new" in result.stdout
    assert "Traceback" not in result.stderr


def test_bad_config_exit_code_2_one_line_no_traceback(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("sources:\n  - name: a\n    url: http://x.test/\n    intervall: 5m\n")
    for command in ("update", "check-config", "sources"):
        result = run_cli(command, "--config", str(config))
        assert result.returncode == 2
        assert "Traceback" not in result.stderr
        assert result.stderr.strip().count("\n") == 0
        assert str(config) in result.stderr and "sources[0].intervall" in result.stderr


def test_check_config_accepts_the_default_config() -> None:
    root = Path(__file__).resolve().parents[2]
    result = run_cli("check-config", "--config", str(root / "config.yaml"))
    assert result.returncode == 0, result.stderr
    assert "ok, 3 sources" in result.stdout


def test_foreign_database_is_refused_with_exit_code_2(tmp_path: Path) -> None:
    config = write_config(tmp_path, [{"name": "a", "url": "http://127.0.0.1:9/"}])
    (tmp_path / "state").mkdir()
    database = tmp_path / "state/agg.db"
    database.write_bytes(b"not sqlite" * 500)
    result = run_cli("update", "--config", str(config))
    assert result.returncode == 2
    assert "not a usable SQLite database" in result.stderr
    assert database.read_bytes() == b"not sqlite" * 500
