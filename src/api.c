/*-------------------------------------------------------------------------
 *
 * api.c
 *		The execution API: start_run, claim, heartbeat, complete, fail,
 *		cancel_run and expire_leases.
 *
 *		These functions are conveniences over plain DML: the triggers of
 *		guard.c and rollup.c enforce every rule, so each function is one
 *		set-based statement on its fast path. When that statement finds no
 *		row, a second look says why (unknown id, lost lease, cancelled item,
 *		a transition the state machine refuses) and raises the matching
 *		SQLSTATE.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"
#include "utils/uuid.h"

#include "automation_core.h"
#include "spi_util.h"

PG_FUNCTION_INFO_V1(ac_start_run);
PG_FUNCTION_INFO_V1(ac_claim);
PG_FUNCTION_INFO_V1(ac_heartbeat);
PG_FUNCTION_INFO_V1(ac_complete);
PG_FUNCTION_INFO_V1(ac_complete_many);
PG_FUNCTION_INFO_V1(ac_fail);
PG_FUNCTION_INFO_V1(ac_cancel_run);
PG_FUNCTION_INFO_V1(ac_expire_leases);

#define IE "automation_core.item_execution"

/*
 * start_run. Whether the automation is active is checked by the run's
 * INSERT (guard.c, guard_run_insert), under the lock that keeps a
 * deactivation from crossing it; here only that it exists (P0002, where
 * the foreign key would say 23503).
 */
static AcPlan p_automation = {
	"SELECT 1 FROM automation_core.automation WHERE id = $1",
	1, {UUIDOID}
};
static AcPlan p_insert_run = {
	"INSERT INTO automation_core.run (id, automation_id, correlation_id) "
	"VALUES (automation_core.uuid_v7(), $1, $2) RETURNING id",
	2, {UUIDOID, TEXTOID}
};
/*
 * The automation's batches are locked first, FOR KEY SHARE as a foreign
 * key's check locks (and as the owner of batch, as it does), then read
 * with a new snapshot: one deleted or moved to another automation (a
 * change of automation_id, part of a unique key, conflicts with the lock)
 * by a transaction that commits while start_run waits for it is left out,
 * instead of failing the foreign key's check or the check that a batch
 * execution runs its run's automation. Other changes of a batch (payload,
 * is_active) do not wait for start_run, nor it for them.
 */
static AcPlan p_share_automation_batches = {
	"SELECT 1 FROM automation_core.batch WHERE automation_id = $1 ORDER BY id FOR KEY SHARE",
	1, {UUIDOID}
};
static AcPlan p_insert_batch_executions = {
	"INSERT INTO automation_core.batch_execution (id, run_id, batch_id) "
	"SELECT automation_core.uuid_v7(), $1, b.id FROM automation_core.batch b "
	"WHERE b.automation_id = $2 AND b.is_active ORDER BY b.created_at, b.name",
	2, {UUIDOID, UUIDOID}
};
/*
 * A run's item executions: (id, run_id, batch_execution_id, item_id,
 * max_attempts, queue_position) in queue order, for run $1 and
 * max_attempts $2; lock is a locking clause on item i, or empty.
 */
#define ITEM_EXECUTION_ROWS(lock) \
	"SELECT automation_core.uuid_v7(), $1, o.batch_execution_id, o.item_id, $2, " \
	"       pg_catalog.nextval('automation_core.item_execution_queue_seq'::pg_catalog.regclass) " \
	"FROM (SELECT be.id AS batch_execution_id, i.id AS item_id " \
	"      FROM automation_core.batch_execution be " \
	"      JOIN automation_core.batch b ON b.id = be.batch_id " \
	"      JOIN automation_core.item i ON i.batch_id = be.batch_id AND i.is_active " \
	"      WHERE be.run_id = $1 " \
	"      ORDER BY b.created_at, b.name, i.sequence_number " lock ") o"
static AcPlan p_insert_item_executions = {
	"INSERT INTO " IE " (id, run_id, batch_execution_id, item_id, max_attempts, queue_position) "
	ITEM_EXECUTION_ROWS(""),
	2, {UUIDOID, INT4OID}
};
/*
 * The same rows for ac_bulk_insert, which checks no foreign key per row:
 * each item is locked here FOR KEY SHARE, as the foreign key's check would
 * lock it, so that it can be neither deleted nor moved to another batch (a
 * change of batch_id, part of a unique key, conflicts with that lock)
 * before this transaction ends; so the check that an item execution runs
 * its batch execution's batch can only pass (ac_bulk_vouched). The
 * batch executions are this transaction's own.
 */
