-- The execution API: start_run, claim, heartbeat, complete, fail,
-- cancel_run, expire_leases and the run_progress view.
SET client_min_messages = warning;
CREATE SCHEMA api_test;
SET search_path = api_test, automation_core, public;

-- An automation with two batches of three items, created in order.
INSERT INTO automation (name) VALUES ('api');
INSERT INTO batch (automation_id, name) SELECT id, 'first' FROM automation WHERE name = 'api';
INSERT INTO batch (automation_id, name) SELECT id, 'second' FROM automation WHERE name = 'api';
INSERT INTO batch (automation_id, name, is_active) SELECT id, 'inactive', false FROM automation WHERE name = 'api';
INSERT INTO item (batch_id, sequence_number, payload)
SELECT b.id, g, jsonb_build_object('batch', b.name, 'n', g)
FROM batch b, generate_series(0, 2) g;
-- an inactive item is left out of runs
UPDATE item SET is_active = false
WHERE sequence_number = 2 AND batch_id = (SELECT id FROM batch WHERE name = 'second');
SELECT id AS automation FROM automation WHERE name = 'api' \gset

-- start_run: the run is processing, items pending, max_attempts copied
SELECT id AS run1, status, correlation_id, started_at IS NOT NULL AS started
FROM start_run(:'automation', 'ticket-1', 2) \gset
SELECT :'status' AS status, :'correlation_id' AS correlation_id, :'started' AS started;
SELECT b.name, be.status, count(ie.id) AS items, min(ie.max_attempts) AS max_attempts
FROM batch_execution be JOIN batch b ON b.id = be.batch_id
LEFT JOIN item_execution ie ON ie.batch_execution_id = be.id
WHERE be.run_id = :'run1' GROUP BY b.name, be.status ORDER BY b.name;
SELECT total, pending, processing, completed, percent_done FROM run_progress WHERE run_id = :'run1';

-- start_run's ids are time-ordered (version 7): the run's, then its batch
-- executions' in batch order, then its item executions' in queue order
SELECT count(*) AS rows,
       bool_and(substr(id::text, 15, 1) = '7' AND substr(id::text, 20, 1) IN ('8', '9', 'a', 'b')) AS version_7,
       bool_and(id > prev) FILTER (WHERE prev IS NOT NULL) AS increasing
FROM (SELECT id, lag(id) OVER (ORDER BY k) AS prev
      FROM (SELECT 0 AS k, id FROM run WHERE id = :'run1'
            UNION ALL
            SELECT row_number() OVER (ORDER BY b.created_at, b.name), be.id
            FROM batch_execution be JOIN batch b ON b.id = be.batch_id WHERE be.run_id = :'run1'
            UNION ALL
            SELECT 1000 + queue_position, id FROM item_execution WHERE run_id = :'run1') o) x;
-- uuid_v7: the time in it is now, and it increases within the session even
-- when many are made in the same millisecond
SELECT count(DISTINCT u) AS distinct_values,
       bool_and(u > prev) FILTER (WHERE prev IS NOT NULL) AS increasing,
       bool_and(substr(u::text, 15, 1) = '7' AND substr(u::text, 20, 1) IN ('8', '9', 'a', 'b')) AS version_7,
       bool_and(abs(('x' || lpad(replace(left(u::text, 13), '-', ''), 16, '0'))::bit(64)::bigint
                    - (extract(epoch FROM clock_timestamp()) * 1000)::bigint) < 5000) AS time_is_now
FROM (SELECT u, lag(u) OVER (ORDER BY n) AS prev
      FROM (SELECT n, uuid_v7() AS u FROM generate_series(1, 20000) n) g) x;

-- unknown ids, inactive automation, bad arguments
SELECT ac_try($$SELECT start_run('00000000-0000-0000-0000-000000000000')$$);
SELECT ac_try($$SELECT start_run(NULL)$$);
SELECT ac_try(format('SELECT start_run(%L, NULL, 0)', :'automation'));
UPDATE automation SET is_active = false WHERE id = :'automation';
SELECT ac_try(format('SELECT start_run(%L)', :'automation'));
SELECT ac_try(format('INSERT INTO run (automation_id) VALUES (%L)', :'automation'));
UPDATE automation SET is_active = true WHERE id = :'automation';
SELECT ac_try($$SELECT * FROM claim('00000000-0000-0000-0000-000000000000')$$);
SELECT ac_try($$SELECT * FROM claim(NULL, NULL, 0)$$);
SELECT ac_try($$SELECT * FROM claim(NULL, NULL, 1, '0 seconds')$$);
SELECT ac_try($$SELECT complete('00000000-0000-0000-0000-000000000000')$$);
SELECT ac_try($$SELECT fail('00000000-0000-0000-0000-000000000000', 'x')$$);
SELECT ac_try($$SELECT heartbeat('00000000-0000-0000-0000-000000000000', 1)$$);
SELECT ac_try($$SELECT cancel_run('00000000-0000-0000-0000-000000000000', 'x')$$);

-- claim: first in, first out, with the worker and lease recorded
SELECT b.name, i.sequence_number, c.status, c.attempt_count, c.worker,
	   c.lease_expires_at - now() AS lease
