"""The temporary Prefect server starts from a migrated database kept in golive's cache, and a
template it cannot use costs a restart, never the start."""

from __future__ import annotations

import socket
import sqlite3
from contextlib import closing

import httpx
import pytest

from cli.prefect_env import _database_template, keep_as_template, seed_database, start_server, stop_server


@pytest.fixture
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GOLIVE_CACHE_DIR", str(tmp_path / "cache"))
    for name in ("PREFECT_SERVER_DATABASE_CONNECTION_URL", "PREFECT_API_DATABASE_CONNECTION_URL"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "cache"


def _rows(database) -> dict[str, int]:
    with closing(sqlite3.connect(database)) as db:
        tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: db.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}


def test_a_template_the_server_refuses_is_made_again_and_the_next_server_starts_from_it(own_cache, tmp_path,
                                                                                        monkeypatch):
    template = _database_template()
    template.parent.mkdir(parents=True)
    template.write_bytes(b"not a database " * 64)

    first_home = tmp_path / "first"
    first_home.mkdir()
    server, _ = start_server(first_home)  # refuses the copy, then migrates a database of its own
    stop_server(server)
    kept = _rows(template)
    assert kept["alembic_version"] == 1 and kept["block_type"] > 0  # migrated, Prefect's blocks registered
    assert kept["flow_run"] == 0 and kept.get("configuration", 0) == 0  # nothing of that server's session

    second_home = tmp_path / "second"
    second_home.mkdir()
    assert seed_database(second_home) is True
    server, api_url = start_server(second_home)
    try:
        created = httpx.post(f"{api_url}/flows/", json={"name": "go-live"}, timeout=10)
        blocks = httpx.post(f"{api_url}/block_types/filter", json={}, timeout=10)
    finally:
        stop_server(server)
    assert created.status_code == 201 and created.json()["name"] == "go-live"
    assert len(blocks.json()) == kept["block_type"]

    # A port taken between its choice and the server binding it: started again on another, and
    # the template, which was not at fault, kept.
    import sandbox.processes

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port, any_free = taken.getsockname()[1], sandbox.processes.free_ports
        choices = iter([[port]])
        monkeypatch.setattr(sandbox.processes, "free_ports", lambda n: next(choices, None) or any_free(n))
        third_home = tmp_path / "third"
        third_home.mkdir()
        server, api_url = start_server(third_home)
        stop_server(server)
    assert f":{port}/" not in api_url and "address already in use" in (third_home / "server.log").read_text()
    assert _rows(template) == kept


def test_a_removed_databases_write_ahead_log_is_not_applied_to_the_copy(own_cache, tmp_path):
    template = _database_template()
    template.parent.mkdir(parents=True)
    template.write_bytes(b"template")
    home = tmp_path / "home"
    home.mkdir()
    (home / "prefect.db-wal").write_bytes(b"the log of a database removed since")
    (home / "prefect.db-shm").write_bytes(b"its index")
    assert seed_database(home) is True
    assert (home / "prefect.db").read_bytes() == b"template"
    assert sorted(p.name for p in home.iterdir()) == ["prefect.db"]


def test_no_template_is_kept_from_a_home_whose_server_made_no_database_there(own_cache, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    keep_as_template(home)  # its database configured elsewhere, say in a profile
    assert list(home.iterdir()) == [] and list(_database_template().parent.iterdir()) == []


def test_a_home_that_has_a_database_keeps_it(own_cache, tmp_path):
    template = _database_template()
    template.parent.mkdir(parents=True)
    template.write_bytes(b"template")
    (tmp_path / "prefect.db").write_bytes(b"the home's own")
    assert seed_database(tmp_path) is None
    assert (tmp_path / "prefect.db").read_bytes() == b"the home's own"


def test_no_template_is_used_or_kept_where_prefects_database_is_configured(own_cache, tmp_path, monkeypatch):
    monkeypatch.setenv("PREFECT_SERVER_DATABASE_CONNECTION_URL", "postgresql+asyncpg://golive@127.0.0.1/prefect")
    assert _database_template() is None
    assert seed_database(tmp_path) is None
    assert not (tmp_path / "prefect.db").exists()


def test_without_a_template_the_server_makes_its_database_from_nothing(own_cache, tmp_path):
    assert seed_database(tmp_path) is False
    assert not (tmp_path / "prefect.db").exists()
