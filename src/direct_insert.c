/*-------------------------------------------------------------------------
 *
 * direct_insert.c
 *		Rows that only automation_core writes (item history, events) go
 *		straight into the table and its indexes, without a parse, a plan,
 *		an executor run or a foreign-key check per row: the trigger writing
 *		them has just seen the parent row. Client writes to those tables
 *		still pass through their triggers, which refuse them.
 *
 *		The open relation, its indexes and a slot are kept for the rest of
 *		the transaction and closed before commit. The identity column and
 *		its sequence are kept across transactions (finding the sequence
 *		scans pg_depend) until the table's relation cache entry is
 *		invalidated.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/dependency.h"
#include "commands/sequence.h"
#include "executor/executor.h"
#include "nodes/makefuncs.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/resowner.h"

#include "automation_core.h"

typedef struct Inserter
{
	bool		open;
	Relation	rel;
	EState	   *estate;
	ResultRelInfo *rri;
	TupleTableSlot *slot;
	AttrNumber	identity_att;	/* filled from its sequence when null */
	Oid			identity_seq;
	AttrNumber *notnull;		/* the NOT NULL columns, ending with 0 */
	/* rows of ac_direct_insert_buffered waiting for ac_direct_insert_flush */
	TupleTableSlot **buffered;
	int			nbuffered;
} Inserter;

/* rows written to the heap at a time by ac_direct_insert_flush */
#define BUFFERED_ROWS 1000

static Inserter inserters[AC_NTABLES];

/* A table's identity column and sequence, valid while relid is set */
typedef struct IdentityCache
{
	Oid			relid;
	AttrNumber	att;
	Oid			seq;
} IdentityCache;

static IdentityCache identities[AC_NTABLES];

static void
identity_lookup(IdentityCache *ic, Relation rel)
{
	TupleDesc	desc = RelationGetDescr(rel);
	int			i;

	if (ic->relid == RelationGetRelid(rel))
		return;
	ic->att = InvalidAttrNumber;
	ic->seq = InvalidOid;
	for (i = 0; i < desc->natts; i++)
	{
		if (TupleDescAttr(desc, i)->attidentity)
		{
			ic->att = i + 1;
			ic->seq = ac_identity_sequence(rel, i + 1);
			break;
		}
	}
	ic->relid = RelationGetRelid(rel);
}

static void
identity_relcache_callback(Datum arg, Oid relid)
{
	int			i;

	for (i = 0; i < AC_NTABLES; i++)
		if (!OidIsValid(relid) || identities[i].relid == relid)
			identities[i].relid = InvalidOid;
}

/*
 * No constraint is checked on these rows but NOT NULL: automation_core
 * sets its own columns, and a NOT NULL column added to the table by hand
 * would otherwise get nulls (no default is applied either). The columns
 * to look at are found once, when the inserter opens.
 */
static AttrNumber *
notnull_columns(TupleDesc desc)
{
	AttrNumber *atts = palloc(sizeof(AttrNumber) * (desc->natts + 1));
	int			n = 0;
	int			i;

	for (i = 0; i < desc->natts; i++)
		if (TupleDescAttr(desc, i)->attnotnull && !TupleDescAttr(desc, i)->attisdropped)
			atts[n++] = i + 1;
	atts[n] = InvalidAttrNumber;
	return atts;
}

static void
inserter_open(Inserter *ins, AcTable t)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(TopTransactionContext);
	ResourceOwner oldowner = CurrentResourceOwner;

	/* Keep everything across subtransactions: owned by the transaction. */
	CurrentResourceOwner = TopTransactionResourceOwner;
	PG_TRY();
	{
		ins->rel = table_open(ac_table_oid(t), RowExclusiveLock);
		ins->estate = CreateExecutorState();
		ins->rri = makeNode(ResultRelInfo);
		InitResultRelInfo(ins->rri, ins->rel, 1, NULL, 0);
		ExecOpenIndices(ins->rri, false);
		ins->slot = MakeSingleTupleTableSlot(RelationGetDescr(ins->rel), &TTSOpsHeapTuple);
		ins->notnull = notnull_columns(RelationGetDescr(ins->rel));
		identity_lookup(&identities[t], ins->rel);
		ins->identity_att = identities[t].att;
		ins->identity_seq = identities[t].seq;
	}
	PG_FINALLY();
	{
		CurrentResourceOwner = oldowner;
		MemoryContextSwitchTo(oldcxt);
	}
	PG_END_TRY();
	ins->open = true;
}

