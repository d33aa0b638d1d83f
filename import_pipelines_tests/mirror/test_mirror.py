"""The whole-database mirror against real databases whose ids differ."""

from __future__ import annotations

import pytest

from import_pipelines.db import connection
from import_pipelines.mirror import MirrorError, mirror
from import_pipelines_tests.mirror.schema import OVERRIDES, audit_actions, content, counts


def ids(url: str, query: str) -> dict[str, int]:
    with connection(url) as conn:
        return dict(conn.execute(query).fetchall())


def test_mirror_into_empty_target_copies_every_row_by_natural_key(seeded_source: str, empty_target: str) -> None:
    report = mirror(seeded_source, empty_target, mode="upsert", overrides=OVERRIDES, run_id="first")

    assert counts(empty_target) == counts(seeded_source)
    assert content(empty_target) == content(seeded_source)  # every reference points at the same natural key
    assert report.rows == sum(counts(seeded_source).values())
    assert report.total("created") == report.rows and report.error_count == 0

    # ids really differ, so a copied id would have pointed at the wrong row (or none)
    for query in ("SELECT sysmail, id FROM users", "SELECT code, id FROM projects",
                  "SELECT xmlid, id FROM instructors", "SELECT xmlid, id FROM categories"):
        source_ids, target_ids = ids(seeded_source, query), ids(empty_target, query)
        assert source_ids.keys() == target_ids.keys()
        assert all(source_ids[key] != target_ids[key] for key in source_ids), query

    # cycles and self references went through the late seed; the NOT NULL one via a placeholder
    assert sorted(report.deferred_references) == [
        "categories.parent_id -> categories (NOT NULL: placeholder)", "projects.regio -> projects",
        "users.instructor_id -> instructors"]
    assert report.placeholders == ["categories"]
    assert report.late_seeded == 4 + 3 + 4  # instructor links, project regios, category parents
    with connection(empty_target) as conn:
        assert conn.execute("SELECT count(*) FROM categories WHERE xmlid LIKE '~import_pipelines%'").fetchone()[0] == 0
        # computed columns were computed by the target, not copied
        assert conn.execute("SELECT bool_and(gross = net + vat) AND bool_and(print_no > 5000) FROM invoices"
                            ).fetchone()[0]
        assert conn.execute('SELECT "user" IS NOT NULL FROM seats WHERE "table" = \'A\' AND "order" = 2'
                            ).fetchone()[0]

    audit = audit_actions(empty_target, "first")
    assert audit == {(table, "created"): count for table, count in counts(seeded_source).items()}
    with connection(empty_target) as conn:
        row = conn.execute("SELECT profile, source_id, target_id FROM import_control.import_records "
                           "WHERE run_id = 'first' AND entity = 'project_members' AND source_id LIKE '%u1@%' "
                           "LIMIT 1").fetchone()
        user_id = conn.execute("SELECT id FROM users WHERE sysmail = 'u1@example.org'").fetchone()[0]
    assert row[0] == "mirror"
    assert row[1].startswith('["P') and '"u1@example.org"' in row[1]  # natural key through both references
    assert str(user_id) in row[2]  # the junction row's own key: (project id, user id) in the target


def change_source(url: str) -> None:
    """Edits the second mirror must merge: changed rows, new rows, new cycles and self references."""
    with connection(url) as conn:
        conn.execute("""
            UPDATE users SET name = 'Renamed 3' WHERE sysmail = 'u3@example.org';
            UPDATE users SET settings = '{"theme": "light"}' WHERE sysmail = 'u2@example.org';
            UPDATE users SET instructor_id = (SELECT id FROM instructors WHERE xmlid = 'instr.5')
                WHERE sysmail = 'u5@example.org';
            UPDATE projects SET regio = (SELECT id FROM projects WHERE code = 'P1') WHERE code = 'P4';
            UPDATE invoices SET net = 999 WHERE number = 'INV-2';
            INSERT INTO users (sysmail, name, domain_id) SELECT 'u21@example.org', 'User 21', id FROM domains
                WHERE domaincode = 'initech';
            INSERT INTO instructors (xmlid, user_id, rate)
                SELECT 'instr.6', id, 99 FROM users WHERE sysmail = 'u21@example.org';
            UPDATE users SET instructor_id = (SELECT id FROM instructors WHERE xmlid = 'instr.6')
                WHERE sysmail = 'u21@example.org';
            INSERT INTO projects (code, title) VALUES ('P7', 'Project 7');
            UPDATE projects SET regio = id WHERE code = 'P7';
            INSERT INTO project_members (project_id, user_id)
                SELECT p.id, u.id FROM projects p, users u WHERE p.code = 'P7' AND u.sysmail = 'u21@example.org';
            INSERT INTO categories (xmlid, name, parent_id) SELECT 'cat.new1', 'New 1', id FROM categories
                WHERE xmlid = 'cat.root';
            INSERT INTO categories (xmlid, name, parent_id) SELECT 'cat.new2', 'New 2', id FROM categories
                WHERE xmlid = 'cat.new1';
            UPDATE attachments SET size_bytes = 1 WHERE name = 'notes.txt'
                AND event_id = (SELECT id FROM events WHERE xmlid = 'evt.1');
            INSERT INTO attachments (event_id, name) SELECT id, 'late.txt' FROM events WHERE xmlid = 'evt.3';
        """)
        conn.commit()