static AcPlan p_item_execution_rows = {
	ITEM_EXECUTION_ROWS("FOR KEY SHARE OF i"),
	2, {UUIDOID, INT4OID}
};
static const AcCol item_execution_row_cols[] = {
	AC_C_ID, AC_C_RUN_ID, AC_C_BATCH_EXECUTION_ID, AC_C_ITEM_ID, AC_C_MAX_ATTEMPTS,
	AC_C_QUEUE_POSITION
};
static const AcTable item_execution_row_parents[] = {AC_T_BATCH_EXECUTION, AC_T_ITEM};
static AcPlan p_run_processing = {
	"UPDATE automation_core.run SET status = 'processing' WHERE id = $1", 1, {UUIDOID}
};
static AcPlan p_empty_batches = {
	"UPDATE automation_core.batch_execution be SET status = $2 "
	"WHERE be.run_id = $1 AND be.status <> $2 AND NOT EXISTS "
	"  (SELECT 1 FROM " IE " ie WHERE ie.batch_execution_id = be.id)",
	2, {UUIDOID, AC_TYPE_STATUS}
};
static AcPlan p_run_finish_if_empty = {
	"UPDATE automation_core.run r SET status = 'completed' "
	"WHERE r.id = $1 AND r.status = 'processing' AND NOT EXISTS "
	"  (SELECT 1 FROM automation_core.batch_execution be WHERE be.run_id = r.id)",
	1, {UUIDOID}
};
static AcPlan p_select_run = {
	"SELECT r FROM automation_core.run r WHERE r.id = $1", 1, {UUIDOID}
};

/*
 * claim. The ready rows are found and locked by walking their index
 * (claim.c) and updated at their place (CLAIM_LOCKED_PLAN below). Where
 * the walk cannot be used, the query CLAIM_PLAN picks and locks them in an
 * InitPlan and updates them through the primary key; its plan is generic,
 * the same plan for every call. Joined to a subquery instead, the generic
 * plan (which must guess the LIMIT) was a hash join over a sequential scan
 * of the whole table, so the plan cache re-planned the statement on every
 * call, which cost more than the rest of the claim.
 */
#define CLAIM_SET(worker, lease) \
	"UPDATE " IE " ie SET status = 'processing', worker = " worker ", " \
	"       lease_expires_at = pg_catalog.now() + " lease " "
/*
 * The readiness test is written as the ready indexes' second key column
 * (COALESCE(next_attempt_at, '-infinity'), see automation_core--1.0.sql),
 * so that the btree passes over retries not yet due without fetching their
 * rows; written as "IS NULL OR <= now()" it is a filter on every row.
 */
#define CLAIM_READY \
	"status IN ('pending', 'retrying') AND is_active " \
	"  AND COALESCE(next_attempt_at, '-infinity'::pg_catalog.timestamptz) " \
	"      OPERATOR(pg_catalog.<=) pg_catalog.now() "
/*
 * CLAIM_PLAN(run filter, pick): pick is "= (SELECT" for one item (a scalar
 * subquery, the common case) or "= ANY (ARRAY(SELECT" for many.
 *
 * With a run, the generic plan (which cannot know how many rows the run
 * has; with two runs it guesses half the table) walked the ready rows of
 * every run in queue order and filtered on the run: a claim for a run
 * queued behind 100,000 pending items of another read all of them, 33 ms a
 * call. So the run is given as a range of one value and the order as
 * (run_id, queue_position), the same order within one run: an equality
 * would make the planner drop run_id from the order again, and only
 * item_execution_run_ready_idx gives this order without sorting every ready
 * row (0.1 ms).
 */
#define CLAIM_PLAN(run_filter, pick, limit, close) { \
	CLAIM_SET("$2", "$4") \
	"WHERE ie.id OPERATOR(pg_catalog.=) " pick " id FROM " IE " WHERE " CLAIM_READY run_filter \
	"      LIMIT " limit " FOR NO KEY UPDATE SKIP LOCKED" close " " \
	"RETURNING ie", \
	4, {UUIDOID, TEXTOID, INT4OID, INTERVALOID}, NULL, InvalidOid, CURSOR_OPT_GENERIC_PLAN \
}
#define ANY_RUN " ORDER BY queue_position "
#define RUN_FILTER \
	" AND run_id OPERATOR(pg_catalog.>=) $1 AND run_id OPERATOR(pg_catalog.<=) $1 " \
	" ORDER BY run_id, queue_position "

static AcPlan p_claim_any = CLAIM_PLAN(ANY_RUN, "ANY (ARRAY(SELECT", "$3", "))");
static AcPlan p_claim_run = CLAIM_PLAN(RUN_FILTER, "ANY (ARRAY(SELECT", "$3", "))");
static AcPlan p_claim_any_one = CLAIM_PLAN(ANY_RUN, "(SELECT", "1", ")");
static AcPlan p_claim_run_one = CLAIM_PLAN(RUN_FILTER, "(SELECT", "1", ")");
/*
 * The same UPDATE of rows ac_claim_lock_ready (claim.c) has found and
 * locked: $3 the places of the versions locked, one or many (a TID scan,
 * no search of the primary key; nobody else can update a version this
 * transaction holds locked, so it is still there). The readiness test is
 * checked again, though locked rows cannot have changed since; it is
 * inside a CASE, which the planner cannot match to a partial index's
 * predicate: written plainly, a generic plan made while the statistics
 * said nothing was ready or open walked the whole index of ready or of
 * open items looking for the rows, on every claim of several items.
 */
