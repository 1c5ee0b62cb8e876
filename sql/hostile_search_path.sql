-- Objects planted in public before CREATE EXTENSION, with public first in
-- search_path, must never be called: everything the extension runs is
-- schema-qualified. Runs in its own database.
\set VERBOSITY terse
CREATE DATABASE ac_hostile;
\c ac_hostile
SET search_path = public, pg_catalog;
SET client_min_messages = warning;

CREATE FUNCTION public.hostile(what text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'hostile % called', what;
END
$$;
CREATE FUNCTION public.now() RETURNS timestamptz LANGUAGE plpgsql AS $$
BEGIN PERFORM public.hostile('now()'); RETURN NULL; END $$;
CREATE FUNCTION public.gen_random_uuid() RETURNS uuid LANGUAGE plpgsql AS $$
BEGIN PERFORM public.hostile('gen_random_uuid()'); RETURN NULL; END $$;
CREATE FUNCTION public.btrim(text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN PERFORM public.hostile('btrim()'); RETURN NULL; END $$;
CREATE FUNCTION public.format(text, bigint, bigint) RETURNS text LANGUAGE plpgsql AS $$
BEGIN PERFORM public.hostile('format()'); RETURN NULL; END $$;
CREATE FUNCTION public.format(text, text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN PERFORM public.hostile('format()'); RETURN NULL; END $$;
CREATE FUNCTION public.nextval(regclass) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN PERFORM public.hostile('nextval()'); RETURN NULL; END $$;
CREATE FUNCTION public.count(uuid) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN PERFORM public.hostile('count()'); RETURN NULL; END $$;
CREATE FUNCTION public.uuid_eq_hostile(uuid, uuid) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN PERFORM public.hostile('= for uuid'); RETURN NULL; END $$;
CREATE OPERATOR public.= (LEFTARG = uuid, RIGHTARG = uuid, PROCEDURE = public.uuid_eq_hostile);
CREATE FUNCTION public.enum_eq_hostile(anyenum, anyenum) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN PERFORM public.hostile('= for enums'); RETURN NULL; END $$;
CREATE OPERATOR public.= (LEFTARG = anyenum, RIGHTARG = anyenum, PROCEDURE = public.enum_eq_hostile);
CREATE OPERATOR public.<> (LEFTARG = anyenum, RIGHTARG = anyenum, PROCEDURE = public.enum_eq_hostile);
CREATE TABLE public.automation (id uuid, name text, is_active boolean);
CREATE TABLE public.run (id uuid, status text);
CREATE TABLE public.item_execution (id uuid, status text);
CREATE TABLE public.batch_execution (id uuid, status text);
CREATE SCHEMA IF NOT EXISTS hostile;
CREATE TYPE public.execution_status AS ENUM ('pending');

-- the planted objects do fire when called unqualified
SELECT now();
SELECT '00000000-0000-0000-0000-000000000000'::uuid = '00000000-0000-0000-0000-000000000000'::uuid;

CREATE EXTENSION automation_core;
RESET client_min_messages;

-- a whole life cycle under the hostile search_path (the test's own
-- comparisons are qualified too: the planted "=" would catch them)
SET automation_core.actor = 'hostile-test';
INSERT INTO automation_core.automation (name) VALUES ('  hostile  ');
INSERT INTO automation_core.engine (name, type) VALUES (' e ', ' t ');
INSERT INTO automation_core.run (automation_id, correlation_id)
	SELECT id, 'h' FROM automation_core.automation;
INSERT INTO automation_core.batch (automation_id, name) SELECT id, ' b ' FROM automation_core.automation;
INSERT INTO automation_core.batch_execution (run_id, batch_id)
	SELECT r.id, b.id FROM automation_core.run r, automation_core.batch b;
INSERT INTO automation_core.item (batch_id, sequence_number)
	SELECT b.id, n FROM automation_core.batch b, generate_series(1, 3) n;
INSERT INTO automation_core.item_execution (run_id, batch_execution_id, item_id, max_attempts)
	SELECT be.run_id, be.id, i.id, 2 FROM automation_core.batch_execution be
	JOIN automation_core.item i ON i.batch_id OPERATOR(pg_catalog.=) be.batch_id;
UPDATE automation_core.item_execution SET status = 'processing';
UPDATE automation_core.item_execution SET status = 'retrying'
	WHERE item_id OPERATOR(pg_catalog.=) ANY (SELECT id FROM automation_core.item WHERE sequence_number = 1);
UPDATE automation_core.item_execution SET status = 'processing' WHERE status::text = 'retrying';
UPDATE automation_core.item_execution SET status = 'failed'
	WHERE item_id OPERATOR(pg_catalog.=) ANY (SELECT id FROM automation_core.item WHERE sequence_number = 1);
UPDATE automation_core.item_execution SET status = 'completed' WHERE status::text = 'processing';
SELECT r.status::text, r.error_summary, r.version FROM automation_core.run r;
SELECT be.status::text FROM automation_core.batch_execution be;
SELECT status::text, count(*) FROM automation_core.item_execution GROUP BY 1 ORDER BY 1;
SELECT count(*) AS history_rows FROM automation_core.item_state_history;
SELECT a.name, a.created_by, e.name AS engine, e.type FROM automation_core.automation a, automation_core.engine e;
-- the refusals still work
\set ON_ERROR_STOP 0
UPDATE automation_core.run SET status = 'processing';
DELETE FROM automation_core.item_state_history;
INSERT INTO automation_core.automation (name) VALUES ('   ');
-- cancellation cascade
INSERT INTO automation_core.run (automation_id, correlation_id) SELECT id, 'h2' FROM automation_core.automation;
INSERT INTO automation_core.batch_execution (run_id, batch_id)
	SELECT r.id, b.id FROM automation_core.run r, automation_core.batch b WHERE r.correlation_id = 'h2';
INSERT INTO automation_core.item_execution (run_id, batch_execution_id, item_id)
	SELECT be.run_id, be.id, i.id FROM automation_core.batch_execution be
	JOIN automation_core.run r ON r.id OPERATOR(pg_catalog.=) be.run_id
	JOIN automation_core.item i ON i.batch_id OPERATOR(pg_catalog.=) be.batch_id WHERE r.correlation_id = 'h2';
UPDATE automation_core.run SET status = 'cancelled' WHERE correlation_id = 'h2';
SELECT r.correlation_id, r.status::text, be.status::text AS batch,
	(SELECT pg_catalog.string_agg(ie.status::text, ',' ORDER BY ie.status::text) FROM automation_core.item_execution ie
	 WHERE ie.run_id OPERATOR(pg_catalog.=) r.id) AS items
FROM automation_core.run r JOIN automation_core.batch_execution be ON be.run_id OPERATOR(pg_catalog.=) r.id
ORDER BY 1;
-- deleting a run takes its history along (the history guard looks it up)
DELETE FROM automation_core.run WHERE correlation_id = 'h2';
SELECT count(*) AS history_rows FROM automation_core.item_state_history;
-- the planted tables stayed empty
SELECT (SELECT count(*) FROM public.automation) + (SELECT count(*) FROM public.run) AS planted_rows;
DROP EXTENSION automation_core;
-- created again in the same session, which wrote history before: history
-- goes to the new table with its new identity sequence
SET client_min_messages = warning;
CREATE EXTENSION automation_core;
RESET client_min_messages;
INSERT INTO automation_core.automation (name) VALUES ('again');
INSERT INTO automation_core.batch (automation_id, name) SELECT id, 'b' FROM automation_core.automation;
INSERT INTO automation_core.item (batch_id, sequence_number) SELECT id, g FROM automation_core.batch, generate_series(1, 3) g;
SELECT status FROM automation_core.start_run((SELECT id FROM automation_core.automation));
SELECT count(*) AS history_rows, min(id) AS first_id FROM automation_core.item_state_history;
SELECT count(*) AS claimed FROM automation_core.claim(NULL, 'w', 2);
SELECT count(*) AS history_rows, max(id) AS last_id FROM automation_core.item_state_history;
DROP EXTENSION automation_core;

\c contrib_regression
DROP DATABASE ac_hostile;
