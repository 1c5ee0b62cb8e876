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
RESET ROLE;

-- a role without privileges gets the ordinary permission errors
CREATE ROLE ac_nobody;
SET ROLE ac_nobody;
SELECT ac_try($$SELECT count(*) FROM automation_core.item_state_history$$);
RESET ROLE;

DELETE FROM automation_core.run WHERE correlation_id = 'priv';
DROP OWNED BY ac_writer;
DROP ROLE ac_writer;
DROP ROLE ac_nobody;
