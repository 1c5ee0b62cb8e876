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
} Inserter;

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

/*
 * Insert one row into table t. values/nulls are indexed by attribute number
 * minus one; a null identity column is filled from its sequence.
 */
void
ac_direct_insert(AcTable t, Datum *values, bool *nulls)
{
	Inserter   *ins = &inserters[t];
	HeapTuple	tup;
	EState	   *estate;

	if (!ins->open)
		inserter_open(ins, t);

	if (ins->identity_att != InvalidAttrNumber && nulls[ins->identity_att - 1])
	{
		values[ins->identity_att - 1] =
			Int64GetDatum(nextval_internal(ins->identity_seq, false));
		nulls[ins->identity_att - 1] = false;
	}

	estate = ins->estate;
	tup = heap_form_tuple(RelationGetDescr(ins->rel), values, nulls);
	ExecStoreHeapTuple(tup, ins->slot, true);
	table_tuple_insert(ins->rel, ins->slot, GetCurrentCommandId(true), 0, NULL);
	if (ins->rri->ri_NumIndices > 0)
		(void) ac_exec_insert_index_tuples(ins->rri, ins->slot, estate);
	ExecClearTuple(ins->slot);
	ResetPerTupleExprContext(estate);
}

static void
inserters_close(bool commit)
{
	int			i;
	ResourceOwner oldowner = CurrentResourceOwner;

	if (commit)
		CurrentResourceOwner = TopTransactionResourceOwner;
	for (i = 0; i < AC_NTABLES; i++)
	{
		Inserter   *ins = &inserters[i];

		if (!ins->open)
			continue;
		if (commit)
		{
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
	CacheRegisterRelcacheCallback(identity_relcache_callback, (Datum) 0);
}