def test_upsert_merges_changes_and_new_rows_without_duplicates(seeded_source: str, empty_target: str) -> None:
    mirror(seeded_source, empty_target, mode="upsert", overrides=OVERRIDES, run_id="first")
    change_source(seeded_source)

    report = mirror(seeded_source, empty_target, mode="upsert", overrides=OVERRIDES, run_id="second",
                    batch_rows=7, workers=2)

    assert content(empty_target) == content(seeded_source)
    assert counts(empty_target) == counts(seeded_source)  # nothing duplicated
    audit = audit_actions(empty_target, "second")
    assert audit[("users", "updated")] == 3 and audit[("users", "created")] == 1
    assert audit[("users", "unchanged")] == 17
    assert audit[("instructors", "created")] == 1 and audit[("instructors", "unchanged")] == 5
    assert audit[("projects", "updated")] == 1 and audit[("projects", "created")] == 1
    assert audit[("project_members", "created")] == 1
    assert audit[("invoices", "updated")] == 1
    assert audit[("categories", "created")] == 2
    assert audit[("attachments", "updated")] == 1 and audit[("attachments", "created")] == 1
    assert not any(action == "failed" for _, action in audit)
    assert report.total("updated") == 6 and report.error_count == 0
    assert report.tables["users"].batches == 3  # 21 rows in batches of 7

    with connection(empty_target) as conn:
        before = conn.execute("SELECT before_image FROM import_control.import_records WHERE run_id = 'second' "
                              "AND entity = 'users' AND source_id = 'u3@example.org'").fetchone()[0]
        gross = conn.execute("SELECT gross FROM invoices WHERE number = 'INV-2'").fetchone()[0]
        placeholders = conn.execute("SELECT count(*) FROM categories WHERE xmlid LIKE '~%'").fetchone()[0]
    assert before["name"] == "User 3" and before["sysmail"] == "u3@example.org"
    assert gross == 999 + 38
    assert placeholders == 0

    # a run over unchanged data writes nothing but 'unchanged' audit rows
    third = mirror(seeded_source, empty_target, mode="upsert", overrides=OVERRIDES, run_id="third")
    assert third.total("unchanged") == third.rows
    assert third.late_seeded == 0
    assert content(empty_target) == content(seeded_source)


def test_create_only_skips_rows_that_exist(seeded_source: str, empty_target: str) -> None:
    mirror(seeded_source, empty_target, mode="create_only", overrides=OVERRIDES, run_id="first")
    with connection(seeded_source) as conn:
        conn.execute("UPDATE users SET name = 'Renamed 3' WHERE sysmail = 'u3@example.org'")
        conn.execute("INSERT INTO tags (name) VALUES ('purple')")
        conn.commit()

    report = mirror(seeded_source, empty_target, mode="create_only", overrides=OVERRIDES, run_id="second")

    audit = audit_actions(empty_target, "second")
    assert audit[("users", "skipped")] == 20 and ("users", "updated") not in audit
    assert audit[("tags", "created")] == 1 and audit[("tags", "skipped")] == 4
    assert report.total("created") == 1
    with connection(empty_target) as conn:
        assert conn.execute("SELECT name FROM users WHERE sysmail = 'u3@example.org'").fetchone()[0] == "User 3"
        assert conn.execute("SELECT count(*) FROM tags").fetchone()[0] == 5


def test_table_without_natural_key_is_refused_with_guidance(seeded_source: str, empty_target: str) -> None:
    with pytest.raises(MirrorError) as refused:
        mirror(seeded_source, empty_target, mode="upsert")
    message = str(refused.value)
    assert "'audit_notes' has no natural key" in message
    assert "audit_notes: [note, created_on]" in message  # the override file line to write
    assert "overrides" in message
    with connection(empty_target) as conn:  # refused before anything was written
        assert conn.execute("SELECT to_regclass('import_control.import_records')").fetchone()[0] is None

    # naming the key in an overrides file makes the same run work
    report = mirror(seeded_source, empty_target, mode="upsert", tables=["audit_notes"],
                    overrides={"audit_notes": ["note", "created_on"]})
    assert report.total("created") == 2