#define CLAIM_LOCKED_PLAN(pick, tidtype) { \
	CLAIM_SET("$1", "$2") \
	"WHERE ie.ctid OPERATOR(pg_catalog.=) " pick "($3) " \
	"  AND CASE WHEN " CLAIM_READY "THEN true ELSE false END RETURNING ie", \
	3, {TEXTOID, INTERVALOID, tidtype}, NULL, InvalidOid, CURSOR_OPT_GENERIC_PLAN \
}
static AcPlan p_claim_locked = CLAIM_LOCKED_PLAN("ANY ", TIDARRAYOID);
static AcPlan p_claim_locked_one = CLAIM_LOCKED_PLAN("", TIDOID);
static AcPlan p_run_exists = {
	"SELECT 1 FROM automation_core.run WHERE id = $1", 1, {UUIDOID}
};

/*
 * heartbeat, complete, fail, complete_many. Each finds its rows by id only:
 * the status they require comes as the last parameter (always 'processing',
 * set by require_processing) and the plans are generic, so the planner
 * cannot prove a partial index's predicate from it and scan, say, every
 * processing row's lease entry looking for one id.
 */
#define BY_ID_PLAN(sql, nargs, ...) \
	{ sql, nargs, { __VA_ARGS__ }, NULL, InvalidOid, CURSOR_OPT_GENERIC_PLAN }
static AcPlan p_heartbeat = BY_ID_PLAN(
	"UPDATE " IE " ie SET lease_expires_at = pg_catalog.now() + $3 "
	"WHERE id = $1 AND status = $4 AND attempt_count = $2 RETURNING ie",
	4, UUIDOID, INT4OID, INTERVALOID, AC_TYPE_STATUS);
static AcPlan p_complete = BY_ID_PLAN(
	"UPDATE " IE " ie SET status = 'completed', result_payload = $2 "
	"WHERE id = $1 AND status = $4 AND ($3 IS NULL OR attempt_count = $3) "
	"RETURNING ie",
	4, UUIDOID, JSONBOID, INT4OID, AC_TYPE_STATUS);
static AcPlan p_complete_many = BY_ID_PLAN(
	"UPDATE " IE " ie SET status = 'completed', result_payload = u.result "
	"FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), pg_catalog.unnest($3)) "
	"     AS u(id, result, attempt) "
	"WHERE ie.id OPERATOR(pg_catalog.=) u.id AND ie.status = $4 "
	"AND (u.attempt IS NULL OR ie.attempt_count OPERATOR(pg_catalog.=) u.attempt) "
	"RETURNING ie",
	4, UUIDARRAYOID, JSONBARRAYOID, INT4ARRAYOID, AC_TYPE_STATUS);
/*
 * complete_many locks its rows first, in the order of their ids, as
 * cancel_run does: two calls that wait for each other's rows then wait in
 * one order instead of deadlocking. The UPDATE's own order is the plan's
 * (array order, or the table's for a small one). The lock taken here is the
 * one the UPDATE's row trigger would take anyway, so no more WAL is
 * written; the cost is a second primary-key look-up per row.
 */
static AcPlan p_lock_many = BY_ID_PLAN(
	"SELECT 1 FROM " IE " WHERE id OPERATOR(pg_catalog.=) ANY ($1) "
	"ORDER BY id FOR NO KEY UPDATE",
	1, UUIDARRAYOID);
static AcPlan p_fail = BY_ID_PLAN(
	"UPDATE " IE " ie SET "
	"  status = CASE WHEN $3 AND max_attempts IS NOT NULL AND attempt_count < max_attempts "
	"                THEN 'retrying' ELSE 'failed' END::automation_core.execution_status, "
	"  error_message = $2, "
	"  next_attempt_at = CASE WHEN $3 AND max_attempts IS NOT NULL "
	"                          AND attempt_count < max_attempts AND $4 IS NOT NULL "
	"                     THEN pg_catalog.now() + $4 END "
	"WHERE id = $1 AND status = $6 AND ($5 IS NULL OR attempt_count = $5) "
	"RETURNING ie",
	6, UUIDOID, TEXTOID, BOOLOID, INTERVALOID, INT4OID, AC_TYPE_STATUS);
static AcPlan p_item_state = {
	"SELECT status, attempt_count, run_id FROM " IE " WHERE id = $1", 1, {UUIDOID}
};

/* cancel_run */
static AcPlan p_run_state = {
	"SELECT version FROM automation_core.run WHERE id = $1", 1, {UUIDOID}
};
static AcPlan p_lock_run_items = {
	"SELECT 1 FROM " IE " WHERE run_id = $1 "
	"AND status IN ('pending', 'processing', 'retrying') ORDER BY id FOR NO KEY UPDATE",
	1, {UUIDOID}
};
static AcPlan p_lock_run_batches = {
	"SELECT 1 FROM automation_core.batch_execution WHERE run_id = $1 "
	"AND status IN ('pending', 'processing') ORDER BY id FOR NO KEY UPDATE",
	1, {UUIDOID}
};
static AcPlan p_cancel_run = {
	"UPDATE automation_core.run r SET status = 'cancelled', cancellation_reason = $2 "
	"WHERE id = $1 AND ($3 IS NULL OR version = $3) RETURNING r",
	3, {UUIDOID, TEXTOID, INT4OID}
};

