/*-------------------------------------------------------------------------
 *
 * payload.c
 *		JSON Schema enforcement on automation_core's tables.
 *
 *		payload_check (BEFORE INSERT OR UPDATE on batch and item) validates
 *		a payload against its automation's batch_schema or item_schema.
 *		schema_check (BEFORE INSERT OR UPDATE on automation) refuses an
 *		invalid schema, and refuses a new schema that an active payload of
 *		the automation would not satisfy.
 *
 *		Concurrency: schema_check takes a SHARE lock on the payload table
 *		before it reads the payloads with the latest snapshot, so it waits
 *		for every transaction that has written payloads and keeps new
 *		writers out until it commits; payload_check reads the schema with
 *		the latest snapshot once its statement holds its ROW EXCLUSIVE lock,
 *		so it sees every schema change committed before.  The schema a
 *		statement found for a batch or automation is kept for the rest of
 *		that statement (no other transaction can change it meanwhile), so a
 *		bulk insert looks it up once. Its own transaction can: every schema
 *		change (schema_check), batch move, and subtransaction abort (which
 *		may take back a schema change) empties the cache.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/uuid.h"

#include "automation_core.h"
#include "jsonschema.h"
#include "spi_util.h"

PG_FUNCTION_INFO_V1(ac_payload_check);
PG_FUNCTION_INFO_V1(ac_schema_check);

/* how many failures an error's detail shows */
#define PAYLOAD_DETAIL_ERRORS 3
/* payloads fetched at a time when a schema changes */
#define PAYLOAD_FETCH 1000

static AcPlan plan_item_schema = {
	"SELECT a.id, a.item_schema FROM automation_core.batch b"
	" JOIN automation_core.automation a ON a.id = b.automation_id"
	" WHERE b.id = $1",
	1, {UUIDOID}
};

static AcPlan plan_batch_schema = {
	"SELECT id, batch_schema FROM automation_core.automation WHERE id = $1",
	1, {UUIDOID}
};

static AcPlan plan_active_batches = {
	"SELECT id, payload FROM automation_core.batch"
	" WHERE automation_id = $1 AND is_active AND payload IS NOT NULL",
	1, {UUIDOID}
};

static AcPlan plan_active_items = {
	"SELECT i.id, i.payload FROM automation_core.item i"
	" JOIN automation_core.batch b ON b.id = i.batch_id"
	" WHERE b.automation_id = $1 AND i.is_active AND i.payload IS NOT NULL",
	1, {UUIDOID}
};

static AcPlan plan_automation_item_schema = {
	"SELECT item_schema FROM automation_core.automation WHERE id = $1",
	1, {UUIDOID}
};

static AcPlan plan_batch_items = {
	"SELECT id, payload FROM automation_core.item"
	" WHERE batch_id = $1 AND is_active AND payload IS NOT NULL",
	1, {UUIDOID}
};

/* ---------------------------------------------------------------------
 * Per-statement cache: batch id (items) or automation id (batches) to
 * the schema that applies, or no schema.
 * ---------------------------------------------------------------------
 */
typedef struct SchemaCacheKey
{
	bool		for_item;
	pg_uuid_t	id;
} SchemaCacheKey;

typedef struct SchemaCacheEntry
{
	SchemaCacheKey key;
	Jsonb	   *schema;			/* NULL: no schema */
	JsSchemaRef compiled;		/* its compiled form, once used */
} SchemaCacheEntry;

static MemoryContext cache_cxt = NULL;
static HTAB *schema_cache = NULL;
static LocalTransactionId cache_lxid = InvalidLocalTransactionId;
static TimestampTz cache_stmt = 0;

static void
cache_reset(void)
{
	if (cache_cxt)
		MemoryContextReset(cache_cxt);
	schema_cache = NULL;
}

/*
 * A statement (a DO block, a function) may go on after a subtransaction
 * that changed a schema aborted: what was cached since may be the schema
 * that is now gone.
 */
static void
cache_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		cache_reset();
}

void
ac_payload_init(void)
{
	RegisterSubXactCallback(cache_subxact_callback, NULL);
}

