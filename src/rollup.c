/*-------------------------------------------------------------------------
 *
 * rollup.c
 *		Roll-up of item executions into their batch execution and of batch
 *		executions into their run, and the cancellation cascade.
 *
 *		Row triggers note what may need doing; the AFTER STATEMENT trigger
 *		does it once per batch execution or run. Finishing an item must not
 *		lock its batch execution every time, or every worker of a batch would
 *		queue behind one row until commit. Instead a finisher proves that it
 *		is not the last one:
 *
 *		1. It locks one other open item execution of the batch execution
 *		   that nobody holds (as FOR NO KEY UPDATE SKIP LOCKED would, from the
 *		   tail of the queue, preferring one no worker has claimed, and first
 *		   the one that served this session last time). If it
 *		   gets one, that item cannot end before this transaction commits, and
 *		   whoever ends it will run this check later and see this commit. Done.
 *		2. Otherwise every open item is being changed by a transaction still
 *		   in progress, or none is left. It locks the batch execution row and,
 *		   with a snapshot taken after the lock, looks again: if no item is
 *		   open it rolls the batch execution up; if some are, their
 *		   transactions will queue on the same row lock after this one commits
 *		   and decide then.
 *
 *		Batch executions end rarely, so the run level simply locks the run
 *		row before it looks. Every check reads with the latest snapshot, so
 *		it also works under REPEATABLE READ.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/relscan.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_am.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/uuid.h"

#include "automation_core.h"
#include "spi_util.h"

PG_FUNCTION_INFO_V1(ac_after_statement);
PG_FUNCTION_INFO_V1(ac_after_update_row);
PG_FUNCTION_INFO_V1(ac_after_delete_row);
PG_FUNCTION_INFO_V1(ac_forget_started);

/*
 * Work noted, and batch executions seen leaving pending, carry the
 * (sub)transaction nesting level that noted them. A subtransaction that
 * aborts takes its own with it; one that commits hands them to its parent.
 * A drain does only the work of its own level and deeper: work noted by an
 * outer statement still running waits for that statement's end, so that a
 * subtransaction that drains and then aborts (a BEGIN ... EXCEPTION block
 * in a trigger, say) cannot take that work with it.
 */
typedef struct RollupEntry
{
	AcRollupKind kind;
	int			level;
	pg_uuid_t	id;
} RollupEntry;

typedef struct EntryList
{
	RollupEntry *e;				/* in TopTransactionContext */
	int			n;
	int			max;
} EntryList;

/* Work noted in this transaction */
static EntryList pending;

/*
 * Batch executions known to have left pending in a committed transaction,
 * so that the next item to start need not read its batch execution. A
 * batch execution never returns to pending, but a row with the same id can
 * come back after a DELETE (a run deleted and restored, or the extension
 * dropped and created again), so the cache is dropped whenever
 * batch_execution gets a relcache invalidation: its DROP, a TRUNCATE, and
 * every DELETE of a row of it, which sends one (ac_forget_started), also
 * in replica mode.
 * One that arrives while a transaction runs also keeps that transaction's
 * batch executions out of the cache: it may have seen a row since deleted.
 */
static HTAB *started_batches = NULL;
static Oid	started_rel = InvalidOid;	/* batch_execution when last used */
static bool started_stale = false;

/* Seen started in this transaction; added to started_batches at commit */
static EntryList seen;			/* kind: AC_ROLLUP_BATCH_START */

int			ac_cascade_depth = 0;

static void rollup_drain(void);
static bool batch_known_started(const pg_uuid_t *id);

/* Kept plans */
#define OPEN_ITEM "status IN ('pending', 'processing', 'retrying')"

static AcPlan p_batch_status = {
	"SELECT status FROM automation_core.batch_execution WHERE id = $1", 1, {UUIDOID}
};
static AcPlan p_batch_start = {
	"UPDATE automation_core.batch_execution SET status = 'processing' "
	"WHERE id = $1 AND status = 'pending'", 1, {UUIDOID}
};
static AcPlan p_run_start = {
	"UPDATE automation_core.run SET status = 'processing' "
	"WHERE id = $1 AND status = 'pending'", 1, {UUIDOID}
};
static AcPlan p_lock_open_item = {
	"SELECT 1 FROM automation_core.item_execution "
	"WHERE batch_execution_id = $1 AND " OPEN_ITEM " "
	"ORDER BY queue_position DESC LIMIT 1 FOR NO KEY UPDATE SKIP LOCKED", 1, {UUIDOID}
};
static AcPlan p_lock_batch = {
	"SELECT status FROM automation_core.batch_execution WHERE id = $1 FOR NO KEY UPDATE",
	1, {UUIDOID}
};
static AcPlan p_lock_batch_skip = {
	"SELECT status FROM automation_core.batch_execution WHERE id = $1 FOR NO KEY UPDATE SKIP LOCKED",
	1, {UUIDOID}
};
/*
 * Deciding a roll-up reads the children twice: a look for an open one that
 * stops at the first, and, when there is none, one aggregate pass over them
 * all. Neither is an EXISTS: with thousands of children per parent, the
 * planner expects EXISTS (... AND status <> 'cancelled') to stop after a few
 * rows of a sequential scan and reads the whole table instead, at every end
 * of a batch execution. The look asks for the first open child in an order
 * an index gives directly (a sequential scan would have to read and sort
 * every match to return one), and the aggregate is costed for what it reads.
 */
