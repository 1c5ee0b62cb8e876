-- The event log: which status changes write which events, the item_events
-- setting, cancellation cascades, the consumer API and its errors.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS automation_core;
RESET client_min_messages;
\set VERBOSITY terse
SET automation_core.actor = 'events-test';

-- Fixtures: one automation with two batches, runs built by plain INSERTs.
INSERT INTO automation_core.automation (id, name) VALUES
	('e0000000-0000-0000-0000-00000000000a', 'events automation');
INSERT INTO automation_core.batch (id, automation_id, name) VALUES
	('e0000000-0000-0000-0000-0000000000b1', 'e0000000-0000-0000-0000-00000000000a', 'b1'),
	('e0000000-0000-0000-0000-0000000000b2', 'e0000000-0000-0000-0000-00000000000a', 'b2');
INSERT INTO automation_core.item (batch_id, sequence_number) VALUES
	('e0000000-0000-0000-0000-0000000000b1', 0),
	('e0000000-0000-0000-0000-0000000000b1', 1),
	('e0000000-0000-0000-0000-0000000000b2', 0);
INSERT INTO automation_core.engine (id, name, type) VALUES
	('e0000000-0000-0000-0000-0000000000e1', 'events engine', 'test');

CREATE FUNCTION pg_temp.new_run(corr text, attempts integer) RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
	r uuid;
BEGIN
	INSERT INTO automation_core.run (automation_id, correlation_id)
		VALUES ('e0000000-0000-0000-0000-00000000000a', corr) RETURNING id INTO r;
	INSERT INTO automation_core.batch_execution (run_id, batch_id)
		SELECT r, b.id FROM automation_core.batch b
		 WHERE b.automation_id = 'e0000000-0000-0000-0000-00000000000a' ORDER BY b.name;
	INSERT INTO automation_core.item_execution (run_id, batch_execution_id, item_id, max_attempts)
		SELECT r, be.id, i.id, attempts
		  FROM automation_core.batch_execution be
		  JOIN automation_core.item i ON i.batch_id = be.batch_id
		 WHERE be.run_id = r
		 ORDER BY be.batch_id, i.sequence_number;
	RETURN r;
END $$;

-- the item execution of batch b, sequence number n in run corr
CREATE FUNCTION pg_temp.ie(corr text, b text, n integer) RETURNS uuid
LANGUAGE sql AS $$
	SELECT ie.id FROM automation_core.item_execution ie
	  JOIN automation_core.run r ON r.id = ie.run_id
	  JOIN automation_core.item i ON i.id = ie.item_id
	  JOIN automation_core.batch bb ON bb.id = i.batch_id
	 WHERE r.correlation_id = corr AND bb.name = b AND i.sequence_number = n
$$;

CREATE FUNCTION pg_temp.set_item(corr text, b text, n integer, st text, err text DEFAULT NULL)
RETURNS void LANGUAGE sql AS $$
	UPDATE automation_core.item_execution
	   SET status = st::automation_core.execution_status,
		   error_message = COALESCE(err, error_message)
	 WHERE id = pg_temp.ie(corr, b, n)
$$;

-- A readable name for an event's entity
CREATE FUNCTION pg_temp.lbl(u uuid) RETURNS text LANGUAGE sql AS $$
	SELECT COALESCE(
		(SELECT 'run ' || correlation_id FROM automation_core.run WHERE id = u),
		(SELECT 'batch ' || b.name || ' of ' || r.correlation_id
		   FROM automation_core.batch_execution be
		   JOIN automation_core.batch b ON b.id = be.batch_id
		   JOIN automation_core.run r ON r.id = be.run_id WHERE be.id = u),
		(SELECT 'item ' || b.name || '/' || i.sequence_number || ' of ' || r.correlation_id
		   FROM automation_core.item_execution ie
		   JOIN automation_core.item i ON i.id = ie.item_id
		   JOIN automation_core.batch b ON b.id = i.batch_id
		   JOIN automation_core.run r ON r.id = ie.run_id WHERE ie.id = u),
		(SELECT 'instance ' || external_id FROM automation_core.orchestration_instance WHERE id = u),
		'(unknown)')
$$;

