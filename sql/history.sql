-- The append-only item_state_history.
\set VERBOSITY terse
SET automation_core.actor = 'hist-actor';
SELECT ac_fixture('hist', 1, 3, 3) IS NOT NULL AS fixture;
-- one row per inserted item execution: NULL -> pending, by the actor
SELECT i.sequence_number, h.previous_status, h.new_status, h.created_by
FROM automation_core.item_state_history h
JOIN automation_core.item_execution ie ON ie.id = h.item_execution_id
JOIN automation_core.item i ON i.id = ie.item_id
WHERE ie.run_id = ac_run('hist') ORDER BY h.id;

-- one row per status change, none for other updates
SET automation_core.actor = 'worker-1';
UPDATE automation_core.item_execution SET status = 'processing' WHERE id = ac_ie('hist', 1);
UPDATE automation_core.item_execution SET worker = 'w1' WHERE id = ac_ie('hist', 1);
UPDATE automation_core.item_execution SET status = 'processing' WHERE id = ac_ie('hist', 1);
UPDATE automation_core.item_execution SET status = 'retrying' WHERE id = ac_ie('hist', 1);
SET automation_core.actor = 'worker-2';
UPDATE automation_core.item_execution SET status = 'processing' WHERE id = ac_ie('hist', 1);
UPDATE automation_core.item_execution SET status = 'completed' WHERE id = ac_ie('hist', 1);
-- a refused change writes nothing
SELECT ac_try($$UPDATE automation_core.item_execution SET status = 'failed' WHERE id = ac_ie('hist', 1)$$);
-- a statement's updated_by is the history's created_by
UPDATE automation_core.item_execution SET status = 'processing', updated_by = 'explicit' WHERE id = ac_ie('hist', 2);
RESET automation_core.actor;
UPDATE automation_core.item_execution SET status = 'cancelled' WHERE id = ac_ie('hist', 2);

SELECT i.sequence_number, h.previous_status, h.new_status,
	CASE WHEN h.created_by = session_user THEN '(session user)' ELSE h.created_by END AS created_by
FROM automation_core.item_state_history h
JOIN automation_core.item_execution ie ON ie.id = h.item_execution_id
JOIN automation_core.item i ON i.id = ie.item_id
WHERE ie.run_id = ac_run('hist') ORDER BY i.sequence_number, h.id;

-- changed_at is the time of the change; ids grow
BEGIN;
UPDATE automation_core.item_execution SET status = 'processing' WHERE id = ac_ie('hist', 3);
SELECT changed_at = now() AS changed_now, created_at = now() AS created_now
FROM automation_core.item_state_history WHERE item_execution_id = ac_ie('hist', 3) ORDER BY id DESC LIMIT 1;
COMMIT;
-- a status change in a rolled-back transaction leaves no history
BEGIN;
UPDATE automation_core.item_execution SET status = 'failed' WHERE id = ac_ie('hist', 3);
ROLLBACK;
SELECT count(*) AS item3_history FROM automation_core.item_state_history WHERE item_execution_id = ac_ie('hist', 3);
-- nor one in a rolled-back subtransaction
BEGIN;
SAVEPOINT s;
UPDATE automation_core.item_execution SET status = 'failed' WHERE id = ac_ie('hist', 3);
ROLLBACK TO SAVEPOINT s;
UPDATE automation_core.item_execution SET status = 'completed' WHERE id = ac_ie('hist', 3);
COMMIT;
SELECT previous_status, new_status FROM automation_core.item_state_history
WHERE item_execution_id = ac_ie('hist', 3) ORDER BY id;

-- an INSERT's first history rows are written a heap page at a time, after
-- the statement: an error while they wait (here the history's id sequence
-- running out after 2 of 3 rows) throws them away with the statement, and
-- the next statement in the transaction writes only its own
SELECT ac_fixture('hist-err', 1, 0) AS err_run \gset
SELECT id AS err_be FROM automation_core.batch_execution WHERE run_id = :'err_run' \gset
INSERT INTO automation_core.item (batch_id, sequence_number)
SELECT b.id, g FROM automation_core.batch_execution be JOIN automation_core.batch b ON b.id = be.batch_id,
	generate_series(1, 4) g WHERE be.id = :'err_be';
BEGIN;
SAVEPOINT s;
DO $$BEGIN EXECUTE format('ALTER SEQUENCE %s MAXVALUE %s',
	pg_get_serial_sequence('automation_core.item_state_history', 'id'),
	nextval(pg_get_serial_sequence('automation_core.item_state_history', 'id')) + 2); END$$;
SELECT left(ac_try(format($q$INSERT INTO automation_core.item_execution (run_id, batch_execution_id, item_id)
	SELECT %L, %L, i.id FROM automation_core.item i JOIN automation_core.batch_execution be ON be.batch_id = i.batch_id
	WHERE be.id = %L AND i.sequence_number <= 3$q$, :'err_run', :'err_be', :'err_be')), 5) AS sequence_ran_out;
