-- Fixture of the transitions benchmark: one automation, one batch of
-- :pool items, one run with its batch execution, and the floor: copies
-- of item_execution and item_state_history with the same columns,
-- defaults, constraints, indexes and foreign keys, but no triggers.
\set ON_ERROR_STOP 1
DROP SCHEMA IF EXISTS bench_floor CASCADE;
SET session_replication_role = replica;
TRUNCATE automation_core.automation CASCADE;
RESET session_replication_role;
SET automation_core.actor = 'bench';
INSERT INTO automation_core.automation (name) VALUES ('bench transitions');
INSERT INTO automation_core.batch (automation_id, name)
	SELECT id, 'pool' FROM automation_core.automation;
INSERT INTO automation_core.item (batch_id, sequence_number)
	SELECT b.id, n FROM automation_core.batch b, generate_series(1, :pool) n;
INSERT INTO automation_core.run (automation_id, correlation_id)
	SELECT id, 'bench' FROM automation_core.automation;
INSERT INTO automation_core.batch_execution (run_id, batch_id)
	SELECT r.id, b.id FROM automation_core.run r, automation_core.batch b;
UPDATE automation_core.run SET status = 'processing';
UPDATE automation_core.batch_execution SET status = 'processing';

CREATE SCHEMA bench_floor;
CREATE TABLE bench_floor.item_execution
	(LIKE automation_core.item_execution INCLUDING ALL);
ALTER TABLE bench_floor.item_execution
	ADD FOREIGN KEY (run_id) REFERENCES automation_core.run (id) ON DELETE CASCADE,
	ADD FOREIGN KEY (batch_execution_id) REFERENCES automation_core.batch_execution (id) ON DELETE CASCADE,
	ADD FOREIGN KEY (item_id) REFERENCES automation_core.item (id) ON DELETE CASCADE;
CREATE TABLE bench_floor.item_state_history
	(LIKE automation_core.item_state_history INCLUDING ALL);
ALTER TABLE bench_floor.item_state_history
	ADD FOREIGN KEY (item_execution_id) REFERENCES bench_floor.item_execution (id) ON DELETE CASCADE;
-- which pending row each transaction takes next
CREATE SEQUENCE bench_floor.pick_triggered;
CREATE SEQUENCE bench_floor.pick_floor;