-- Events written since the last call, with their entity, run and automation
CREATE TEMP TABLE mark (last_id bigint);
INSERT INTO mark SELECT COALESCE(max(id), 0) FROM automation_core.event;
CREATE FUNCTION pg_temp.new_events()
RETURNS TABLE (event_type text, entity text, run text, automation text, payload jsonb)
LANGUAGE plpgsql AS $$
DECLARE
	m bigint := (SELECT last_id FROM mark);
BEGIN
	RETURN QUERY
		SELECT e.event_type, pg_temp.lbl(e.entity_id),
			   (SELECT 'run ' || r.correlation_id FROM automation_core.run r WHERE r.id = e.run_id),
			   (SELECT a.name::text FROM automation_core.automation a WHERE a.id = e.automation_id),
			   e.payload
		  FROM automation_core.event e WHERE e.id > m
		 -- events of one type from one transaction together, by entity: the
		 -- order of the rows one statement changes is the plan's
		 ORDER BY min(e.id) OVER (PARTITION BY e.txid, e.event_type), pg_temp.lbl(e.entity_id), e.id;
	UPDATE mark SET last_id = COALESCE((SELECT max(id) FROM automation_core.event), last_id);
END $$;

-- Wait until no running transaction is older than the newest event, so that
-- next_events may return everything committed (a concurrent autovacuum
-- could hold the horizon back for a moment).
CREATE FUNCTION pg_temp.settle() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	FOR i IN 1 .. 3000 LOOP
		IF NOT EXISTS (SELECT 1 FROM automation_core.event
					   WHERE txid >= pg_snapshot_xmin(pg_current_snapshot())) THEN
			RETURN;
		END IF;
		PERFORM pg_sleep(0.01);
	END LOOP;
	RAISE EXCEPTION 'events did not become readable';
END $$;

SHOW automation_core.item_events;
SHOW automation_core.notify;

-- item_events = failures (the default): run, batch and failure events
SELECT pg_temp.new_run('r1', 2) IS NOT NULL AS created;
SELECT * FROM pg_temp.new_events();
SELECT pg_temp.set_item('r1', 'b1', 0, 'processing');
SELECT * FROM pg_temp.new_events();
SELECT pg_temp.set_item('r1', 'b1', 0, 'retrying', 'timeout talking to the API');
SELECT pg_temp.set_item('r1', 'b1', 0, 'processing');
SELECT pg_temp.set_item('r1', 'b1', 0, 'completed');
SELECT pg_temp.set_item('r1', 'b1', 1, 'processing');
SELECT pg_temp.set_item('r1', 'b1', 1, 'failed', 'bad input');
SELECT * FROM pg_temp.new_events();
SELECT pg_temp.set_item('r1', 'b2', 0, 'processing');
SELECT pg_temp.set_item('r1', 'b2', 0, 'completed');
SELECT * FROM pg_temp.new_events();
SELECT status FROM automation_core.run WHERE correlation_id = 'r1';

-- item_events = all adds started, completed and cancelled
SET automation_core.item_events = 'all';
SELECT pg_temp.new_run('r2', NULL) IS NOT NULL AS created;
SELECT pg_temp.set_item('r2', 'b1', 0, 'processing');
SELECT pg_temp.set_item('r2', 'b1', 0, 'completed');
SELECT pg_temp.set_item('r2', 'b1', 1, 'cancelled');
SELECT pg_temp.set_item('r2', 'b2', 0, 'processing');
SELECT pg_temp.set_item('r2', 'b2', 0, 'failed', 'no retry');
SELECT * FROM pg_temp.new_events();

-- item_events = none: no item event at all, even for failures
SET automation_core.item_events = 'none';
SELECT pg_temp.new_run('r3', 3) IS NOT NULL AS created;
SELECT pg_temp.set_item('r3', 'b1', 0, 'processing');
SELECT pg_temp.set_item('r3', 'b1', 0, 'retrying', 'again');
SELECT pg_temp.set_item('r3', 'b1', 0, 'processing');
SELECT pg_temp.set_item('r3', 'b1', 0, 'failed', 'gave up');
SELECT * FROM pg_temp.new_events();

-- A cancellation cascade writes run and batch events, never item events
SET automation_core.item_events = 'all';
SELECT pg_temp.new_run('r4', NULL) IS NOT NULL AS created;
SELECT pg_temp.set_item('r4', 'b1', 0, 'processing');
SELECT * FROM pg_temp.new_events();
UPDATE automation_core.run SET status = 'cancelled', cancellation_reason = 'test'
 WHERE correlation_id = 'r4';