/* Refuse a row leaving a NOT NULL column null */
static void
not_null_check(Inserter *ins, const bool *nulls)
{
	AttrNumber *a;

	for (a = ins->notnull; *a != InvalidAttrNumber; a++)
		if (nulls[*a - 1])
			ereport(ERROR,
					(errcode(ERRCODE_NOT_NULL_VIOLATION),
					 errmsg("null value in column \"%s\" of relation \"%s\" violates not-null constraint",
							NameStr(TupleDescAttr(RelationGetDescr(ins->rel), *a - 1)->attname),
							RelationGetRelationName(ins->rel)),
					 errdetail("automation_core writes only its own columns of %s; columns added to it stay null.",
							   RelationGetRelationName(ins->rel)),
					 errtablecol(ins->rel, *a)));
}

/*
 * The open inserter of table t, and the row of values/nulls (n entries)
 * made whole: as wide as the table, the identity column filled.
 */
static Inserter *
inserter_get(AcTable t, Datum **values, bool **nulls, int *n)
{
	Inserter   *ins = &inserters[t];

	int			natts;

	if (!ins->open)
		inserter_open(ins, t);

	/* columns added to the table after automation_core's stay null */
	natts = RelationGetDescr(ins->rel)->natts;
	if (natts > *n)
	{
		Datum	   *v = palloc0(sizeof(Datum) * natts);
		bool	   *isnull = palloc(sizeof(bool) * natts);

		memcpy(v, *values, sizeof(Datum) * *n);
		memset(isnull, true, sizeof(bool) * natts);
		memcpy(isnull, *nulls, sizeof(bool) * *n);
		*values = v;
		*nulls = isnull;
		*n = natts;
	}

	if (ins->identity_att != InvalidAttrNumber && (*nulls)[ins->identity_att - 1])
	{
		(*values)[ins->identity_att - 1] =
			Int64GetDatum(nextval_internal(ins->identity_seq, false));
		(*nulls)[ins->identity_att - 1] = false;
	}
	not_null_check(ins, *nulls);
	return ins;
}

/*
 * Insert one row into table t. values/nulls (n entries) are indexed by
 * attribute number minus one; a null identity column is filled from its
 * sequence.
 */
void
ac_direct_insert(AcTable t, Datum *values, bool *nulls, int n)
{
	Inserter   *ins = inserter_get(t, &values, &nulls, &n);
	HeapTuple	tup;
	EState	   *estate;

	estate = ins->estate;
	tup = heap_form_tuple(RelationGetDescr(ins->rel), values, nulls);
	ExecStoreHeapTuple(tup, ins->slot, true);
	table_tuple_insert(ins->rel, ins->slot, GetCurrentCommandId(true), 0, NULL);
	if (ins->rri->ri_NumIndices > 0)
		(void) ac_exec_insert_index_tuples(ins->rri, ins->slot, estate);
	ExecClearTuple(ins->slot);
	ResetPerTupleExprContext(estate);
}

/*
 * The same, but the row waits with others to be written a heap page at a
 * time (one write-ahead log record per page instead of one per row) by
 * ac_direct_insert_flush, which the caller must call before anything may
 * read the table. Rows still waiting when a (sub)transaction aborts are
 * thrown away with it.
 */
