-- The state machine: can_transition for every pair, is_terminal.
SELECT f AS "from",
	string_agg(t::text, ', ' ORDER BY t) FILTER (WHERE automation_core.can_transition(f, t)) AS allowed,
	string_agg(t::text, ', ' ORDER BY t) FILTER (WHERE NOT automation_core.can_transition(f, t)) AS refused
FROM unnest(enum_range(NULL::automation_core.execution_status)) AS f,
	unnest(enum_range(NULL::automation_core.execution_status)) AS t
GROUP BY f ORDER BY f;

SELECT s, automation_core.is_terminal(s)
FROM unnest(enum_range(NULL::automation_core.execution_status)) AS s ORDER BY s;

-- STRICT: NULL in, NULL out
SELECT automation_core.can_transition(NULL, 'pending') IS NULL AS null_from,
	automation_core.can_transition('pending', NULL) IS NULL AS null_to,
	automation_core.is_terminal(NULL) IS NULL AS null_terminal;

-- IMMUTABLE, STRICT, PARALLEL SAFE
SELECT p.proname, p.provolatile, p.proisstrict, p.proparallel
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'automation_core' AND p.proname IN ('can_transition', 'is_terminal')
ORDER BY 1;

-- unknown labels are refused by the type
SELECT automation_core.is_terminal('done');
