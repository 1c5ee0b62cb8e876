-- Roll-up of item executions into batch executions and runs, and the
-- cancellation cascade, driven by plain UPDATEs.
\set VERBOSITY terse

-- all completed -> completed
SELECT ac_fixture('ru1', 2, 2) IS NOT NULL AS fixture;
UPDATE automation_core.item_execution SET status = 'processing' WHERE id = ac_ie('ru1', 1);
SELECT ac_state('ru1');
UPDATE automation_core.item_execution SET status = 'completed' WHERE id = ac_ie('ru1', 1);
SELECT ac_state('ru1');
UPDATE automation_core.item_execution SET status = 'processing' WHERE run_id = ac_run('ru1') AND status = 'pending';
UPDATE automation_core.item_execution SET status = 'completed' WHERE id = ac_ie('ru1', 2);
SELECT ac_state('ru1');
UPDATE automation_core.item_execution SET status = 'completed' WHERE id = ac_ie('ru1', 3);
SELECT ac_state('ru1');
UPDATE automation_core.item_execution SET status = 'completed' WHERE id = ac_ie('ru1', 4);
SELECT ac_state('ru1');
SELECT error_summary IS NULL AS no_summary, finished_at IS NOT NULL AS finished FROM automation_core.run WHERE id = ac_run('ru1');

-- any failed -> failed, with error_summary; a cancelled item does not hide a failure
SELECT ac_fixture('ru2', 2, 2) IS NOT NULL AS fixture;
UPDATE automation_core.item_execution SET status = 'processing' WHERE run_id = ac_run('ru2');
UPDATE automation_core.item_execution SET status = 'failed', error_message = 'boom' WHERE id = ac_ie('ru2', 1);
UPDATE automation_core.item_execution SET status = 'cancelled' WHERE id = ac_ie('ru2', 2);
UPDATE automation_core.item_execution SET status = 'completed' WHERE id IN (ac_ie('ru2', 3), ac_ie('ru2', 4));
SELECT ac_state('ru2');
SELECT error_summary FROM automation_core.run WHERE id = ac_run('ru2');

-- all cancelled -> cancelled; cancelled and completed -> completed
SELECT ac_fixture('ru3', 2, 2) IS NOT NULL AS fixture;
UPDATE automation_core.item_execution SET status = 'cancelled' WHERE id IN (ac_ie('ru3', 1), ac_ie('ru3', 2));
SELECT ac_state('ru3');
UPDATE automation_core.item_execution SET status = 'processing' WHERE id = ac_ie('ru3', 3);
UPDATE automation_core.item_execution SET status = 'cancelled' WHERE id = ac_ie('ru3', 4);
UPDATE automation_core.item_execution SET status = 'completed' WHERE id = ac_ie('ru3', 3);
SELECT ac_state('ru3');

-- one statement ending every item of a run rolls everything up once
SELECT ac_fixture('ru4', 3, 3) IS NOT NULL AS fixture;
UPDATE automation_core.item_execution SET status = 'processing' WHERE run_id = ac_run('ru4');
UPDATE automation_core.item_execution SET status = 'completed' WHERE run_id = ac_run('ru4');
SELECT ac_state('ru4');
SELECT version FROM automation_core.run WHERE id = ac_run('ru4');

-- a retrying item keeps its batch open
SELECT ac_fixture('ru5', 1, 2, 3) IS NOT NULL AS fixture;
UPDATE automation_core.item_execution SET status = 'processing' WHERE run_id = ac_run('ru5');
UPDATE automation_core.item_execution SET status = 'retrying' WHERE id = ac_ie('ru5', 1);
UPDATE automation_core.item_execution SET status = 'completed' WHERE id = ac_ie('ru5', 2);
SELECT ac_state('ru5');
UPDATE automation_core.item_execution SET status = 'failed' WHERE id = ac_ie('ru5', 1);
SELECT ac_state('ru5');
SELECT error_summary FROM automation_core.run WHERE id = ac_run('ru5');