static AcPlan p_batch_open = {
	"SELECT id, status FROM automation_core.item_execution "
	"WHERE batch_execution_id = $1 AND " OPEN_ITEM " "
	"ORDER BY queue_position LIMIT 1",
	1, {UUIDOID}
};
static AcPlan p_batch_summary = {
	"SELECT pg_catalog.bool_or(" OPEN_ITEM "), "
	"       pg_catalog.bool_or(status = 'failed'), "
	"       pg_catalog.bool_or(status <> 'cancelled') "
	"FROM automation_core.item_execution WHERE batch_execution_id = $1",
	1, {UUIDOID}
};
static AcPlan p_batch_set = {
	"UPDATE automation_core.batch_execution SET status = $2 WHERE id = $1",
	2, {UUIDOID, AC_TYPE_STATUS}
};
static AcPlan p_lock_run = {
	"SELECT status FROM automation_core.run WHERE id = $1 FOR NO KEY UPDATE", 1, {UUIDOID}
};
static AcPlan p_run_open = {
	"SELECT id, status FROM automation_core.batch_execution "
	"WHERE run_id = $1 AND " OPEN_ITEM " ORDER BY batch_id LIMIT 1",
	1, {UUIDOID}
};
static AcPlan p_run_summary = {
	"SELECT pg_catalog.bool_or(" OPEN_ITEM "), "
	"       pg_catalog.bool_or(status = 'failed'), "
	"       pg_catalog.bool_or(status <> 'cancelled') "
	"FROM automation_core.batch_execution WHERE run_id = $1",
	1, {UUIDOID}
};
static AcPlan p_run_failed_count = {
	"SELECT pg_catalog.format('%s of %s item executions failed', "
	"         count(*) FILTER (WHERE status = 'failed'), count(*)) "
	"FROM automation_core.item_execution WHERE run_id = $1", 1, {UUIDOID}
};
static AcPlan p_run_set = {
	"UPDATE automation_core.run SET status = $2, "
	"       error_summary = COALESCE($3, error_summary) WHERE id = $1",
	3, {UUIDOID, AC_TYPE_STATUS, TEXTOID}
};
static AcPlan p_cascade_run = {
	"UPDATE automation_core.batch_execution SET status = 'cancelled' "
	"WHERE run_id = $1 AND status IN ('pending', 'processing')", 1, {UUIDOID}
};
static AcPlan p_cascade_batch = {
	"UPDATE automation_core.item_execution SET status = 'cancelled' "
	"WHERE batch_execution_id = $1 AND " OPEN_ITEM, 1, {UUIDOID}
};

/*
 * A new execution may only join a batch execution or run that has not
 * ended. The INSERT's foreign-key check locks the parent FOR KEY SHARE,
 * which does not conflict with the FOR NO KEY UPDATE that the roll-up and
 * the cancellation take before they decide; so the parent is locked FOR
 * SHARE, which does, and its status read at the locked version.
 */
static AcPlan p_share_batches = {
	"SELECT id, status FROM automation_core.batch_execution "
	"WHERE id OPERATOR(pg_catalog.=) ANY ($1) ORDER BY id FOR SHARE",
	1, {UUIDARRAYOID}
};
static AcPlan p_share_runs = {
	"SELECT id, status FROM automation_core.run "
	"WHERE id OPERATOR(pg_catalog.=) ANY ($1) ORDER BY id FOR SHARE",
	1, {UUIDARRAYOID}
};

static bool
result_bool(int col)
{
	bool		isnull;
	Datum		d = ac_spi_value(0, col, &isnull);

	return !isnull && DatumGetBool(d);
}

static AcStatus
result_status(void)
{
	bool		isnull;
	Datum		d = ac_spi_value(0, 1, &isnull);

	return isnull ? AC_STATUS_INVALID : ac_status_of_datum(d);
}

