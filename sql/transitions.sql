-- The state machine on run, batch_execution, item_execution and
-- orchestration_instance: initial status, every transition through the
-- trigger, timestamps, frozen terminal rows.
\set VERBOSITY terse
INSERT INTO automation_core.automation (name) VALUES ('transitions');
INSERT INTO automation_core.engine (name, type) VALUES ('transitions engine', 'test');

-- A new row of a status table, alone in its run where it has one.
CREATE FUNCTION tr_new(tbl text) RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
	a uuid := (SELECT id FROM automation_core.automation WHERE name = 'transitions');
	r uuid;
	b uuid;
	be uuid;
	i uuid;
	x uuid;
BEGIN
	IF tbl = 'orchestration_instance' THEN
		INSERT INTO automation_core.orchestration_instance (engine_id, external_id)
		SELECT id, gen_random_uuid()::text FROM automation_core.engine WHERE name = 'transitions engine'
		RETURNING id INTO x;
		RETURN x;
	END IF;
	INSERT INTO automation_core.run (automation_id) VALUES (a) RETURNING id INTO r;
	IF tbl = 'run' THEN
		RETURN r;
	END IF;
	INSERT INTO automation_core.batch (automation_id, name) VALUES (a, gen_random_uuid()::text) RETURNING id INTO b;
	INSERT INTO automation_core.batch_execution (run_id, batch_id) VALUES (r, b) RETURNING id INTO be;
	IF tbl = 'batch_execution' THEN
		RETURN be;
	END IF;
	INSERT INTO automation_core.item (batch_id, sequence_number) VALUES (b, 1) RETURNING id INTO i;
	INSERT INTO automation_core.item_execution (run_id, batch_execution_id, item_id, max_attempts)
		VALUES (r, be, i, 3) RETURNING id INTO x;
	RETURN x;
END
$$;

CREATE FUNCTION tr_set(tbl text, id uuid, st text) RETURNS text LANGUAGE sql AS $$
	SELECT ac_try(format('UPDATE automation_core.%I SET status = %L WHERE id = %L', tbl, st, id))
$$;

-- A path of allowed steps that reaches a status from pending.
CREATE FUNCTION tr_path(st text) RETURNS text[] LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE st
		WHEN 'pending' THEN '{}'::text[]
		WHEN 'processing' THEN '{processing}'
		WHEN 'retrying' THEN '{processing,retrying}'
		WHEN 'completed' THEN '{processing,completed}'
		WHEN 'failed' THEN '{processing,failed}'
		WHEN 'cancelled' THEN '{cancelled}'
	END
$$;

