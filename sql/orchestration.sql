-- Engines, orchestration instances, duration_seconds, run_orchestration.
\set VERBOSITY terse
INSERT INTO automation_core.engine (name, type) VALUES ('orch engine', 'workflow');
INSERT INTO automation_core.orchestration_instance (engine_id, external_id, instance_metadata)
SELECT id, x, '{"k": 1}' FROM automation_core.engine, unnest('{o1,o2,o3,o4}'::text[]) AS x
WHERE name = 'orch engine';
SELECT ac_try($$INSERT INTO automation_core.orchestration_instance (engine_id, external_id) SELECT id, 'o1' FROM automation_core.engine WHERE name = 'orch engine'$$);

-- duration_seconds from the timestamps on entering a terminal status
-- (started_at is the extension's: move it back with the triggers off)
UPDATE automation_core.orchestration_instance SET status = 'processing' WHERE external_id IN ('o1', 'o2', 'o3');
SET session_replication_role = replica;
UPDATE automation_core.orchestration_instance SET started_at = started_at - interval '90 seconds' WHERE external_id IN ('o1', 'o2', 'o3');
RESET session_replication_role;
UPDATE automation_core.orchestration_instance SET status = 'completed' WHERE external_id = 'o1';
-- the statement's own value is kept
UPDATE automation_core.orchestration_instance SET status = 'failed', duration_seconds = 7 WHERE external_id = 'o2';
-- cancelled too; never started: no duration
UPDATE automation_core.orchestration_instance SET status = 'cancelled' WHERE external_id IN ('o3', 'o4');
SELECT external_id, status, duration_seconds BETWEEN 90 AND 100 AS about_90s, duration_seconds = 7 AS given,
	duration_seconds IS NULL AS no_duration, finished_at IS NOT NULL AS finished
FROM automation_core.orchestration_instance
WHERE engine_id = (SELECT id FROM automation_core.engine WHERE name = 'orch engine')
ORDER BY external_id;
-- duration_seconds is part of the frozen terminal row
SELECT ac_try($$UPDATE automation_core.orchestration_instance SET duration_seconds = 1 WHERE external_id = 'o1'$$);
SELECT ac_try($$UPDATE automation_core.orchestration_instance SET instance_metadata = '{"k": 2}', is_active = false WHERE external_id = 'o1'$$);
SELECT ac_try($$UPDATE automation_core.orchestration_instance SET status = 'processing' WHERE external_id = 'o4'$$);

-- a run linked to instances
SELECT ac_fixture('orch', 1, 1) IS NOT NULL AS fixture;
BEGIN;
INSERT INTO automation_core.run_orchestration (run_id, orchestration_instance_id)
SELECT ac_run('orch'), id FROM automation_core.orchestration_instance WHERE external_id IN ('o1', 'o2');
SELECT o.external_id, ro.version, ro.attached_at = now() AS attached_now, ro.created_by IS NOT NULL AS audited
FROM automation_core.run_orchestration ro
JOIN automation_core.orchestration_instance o ON o.id = ro.orchestration_instance_id
WHERE ro.run_id = ac_run('orch') ORDER BY 1;
COMMIT;
SELECT ac_try($$INSERT INTO automation_core.run_orchestration (run_id, orchestration_instance_id) SELECT ac_run('orch'), id FROM automation_core.orchestration_instance WHERE external_id = 'o1'$$);
UPDATE automation_core.run_orchestration SET version = 50 WHERE run_id = ac_run('orch');
SELECT version FROM automation_core.run_orchestration WHERE run_id = ac_run('orch') ORDER BY 1;
-- deleting an instance removes its links (ON DELETE CASCADE)
DELETE FROM automation_core.orchestration_instance WHERE external_id = 'o2';
SELECT count(*) AS links FROM automation_core.run_orchestration WHERE run_id = ac_run('orch');
-- deleting the engine removes its instances
DELETE FROM automation_core.engine WHERE name = 'orch engine';
SELECT count(*) AS instances FROM automation_core.orchestration_instance WHERE external_id IN ('o1', 'o2', 'o3', 'o4');
SELECT count(*) AS links FROM automation_core.run_orchestration WHERE run_id = ac_run('orch');
