-- Retry limits and the attempt counter of item executions.
\set VERBOSITY terse
SELECT ac_fixture('retry', 1, 4, 2) IS NOT NULL AS fixture;

-- entering processing counts an attempt
SELECT attempt_count, max_attempts FROM automation_core.item_execution WHERE id = ac_ie('retry', 1);
UPDATE automation_core.item_execution SET status = 'processing' WHERE id = ac_ie('retry', 1);
SELECT status, attempt_count FROM automation_core.item_execution WHERE id = ac_ie('retry', 1);
-- staying in processing counts nothing
UPDATE automation_core.item_execution SET worker = 'w' WHERE id = ac_ie('retry', 1);
SELECT status, attempt_count FROM automation_core.item_execution WHERE id = ac_ie('retry', 1);
-- retrying with an attempt left
SELECT ac_try($$UPDATE automation_core.item_execution SET status = 'retrying' WHERE id = ac_ie('retry', 1)$$);
UPDATE automation_core.item_execution SET status = 'processing' WHERE id = ac_ie('retry', 1);
SELECT status, attempt_count FROM automation_core.item_execution WHERE id = ac_ie('retry', 1);
-- 2 of 2 used: no retrying
SELECT ac_try($$UPDATE automation_core.item_execution SET status = 'retrying' WHERE id = ac_ie('retry', 1)$$);
-- raising the limit allows it again
SELECT ac_try($$UPDATE automation_core.item_execution SET max_attempts = 3, status = 'retrying' WHERE id = ac_ie('retry', 1)$$);
-- a retrying item keeps the attempt it waits for: max_attempts can't be
-- taken down to attempt_count, nor unset (it would stay retrying for ever)
SELECT ac_try($$UPDATE automation_core.item_execution SET max_attempts = 2 WHERE id = ac_ie('retry', 1)$$, true);
SELECT ac_try($$UPDATE automation_core.item_execution SET max_attempts = NULL WHERE id = ac_ie('retry', 1)$$, true);
-- max_attempts can't go below attempt_count
SELECT ac_try($$UPDATE automation_core.item_execution SET max_attempts = 1 WHERE id = ac_ie('retry', 1)$$);
SELECT ac_try($$UPDATE automation_core.item_execution SET max_attempts = 0 WHERE id = ac_ie('retry', 1)$$);
SELECT ac_try($$UPDATE automation_core.item_execution SET max_attempts = 4 WHERE id = ac_ie('retry', 1)$$);
SELECT status, attempt_count, max_attempts FROM automation_core.item_execution WHERE id = ac_ie('retry', 1);
-- giving up on a retrying item: failed, with a lower max_attempts in the same UPDATE
SELECT ac_try($$UPDATE automation_core.item_execution SET status = 'failed', max_attempts = 2, error_message = 'gave up' WHERE id = ac_ie('retry', 1)$$);
SELECT status, attempt_count, max_attempts, error_message FROM automation_core.item_execution WHERE id = ac_ie('retry', 1);
-- a client never sets attempt_count
SELECT ac_try($$UPDATE automation_core.item_execution SET attempt_count = 0 WHERE id = ac_ie('retry', 2)$$);
SELECT ac_try($$UPDATE automation_core.item_execution SET attempt_count = 5 WHERE id = ac_ie('retry', 2)$$);
SELECT ac_try($$UPDATE automation_core.item_execution SET status = 'processing', attempt_count = 7 WHERE id = ac_ie('retry', 2)$$);
SELECT ac_try($$UPDATE automation_core.item_execution SET attempt_count = -1 WHERE id = ac_ie('retry', 2)$$);
SELECT ac_try($$INSERT INTO automation_core.item_execution (run_id, batch_execution_id, item_id, attempt_count)
	SELECT run_id, batch_execution_id, item_id, 1 FROM automation_core.item_execution WHERE id = ac_ie('retry', 2)$$);
SELECT ac_try($$INSERT INTO automation_core.item_execution (run_id, batch_execution_id, item_id, max_attempts)
	SELECT run_id, batch_execution_id, item_id, 0 FROM automation_core.item_execution WHERE id = ac_ie('retry', 2)$$);
SELECT attempt_count FROM automation_core.item_execution WHERE id = ac_ie('retry', 2);

-- retrying needs max_attempts
UPDATE automation_core.item_execution SET max_attempts = NULL WHERE id = ac_ie('retry', 3);
UPDATE automation_core.item_execution SET status = 'processing' WHERE id = ac_ie('retry', 3);
SELECT ac_try($$UPDATE automation_core.item_execution SET status = 'retrying' WHERE id = ac_ie('retry', 3)$$);
-- without a limit, attempts are unbounded: processing again after... nothing (no retrying); failed is fine
SELECT ac_try($$UPDATE automation_core.item_execution SET status = 'failed' WHERE id = ac_ie('retry', 3)$$);

-- max_attempts = 1: one attempt, no retry
UPDATE automation_core.item_execution SET max_attempts = 1 WHERE id = ac_ie('retry', 4);
UPDATE automation_core.item_execution SET status = 'processing' WHERE id = ac_ie('retry', 4);
SELECT ac_try($$UPDATE automation_core.item_execution SET status = 'retrying' WHERE id = ac_ie('retry', 4)$$);
SELECT ac_try($$UPDATE automation_core.item_execution SET status = 'cancelled' WHERE id = ac_ie('retry', 4)$$);

SELECT ac_state('retry');
SELECT i.sequence_number, ie.attempt_count, ie.max_attempts
FROM automation_core.item_execution ie JOIN automation_core.item i ON i.id = ie.item_id
WHERE ie.run_id = ac_run('retry') ORDER BY 1;

-- retrying -> processing is refused at max_attempts; only rows written with
-- the triggers off can be retrying without an attempt left
SELECT ac_fixture('retry2', 1, 1, 2) IS NOT NULL AS fixture;
UPDATE automation_core.item_execution SET status = 'processing' WHERE id = ac_ie('retry2', 1);
UPDATE automation_core.item_execution SET status = 'retrying' WHERE id = ac_ie('retry2', 1);
SET session_replication_role = replica;
UPDATE automation_core.item_execution SET max_attempts = 1 WHERE id = ac_ie('retry2', 1);
RESET session_replication_role;
SELECT ac_try($$UPDATE automation_core.item_execution SET status = 'processing' WHERE id = ac_ie('retry2', 1)$$);
UPDATE automation_core.item_execution SET status = 'cancelled' WHERE id = ac_ie('retry2', 1);
SELECT status, attempt_count, max_attempts FROM automation_core.item_execution WHERE id = ac_ie('retry2', 1);
