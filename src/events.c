/*-------------------------------------------------------------------------
 *
 * events.c
 *		The durable event log and its doorbell.
 *
 *		The row trigger calls ac_event_on_transition for every status change
 *		of a run, batch execution, item execution or orchestration instance.
 *		The events chosen by the settings are written straight into
 *		automation_core.event in the same transaction, stamped with the
 *		top-level transaction id and the cluster's epoch (see
 *		ac_event_epoch). Each nesting level counts what it wrote; a
 *		committed subtransaction hands its count to its parent, an aborted
 *		one drops it. Just before commit, a transaction that still has
 *		events sends one NOTIFY on automation_core_events with its txid, the
 *		number of events and their distinct types.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"
#include "utils/xid8.h"

#include "automation_core.h"
#include "spi_util.h"
#include "events.h"

/* Event kinds: four entity kinds times four outcomes */
enum
{
	EV_STARTED = 0,
	EV_COMPLETED,
	EV_FAILED,
	EV_CANCELLED,
	EV_NOUTCOMES
};

enum
{
	EK_RUN = 0,
	EK_BATCH_EXECUTION,
	EK_ITEM_EXECUTION,
	EK_ORCHESTRATION_INSTANCE,
	EK_NKINDS
};

#define EV_NTYPES (EK_NKINDS * EV_NOUTCOMES)

static const char *const event_type_names[EV_NTYPES] = {
	"RunStarted", "RunCompleted", "RunFailed", "RunCancelled",
	"BatchExecutionStarted", "BatchExecutionCompleted",
	"BatchExecutionFailed", "BatchExecutionCancelled",
	"ItemExecutionStarted", "ItemExecutionCompleted",
	"ItemExecutionFailed", "ItemExecutionCancelled",
	"OrchestrationInstanceStarted", "OrchestrationInstanceCompleted",
	"OrchestrationInstanceFailed", "OrchestrationInstanceCancelled"
};

/* Columns of automation_core.event, found by name */
enum
{
	EC_ID = 0,
	EC_EPOCH,
	EC_TXID,
	EC_CREATED_AT,
	EC_EVENT_TYPE,
	EC_AUTOMATION_ID,
	EC_RUN_ID,
	EC_ENTITY_ID,
	EC_PAYLOAD,
	EC_NCOLS
};

static const char *const event_columns[EC_NCOLS] = {
	"id", "epoch", "txid", "created_at", "event_type", "automation_id",
	"run_id", "entity_id", "payload"
};

#define EVENT_MAX_ATTS 32

static Oid	event_rel_cached = InvalidOid;
static AttrNumber event_att[EC_NCOLS];
static int	event_natts;

/* Events written per transaction nesting level, for the doorbell */
typedef struct LevelCount
{
	int64		count;
	uint32		types;			/* bit per event type */
} LevelCount;

static LevelCount *levels = NULL;
static int	nlevels = 0;

/* Not a user setting: leaves txid out of the payload (for stable tests) */
static bool notify_txid = true;

/* Notification queue usage, looked at no more than every 100 ms */
#define QUEUE_CHECK_INTERVAL_MS 100
#define QUEUE_WARN_INTERVAL_MS 1000
static TimestampTz queue_checked_at = 0;
static bool queue_too_full = false;
static TimestampTz queue_warned_at = 0;

/*
 * The automation of a run, for batch and item events. A run's automation
 * never changes, so a small per-backend cache saves the lookup. Entries
 * made by a transaction that aborts are dropped with the whole cache: the
 * run they came from may not exist.
 */
#define RUN_CACHE_MAX 4096

typedef struct RunAutomation
{
	pg_uuid_t	run_id;			/* hash key */
	pg_uuid_t	automation_id;
} RunAutomation;

static HTAB *run_cache = NULL;
static Oid	run_cache_rel = InvalidOid;
static bool run_cache_dirty = false;	/* added to in this transaction */
static AcPlan run_plan = {
	"SELECT automation_id FROM automation_core.run WHERE id = $1", 1, {UUIDOID}
};