/* expire_leases */
static AcPlan p_expire = {
	"UPDATE " IE " ie SET "
	"  status = CASE WHEN max_attempts IS NOT NULL AND attempt_count < max_attempts "
	"                THEN 'retrying' ELSE 'failed' END::automation_core.execution_status, "
	"  error_message = 'lease expired' "
	"FROM (SELECT id FROM " IE " WHERE status = 'processing' "
	"      AND lease_expires_at < pg_catalog.now() FOR NO KEY UPDATE SKIP LOCKED) x "
	"WHERE ie.id = x.id",
	0, {}
};

static char *
uuid_text(Datum d)
{
	return DatumGetCString(DirectFunctionCall1(uuid_out, d));
}

static void
raise_unknown(const char *what, Datum id)
{
	ereport(ERROR,
			(errcode(ERRCODE_NO_DATA_FOUND),
			 errmsg("%s does not exist", what),
			 errdetail("No %s has id %s.", what, uuid_text(id))));
}

/* Copy the composite in column 1 of row 0 out of SPI memory. */
static Datum
result_composite(void)
{
	bool		isnull;
	Datum		d = ac_spi_value(0, 1, &isnull);

	return SPI_datumTransfer(d, false, -1);
}

/* The lease argument argno, automation_core.default_lease when NULL */
static Interval *
lease_arg(FunctionCallInfo fcinfo, int argno)
{
	Interval   *lease;

	if (PG_ARGISNULL(argno))
	{
		lease = palloc0(sizeof(Interval));
		lease->time = (int64) ac_default_lease_ms * 1000;
		return lease;
	}
	lease = PG_GETARG_INTERVAL_P(argno);
	if (lease->month < 0 || lease->day < 0 || lease->time < 0 ||
		(lease->month == 0 && lease->day == 0 && lease->time == 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("lease must be a positive interval")));
	return lease;
}

/* Argument argno as SPI parameter i, NULL staying NULL */
static void
pass_arg(FunctionCallInfo fcinfo, int argno, Datum *args, char *nulls, int i)
{
	args[i] = PG_ARGISNULL(argno) ? (Datum) 0 : PG_GETARG_DATUM(argno);
	nulls[i] = PG_ARGISNULL(argno) ? 'n' : ' ';
}

/*
 * The run's item executions (args: run id, max_attempts): in bulk, or by
 * the INSERT when the table has triggers or policies of its user, or when
 * the caller may not lock items (row locks take UPDATE privilege; the
 * foreign key's check takes its lock as the owner of item).
 */
static void
insert_item_executions(Datum *args, const char *nulls)
{
	AttrNumber	attnums[lengthof(item_execution_row_cols)];
	int			i;

	for (i = 0; i < lengthof(item_execution_row_cols); i++)
		attnums[i] = ac_attnum(AC_T_ITEM_EXECUTION, item_execution_row_cols[i]);
	if (pg_class_aclcheck(ac_table_oid(AC_T_ITEM), GetUserId(), ACL_UPDATE) == ACLCHECK_OK)
	{
		if (ac_bulk_insert(AC_T_ITEM_EXECUTION, &p_item_execution_rows, args, nulls,
						   attnums, lengthof(attnums), item_execution_row_parents,
						   lengthof(item_execution_row_parents)))
			return;
	}
	else
		elog(DEBUG1, "rows of item_execution inserted by INSERT, not in bulk: "
			 "the user may not lock items (no UPDATE privilege on item)");
	ac_plan_exec(&p_insert_item_executions, args, nulls, false, 0);
}

/*
 * start_run(automation_id, correlation_id, max_attempts): the run, one batch
 * execution per active batch and one item execution per active item, each
 * made by a single INSERT ... SELECT; the run then enters processing.
 */