FROM claim(:'run1', 'worker-a', 2, '2 minutes') c
JOIN item i ON i.id = c.item_id JOIN batch b ON b.id = i.batch_id
ORDER BY c.queue_position;
-- the first batch execution started, the second did not
SELECT b.name, be.status FROM batch_execution be JOIN batch b ON b.id = be.batch_id
WHERE be.run_id = :'run1' ORDER BY b.name;

-- complete with the right attempt
SELECT ie.id AS item_a FROM item_execution ie JOIN item i ON i.id = ie.item_id
WHERE ie.run_id = :'run1' AND ie.status = 'processing' ORDER BY ie.queue_position LIMIT 1 \gset
SELECT status, result_payload, attempt_count, lease_expires_at IS NULL AS lease_cleared,
	   finished_at IS NOT NULL AS finished
FROM complete(:'item_a', '{"ok": true}', 1);
-- completing twice, or with the wrong attempt, is refused
SELECT ac_try(format('SELECT complete(%L, NULL, 1)', :'item_a'));
SELECT ac_try(format('SELECT complete(%L, NULL, 7)', :'item_a'));
SELECT ac_try(format('SELECT fail(%L, %L)', :'item_a', 'late'));

-- heartbeat extends the lease of the holder only
SELECT ie.id AS item_b FROM item_execution ie
WHERE ie.run_id = :'run1' AND ie.status = 'processing' ORDER BY ie.queue_position LIMIT 1 \gset
SELECT status, lease_expires_at - now() AS lease FROM heartbeat(:'item_b', 1, '10 minutes');
SELECT ac_try(format('SELECT heartbeat(%L, 2)', :'item_b'));

-- fail: retryable with attempts left goes to retrying after retry_delay
SELECT status, error_message, next_attempt_at - now() AS delay, lease_expires_at IS NULL AS lease_cleared
FROM fail(:'item_b', 'timeout', true, '30 seconds', 1);
SELECT ac_try(format('SELECT heartbeat(%L, 1)', :'item_b'));
SELECT ac_try(format('SELECT complete(%L, NULL, 1)', :'item_b'));
-- a retry not yet due is not claimed; the next pending item is
SELECT i.sequence_number, c.attempt_count FROM claim(:'run1', 'worker-b') c JOIN item i ON i.id = c.item_id;
-- once due, it is claimed again with the next attempt number
UPDATE item_execution SET next_attempt_at = now() - interval '1 second' WHERE id = :'item_b';
SELECT c.id = :'item_b' AS same_item, c.attempt_count, c.worker FROM claim(:'run1', 'worker-c') c;
-- the first attempt's worker has lost its lease
SELECT ac_try(format('SELECT complete(%L, NULL, 1)', :'item_b'));
-- no attempts left: fail goes to failed even when retryable
SELECT status, error_message FROM fail(:'item_b', 'timeout again', true, NULL, 2);
SELECT ac_try(format('UPDATE item_execution SET status = %L WHERE id = %L', 'retrying', :'item_b'));

-- fail without retry_delay: exponential backoff from the settings
SET automation_core.retry_base_delay = '1s';
SET automation_core.retry_max_delay = '1min';
SELECT c.id AS item_c FROM claim(:'run1', 'w') c \gset
SELECT status, next_attempt_at - now() AS delay FROM fail(:'item_c', 'x');
-- not retryable: failed at once
UPDATE item_execution SET next_attempt_at = now() WHERE id = :'item_c';
SELECT c.attempt_count FROM claim(:'run1', 'w') c;
SELECT status, next_attempt_at FROM fail(:'item_c', 'fatal', false, NULL, 2);
RESET automation_core.retry_base_delay;
RESET automation_core.retry_max_delay;

-- finish the rest; the run fails with a summary, exactly once
SELECT count(*) FROM (SELECT complete(c.id, NULL, c.attempt_count) FROM claim(:'run1', 'w', 10) c) x;
SELECT b.name, be.status FROM batch_execution be JOIN batch b ON b.id = be.batch_id
WHERE be.run_id = :'run1' ORDER BY b.name;
SELECT status FROM run WHERE id = :'run1';
SELECT count(*) FROM (SELECT complete(id, NULL, attempt_count) FROM item_execution
					  WHERE run_id = :'run1' AND status = 'processing') x;
SELECT b.name, be.status FROM batch_execution be JOIN batch b ON b.id = be.batch_id
WHERE be.run_id = :'run1' ORDER BY b.name;
SELECT status, error_summary, finished_at IS NOT NULL AS finished FROM run WHERE id = :'run1';
SELECT total, completed, failed, percent_done FROM run_progress WHERE run_id = :'run1';
SELECT ac_try(format('SELECT cancel_run(%L, %L)', :'run1', 'too late'));
-- every item's last history row is its status
SELECT count(*) AS mismatched FROM item_execution ie
WHERE ie.run_id = :'run1' AND ie.status IS DISTINCT FROM
	(SELECT h.new_status FROM item_state_history h WHERE h.item_execution_id = ie.id ORDER BY h.id DESC LIMIT 1);