SELECT * FROM pg_temp.new_events();
SELECT ie.status, count(*) FROM automation_core.item_execution ie
  JOIN automation_core.run r ON r.id = ie.run_id
 WHERE r.correlation_id = 'r4' GROUP BY ie.status ORDER BY ie.status;

-- A batch execution cancelled directly: its items go quietly, the run
-- rolls up
SELECT pg_temp.new_run('r5', NULL) IS NOT NULL AS created;
UPDATE automation_core.batch_execution be SET status = 'cancelled'
  FROM automation_core.run r, automation_core.batch b
 WHERE r.id = be.run_id AND r.correlation_id = 'r5' AND b.id = be.batch_id AND b.name = 'b1';
SELECT * FROM pg_temp.new_events();

-- Orchestration instances
INSERT INTO automation_core.orchestration_instance (engine_id, external_id) VALUES
	('e0000000-0000-0000-0000-0000000000e1', 'o1'),
	('e0000000-0000-0000-0000-0000000000e1', 'o2'),
	('e0000000-0000-0000-0000-0000000000e1', 'o3');
UPDATE automation_core.orchestration_instance SET status = 'processing' WHERE external_id IN ('o1', 'o2');
UPDATE automation_core.orchestration_instance SET status = 'completed' WHERE external_id = 'o1';
UPDATE automation_core.orchestration_instance SET status = 'failed' WHERE external_id = 'o2';
UPDATE automation_core.orchestration_instance SET status = 'cancelled' WHERE external_id = 'o3';
SELECT * FROM pg_temp.new_events();

-- Updates that are not status changes write nothing
UPDATE automation_core.orchestration_instance SET instance_metadata = '{"k": 1}' WHERE external_id = 'o1';
UPDATE automation_core.run SET is_active = false WHERE correlation_id = 'r1';
SELECT count(*) AS no_events FROM pg_temp.new_events();

-- The error text is cut to 500 characters
SELECT pg_temp.new_run('r6', NULL) IS NOT NULL AS created;
SELECT pg_temp.set_item('r6', 'b1', 0, 'processing');
SELECT pg_temp.set_item('r6', 'b1', 0, 'failed', repeat('é', 2000));
SELECT event_type, length(payload->>'error') AS error_length,
	   payload->>'error' = repeat('é', 500) AS prefix_kept
  FROM pg_temp.new_events() WHERE event_type = 'ItemExecutionFailed';

-- Every event carries the writer's top-level transaction id, also from a
-- subtransaction, and a rolled-back subtransaction leaves no event
BEGIN;
SELECT pg_temp.new_run('r7', NULL) IS NOT NULL AS created;
SAVEPOINT s1;
SELECT pg_temp.set_item('r7', 'b1', 0, 'processing');
ROLLBACK TO SAVEPOINT s1;
SAVEPOINT s2;
SELECT pg_temp.set_item('r7', 'b2', 0, 'processing');
RELEASE SAVEPOINT s2;
SELECT event_type, pg_temp.lbl(entity_id), txid = pg_current_xact_id() AS top_level_txid
  FROM automation_core.event WHERE id > (SELECT last_id FROM mark) ORDER BY id;
COMMIT;
SELECT * FROM pg_temp.new_events();

-- notify = off still writes the events
SET automation_core.notify = 'off';
SELECT pg_temp.set_item('r7', 'b2', 0, 'completed');
SELECT * FROM pg_temp.new_events();
RESET automation_core.notify;

-- Clients cannot write the log
INSERT INTO automation_core.event (epoch, txid, event_type) VALUES (1, '1', 'RunStarted');
UPDATE automation_core.event SET event_type = 'x';
DELETE FROM automation_core.event;
TRUNCATE automation_core.event;
DO $$
BEGIN
	DELETE FROM automation_core.event WHERE false;
EXCEPTION WHEN insufficient_privilege THEN
	RAISE NOTICE 'refused with SQLSTATE %', SQLSTATE;
END $$;

-- The epoch of this cluster
SELECT automation_core.current_event_epoch() = max(epoch) AS epoch_ok,
	   count(*) AS epochs
  FROM automation_core.event_epoch;