Datum
ac_start_run(PG_FUNCTION_ARGS)
{
	Datum		automation_id;
	Datum		args[2];
	char		nulls[2] = {' ', ' '};
	Datum		run_id;
	Datum		result;
	bool		isnull;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("automation_id must not be null")));
	automation_id = PG_GETARG_DATUM(0);
	if (!PG_ARGISNULL(2) && PG_GETARG_INT32(2) < 1)
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("max_attempts must be at least 1"),
				 errdetail("max_attempts is %d.", PG_GETARG_INT32(2)),
				 errhint("Pass NULL for a single attempt without retries.")));

	ac_spi_connect();
	ac_plan_exec_as_owner(&p_automation, AC_T_AUTOMATION, &automation_id, NULL, 1);
	if (SPI_processed == 0)
		raise_unknown("automation", automation_id);

	args[0] = automation_id;
	pass_arg(fcinfo, 1, args, nulls, 1);
	ac_plan_exec(&p_insert_run, args, nulls, false, 0);
	run_id = SPI_datumTransfer(ac_spi_value(0, 1, &isnull), false, 16);

	args[0] = run_id;
	args[1] = automation_id;
	ac_plan_exec_as_owner(&p_share_automation_batches, AC_T_BATCH, &automation_id, NULL, 0);
	ac_plan_exec(&p_insert_batch_executions, args, NULL, false, 0);

	pass_arg(fcinfo, 2, args, nulls, 1);
	nulls[0] = ' ';
	insert_item_executions(args, nulls);

	ac_plan_exec(&p_run_processing, &run_id, NULL, false, 0);

	/* batch executions without items end at once, and so does an empty run */
	args[1] = ac_status_datum(AC_PROCESSING);
	ac_plan_exec(&p_empty_batches, args, NULL, false, 0);
	args[1] = ac_status_datum(AC_COMPLETED);
	ac_plan_exec(&p_empty_batches, args, NULL, false, 0);
	ac_plan_exec(&p_run_finish_if_empty, &run_id, NULL, false, 0);

	ac_plan_exec(&p_select_run, &run_id, NULL, false, 1);
	result = result_composite();
	ac_spi_finish();
	PG_RETURN_DATUM(result);
}

/* Sort claimed rows by queue_position: first in, first out. */
static int
queue_cmp(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return (x > y) - (x < y);
}

typedef struct ClaimedRow
{
	int64		queue_position;
	Datum		row;
} ClaimedRow;

/*
 * Set up a materialized result set of item_execution rows.
 */
static Tuplestorestate *
begin_item_set(FunctionCallInfo fcinfo, TupleDesc *tupdesc)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext oldcxt;
	TupleDesc	desc;
	Tuplestorestate *store;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) ||
		(rsinfo->allowedModes & SFRM_Materialize) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("set-valued function called in context that cannot accept a set")));
	/* the caller's description of the rows it expects: no catalog look-up */
	desc = rsinfo->expectedDesc;
	if (desc == NULL && get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	oldcxt = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	*tupdesc = CreateTupleDescCopy(desc);
	store = tuplestore_begin_heap(true, false, work_mem);
	MemoryContextSwitchTo(oldcxt);
	return store;
}

/*
 * Column att of the whole-row item_execution in column 1 of SPI result row
 * `row` (the RETURNING ie of the API's statements).
 */
static Datum
item_row_attr(uint64 row, AttrNumber att, TupleDesc desc, bool *isnull)
{
	HeapTupleData tmp;

	tmp.t_data = DatumGetHeapTupleHeader(ac_spi_value(row, 1, isnull));
	tmp.t_len = HeapTupleHeaderGetDatumLength(tmp.t_data);
	return heap_getattr(&tmp, att, desc, isnull);
}

/*
 * Put the n whole-row results of the last SPI statement (column 1) into the
 * result set, oldest in the queue first.
 */
static void
put_item_rows(Tuplestorestate *store, TupleDesc tupdesc, uint64 n)
{
	ClaimedRow *rows;
	AttrNumber	qp_att = ac_attnum(AC_T_ITEM_EXECUTION, AC_C_QUEUE_POSITION);
	uint64		i;

	rows = palloc(sizeof(ClaimedRow) * (n > 0 ? n : 1));
	for (i = 0; i < n; i++)
	{
		bool		isnull;

		rows[i].row = PointerGetDatum(DatumGetHeapTupleHeader(ac_spi_value(i, 1, &isnull)));
		rows[i].queue_position = DatumGetInt64(item_row_attr(i, qp_att, tupdesc, &isnull));
	}
	if (n > 1)
		qsort(rows, n, sizeof(ClaimedRow), queue_cmp);

	/* tuplestore_puttuple copies into the store's own memory */
	for (i = 0; i < n; i++)
	{
		HeapTupleData tmp;

		tmp.t_data = (HeapTupleHeader) DatumGetPointer(rows[i].row);
		tmp.t_len = HeapTupleHeaderGetDatumLength(tmp.t_data);
		ItemPointerSetInvalid(&tmp.t_self);
		tmp.t_tableOid = InvalidOid;
		tuplestore_puttuple(store, &tmp);
	}
	pfree(rows);
}

/*
 * claim(run_id, worker, max_items, lease): up to max_items ready item
 * executions, oldest first, each to one worker only. The rows are found
 * and locked first (ac_claim_lock_ready), then updated; -1 from the walk
 * means the query does both.
 */