-- claim without run_id takes the oldest run first
SELECT id AS run2 FROM start_run(:'automation') \gset
SELECT id AS run3 FROM start_run(:'automation') \gset
SELECT c.run_id = :'run2' AS oldest_run FROM claim(NULL, 'w', 1) c;

-- cancel_run: optimistic version check, cascade, workers refused
SELECT version AS v3 FROM run WHERE id = :'run3' \gset
SELECT ac_try(format('SELECT cancel_run(%L, %L, %s)', :'run3', 'stop', :v3 + 1), true);
SELECT c.id AS item_d FROM claim(:'run3', 'w') c \gset
SELECT status, cancellation_reason, version = :v3 + 1 AS bumped FROM cancel_run(:'run3', 'stop', :v3);
SELECT status, count(*) FROM batch_execution WHERE run_id = :'run3' GROUP BY status;
SELECT status, count(*) FROM item_execution WHERE run_id = :'run3' GROUP BY status;
SELECT ac_try(format('SELECT complete(%L, NULL, 1)', :'item_d'));
SELECT ac_try(format('SELECT fail(%L, %L)', :'item_d', 'x'));
SELECT ac_try(format('SELECT heartbeat(%L, 1)', :'item_d'));
SELECT count(*) FROM claim(:'run3', 'w');
-- nothing of the run is left open
SELECT count(*) FROM item_execution WHERE run_id = :'run3' AND NOT is_terminal(status);

-- a plain UPDATE cancels too
UPDATE run SET status = 'cancelled', cancellation_reason = 'by hand' WHERE id = :'run2';
SELECT status, count(*) FROM item_execution WHERE run_id = :'run2' GROUP BY status;

-- expire_leases: expired leases fail under the retry rule
SELECT id AS run4 FROM start_run(:'automation', NULL, 2) \gset
SELECT count(*) FROM claim(:'run4', 'dead worker', 3, '1 minute');
UPDATE item_execution SET lease_expires_at = now() - interval '1 second'
WHERE run_id = :'run4' AND status = 'processing';
SELECT expire_leases();
SELECT status, error_message, attempt_count, count(*) FROM item_execution
WHERE run_id = :'run4' GROUP BY 1, 2, 3 ORDER BY 1;
SELECT expire_leases();
-- the late worker cannot finish what it lost
SELECT ie.id AS item_e FROM item_execution ie WHERE ie.run_id = :'run4' AND ie.status = 'retrying' LIMIT 1 \gset
SELECT ac_try(format('SELECT complete(%L, NULL, 1)', :'item_e'));

-- a run of an automation without items completes at once
INSERT INTO automation (name) VALUES ('empty');
SELECT status, finished_at IS NOT NULL AS finished FROM start_run((SELECT id FROM automation WHERE name = 'empty'));
INSERT INTO batch (automation_id, name) SELECT id, 'no items' FROM automation WHERE name = 'empty';
SELECT id AS run_empty, status FROM start_run((SELECT id FROM automation WHERE name = 'empty')) \gset
SELECT :'status' AS run_status, be.status AS batch_status, be.started_at IS NOT NULL AS started
FROM batch_execution be WHERE be.run_id = :'run_empty';

-- claim returns whole rows in queue order
SELECT id AS run5 FROM start_run(:'automation') \gset
SELECT array_agg(i.sequence_number ORDER BY c.queue_position) = array_agg(i.sequence_number) AS in_order,
	   count(*)
FROM claim(:'run5', 'w', 10) c JOIN item i ON i.id = c.item_id;

-- complete_many: one statement for many items, all or nothing
SELECT id AS run6 FROM start_run(:'automation', NULL, 2) \gset
CREATE TEMP TABLE batch_claim AS SELECT * FROM claim(:'run6', 'bulk', 3);
SELECT array_agg(id ORDER BY queue_position) AS ids, array_agg(attempt_count ORDER BY queue_position) AS atts
FROM batch_claim \gset
-- wrong lengths, repeated ids, nulls, a stale attempt: nothing is completed
SELECT ac_try(format('SELECT complete_many(%L, ARRAY[%L::jsonb])', :'ids', '{}'));
SELECT ac_try(format('SELECT complete_many(%L::uuid[] || %L::uuid[])', :'ids', :'ids'));
SELECT ac_try(format('SELECT complete_many(ARRAY[NULL]::uuid[])'));
SELECT ac_try(format('SELECT complete_many(%L, NULL, ARRAY[1, 1, 2])', :'ids'));
SELECT ac_try($$SELECT complete_many(NULL)$$);
SELECT count(*) FROM item_execution WHERE run_id = :'run6' AND status = 'processing';
-- results by position, returned in queue order
SELECT i.sequence_number, c.status, c.result_payload
FROM complete_many(:'ids', ARRAY['{"n": 1}', '{"n": 2}', '{"n": 3}']::jsonb[], :'atts') c
JOIN item i ON i.id = c.item_id;
SELECT ac_try(format('SELECT complete_many(%L)', :'ids'));
SELECT count(*) FROM complete_many(ARRAY[]::uuid[]);
-- the rest in one call; the run ends
SELECT count(*) FROM complete_many((SELECT array_agg(id) FROM claim(:'run6', 'bulk', 10)));
SELECT status FROM run WHERE id = :'run6';