/* Adds an entry at the current subtransaction level */
static void
append_entry(EntryList *l, AcRollupKind kind, const pg_uuid_t *u)
{
	if (l->n >= l->max)
	{
		l->max = l->max == 0 ? 16 : l->max * 2;
		l->e = l->e == NULL ?
			MemoryContextAlloc(TopTransactionContext, l->max * sizeof(RollupEntry)) :
			repalloc(l->e, l->max * sizeof(RollupEntry));
	}
	l->e[l->n].kind = kind;
	l->e[l->n].level = GetCurrentTransactionNestLevel();
	memcpy(&l->e[l->n].id, u, sizeof(pg_uuid_t));
	l->n++;
}

void
ac_rollup_note(AcRollupKind kind, Datum id)
{
	pg_uuid_t  *u = DatumGetUUIDP(id);
	int			i;

	/* the same work noted by the same statement is done once */
	for (i = pending.n - 1; i >= 0 && i >= pending.n - 16; i--)
		if (pending.e[i].kind == kind && memcmp(&pending.e[i].id, u, sizeof(pg_uuid_t)) == 0)
			return;

	if (kind == AC_ROLLUP_BATCH_START && batch_known_started(u))
		return;

	append_entry(&pending, kind, u);
}

/* Has batch execution id left pending in a transaction that committed? */
static bool
batch_known_started(const pg_uuid_t *id)
{
	bool		found = false;

	if (started_batches != NULL && !started_stale)
		(void) hash_search(started_batches, id, HASH_FIND, &found);
	return found;
}

static void
remember_started(pg_uuid_t *u)
{
	append_entry(&seen, AC_ROLLUP_BATCH_START, u);
}

static void
batch_start(Datum id)
{
	AcStatus	st;

	ac_plan_exec(&p_batch_status, &id, NULL, false, 1);
	if (SPI_processed == 0)
		return;
	st = result_status();
	if (st == AC_PENDING)
		ac_plan_exec(&p_batch_start, &id, NULL, false, 0);
	started_rel = ac_table_oid(AC_T_BATCH_EXECUTION);
	remember_started(DatumGetUUIDP(id));
}

/*
 * Before claim takes the first item of a batch execution: lock it when it
 * is still pending, so that the start its item's row trigger makes after
 * the item's lock (batch_start) finds the row already held. Without this,
 * the claim would lock item, then batch execution: the other order from a
 * statement cancelling or deleting a run or batch execution by hand, a
 * deadlock whenever a run is stopped while workers start it. Waits for the
 * lock when may_wait (the caller holds no other row lock, so whoever holds
 * the batch execution never waits for it); otherwise returns false when
 * another transaction holds it, and the caller passes its items over as
 * SKIP LOCKED would. *locked: this call took the lock.
 */
bool
ac_batch_lock_to_start(Datum id, bool may_wait, bool *locked)
{
	*locked = false;
	if (batch_known_started(DatumGetUUIDP(id)))
		return true;
	ac_plan_exec(&p_batch_status, &id, NULL, true, 1);
	if (SPI_processed == 0 || result_status() != AC_PENDING)
		return true;
	ac_plan_exec(may_wait ? &p_lock_batch : &p_lock_batch_skip, &id, NULL, false, 1);
	*locked = SPI_processed == 1;
	return may_wait || *locked;
}

static void
run_start(Datum id)
{
	ac_plan_exec(&p_run_start, &id, NULL, false, 0);
}

/*
 * Lock the batch execution or run (lock_plan), then read its children with
 * a fresh snapshot: open_plan returns an open one if there is one;
 * summary_plan (any open, any failed, any not cancelled) reads them all in
 * one snapshot, so that a child appearing between the two reads is still
 * seen as open.
 * Returns false when there is nothing to roll up: the row is gone or has
 * ended, or a child is still open. Otherwise sets the row's current status
 * and the status it rolls up to: failed if a child failed, else cancelled
 * if all were cancelled (or there are none), else completed.
 */
static bool
rollup_target(AcPlan *lock_plan, AcPlan *open_plan, AcPlan *summary_plan,
			  Datum id, AcStatus *current, AcStatus *target)
{
	ac_plan_exec(lock_plan, &id, NULL, false, 1);
	if (SPI_processed == 0)
		return false;
	*current = result_status();
	if (ac_status_is_terminal(*current))
		return false;
	ac_plan_exec(open_plan, &id, NULL, true, 1);
	if (SPI_processed > 0)
		return false;
	ac_plan_exec(summary_plan, &id, NULL, true, 1);
	if (result_bool(1))
		return false;
	if (result_bool(2))
		*target = AC_FAILED;
	else if (!result_bool(3))
		*target = AC_CANCELLED;
	else
		*target = AC_COMPLETED;
	return true;
}

/*
 * The item execution that last served as proof in this session, and its
 * batch execution. A worker finishing item after item of one batch
 * execution finds it again by primary key first, which costs a fraction of
 * the walk from the tail below (that reads a whole leaf page of the open
 * items' index). Only a hint: as in the walk, what decides is the status of
 * the version locked, and an item someone has claimed since is passed over.
 */