/* The cluster's epoch, per backend */
static int32 epoch_cached = -1;
static Oid	epoch_cached_rel = InvalidOid;
static bool epoch_tentative = false;	/* created by this transaction */
static AcPlan epoch_get_plan = {
	"SELECT (SELECT max(epoch) FROM automation_core.event_epoch "
	"        WHERE system_identifier = $1), "
	"       (SELECT max(epoch) FROM automation_core.event_epoch)",
	1, {INT8OID}
};
static AcPlan epoch_new_plan = {
	"INSERT INTO automation_core.event_epoch (epoch, system_identifier) "
	"SELECT COALESCE(max(epoch), 0) + 1, $1 FROM automation_core.event_epoch "
	"ON CONFLICT DO NOTHING RETURNING epoch",
	1, {INT8OID}
};

/* Attribute numbers of automation_core.event, reloaded when it changes */
static void
event_columns_ensure(void)
{
	Oid			relid = ac_table_oid(AC_T_EVENT);
	int			i;

	if (relid == event_rel_cached)
		return;
	event_natts = 0;
	for (i = 0; i < EC_NCOLS; i++)
	{
		AttrNumber	a = get_attnum(relid, event_columns[i]);

		if (a == InvalidAttrNumber || a > EVENT_MAX_ATTS)
			elog(ERROR, "column \"%s\" of automation_core.event is missing",
				 event_columns[i]);
		event_att[i] = a;
		if (a > event_natts)
			event_natts = a;
	}
	event_rel_cached = relid;
}

/*
 * The epoch of this cluster. Events are ordered by (epoch, txid, id): a
 * cluster's transaction ids only order its own events, so a dump restored
 * into a fresh cluster (whose ids start lower) writes under a new, larger
 * epoch. A cluster uses the newest epoch registered for its system
 * identifier when that is the newest epoch of all; otherwise (first event
 * of this cluster, or events of another cluster restored after ours) it
 * registers max + 1.
 */
int32
ac_event_epoch(bool create)
{
	Oid			relid = ac_table_oid(AC_T_EVENT);
	Datum		sysid = Int64GetDatum((int64) GetSystemIdentifier());
	int32		result = -1;
	int			attempt;

	if (epoch_cached >= 0 && epoch_cached_rel == relid)
		return epoch_cached;

	ac_spi_connect();
	for (attempt = 0; attempt < 10 && result < 0; attempt++)
	{
		bool		mine_null;
		bool		max_null;
		int32		mine;
		int32		max;

		ac_plan_exec(&epoch_get_plan, &sysid, NULL, false, 1);
		mine = DatumGetInt32(ac_spi_value(0, 1, &mine_null));
		max = DatumGetInt32(ac_spi_value(0, 2, &max_null));
		if (!mine_null && mine == max)
		{
			result = mine;
			break;
		}
		if (!create)
			break;

		/*
		 * Register a new epoch. Another backend doing the same makes this
		 * insert wait for it and then do nothing; the next lookup sees its
		 * row.
		 */
		ac_event_log_exec(&epoch_new_plan, &sysid);
		if (SPI_processed == 1)
		{
			bool		isnull;

			result = DatumGetInt32(ac_spi_value(0, 1, &isnull));
			epoch_tentative = true;
		}
	}
	ac_spi_finish();

	if (result < 0 && create)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("could not register an event epoch for this cluster"),
				 errhint("Retry the transaction.")));
	if (result >= 0)
	{
		epoch_cached = result;
		epoch_cached_rel = relid;
	}
	return result;
}