Datum
ac_claim(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum		args[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	int32		max_items;
	Interval   *lease;
	TupleDesc	tupdesc;
	Tuplestorestate *store;
	ItemPointerData *tids = NULL;
	int			n;
	uint64		claimed;

	store = begin_item_set(fcinfo, &tupdesc);

	max_items = PG_ARGISNULL(2) ? 1 : PG_GETARG_INT32(2);
	if (max_items < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_items must be at least 1"),
				 errdetail("max_items is %d.", max_items)));
	lease = lease_arg(fcinfo, 3);

	pass_arg(fcinfo, 0, args, nulls, 0);
	pass_arg(fcinfo, 1, args, nulls, 1);
	args[2] = Int32GetDatum(max_items);
	args[3] = IntervalPGetDatum(lease);

	ac_spi_connect();
	n = ac_claim_lock_ready(PG_ARGISNULL(0) ? NULL : DatumGetUUIDP(args[0]), max_items, &tids);
	if (n > 0)
	{
		Datum		largs[3] = {args[1], args[3], PointerGetDatum(&tids[0])};
		char		lnulls[3] = {nulls[1], ' ', ' '};

		if (n > 1)
		{
			Datum	   *places = palloc(n * sizeof(Datum));
			int			i;

			for (i = 0; i < n; i++)
				places[i] = PointerGetDatum(&tids[i]);
			largs[2] = PointerGetDatum(construct_array(places, n, TIDOID, sizeof(ItemPointerData),
													   false, TYPALIGN_SHORT));
		}
		ac_plan_exec_for_caller(n > 1 ? &p_claim_locked : &p_claim_locked_one,
								largs, lnulls, 0);
	}
	else if (n < 0)
		ac_plan_exec_for_caller(max_items == 1 ?
								(PG_ARGISNULL(0) ? &p_claim_any_one : &p_claim_run_one) :
								(PG_ARGISNULL(0) ? &p_claim_any : &p_claim_run),
								args, nulls, 0);
	claimed = n == 0 ? 0 : SPI_processed;
	if (claimed == 0 && !PG_ARGISNULL(0))
	{
		ac_plan_exec(&p_run_exists, args, NULL, false, 1);
		if (SPI_processed == 0)
			raise_unknown("run", args[0]);
	}

	put_item_rows(store, tupdesc, claimed);
	ac_spi_finish();

	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult = store;
	rsinfo->setDesc = tupdesc;
	return (Datum) 0;
}

/*
 * Why did the fast path of heartbeat/complete/fail find no row? Raises the
 * error that situation calls for; returns only if the item looks fine now (a
 * concurrent change), in which case the caller raises 40001.
 */
static void
diagnose_item(Datum id, bool has_attempt, int32 attempt, const char *op)
{
	bool		isnull;
	AcStatus	st;
	int32		count;

	/* the state as it is now, not as the caller's snapshot saw it */
	ac_plan_exec(&p_item_state, &id, NULL, true, 1);
	if (SPI_processed == 0)
		raise_unknown("item execution", id);
	st = ac_status_of_datum(ac_spi_value(0, 1, &isnull));
	count = DatumGetInt32(ac_spi_value(0, 2, &isnull));

	if (st == AC_CANCELLED)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("item execution was cancelled"),
				 errdetail("item execution %s of run %s is cancelled; %s refused.",
						   uuid_text(id), uuid_text(ac_spi_value(0, 3, &isnull)), op),
				 errhint("Stop working on it: its run or batch execution was cancelled.")));
	if (has_attempt && attempt != count)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("lease of item execution was lost"),
				 errdetail("item execution %s is at attempt %d, %s came from attempt %d.",
						   uuid_text(id), count, op, attempt),
				 errhint("The item was handed to another worker; drop this attempt's work.")));
	if (has_attempt && (st == AC_PENDING || st == AC_RETRYING))
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("lease of item execution was lost"),
				 errdetail("item execution %s is %s again after attempt %d; %s refused.",
						   uuid_text(id), ac_status_name(st), attempt, op),
				 errhint("The lease expired, or this attempt already failed the item; it will be claimed again.")));
	if (st != AC_PROCESSING)
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("item execution is %s, not processing", ac_status_name(st)),
				 errdetail("item execution %s, status %s; %s refused.",
						   uuid_text(id), ac_status_name(st), op),
				 err_generic_string(PG_DIAG_SCHEMA_NAME, "automation_core"),
				 err_generic_string(PG_DIAG_TABLE_NAME, "item_execution"),
				 err_generic_string(PG_DIAG_CONSTRAINT_NAME, "item_execution_status_transition")));
	ereport(ERROR,
			(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
			 errmsg("item execution changed concurrently"),
			 errdetail("item execution %s; %s refused.", uuid_text(id), op),
			 errhint("Retry the call.")));
}

/* The last parameter of the BY_ID_PLAN statements: the status they require */
static void
require_processing(AcPlan *plan, Datum *args, char *nulls)
{
	args[plan->nargs - 1] = ac_status_datum(AC_PROCESSING);
	if (nulls)
		nulls[plan->nargs - 1] = ' ';
}

static Datum
item_call(AcPlan *plan, Datum *args, char *nulls, Datum id,
		  bool has_attempt, int32 attempt, const char *op)
{
	Datum		result;

	require_processing(plan, args, nulls);
	ac_spi_connect();
	/* no row limit: a limit would stop the UPDATE before its statement triggers */
	ac_plan_exec_for_caller(plan, args, nulls, 0);
	if (SPI_processed == 0)
		diagnose_item(id, has_attempt, attempt, op);
	result = result_composite();
	ac_spi_finish();
	return result;
}