-- heartbeat, complete, fail and complete_many find their row through the
-- primary key, whatever the statistics say: with thousands of items
-- processing and statistics taken when the lease index looked small, a plan
-- that scanned the lease or open-item index for one id would read them all.
INSERT INTO automation (name) VALUES ('many') RETURNING id AS many \gset
INSERT INTO batch (automation_id, name) VALUES (:'many', 'b') RETURNING id AS many_batch \gset
INSERT INTO item (batch_id, sequence_number) SELECT :'many_batch', g FROM generate_series(0, 2999) g;
SELECT id AS run7 FROM start_run(:'many', NULL, 3) \gset
ANALYZE item_execution;
SELECT count(*) FROM claim(:'run7', 'w', 2990);
CREATE TEMP TABLE by_id (call text, lease_idx bigint, open_idx bigint, pkey bigint);
CREATE PROCEDURE pg_temp.index_scans(call text) LANGUAGE sql AS $$
	INSERT INTO by_id SELECT call,
		pg_stat_get_xact_numscans('automation_core.item_execution_lease_idx'::regclass),
		pg_stat_get_xact_numscans('automation_core.item_execution_open_idx'::regclass),
		pg_stat_get_xact_numscans('automation_core.item_execution_pkey'::regclass)
$$;
BEGIN;
SELECT id AS p1, attempt_count AS a1 FROM item_execution WHERE run_id = :'run7' AND status = 'processing' ORDER BY queue_position LIMIT 1 \gset
CALL pg_temp.index_scans('before');
SELECT status FROM heartbeat(:'p1', :a1);
CALL pg_temp.index_scans('heartbeat');
SELECT status FROM complete(:'p1', NULL, :a1);
CALL pg_temp.index_scans('complete');
SELECT id AS p2, attempt_count AS a2 FROM item_execution WHERE run_id = :'run7' AND status = 'processing' ORDER BY queue_position LIMIT 1 \gset
CALL pg_temp.index_scans('before fail');
SELECT status FROM fail(:'p2', 'x', true, NULL, :a2);
CALL pg_temp.index_scans('fail');
SELECT array_agg(id) AS ids7 FROM (SELECT id FROM item_execution WHERE run_id = :'run7' AND status = 'processing' ORDER BY queue_position LIMIT 5) x \gset
CALL pg_temp.index_scans('before complete_many');
SELECT count(*) FROM complete_many(:'ids7');
CALL pg_temp.index_scans('complete_many');
-- each call's own scans: none of the lease index, none of the open-item
-- index beyond the roll-up's look at one other open item
SELECT call, lease_idx_scans, open_idx_at_most_once, used_pkey FROM (
	SELECT ctid, call, lease_idx - lag(lease_idx) OVER w AS lease_idx_scans,
		   open_idx - lag(open_idx) OVER w <= 1 AS open_idx_at_most_once,
		   pkey - lag(pkey) OVER w >= 1 AS used_pkey
	FROM by_id WINDOW w AS (ORDER BY ctid)) d
WHERE call NOT LIKE 'before%' ORDER BY ctid;
COMMIT;

-- claim updates the row it locked at the place it found it (a TID scan),
-- with no search of the primary key
BEGIN;
SELECT pg_stat_get_xact_numscans('automation_core.item_execution_pkey'::regclass) AS pk0 \gset
SELECT count(*) AS claimed FROM claim(:'run7', 'w', 1);
SELECT pg_stat_get_xact_numscans('automation_core.item_execution_pkey'::regclass) - :pk0 AS pkey_scans;
ROLLBACK;

-- one statement calling claim and complete many times: each call sees the
-- statement's earlier calls (the caller's snapshot, its command ID advanced),
-- so no item is handed out twice
SELECT id AS run8 FROM start_run(:'automation') \gset
SELECT count(*) AS claimed, count(DISTINCT c.id) AS distinct_items
FROM generate_series(1, 3) g, LATERAL claim(:'run8', 'w' || g, 2) c;
WITH x AS MATERIALIZED (SELECT id, attempt_count FROM item_execution
						WHERE run_id = :'run8' AND status = 'processing')
SELECT count(*) AS completed FROM x, LATERAL complete(x.id, NULL, x.attempt_count) c;
SELECT status, count(*) FROM item_execution WHERE run_id = :'run8' GROUP BY status ORDER BY status;

-- a heartbeat changes no indexed column, so it can be a HOT update that
-- writes no index entry (room on the page is made certain by a low
-- fillfactor for the rows written here)
ALTER TABLE item_execution SET (fillfactor = 50);
SELECT id AS run9 FROM start_run(:'automation') \gset
SELECT id AS hb_item, attempt_count AS hb_attempt FROM claim(:'run9', 'w', 1) \gset
BEGIN;
SELECT pg_stat_get_xact_tuples_hot_updated('item_execution'::regclass) AS hot0 \gset
SELECT status FROM heartbeat(:'hb_item', :hb_attempt, '6 minutes');
SELECT status FROM heartbeat(:'hb_item', :hb_attempt, '7 minutes');
SELECT pg_stat_get_xact_tuples_hot_updated('item_execution'::regclass) - :hot0 AS hot_updates;
COMMIT;
ALTER TABLE item_execution RESET (fillfactor);