/* The automation of run run_id, or false when there is no such run */
static bool
run_automation(Datum run_id, Datum *automation_id)
{
	Oid			run_rel = ac_table_oid(AC_T_RUN);
	RunAutomation *entry;
	bool		found;
	bool		isnull;
	Datum		d;

	if (run_cache == NULL || run_cache_rel != run_rel ||
		hash_get_num_entries(run_cache) >= RUN_CACHE_MAX)
	{
		HASHCTL		ctl;

		if (run_cache != NULL)
			hash_destroy(run_cache);
		ctl.keysize = sizeof(pg_uuid_t);
		ctl.entrysize = sizeof(RunAutomation);
		run_cache = hash_create("automation_core run automations", 256,
								&ctl, HASH_ELEM | HASH_BLOBS);
		run_cache_rel = run_rel;
	}

	entry = hash_search(run_cache, DatumGetUUIDP(run_id), HASH_FIND, NULL);
	if (entry != NULL)
	{
		*automation_id = UUIDPGetDatum(&entry->automation_id);
		return true;
	}

	ac_spi_connect();
	ac_plan_exec(&run_plan, &run_id, NULL, false, 1);
	found = SPI_processed == 1;
	if (found)
	{
		d = ac_spi_value(0, 1, &isnull);
		found = !isnull;
		if (found)
		{
			entry = hash_search(run_cache, DatumGetUUIDP(run_id), HASH_ENTER, NULL);
			memcpy(&entry->automation_id, DatumGetUUIDP(d), sizeof(pg_uuid_t));
			run_cache_dirty = true;
		}
	}
	ac_spi_finish();
	if (found)
		*automation_id = UUIDPGetDatum(&entry->automation_id);
	return found;
}

static void
push_key(JsonbParseState **st, const char *key)
{
	JsonbValue	k;

	k.type = jbvString;
	k.val.string.len = strlen(key);
	k.val.string.val = (char *) key;
	(void) pushJsonbValue(st, WJB_KEY, &k);
}

static void
push_string(JsonbParseState **st, const char *key, const char *val, int len)
{
	JsonbValue	v;

	push_key(st, key);
	v.type = jbvString;
	v.val.string.len = len;
	v.val.string.val = (char *) val;
	(void) pushJsonbValue(st, WJB_VALUE, &v);
}

/* {"previous_status", "new_status", ["attempt", "will_retry", "error"]} */
static Datum
event_payload(const AcEventRow *ev, int outcome)
{
	JsonbParseState *st = NULL;
	JsonbValue	v;
	JsonbValue *res;
	const char *s;

	(void) pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	s = ac_status_name(ev->old_status);
	push_string(&st, "previous_status", s, strlen(s));
	s = ac_status_name(ev->new_status);
	push_string(&st, "new_status", s, strlen(s));
	if (ev->table == AC_T_ITEM_EXECUTION)
	{
		push_key(&st, "attempt");
		v.type = jbvNumeric;
		v.val.numeric = DatumGetNumeric(DirectFunctionCall1(int4_numeric,
															Int32GetDatum(ev->attempt)));
		(void) pushJsonbValue(&st, WJB_VALUE, &v);
		if (outcome == EV_FAILED)
		{
			push_key(&st, "will_retry");
			v.type = jbvBool;
			v.val.boolean = ev->new_status == AC_RETRYING;
			(void) pushJsonbValue(&st, WJB_VALUE, &v);
		}
		if (ev->error != NULL && outcome == EV_FAILED)
		{
			int			len = strlen(ev->error);

			len = pg_mbcharcliplen(ev->error, len, AC_EVENT_ERROR_MAX);
			push_string(&st, "error", ev->error, len);
		}
	}
	res = pushJsonbValue(&st, WJB_END_OBJECT, NULL);
	return JsonbPGetDatum(JsonbValueToJsonb(res));
}