ROLLBACK TO SAVEPOINT s;
INSERT INTO automation_core.item_execution (run_id, batch_execution_id, item_id)
SELECT :'err_run', :'err_be', i.id FROM automation_core.item i JOIN automation_core.batch_execution be ON be.batch_id = i.batch_id
WHERE be.id = :'err_be' AND i.sequence_number = 4;
COMMIT;
SELECT count(*) AS item_executions,
	(SELECT count(*) FROM automation_core.item_state_history h
	 WHERE NOT EXISTS (SELECT 1 FROM automation_core.item_execution ie WHERE ie.id = h.item_execution_id)) AS orphan_history,
	(SELECT count(*) FROM automation_core.item_state_history h JOIN automation_core.item_execution ie ON ie.id = h.item_execution_id
	 WHERE ie.run_id = :'err_run') AS history
FROM automation_core.item_execution WHERE run_id = :'err_run';
DELETE FROM automation_core.run WHERE id = :'err_run';

-- columns added to the history table by hand stay null in the rows
-- automation_core writes, however many there are; a NOT NULL one makes
-- those writes fail rather than hold a null
SELECT ac_fixture('hist-cols', 1, 3) AS cols_run \gset
DO $$BEGIN FOR i IN 1..40 LOOP
	EXECUTE format('ALTER TABLE automation_core.item_state_history ADD COLUMN extra%s int', i);
END LOOP; END$$;
UPDATE automation_core.item_execution SET status = 'processing' WHERE id = ac_ie('hist-cols', 1);
INSERT INTO automation_core.item (batch_id, sequence_number)
SELECT batch_id, 99 FROM automation_core.batch_execution WHERE run_id = :'cols_run';
INSERT INTO automation_core.item_execution (run_id, batch_execution_id, item_id)
SELECT be.run_id, be.id, i.id FROM automation_core.batch_execution be
JOIN automation_core.item i ON i.batch_id = be.batch_id AND i.sequence_number = 99
WHERE be.run_id = :'cols_run';
SELECT h.new_status, count(*), bool_and(h.extra1 IS NULL AND h.extra40 IS NULL) AS added_null
FROM automation_core.item_state_history h JOIN automation_core.item_execution ie ON ie.id = h.item_execution_id
WHERE ie.run_id = :'cols_run' GROUP BY h.new_status ORDER BY h.new_status;
ALTER TABLE automation_core.item_state_history ADD COLUMN strict_note text NOT NULL DEFAULT 'x';
SELECT ac_try($$UPDATE automation_core.item_execution SET status = 'processing' WHERE id = ac_ie('hist-cols', 2)$$);
DO $$BEGIN FOR i IN 1..40 LOOP
	EXECUTE format('ALTER TABLE automation_core.item_state_history DROP COLUMN extra%s', i);
END LOOP; END$$;
ALTER TABLE automation_core.item_state_history DROP COLUMN strict_note;
UPDATE automation_core.item_execution SET status = 'processing' WHERE id = ac_ie('hist-cols', 2);
SELECT count(*) AS history_rows FROM automation_core.item_state_history h
JOIN automation_core.item_execution ie ON ie.id = h.item_execution_id WHERE ie.run_id = :'cols_run';
DELETE FROM automation_core.run WHERE id = :'cols_run';

-- a client can't write history, even the table owner
SELECT ac_try($$INSERT INTO automation_core.item_state_history (item_execution_id, new_status, changed_at) VALUES (ac_ie('hist', 1), 'failed', now())$$);
SELECT ac_try($$UPDATE automation_core.item_state_history SET new_status = 'failed' WHERE item_execution_id = ac_ie('hist', 1)$$);
SELECT ac_try($$DELETE FROM automation_core.item_state_history WHERE item_execution_id = ac_ie('hist', 1)$$);
SELECT ac_try($$DELETE FROM automation_core.item_state_history$$);
SELECT ac_try($$TRUNCATE automation_core.item_state_history$$);
SELECT ac_try($$TRUNCATE automation_core.item_state_history CASCADE$$);
SELECT ac_try(format($f$COPY automation_core.item_state_history (item_execution_id, new_status, changed_at) FROM PROGRAM 'printf "%s\tfailed\t2020-01-01\n"'$f$, ac_ie('hist', 1)));
SELECT count(*) AS hist_rows FROM automation_core.item_state_history h
JOIN automation_core.item_execution ie ON ie.id = h.item_execution_id WHERE ie.run_id = ac_run('hist');

-- TRUNCATE of a table whose cascade reaches history is refused too
SET client_min_messages = warning;
SELECT ac_try($$TRUNCATE automation_core.item_execution CASCADE$$);
SELECT ac_try($$TRUNCATE automation_core.automation CASCADE$$);
RESET client_min_messages;

-- the rows go away with their item execution, and only then
SELECT count(*) AS before FROM automation_core.item_state_history WHERE item_execution_id = ac_ie('hist', 2);
SELECT ac_ie('hist', 2) AS gone \gset
DELETE FROM automation_core.item_execution WHERE id = :'gone';
SELECT count(*) AS after FROM automation_core.item_state_history WHERE item_execution_id = :'gone';
SELECT count(*) AS others_kept FROM automation_core.item_state_history h
JOIN automation_core.item_execution ie ON ie.id = h.item_execution_id WHERE ie.run_id = ac_run('hist');
-- deleting the whole run (cascade through batch execution) removes the rest
DELETE FROM automation_core.run WHERE id = ac_run('hist');
SELECT count(*) AS orphans FROM automation_core.item_state_history h
WHERE NOT EXISTS (SELECT 1 FROM automation_core.item_execution ie WHERE ie.id = h.item_execution_id);