-- a batch execution with no items ends by the run's own hand only
SELECT ac_fixture('ru6', 1, 0) IS NOT NULL AS fixture;
SELECT ac_try($$UPDATE automation_core.batch_execution SET status = 'processing' WHERE id = ac_be('ru6', 1)$$);
SELECT ac_state('ru6');
SELECT ac_try($$UPDATE automation_core.batch_execution SET status = 'completed' WHERE id = ac_be('ru6', 1)$$);
SELECT ac_state('ru6');

-- Cancelling a run by a plain UPDATE cancels whatever is still open in it
SELECT ac_fixture('cx1', 2, 2, 3) IS NOT NULL AS fixture;
UPDATE automation_core.item_execution SET status = 'processing' WHERE id IN (ac_ie('cx1', 1), ac_ie('cx1', 2), ac_ie('cx1', 3));
UPDATE automation_core.item_execution SET status = 'completed' WHERE id = ac_ie('cx1', 1);
UPDATE automation_core.item_execution SET status = 'retrying' WHERE id = ac_ie('cx1', 2);
SELECT ac_state('cx1');
BEGIN;
UPDATE automation_core.run SET status = 'cancelled', cancellation_reason = 'operator' WHERE id = ac_run('cx1');
SELECT ac_state('cx1');
SELECT count(*) FILTER (WHERE finished_at = now()) AS finished_now, count(*) AS all_items
FROM automation_core.item_execution WHERE run_id = ac_run('cx1') AND status = 'cancelled';
COMMIT;
SELECT cancellation_reason FROM automation_core.run WHERE id = ac_run('cx1');
-- the cascade wrote history for each item it cancelled
SELECT i.sequence_number, h.previous_status, h.new_status
FROM automation_core.item_state_history h
JOIN automation_core.item_execution ie ON ie.id = h.item_execution_id
JOIN automation_core.item i ON i.id = ie.item_id
WHERE ie.run_id = ac_run('cx1') AND h.new_status = 'cancelled' ORDER BY 1;
-- a worker finishing a cancelled item is refused
SELECT ac_try($$UPDATE automation_core.item_execution SET status = 'completed' WHERE id = ac_ie('cx1', 3)$$);

-- Cancelling a batch execution cancels its items; the run rolls up
SELECT ac_fixture('cx2', 2, 2) IS NOT NULL AS fixture;
UPDATE automation_core.item_execution SET status = 'processing' WHERE id IN (ac_ie('cx2', 1), ac_ie('cx2', 3));
UPDATE automation_core.batch_execution SET status = 'cancelled' WHERE id = ac_be('cx2', 1);
SELECT ac_state('cx2');
UPDATE automation_core.item_execution SET status = 'processing' WHERE id = ac_ie('cx2', 4);
UPDATE automation_core.item_execution SET status = 'completed' WHERE id IN (ac_ie('cx2', 3), ac_ie('cx2', 4));
SELECT ac_state('cx2');
-- every batch execution cancelled: the run is cancelled
SELECT ac_fixture('cx3', 2, 1) IS NOT NULL AS fixture;
UPDATE automation_core.batch_execution SET status = 'cancelled' WHERE run_id = ac_run('cx3');
SELECT ac_state('cx3');
-- cancelling a pending run
SELECT ac_fixture('cx4', 1, 2) IS NOT NULL AS fixture;
UPDATE automation_core.run SET status = 'cancelled' WHERE id = ac_run('cx4');
SELECT ac_state('cx4');

-- Executions join only a batch execution or run that has not ended, by
-- INSERT or COPY alike; one still open waits for what joins it.
SELECT ac_fixture('jn1', 2, 1) IS NOT NULL AS fixture;
UPDATE automation_core.item_execution SET status = 'processing' WHERE run_id = ac_run('jn1');
UPDATE automation_core.item_execution SET status = 'completed' WHERE id = ac_ie('jn1', 1);
INSERT INTO automation_core.item (batch_id, sequence_number)
SELECT be.batch_id, 10 + b.n FROM automation_core.batch_execution be,
	LATERAL (SELECT substr(name, 7)::int AS n FROM automation_core.batch WHERE id = be.batch_id) b
