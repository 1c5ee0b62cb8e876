/*-------------------------------------------------------------------------
 *
 * claim.c
 *		The first half of claim: find ready item executions in queue order
 *		and lock them, as SELECT ... FOR NO KEY UPDATE SKIP LOCKED would,
 *		except that a row changed since the snapshot is passed over instead
 *		of followed to its latest version. The UPDATE that makes them
 *		processing (api.c) then finds each at its place (TID), already
 *		locked.
 *
 *		Why not the SELECT: under READ COMMITTED, a locking clause that
 *		meets a row another transaction changed and committed after the
 *		statement's snapshot locks the row's latest version first and
 *		rechecks the WHERE clause after. In a queue that row is nearly
 *		always an item another worker claimed a moment ago: it is
 *		processing now, fails the recheck and is not returned, but it stays
 *		locked until this claim commits, and the worker who owns it waits
 *		that long to complete or fail it. With many workers on one queue,
 *		many claims lock such rows, and workers queue behind each other's
 *		commits. A row passed over here is at worst claimed by the next
 *		claim, whose snapshot sees it as it is now.
 *
 *		The index is only the way in: what decides is the version locked,
 *		which must still be ready. A missing, invalid or different index
 *		sends claim back to the SELECT (api.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/relation.h"
#include "access/relscan.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "nodes/primnodes.h"
#include "utils/acl.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "automation_core.h"

/*
 * Is column col (1-based) of index COALESCE(next_attempt_at,
 * '-infinity'::timestamptz), the time a row is due, as the ready indexes
 * are declared in automation_core--1.0.sql? Their only expression.
 */
static bool
due_column(Relation index, int col, AttrNumber next_att)
{
	List	   *exprs;
	CoalesceExpr *c;
	Var		   *v;
	Const	   *k;

	if (index->rd_index->indkey.values[col - 1] != 0 ||
		TupleDescAttr(RelationGetDescr(index), col - 1)->atttypid != TIMESTAMPTZOID)
		return false;
	/* the relcache keeps the expressions once they have been read */
	exprs = index->rd_indexprs;
	if (exprs == NIL)
	{
		(void) RelationGetIndexExpressions(index);
		exprs = index->rd_indexprs;
	}
	if (list_length(exprs) != 1 || !IsA(linitial(exprs), CoalesceExpr))
		return false;
	c = (CoalesceExpr *) linitial(exprs);
	if (list_length(c->args) != 2 ||
		!IsA(linitial(c->args), Var) || !IsA(lsecond(c->args), Const))
		return false;
	v = (Var *) linitial(c->args);
	k = (Const *) lsecond(c->args);
	return v->varattno == next_att && k->consttype == TIMESTAMPTZOID &&
		!k->constisnull && TIMESTAMP_IS_NOBEGIN(DatumGetTimestampTz(k->constvalue));
}

/*
 * Why the ready rows cannot be found by walking the index directly, or NULL
 * when they can: the transaction is read-only (the query's UPDATE refuses
 * it before locking anything), the index is missing or not the one the
 * extension creates, or the table has row-level security or the user lacks
 * table-wide SELECT or UPDATE privilege (the query applies policies and
 * column privileges; a direct walk would lock rows they hide).
 */