static bool proof_known = false;
static pg_uuid_t proof_batch;
static pg_uuid_t proof_item;

/*
 * Lock the row version in slot (read with snap) as FOR NO KEY UPDATE SKIP
 * LOCKED would, except that a version changed since the snapshot is not
 * followed to the newest one: true when the lock is held, and then the
 * version locked is the one in slot. A row someone holds, or changed since,
 * is not taken. locked is scratch space for the table AM. The roll-up's
 * proof and claim (claim.c) lock rows this way.
 */
bool
ac_lock_as_seen(Relation heap, TupleTableSlot *slot, Snapshot snap, CommandId cid,
				TupleTableSlot *locked)
{
	TM_FailureData tmfd;

	return table_tuple_lock(heap, &slot->tts_tid, snap, locked, cid,
							LockTupleNoKeyExclusive, LockWaitSkip, 0, &tmfd) == TM_Ok;
}

/* ac_lock_as_seen, for a version in slot that is still open */
static bool
lock_if_open(Relation heap, TupleTableSlot *slot, Snapshot snap, CommandId cid,
			 TupleTableSlot *locked)
{
	bool		isnull;
	Datum		st;

	st = slot_getattr(slot, ac_attnum(AC_T_ITEM_EXECUTION, AC_C_STATUS), &isnull);
	return !isnull && !ac_status_is_terminal(ac_status_of_datum(st)) &&
		ac_lock_as_seen(heap, slot, snap, cid, locked);
}

static bool
lock_known_proof(Relation heap, Snapshot snap, CommandId cid,
				 TupleTableSlot *slot, TupleTableSlot *locked, Datum batch_execution_id)
{
	AttrNumber	status_att = ac_attnum(AC_T_ITEM_EXECUTION, AC_C_STATUS);
	AttrNumber	batch_att = ac_attnum(AC_T_ITEM_EXECUTION, AC_C_BATCH_EXECUTION_ID);
	AttrNumber	pk_att;
	Oid			pk;
	Relation	index;
	IndexScanDesc scan;
	ScanKeyData key;
	bool		found = false;

	if (!proof_known ||
		memcmp(&proof_batch, DatumGetUUIDP(batch_execution_id), sizeof(pg_uuid_t)) != 0)
		return false;
	pk = RelationGetPrimaryKeyIndex(heap);
	if (!OidIsValid(pk))
		return false;
	index = index_open(pk, AccessShareLock);
	pk_att = ac_attnum(AC_T_ITEM_EXECUTION, AC_C_ID);
	if (ac_btree_keys(index, heap, &pk_att, 1))
	{
		ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_UUID_EQ, UUIDPGetDatum(&proof_item));
		scan = index_beginscan(heap, index, snap, 1, 0);
		index_rescan(scan, &key, 1, NULL, 0);
		if (index_getnext_slot(scan, ForwardScanDirection, slot))
		{
			bool		isnull;
			bool		be_null;
			Datum		st = slot_getattr(slot, status_att, &isnull);
			Datum		be = slot_getattr(slot, batch_att, &be_null);

			found = !isnull && !be_null &&
				memcmp(DatumGetUUIDP(be), DatumGetUUIDP(batch_execution_id), sizeof(pg_uuid_t)) == 0 &&
				(ac_status_of_datum(st) == AC_PENDING || ac_status_of_datum(st) == AC_RETRYING) &&
				lock_if_open(heap, slot, snap, cid, locked);
		}
		index_endscan(scan);
	}
	index_close(index, NoLock);
	if (!found)
		proof_known = false;
	return found;
}

/* Remember the item execution locked in slot as the next proof to try */
static void
remember_proof(TupleTableSlot *locked, Datum batch_execution_id)
{
	bool		isnull;
	Datum		id = slot_getattr(locked, ac_attnum(AC_T_ITEM_EXECUTION, AC_C_ID), &isnull);

	if (isnull)
		return;
	memcpy(&proof_item, DatumGetUUIDP(id), sizeof(pg_uuid_t));
	memcpy(&proof_batch, DatumGetUUIDP(batch_execution_id), sizeof(pg_uuid_t));
	proof_known = true;
}

/*
 * Step 1 of the proof without a query: walk the batch execution's open items
 * from the tail of the queue through item_execution_open_idx, with a fresh
 * snapshot, and lock the first one nobody holds (what FOR NO KEY UPDATE SKIP
 * LOCKED does, minus the planner and executor start-up on every finished
 * item). Items nobody has claimed come first: a processing item is about to
 * be finished by its worker, who would have to wait for this transaction's
 * commit; only when no other is free, or after passing over
 * PROOF_PASS_OVER of them (the tail of a batch execution whose every item
 * is being worked on: reading them all would cost more than a short wait
 * of one worker), is one of those taken. A row changed
 * since the snapshot is skipped rather than followed: skipping can only send
 * us on to step 2, which is always safe. The index is only the way in; what
 * decides is the status of the version we locked.
 * Returns 1 when one is held, 0 when none could be, -1 when the index is
 * missing, not valid (a REINDEX CONCURRENTLY in progress) or not what we
 * expect (then the query does it, and the planner picks what it can use).
 */