void
ac_direct_insert_buffered(AcTable t, Datum *values, bool *nulls, int n)
{
	Inserter   *ins = inserter_get(t, &values, &nulls, &n);
	TupleTableSlot *slot;
	TupleDesc	desc = RelationGetDescr(ins->rel);

	if (ins->buffered == NULL)
	{
		/* kept like the inserter's own slot: see inserter_open */
		MemoryContext oldcxt = MemoryContextSwitchTo(TopTransactionContext);
		ResourceOwner oldowner = CurrentResourceOwner;
		TupleTableSlot **slots = palloc(sizeof(TupleTableSlot *) * BUFFERED_ROWS);
		int			i;

		CurrentResourceOwner = TopTransactionResourceOwner;
		for (i = 0; i < BUFFERED_ROWS; i++)
			slots[i] = table_slot_create(ins->rel, NULL);
		CurrentResourceOwner = oldowner;
		MemoryContextSwitchTo(oldcxt);
		ins->buffered = slots;
	}
	slot = ins->buffered[ins->nbuffered];
	ExecClearTuple(slot);
	memcpy(slot->tts_values, values, sizeof(Datum) * desc->natts);
	memcpy(slot->tts_isnull, nulls, sizeof(bool) * desc->natts);
	ExecStoreVirtualTuple(slot);
	ExecMaterializeSlot(slot);
	if (++ins->nbuffered == BUFFERED_ROWS)
		ac_direct_insert_flush(t);
}

void
ac_direct_insert_flush(AcTable t)
{
	Inserter   *ins = &inserters[t];
	int			n = ins->nbuffered;
	int			i;

	if (n == 0)
		return;
	ins->nbuffered = 0;
	table_multi_insert(ins->rel, ins->buffered, n, GetCurrentCommandId(true), 0, NULL);
	for (i = 0; i < n; i++)
	{
		if (ins->rri->ri_NumIndices > 0)
			(void) ac_exec_insert_index_tuples(ins->rri, ins->buffered[i], ins->estate);
		ExecClearTuple(ins->buffered[i]);
		ResetPerTupleExprContext(ins->estate);
	}
}

/*
 * A subtransaction aborted: rows waiting to be written belong to the
 * statement that failed (rows wait only while one statement trigger runs,
 * which starts no subtransaction of its own).
 */
static void
direct_insert_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
							   SubTransactionId parentSubid, void *arg)
{
	int			i;

	if (event != SUBXACT_EVENT_ABORT_SUB)
		return;
	for (i = 0; i < AC_NTABLES; i++)
	{
		Inserter   *ins = &inserters[i];

		while (ins->open && ins->nbuffered > 0)
			ExecClearTuple(ins->buffered[--ins->nbuffered]);
	}
}

static void
inserters_close(bool commit)
{
	int			i;
	ResourceOwner oldowner = CurrentResourceOwner;

	/* a caller of ac_direct_insert_buffered forgot to flush */
	for (i = 0; commit && i < AC_NTABLES; i++)
		if (inserters[i].open && inserters[i].nbuffered > 0)
			elog(ERROR, "%d rows of %s were never written", inserters[i].nbuffered,
				 RelationGetRelationName(inserters[i].rel));
	if (commit)
		CurrentResourceOwner = TopTransactionResourceOwner;
	for (i = 0; i < AC_NTABLES; i++)
	{
		Inserter   *ins = &inserters[i];

		if (!ins->open)
			continue;
		if (commit)
		{
			int			k;

			for (k = 0; ins->buffered != NULL && k < BUFFERED_ROWS; k++)
				ExecDropSingleTupleTableSlot(ins->buffered[k]);
			ExecDropSingleTupleTableSlot(ins->slot);
			ExecCloseIndices(ins->rri);
			table_close(ins->rel, NoLock);
			FreeExecutorState(ins->estate);
		}
		/* on abort, resource owners and memory contexts clean up */
		memset(ins, 0, sizeof(Inserter));
	}
	CurrentResourceOwner = oldowner;
}

static void
direct_insert_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PARALLEL_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			inserters_close(true);
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			inserters_close(false);
			break;
		default:
			break;
	}
}

void
ac_direct_insert_init(void)
{
	RegisterXactCallback(direct_insert_xact_callback, NULL);
	RegisterSubXactCallback(direct_insert_subxact_callback, NULL);
	CacheRegisterRelcacheCallback(identity_relcache_callback, (Datum) 0);
}