static void
require_id(FunctionCallInfo fcinfo, int argno, const char *what)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", what)));
}

Datum
ac_heartbeat(PG_FUNCTION_ARGS)
{
	Datum		args[4];
	Interval   *lease;

	require_id(fcinfo, 0, "item_execution_id");
	require_id(fcinfo, 1, "attempt");
	lease = lease_arg(fcinfo, 2);
	args[0] = PG_GETARG_DATUM(0);
	args[1] = PG_GETARG_DATUM(1);
	args[2] = IntervalPGetDatum(lease);
	PG_RETURN_DATUM(item_call(&p_heartbeat, args, NULL, args[0], true,
							  PG_GETARG_INT32(1), "heartbeat"));
}

Datum
ac_complete(PG_FUNCTION_ARGS)
{
	Datum		args[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};

	require_id(fcinfo, 0, "item_execution_id");
	args[0] = PG_GETARG_DATUM(0);
	pass_arg(fcinfo, 1, args, nulls, 1);
	pass_arg(fcinfo, 2, args, nulls, 2);
	PG_RETURN_DATUM(item_call(&p_complete, args, nulls, args[0], !PG_ARGISNULL(2),
							  PG_ARGISNULL(2) ? 0 : PG_GETARG_INT32(2), "complete"));
}

Datum
ac_fail(PG_FUNCTION_ARGS)
{
	Datum		args[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};

	require_id(fcinfo, 0, "item_execution_id");
	args[0] = PG_GETARG_DATUM(0);
	pass_arg(fcinfo, 1, args, nulls, 1);
	args[2] = BoolGetDatum(PG_ARGISNULL(2) ? true : PG_GETARG_BOOL(2));
	pass_arg(fcinfo, 3, args, nulls, 3);
	if (!PG_ARGISNULL(3))
	{
		Interval   *d = PG_GETARG_INTERVAL_P(3);

		if (d->month < 0 || d->day < 0 || d->time < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("retry_delay must not be negative")));
	}
	pass_arg(fcinfo, 4, args, nulls, 4);
	PG_RETURN_DATUM(item_call(&p_fail, args, nulls, args[0], !PG_ARGISNULL(4),
							  PG_ARGISNULL(4) ? 0 : PG_GETARG_INT32(4), "fail"));
}

/* Length of a one-dimensional array argument, or -1 when it is NULL */
static int
array_arg_length(FunctionCallInfo fcinfo, int argno, const char *what)
{
	ArrayType  *a;

	if (PG_ARGISNULL(argno))
		return -1;
	a = PG_GETARG_ARRAYTYPE_P(argno);
	if (ARR_NDIM(a) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a one-dimensional array", what)));
	return ARR_NDIM(a) == 0 ? 0 : ARR_DIMS(a)[0];
}

/*
 * complete_many(item_execution_ids, results, attempts): complete many
 * processing item executions in one statement. results and attempts, when
 * given, are matched to the ids by position. All or nothing: when one of
 * them cannot be completed, the call fails with the error complete() would
 * raise for it, and none is completed.
 */
Datum
ac_complete_many(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Tuplestorestate *store;
	ArrayType  *ids;
	Datum	   *id_datums;
	bool	   *id_nulls;
	int			nids;
	int			nresults;
	int			nattempts;
	pg_uuid_t  *sorted;
	Datum		args[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	int			i;

	require_id(fcinfo, 0, "item_execution_ids");
	store = begin_item_set(fcinfo, &tupdesc);
	nids = array_arg_length(fcinfo, 0, "item_execution_ids");
	nresults = array_arg_length(fcinfo, 1, "results");
	nattempts = array_arg_length(fcinfo, 2, "attempts");
	if ((nresults >= 0 && nresults != nids) || (nattempts >= 0 && nattempts != nids))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("results and attempts must be as long as item_execution_ids"),
				 errdetail("%d ids, %d results, %d attempts.", nids,
						   Max(nresults, 0), Max(nattempts, 0))));

	ids = PG_GETARG_ARRAYTYPE_P(0);
	deconstruct_array(ids, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR,
					  &id_datums, &id_nulls, &nids);
	sorted = palloc(sizeof(pg_uuid_t) * Max(nids, 1));
	for (i = 0; i < nids; i++)
	{
		if (id_nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("item_execution_ids must not contain nulls")));
		memcpy(&sorted[i], DatumGetUUIDP(id_datums[i]), UUID_LEN);
	}
	qsort(sorted, nids, sizeof(pg_uuid_t), ac_uuid_cmp);
	for (i = 1; i < nids; i++)
		if (memcmp(&sorted[i - 1], &sorted[i], UUID_LEN) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("item_execution_ids must not repeat an id"),
					 errdetail("item execution %s appears more than once.",
							   uuid_text(UUIDPGetDatum(&sorted[i])))));

	args[0] = PointerGetDatum(ids);
	pass_arg(fcinfo, 1, args, nulls, 1);
	pass_arg(fcinfo, 2, args, nulls, 2);
	require_processing(&p_complete_many, args, nulls);

	ac_spi_connect();
	if (nids > 1)				/* one row: nothing to order */
		ac_plan_exec(&p_lock_many, args, nulls, false, 0);
	ac_plan_exec_for_caller(&p_complete_many, args, nulls, 0);
	if (SPI_processed < (uint64) nids)
	{
		/* find the first id that was not completed, and say why */
		uint64		n = SPI_processed;
		pg_uuid_t  *done = palloc(sizeof(pg_uuid_t) * Max(n, 1));
		ArrayType  *attempts = PG_ARGISNULL(2) ? NULL : PG_GETARG_ARRAYTYPE_P(2);
		AttrNumber	id_att = ac_attnum(AC_T_ITEM_EXECUTION, AC_C_ID);
		uint64		j;

		for (j = 0; j < n; j++)
		{
			bool		isnull;

			memcpy(&done[j], DatumGetUUIDP(item_row_attr(j, id_att, tupdesc, &isnull)),
				   UUID_LEN);
		}
		qsort(done, n, sizeof(pg_uuid_t), ac_uuid_cmp);
		for (i = 0; i < nids; i++)
		{
			bool		has_attempt = false;
			int32		attempt = 0;

			if (n > 0 && bsearch(DatumGetUUIDP(id_datums[i]), done, n,
								 sizeof(pg_uuid_t), ac_uuid_cmp) != NULL)
				continue;
			if (attempts != NULL)
			{
				bool		isnull;
				int			sub = i + ARR_LBOUND(attempts)[0];
				Datum		d = array_get_element(PointerGetDatum(attempts), 1, &sub,
												  -1, sizeof(int32), true, TYPALIGN_INT,
												  &isnull);

				has_attempt = !isnull;
				attempt = isnull ? 0 : DatumGetInt32(d);
			}
			diagnose_item(id_datums[i], has_attempt, attempt, "complete_many");
		}
		elog(ERROR, "complete_many updated %llu of %d item executions",
			 (unsigned long long) n, nids);
	}
	put_item_rows(store, tupdesc, SPI_processed);
	ac_spi_finish();

	((ReturnSetInfo *) fcinfo->resultinfo)->returnMode = SFRM_Materialize;
	((ReturnSetInfo *) fcinfo->resultinfo)->setResult = store;
	((ReturnSetInfo *) fcinfo->resultinfo)->setDesc = tupdesc;
	return (Datum) 0;
}

