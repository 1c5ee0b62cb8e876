-- Audit fields, version, names.
\set VERBOSITY terse
SET SESSION AUTHORIZATION DEFAULT;
CREATE ROLE ac_audit_user;
GRANT USAGE ON SCHEMA automation_core TO ac_audit_user;
GRANT ALL ON ALL TABLES IN SCHEMA automation_core TO ac_audit_user;

-- created_by/updated_by: the session user when no actor is set
SET automation_core.actor = '';
BEGIN;
INSERT INTO automation_core.automation (name) VALUES ('audit one');
SELECT name, created_by = session_user AS by_session_user, updated_by = session_user AS upd_session_user,
	version, created_at = now() AS created_now, updated_at = now() AS updated_now
FROM automation_core.automation WHERE name = 'audit one';
COMMIT;

-- the session user, not the current user
SET ROLE ac_audit_user;
INSERT INTO automation_core.automation (name) VALUES ('audit role');
RESET ROLE;
SELECT created_by = session_user AS by_session_user, created_by <> 'ac_audit_user' AS not_current_user
FROM automation_core.automation WHERE name = 'audit role';

-- the actor setting, when set and non-empty
SET automation_core.actor = 'alice';
INSERT INTO automation_core.automation (name) VALUES ('audit two');
SELECT name, created_by, updated_by FROM automation_core.automation WHERE name = 'audit two';

-- a value the statement sets wins over the actor
INSERT INTO automation_core.automation (name, created_by, updated_by) VALUES ('audit three', 'importer', 'importer2');
SELECT name, created_by, updated_by FROM automation_core.automation WHERE name = 'audit three';

-- created_at, version given by the statement are replaced on INSERT
BEGIN;
INSERT INTO automation_core.automation (name, created_at, updated_at, version)
	VALUES ('audit four', '2000-01-01', '2000-01-01', 42);
SELECT name, version, created_at = now() AS created_now, updated_at = now() AS updated_now
FROM automation_core.automation WHERE name = 'audit four';
COMMIT;
-- UPDATE sets updated_at to the transaction's time, keeps created_at
BEGIN;
UPDATE automation_core.automation SET updated_at = '2000-01-01', description = 'x' WHERE name = 'audit four';
SELECT created_at < now() AS created_kept, updated_at = now() AS updated_now
FROM automation_core.automation WHERE name = 'audit four';
COMMIT;

-- UPDATE: updated_by = actor, created_* kept, version + 1 whatever SET says
BEGIN;
SET LOCAL automation_core.actor = 'bob';
UPDATE automation_core.automation SET description = 'changed', version = 100,
	created_at = '2000-01-01', created_by = 'mallory'
WHERE name = 'audit two';
SELECT name, description, version, created_by, updated_by
FROM automation_core.automation WHERE name = 'audit two';
COMMIT;
SHOW automation_core.actor;
UPDATE automation_core.automation SET version = version - 5 WHERE name = 'audit two';
UPDATE automation_core.automation SET updated_by = 'explicit' WHERE name = 'audit two';
SELECT name, version, created_by, updated_by, created_at < updated_at OR created_at = updated_at AS ordered
FROM automation_core.automation WHERE name = 'audit two';
-- updated_by not in SET: the actor again
UPDATE automation_core.automation SET description = 'again' WHERE name = 'audit two';
SELECT version, updated_by FROM automation_core.automation WHERE name = 'audit two';
-- updated_by in SET with the value it already has (an ORM writing the
-- whole row back) is still the statement's value
UPDATE automation_core.automation SET description = 'orm', updated_by = 'explicit' WHERE name = 'audit two';
SELECT version, updated_by FROM automation_core.automation WHERE name = 'audit two';
UPDATE automation_core.automation SET description = 'orm', updated_by = updated_by WHERE name = 'audit two';
SELECT version, updated_by FROM automation_core.automation WHERE name = 'audit two';
-- updated_by set to NULL: the actor
UPDATE automation_core.automation SET updated_by = NULL WHERE name = 'audit two';
SELECT version, updated_by FROM automation_core.automation WHERE name = 'audit two';