#define PROOF_PASS_OVER 32

static int
lock_other_open_item(Datum batch_execution_id)
{
	Oid			indexoid;
	Relation	heap;
	Relation	index;
	IndexScanDesc scan;
	ScanKeyData key;
	TupleTableSlot *slot;
	TupleTableSlot *locked;
	Snapshot	snap;
	AttrNumber	batch_att = ac_attnum(AC_T_ITEM_EXECUTION, AC_C_BATCH_EXECUTION_ID);
	AttrNumber	status_att = ac_attnum(AC_T_ITEM_EXECUTION, AC_C_STATUS);
	CommandId	cid;
	int			found = 0;
	int			pass;
	int			passed_over = 0;

	indexoid = ac_index_oid(AC_I_OPEN_ITEMS);
	if (!OidIsValid(indexoid))
		return -1;
	heap = table_open(ac_table_oid(AC_T_ITEM_EXECUTION), RowExclusiveLock);
	index = index_open(indexoid, AccessShareLock);
	if (!ac_btree_keys(index, heap, &batch_att, 1))
	{
		index_close(index, AccessShareLock);
		table_close(heap, NoLock);
		return -1;
	}

	/* see this transaction's own changes, as a new query would */
	CommandCounterIncrement();
	cid = GetCurrentCommandId(true);
	snap = RegisterSnapshot(GetLatestSnapshot());
	slot = table_slot_create(heap, NULL);
	locked = table_slot_create(heap, NULL);
	if (lock_known_proof(heap, snap, cid, slot, locked, batch_execution_id))
		found = 1;
	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_UUID_EQ, batch_execution_id);
	scan = found ? NULL : index_beginscan(heap, index, snap, 1, 0);
	/* the second pass only for processing items the first one passed over */
	for (pass = 0; pass < 2 && !found && (pass == 0 || passed_over > 0); pass++)
	{
		index_rescan(scan, &key, 1, NULL, 0);
		while (!found && index_getnext_slot(scan, BackwardScanDirection, slot))
		{
			bool		isnull;
			Datum		st;

			CHECK_FOR_INTERRUPTS();
			st = slot_getattr(slot, status_att, &isnull);
			if (isnull)
				continue;
			if (pass == 0 && ac_status_of_datum(st) == AC_PROCESSING &&
				passed_over++ < PROOF_PASS_OVER)
				continue;
			if (lock_if_open(heap, slot, snap, cid, locked))
			{
				found = 1;
				remember_proof(locked, batch_execution_id);
			}
		}
	}
	if (scan != NULL)
		index_endscan(scan);
	ExecDropSingleTupleTableSlot(locked);
	ExecDropSingleTupleTableSlot(slot);
	UnregisterSnapshot(snap);
	index_close(index, NoLock);
	table_close(heap, NoLock);
	return found;
}

static void
batch_check(Datum id)
{
	AcStatus	st;
	AcStatus	target;
	Datum		args[2];
	int			held;

	/* 1. another open item we can hold: someone after us will decide */
	held = lock_other_open_item(id);
	if (held < 0)
	{
		ac_plan_exec(&p_lock_open_item, &id, NULL, true, 1);
		held = SPI_processed > 0;
	}
	if (held)
		return;

	/* 2. lock the batch execution, then look with a fresh snapshot */
	if (!rollup_target(&p_lock_batch, &p_batch_open, &p_batch_summary, id, &st, &target))
		return;

	args[0] = id;
	if (st == AC_PENDING && target != AC_CANCELLED)
	{
		args[1] = ac_status_datum(AC_PROCESSING);
		ac_plan_exec(&p_batch_set, args, NULL, false, 0);
	}
	args[1] = ac_status_datum(target);
	ac_plan_exec(&p_batch_set, args, NULL, false, 0);
}

static void
run_check(Datum id)
{
	AcStatus	st;
	AcStatus	target;
	Datum		args[3];
	char		nulls[3] = {' ', ' ', 'n'};

	if (!rollup_target(&p_lock_run, &p_run_open, &p_run_summary, id, &st, &target))
		return;

	args[0] = id;
	args[2] = (Datum) 0;
	if (target == AC_FAILED)
	{
		bool		isnull;

		ac_plan_exec(&p_run_failed_count, &id, NULL, true, 1);
		args[2] = ac_spi_value(0, 1, &isnull);
		args[2] = PointerGetDatum(PG_DETOAST_DATUM_COPY(args[2]));
		nulls[2] = ' ';
	}
	if (st == AC_PENDING && target != AC_CANCELLED)
	{
		char		n1[3] = {' ', ' ', 'n'};

		args[1] = ac_status_datum(AC_PROCESSING);
		ac_plan_exec(&p_run_set, args, n1, false, 0);
	}
	args[1] = ac_status_datum(target);
	ac_plan_exec(&p_run_set, args, nulls, false, 0);
}

