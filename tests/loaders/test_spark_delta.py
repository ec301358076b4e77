"""Delta Lake on the local Spark (`make test-spark`): the jars `make install-spark` fetches are on the Thrift
server's classpath and Delta's catalog is Spark's own, so a `using delta` table takes a MERGE and a DELETE
through the harness's own connection, as the loaders' raw tables and the models will."""

from __future__ import annotations

from loaders.core.settings import Settings
from loaders.warehouse import connect
from tests.support.spark import SparkServers


def test_a_delta_table_merges_deletes_and_says_it_is_delta(spark_servers: SparkServers) -> None:
    settings = Settings.from_env({**spark_servers.emptied(), "ELT_TARGET": "spark"})
    with connect(settings, read_only=False) as conn:
        cursor = conn.cursor()
        cursor.execute("create database delta_probe")
        cursor.execute("create table delta_probe.versions (id string, version int, amount string) using delta")
        cursor.execute("insert into delta_probe.versions values ('a', 1, '10'), ('b', 1, '20')")
        cursor.execute(
            "merge into delta_probe.versions as target"
            " using (select 'a' as id, 1 as version, '11' as amount union all select 'c', 1, '30') as source"
            " on target.id = source.id and target.version = source.version"
            " when matched then update set * when not matched then insert *"
        )
        cursor.execute("delete from delta_probe.versions where id = 'b'")
        cursor.execute("select id, version, amount from delta_probe.versions order by id")
        assert cursor.fetchall() == [("a", 1, "11"), ("c", 1, "30")]

        cursor.execute("describe detail delta_probe.versions")
        detail = dict(zip((column[0] for column in cursor.description), cursor.fetchone(), strict=True))
        assert detail["format"] == "delta"
        assert detail["numFiles"] >= 1
        # each statement one commit of Delta's log, the MERGE and the DELETE as themselves (no table rewrite)
        cursor.execute("describe history delta_probe.versions")
        operation = [column[0] for column in cursor.description].index("operation")
        assert [row[operation] for row in reversed(cursor.fetchall())] == ["CREATE TABLE", "WRITE", "MERGE", "DELETE"]
