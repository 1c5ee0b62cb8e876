/*-------------------------------------------------------------------------
 *
 * bulk_insert.c
 *		The rows of a query inserted into one table as INSERT ... SELECT
 *		would insert them, a heap page at a time, with the table's
 *		triggers fired as for that INSERT, except the checks of the rows'
 *		parents that the caller vouches for: the foreign keys', and the
 *		statement trigger's check that an item execution's item is in its
 *		batch execution's batch (ac_bulk_vouched).
 *
 *		Why: start_run inserts an item execution per item, and the
 *		executor's INSERT runs each foreign key's check as a query of its
 *		own per row: two queries per item execution, about as long as the
 *		INSERT itself. start_run's query locks every item it reads with
 *		FOR KEY SHARE, the lock that check takes, and the batch executions
 *		it references were inserted by the same transaction, invisible to
 *		anyone who could delete them; so those checks can only pass. The
 *		same query pairs each item with the batch execution of its batch,
 *		and the lock keeps the item in that batch (batch_id is part of a
 *		unique key, which a FOR KEY SHARE lock holds still).
 *
 *		Only automation_core's own triggers are fired this way. A table
 *		with any other INSERT trigger, a foreign key the caller does not
 *		vouch for, rules, row-level security, stored generated columns,
 *		columns that do not match the query's, or an INSERT privilege
 *		granted per column only is left to the executor: ac_bulk_insert
 *		then says why at DEBUG1, does nothing and returns false.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_trigger.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "optimizer/optimizer.h"
#include "rewrite/rewriteHandler.h"
#include "utils/acl.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/plancache.h"
#include "rewrite/prs2lock.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "automation_core.h"
#include "spi_util.h"

/* rows fetched from the query and inserted at a time */
#define BULK_ROWS 1000

/* True while ac_bulk_insert fires the AFTER triggers of rows it vouches for */
bool		ac_bulk_vouched = false;

/* Is constraint conoid a foreign key from table t to one of parents? */
static bool
fk_vouched(Oid conoid, AcTable t, const AcTable *parents, int nparents)
{
	HeapTuple	tup;
	Form_pg_constraint con;
	bool		vouched = false;
	int			i;

	tup = SearchSysCache1(CONSTROID, ObjectIdGetDatum(conoid));
	if (!HeapTupleIsValid(tup))
		return false;
	con = (Form_pg_constraint) GETSTRUCT(tup);
	if (con->contype == CONSTRAINT_FOREIGN && con->conrelid == ac_table_oid(t))
		for (i = 0; i < nparents; i++)
			if (con->confrelid == ac_table_oid(parents[i]))
				vouched = true;
	ReleaseSysCache(tup);
	return vouched;
}

static bool
is_vouched_fk_check(const Trigger *tg, AcTable t, const AcTable *parents, int nparents)
{
	return tg->tgisinternal && TRIGGER_FOR_INSERT(tg->tgtype) &&
		RI_FKey_trigger_type(tg->tgfoid) == RI_TRIGGER_FK &&
		fk_vouched(tg->tgconstraint, t, parents, nparents);
}

/*
 * Why rel may not take the bulk path, or NULL when it may. Every trigger
 * that fires on INSERT must be automation_core's or a foreign-key check
 * vouched for.
 */
static const char *
bulk_refused(Relation rel, AcTable t, const AcTable *parents, int nparents)
{
	TriggerDesc *td = rel->trigdesc;
	TupleDesc	desc = RelationGetDescr(rel);
	int			i;

	if (rel->rd_rel->relkind != RELKIND_RELATION)
		return "it is not a plain table";
	if (rel->rd_rel->relrowsecurity)
		return "it has row-level security";
	/* rules rewrite an INSERT, which this is not (COPY ignores them too) */
	if (rel->rd_rules != NULL && rel->rd_rules->numLocks > 0)
		return "it has rules";
	if (desc->constr != NULL && desc->constr->has_generated_stored)
		return "it has generated columns";
	if (pg_class_aclcheck(RelationGetRelid(rel), GetUserId(), ACL_INSERT) != ACLCHECK_OK)
		return "the user has no INSERT privilege on the whole table";
	for (i = 0; td != NULL && i < td->numtriggers; i++)
	{
		const Trigger *tg = &td->triggers[i];

		if (!TRIGGER_FOR_INSERT(tg->tgtype))
			continue;
		if (is_vouched_fk_check(tg, t, parents, nparents))
			continue;
		if (!tg->tgisinternal && get_func_namespace(tg->tgfoid) == ac_schema_oid())
			continue;
		return psprintf("trigger \"%s\" fires on INSERT", tg->tgname);
	}
	return NULL;
}

/*
 * Leave the vouched foreign-key checks out of the result relation's own
 * copy of the trigger descriptor, and say again whether any AFTER ROW
 * INSERT trigger is left.
 */