/* Which event a status change writes, or -1 for none */
static int
event_type_of(const AcEventRow *ev, int *outcome)
{
	int			kind;

	switch (ev->table)
	{
		case AC_T_RUN:
			kind = EK_RUN;
			break;
		case AC_T_BATCH_EXECUTION:
			kind = EK_BATCH_EXECUTION;
			break;
		case AC_T_ITEM_EXECUTION:
			kind = EK_ITEM_EXECUTION;
			break;
		case AC_T_ORCHESTRATION_INSTANCE:
			kind = EK_ORCHESTRATION_INSTANCE;
			break;
		default:
			return -1;
	}

	if (ev->old_status == ev->new_status)
		return -1;
	switch (ev->new_status)
	{
		case AC_PROCESSING:
			*outcome = EV_STARTED;
			break;
		case AC_COMPLETED:
			*outcome = EV_COMPLETED;
			break;
		case AC_FAILED:
		case AC_RETRYING:
			*outcome = EV_FAILED;
			break;
		case AC_CANCELLED:
			*outcome = EV_CANCELLED;
			break;
		default:
			return -1;
	}

	if (kind == EK_ITEM_EXECUTION)
	{
		/* a cascade is reported by its run and batch events only */
		if (ev->in_cascade)
			return -1;
		if (ac_item_events_setting == AC_ITEM_EVENTS_NONE)
			return -1;
		if (ac_item_events_setting == AC_ITEM_EVENTS_FAILURES && *outcome != EV_FAILED)
			return -1;
	}
	return kind * EV_NOUTCOMES + *outcome;
}

static void
count_event(int type)
{
	int			level = GetCurrentTransactionNestLevel();

	if (level >= nlevels)
	{
		int			n = Max(8, level * 2);

		if (levels == NULL)
			levels = MemoryContextAllocZero(TopMemoryContext, n * sizeof(LevelCount));
		else
		{
			levels = repalloc(levels, n * sizeof(LevelCount));
			memset(levels + nlevels, 0, (n - nlevels) * sizeof(LevelCount));
		}
		nlevels = n;
	}
	levels[level].count++;
	levels[level].types |= (uint32) 1 << type;
}

void
ac_event_on_transition(const AcEventRow *ev)
{
	Datum		values[EVENT_MAX_ATTS];
	bool		nulls[EVENT_MAX_ATTS];
	Datum		automation_id;
	int			outcome = 0;
	int			type;
	bool		has_automation = ev->has_automation_id;

	type = event_type_of(ev, &outcome);
	if (type < 0)
		return;

	event_columns_ensure();
	automation_id = ev->automation_id;
	if (!has_automation && ev->has_run_id)
		has_automation = run_automation(ev->run_id, &automation_id);

	memset(nulls, true, sizeof(nulls));
#define SET(col, val) \
	do { values[event_att[col] - 1] = (val); nulls[event_att[col] - 1] = false; } while (0)
	SET(EC_EPOCH, Int32GetDatum(ac_event_epoch(true)));
	SET(EC_TXID, FullTransactionIdGetDatum(GetTopFullTransactionId()));
	SET(EC_CREATED_AT, TimestampTzGetDatum(ac_now()));
	SET(EC_EVENT_TYPE, CStringGetTextDatum(event_type_names[type]));
	if (has_automation)
		SET(EC_AUTOMATION_ID, automation_id);
	if (ev->has_run_id)
		SET(EC_RUN_ID, ev->run_id);
	SET(EC_ENTITY_ID, ev->entity_id);
	SET(EC_PAYLOAD, event_payload(ev, outcome));
#undef SET
	ac_direct_insert(AC_T_EVENT, values, nulls, lengthof(values));
	count_event(type);
}

/*
 * Is the notification queue more than half full? Then the doorbell stays
 * silent (the events are in the log all the same) and a WARNING says so,
 * at most once a second.
 */