WHERE be.run_id = ac_run('jn1');
SELECT ac_state('jn1');
CREATE FUNCTION pg_temp.join_sql(corr text, seqs int[]) RETURNS text
LANGUAGE sql AS $f$
	SELECT format($$INSERT INTO automation_core.item_execution (run_id, batch_execution_id, item_id)
		SELECT be.run_id, be.id, i.id FROM automation_core.batch_execution be
		JOIN automation_core.item i ON i.batch_id = be.batch_id
		WHERE be.run_id = %L AND i.sequence_number = ANY (%L)$$, ac_run(corr), seqs)
$f$;
-- into the batch execution that has completed: refused
SELECT ac_try(pg_temp.join_sql('jn1', '{11}'), true);
SELECT ac_try(format($f$COPY automation_core.item_execution (run_id, batch_execution_id, item_id) FROM PROGRAM 'printf "%s\t%s\t%s\n"'$f$,
	ac_run('jn1'), ac_be('jn1', 1), (SELECT id FROM automation_core.item WHERE sequence_number = 11 AND batch_id =
		(SELECT batch_id FROM automation_core.batch_execution WHERE id = ac_be('jn1', 1)))), true);
-- one statement into both: refused as a whole
SELECT ac_try(pg_temp.join_sql('jn1', '{11,12}'), true);
SELECT ac_state('jn1');
-- into the open one: it stays open until the new item ends too
SELECT ac_try(pg_temp.join_sql('jn1', '{12}'));
SELECT count(*) AS history_rows FROM automation_core.item_state_history WHERE item_execution_id = ac_ie('jn1', 12);
UPDATE automation_core.item_execution SET status = 'completed' WHERE id = ac_ie('jn1', 2);
SELECT ac_state('jn1');
UPDATE automation_core.item_execution SET status = 'processing' WHERE id = ac_ie('jn1', 12);
UPDATE automation_core.item_execution SET status = 'completed' WHERE id = ac_ie('jn1', 12);
SELECT ac_state('jn1');
-- a batch execution into the run that has completed: refused
INSERT INTO automation_core.batch (automation_id, name)
SELECT automation_id, 'batch 3' FROM automation_core.run WHERE id = ac_run('jn1');
SELECT ac_try(format($$INSERT INTO automation_core.batch_execution (run_id, batch_id)
	SELECT r.id, b.id FROM automation_core.run r JOIN automation_core.batch b ON b.automation_id = r.automation_id
	WHERE r.id = %L AND b.name = 'batch 3'$$, ac_run('jn1')), true);
-- and into a cancelled run
SELECT ac_fixture('jn2', 1, 1) IS NOT NULL AS fixture;
UPDATE automation_core.run SET status = 'cancelled' WHERE id = ac_run('jn2');
INSERT INTO automation_core.batch (automation_id, name)
SELECT automation_id, 'batch 2' FROM automation_core.run WHERE id = ac_run('jn2');
SELECT ac_try(format($$INSERT INTO automation_core.batch_execution (run_id, batch_id)
	SELECT r.id, b.id FROM automation_core.run r JOIN automation_core.batch b ON b.automation_id = r.automation_id
	WHERE r.id = %L AND b.name = 'batch 2'$$, ac_run('jn2')), true);
-- an INSERT ... ON CONFLICT DO NOTHING that adds nothing is not refused
SELECT ac_try(pg_temp.join_sql('jn1', '{1}') || ' ON CONFLICT DO NOTHING');

