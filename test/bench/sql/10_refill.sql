-- A fresh pool of pending item executions on both sides, and each pick
-- sequence set to the first of them. Written in replica mode (no
-- history rows): only the transitions are measured.
\set ON_ERROR_STOP 1
SET session_replication_role = replica;
TRUNCATE automation_core.item_state_history, automation_core.item_execution;
TRUNCATE bench_floor.item_state_history, bench_floor.item_execution;
INSERT INTO automation_core.item_execution (run_id, batch_execution_id, item_id, created_at, updated_at, created_by, updated_by)
	SELECT be.run_id, be.id, i.id, now(), now(), 'bench', 'bench'
	FROM automation_core.batch_execution be JOIN automation_core.item i ON i.batch_id = be.batch_id
	ORDER BY i.sequence_number;
INSERT INTO bench_floor.item_execution (run_id, batch_execution_id, item_id, created_at, updated_at, created_by, updated_by)
	SELECT be.run_id, be.id, i.id, now(), now(), 'bench', 'bench'
	FROM automation_core.batch_execution be JOIN automation_core.item i ON i.batch_id = be.batch_id
	ORDER BY i.sequence_number;
RESET session_replication_role;
SELECT setval('bench_floor.pick_triggered', min(queue_position), false) FROM automation_core.item_execution;
SELECT setval('bench_floor.pick_floor', min(queue_position), false) FROM bench_floor.item_execution;
ANALYZE automation_core.item_execution, bench_floor.item_execution;