static const char *
walk_refused(Relation heap, Relation index, bool by_run)
{
	AttrNumber	keys[2];
	int			nkeys = 0;

	/* the UPDATE will refuse; lock nothing before it does */
	if (XactReadOnly)
		return "the transaction is read-only";
	if (heap->rd_rel->relrowsecurity)
		return "item_execution has row-level security";
	if (pg_class_aclcheck(RelationGetRelid(heap), GetUserId(), ACL_SELECT) != ACLCHECK_OK ||
		pg_class_aclcheck(RelationGetRelid(heap), GetUserId(), ACL_UPDATE) != ACLCHECK_OK)
		return "the user has no SELECT or no UPDATE privilege on the whole of item_execution";
	if (index == NULL)
		return by_run ? "item_execution_run_ready_idx is missing" : "item_execution_ready_idx is missing";
	if (by_run)
		keys[nkeys++] = ac_attnum(AC_T_ITEM_EXECUTION, AC_C_RUN_ID);
	keys[nkeys++] = ac_attnum(AC_T_ITEM_EXECUTION, AC_C_QUEUE_POSITION);
	if (!ac_btree_keys(index, heap, keys, nkeys) ||
		index->rd_index->indnkeyatts != nkeys + 1 ||
		!due_column(index, nkeys + 1, ac_attnum(AC_T_ITEM_EXECUTION, AC_C_NEXT_ATTEMPT_AT)))
		return psprintf("index %s is not valid or not as created by automation_core",
						RelationGetRelationName(index));
	return NULL;
}

/* Is the row version in slot ready to be claimed at now (of run_id)? */
static bool
ready(TupleTableSlot *slot, TimestampTz now, const pg_uuid_t *run_id)
{
	bool		isnull;
	Datum		d;
	AcStatus	st;

	d = slot_getattr(slot, ac_attnum(AC_T_ITEM_EXECUTION, AC_C_STATUS), &isnull);
	if (isnull)
		return false;
	st = ac_status_of_datum(d);
	if (st != AC_PENDING && st != AC_RETRYING)
		return false;
	d = slot_getattr(slot, ac_attnum(AC_T_ITEM_EXECUTION, AC_C_IS_ACTIVE), &isnull);
	if (isnull || !DatumGetBool(d))
		return false;
	d = slot_getattr(slot, ac_attnum(AC_T_ITEM_EXECUTION, AC_C_NEXT_ATTEMPT_AT), &isnull);
	if (!isnull && DatumGetTimestampTz(d) > now)
		return false;
	if (run_id != NULL)
	{
		d = slot_getattr(slot, ac_attnum(AC_T_ITEM_EXECUTION, AC_C_RUN_ID), &isnull);
		if (isnull || memcmp(DatumGetUUIDP(d), run_id, sizeof(pg_uuid_t)) != 0)
			return false;
	}
	return true;
}

/*
 * The batch executions a walk has asked ac_batch_lock_to_start (rollup.c)
 * about, and its answers, so that the items of one are asked about once
 */
#define WALK_BATCHES 16

typedef struct WalkBatches
{
	int			n;
	bool		holds_lock;		/* has locked a batch execution */
	pg_uuid_t	id[WALK_BATCHES];
	bool		usable[WALK_BATCHES];
} WalkBatches;

/*
 * May the walk take the item in slot, as far as its batch execution goes?
 * A pending one is locked first, waiting only while the walk holds no row
 * lock (holds_items: it has locked items already).
 */
static bool
batch_usable(WalkBatches *wb, TupleTableSlot *slot, bool holds_items)
{
	bool		isnull;
	Datum		be = slot_getattr(slot, ac_attnum(AC_T_ITEM_EXECUTION, AC_C_BATCH_EXECUTION_ID),
								  &isnull);
	bool		usable;
	bool		locked;
	int			i;

	if (isnull)
		return true;
	for (i = 0; i < wb->n; i++)
		if (memcmp(&wb->id[i], DatumGetUUIDP(be), sizeof(pg_uuid_t)) == 0)
			return wb->usable[i];
	usable = ac_batch_lock_to_start(be, !holds_items && !wb->holds_lock, &locked);
	wb->holds_lock |= locked;
	if (wb->n < WALK_BATCHES)
	{
		wb->id[wb->n] = *DatumGetUUIDP(be);
		wb->usable[wb->n++] = usable;
	}
	return usable;
}