-- an inactive item execution is not claimed: it is paused, and its batch
-- execution waits for it; active again, it is claimed and the run ends
SELECT id AS run10 FROM start_run(:'automation') \gset
UPDATE item_execution SET is_active = false
WHERE id = (SELECT id FROM item_execution WHERE run_id = :'run10' ORDER BY queue_position LIMIT 1)
RETURNING id AS paused \gset
SELECT count(*) AS claimed, bool_or(c.id = :'paused') AS paused_claimed
FROM claim(:'run10', 'w', 100) c;
SELECT count(*) AS completed FROM item_execution x, LATERAL complete(x.id) c
WHERE x.run_id = :'run10' AND x.status = 'processing';
SELECT be.status AS batch, r.status AS run FROM batch_execution be JOIN run r ON r.id = be.run_id
WHERE r.id = :'run10' ORDER BY be.created_at, be.id;
-- paused rows are not in the queue's indexes: a claim behind 500 of them
-- reads none of their rows
INSERT INTO automation (name) VALUES ('mostly paused') RETURNING id AS paused_auto \gset
INSERT INTO batch (automation_id, name) VALUES (:'paused_auto', 'b') RETURNING id AS paused_batch \gset
INSERT INTO item (batch_id, sequence_number) SELECT :'paused_batch', g FROM generate_series(0, 500) g;
SELECT id AS run10b FROM start_run(:'paused_auto') \gset
UPDATE item_execution SET is_active = false
WHERE run_id = :'run10b' AND id <> (SELECT id FROM item_execution WHERE run_id = :'run10b'
									ORDER BY queue_position DESC LIMIT 1);
BEGIN;
SELECT pg_stat_get_xact_tuples_fetched('automation_core.item_execution_run_ready_idx'::regclass) AS paused0 \gset
SELECT i.sequence_number FROM claim(:'run10b', 'w', 1) c JOIN item i ON i.id = c.item_id;
SELECT pg_stat_get_xact_tuples_fetched('automation_core.item_execution_run_ready_idx'::regclass) - :paused0 AS rows_fetched;
ROLLBACK;
SELECT r.status FROM cancel_run(:'run10b', 'paused') r;
UPDATE item_execution SET is_active = true WHERE id = :'paused';
SELECT c.id = :'paused' AS resumed FROM claim(:'run10', 'w', 100) c;
SELECT status FROM complete(:'paused');
SELECT status FROM run WHERE id = :'run10';

