-- COPY passes through the same rules; session_replication_role = replica
-- (the restore path) copies rows as they are.
\set VERBOSITY terse
SET automation_core.actor = 'copier';
COPY automation_core.automation (name, description) FROM STDIN;
  copied one  	from copy
copied two	\N
\.
SELECT '[' || name || ']' AS name, description, created_by, version
FROM automation_core.automation WHERE name LIKE 'copied%' ORDER BY 1;
-- a blank name is refused by COPY as by INSERT
SELECT ac_try($$COPY automation_core.automation (name) FROM PROGRAM 'printf "   \n"'$$);
SELECT ac_fixture('copy', 1, 1) IS NOT NULL AS fixture;
-- COPY of status rows: pending only, history written
SELECT ac_try(format($f$COPY automation_core.run (automation_id, status) FROM PROGRAM 'printf "%s\tcompleted\n"'$f$,
	(SELECT id FROM automation_core.automation WHERE name = 'copied one')));
SELECT ac_try(format($f$COPY automation_core.run (automation_id, correlation_id) FROM PROGRAM 'printf "%s\tcopy2\n"'$f$,
	(SELECT id FROM automation_core.automation WHERE name = 'copied one')));
SELECT status, created_by, version FROM automation_core.run WHERE correlation_id = 'copy2';
INSERT INTO automation_core.item (batch_id, sequence_number)
SELECT b.id, 2 FROM automation_core.batch b JOIN automation_core.batch_execution be ON be.batch_id = b.id
WHERE be.run_id = ac_run('copy');
SELECT ac_try(format($f$COPY automation_core.item_execution (run_id, batch_execution_id, item_id, attempt_count) FROM PROGRAM 'printf "%s\t%s\t%s\t3\n"'$f$,
	ac_run('copy'), ac_be('copy', 1), (SELECT id FROM automation_core.item i WHERE sequence_number = 2 AND batch_id = (SELECT batch_id FROM automation_core.batch_execution WHERE id = ac_be('copy', 1)))));
SELECT ac_try(format($f$COPY automation_core.item_execution (run_id, batch_execution_id, item_id) FROM PROGRAM 'printf "%s\t%s\t%s\n"'$f$,
	ac_run('copy'), ac_be('copy', 1), (SELECT id FROM automation_core.item i WHERE sequence_number = 2 AND batch_id = (SELECT batch_id FROM automation_core.batch_execution WHERE id = ac_be('copy', 1)))));
SELECT i.sequence_number, h.previous_status, h.new_status, h.created_by
FROM automation_core.item_state_history h
JOIN automation_core.item_execution ie ON ie.id = h.item_execution_id
JOIN automation_core.item i ON i.id = ie.item_id
WHERE ie.run_id = ac_run('copy') ORDER BY 1, h.id;
RESET automation_core.actor;

-- replica mode: no trigger fires, rows are stored as given
SET session_replication_role = replica;
INSERT INTO automation_core.automation (name, created_at, updated_at, created_by, updated_by, version)
VALUES ('  restored  ', '2001-02-03 04:05:06+00', '2001-02-04 04:05:06+00', 'orig', 'orig2', 17);
UPDATE automation_core.run SET status = 'completed', started_at = '2001-02-03 00:00:00+00',
	finished_at = '2001-02-03 00:01:00+00', version = 9
WHERE id = ac_run('copy');
UPDATE automation_core.item_execution SET status = 'failed', attempt_count = 5 WHERE run_id = ac_run('copy');
INSERT INTO automation_core.item_state_history (id, item_execution_id, previous_status, new_status, changed_at, created_at, created_by)
OVERRIDING SYSTEM VALUE
SELECT 1000000, id, 'processing', 'failed', '2001-02-03 00:00:00+00', '2001-02-03 00:00:00+00', 'orig'
FROM automation_core.item_execution WHERE id = ac_ie('copy', 1);
RESET session_replication_role;
SELECT '[' || name || ']' AS name, created_at, created_by, updated_by, version
FROM automation_core.automation WHERE name LIKE '%restored%';
SELECT ac_state('copy');
SELECT status, started_at, finished_at, version FROM automation_core.run WHERE id = ac_run('copy');
-- the batch execution was not rolled up: nothing fired
SELECT i.sequence_number, ie.status, ie.attempt_count, (SELECT count(*) FROM automation_core.item_state_history h WHERE h.item_execution_id = ie.id) AS history
FROM automation_core.item_execution ie JOIN automation_core.item i ON i.id = ie.item_id
WHERE ie.run_id = ac_run('copy') ORDER BY 1;
-- and the rules are back in origin mode
SELECT ac_try($$UPDATE automation_core.run SET status = 'processing' WHERE id = ac_run('copy')$$);
SELECT ac_try($$DELETE FROM automation_core.item_state_history WHERE id = 1000000$$);
SELECT ac_try($$UPDATE automation_core.automation SET name = ' ' WHERE name = '  restored  '$$);