-- Try the change from one status to another on a fresh row.
CREATE FUNCTION tr_try(tbl text, f text, t text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	x uuid := tr_new(tbl);
	step text;
	res text;
BEGIN
	FOREACH step IN ARRAY tr_path(f) LOOP
		res := tr_set(tbl, x, step);
		IF res <> 'ok 1' THEN
			RETURN 'setup failed: ' || res;
		END IF;
	END LOOP;
	RETURN tr_set(tbl, x, t);
END
$$;

-- Every change between two different statuses, on every status table:
-- what the trigger allows must be exactly what can_transition allows
-- (retrying only for item executions), and refusals are 23514 with the
-- table's transition constraint.
WITH s AS (SELECT unnest(enum_range(NULL::automation_core.execution_status)) AS st),
tries AS (
	SELECT tbl, f.st AS f, t.st AS t, tr_try(tbl, f.st::text, t.st::text) AS res
	FROM unnest('{run,batch_execution,item_execution,orchestration_instance}'::text[]) AS tbl,
		s f, s t
	WHERE f.st <> t.st
	  AND (tbl = 'item_execution' OR f.st <> 'retrying')
)
SELECT tbl, f AS "from",
	string_agg(t::text, ', ' ORDER BY t) FILTER (WHERE res = 'ok 1') AS allowed,
	string_agg(DISTINCT CASE WHEN res <> 'ok 1' THEN split_part(res, ':', 1) END, ', ') AS refused_with,
	bool_and((res = 'ok 1') = (automation_core.can_transition(f, t)
		AND (t <> 'retrying' OR tbl = 'item_execution'))) AS matches_spec
FROM tries
GROUP BY tbl, f
ORDER BY tbl, f;

-- the messages
SELECT tr_try('run', 'pending', 'completed');
SELECT tr_try('run', 'processing', 'retrying');
SELECT tr_try('batch_execution', 'processing', 'retrying');
SELECT tr_try('orchestration_instance', 'processing', 'retrying');
SELECT tr_try('item_execution', 'completed', 'processing');
SELECT tr_try('item_execution', 'processing', 'pending');

-- INSERT must be pending, without timestamps
SELECT ac_try($$INSERT INTO automation_core.run (automation_id, status) SELECT id, 'processing' FROM automation_core.automation WHERE name = 'transitions'$$);
SELECT ac_try($$INSERT INTO automation_core.run (automation_id, status) SELECT id, 'completed' FROM automation_core.automation WHERE name = 'transitions'$$);
SELECT ac_try($$INSERT INTO automation_core.run (automation_id, started_at) SELECT id, now() FROM automation_core.automation WHERE name = 'transitions'$$);
SELECT ac_try($$INSERT INTO automation_core.run (automation_id, finished_at) SELECT id, now() FROM automation_core.automation WHERE name = 'transitions'$$);
SELECT ac_try($$INSERT INTO automation_core.orchestration_instance (engine_id, external_id, status) SELECT id, 'x1', 'cancelled' FROM automation_core.engine$$);
SELECT ac_try($$INSERT INTO automation_core.orchestration_instance (engine_id, external_id, started_at) SELECT id, 'x1', now() FROM automation_core.engine$$);
SELECT ac_fixture('tr', 1, 2) IS NOT NULL AS fixture;
SELECT ac_try($$INSERT INTO automation_core.batch_execution (run_id, batch_id, status) SELECT run_id, batch_id, 'failed' FROM automation_core.batch_execution WHERE id = ac_be('tr', 1)$$);
SELECT ac_try($$INSERT INTO automation_core.item_execution (run_id, batch_execution_id, item_id, status) SELECT run_id, batch_execution_id, item_id, 'retrying' FROM automation_core.item_execution WHERE id = ac_ie('tr', 1)$$);
SELECT ac_try($$INSERT INTO automation_core.item_execution (run_id, batch_execution_id, item_id, finished_at) SELECT run_id, batch_execution_id, item_id, now() FROM automation_core.item_execution WHERE id = ac_ie('tr', 1)$$);
-- an explicit 'pending' is fine (the duplicate key shows the row got that far)
SELECT ac_try($$INSERT INTO automation_core.item_execution (run_id, batch_execution_id, item_id, status) SELECT run_id, batch_execution_id, item_id, 'pending' FROM automation_core.item_execution WHERE id = ac_ie('tr', 1)$$);

-- timestamps: set by the extension, refused from a statement
SELECT started_at IS NULL AS no_start, finished_at IS NULL AS no_finish FROM automation_core.item_execution WHERE id = ac_ie('tr', 1);
BEGIN;
UPDATE automation_core.item_execution SET status = 'processing' WHERE id = ac_ie('tr', 1);
SELECT status, started_at = now() AS started_now, finished_at IS NULL AS no_finish
FROM automation_core.item_execution WHERE id = ac_ie('tr', 1);
-- the batch execution and the run follow into processing
SELECT status, started_at = now() AS started_now FROM automation_core.batch_execution WHERE id = ac_be('tr', 1);
SELECT status, started_at = now() AS started_now FROM automation_core.run WHERE id = ac_run('tr');
COMMIT;
SELECT ac_try($$UPDATE automation_core.item_execution SET started_at = now() - interval '1 hour' WHERE id = ac_ie('tr', 1)$$);
SELECT ac_try($$UPDATE automation_core.item_execution SET finished_at = now() WHERE id = ac_ie('tr', 1)$$);
SELECT ac_try($$UPDATE automation_core.item_execution SET status = 'completed', finished_at = '2000-01-01' WHERE id = ac_ie('tr', 1)$$);
SELECT ac_try($$UPDATE automation_core.run SET started_at = NULL WHERE id = ac_run('tr')$$);
SELECT ac_try($$UPDATE automation_core.batch_execution SET finished_at = now() WHERE id = ac_be('tr', 1)$$);
-- an UPDATE that leaves status alone is no transition
SELECT ac_try($$UPDATE automation_core.item_execution SET status = 'processing', worker = 'w1' WHERE id = ac_ie('tr', 1)$$);
SELECT ac_try($$UPDATE automation_core.item_execution SET status = 'pending' WHERE id = ac_ie('tr', 2)$$);
SELECT (SELECT count(*) FROM automation_core.item_state_history WHERE item_execution_id = ac_ie('tr', 1)) AS history_rows;

BEGIN;
UPDATE automation_core.item_execution SET status = 'completed', result_payload = '{"ok": true}' WHERE id = ac_ie('tr', 1);
SELECT status, finished_at = now() AS finished_now, started_at < now() AS started_kept, result_payload
FROM automation_core.item_execution WHERE id = ac_ie('tr', 1);
COMMIT;

-- terminal rows are frozen, except is_active (and other plain columns)
SELECT ac_try($$UPDATE automation_core.item_execution SET result_payload = '{"ok": false}' WHERE id = ac_ie('tr', 1)$$);
SELECT ac_try($$UPDATE automation_core.item_execution SET error_message = 'late' WHERE id = ac_ie('tr', 1)$$);
SELECT ac_try($$UPDATE automation_core.item_execution SET max_attempts = 9 WHERE id = ac_ie('tr', 1)$$);
SELECT ac_try($$UPDATE automation_core.item_execution SET status = 'completed' WHERE id = ac_ie('tr', 1)$$);
SELECT ac_try($$UPDATE automation_core.item_execution SET is_active = false WHERE id = ac_ie('tr', 1)$$);
SELECT status, is_active, version FROM automation_core.item_execution WHERE id = ac_ie('tr', 1);

-- retrying again sets started_at on the next processing (item executions)
UPDATE automation_core.item_execution SET max_attempts = 3 WHERE id = ac_ie('tr', 2);
UPDATE automation_core.item_execution SET status = 'processing' WHERE id = ac_ie('tr', 2);
SELECT started_at AS first_start FROM automation_core.item_execution WHERE id = ac_ie('tr', 2) \gset
UPDATE automation_core.item_execution SET status = 'retrying' WHERE id = ac_ie('tr', 2);
SELECT status, started_at = :'first_start' AS start_kept, next_attempt_at > now() AS next_attempt_later, lease_expires_at IS NULL AS no_lease
FROM automation_core.item_execution WHERE id = ac_ie('tr', 2);
UPDATE automation_core.item_execution SET status = 'processing' WHERE id = ac_ie('tr', 2);
SELECT status, started_at > :'first_start' AS restarted, next_attempt_at IS NULL AS no_next_attempt, lease_expires_at > now() AS leased
FROM automation_core.item_execution WHERE id = ac_ie('tr', 2);

-- the last item ending finishes batch execution and run
UPDATE automation_core.item_execution SET status = 'completed' WHERE id = ac_ie('tr', 2);
SELECT ac_state('tr');
SELECT finished_at IS NOT NULL AS finished, started_at <= finished_at AS ordered FROM automation_core.run WHERE id = ac_run('tr');
SELECT ac_try($$UPDATE automation_core.run SET error_summary = 'late' WHERE id = ac_run('tr')$$);
SELECT ac_try($$UPDATE automation_core.run SET cancellation_reason = 'late' WHERE id = ac_run('tr')$$);
SELECT ac_try($$UPDATE automation_core.run SET status = 'cancelled' WHERE id = ac_run('tr')$$);
SELECT ac_try($$UPDATE automation_core.run SET is_active = false, correlation_id = 'tr' WHERE id = ac_run('tr')$$);
SELECT ac_try($$UPDATE automation_core.batch_execution SET status = 'failed' WHERE id = ac_be('tr', 1)$$);
SELECT ac_try($$UPDATE automation_core.batch_execution SET is_active = false WHERE id = ac_be('tr', 1)$$);

-- run: started_at only the first time it enters processing
SELECT ac_fixture('tr2', 1, 0) IS NOT NULL AS fixture;
UPDATE automation_core.run SET status = 'processing' WHERE id = ac_run('tr2');
SELECT started_at AS run_start FROM automation_core.run WHERE id = ac_run('tr2') \gset
UPDATE automation_core.run SET status = 'processing', correlation_id = 'tr2' WHERE id = ac_run('tr2');
SELECT started_at = :'run_start' AS start_kept FROM automation_core.run WHERE id = ac_run('tr2');

-- a run cannot be inserted for an inactive automation
INSERT INTO automation_core.automation (name, is_active) VALUES ('transitions inactive', false);
SELECT ac_try($$INSERT INTO automation_core.run (automation_id) SELECT id FROM automation_core.automation WHERE name = 'transitions inactive'$$);

-- executions never move to another parent, whatever their status
SELECT ac_fixture('tr3', 2, 1) IS NOT NULL AS fixture;
SELECT ac_try($$UPDATE automation_core.item_execution SET batch_execution_id = ac_be('tr3', 2) WHERE id = ac_ie('tr3', 1)$$);
SELECT ac_try($$UPDATE automation_core.item_execution SET run_id = ac_run('tr'), batch_execution_id = ac_be('tr', 1) WHERE id = ac_ie('tr3', 1)$$);
SELECT ac_try($$UPDATE automation_core.item_execution SET item_id = (SELECT item_id FROM automation_core.item_execution WHERE id = ac_ie('tr', 2)) WHERE id = ac_ie('tr3', 1)$$);
SELECT ac_try($$UPDATE automation_core.batch_execution SET run_id = ac_run('tr') WHERE id = ac_be('tr3', 1)$$);
SELECT ac_try($$UPDATE automation_core.run SET automation_id = (SELECT id FROM automation_core.automation WHERE name = 'transitions inactive') WHERE id = ac_run('tr3')$$);
SELECT ac_try($$UPDATE automation_core.item_execution SET run_id = run_id, worker = 'same parents' WHERE id = ac_ie('tr3', 1)$$);
-- ... and keep their ids, even when nothing refers to them any more (a
-- batch execution given a new id would be a row the roll-up never saw
-- start)
SELECT ac_try($$DELETE FROM automation_core.item_execution WHERE id = ac_ie('tr3', 2)$$);
SELECT ac_try($$UPDATE automation_core.batch_execution SET id = gen_random_uuid() WHERE id = ac_be('tr3', 2)$$);
SELECT ac_try($$UPDATE automation_core.item_execution SET id = gen_random_uuid() WHERE id = ac_ie('tr3', 1)$$);
SELECT ac_try($$UPDATE automation_core.run SET id = gen_random_uuid() WHERE id = ac_run('tr3')$$);
INSERT INTO automation_core.engine (name, type) VALUES ('tr engine', 't');
INSERT INTO automation_core.orchestration_instance (engine_id, external_id)
SELECT id, 'tr-o1' FROM automation_core.engine WHERE name = 'tr engine';
SELECT ac_try($$UPDATE automation_core.orchestration_instance SET id = gen_random_uuid() WHERE external_id = 'tr-o1'$$);
SELECT ac_try($$UPDATE automation_core.batch_execution SET id = id, version = 7 WHERE id = ac_be('tr3', 2)$$);

-- an execution runs its own automation's work: an item execution's item
-- is in its batch execution's batch, a batch execution's batch in its
-- run's automation; and a batch or item with executions stays where it is
SELECT ac_fixture('tr4', 2, 1) IS NOT NULL AS fixture;
SELECT ac_try($$INSERT INTO automation_core.item_execution (run_id, batch_execution_id, item_id)
	SELECT ac_run('tr4'), ac_be('tr4', 1), item_id FROM automation_core.item_execution WHERE id = ac_ie('tr3', 1)$$, true);
SELECT ac_try($$INSERT INTO automation_core.item (batch_id, sequence_number)
	SELECT batch_id, 99 FROM automation_core.batch_execution WHERE id = ac_be('tr4', 2)$$);
SELECT ac_try($$INSERT INTO automation_core.item_execution (run_id, batch_execution_id, item_id)
	SELECT ac_run('tr4'), ac_be('tr4', 1), i.id FROM automation_core.item i
	JOIN automation_core.batch_execution be ON be.batch_id = i.batch_id WHERE be.id = ac_be('tr4', 2) AND i.sequence_number = 99$$, true);
SELECT ac_try($$INSERT INTO automation_core.item_execution (run_id, batch_execution_id, item_id)
	SELECT ac_run('tr4'), ac_be('tr4', 2), i.id FROM automation_core.item i
	JOIN automation_core.batch_execution be ON be.batch_id = i.batch_id WHERE be.id = ac_be('tr4', 2) AND i.sequence_number = 99$$);
SELECT ac_try($$INSERT INTO automation_core.batch_execution (run_id, batch_id)
	SELECT ac_run('tr4'), batch_id FROM automation_core.batch_execution WHERE id = ac_be('tr3', 1)$$, true);
SELECT ac_try($$UPDATE automation_core.item SET batch_id = (SELECT batch_id FROM automation_core.batch_execution WHERE id = ac_be('tr4', 1))
	WHERE id = (SELECT item_id FROM automation_core.item_execution WHERE id = ac_ie('tr4', 2))$$, true);
SELECT ac_try($$UPDATE automation_core.batch SET automation_id = (SELECT automation_id FROM automation_core.run WHERE id = ac_run('tr3'))
	WHERE id = (SELECT batch_id FROM automation_core.batch_execution WHERE id = ac_be('tr4', 1))$$, true);
-- ... by any way rows get in: MERGE fires the same statement trigger
SELECT ac_try($$MERGE INTO automation_core.item_execution ie
	USING (SELECT item_id FROM automation_core.item_execution WHERE id = ac_ie('tr3', 1)) s ON false
	WHEN NOT MATCHED THEN INSERT (run_id, batch_execution_id, item_id) VALUES (ac_run('tr4'), ac_be('tr4', 1), s.item_id)$$);
-- one without executions moves (its payload meets the new schema)
INSERT INTO automation_core.item (batch_id, sequence_number)
SELECT batch_id, 100 FROM automation_core.batch_execution WHERE id = ac_be('tr4', 2);
SELECT ac_try($$UPDATE automation_core.item SET batch_id = (SELECT batch_id FROM automation_core.batch_execution WHERE id = ac_be('tr4', 1))
	WHERE sequence_number = 100 AND batch_id = (SELECT batch_id FROM automation_core.batch_execution WHERE id = ac_be('tr4', 2))$$);

-- status is NOT NULL; the row trigger, which reads it first, says so
SELECT ac_try($$INSERT INTO automation_core.run (automation_id, status) SELECT automation_id, NULL FROM automation_core.run WHERE id = ac_run('tr3')$$);
SELECT ac_try($$UPDATE automation_core.item_execution SET status = NULL WHERE id = ac_ie('tr3', 1)$$);
SELECT ac_try($$UPDATE automation_core.orchestration_instance SET status = NULL WHERE external_id = 'tr-o1'$$);
DELETE FROM automation_core.engine WHERE name = 'tr engine';

DROP FUNCTION tr_try(text, text, text), tr_path(text), tr_set(text, uuid, text), tr_new(text);