/*
 * cancel_run(run_id, reason, expected_version): locks the run's open item
 * executions first, then its batch executions, then updates the run, whose
 * trigger cascades. Workers lock in the same order (item, then batch
 * execution, then run), so a cancel racing the last completions of a run
 * waits for them instead of deadlocking. Items and batch executions are
 * locked in the order of their ids, as complete_many locks its items.
 */
Datum
ac_cancel_run(PG_FUNCTION_ARGS)
{
	Datum		args[3];
	char		nulls[3] = {' ', ' ', ' '};
	bool		isnull;
	int32		version;
	Datum		result;

	require_id(fcinfo, 0, "run_id");
	args[0] = PG_GETARG_DATUM(0);
	pass_arg(fcinfo, 1, args, nulls, 1);
	pass_arg(fcinfo, 2, args, nulls, 2);

	ac_spi_connect();
	ac_plan_exec(&p_run_state, args, NULL, false, 1);
	if (SPI_processed == 0)
		raise_unknown("run", args[0]);
	version = DatumGetInt32(ac_spi_value(0, 1, &isnull));
	if (!PG_ARGISNULL(2) && version != PG_GETARG_INT32(2))
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("run was changed by someone else"),
				 errdetail("run %s is at version %d, expected version %d.",
						   uuid_text(args[0]), version, PG_GETARG_INT32(2)),
				 errhint("Read the run again and decide with its current state.")));

	ac_plan_exec(&p_lock_run_items, args, NULL, false, 0);
	ac_plan_exec(&p_lock_run_batches, args, NULL, false, 0);
	ac_plan_exec(&p_cancel_run, args, nulls, false, 0);
	if (SPI_processed == 0 && PG_ARGISNULL(2))
		raise_unknown("run", args[0]);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("run was changed by someone else"),
				 errdetail("run %s is no longer at version %d.",
						   uuid_text(args[0]), PG_GETARG_INT32(2)),
				 errhint("Read the run again and decide with its current state.")));
	result = result_composite();
	ac_spi_finish();
	PG_RETURN_DATUM(result);
}

/* expire_leases(): processing items past their lease fail under the retry rule */
Datum
ac_expire_leases(PG_FUNCTION_ARGS)
{
	uint64		n;

	ac_spi_connect();
	ac_plan_exec(&p_expire, NULL, NULL, false, 0);
	n = SPI_processed;
	ac_spi_finish();
	PG_RETURN_INT32((int32) Min(n, (uint64) PG_INT32_MAX));
}