-- A batch execution or run ends by hand only when nothing inside is open:
-- completed or failed with an open child is refused (cancelling is the way
-- to stop the work inside).
SELECT ac_fixture('eh1', 2, 2) IS NOT NULL AS fixture;
UPDATE automation_core.item_execution SET status = 'processing' WHERE id IN (ac_ie('eh1', 1), ac_ie('eh1', 3));
UPDATE automation_core.item_execution SET status = 'completed' WHERE id = ac_ie('eh1', 1);
SELECT ac_try(format('UPDATE automation_core.batch_execution SET status = %L WHERE id = %L', 'completed', ac_be('eh1', 1)), true);
SELECT ac_try(format('UPDATE automation_core.batch_execution SET status = %L WHERE id = %L', 'failed', ac_be('eh1', 1)), true);
SELECT ac_try(format('UPDATE automation_core.run SET status = %L WHERE id = %L', 'completed', ac_run('eh1')), true);
SELECT ac_try(format('UPDATE automation_core.run SET status = %L WHERE id = %L', 'failed', ac_run('eh1')), true);
SELECT ac_state('eh1');
-- the items ending in the same statement as their batch execution: allowed
UPDATE automation_core.item_execution SET status = 'processing' WHERE id = ac_ie('eh1', 2);
SELECT ac_try(format($$WITH done AS (UPDATE automation_core.item_execution SET status = 'completed'
	WHERE batch_execution_id = %L AND status = 'processing' RETURNING 1)
	UPDATE automation_core.batch_execution SET status = 'failed' WHERE id = %L$$, ac_be('eh1', 1), ac_be('eh1', 1)), true);
SELECT ac_state('eh1');
-- a batch execution left with no item: may be ended by hand, and then the run rolls up
DELETE FROM automation_core.item_execution WHERE id = ac_ie('eh1', 4);
SELECT ac_try(format('UPDATE automation_core.item_execution SET status = %L WHERE id = %L', 'completed', ac_ie('eh1', 3)));
SELECT ac_state('eh1');
SELECT ac_fixture('eh2', 1, 0) IS NOT NULL AS fixture;
SELECT ac_try(format('UPDATE automation_core.batch_execution SET status = %L WHERE id = %L', 'processing', ac_be('eh2', 1)));
SELECT ac_try(format('UPDATE automation_core.batch_execution SET status = %L WHERE id = %L', 'completed', ac_be('eh2', 1)));
SELECT ac_state('eh2');
-- an application's trigger that ends the run by hand when a batch execution
-- completes is checked like any statement, also inside the roll-up
SELECT ac_fixture('eh4', 2, 1) IS NOT NULL AS fixture;
UPDATE automation_core.item_execution SET status = 'processing' WHERE run_id = ac_run('eh4');
CREATE FUNCTION pg_temp.end_run() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	UPDATE automation_core.run SET status = 'completed' WHERE id = NEW.run_id AND status = 'processing';
	RETURN NULL;
END
$$;
CREATE TRIGGER zz_end_run AFTER UPDATE OF status ON automation_core.batch_execution
	FOR EACH ROW WHEN (NEW.status = 'completed') EXECUTE FUNCTION pg_temp.end_run();
SELECT ac_try(format('UPDATE automation_core.item_execution SET status = %L WHERE id = %L', 'completed', ac_ie('eh4', 1)), true);
SELECT ac_state('eh4');
-- also when the statement ends every item of the run: when the first batch
-- execution completes, the other's roll-up has not run yet, so it is open
SELECT ac_try(format('UPDATE automation_core.item_execution SET status = %L WHERE run_id = %L', 'completed', ac_run('eh4')));
SELECT ac_state('eh4');
DROP TRIGGER zz_end_run ON automation_core.batch_execution;
SELECT ac_try(format('UPDATE automation_core.item_execution SET status = %L WHERE run_id = %L', 'completed', ac_run('eh4')));
SELECT ac_state('eh4');
-- the roll-up itself ends parents as before (the run of eh1 above); and a
-- cancellation of a parent with open children is the way that stops them
SELECT ac_fixture('eh3', 1, 2) IS NOT NULL AS fixture;
SELECT ac_try(format('UPDATE automation_core.batch_execution SET status = %L WHERE id = %L', 'cancelled', ac_be('eh3', 1)));
SELECT ac_state('eh3');