static HTAB *
cache_get(void)
{
	HASHCTL		ctl;

	if (cache_lxid != MyProc->lxid ||
		cache_stmt != GetCurrentStatementStartTimestamp())
	{
		cache_reset();
		cache_lxid = MyProc->lxid;
		cache_stmt = GetCurrentStatementStartTimestamp();
	}
	if (schema_cache)
		return schema_cache;
	if (cache_cxt == NULL)
		cache_cxt = AllocSetContextCreate(TopMemoryContext,
										  "automation_core payload schemas",
										  ALLOCSET_SMALL_SIZES);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(SchemaCacheKey);
	ctl.entrysize = sizeof(SchemaCacheEntry);
	ctl.hcxt = cache_cxt;
	schema_cache = hash_create("automation_core payload schemas", 16, &ctl,
							   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	return schema_cache;
}

/*
 * The cache entry for the schema an item of this batch (for_item) or a
 * batch of this automation must satisfy, read with the latest snapshot on
 * first use in the statement; its schema is NULL when there is none.
 */
static SchemaCacheEntry *
lookup_entry(bool for_item, Datum id)
{
	SchemaCacheKey key;
	SchemaCacheEntry *e;
	bool		found;
	HTAB	   *h = cache_get();

	memset(&key, 0, sizeof(key));
	key.for_item = for_item;
	memcpy(&key.id, DatumGetUUIDP(id), sizeof(pg_uuid_t));
	e = hash_search(h, &key, HASH_ENTER, &found);
	if (!found)
	{
		Datum		values[1] = {id};
		bool		isnull;
		Datum		d;

		e->schema = NULL;
		memset(&e->compiled, 0, sizeof(JsSchemaRef));
		ac_spi_connect();
		ac_plan_exec(for_item ? &plan_item_schema : &plan_batch_schema,
					 values, NULL, true, 1);
		if (SPI_processed > 0)
		{
			d = ac_spi_value(0, 2, &isnull);
			if (!isnull)
			{
				Jsonb	   *jb = DatumGetJsonbP(d);

				e->schema = MemoryContextAlloc(cache_cxt, VARSIZE(jb));
				memcpy(e->schema, jb, VARSIZE(jb));
			}
		}
		ac_spi_finish();
	}
	return e;
}

/* "/path: message; /path: message" for the first few failures */
static char *
errors_text(JsSchema *s, Jsonb *payload)
{
	List	   *errors = NIL;
	ListCell   *lc;
	StringInfoData b;
	int			n = 0;

	(void) js_validate(s, payload, &errors, PAYLOAD_DETAIL_ERRORS + 1);
	initStringInfo(&b);
	foreach(lc, errors)
	{
		JsError    *e = lfirst(lc);

		if (++n > PAYLOAD_DETAIL_ERRORS)
		{
			appendStringInfoString(&b, "; ...");
			break;
		}
		appendStringInfo(&b, "%s%s: %s (schema %s)", n > 1 ? "; " : "",
						 e->instance_path[0] ? e->instance_path : "/",
						 e->message, e->schema_path[0] ? e->schema_path : "/");
	}
	return b.data;
}

static char *
uuid_text(Datum d)
{
	return DatumGetCString(DirectFunctionCall1(uuid_out, d));
}

static Datum
get_col(HeapTuple tup, TupleDesc desc, const char *name, bool *isnull)
{
	int			att = SPI_fnumber(desc, name);

	if (att <= 0)
		elog(ERROR, "column \"%s\" not found", name);
	return heap_getattr(tup, att, desc, isnull);
}

/* did the column change between the two versions of a row? */
static bool
col_changed(HeapTuple oldtup, HeapTuple newtup, TupleDesc desc,
			const char *name)
{
	int			att = SPI_fnumber(desc, name);
	Form_pg_attribute a = TupleDescAttr(desc, att - 1);
	bool		n1,
				n2;
	Datum		d1 = heap_getattr(oldtup, att, desc, &n1);
	Datum		d2 = heap_getattr(newtup, att, desc, &n2);

	if (n1 || n2)
		return n1 != n2;
	return !datumIsEqual(d1, d2, a->attbyval, a->attlen);
}

/*
 * Validates every active payload a cursor returns (id, payload) against
 * schema; raises check_violation naming constraint on the first failure.
 */
static void
validate_existing(AcPlan *plan, Datum id, Jsonb *schema, bool items,
				  const char *automation_id, const char *schema_col)
{
	JsSchema   *s;
	Portal		portal;
	Datum		values[1] = {id};
	MemoryContext loop_cxt;

	ac_spi_connect();
	s = js_get_cached(schema);
	loop_cxt = AllocSetContextCreate(CurrentMemoryContext, "payload check",
									 ALLOCSET_DEFAULT_SIZES);
	PushActiveSnapshot(GetLatestSnapshot());
	portal = SPI_cursor_open(NULL, ac_plan_get(plan), values, NULL, true);
	PopActiveSnapshot();
	for (;;)
	{
		uint64		i;

		SPI_cursor_fetch(portal, true, PAYLOAD_FETCH);
		if (SPI_processed == 0)
			break;
		for (i = 0; i < SPI_processed; i++)
		{
			bool		isnull;
			Datum		rid = ac_spi_value(i, 1, &isnull);
			Jsonb	   *payload = DatumGetJsonbP(ac_spi_value(i, 2, &isnull));
			MemoryContext old = MemoryContextSwitchTo(loop_cxt);

			CHECK_FOR_INTERRUPTS();
			if (!js_validate(s, payload, NULL, 0))
				ereport(ERROR,
						(errcode(ERRCODE_CHECK_VIOLATION),
						 errmsg("new %s of automation %s does not accept an active %s payload",
								schema_col, automation_id, items ? "item" : "batch"),
						 errdetail("%s %s: %s", items ? "Item" : "Batch",
								   uuid_text(rid), errors_text(s, payload)),
						 errhint("Correct or deactivate the payloads first, or relax the schema."),
						 err_generic_string(PG_DIAG_SCHEMA_NAME, "automation_core"),
						 err_generic_string(PG_DIAG_TABLE_NAME, items ? "item" : "batch"),
						 err_generic_string(PG_DIAG_CONSTRAINT_NAME,
											items ? "item_payload_schema" : "batch_payload_schema")));
			MemoryContextSwitchTo(old);
			MemoryContextReset(loop_cxt);
		}
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);
	MemoryContextDelete(loop_cxt);
	ac_spi_finish();
}

/*
 * payload_check(): BEFORE INSERT OR UPDATE FOR EACH ROW on batch and item.
 */
Datum
ac_payload_check(PG_FUNCTION_ARGS)
{
	TriggerData *td;
	HeapTuple	newtup;
	HeapTuple	oldtup = NULL;
	TupleDesc	desc;
	AcTable		table;
	bool		is_item;
	bool		isnull;
	Datum		payload_d;
	Datum		parent;
	bool		active;
	Jsonb	   *schema;
	SchemaCacheEntry *entry;
	const char *parent_col;

	td = ac_trigger_call(fcinfo, "payload_check", AC_TRIG_BEFORE | AC_TRIG_ROW | AC_TRIG_INSERT | AC_TRIG_UPDATE,
						 AC_TABLE_BIT(AC_T_BATCH) | AC_TABLE_BIT(AC_T_ITEM),
						 "before INSERT or UPDATE on batch or item, for each row", &table);
	is_item = (table == AC_T_ITEM);
	parent_col = is_item ? "batch_id" : "automation_id";
	desc = RelationGetDescr(td->tg_relation);
	if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
	{
		oldtup = td->tg_trigtuple;
		newtup = td->tg_newtuple;
	}
	else
		newtup = td->tg_trigtuple;

	parent = get_col(newtup, desc, parent_col, &isnull);
	if (isnull)
		return PointerGetDatum(newtup);

	/* a batch moving to another automation: its items meet the new schema */
	if (!is_item && oldtup && col_changed(oldtup, newtup, desc, parent_col))
	{
		Jsonb	   *item_schema;

		cache_reset();
		LockRelationOid(ac_table_oid(AC_T_ITEM), ShareLock);
		item_schema = NULL;
		{
			Datum		values[1] = {parent};
			bool		n;
			Datum		d;

			ac_spi_connect();
			ac_plan_exec(&plan_automation_item_schema, values, NULL, true, 1);
			if (SPI_processed > 0)
			{
				d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &n);
				if (!n)
				{
					Jsonb	   *jb = DatumGetJsonbP(d);

					item_schema = SPI_palloc(VARSIZE(jb));
					memcpy(item_schema, jb, VARSIZE(jb));
				}
			}
			ac_spi_finish();
		}
		if (item_schema)
			validate_existing(&plan_batch_items,
							  get_col(newtup, desc, "id", &isnull),
							  item_schema, true, uuid_text(parent),
							  "item_schema");
		cache_reset();
	}

	payload_d = get_col(newtup, desc, "payload", &isnull);
	if (isnull)
		return PointerGetDatum(newtup);
	active = DatumGetBool(get_col(newtup, desc, "is_active", &isnull));
	if (oldtup)
	{
		bool		was_active = DatumGetBool(get_col(oldtup, desc, "is_active",
													  &isnull));

		if (!col_changed(oldtup, newtup, desc, "payload") &&
			!col_changed(oldtup, newtup, desc, parent_col) &&
			!(active && !was_active))
			return PointerGetDatum(newtup);
	}

	entry = lookup_entry(is_item, parent);
	schema = entry->schema;
	if (schema)
	{
		JsSchema   *s = js_get_cached_ref(&entry->compiled, schema);
		Jsonb	   *payload = DatumGetJsonbP(payload_d);

		if (!js_validate(s, payload, NULL, 0))
			ereport(ERROR,
					(errcode(ERRCODE_CHECK_VIOLATION),
					 errmsg("%s payload does not match the %s of its automation",
							is_item ? "item" : "batch",
							is_item ? "item_schema" : "batch_schema"),
					 errdetail("%s %s: %s", is_item ? "Item" : "Batch",
							   uuid_text(get_col(newtup, desc, "id", &isnull)),
							   errors_text(s, payload)),
					 errtableconstraint(td->tg_relation,
										is_item ? "item_payload_schema" : "batch_payload_schema")));
	}
	return PointerGetDatum(newtup);
}

