/*-------------------------------------------------------------------------
 *
 * spi_util.c
 *		Kept SPI plans: prepared once per backend from a static AcPlan,
 *		executed with $n parameters, optionally under the latest snapshot
 *		(so a check sees every committed change even in REPEATABLE READ).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"

#include "automation_core.h"
#include "spi_util.h"

/*
 * SPI_connect with search_path pinned to pg_catalog for the duration, as a
 * function's SET clause would: kept plans are analyzed again when the
 * caller's search_path differs from the one they were made under, and must
 * never resolve a name or operator through a caller's schema.
 *
 * Up to PostgreSQL 16 an override search path does this without touching
 * the GUC: cheap, and popped by (sub)transaction abort on error. From 17 on
 * the setting itself is changed at a new GUC nest level; the levels are
 * kept on a small stack whose entries made inside an aborted
 * subtransaction are dropped with it (the abort has already unwound the
 * setting).
 */
#define SPI_STACK_MAX 64

typedef struct SpiLevel
{
	int			guc_level;
	SubTransactionId subxid;
} SpiLevel;

static SpiLevel spi_stack[SPI_STACK_MAX];
static int	spi_depth = 0;

void
ac_spi_connect(void)
{
	if (spi_depth >= SPI_STACK_MAX)
		elog(ERROR, "automation_core SPI calls nested too deeply");
	SPI_connect();
	spi_stack[spi_depth].subxid = GetCurrentSubTransactionId();
#if PG_VERSION_NUM < 170000
	{
		OverrideSearchPath *path = GetOverrideSearchPath(CurrentMemoryContext);

		path->schemas = NIL;
		path->addCatalog = true;
		path->addTemp = false;
		PushOverrideSearchPath(path);
		spi_stack[spi_depth].guc_level = 0;
	}
#else
	spi_stack[spi_depth].guc_level = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog",
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
#endif
	spi_depth++;
}

void
ac_spi_finish(void)
{
	Assert(spi_depth > 0);
	spi_depth--;
#if PG_VERSION_NUM < 170000
	PopOverrideSearchPath();
#else
	AtEOXact_GUC(true, spi_stack[spi_depth].guc_level);
#endif
	SPI_finish();
}

static void
spi_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_COMMIT || event == XACT_EVENT_PREPARE)
		spi_depth = 0;
}

static void
spi_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					 SubTransactionId parentSubid, void *arg)
{
	if (event != SUBXACT_EVENT_ABORT_SUB)
		return;
	while (spi_depth > 0 && spi_stack[spi_depth - 1].subxid == mySubid)
		spi_depth--;
}

void
ac_spi_init(void)
{
	RegisterXactCallback(spi_xact_callback, NULL);
	RegisterSubXactCallback(spi_subxact_callback, NULL);
}

SPIPlanPtr
ac_plan_get(AcPlan *p)
{
	/* re-prepare after the extension was dropped and created again */
	if (p->plan != NULL && p->status_type != ac_status_type_oid())
	{
		SPI_freeplan(p->plan);
		p->plan = NULL;
	}
	if (p->plan == NULL)
	{
		Oid			types[AC_TYPE_MAX_ARGS];
		SPIPlanPtr	plan;
		int			i;

		for (i = 0; i < p->nargs; i++)
			types[i] = p->argtypes[i] == AC_TYPE_STATUS ?
				ac_status_type_oid() : p->argtypes[i];
		plan = SPI_prepare_cursor(p->sql, p->nargs, types, p->cursor_options);
		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed for \"%s\": %s", p->sql,
				 SPI_result_code_string(SPI_result));
		SPI_keepplan(plan);
		p->plan = plan;
		p->status_type = ac_status_type_oid();
	}
	return p->plan;
}

/*
 * Runs a kept plan with the given snapshot, or with one of its own when
 * snapshot is InvalidSnapshot. limit must be 0 for INSERT/UPDATE/DELETE: a
 * row limit stops the statement before its AFTER STATEMENT triggers fire.
 */
static int
plan_exec(AcPlan *p, Datum *values, const char *nulls, Snapshot snapshot, long limit)
{
	int			rc;

	if (snapshot != InvalidSnapshot)
		rc = SPI_execute_snapshot(ac_plan_get(p), values, nulls, snapshot,
								  InvalidSnapshot, false, true, limit);
	else
		rc = SPI_execute_plan(ac_plan_get(p), values, nulls, false, limit);
	if (rc < 0)
		elog(ERROR, "SPI failed for \"%s\": %s", p->sql, SPI_result_code_string(rc));
	return rc;
}

/* latest_snapshot: see every commit up to now, not only the statement's */
int
ac_plan_exec(AcPlan *p, Datum *values, const char *nulls,
			 bool latest_snapshot, long limit)
{
	return plan_exec(p, values, nulls,
					 latest_snapshot ? GetLatestSnapshot() : InvalidSnapshot, limit);
}

/*
 * For the one statement an API function runs on behalf of its caller: it
 * runs with the caller's statement snapshot (its command ID advanced, so it
 * sees this transaction's earlier changes) instead of taking another. That
 * is what any UPDATE in the caller's statement would see; rows changed by
 * others since are rechecked at their latest version when locked or
 * updated, as for any UPDATE in READ COMMITTED. Without an active snapshot
 * it takes one.
 */
int
ac_plan_exec_for_caller(AcPlan *p, Datum *values, const char *nulls, long limit)
{
	return plan_exec(p, values, nulls,
					 ActiveSnapshotSet() ? GetActiveSnapshot() : InvalidSnapshot, limit);
}

/*
 * For the reads and row locks that keep rows consistent with each other
 * (a foreign key's kind of work): run as the owner of table owner_of (the
 * table the plan reads or locks), with the latest snapshot,
 * as PostgreSQL runs a foreign key's check as the owner of the referenced
 * table. The caller's privileges decide what it may write; a lock that
 * protects what it wrote must not need UPDATE on the row locked.
 */
int
ac_plan_exec_as_owner(AcPlan *p, AcTable owner_of, Datum *values, const char *nulls,
					  long limit)
{
	Oid			save_user;
	int			save_sec;
	int			rc;

	GetUserIdAndSecContext(&save_user, &save_sec);
	SetUserIdAndSecContext(ac_table_owner(owner_of),
						   save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_NOFORCE_RLS);
	/* an error restores the user with the (sub)transaction's abort */
	rc = plan_exec(p, values, nulls, GetLatestSnapshot(), limit);
	SetUserIdAndSecContext(save_user, save_sec);
	return rc;
}

Datum
ac_spi_value(int row, int col, bool *isnull)
{
	return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, isnull);
}
