-- Creates the extension and the helpers the other tests share.
CREATE EXTENSION automation_core;

SELECT e.extname, e.extversion, n.nspname, e.extrelocatable
FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
WHERE e.extname = 'automation_core';

-- the ten tables
SELECT c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'automation_core' AND c.relkind = 'r'
ORDER BY 1;

-- every table holding user data is dumped with its rows
SELECT c.relname
FROM pg_extension e, unnest(e.extconfig) AS cfg(oid)
JOIN pg_class c ON c.oid = cfg.oid
WHERE e.extname = 'automation_core'
ORDER BY 1;

SELECT enum_range(NULL::automation_core.execution_status);

-- Runs one statement; prints "ok <rows>" or "<SQLSTATE> <constraint>: <message>",
-- and with detail, " (<detail>)" with ids the test did not choose masked.
CREATE FUNCTION public.ac_try(sql text, detail boolean DEFAULT false) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	st text;
	con text;
	msg text;
	det text;
	n bigint;
BEGIN
	EXECUTE sql;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN 'ok ' || n;
EXCEPTION WHEN OTHERS OR query_canceled THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, con = CONSTRAINT_NAME,
		msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL;
	IF detail AND nullif(det, '') IS NOT NULL THEN
		msg := msg || ' (' || regexp_replace(det,
			'(?!00000000)[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}',
			'<id>', 'g') || ')';
	END IF;
	RETURN st || ' ' || coalesce(nullif(con, ''), '-') || ': ' || msg;
END
$$;

-- An automation with nb batches of ni items each and a run over them, all
-- by plain INSERTs, the run and everything in it pending. Items are
-- numbered 1..nb*ni across the run (sequence_number).
CREATE FUNCTION public.ac_fixture(corr text, nb int, ni int, max_attempts int DEFAULT NULL)
RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
	a uuid;
	r uuid;
	b uuid;
	be uuid;
	i uuid;
BEGIN
	INSERT INTO automation_core.automation (name) VALUES ('fixture ' || corr) RETURNING id INTO a;
	INSERT INTO automation_core.run (automation_id, correlation_id) VALUES (a, corr) RETURNING id INTO r;
	FOR bn IN 1..nb LOOP
		INSERT INTO automation_core.batch (automation_id, name) VALUES (a, 'batch ' || bn) RETURNING id INTO b;
		INSERT INTO automation_core.batch_execution (run_id, batch_id) VALUES (r, b) RETURNING id INTO be;
		FOR n IN 1..ni LOOP
			INSERT INTO automation_core.item (batch_id, sequence_number) VALUES (b, (bn - 1) * ni + n)
				RETURNING id INTO i;
			INSERT INTO automation_core.item_execution (run_id, batch_execution_id, item_id, max_attempts)
				VALUES (r, be, i, ac_fixture.max_attempts);
		END LOOP;
	END LOOP;
	RETURN r;
END
$$;

-- The item execution of item number seq in the run with this correlation id.
CREATE FUNCTION public.ac_ie(corr text, seq int) RETURNS uuid
LANGUAGE sql STABLE AS $$
	SELECT ie.id FROM automation_core.item_execution ie
	JOIN automation_core.run r ON r.id = ie.run_id
	JOIN automation_core.item i ON i.id = ie.item_id
	WHERE r.correlation_id = corr AND i.sequence_number = seq
$$;

-- The batch execution of batch number bn in that run.
CREATE FUNCTION public.ac_be(corr text, bn int) RETURNS uuid
LANGUAGE sql STABLE AS $$
	SELECT be.id FROM automation_core.batch_execution be
	JOIN automation_core.run r ON r.id = be.run_id
	JOIN automation_core.batch b ON b.id = be.batch_id
	WHERE r.correlation_id = corr AND b.name = 'batch ' || bn
$$;

CREATE FUNCTION public.ac_run(corr text) RETURNS uuid
LANGUAGE sql STABLE AS $$
	SELECT id FROM automation_core.run WHERE correlation_id = corr
$$;

-- Statuses of a run, its batch executions and item executions, one line.
CREATE FUNCTION public.ac_state(corr text) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT 'run ' || r.status || ' | ' ||
		coalesce((SELECT string_agg(b.name || ' ' || be.status, ', ' ORDER BY b.name)
		 FROM automation_core.batch_execution be
		 JOIN automation_core.batch b ON b.id = be.batch_id
		 WHERE be.run_id = r.id), '-') || ' | items ' ||
		coalesce((SELECT string_agg(i.sequence_number || ':' || ie.status, ' ' ORDER BY i.sequence_number)
		 FROM automation_core.item_execution ie
		 JOIN automation_core.item i ON i.id = ie.item_id
		 WHERE ie.run_id = r.id), '-')
	FROM automation_core.run r WHERE r.correlation_id = corr
$$;

-- every foreign key is ON DELETE CASCADE and has an index leading with its
-- first column
SELECT c.conrelid::regclass AS tbl,
	(SELECT string_agg(a.attname, ', ' ORDER BY k.n)
	 FROM unnest(c.conkey) WITH ORDINALITY AS k(att, n)
	 JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.att) AS fk_columns,
	c.confdeltype AS on_delete,
	EXISTS (SELECT 1 FROM pg_index i
			WHERE i.indrelid = c.conrelid AND i.indpred IS NULL
			  AND i.indkey[0] = c.conkey[1]) AS indexed
FROM pg_constraint c
WHERE c.contype = 'f' AND c.connamespace = 'automation_core'::regnamespace
ORDER BY c.conrelid::regclass::text, 2;

-- the trigger functions refuse to run where they were not meant to: on
-- another table, at another time or for another event
CREATE TABLE public.not_ours (id uuid, status text);
CREATE FUNCTION pg_temp.misfire(fn text, how text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	r text;
BEGIN
	EXECUTE format('CREATE TRIGGER misfire %s ON public.not_ours EXECUTE FUNCTION automation_core.%I()', how, fn);
	r := ac_try($q$INSERT INTO public.not_ours VALUES (gen_random_uuid(), 'pending')$q$);
	DROP TRIGGER misfire ON public.not_ours;
	RETURN r;
END
$$;
SELECT fn, pg_temp.misfire(fn, how)
FROM (VALUES ('guard_row', 'BEFORE INSERT'), ('payload_check', 'BEFORE INSERT'),
			 ('schema_check', 'BEFORE INSERT'), ('history_guard', 'BEFORE INSERT'),
			 ('event_guard', 'BEFORE INSERT'), ('after_statement', 'AFTER INSERT'),
			 ('after_update_row', 'AFTER INSERT'), ('after_delete_row', 'AFTER INSERT'),
			 ('after_insert_statement', 'AFTER INSERT')) AS f(fn, how);
-- the right table, the wrong event or level
CREATE TRIGGER misfire AFTER UPDATE ON automation_core.engine
	FOR EACH STATEMENT EXECUTE FUNCTION automation_core.guard_row();
SELECT ac_try($$UPDATE automation_core.engine SET type = type$$);
DROP TRIGGER misfire ON automation_core.engine;
DROP TABLE public.not_ours;