def test_unresolvable_references_are_reported_and_audited(seeded_source: str, empty_target: str) -> None:
    with connection(seeded_source) as conn:  # P5 (no owner) hangs below P1, which cannot load
        conn.execute("UPDATE projects SET regio = (SELECT id FROM projects WHERE code = 'P1') WHERE code = 'P5'")
        conn.commit()

    # users are not mirrored and the target has none, so owner references cannot resolve
    report = mirror(seeded_source, empty_target, mode="upsert", tables=["projects", "categories"], run_id="partial")

    load_errors = [e for e in report.errors if e.phase == "load"]
    assert {(e.table, e.natural_key, e.column, e.referenced_table, e.missing_key) for e in load_errors} == {
        ("projects", f"P{i}", "owner_id", "users", f'{{"sysmail": "u{i}@example.org"}}') for i in range(1, 5)}
    late = [e for e in report.errors if e.phase == "late_seed"]
    assert [(e.table, e.natural_key, e.column, e.missing_key) for e in late] == [
        ("projects", "P5", "regio", '{"code": "P1"}')]
    assert report.error_count == 5

    audit = audit_actions(empty_target, "partial")
    # the load's failures are failed records; a late reference left unresolved is a problem found
    # after its record was created, so it is an import error of the late seed, as for a template
    assert audit[("projects", "created")] == 2 and audit[("projects", "failed")] == 4
    with connection(empty_target) as conn:
        rows = conn.execute("SELECT source_id, target_id, error FROM import_control.import_records "
                            "WHERE run_id = 'partial' AND action = 'failed' ORDER BY source_id").fetchall()
        late_rows = conn.execute("SELECT source_id, stage, field, message FROM import_control.import_errors "
                                 "WHERE run_id = 'partial'").fetchall()
        p5 = conn.execute("SELECT regio FROM projects WHERE code = 'P5'").fetchone()
    assert [r[0] for r in rows] == ["P1", "P2", "P3", "P4"]
    assert rows[0][1] is None
    assert "projects.owner_id -> users" in rows[0][2] and "u1@example.org" in rows[0][2]
    assert [(sid, stage, field) for sid, stage, field, _ in late_rows] == [("P5", "late_seed", "regio")]
    assert "regio -> projects" in late_rows[0][3] and "left empty" in late_rows[0][3]
    assert p5 == (None,)  # left NULL, but reported and recorded above


def test_a_row_the_target_refuses_is_isolated(seeded_source: str, empty_target: str) -> None:
    with connection(empty_target) as conn:
        conn.execute("ALTER TABLE tags ADD CONSTRAINT no_blue CHECK (name <> 'blue')")
        conn.commit()

    report = mirror(seeded_source, empty_target, mode="upsert", overrides=OVERRIDES, run_id="checked")

    assert report.tables["tags"].created == 3 and report.tables["tags"].failed == 1
    refused = [e for e in report.errors if e.table == "tags"]
    assert refused[0].natural_key == "blue" and "no_blue" in refused[0].message
    # events_tags rows pointing at the refused tag fail as unresolved references, the rest load
    with connection(seeded_source) as conn:
        blue_links = conn.execute("SELECT count(*) FROM events_tags et JOIN tags t ON t.id = et.tag_id "
                                  "WHERE t.name = 'blue'").fetchone()[0]
    assert report.tables["events_tags"].failed == blue_links
    assert report.tables["events_tags"].created == 16 - blue_links


def test_a_transient_failure_retries_its_batch_and_keeps_the_batches_before(seeded_source: str,
                                                                             empty_target: str) -> None:
    """A serialisation failure in the second batch of users (a real one, raised by the target) rolls
    back that batch alone: it is merged again and the first batch, committed before it, stays."""
    with connection(empty_target) as conn:
        conn.execute("CREATE SEQUENCE users_written")  # counts every attempt; a rollback does not undo it
        conn.execute("CREATE FUNCTION fail_tenth_user() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
                     " IF nextval('users_written') = 10 THEN"
                     " RAISE EXCEPTION 'injected conflict' USING ERRCODE = 'serialization_failure'; END IF;"
                     " RETURN NEW; END $$")
        conn.execute("CREATE TRIGGER fail_tenth_user BEFORE INSERT ON users FOR EACH ROW"
                     " EXECUTE FUNCTION fail_tenth_user()")
        conn.execute("ALTER TABLE users ENABLE ALWAYS TRIGGER fail_tenth_user")  # also as a replica
        conn.commit()

    report = mirror(seeded_source, empty_target, mode="upsert", overrides=OVERRIDES, run_id="retried",
                    batch_rows=7, workers=1)

    with connection(empty_target) as conn:
        assert conn.execute("SELECT last_value FROM users_written").fetchone()[0] > 20  # the failure happened
    assert counts(empty_target) == counts(seeded_source)
    assert content(empty_target) == content(seeded_source)
    assert report.total("created") == report.rows == sum(counts(seeded_source).values())
    assert audit_actions(empty_target, "retried") == {(table, "created"): n for table, n in counts(seeded_source).items()}


