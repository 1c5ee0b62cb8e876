-- A role with every table privilege still can't write history.
\set VERBOSITY terse
CREATE ROLE ac_writer;
GRANT USAGE ON SCHEMA automation_core TO ac_writer;
GRANT ALL ON ALL TABLES IN SCHEMA automation_core TO ac_writer;
GRANT ALL ON ALL SEQUENCES IN SCHEMA automation_core TO ac_writer;
GRANT EXECUTE ON FUNCTION ac_try(text, boolean), ac_fixture(text, int, int, int), ac_ie(text, int), ac_run(text), ac_state(text) TO ac_writer;

SET ROLE ac_writer;
SELECT current_user;
-- it writes every other table, and the triggers write history for it
SELECT ac_fixture('priv', 1, 2) IS NOT NULL AS fixture;
SELECT ac_try($$UPDATE automation_core.item_execution SET status = 'processing' WHERE id = ac_ie('priv', 1)$$);
SELECT ac_try($$INSERT INTO automation_core.engine (name, type) VALUES ('priv engine', 'x')$$);
SELECT ac_try($$INSERT INTO automation_core.orchestration_instance (engine_id, external_id) SELECT id, 'p1' FROM automation_core.engine WHERE name = 'priv engine'$$);
SELECT ac_try($$INSERT INTO automation_core.run_orchestration (run_id, orchestration_instance_id) SELECT ac_run('priv'), id FROM automation_core.orchestration_instance WHERE external_id = 'p1'$$);
SELECT ac_try($$UPDATE automation_core.engine SET type = 'y' WHERE name = 'priv engine'$$);
SELECT ac_try($$DELETE FROM automation_core.run_orchestration WHERE run_id = ac_run('priv')$$);
SELECT count(*) AS history_rows FROM automation_core.item_state_history h
JOIN automation_core.item_execution ie ON ie.id = h.item_execution_id WHERE ie.run_id = ac_run('priv');
-- but never history
SELECT ac_try($$INSERT INTO automation_core.item_state_history (item_execution_id, new_status, changed_at) VALUES (ac_ie('priv', 1), 'completed', now())$$);
SELECT ac_try($$INSERT INTO automation_core.item_state_history (item_execution_id, new_status, changed_at) OVERRIDING SYSTEM VALUE VALUES (ac_ie('priv', 1), 'completed', now())$$);
SELECT ac_try($$UPDATE automation_core.item_state_history SET created_by = 'forged' WHERE item_execution_id = ac_ie('priv', 1)$$);
SELECT ac_try($$DELETE FROM automation_core.item_state_history WHERE item_execution_id = ac_ie('priv', 1)$$);
SELECT ac_try($$TRUNCATE automation_core.item_state_history$$);
-- nor switch the triggers off
SELECT ac_try($$ALTER TABLE automation_core.item_state_history DISABLE TRIGGER history_guard$$);
SELECT ac_try($$SET session_replication_role = replica$$);
SELECT count(*) AS history_rows FROM automation_core.item_state_history h
JOIN automation_core.item_execution ie ON ie.id = h.item_execution_id WHERE ie.run_id = ac_run('priv');
-- deleting its own item execution takes the history with it
SELECT ac_try($$DELETE FROM automation_core.item_execution WHERE id = ac_ie('priv', 1)$$);
SELECT count(*) AS history_rows FROM automation_core.item_state_history h
JOIN automation_core.item_execution ie ON ie.id = h.item_execution_id WHERE ie.run_id = ac_run('priv');
-- nor the event log's epochs, whose order consumers rely on
SELECT ac_try($$INSERT INTO automation_core.event_epoch (epoch, system_identifier) VALUES (2147483647, 0)$$);
SELECT ac_try($$UPDATE automation_core.event_epoch SET epoch = 0$$);
SELECT ac_try($$DELETE FROM automation_core.event_epoch$$);
SELECT ac_try($$TRUNCATE automation_core.event_epoch$$);
RESET ROLE;
-- (nor can a superuser, short of switching the triggers off)
SELECT ac_try($$UPDATE automation_core.event_epoch SET epoch = 0$$);
SET ROLE ac_writer;
SELECT count(*) > 0 AS epochs_kept FROM automation_core.event_epoch;
RESET ROLE;

-- The grants the README gives an application role are enough for the
-- whole cycle: definitions, a run, a worker, the event log.
CREATE ROLE ac_app;
GRANT USAGE ON SCHEMA automation_core TO ac_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA automation_core TO ac_app;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA automation_core TO ac_app;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA automation_core TO ac_app;
SET ROLE ac_app;
SELECT automation_core.register_consumer('ac_app consumer') IS NOT NULL AS registered;
WITH a AS (INSERT INTO automation_core.automation (name) VALUES ('ac_app automation') RETURNING id),
     b AS (INSERT INTO automation_core.batch (automation_id, name) SELECT id, 'b' FROM a RETURNING id)
INSERT INTO automation_core.item (batch_id, sequence_number) SELECT b.id, n FROM b, generate_series(1, 2) n;
SELECT (automation_core.start_run(id, 'ac_app', 2)).status AS started
FROM automation_core.automation WHERE name = 'ac_app automation';
SELECT (automation_core.complete(c.id, attempt => c.attempt_count)).status AS first
FROM automation_core.claim(ac_run('ac_app'), 'w') c;
SELECT (automation_core.fail(c.id, 'boom', retry_delay => interval '0', attempt => c.attempt_count)).status AS second
FROM automation_core.claim(ac_run('ac_app'), 'w') c;
SELECT (automation_core.cancel_run(ac_run('ac_app'), 'done here')).status AS cancelled;
SELECT string_agg(event_type, ' ' ORDER BY id) AS events
FROM automation_core.next_events('ac_app consumer', 100) WHERE run_id = ac_run('ac_app');
RESET ROLE;
DELETE FROM automation_core.automation WHERE name = 'ac_app automation';
DELETE FROM automation_core.consumer WHERE name = 'ac_app consumer';
DROP OWNED BY ac_app;
DROP ROLE ac_app;

-- a role without privileges gets the ordinary permission errors
CREATE ROLE ac_nobody;
SET ROLE ac_nobody;
SELECT ac_try($$SELECT count(*) FROM automation_core.item_state_history$$);
RESET ROLE;

DELETE FROM automation_core.run WHERE correlation_id = 'priv';
DROP OWNED BY ac_writer;
DROP ROLE ac_writer;
DROP ROLE ac_nobody;