-- Deleting open executions: what is left rolls up, as if they had ended.
SELECT ac_fixture('dl1', 2, 2) IS NOT NULL AS fixture;
UPDATE automation_core.item_execution SET status = 'processing' WHERE id = ac_ie('dl1', 1);
UPDATE automation_core.item_execution SET status = 'completed' WHERE id = ac_ie('dl1', 1);
DELETE FROM automation_core.item_execution WHERE id = ac_ie('dl1', 2);
SELECT ac_state('dl1');
DELETE FROM automation_core.batch_execution WHERE id = ac_be('dl1', 2);
SELECT ac_state('dl1');
-- a batch execution none of whose items ended, all deleted: cancelled
SELECT ac_fixture('dl2', 1, 2) IS NOT NULL AS fixture;
DELETE FROM automation_core.item_execution WHERE run_id = ac_run('dl2');
SELECT ac_state('dl2');
-- deleting an item (the definition) takes its execution along, the same way
SELECT ac_fixture('dl4', 1, 2) IS NOT NULL AS fixture;
UPDATE automation_core.item_execution SET status = 'processing' WHERE id = ac_ie('dl4', 1);
UPDATE automation_core.item_execution SET status = 'completed' WHERE id = ac_ie('dl4', 1);
DELETE FROM automation_core.item WHERE id = (SELECT item_id FROM automation_core.item_execution WHERE id = ac_ie('dl4', 2));
SELECT ac_state('dl4');
-- deleting finished rows changes nothing; deleting whole runs works
SELECT ac_fixture('dl3', 1, 2) IS NOT NULL AS fixture;
UPDATE automation_core.item_execution SET status = 'processing' WHERE run_id = ac_run('dl3');
UPDATE automation_core.item_execution SET status = 'completed' WHERE id = ac_ie('dl3', 1);
-- the row trigger is not even called for a row that had ended; it is for an open one
SET track_functions = 'all';
BEGIN;
DELETE FROM automation_core.item_execution WHERE id = ac_ie('dl3', 1);
SELECT coalesce(pg_stat_get_xact_function_calls('automation_core.after_delete_row'::regproc), 0) AS calls_for_ended_row;
COMMIT;
SELECT ac_state('dl3');
BEGIN;
SELECT ac_fixture('dl5', 1, 2) IS NOT NULL AS fixture;
DELETE FROM automation_core.item_execution WHERE id = ac_ie('dl5', 1);
SELECT pg_stat_get_xact_function_calls('automation_core.after_delete_row'::regproc) AS calls_for_open_row;
COMMIT;
RESET track_functions;
SELECT ac_try(format('DELETE FROM automation_core.run WHERE id IN (%L, %L)', ac_run('dl1'), ac_run('dl3')));

-- A batch execution that comes back with the id of one that had started (a
-- run deleted and restored from a copy) starts again with its first item,
-- in the session that saw the first one start too.
SELECT ac_fixture('rs1', 1, 1) IS NOT NULL AS fixture;
UPDATE automation_core.item_execution SET status = 'processing' WHERE id = ac_ie('rs1', 1);
CREATE TEMP TABLE rs_run AS SELECT id, automation_id, correlation_id FROM automation_core.run WHERE id = ac_run('rs1');
CREATE TEMP TABLE rs_be AS SELECT id, run_id, batch_id FROM automation_core.batch_execution WHERE run_id = ac_run('rs1');
CREATE TEMP TABLE rs_ie AS SELECT id, run_id, batch_execution_id, item_id FROM automation_core.item_execution WHERE run_id = ac_run('rs1');
DELETE FROM automation_core.run WHERE id = ac_run('rs1');
INSERT INTO automation_core.run (id, automation_id, correlation_id) SELECT * FROM rs_run;
INSERT INTO automation_core.batch_execution (id, run_id, batch_id) SELECT * FROM rs_be;
INSERT INTO automation_core.item_execution (id, run_id, batch_execution_id, item_id) SELECT * FROM rs_ie;
SELECT ac_state('rs1');
UPDATE automation_core.item_execution SET status = 'processing' WHERE id = ac_ie('rs1', 1);
SELECT ac_state('rs1');
-- the same within one transaction
BEGIN;
DELETE FROM automation_core.run WHERE id = ac_run('rs1');
INSERT INTO automation_core.run (id, automation_id, correlation_id) SELECT * FROM rs_run;
INSERT INTO automation_core.batch_execution (id, run_id, batch_id) SELECT * FROM rs_be;
INSERT INTO automation_core.item_execution (id, run_id, batch_execution_id, item_id) SELECT * FROM rs_ie;
UPDATE automation_core.item_execution SET status = 'processing' WHERE id = ac_ie('rs1', 1);
SELECT ac_state('rs1');
COMMIT;