-- Consumers
SELECT pg_temp.settle();
SELECT automation_core.register_consumer('tail');
SELECT automation_core.register_consumer('tail', true);	-- exists: unchanged
SELECT automation_core.register_consumer('all', true);
SELECT count(*) AS tail_sees FROM automation_core.next_events('tail');
SELECT (SELECT count(*) FROM automation_core.next_events('all', 100000)) =
	   (SELECT count(*) FROM automation_core.event) AS all_sees_everything;
-- b1 of r7 was started only in the savepoint rolled back above: it starts now
SELECT pg_temp.set_item('r7', 'b1', 0, 'processing');
SELECT pg_temp.set_item('r7', 'b1', 1, 'processing');
SELECT pg_temp.settle();
SELECT event_type, pg_temp.lbl(entity_id) FROM automation_core.next_events('tail') ORDER BY id;
-- max_events limits a batch; ack moves the position past it
SELECT event_type, pg_temp.lbl(entity_id) FROM automation_core.next_events('tail', 1);
SELECT automation_core.ack_events('tail', (SELECT max(id) FROM automation_core.next_events('tail', 1)));
SELECT event_type, pg_temp.lbl(entity_id) FROM automation_core.next_events('tail');
SELECT automation_core.ack_events('tail', (SELECT max(id) FROM automation_core.next_events('tail')));
SELECT count(*) AS after_ack FROM automation_core.next_events('tail');
-- acknowledging an earlier event again does not move the position back
SELECT automation_core.ack_events('tail', (SELECT min(id) FROM automation_core.event));
SELECT count(*) AS still_nothing FROM automation_core.next_events('tail');
SELECT name, last_event_id = (SELECT max(id) FROM automation_core.event) AS at_end
  FROM automation_core.consumer WHERE name = 'tail';

-- Errors
SELECT * FROM automation_core.next_events('nobody');
SELECT automation_core.ack_events('nobody', 1);
SELECT automation_core.ack_events('tail', -1);
SELECT * FROM automation_core.next_events('tail', 0);
SELECT automation_core.register_consumer('');
DO $$
BEGIN
	PERFORM automation_core.next_events('nobody');
EXCEPTION WHEN no_data_found THEN
	RAISE NOTICE 'unknown consumer: SQLSTATE %', SQLSTATE;
END $$;
-- An event of a transaction that is still running cannot be acknowledged
BEGIN;
SELECT pg_temp.set_item('r7', 'b1', 0, 'failed', 'x');
SELECT automation_core.ack_events('tail', (SELECT max(id) FROM automation_core.event));
ROLLBACK;

-- Purge removes old events, consumed or not
SELECT automation_core.purge_events('1 hour') AS purged_recent;
-- a negative age is refused, not taken as "everything"
SELECT ac_try($$SELECT automation_core.purge_events('-1 hour')$$);
SELECT ac_try($$SELECT automation_core.purge_events('1 day -25 hours')$$);
-- ... compared as a whole: 1 day less an hour is 23 hours
SELECT automation_core.purge_events('1 day -1 hour') AS purged_23_hours;
SELECT count(*) > 0 AS still_there FROM automation_core.event;
SELECT automation_core.purge_events('0') > 0 AS purged_something;
SELECT count(*) AS left_after_purge FROM automation_core.event;
SELECT count(*) AS nothing_to_read FROM automation_core.next_events('all');
SELECT automation_core.unregister_consumer('all'), automation_core.unregister_consumer('all');
-- next_events never returns the caller's own uncommitted events: they
-- may still roll back, and ack_events would refuse them
SELECT automation_core.register_consumer('own');
BEGIN;
INSERT INTO automation_core.automation (name) VALUES ('own events') RETURNING id AS own_auto \gset
SELECT status FROM automation_core.start_run(:'own_auto');
SELECT count(*) > 0 AS own_events_written FROM automation_core.event WHERE automation_id = :'own_auto';
SELECT count(*) AS own_events_returned FROM automation_core.next_events('own');
ROLLBACK;
SELECT automation_core.unregister_consumer('own');
-- consumer names: 1 to 200 characters
SELECT ac_try(format($$SELECT automation_core.register_consumer(%L)$$, repeat('é', 200)));
SELECT ac_try(format($$SELECT automation_core.register_consumer(%L)$$, repeat('é', 201)));
SELECT ac_try($$SELECT automation_core.register_consumer('')$$);
SELECT automation_core.unregister_consumer(repeat('é', 200));
SELECT name FROM automation_core.consumer ORDER BY name;
SELECT automation_core.unregister_consumer('tail');