-- an actor longer than the column is cut to 100 characters
SELECT set_config('automation_core.actor', repeat('y', 150), false) IS NOT NULL AS set;
SELECT ac_try($$INSERT INTO automation_core.automation (name) VALUES ('audit long')$$);
SELECT length(created_by) FROM automation_core.automation WHERE name = 'audit long';
-- ... characters, not bytes: never inside a character, in the row or in
-- the history row that takes the same name
SELECT set_config('automation_core.actor', repeat('€', 150), false) IS NOT NULL AS set;
SELECT ac_try($$INSERT INTO automation_core.automation (name) VALUES ('audit long multibyte')$$);
SELECT length(created_by), octet_length(created_by) FROM automation_core.automation WHERE name = 'audit long multibyte';
SELECT ac_fixture('audit mb', 1, 1) IS NOT NULL AS fixture;
UPDATE automation_core.item_execution SET status = 'processing' WHERE id = ac_ie('audit mb', 1);
SELECT h.new_status, length(h.created_by), octet_length(h.created_by), h.created_by = repeat('€', 100) AS whole_chars
FROM automation_core.item_state_history h WHERE h.item_execution_id = ac_ie('audit mb', 1) ORDER BY h.id;
-- a name the statement sets (at most 100 characters) goes to history whole
UPDATE automation_core.item_execution SET status = 'completed', updated_by = repeat('ü', 100) WHERE id = ac_ie('audit mb', 1);
SELECT h.new_status, length(h.created_by), h.created_by = repeat('ü', 100) AS whole_chars
FROM automation_core.item_state_history h WHERE h.item_execution_id = ac_ie('audit mb', 1) ORDER BY h.id DESC LIMIT 1;
DELETE FROM automation_core.run WHERE id = ac_run('audit mb');
SET automation_core.actor = 'alice';

-- ORM-style optimistic locking: WHERE version = $expected
SELECT version AS v FROM automation_core.automation WHERE name = 'audit one' \gset
SELECT ac_try(format($$UPDATE automation_core.automation SET description = 'first' WHERE name = 'audit one' AND version = %s$$, :v));
SELECT ac_try(format($$UPDATE automation_core.automation SET description = 'stale' WHERE name = 'audit one' AND version = %s$$, :v));
SELECT description, version - :v AS bumped FROM automation_core.automation WHERE name = 'audit one';

-- version bump on every table with a version column
SELECT ac_fixture('audit', 1, 1) IS NOT NULL AS fixture;
UPDATE automation_core.automation SET version = 7 WHERE name = 'fixture audit';
UPDATE automation_core.batch SET version = 7 WHERE name = 'batch 1' AND automation_id = (SELECT automation_id FROM automation_core.run WHERE correlation_id = 'audit');
UPDATE automation_core.item SET payload = '{}' WHERE batch_id IN (SELECT batch_id FROM automation_core.batch_execution WHERE run_id = ac_run('audit'));
UPDATE automation_core.run SET correlation_id = 'audit' WHERE id = ac_run('audit');
UPDATE automation_core.batch_execution SET version = 0 WHERE run_id = ac_run('audit');
UPDATE automation_core.item_execution SET worker = 'w' WHERE run_id = ac_run('audit');
SELECT 'automation' AS t, version FROM automation_core.automation WHERE name = 'fixture audit'
UNION ALL SELECT 'batch', b.version FROM automation_core.batch b JOIN automation_core.batch_execution be ON be.batch_id = b.id WHERE be.run_id = ac_run('audit')
UNION ALL SELECT 'item', i.version FROM automation_core.item i JOIN automation_core.item_execution ie ON ie.item_id = i.id WHERE ie.run_id = ac_run('audit')
UNION ALL SELECT 'run', version FROM automation_core.run WHERE id = ac_run('audit')
UNION ALL SELECT 'batch_execution', version FROM automation_core.batch_execution WHERE run_id = ac_run('audit')
UNION ALL SELECT 'item_execution', version FROM automation_core.item_execution WHERE run_id = ac_run('audit')
ORDER BY 1;

