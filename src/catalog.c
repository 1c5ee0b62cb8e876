/*-------------------------------------------------------------------------
 *
 * catalog.c
 *		OIDs of automation_core's schema, tables and enum labels, and the
 *		attribute numbers of the columns the C code touches. Looked up once
 *		and kept until an invalidation callback marks them stale.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "catalog/namespace.h"
#include "catalog/pg_enum.h"
#include "catalog/pg_type.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "automation_core.h"

static const char *const table_names[AC_NTABLES] = {
	"automation", "batch", "item", "run", "batch_execution",
	"item_execution", "item_state_history", "engine",
	"orchestration_instance", "run_orchestration", "event", "consumer",
	"event_epoch"
};

static const char *const column_names[AC_NCOLS] = {
	"id", "name", "type", "created_at", "updated_at", "created_by",
	"updated_by", "version", "is_active", "status", "started_at",
	"finished_at", "automation_id", "batch_id", "run_id",
	"batch_execution_id", "item_id", "result_payload", "error_message",
	"attempt_count", "max_attempts", "worker", "lease_expires_at",
	"next_attempt_at", "error_summary", "cancellation_reason",
	"duration_seconds", "item_execution_id", "previous_status",
	"new_status", "changed_at", "queue_position"
};

static const char *const index_names[AC_NINDEXES] = {
	"item_execution_open_idx", "item_execution_ready_idx", "item_execution_run_ready_idx"
};

static const char *const status_labels[AC_NSTATUS] = {
	"pending", "processing", "retrying", "completed", "failed", "cancelled"
};

typedef struct AcCatalog
{
	bool		valid;
	Oid			schema;
	Oid			status_type;
	Oid			status_oid[AC_NSTATUS];
	Oid			tables[AC_NTABLES];
	Oid			owners[AC_NTABLES];
	AttrNumber	attnums[AC_NTABLES][AC_NCOLS];
	Oid			indexes[AC_NINDEXES];	/* InvalidOid where missing */
} AcCatalog;

static AcCatalog cat;

static void
catalog_load(void)
{
	Oid			nsp;
	int			i;
	int			j;

	nsp = get_namespace_oid("automation_core", true);
	if (!OidIsValid(nsp))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_SCHEMA),
				 errmsg("automation_core is not installed in this database"),
				 errhint("Run CREATE EXTENSION automation_core.")));

	cat.schema = nsp;
	cat.status_type = GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid,
									  CStringGetDatum("execution_status"),
									  ObjectIdGetDatum(nsp));
	if (!OidIsValid(cat.status_type))
		elog(ERROR, "type automation_core.execution_status is missing");

	for (i = 0; i < AC_NSTATUS; i++)
	{
		HeapTuple	tup;

		tup = SearchSysCache2(ENUMTYPOIDNAME,
							  ObjectIdGetDatum(cat.status_type),
							  CStringGetDatum(status_labels[i]));
		if (!HeapTupleIsValid(tup))
			elog(ERROR, "label \"%s\" of automation_core.execution_status is missing",
				 status_labels[i]);
		cat.status_oid[i] = ((Form_pg_enum) GETSTRUCT(tup))->oid;
		ReleaseSysCache(tup);
	}

	for (i = 0; i < AC_NTABLES; i++)
	{
		Oid			relid = get_relname_relid(table_names[i], nsp);

		cat.tables[i] = relid;
		cat.owners[i] = InvalidOid;
		if (OidIsValid(relid))
		{
			HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));

			if (HeapTupleIsValid(tup))
			{
				cat.owners[i] = ((Form_pg_class) GETSTRUCT(tup))->relowner;
				ReleaseSysCache(tup);
			}
		}
		for (j = 0; j < AC_NCOLS; j++)
			cat.attnums[i][j] = OidIsValid(relid) ?
				get_attnum(relid, column_names[j]) : InvalidAttrNumber;
	}
	for (i = 0; i < AC_NINDEXES; i++)
		cat.indexes[i] = get_relname_relid(index_names[i], nsp);
	cat.valid = true;
}