static bool
queue_full(void)
{
	TimestampTz now = GetCurrentTimestamp();

	if (TimestampDifferenceExceeds(queue_checked_at, now, QUEUE_CHECK_INTERVAL_MS))
	{
		double		usage;

		usage = DatumGetFloat8(DirectFunctionCall1(pg_notification_queue_usage, (Datum) 0));
		queue_too_full = usage > 0.5;
		queue_checked_at = now;
	}
	if (queue_too_full &&
		TimestampDifferenceExceeds(queue_warned_at, now, QUEUE_WARN_INTERVAL_MS))
	{
		queue_warned_at = now;
		ereport(WARNING,
				(errmsg("automation_core skips NOTIFY on \"%s\": the notification queue is more than half full",
						AC_EVENT_CHANNEL),
				 errdetail("The events are written to automation_core.event all the same."),
				 errhint("A session listening on a channel is not reading its notifications; find it with pg_notification_queue_usage() and pg_stat_activity.")));
	}
	return queue_too_full;
}

/* The doorbell: {"txid": "…", "count": n, "types": [...]} */
static void
send_doorbell(LevelCount *lc)
{
	StringInfoData buf;
	bool		first = true;
	int			i;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	if (notify_txid)
		appendStringInfo(&buf, "\"txid\": \"" UINT64_FORMAT "\", ",
						 U64FromFullTransactionId(GetTopFullTransactionId()));
	appendStringInfo(&buf, "\"count\": " INT64_FORMAT ", \"types\": [", lc->count);
	for (i = 0; i < EV_NTYPES; i++)
	{
		if ((lc->types & ((uint32) 1 << i)) == 0)
			continue;
		appendStringInfo(&buf, "%s\"%s\"", first ? "" : ", ", event_type_names[i]);
		first = false;
	}
	appendStringInfoString(&buf, "]}");
	/* with every type and the largest numbers it is 465 bytes */
	Assert(buf.len < 512);
	Async_Notify(AC_EVENT_CHANNEL, buf.data);
	pfree(buf.data);
}

static void
levels_reset(void)
{
	if (levels != NULL)
		memset(levels, 0, nlevels * sizeof(LevelCount));
}

/*
 * A rollback may have undone what the caches learnt in this transaction: a
 * run's automation read from a row this transaction inserted, or an epoch it
 * registered. Drop them.
 */
static void
forget_uncommitted_caches(void)
{
	if (run_cache_dirty && run_cache != NULL)
	{
		hash_destroy(run_cache);
		run_cache = NULL;
	}
	run_cache_dirty = false;
	if (epoch_tentative)
		epoch_cached = -1;
	epoch_tentative = false;
}

static void
events_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			/* runs before PreCommit_Notify, which queues the NOTIFY */
			if (levels != NULL && nlevels > 1 && levels[1].count > 0 &&
				ac_notify_setting == AC_NOTIFY_COMMIT && !queue_full())
				send_doorbell(&levels[1]);
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PREPARE:
			levels_reset();
			run_cache_dirty = false;
			epoch_tentative = false;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			levels_reset();
			forget_uncommitted_caches();
			break;
		default:
			break;
	}
}

static void
events_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						SubTransactionId parentSubid, void *arg)
{
	int			level;

	if (event != SUBXACT_EVENT_COMMIT_SUB && event != SUBXACT_EVENT_ABORT_SUB)
		return;
	level = GetCurrentTransactionNestLevel();
	if (event == SUBXACT_EVENT_ABORT_SUB)
		forget_uncommitted_caches();
	if (levels == NULL || level >= nlevels || level < 2 || levels[level].count == 0)
		return;
	if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		levels[level - 1].count += levels[level].count;
		levels[level - 1].types |= levels[level].types;
	}
	levels[level].count = 0;
	levels[level].types = 0;
}

void
ac_events_init(void)
{
	DefineCustomBoolVariable("automation_core.notify_txid",
							 "Whether the NOTIFY payload carries the transaction id.",
							 "Only for tests whose output must not depend on transaction ids.",
							 &notify_txid,
							 true,
							 PGC_USERSET,
							 GUC_NOT_IN_SAMPLE | GUC_NO_SHOW_ALL,
							 NULL, NULL, NULL);
	RegisterXactCallback(events_xact_callback, NULL);
	RegisterSubXactCallback(events_subxact_callback, NULL);
}