-- Names: trimmed, non-empty
INSERT INTO automation_core.automation (name) VALUES (E'  \t padded name \n ');
SELECT '[' || name || ']' AS name FROM automation_core.automation WHERE name LIKE '%padded%';
UPDATE automation_core.automation SET name = '  renamed  ' WHERE name = 'padded name';
SELECT '[' || name || ']' AS name FROM automation_core.automation WHERE name LIKE '%renamed%';
SELECT ac_try($$INSERT INTO automation_core.automation (name) VALUES ('')$$);
SELECT ac_try($$INSERT INTO automation_core.automation (name) VALUES (E'  \t ')$$);
SELECT ac_try($$UPDATE automation_core.automation SET name = ' ' WHERE name = 'renamed'$$);
SELECT ac_try($$INSERT INTO automation_core.automation (name) VALUES (NULL)$$);

SELECT ac_try($$INSERT INTO automation_core.batch (automation_id, name) SELECT id, ' b1 ' FROM automation_core.automation WHERE name = 'renamed'$$);
SELECT '[' || b.name || ']' AS name FROM automation_core.batch b JOIN automation_core.automation a ON a.id = b.automation_id WHERE a.name = 'renamed';
SELECT ac_try($$INSERT INTO automation_core.batch (automation_id, name) SELECT id, '   ' FROM automation_core.automation WHERE name = 'renamed'$$);
-- UNIQUE (automation_id, name) sees the trimmed name
SELECT ac_try($$INSERT INTO automation_core.batch (automation_id, name) SELECT id, 'b1  ' FROM automation_core.automation WHERE name = 'renamed'$$);
SELECT ac_try($$INSERT INTO automation_core.item (batch_id, sequence_number) SELECT b.id, -1 FROM automation_core.batch b WHERE b.name = 'b1'$$);

SELECT ac_try($$INSERT INTO automation_core.engine (name, type) VALUES (' engine one ', ' airflow ')$$);
SELECT '[' || name || '] [' || type || ']' AS engine FROM automation_core.engine;
SELECT ac_try($$INSERT INTO automation_core.engine (name, type) VALUES ('', 'x')$$);
SELECT ac_try($$INSERT INTO automation_core.engine (name, type) VALUES ('engine two', ' ')$$);
SELECT ac_try($$UPDATE automation_core.engine SET type = '' WHERE name = 'engine one'$$);
SELECT ac_try($$INSERT INTO automation_core.engine (name, type) VALUES ('engine one  ', 'x')$$);

-- unique among active automations; an inactive duplicate is allowed
SELECT ac_try($$INSERT INTO automation_core.automation (name) VALUES (' renamed')$$);
SELECT ac_try($$INSERT INTO automation_core.automation (name, is_active) VALUES ('renamed', false)$$);
SELECT ac_try($$INSERT INTO automation_core.automation (name, is_active) VALUES ('renamed', false)$$);
SELECT ac_try($$UPDATE automation_core.automation SET is_active = true WHERE name = 'renamed' AND NOT is_active$$);
SELECT ac_try($$UPDATE automation_core.automation SET is_active = false WHERE name = 'renamed' AND is_active$$);
SELECT ac_try($$UPDATE automation_core.automation SET is_active = true WHERE id = (SELECT id FROM automation_core.automation WHERE name = 'renamed' ORDER BY created_at, id LIMIT 1)$$);
SELECT count(*) FILTER (WHERE is_active) AS active, count(*) FILTER (WHERE NOT is_active) AS inactive
FROM automation_core.automation WHERE name = 'renamed';

-- the version does not wrap around
INSERT INTO automation_core.automation (name) VALUES ('audit max version');
SET session_replication_role = replica;
UPDATE automation_core.automation SET version = 2147483647 WHERE name = 'audit max version';
RESET session_replication_role;
SELECT regexp_replace(ac_try($$UPDATE automation_core.automation SET description = 'x' WHERE name = 'audit max version'$$),
	'[0-9a-f-]{36}', '<id>') AS refused;
SELECT version, description FROM automation_core.automation WHERE name = 'audit max version';

RESET automation_core.actor;

DROP OWNED BY ac_audit_user;
DROP ROLE ac_audit_user;