def test_failed_late_seed_rolls_back_and_a_later_run_repairs(seeded_source: str, empty_target: str,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from import_pipelines.engine import late_seed

    def fail(conn, **_) -> None:  # a real database error inside the late-seed transaction
        conn.execute("SELECT 1 / 0")

    monkeypatch.setattr(late_seed, "_remove_placeholders", fail)
    with pytest.raises(MirrorError, match="late-seed phase failed and was rolled back"):
        mirror(seeded_source, empty_target, mode="upsert", overrides=OVERRIDES, run_id="interrupted")
    monkeypatch.undo()

    # exactly as the load phase left it: late references not filled in, the placeholder in use
    with connection(empty_target) as conn:
        assert conn.execute("SELECT count(instructor_id) FROM users").fetchone()[0] == 0
        placeholder = conn.execute("SELECT id FROM categories WHERE xmlid LIKE '~import_pipelines%'").fetchone()[0]
        assert conn.execute("SELECT count(*) FROM categories WHERE parent_id = %s", (placeholder,)).fetchone()[0] == 5

    # create_only touches no existing row: it neither deletes nor repairs the interrupted rows
    skipped = mirror(seeded_source, empty_target, mode="create_only", overrides=OVERRIDES, run_id="skip")
    assert skipped.total("created") == 0
    assert counts(empty_target)["categories"] == 4 + 1
    assert any("placeholder row in 'categories' is kept" in warning for warning in skipped.warnings)

    repaired = mirror(seeded_source, empty_target, mode="upsert", overrides=OVERRIDES, run_id="repair")
    assert content(empty_target) == content(seeded_source) and counts(empty_target) == counts(seeded_source)
    assert repaired.tables["categories"].updated == 4 and repaired.tables["users"].updated == 4


def test_extra_reference_is_translated_like_a_foreign_key(seeded_source: str, empty_target: str) -> None:
    from import_pipelines.mirror import Reference

    for url in (seeded_source, empty_target):  # a soft link: no FOREIGN KEY constraint
        with connection(url) as conn:
            conn.execute("CREATE TABLE bookmarks (id serial PRIMARY KEY, url text NOT NULL UNIQUE, owner bigint)")
            conn.commit()
    with connection(seeded_source) as conn:
        conn.execute("INSERT INTO bookmarks (url, owner) SELECT 'https://x/' || sysmail, id FROM users "
                     "WHERE sysmail IN ('u1@example.org', 'u2@example.org')")
        conn.execute("INSERT INTO bookmarks (url, owner) VALUES ('https://x/none', NULL), ('https://x/gone', 999999)")
        conn.commit()

    report = mirror(seeded_source, empty_target, mode="upsert", overrides=OVERRIDES, run_id="soft",
                    references=[Reference("bookmarks", ("owner",), "users", ("id",))])

    with connection(empty_target) as conn:
        owners = dict(conn.execute("SELECT b.url, u.sysmail FROM bookmarks b LEFT JOIN users u ON u.id = b.owner"
                                   ).fetchall())
    assert owners == {"https://x/u1@example.org": "u1@example.org", "https://x/u2@example.org": "u2@example.org",
                      "https://x/none": None}
    # the dangling soft link in the source is an error, not a silent NULL
    dangling = [e for e in report.errors if e.table == "bookmarks"]
    assert [(e.natural_key, e.column) for e in dangling] == [("https://x/gone", "owner")]


def test_override_keys_are_validated(seeded_source: str, empty_target: str, tmp_path) -> None:
    from import_pipelines.mirror import OverrideError, load_overrides

    bad = tmp_path / "bad.yaml"
    bad.write_text("audit_notes: note_without_list: x\n")
    with pytest.raises(OverrideError, match="not valid YAML"):
        load_overrides(bad)
    bad.write_text("audit_notes: []\n")
    with pytest.raises(OverrideError, match="non-empty list of column names"):
        load_overrides(bad)
    with pytest.raises(MirrorError, match="'audit_notes' has no column 'nope'"):
        mirror(seeded_source, empty_target, tables=["audit_notes"], overrides={"audit_notes": ["nope"]})
    with pytest.raises(MirrorError, match="overrides name table 'ghost'"):
        mirror(seeded_source, empty_target, tables=["tags"], overrides={"ghost": ["x"]})

    with connection(seeded_source) as conn:
        conn.execute("INSERT INTO audit_notes (note, created_on) VALUES ('first', '2025-01-01')")
        conn.commit()
    with pytest.raises(MirrorError, match="not unique in the source: 2 rows have note='first'"):
        mirror(seeded_source, empty_target, tables=["audit_notes"], overrides={"audit_notes": ["note"]})