-- Subtransactions. A trigger of the application's with a BEGIN ... EXCEPTION
-- block that runs a statement on item_execution and then fails: the work
-- the outer statement has noted is not done (and lost) inside that block.
SELECT ac_fixture('sx1', 1, 2) IS NOT NULL AS fixture;
UPDATE automation_core.item_execution SET status = 'processing' WHERE run_id = ac_run('sx1');
CREATE FUNCTION pg_temp.catch_all() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	BEGIN
		UPDATE automation_core.item_execution SET worker = 'nobody' WHERE false;
		RAISE EXCEPTION 'caught below';
	EXCEPTION WHEN OTHERS THEN
		NULL;
	END;
	RETURN NULL;
END
$$;
CREATE TRIGGER zz_catch_all AFTER UPDATE ON automation_core.item_execution
	FOR EACH ROW WHEN (NEW.status = 'completed') EXECUTE FUNCTION pg_temp.catch_all();
UPDATE automation_core.item_execution SET status = 'completed' WHERE run_id = ac_run('sx1');
DROP TRIGGER zz_catch_all ON automation_core.item_execution;
SELECT ac_state('sx1');
-- A batch execution started in a subtransaction that rolled back is still
-- pending: the next item to start moves it to processing.
SELECT ac_fixture('sx2', 1, 2) IS NOT NULL AS fixture;
BEGIN;
SAVEPOINT s;
UPDATE automation_core.item_execution SET status = 'processing' WHERE id = ac_ie('sx2', 1);
ROLLBACK TO SAVEPOINT s;
COMMIT;
SELECT ac_state('sx2');
UPDATE automation_core.item_execution SET status = 'processing' WHERE id = ac_ie('sx2', 1);
SELECT ac_state('sx2');
-- Work noted by a statement that failed in a subtransaction (here after its
-- rows were changed, in RETURNING) is not done by the next statement.
SELECT ac_fixture('sx3', 1, 2) IS NOT NULL AS fixture;
BEGIN;
SELECT ac_try($$UPDATE automation_core.item_execution SET status = 'processing'
	WHERE id = ac_ie('sx3', 1) RETURNING 1 / (version - version)$$);
UPDATE automation_core.item_execution SET worker = 'nobody' WHERE id = ac_ie('sx3', 2);
COMMIT;
SELECT ac_state('sx3');

-- The proof that a finisher is not the last goes through
-- item_execution_open_idx; renamed away, the same roll-up is done by query
ALTER INDEX automation_core.item_execution_open_idx RENAME TO item_execution_open_idx_renamed;
SELECT ac_fixture('fb1', 1, 3) IS NOT NULL AS fixture;
UPDATE automation_core.item_execution SET status = 'processing' WHERE run_id = ac_run('fb1');
UPDATE automation_core.item_execution SET status = 'completed' WHERE id = ac_ie('fb1', 1);
SELECT ac_state('fb1');
UPDATE automation_core.item_execution SET status = 'completed' WHERE id IN (ac_ie('fb1', 2), ac_ie('fb1', 3));
SELECT ac_state('fb1');
ALTER INDEX automation_core.item_execution_open_idx_renamed RENAME TO item_execution_open_idx;