/*
 * Carry out everything noted so far.
 *
 * The roll-up's own UPDATEs of batch executions and runs fire this again
 * from their AFTER STATEMENT trigger. That nested call returns at once and
 * leaves what it would do to the loop below, which runs until nothing is
 * left: otherwise each nested call took the next entry, and a statement
 * touching items of many batch executions (an UPDATE of 100 of them) nested
 * one level per entry until it failed with "SPI calls nested too deeply".
 */
static bool rollup_running = false;

void
ac_rollup_run_pending(void)
{
	if (pending.n == 0 || rollup_running)
		return;

	rollup_running = true;
	PG_TRY();
	{
		rollup_drain();
	}
	PG_FINALLY();
	{
		rollup_running = false;
	}
	PG_END_TRY();
}

static void
rollup_drain(void)
{
	int			level = GetCurrentTransactionNestLevel();
	int			i;
	int			kept;

	/*
	 * In noted order, with what the work itself notes appended and taken in
	 * turn. Work taken is marked done and removed once at the end: removing
	 * each entry as it was taken moved the rest of the array every time,
	 * which made a statement ending the items of many batch executions
	 * quadratic in their number.
	 */
	ac_spi_connect();
	for (i = 0; i < pending.n; i++)
	{
		RollupEntry e = pending.e[i];
		Datum		id = UUIDPGetDatum(&e.id);

		if (e.level < level || e.kind == AC_ROLLUP_DONE)
			continue;
		pending.e[i].kind = AC_ROLLUP_DONE;
		switch (e.kind)
		{
			case AC_ROLLUP_BATCH_START:
				batch_start(id);
				break;
			case AC_ROLLUP_BATCH_CHECK:
				batch_check(id);
				break;
			case AC_ROLLUP_RUN_START:
				run_start(id);
				break;
			case AC_ROLLUP_RUN_CHECK:
				run_check(id);
				break;
			case AC_ROLLUP_DONE:
				break;
		}
	}
	for (i = 0, kept = 0; i < pending.n; i++)
		if (pending.e[i].kind != AC_ROLLUP_DONE)
			pending.e[kept++] = pending.e[i];
	pending.n = kept;
	ac_spi_finish();
}

/*
 * Refuse item executions added to a batch execution that has ended, and
 * batch executions added to a run that has ended (child: the table rows
 * were inserted into; parents: a uuid[] of the parents they joined). Called
 * at the end of the INSERT; one statement locks all the parents, in the
 * order of their ids, so that two inserts lock shared parents in one order.
 * A roll-up or cancellation that locks a parent after this waits for the
 * insert to commit and then sees the new rows; one that locked it first has
 * ended the parent by the time this lock is granted, and the insert fails
 * here. A parent that is gone is left to the foreign key.
 */
void
ac_require_open_parents(AcTable child, Datum parents)
{
	uint64		i;

	ac_spi_connect();
	ac_plan_exec_as_owner(child == AC_T_ITEM_EXECUTION ? &p_share_batches : &p_share_runs,
						  child == AC_T_ITEM_EXECUTION ? AC_T_BATCH_EXECUTION : AC_T_RUN,
						  &parents, NULL, 0);
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		AcStatus	st = ac_status_of_datum(ac_spi_value(i, 2, &isnull));

		if (ac_status_is_terminal(st))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg(child == AC_T_ITEM_EXECUTION ?
							"cannot add an item execution to a batch execution that has ended" :
							"cannot add a batch execution to a run that has ended"),
					 errdetail(child == AC_T_ITEM_EXECUTION ?
							   "batch execution %s is %s." : "run %s is %s.",
							   DatumGetCString(DirectFunctionCall1(uuid_out,
																   ac_spi_value(i, 1, &isnull))),
							   ac_status_name(st)),
					 errhint("Start a new run to execute it.")));
	}
	ac_spi_finish();
}

/*
 * A run or batch execution entering cancelled cancels what it contains,
 * in the same transaction. Item cancellations of the cascade write no
 * events and note no roll-up.
 */
void
ac_cascade_cancel(AcTable kind, Datum id)
{
	ac_spi_connect();
	ac_cascade_depth++;
	PG_TRY();
	{
		ac_plan_exec(kind == AC_T_RUN ? &p_cascade_run : &p_cascade_batch, &id, NULL, false, 0);
	}
	PG_FINALLY();
	{
		ac_cascade_depth--;
	}
	PG_END_TRY();
	ac_spi_finish();
}