/*
 * Lock up to max_items ready item executions (of run_id, when not NULL), in
 * queue order, with the snapshot of the calling statement (its command ID
 * advanced, as the UPDATE that follows will have it). The places of the
 * versions locked go into *tids (palloc'd): a locked version
 * cannot be updated by anyone else, so the UPDATE that follows finds each
 * row at its place without a search of the primary key. Returns how many,
 * or -1 when walk_refused says why not (at DEBUG1): then the SELECT must do
 * it, with the planner's choice of index and the executor's checks.
 */
int
ac_claim_lock_ready(const pg_uuid_t *run_id, int max_items, ItemPointerData **tids)
{
	AcIndex		which = run_id != NULL ? AC_I_RUN_READY : AC_I_READY;
	Oid			heapoid = ac_table_oid(AC_T_ITEM_EXECUTION);
	Oid			indexoid = ac_index_oid(which);
	const char *why;
	int			nkeys;
	Relation	heap;
	Relation	index;
	IndexScanDesc scan;
	ScanKeyData skey[2];
	TupleTableSlot *slot;
	TupleTableSlot *locked;
	Snapshot	snap;
	CommandId	cid;
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	int			n = 0;
	int			max = Min(max_items, 64);
	WalkBatches wb;

	/*
	 * The lock the UPDATE that follows takes anyway: taking a weaker one
	 * first would make this statement upgrade it, which a plain UPDATE
	 * never does.
	 */
	heap = table_open(heapoid, RowExclusiveLock);
	/* (dropped since the catalog cache was filled: as good as missing) */
	index = OidIsValid(indexoid) ? try_relation_open(indexoid, AccessShareLock) : NULL;
	if (index != NULL && index->rd_rel->relkind != RELKIND_INDEX)
	{
		relation_close(index, AccessShareLock);
		index = NULL;
	}
	why = walk_refused(heap, index, run_id != NULL);
	if (why != NULL)
	{
		elog(DEBUG1, "ready item executions found by a query: %s", why);
		if (index != NULL)
			index_close(index, AccessShareLock);
		table_close(heap, NoLock);
		return -1;
	}

	/* the calling statement's snapshot, seeing this transaction's changes */
	CommandCounterIncrement();
	if (ActiveSnapshotSet())
		PushCopiedSnapshot(GetActiveSnapshot());
	else
		PushActiveSnapshot(GetTransactionSnapshot());
	UpdateActiveSnapshotCommandId();
	snap = GetActiveSnapshot();
	cid = GetCurrentCommandId(true);

	/*
	 * The run (an equality on the first column) and the time due (on the
	 * last), so that the btree passes over retries not yet due without
	 * reading their rows.
	 */
	nkeys = 0;
	if (run_id != NULL)
		ScanKeyInit(&skey[nkeys++], 1, BTEqualStrategyNumber, F_UUID_EQ,
					UUIDPGetDatum(run_id));
	ScanKeyInit(&skey[nkeys], index->rd_index->indnkeyatts, BTLessEqualStrategyNumber,
				F_TIMESTAMPTZ_LE, TimestampTzGetDatum(now));
	nkeys++;

	wb.n = 0;
	wb.holds_lock = false;
	*tids = palloc(max * sizeof(ItemPointerData));
	slot = table_slot_create(heap, NULL);
	locked = table_slot_create(heap, NULL);
	scan = index_beginscan(heap, index, snap, nkeys, 0);
	index_rescan(scan, skey, nkeys, NULL, 0);
	while (n < max_items && index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		CHECK_FOR_INTERRUPTS();
		/* a version changed since the snapshot is passed over */
		if (!ready(slot, now, run_id) || !batch_usable(&wb, slot, n > 0) ||
			!ac_lock_as_seen(heap, slot, snap, cid, locked))
			continue;
		if (n == max)
		{
			max = Min((int64) max * 2, (int64) max_items);
			*tids = repalloc(*tids, max * sizeof(ItemPointerData));
		}
		(*tids)[n++] = slot->tts_tid;
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(locked);
	ExecDropSingleTupleTableSlot(slot);
	PopActiveSnapshot();
	index_close(index, NoLock);
	table_close(heap, NoLock);
	return n;
}