-- Deciding the roll-up reads the batch execution's items through their
-- indexes, never the whole table, whatever the statistics say. Checked where
-- the old queries' plans were sequential scans, in a database of its own so
-- that the statistics are those of these rows only, with the plans a session
-- uses after its first five calls (generic ones).
\set home :DBNAME
CREATE DATABASE ac_rollup_plans;
\c ac_rollup_plans
SET client_min_messages = warning;
CREATE EXTENSION automation_core;
RESET client_min_messages;
INSERT INTO automation_core.automation (name) VALUES ('many per batch') RETURNING id AS mpb \gset
INSERT INTO automation_core.batch (automation_id, name)
	SELECT :'mpb', 'batch ' || lpad(b::text, 2, '0') FROM generate_series(1, 20) b;
INSERT INTO automation_core.item (batch_id, sequence_number)
	SELECT b.id, s FROM automation_core.batch b, generate_series(1, 500) s WHERE b.automation_id = :'mpb';
-- Finish the items of batch execution be but its last (processing, then
-- completed), take statistics, then finish the last one: which scans did
-- that start, and what became of the batch execution and the run?
CREATE FUNCTION pg_temp.finish_batch(be uuid)
RETURNS TABLE (sequential_scans bigint, open_idx_scans bigint, batch_status text, run_status text)
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
	last uuid;
	seq0 bigint;
	open0 bigint;
BEGIN
	UPDATE automation_core.item_execution SET status = 'processing' WHERE batch_execution_id = be;
	SELECT id INTO last FROM automation_core.item_execution
		WHERE batch_execution_id = be ORDER BY queue_position DESC LIMIT 1;
	UPDATE automation_core.item_execution SET status = 'completed' WHERE batch_execution_id = be AND id <> last;
	ANALYZE automation_core.item_execution;
	seq0 := pg_stat_get_xact_numscans('automation_core.item_execution'::regclass);
	open0 := pg_stat_get_xact_numscans('automation_core.item_execution_open_idx'::regclass);
	UPDATE automation_core.item_execution SET status = 'completed' WHERE id = last;
	RETURN QUERY SELECT
		pg_stat_get_xact_numscans('automation_core.item_execution'::regclass) - seq0,
		pg_stat_get_xact_numscans('automation_core.item_execution_open_idx'::regclass) - open0,
		be_row.status::text, r.status::text
	FROM automation_core.batch_execution be_row JOIN automation_core.run r ON r.id = be_row.run_id
	WHERE be_row.id = be;
END
$$;

-- 1. The run's other batch executions are still open. Both EXISTS of the
-- old check (an open item of this batch execution; one not cancelled) were
-- sequential scans expected to stop early.
SELECT id AS mpb_run FROM automation_core.start_run(:'mpb') \gset
SELECT id AS mpb_be FROM automation_core.batch_execution WHERE run_id = :'mpb_run' ORDER BY id LIMIT 1 \gset
SELECT * FROM pg_temp.finish_batch(:'mpb_be');

-- 2. Every other batch execution of the run has finished: the run rolls up
-- too. In both cases the open items' index is read three times: by the
-- proof's walk, which finds nothing to lock (and walks no second time, as
-- nothing was processing), by the look for an open item, and by the check
-- that a batch execution set to completed has none left, which the
-- roll-up's own UPDATE passes like any other.
SELECT id AS mpb_run FROM automation_core.start_run(:'mpb') \gset
SELECT id AS mpb_be FROM automation_core.batch_execution WHERE run_id = :'mpb_run' ORDER BY id DESC LIMIT 1 \gset
UPDATE automation_core.item_execution SET status = 'processing'
	WHERE run_id = :'mpb_run' AND batch_execution_id <> :'mpb_be';
UPDATE automation_core.item_execution SET status = 'completed'
	WHERE run_id = :'mpb_run' AND batch_execution_id <> :'mpb_be';
SELECT * FROM pg_temp.finish_batch(:'mpb_be');
\c :home
DROP DATABASE ac_rollup_plans;