Datum
ac_after_statement(PG_FUNCTION_ARGS)
{
	(void) ac_trigger_call(fcinfo, "after_statement",
						   AC_TRIG_AFTER | AC_TRIG_STATEMENT | AC_TRIG_INSERT | AC_TRIG_UPDATE | AC_TRIG_DELETE,
						   AC_TABLE_BIT(AC_T_ITEM_EXECUTION) | AC_TABLE_BIT(AC_T_BATCH_EXECUTION),
						   "after INSERT, UPDATE or DELETE on item_execution or batch_execution, for each statement",
						   NULL);
	ac_rollup_run_pending();
	return PointerGetDatum(NULL);
}

/* A column of a row of table t that the trigger was fired for */
static Datum
trigger_row_attr(TriggerData *td, AcTable t, HeapTuple row, AcCol col, bool *isnull)
{
	return heap_getattr(row, ac_attnum(t, col), RelationGetDescr(td->tg_relation), isnull);
}

/*
 * A batch execution or run set to completed or failed must have no open
 * child left: otherwise it would have ended with work still going on
 * inside, which nothing would ever roll up. The roll-up's own UPDATE passes
 * this too (it has just seen the same, under the same lock; one index probe
 * more at the end of a batch execution, not worth a flag to skip it).
 * This runs after the row was updated, so the parent's row lock is held:
 * an INSERT adding a child locks the parent FOR SHARE at its end and so
 * either committed before (and its rows are seen here, with the latest
 * snapshot) or waits and is refused for a parent that has ended. A child
 * that another transaction is ending but has not committed is still open
 * here; its own roll-up will end the parent.
 */
static void
require_no_open_children(Relation rel, AcTable t, Datum id, AcStatus to)
{
	bool		item = t == AC_T_BATCH_EXECUTION;
	bool		isnull;
	char	   *parent_id;
	char	   *child_id;
	AcStatus	child_status;

	ac_spi_connect();
	ac_plan_exec(item ? &p_batch_open : &p_run_open, &id, NULL, true, 1);
	if (SPI_processed == 0)
	{
		ac_spi_finish();
		return;
	}
	parent_id = DatumGetCString(DirectFunctionCall1(uuid_out, id));
	child_id = DatumGetCString(DirectFunctionCall1(uuid_out, ac_spi_value(0, 1, &isnull)));
	child_status = ac_status_of_datum(ac_spi_value(0, 2, &isnull));
	ereport(ERROR,
			(errcode(ERRCODE_CHECK_VIOLATION),
			 errmsg(item ? "batch execution cannot end while it has open item executions" :
					"run cannot end while it has open batch executions"),
			 errdetail(item ? "batch execution %s cannot become %s: item execution %s is %s." :
					   "run %s cannot become %s: batch execution %s is %s.",
					   parent_id, ac_status_name(to), child_id, ac_status_name(child_status)),
			 errhint(item ? "Let its item executions finish (the batch execution then ends by itself), or cancel the batch execution, which cancels them." :
					 "Let its batch executions finish (the run then ends by itself), or cancel the run, which cancels them."),
			 errtableconstraint(rel, item ? "batch_execution_status_transition" :
								"run_status_transition")));
}

Datum
ac_after_update_row(PG_FUNCTION_ARGS)
{
	TriggerData *td;
	AcTable		t;
	bool		isnull;
	AcStatus	from;
	AcStatus	to;

	td = ac_trigger_call(fcinfo, "after_update_row", AC_TRIG_AFTER | AC_TRIG_ROW | AC_TRIG_UPDATE,
						 AC_TABLE_BIT(AC_T_RUN) | AC_TABLE_BIT(AC_T_BATCH_EXECUTION),
						 "after UPDATE on run or batch_execution, for each row", &t);
	from = ac_status_of_datum(trigger_row_attr(td, t, td->tg_trigtuple, AC_C_STATUS, &isnull));
	to = ac_status_of_datum(trigger_row_attr(td, t, td->tg_newtuple, AC_C_STATUS, &isnull));
	if (to == AC_CANCELLED && from != AC_CANCELLED)
		ac_cascade_cancel(t, trigger_row_attr(td, t, td->tg_newtuple, AC_C_ID, &isnull));
	else if ((to == AC_COMPLETED || to == AC_FAILED) && to != from)
		require_no_open_children(td->tg_relation, t,
								 trigger_row_attr(td, t, td->tg_newtuple, AC_C_ID, &isnull), to);
	return PointerGetDatum(NULL);
}