static inline void
catalog_ensure(void)
{
	if (unlikely(!cat.valid))
		catalog_load();
}

static void
relcache_callback(Datum arg, Oid relid)
{
	int			i;

	if (!cat.valid)
		return;
	if (!OidIsValid(relid))
	{
		cat.valid = false;
		return;
	}
	for (i = 0; i < AC_NTABLES; i++)
		if (cat.tables[i] == relid)
		{
			cat.valid = false;
			return;
		}
	/* while an index is missing, any relation's change may have brought it */
	for (i = 0; i < AC_NINDEXES; i++)
		if (cat.indexes[i] == relid || !OidIsValid(cat.indexes[i]))
		{
			cat.valid = false;
			return;
		}
}

static void
syscache_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	cat.valid = false;
}

void
ac_catalog_init(void)
{
	CacheRegisterRelcacheCallback(relcache_callback, (Datum) 0);
	CacheRegisterSyscacheCallback(NAMESPACEOID, syscache_callback, (Datum) 0);
	CacheRegisterSyscacheCallback(TYPEOID, syscache_callback, (Datum) 0);
}

Oid
ac_schema_oid(void)
{
	catalog_ensure();
	return cat.schema;
}

Oid
ac_table_oid(AcTable t)
{
	catalog_ensure();
	if (!OidIsValid(cat.tables[t]))
		elog(ERROR, "table automation_core.%s is missing", table_names[t]);
	return cat.tables[t];
}

/* The owner of table t */
Oid
ac_table_owner(AcTable t)
{
	(void) ac_table_oid(t);		/* loaded, and there */
	if (!OidIsValid(cat.owners[t]))
		elog(ERROR, "owner of table automation_core.%s not found", table_names[t]);
	return cat.owners[t];
}

/*
 * One of the indexes the C code walks itself (the roll-up's way to a batch
 * execution's open items, claim's to the ready ones), or InvalidOid when it
 * is missing; the caller checks that it is what it expects.
 */
Oid
ac_index_oid(AcIndex i)
{
	catalog_ensure();
	return cat.indexes[i];
}

/*
 * Is index a valid btree of heap whose first nkeys key columns are keys
 * (0: an expression, checked by the caller)? The C code that walks an index
 * itself reads nothing else of it.
 */
bool
ac_btree_keys(Relation index, Relation heap, const AttrNumber *keys, int nkeys)
{
	int			i;

	if (index->rd_index->indrelid != RelationGetRelid(heap) ||
		!index->rd_index->indisvalid ||
		index->rd_rel->relam != BTREE_AM_OID ||
		index->rd_index->indnkeyatts < nkeys)
		return false;
	for (i = 0; i < nkeys; i++)
		if (index->rd_index->indkey.values[i] != keys[i])
			return false;
	return true;
}

AcTable
ac_table_of(Oid relid)
{
	int			i;

	catalog_ensure();
	for (i = 0; i < AC_NTABLES; i++)
		if (cat.tables[i] == relid)
			return (AcTable) i;
	return AC_T_INVALID;
}

const char *
ac_table_name(AcTable t)
{
	return table_names[t];
}

AttrNumber
ac_attnum(AcTable t, AcCol c)
{
	catalog_ensure();
	return cat.attnums[t][c];
}

Oid
ac_status_type_oid(void)
{
	catalog_ensure();
	return cat.status_type;
}

Datum
ac_status_datum(AcStatus s)
{
	catalog_ensure();
	return ObjectIdGetDatum(cat.status_oid[s]);
}

AcStatus
ac_status_of_datum(Datum d)
{
	Oid			oid = DatumGetObjectId(d);
	int			i;

	catalog_ensure();
	for (i = 0; i < AC_NSTATUS; i++)
		if (cat.status_oid[i] == oid)
			return (AcStatus) i;
	elog(ERROR, "unknown execution_status value %u", oid);
	return AC_STATUS_INVALID;	/* keep compiler quiet */
}