static void
schema_errcontext(void *arg)
{
	errcontext("checking automation.%s", (const char *) arg);
}

/*
 * schema_check(): BEFORE INSERT OR UPDATE FOR EACH ROW on automation.
 */
Datum
ac_schema_check(PG_FUNCTION_ARGS)
{
	TriggerData *td;
	HeapTuple	newtup;
	HeapTuple	oldtup = NULL;
	TupleDesc	desc;
	int			k;
	static const char *cols[2] = {"batch_schema", "item_schema"};
	ErrorContextCallback cb;

	td = ac_trigger_call(fcinfo, "schema_check", AC_TRIG_BEFORE | AC_TRIG_ROW | AC_TRIG_INSERT | AC_TRIG_UPDATE,
						 AC_TABLE_BIT(AC_T_AUTOMATION), "before INSERT or UPDATE on automation, for each row",
						 NULL);
	desc = RelationGetDescr(td->tg_relation);
	if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
	{
		oldtup = td->tg_trigtuple;
		newtup = td->tg_newtuple;
	}
	else
		newtup = td->tg_trigtuple;

	for (k = 0; k < 2; k++)
	{
		bool		isnull;
		Datum		d = get_col(newtup, desc, cols[k], &isnull);
		Jsonb	   *schema;
		bool		items = (k == 1);

		if (oldtup && !col_changed(oldtup, newtup, desc, cols[k]))
			continue;
		/* our own later payload writes must see the new schema, or none */
		cache_reset();
		if (isnull)
			continue;
		schema = DatumGetJsonbP(d);
		/* an invalid schema raises invalid_parameter_value here */
		cb.callback = schema_errcontext;
		cb.arg = (void *) cols[k];
		cb.previous = error_context_stack;
		error_context_stack = &cb;
		(void) js_get_cached(schema);
		error_context_stack = cb.previous;
		if (oldtup)
		{
			Datum		id = get_col(newtup, desc, "id", &isnull);

			LockRelationOid(ac_table_oid(items ? AC_T_ITEM : AC_T_BATCH),
							ShareLock);
			validate_existing(items ? &plan_active_items : &plan_active_batches,
							  id, schema, items, uuid_text(id), cols[k]);
		}
	}
	return PointerGetDatum(newtup);
}