static void
drop_vouched_checks(TriggerDesc *td, AcTable t, const AcTable *parents, int nparents)
{
	int			i;
	int			n = 0;

	if (td == NULL)
		return;
	td->trig_insert_after_row = false;
	for (i = 0; i < td->numtriggers; i++)
	{
		Trigger    *tg = &td->triggers[i];

		if (is_vouched_fk_check(tg, t, parents, nparents))
			continue;
		if (TRIGGER_FOR_ROW(tg->tgtype) && TRIGGER_FOR_AFTER(tg->tgtype) &&
			TRIGGER_FOR_INSERT(tg->tgtype))
			td->trig_insert_after_row = true;
		td->triggers[n++] = *tg;
	}
	td->numtriggers = n;
}

/*
 * Does every column of the query's result go to a live column of rel of
 * the same type? (Not if the table was altered, nor the query.)
 */
static bool
source_fits(Relation rel, SPIPlanPtr plan, const AttrNumber *attnums, int ncols)
{
	TupleDesc	desc = RelationGetDescr(rel);
	List	   *sources = SPI_plan_get_plan_sources(plan);
	TupleDesc	result;
	int			k;

	if (list_length(sources) != 1)
		return false;
	result = ((CachedPlanSource *) linitial(sources))->resultDesc;
	if (result == NULL || result->natts != ncols)
		return false;
	for (k = 0; k < ncols; k++)
		if (attnums[k] <= 0 || attnums[k] > desc->natts ||
			TupleDescAttr(desc, attnums[k] - 1)->attisdropped ||
			TupleDescAttr(desc, attnums[k] - 1)->atttypid != TupleDescAttr(result, k)->atttypid)
			return false;
	return true;
}

typedef struct Bulk
{
	Relation	rel;
	EState	   *estate;
	ResultRelInfo *rri;
	TransitionCaptureState *capture;
	TupleTableSlot *slots[BULK_ROWS];
	int			nslots;			/* filled, waiting to be inserted */
	ExprState **defaults;		/* per attribute, NULL when given or none */
	CommandId	cid;
} Bulk;

/* Insert the filled slots, then their index entries and AFTER events. */
static void
bulk_flush(Bulk *b)
{
	int			i;

	if (b->nslots == 0)
		return;
	table_multi_insert(b->rel, b->slots, b->nslots, b->cid, 0, NULL);
	for (i = 0; i < b->nslots; i++)
	{
		List	   *recheck = NIL;

		ResetPerTupleExprContext(b->estate);
		if (b->rri->ri_NumIndices > 0)
			recheck = ac_exec_insert_index_tuples(b->rri, b->slots[i], b->estate);
		ExecARInsertTriggers(b->estate, b->rri, b->slots[i], recheck, b->capture);
		list_free(recheck);
		ExecClearTuple(b->slots[i]);
	}
	b->nslots = 0;
}

/*
 * Make a row of the fetched tuple: column k of the query into attribute
 * attnums[k], defaults into the rest; then the BEFORE ROW triggers and the
 * constraints, as ExecInsert does. The row waits in the next free slot.
 */
static void
bulk_add(Bulk *b, HeapTuple src, TupleDesc srcdesc, const AttrNumber *attnums)
{
	TupleTableSlot *slot = b->slots[b->nslots];
	TupleDesc	desc = RelationGetDescr(b->rel);
	ExprContext *econtext = GetPerTupleExprContext(b->estate);
	MemoryContext oldcxt;
	int			i;

	ResetPerTupleExprContext(b->estate);
	oldcxt = MemoryContextSwitchTo(GetPerTupleMemoryContext(b->estate));
	ExecClearTuple(slot);
	for (i = 0; i < desc->natts; i++)
	{
		slot->tts_isnull[i] = true;
		slot->tts_values[i] = (Datum) 0;
		if (b->defaults[i] != NULL)
			slot->tts_values[i] = ExecEvalExpr(b->defaults[i], econtext, &slot->tts_isnull[i]);
	}
	for (i = 0; i < srcdesc->natts; i++)
		slot->tts_values[attnums[i] - 1] =
			heap_getattr(src, i + 1, srcdesc, &slot->tts_isnull[attnums[i] - 1]);
	ExecStoreVirtualTuple(slot);
	/* the row's own copy, out of the query's and this row's memory */
	ExecMaterializeSlot(slot);
	MemoryContextSwitchTo(oldcxt);

	if (b->rri->ri_TrigDesc != NULL && b->rri->ri_TrigDesc->trig_insert_before_row &&
		!ExecBRInsertTriggers(b->estate, b->rri, slot))
	{
		ExecClearTuple(slot);	/* a trigger skipped the row */
		return;
	}
	if (desc->constr != NULL)
		ExecConstraints(b->rri, slot, b->estate);
	b->nslots++;
}