/*
 * AFTER DELETE ... FOR EACH ROW on item_execution and batch_execution, for
 * rows that were open (the trigger's WHEN clause, so this is not even
 * called for the others; were it called, one more check of the parent would
 * find nothing to do): the parent may now have
 * no open child left, as if the row had ended. The end of the statement
 * checks it as it checks after a finisher (the deleted row is locked by
 * this transaction until it commits, so the proof works the same way).
 * Rows that had ended cost nothing: a retention DELETE of finished runs
 * fires no row trigger at all.
 */
Datum
ac_after_delete_row(PG_FUNCTION_ARGS)
{
	TriggerData *td;
	AcTable		t;
	bool		item;
	bool		isnull;
	Datum		parent;

	td = ac_trigger_call(fcinfo, "after_delete_row", AC_TRIG_AFTER | AC_TRIG_ROW | AC_TRIG_DELETE,
						 AC_TABLE_BIT(AC_T_ITEM_EXECUTION) | AC_TABLE_BIT(AC_T_BATCH_EXECUTION),
						 "after DELETE on item_execution or batch_execution, for each row", &t);
	item = t == AC_T_ITEM_EXECUTION;
	parent = trigger_row_attr(td, t, td->tg_trigtuple,
							  item ? AC_C_BATCH_EXECUTION_ID : AC_C_RUN_ID, &isnull);
	if (!isnull)
		ac_rollup_note(item ? AC_ROLLUP_BATCH_CHECK : AC_ROLLUP_RUN_CHECK, parent);
	return PointerGetDatum(NULL);
}

static void
rollup_xact_callback(XactEvent event, void *arg)
{
	int			i;

	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			if (started_stale)
			{
				if (started_batches != NULL)
					hash_destroy(started_batches);
				started_batches = NULL;
				started_stale = false;
			}
			else if (seen.n > 0)
			{
				if (started_batches == NULL)
				{
					HASHCTL		ctl;

					ctl.keysize = sizeof(pg_uuid_t);
					ctl.entrysize = sizeof(pg_uuid_t);
					started_batches = hash_create("automation_core started batches", 1024,
												  &ctl, HASH_ELEM | HASH_BLOBS);
				}
				if (hash_get_num_entries(started_batches) > 100000)
				{
					hash_destroy(started_batches);
					started_batches = NULL;
				}
				else
					for (i = 0; i < seen.n; i++)
						(void) hash_search(started_batches, &seen.e[i].id, HASH_ENTER, NULL);
			}
			/* FALLTHROUGH */
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			memset(&pending, 0, sizeof(pending));
			memset(&seen, 0, sizeof(seen));
			ac_cascade_depth = 0;
			break;
		default:
			break;
	}
}

/*
 * At the end of the subtransaction at this level: drop its entries (abort)
 * or hand them to its parent (commit).
 */
static void
settle_entries(EntryList *l, int level, bool abort)
{
	int			i;
	int			kept = 0;

	for (i = 0; i < l->n; i++)
	{
		if (l->e[i].level >= level)
		{
			if (abort)
				continue;
			l->e[i].level = level - 1;
		}
		l->e[kept++] = l->e[i];
	}
	l->n = kept;
}

static void
rollup_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						SubTransactionId parentSubid, void *arg)
{
	int			level;
	bool		abort = event == SUBXACT_EVENT_ABORT_SUB;

	if (event != SUBXACT_EVENT_COMMIT_SUB && !abort)
		return;
	level = GetCurrentTransactionNestLevel();
	settle_entries(&pending, level, abort);
	settle_entries(&seen, level, abort);
}

static void
rollup_relcache_callback(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || relid == started_rel)
		started_stale = true;
}

void
ac_rollup_init(void)
{
	CacheRegisterRelcacheCallback(rollup_relcache_callback, (Datum) 0);
	RegisterXactCallback(rollup_xact_callback, NULL);
	RegisterSubXactCallback(rollup_subxact_callback, NULL);
}

/*
 * BEFORE DELETE ... FOR EACH ROW on batch_execution, enabled ALWAYS: a
 * batch execution deleted may come back with the same id, pending, so
 * every session's cache of started batch executions (started_batches) must
 * forget what it holds. Enabled ALWAYS because a restore and logical
 * replication delete rows in replica mode, where the other triggers are
 * silent. The invalidation is sent at commit, once per transaction however
 * many rows go.
 */
Datum
ac_forget_started(PG_FUNCTION_ARGS)
{
	TriggerData *td;

	td = ac_trigger_call(fcinfo, "forget_started",
						 AC_TRIG_BEFORE | AC_TRIG_ROW | AC_TRIG_DELETE,
						 AC_TABLE_BIT(AC_T_BATCH_EXECUTION),
						 "before DELETE on batch_execution, for each row", NULL);
	CacheInvalidateRelcache(td->tg_relation);
	return PointerGetDatum(td->tg_trigtuple);
}
