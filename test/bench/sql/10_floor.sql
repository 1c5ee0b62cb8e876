-- The same two transitions by hand on tables without triggers: the
-- values the trigger would set (audit, version, timestamps, attempt
-- count, lease) and one history row per change, each change one
-- statement and one transaction, like the triggered side.
WITH u AS (
	UPDATE bench_floor.item_execution SET status = 'processing',
			attempt_count = attempt_count + 1, started_at = now(),
			lease_expires_at = now() + interval '5 minutes', next_attempt_at = NULL,
			updated_at = now(), updated_by = 'bench', version = version + 1
		WHERE queue_position = (SELECT nextval('bench_floor.pick_floor')) AND status = 'pending'
		RETURNING id)
INSERT INTO bench_floor.item_state_history (item_execution_id, previous_status, new_status, changed_at, created_at, created_by)
	SELECT id, 'pending', 'processing', now(), now(), 'bench' FROM u
	RETURNING item_execution_id AS id \gset
WITH u AS (
	UPDATE bench_floor.item_execution SET status = 'completed', result_payload = '{"ok": true}',
			finished_at = now(), lease_expires_at = NULL, next_attempt_at = NULL,
			updated_at = now(), updated_by = 'bench', version = version + 1
		WHERE id = :id
		RETURNING id)
INSERT INTO bench_floor.item_state_history (item_execution_id, previous_status, new_status, changed_at, created_at, created_by)
	SELECT id, 'processing', 'completed', now(), now(), 'bench' FROM u;