/*
 * Insert into table t the rows that query `source` returns with args/nulls
 * (SPI must be connected): column k of the query goes to attribute
 * attnums[k] (k < ncols) and must be of its type, every other column gets
 * its default.
 * The caller vouches that the rows satisfy t's foreign keys to the tables
 * in parents, and that those parents belong together; checks of other foreign keys, or any other trigger than
 * automation_core's, make it return false having done nothing. Fires the
 * statement and row triggers of INSERT (BEFORE, AFTER and its transition
 * table) at the level of one statement, and returns true.
 */
bool
ac_bulk_insert(AcTable t, AcPlan *source, Datum *args, const char *nulls,
			   const AttrNumber *attnums, int ncols,
			   const AcTable *parents, int nparents)
{
	Relation	rel;
	TupleDesc	desc;
	const char *refused;
	Bulk		b;
	Portal		portal;
	int			i;

	rel = table_open(ac_table_oid(t), RowExclusiveLock);
	refused = bulk_refused(rel, t, parents, nparents);
	if (refused == NULL && !source_fits(rel, ac_plan_get(source), attnums, ncols))
		refused = "its columns were altered";
	if (refused != NULL)
	{
		elog(DEBUG1, "rows of %s inserted by INSERT, not in bulk: %s",
			 RelationGetRelationName(rel), refused);
		table_close(rel, NoLock);
		return false;
	}
	desc = RelationGetDescr(rel);

	memset(&b, 0, sizeof(b));
	b.rel = rel;
	b.estate = CreateExecutorState();
	b.estate->es_snapshot = GetActiveSnapshot();
	/* not in a range table: the result relation of this call only */
	b.rri = makeNode(ResultRelInfo);
	InitResultRelInfo(b.rri, rel, 0, NULL, 0);
#if PG_VERSION_NUM < 140000
	b.estate->es_result_relation_info = b.rri;
#endif
	drop_vouched_checks(b.rri->ri_TrigDesc, t, parents, nparents);
	ExecOpenIndices(b.rri, false);
	for (i = 0; i < BULK_ROWS; i++)
		b.slots[i] = table_slot_create(rel, &b.estate->es_tupleTable);

	b.defaults = palloc0(sizeof(ExprState *) * desc->natts);
	for (i = 0; i < desc->natts; i++)
	{
		Expr	   *def;
		int			k;
		bool		given = false;

		for (k = 0; k < ncols; k++)
			given |= attnums[k] == i + 1;
		if (given || TupleDescAttr(desc, i)->attisdropped)
			continue;
		def = (Expr *) build_column_default(rel, i + 1);
		if (def != NULL)
			b.defaults[i] = ExecInitExpr(expression_planner(def), NULL);
	}

	AfterTriggerBeginQuery();
	b.capture = MakeTransitionCaptureState(b.rri->ri_TrigDesc, RelationGetRelid(rel), CMD_INSERT);
	ExecBSInsertTriggers(b.estate, b.rri);

	/*
	 * Opening the cursor starts a new command; the rows are inserted by that
	 * command, as an INSERT ... SELECT inserts rows its own scan cannot see.
	 */
	portal = SPI_cursor_open(NULL, ac_plan_get(source), args, nulls, false);
	b.cid = b.estate->es_output_cid = GetCurrentCommandId(true);
	for (;;)
	{
		uint64		n;

		SPI_cursor_fetch(portal, true, BULK_ROWS);
		n = SPI_processed;
		if (n == 0)
			break;
		/* as source_fits found, unless the plan changed since */
		if (SPI_tuptable->tupdesc->natts != ncols)
			elog(ERROR, "bulk insert source returns %d columns, expected %d",
				 SPI_tuptable->tupdesc->natts, ncols);
		for (i = 0; i < ncols; i++)
			if (TupleDescAttr(SPI_tuptable->tupdesc, i)->atttypid !=
				TupleDescAttr(desc, attnums[i] - 1)->atttypid)
				elog(ERROR, "bulk insert source column %d is not of the type of column %d",
					 i + 1, attnums[i]);
		for (i = 0; i < n; i++)
		{
			bulk_add(&b, SPI_tuptable->vals[i], SPI_tuptable->tupdesc, attnums);
			if (b.nslots == BULK_ROWS)
				bulk_flush(&b);
		}
		SPI_freetuptable(SPI_tuptable);
	}
	bulk_flush(&b);
	SPI_cursor_close(portal);

	ac_bulk_vouched = true;
	PG_TRY();
	{
		ExecASInsertTriggers(b.estate, b.rri, b.capture);
		AfterTriggerEndQuery(b.estate);
	}
	PG_FINALLY();
	{
		ac_bulk_vouched = false;
	}
	PG_END_TRY();

	ExecResetTupleTable(b.estate->es_tupleTable, false);
	ExecCloseIndices(b.rri);
#if PG_VERSION_NUM >= 140000
	ExecCloseResultRelations(b.estate);
#else
	ExecCleanUpTriggerState(b.estate);
#endif
	FreeExecutorState(b.estate);
	table_close(rel, NoLock);
	CommandCounterIncrement();
	return true;
}