-- claim(run) reads that run's ready rows, not the queue of every run: a run
-- queued behind thousands of pending items of another is claimed from
-- through the index of ready rows by run, whatever the statistics say
-- (with two runs, the planner guesses half the rows are the run's).
INSERT INTO automation (name) VALUES ('backlog') RETURNING id AS backlog \gset
INSERT INTO batch (automation_id, name) VALUES (:'backlog', 'b') RETURNING id AS backlog_batch \gset
INSERT INTO item (batch_id, sequence_number) SELECT :'backlog_batch', g FROM generate_series(0, 4999) g;
INSERT INTO automation (name) VALUES ('behind') RETURNING id AS behind \gset
INSERT INTO batch (automation_id, name) VALUES (:'behind', 'b') RETURNING id AS behind_batch \gset
INSERT INTO item (batch_id, sequence_number) SELECT :'behind_batch', g FROM generate_series(0, 9) g;
DELETE FROM run WHERE status NOT IN ('completed', 'failed', 'cancelled');
SELECT id AS run11 FROM start_run(:'backlog') \gset
SELECT id AS run12 FROM start_run(:'behind') \gset
ANALYZE item_execution;
BEGIN;
SELECT pg_stat_get_xact_tuples_fetched('automation_core.item_execution_ready_idx'::regclass) AS ready0,
	pg_stat_get_xact_numscans('automation_core.item_execution_run_ready_idx'::regclass) AS run_ready0 \gset
SELECT count(*) AS claimed, bool_and(c.run_id = :'run12') AS all_of_the_run
FROM generate_series(1, 6) g, LATERAL claim(:'run12', 'w', 1) c;
SELECT pg_stat_get_xact_tuples_fetched('automation_core.item_execution_ready_idx'::regclass) - :ready0 AS queue_rows_read,
	pg_stat_get_xact_numscans('automation_core.item_execution_run_ready_idx'::regclass) - :run_ready0 AS run_index_scans;
COMMIT;

-- claim skips retries that are not due yet inside the index, without
-- fetching their rows: after an outage thousands of them can wait at the
-- head of the queue, and every claim used to read each of them.
SELECT r.status FROM unnest(ARRAY[:'run11', :'run12']::uuid[]) x, LATERAL cancel_run(x, 'make way') r;
SELECT id AS run14 FROM start_run(:'backlog', NULL, 3) \gset
SELECT count(*) AS claimed FROM claim(:'run14', 'w', 5000);
SELECT f.status, count(*) FROM item_execution x, LATERAL fail(x.id, 'down', true, '1 hour') f
WHERE x.run_id = :'run14' GROUP BY f.status;
SELECT id AS run13 FROM start_run(:'behind') \gset
ANALYZE item_execution;
BEGIN;
SELECT pg_stat_get_xact_tuples_fetched('automation_core.item_execution_ready_idx'::regclass) AS ready1 \gset
SELECT c.run_id = :'run13' AS from_the_run_behind FROM claim(NULL, 'w', 1) c;
SELECT pg_stat_get_xact_tuples_fetched('automation_core.item_execution_ready_idx'::regclass) - :ready1 AS rows_fetched;
COMMIT;
-- once due, a retry comes first again: it is ahead in the queue
UPDATE item_execution SET next_attempt_at = now() - interval '1 second'
WHERE id = (SELECT id FROM item_execution WHERE run_id = :'run14' AND status = 'retrying'
			ORDER BY queue_position DESC LIMIT 1);
SELECT c.run_id = :'run14' AS due_retry_first, c.attempt_count FROM claim(NULL, 'w', 1) c;

-- claim walks item_execution_ready_idx (item_execution_run_ready_idx for
-- one run) itself and locks what it finds (src/claim.c); where it cannot, a
-- query finds the ready rows instead, with the same result, and DEBUG1
-- says why: the index is missing or not as created, the table has
-- row-level security, or the user may not update the whole table
DELETE FROM run WHERE status NOT IN ('completed', 'failed', 'cancelled');
SELECT id AS run15 FROM start_run(:'behind') \gset
BEGIN;
DROP INDEX item_execution_ready_idx;
SET LOCAL client_min_messages = debug1;
SELECT i.sequence_number, c.worker FROM claim(NULL, 'w') c JOIN item i ON i.id = c.item_id;
ROLLBACK;
BEGIN;
DROP INDEX item_execution_run_ready_idx;
CREATE INDEX item_execution_run_ready_idx ON item_execution (run_id, queue_position, next_attempt_at)
	WHERE status IN ('pending', 'retrying');
SET LOCAL client_min_messages = debug1;
SELECT i.sequence_number, c.worker FROM claim(:'run15', 'w') c JOIN item i ON i.id = c.item_id;
ROLLBACK;
BEGIN;
ALTER TABLE item_execution ENABLE ROW LEVEL SECURITY;
SET LOCAL client_min_messages = debug1;
SELECT i.sequence_number, c.worker FROM claim(:'run15', 'w', 2) c JOIN item i ON i.id = c.item_id ORDER BY 1;
ROLLBACK;
CREATE ROLE ac_column_worker;
GRANT USAGE ON SCHEMA automation_core TO ac_column_worker;
GRANT SELECT ON ALL TABLES IN SCHEMA automation_core TO ac_column_worker;
GRANT UPDATE ON run, batch_execution TO ac_column_worker;
GRANT UPDATE (status, worker, lease_expires_at) ON item_execution TO ac_column_worker;
BEGIN;
SET LOCAL ROLE ac_column_worker;
SET LOCAL client_min_messages = debug1;
SELECT i.sequence_number, c.worker FROM claim(:'run15', 'w', 2) c JOIN item i ON i.id = c.item_id ORDER BY 1;
ROLLBACK;
DROP OWNED BY ac_column_worker;
DROP ROLE ac_column_worker;
-- a read-only transaction gets the UPDATE's refusal before any row is locked
BEGIN READ ONLY;
SET LOCAL client_min_messages = debug1;
SELECT ac_try($$SELECT * FROM claim(NULL, 'w')$$);
ROLLBACK;
-- and walking the index itself, the same
SET client_min_messages = debug1;
SELECT i.sequence_number, c.worker FROM claim(:'run15', 'w', 2) c JOIN item i ON i.id = c.item_id ORDER BY 1;
SET client_min_messages = warning;

-- start_run inserts its item executions without the foreign-key check per
-- row, whose query looks up the item by primary key: start_run's own query
-- locks every item as that check would (the isolation spec
-- start_run_delete_item shows the lock at work). A table with an INSERT
-- trigger of its user, or a caller who may not lock items, gets the
-- ordinary INSERT with its checks: the same rows and history, and the
-- user's trigger fires for each row.
INSERT INTO automation (name) VALUES ('bulk') RETURNING id AS bulk \gset
INSERT INTO batch (automation_id, name) SELECT :'bulk', 'b' || g FROM generate_series(1, 3) g;
INSERT INTO item (batch_id, sequence_number)
SELECT b.id, g FROM batch b, generate_series(0, 2) g WHERE b.automation_id = :'bulk';
CREATE TABLE api_test.fired (id uuid);
CREATE FUNCTION api_test.note_insert() RETURNS trigger LANGUAGE plpgsql
AS $$BEGIN INSERT INTO api_test.fired VALUES (NEW.id); RETURN NEW; END$$;
CREATE FUNCTION api_test.start_counted(a uuid, OUT run uuid, OUT items bigint, OUT item_lookups bigint)
LANGUAGE plpgsql AS $$
DECLARE
	before bigint := pg_stat_get_xact_numscans('automation_core.item_pkey'::regclass);
BEGIN
	SELECT s.id INTO run FROM automation_core.start_run(a, 'bulk', 2) s;
	item_lookups := pg_stat_get_xact_numscans('automation_core.item_pkey'::regclass) - before;
	SELECT count(*) INTO items FROM automation_core.item_execution WHERE run_id = run;
END $$;
SELECT run AS bulk_run, items, item_lookups FROM api_test.start_counted(:'bulk') \gset
SELECT :items AS items, :item_lookups AS item_lookups;
CREATE TRIGGER note_insert AFTER INSERT ON item_execution
	FOR EACH ROW EXECUTE FUNCTION api_test.note_insert();
-- (client_min_messages = debug1 says why)
SET client_min_messages = debug1;
SELECT run AS plain_run, items, item_lookups FROM api_test.start_counted(:'bulk') \gset
SET client_min_messages = warning;
SELECT :items AS items, :item_lookups AS item_lookups;
DROP TRIGGER note_insert ON item_execution;
SELECT count(*) AS trigger_fired, count(*) FILTER (WHERE ie.run_id = :'plain_run') AS for_its_rows
FROM api_test.fired f JOIN item_execution ie ON ie.id = f.id;
-- each item's two rows, and its two history rows, differ in nothing but
-- ids and times
SELECT count(*) AS rows, count(DISTINCT j) AS distinct_rows
FROM (SELECT to_jsonb(ie) - '{id,run_id,batch_execution_id,queue_position,created_at,updated_at}'::text[]
			 || jsonb_build_object('place', rank() OVER (PARTITION BY ie.run_id ORDER BY ie.queue_position),
								   'batch', b.name, 'n', i.sequence_number) AS j
	  FROM item_execution ie JOIN item i ON i.id = ie.item_id JOIN batch b ON b.id = i.batch_id
	  WHERE ie.run_id IN (:'bulk_run', :'plain_run')) x;
SELECT count(*) AS history_rows, count(DISTINCT j) AS distinct_rows
FROM (SELECT to_jsonb(h) - '{id,item_execution_id,changed_at,created_at}'::text[]
			 || jsonb_build_object('item', ie.item_id) AS j
	  FROM item_state_history h JOIN item_execution ie ON ie.id = h.item_execution_id
	  WHERE ie.run_id IN (:'bulk_run', :'plain_run')) x;
-- so does a table with a rule, which only an INSERT statement applies
CREATE TABLE api_test.ruled (id uuid);
CREATE RULE note_insert AS ON INSERT TO item_execution DO ALSO INSERT INTO api_test.ruled VALUES (NEW.id);
SELECT items, item_lookups FROM api_test.start_counted(:'bulk');
DROP RULE note_insert ON item_execution;
SELECT count(*) AS rule_applied FROM api_test.ruled;
SELECT items, item_lookups FROM api_test.start_counted(:'bulk');
-- so does a table whose columns no longer match start_run's rows
ALTER TABLE item_execution ALTER COLUMN max_attempts TYPE bigint;
SELECT items, item_lookups FROM api_test.start_counted(:'bulk');
ALTER TABLE item_execution ALTER COLUMN max_attempts TYPE integer;
-- a role that may read items but not lock them starts runs as before
CREATE ROLE ac_starter;
GRANT USAGE ON SCHEMA automation_core, api_test TO ac_starter;
GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA automation_core TO ac_starter;
GRANT UPDATE ON automation, run, batch_execution, item_execution TO ac_starter;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA automation_core TO ac_starter;
SET ROLE ac_starter;
SET client_min_messages = debug1;
SELECT items, item_lookups FROM api_test.start_counted(:'bulk');
SET client_min_messages = warning;
RESET ROLE;
DROP OWNED BY ac_starter;
DROP ROLE ac_starter;

-- claim updates the rows it has locked where it found them, whatever the
-- statistics say: taken while nothing was ready or open, they make the
-- partial indexes of ready and open items look empty, and a plan that
-- walked one of them looking for the locked ids read every open row of the
-- queue on each claim of several items. Counted: the rows read through any
-- index of item_execution or by a sequential scan of it.
SET client_min_messages = warning;
SELECT count(*) > 0 AS made_way
FROM (SELECT DISTINCT run_id FROM item_execution WHERE status IN ('pending', 'retrying')) x,
	 LATERAL cancel_run(x.run_id, 'make way') r;
ALTER TABLE item_execution SET (autovacuum_enabled = false);
VACUUM ANALYZE item_execution;
INSERT INTO automation (name) VALUES ('stale') RETURNING id AS stale \gset
INSERT INTO batch (automation_id, name) VALUES (:'stale', 'b') RETURNING id AS stale_batch \gset
INSERT INTO item (batch_id, sequence_number) SELECT :'stale_batch', g FROM generate_series(0, 1999) g;
SELECT id AS stale_run FROM start_run(:'stale') \gset
BEGIN;
CREATE FUNCTION pg_temp.item_rows_read() RETURNS bigint LANGUAGE sql AS $$
	SELECT sum(pg_stat_get_xact_tuples_fetched(indexrelid))
		 + pg_stat_get_xact_tuples_returned('automation_core.item_execution'::regclass)
	FROM pg_index WHERE indrelid = 'automation_core.item_execution'::regclass
$$;
SELECT pg_temp.item_rows_read() AS read0 \gset
SELECT count(*) AS claimed FROM claim(NULL, 'w', 5);
SELECT count(*) AS claimed FROM claim(:'stale_run', 'w', 5);
SELECT count(*) AS claimed FROM claim(:'stale_run', 'w', 1);
SELECT pg_temp.item_rows_read() - :read0 AS rows_read;
COMMIT;
ALTER TABLE item_execution RESET (autovacuum_enabled);

-- NULL max_items claims one item; a NULL lease is the default lease, for
-- claim and heartbeat alike; a NULL error leaves error_message NULL
INSERT INTO automation (name) VALUES ('nulls') RETURNING id AS nulls_auto \gset
INSERT INTO batch (automation_id, name) VALUES (:'nulls_auto', 'b') RETURNING id AS nulls_batch \gset
INSERT INTO item (batch_id, sequence_number) SELECT :'nulls_batch', g FROM generate_series(0, 2) g;
SELECT id AS nulls_run FROM start_run(:'nulls_auto', NULL, 3) \gset
SET automation_core.default_lease = '42s';
SELECT count(*) AS claimed, bool_and(lease_expires_at = now() + interval '42 seconds') AS default_lease
FROM claim(:'nulls_run', 'w', NULL, NULL);
SELECT id AS n_id, attempt_count AS n_att FROM item_execution
WHERE run_id = :'nulls_run' AND status = 'processing' \gset
UPDATE item_execution SET lease_expires_at = now() + interval '1 hour' WHERE id = :'n_id';
SELECT lease_expires_at = now() + interval '42 seconds' AS default_lease FROM heartbeat(:'n_id', :n_att, NULL);
RESET automation_core.default_lease;
SELECT status, error_message IS NULL AS no_message FROM fail(:'n_id', NULL, true, NULL, :n_att);

-- fencing: a worker whose attempt is older than the current one can't
-- fail the item (nor complete it, above)
INSERT INTO automation (name) VALUES ('fencing') RETURNING id AS f_auto \gset
INSERT INTO batch (automation_id, name) VALUES (:'f_auto', 'b') RETURNING id AS f_batch \gset
INSERT INTO item (batch_id, sequence_number) SELECT :'f_batch', g FROM generate_series(0, 2) g;
SELECT id AS f_run FROM start_run(:'f_auto', NULL, 3) \gset
SELECT id AS f_id FROM claim(:'f_run', 'w1', 1) \gset
SELECT status FROM fail(:'f_id', 'first', true, NULL, 1);
UPDATE item_execution SET next_attempt_at = now() - interval '1 second' WHERE id = :'f_id';
SELECT attempt_count FROM claim(:'f_run', 'w2', 1);
SELECT ac_try(format('SELECT fail(%L, %L, false, NULL, 1)', :'f_id', 'late'));
SELECT status, attempt_count, worker FROM item_execution WHERE id = :'f_id';

-- expire_leases on the last attempt fails the items instead of retrying
SELECT id AS e_run FROM start_run(:'f_auto', NULL, 1) \gset
SELECT count(*) AS claimed FROM claim(:'e_run', 'w', 3);
UPDATE item_execution SET lease_expires_at = now() - interval '1 second' WHERE run_id = :'e_run';
SELECT expire_leases() AS expired;
SELECT status, attempt_count, error_message, count(*) FROM item_execution
WHERE run_id = :'e_run' GROUP BY 1, 2, 3;
SELECT status FROM run WHERE id = :'e_run';

-- a run with nothing in it that was cancelled is done, as far as progress goes
INSERT INTO automation (name) VALUES ('nothing in it') RETURNING id AS empty_auto \gset
INSERT INTO run (automation_id) VALUES (:'empty_auto') RETURNING id AS empty_run \gset
SELECT status FROM cancel_run(:'empty_run', 'nothing to do');
SELECT status, total, percent_done FROM run_progress WHERE run_id = :'empty_run';

-- claim checks is_active itself, also when walking an index whose
-- predicate leaves paused rows in (rebuilt by someone, say)
SELECT id AS p_run FROM start_run(:'f_auto') \gset
UPDATE item_execution SET is_active = false
WHERE id = (SELECT id FROM item_execution WHERE run_id = :'p_run' ORDER BY queue_position LIMIT 1);
BEGIN;
DROP INDEX item_execution_run_ready_idx;
CREATE INDEX item_execution_run_ready_idx ON item_execution
	(run_id, queue_position, (COALESCE(next_attempt_at, '-infinity'::timestamptz)))
	WHERE status IN ('pending', 'retrying');
SELECT i.sequence_number, c.is_active FROM claim(:'p_run', 'w', 1) c JOIN item i ON i.id = c.item_id;
ROLLBACK;

RESET search_path;
DROP SCHEMA api_test CASCADE;
