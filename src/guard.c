/*-------------------------------------------------------------------------
 *
 * guard.c
 *		The BEFORE ROW trigger on every table with the common columns:
 *		audit fields, the version bump, trimmed names, and for the status
 *		tables the state machine, timestamps, frozen terminal rows, retry
 *		limits and the attempt counter. Status changes also append item
 *		history, write events and note roll-up work for the end of the
 *		statement.
 *
 *		Every rule here holds for any INSERT, UPDATE or COPY; the SQL
 *		functions of api.c rely on it rather than repeat it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/sysattr.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
#include "utils/uuid.h"

#include "automation_core.h"
#include "spi_util.h"

PG_FUNCTION_INFO_V1(ac_guard_row);
PG_FUNCTION_INFO_V1(ac_after_insert_statement);

/* Pending replacements for the new row */
typedef struct RowEdit
{
	int			n;
	int			cols[AC_NCOLS];
	Datum		vals[AC_NCOLS];
	bool		nulls[AC_NCOLS];
} RowEdit;

/* What the trigger is looking at */
typedef struct GuardCtx
{
	AcTable		table;
	Relation	rel;
	TupleDesc	desc;
	HeapTuple	newtup;			/* after apply_edits, the row to store */
	HeapTuple	oldtup;			/* NULL on INSERT */
	/* their columns, deformed once when first asked for (NULL until then) */
	Datum	   *newvals;
	bool	   *newnulls;
	Datum	   *oldvals;
	bool	   *oldnulls;
	const Bitmapset *set_cols;	/* columns in the UPDATE's SET clause */
	RowEdit		edit;
	TimestampTz now;
} GuardCtx;

static void guard_definition_move(GuardCtx *g);

static Oid	actor_cached_user = InvalidOid;

/* a role was renamed or dropped: look the name up again */
static void
actor_cache_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	actor_cached_user = InvalidOid;
}

/*
 * The actor: the setting when set, else the session user's name. The name
 * is looked up once per session user (and role change), not once per row.
 */
char *
ac_actor(void)
{
	static bool registered = false;
	static char cached_name[NAMEDATALEN];
	Oid			user;

	if (ac_actor_setting != NULL && ac_actor_setting[0] != '\0')
		return ac_actor_setting;
	if (!registered)
	{
		CacheRegisterSyscacheCallback(AUTHOID, actor_cache_callback, (Datum) 0);
		registered = true;
	}
	user = GetSessionUserId();
	if (user != actor_cached_user)
	{
		strlcpy(cached_name, GetUserNameFromId(user, false), NAMEDATALEN);
		actor_cached_user = user;
	}
	return cached_name;
}

TimestampTz
ac_now(void)
{
	return GetCurrentTransactionStartTimestamp();
}

static void
edit_set(RowEdit *e, AttrNumber att, Datum val, bool isnull)
{
	int			i;

	if (att == InvalidAttrNumber)
		return;
	for (i = 0; i < e->n; i++)
	{
		if (e->cols[i] == att)
		{
			e->vals[i] = val;
			e->nulls[i] = isnull;
			return;
		}
	}
	Assert(e->n < AC_NCOLS);
	e->cols[e->n] = att;
	e->vals[e->n] = val;
	e->nulls[e->n] = isnull;
	e->n++;
}

static inline AttrNumber
att(GuardCtx *g, AcCol c)
{
	return ac_attnum(g->table, c);
}

/*
 * Column a of tuple tup, from its deformed copy: the checks read a dozen
 * columns of each row, many of them after variable-length ones, which
 * heap_getattr would find by walking the tuple from the start every time.
 */
static void
deform(GuardCtx *g, HeapTuple tup, Datum **vals, bool **nulls)
{
	if (*vals != NULL)
		return;
	*vals = palloc(sizeof(Datum) * g->desc->natts);
	*nulls = palloc(sizeof(bool) * g->desc->natts);
	heap_deform_tuple(tup, g->desc, *vals, *nulls);
}

static Datum
column(GuardCtx *g, HeapTuple tup, Datum **vals, bool **nulls, AttrNumber a, bool *isnull)
{
	deform(g, tup, vals, nulls);
	*isnull = (*nulls)[a - 1];
	return (*vals)[a - 1];
}

static Datum
get_new(GuardCtx *g, AcCol c, bool *isnull)
{
	AttrNumber a = att(g, c);

	if (a == InvalidAttrNumber)
	{
		*isnull = true;
		return (Datum) 0;
	}
	return column(g, g->newtup, &g->newvals, &g->newnulls, a, isnull);
}

static Datum
get_old(GuardCtx *g, AcCol c, bool *isnull)
{
	AttrNumber a = att(g, c);

	if (a == InvalidAttrNumber || g->oldtup == NULL)
	{
		*isnull = true;
		return (Datum) 0;
	}
	return column(g, g->oldtup, &g->oldvals, &g->oldnulls, a, isnull);
}

/* Did the statement change column c (NULL-aware, byte-wise)? */
static bool
col_changed(GuardCtx *g, AcCol c)
{
	AttrNumber a = att(g, c);
	bool		n1,
				n2;
	Datum		d1,
				d2;
	Form_pg_attribute attr;

	if (a == InvalidAttrNumber || g->oldtup == NULL)
		return false;
	d1 = column(g, g->oldtup, &g->oldvals, &g->oldnulls, a, &n1);
	d2 = column(g, g->newtup, &g->newvals, &g->newnulls, a, &n2);
	if (n1 || n2)
		return n1 != n2;
	attr = TupleDescAttr(g->desc, a - 1);
	return !datumIsEqual(d1, d2, attr->attbyval, attr->attlen);
}

/*
 * Does the UPDATE name column c in its SET clause, even with the value the
 * row already has? (An ORM writes every column back.)
 */
static bool
stmt_sets(GuardCtx *g, AcCol c)
{
	AttrNumber	a = att(g, c);

	if (a == InvalidAttrNumber || g->set_cols == NULL)
		return false;
	return bms_is_member(a - FirstLowInvalidHeapAttributeNumber, g->set_cols);
}

static char *
uuid_text(Datum d)
{
	return DatumGetCString(DirectFunctionCall1(uuid_out, d));
}

static char *
row_id_text(GuardCtx *g)
{
	bool		isnull;
	Datum		id = get_new(g, AC_C_ID, &isnull);

	return isnull ? pstrdup("(no id)") : uuid_text(id);
}

/*
 * A created_by/updated_by value: varchar(100), so clipped to 100
 * characters, never inside one.
 */
Datum
ac_audit_name_datum(const char *s)
{
	int			len = strlen(s);

	len = pg_mbcharcliplen(s, len, AC_AUDIT_NAME_LEN);
	return PointerGetDatum(cstring_to_text_with_len(s, len));
}

static const char *
table_label(AcTable t)
{
	switch (t)
	{
		case AC_T_RUN:
			return "run";
		case AC_T_BATCH_EXECUTION:
			return "batch execution";
		case AC_T_ITEM_EXECUTION:
			return "item execution";
		case AC_T_ORCHESTRATION_INSTANCE:
			return "orchestration instance";
		default:
			return ac_table_name(t);
	}
}

static bool
is_status_table(AcTable t)
{
	return t == AC_T_RUN || t == AC_T_BATCH_EXECUTION ||
		t == AC_T_ITEM_EXECUTION || t == AC_T_ORCHESTRATION_INSTANCE;
}

static void
raise_transition(GuardCtx *g, const char *msg, const char *detail_fmt_status)
{
	char		conname[NAMEDATALEN];

	snprintf(conname, sizeof(conname), "%s_status_transition", ac_table_name(g->table));
	ereport(ERROR,
			(errcode(ERRCODE_CHECK_VIOLATION),
			 errmsg("%s", msg),
			 errdetail("%s %s, %s.", table_label(g->table), row_id_text(g),
					   detail_fmt_status),
			 errtableconstraint(g->rel, conname)));
}

static void
raise_retry_limit(GuardCtx *g, const char *msg, const char *detail, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_CHECK_VIOLATION),
			 errmsg("%s", msg),
			 errdetail("item execution %s: %s.", row_id_text(g), detail),
			 hint ? errhint("%s", hint) : 0,
			 errtableconstraint(g->rel, "item_execution_retry_limit")));
}

/*
 * Audit fields and the version. created_by/updated_by keep a value the
 * statement set; otherwise they get the actor.
 */
static char *
guard_audit(GuardCtx *g)
{
	bool		isnull;
	Datum		d;
	char	   *actor = NULL;
	char	   *updated_by;

	edit_set(&g->edit, att(g, AC_C_UPDATED_AT), TimestampTzGetDatum(g->now), false);

	if (g->oldtup == NULL)
	{
		edit_set(&g->edit, att(g, AC_C_CREATED_AT), TimestampTzGetDatum(g->now), false);
		edit_set(&g->edit, att(g, AC_C_VERSION), Int32GetDatum(1), false);
		(void) get_new(g, AC_C_CREATED_BY, &isnull);
		if (isnull)
		{
			actor = ac_actor();
			edit_set(&g->edit, att(g, AC_C_CREATED_BY), ac_audit_name_datum(actor), false);
		}
		d = get_new(g, AC_C_UPDATED_BY, &isnull);
		if (isnull)
		{
			if (actor == NULL)
				actor = ac_actor();
			edit_set(&g->edit, att(g, AC_C_UPDATED_BY), ac_audit_name_datum(actor), false);
			updated_by = actor;
		}
		else
			updated_by = TextDatumGetCString(d);
	}
	else
	{
		int32		version;

		d = get_old(g, AC_C_CREATED_AT, &isnull);
		edit_set(&g->edit, att(g, AC_C_CREATED_AT), d, isnull);
		d = get_old(g, AC_C_CREATED_BY, &isnull);
		edit_set(&g->edit, att(g, AC_C_CREATED_BY), d, isnull);
		d = get_old(g, AC_C_VERSION, &isnull);
		version = isnull ? 0 : DatumGetInt32(d);
		if (version == PG_INT32_MAX)
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("version of %s %s is out of range", table_label(g->table), row_id_text(g))));
		edit_set(&g->edit, att(g, AC_C_VERSION), Int32GetDatum(version + 1), false);

		d = get_new(g, AC_C_UPDATED_BY, &isnull);
		if (!isnull && (stmt_sets(g, AC_C_UPDATED_BY) || col_changed(g, AC_C_UPDATED_BY)))
			updated_by = TextDatumGetCString(d);
		else
		{
			updated_by = ac_actor();
			edit_set(&g->edit, att(g, AC_C_UPDATED_BY), ac_audit_name_datum(updated_by), false);
		}
	}
	return updated_by;
}

/* Trim white space around a name-like column; refuse it when empty. */
static void
guard_name(GuardCtx *g, AcCol c, const char *what)
{
	bool		isnull;
	Datum		d = get_new(g, c, &isnull);
	text	   *t;
	const char *s;
	int			len;
	int			start = 0;
	int			end;

	if (isnull || att(g, c) == InvalidAttrNumber)
		return;					/* NOT NULL reports it */
	t = DatumGetTextPP(d);
	s = VARDATA_ANY(t);
	len = VARSIZE_ANY_EXHDR(t);
	end = len;
	while (start < end && (s[start] == ' ' || s[start] == '\t' || s[start] == '\n' ||
						   s[start] == '\r' || s[start] == '\v' || s[start] == '\f'))
		start++;
	while (end > start && (s[end - 1] == ' ' || s[end - 1] == '\t' || s[end - 1] == '\n' ||
						   s[end - 1] == '\r' || s[end - 1] == '\v' || s[end - 1] == '\f'))
		end--;
	if (start == end)
	{
		char		conname[NAMEDATALEN];

		snprintf(conname, sizeof(conname), "%s_%s_not_empty", ac_table_name(g->table), what);
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("%s %s must not be empty", table_label(g->table), what),
				 errdetail("%s %s has an empty or blank %s.", table_label(g->table),
						   row_id_text(g), what),
				 errtableconstraint(g->rel, conname)));
	}
	if (start > 0 || end < len)
		edit_set(&g->edit, att(g, c),
				 PointerGetDatum(cstring_to_text_with_len(s + start, end - start)), false);
}

/*
 * A run can only be created for an active automation, also when it races
 * the automation's deactivation. A run insert holds a share lock on the
 * automation's starts, and reads is_active at its latest version after
 * taking it; a deactivation takes that lock exclusively. So a deactivation
 * waits for the runs being inserted, and an insert waits for a
 * deactivation in flight and then sees it. The lock is a lock of its own,
 * not the automation's row: a row lock strong enough to conflict with the
 * deactivating UPDATE would make two transactions that each start a run
 * and then update the automation deadlock.
 *
 * The tag is an advisory lock's, keyed by 64 bits of a hash of the id, with
 * a fourth field that user advisory locks (1 and 2) never have, so it
 * meets none of them.
 */
#define AC_STARTS_LOCK_KIND 0x4143	/* pg_locks.objsubid 16707 */

static void
lock_automation_starts(Datum automation_id, LOCKMODE mode)
{
	LOCKTAG		tag;
	uint64		h = hash_bytes_extended((const unsigned char *) DatumGetUUIDP(automation_id),
										UUID_LEN, 0);

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) (h >> 32), (uint32) h,
						 AC_STARTS_LOCK_KIND);
	(void) LockAcquire(&tag, mode, false, false);
}

/* A deactivation waits for the runs being started, and they for it */
static void
guard_deactivation(GuardCtx *g)
{
	bool		was_null;
	bool		now_null;
	Datum		was = get_old(g, AC_C_IS_ACTIVE, &was_null);
	Datum		now = get_new(g, AC_C_IS_ACTIVE, &now_null);

	if (!was_null && DatumGetBool(was) && (now_null || !DatumGetBool(now)))
		lock_automation_starts(get_old(g, AC_C_ID, &was_null), AccessExclusiveLock);
}

static AcPlan p_automation_active = {
	"SELECT is_active FROM automation_core.automation WHERE id = $1", 1, {UUIDOID}
};

static void
guard_run_insert(GuardCtx *g)
{
	bool		isnull;
	Datum		automation_id = get_new(g, AC_C_AUTOMATION_ID, &isnull);

	if (isnull)
		return;
	lock_automation_starts(automation_id, AccessShareLock);
	ac_spi_connect();
	ac_plan_exec_as_owner(&p_automation_active, AC_T_AUTOMATION, &automation_id, NULL, 1);
	if (SPI_processed == 1 && !DatumGetBool(ac_spi_value(0, 1, &isnull)))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot start a run of an inactive automation"),
				 errdetail("automation %s is inactive.", uuid_text(automation_id)),
				 errhint("Set is_active = true on the automation first.")));
	ac_spi_finish();
}

static TimestampTz
backoff_time(TimestampTz now, int32 attempt_count)
{
	int64		delay_ms = ac_retry_base_ms;
	int			i;

	for (i = 1; i < attempt_count && delay_ms < ac_retry_max_ms; i++)
		delay_ms *= 2;
	if (delay_ms > ac_retry_max_ms)
		delay_ms = ac_retry_max_ms;
	return now + delay_ms * INT64CONST(1000);
}

/*
 * The new row's status. NOT NULL is checked only after BEFORE ROW
 * triggers, so a null here gets the error the constraint would give.
 */
static AcStatus
new_status(GuardCtx *g)
{
	bool		isnull;
	Datum		d = get_new(g, AC_C_STATUS, &isnull);

	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("status of %s rows cannot be null", ac_table_name(g->table)),
				 errdetail("%s %s was given a null status.", table_label(g->table),
						   row_id_text(g)),
				 errtablecol(g->rel, att(g, AC_C_STATUS))));
	return ac_status_of_datum(d);
}

/*
 * The state machine on INSERT: new rows are pending, with no timestamps
 * and, for item executions, no attempts.
 */
static void
guard_status_insert(GuardCtx *g)
{
	bool		isnull;
	AcStatus	st;
	int32		attempts;

	st = new_status(g);
	if (st != AC_PENDING)
	{
		char	   *msg = psprintf("a new %s must be pending", table_label(g->table));

		raise_transition(g, msg, psprintf("inserted as %s", ac_status_name(st)));
	}
	(void) get_new(g, AC_C_STARTED_AT, &isnull);
	if (!isnull)
		raise_transition(g, psprintf("started_at of a new %s is set by automation_core",
									 table_label(g->table)), "started_at given");
	(void) get_new(g, AC_C_FINISHED_AT, &isnull);
	if (!isnull)
		raise_transition(g, psprintf("finished_at of a new %s is set by automation_core",
									 table_label(g->table)), "finished_at given");

	if (g->table == AC_T_ITEM_EXECUTION)
	{
		attempts = DatumGetInt32(get_new(g, AC_C_ATTEMPT_COUNT, &isnull));
		if (!isnull && attempts != 0)
			raise_retry_limit(g, "attempt_count is set by automation_core",
							  psprintf("inserted with attempt_count %d", attempts),
							  "Leave attempt_count out; it counts the attempts started.");
	}
	if (g->table == AC_T_RUN)
		guard_run_insert(g);
}

/*
 * An execution row keeps its id and never moves to another parent: a run
 * stays with its automation, a batch execution in its run and batch, an
 * item execution in its run, batch execution and item. Moving one would
 * let an open item land in a batch execution that has already ended, or
 * take history to another item; a new id would make another row of it,
 * one the roll-up has never seen start.
 */
static void
guard_parents(GuardCtx *g)
{
	static const AcCol parents[] = {AC_C_AUTOMATION_ID, AC_C_RUN_ID, AC_C_BATCH_ID,
	AC_C_BATCH_EXECUTION_ID, AC_C_ITEM_ID};
	int			i;

	if (col_changed(g, AC_C_ID))
	{
		char		conname[NAMEDATALEN];
		bool		isnull;

		snprintf(conname, sizeof(conname), "%s_id_fixed", ac_table_name(g->table));
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("id of %s rows cannot change", ac_table_name(g->table)),
				 errdetail("%s %s keeps the id it was created with.", table_label(g->table),
						   uuid_text(get_old(g, AC_C_ID, &isnull))),
				 errhint("Insert a new row instead."),
				 errtableconstraint(g->rel, conname)));
	}
	for (i = 0; i < lengthof(parents); i++)
	{
		if (col_changed(g, parents[i]))
		{
			char		conname[NAMEDATALEN];
			AttrNumber	a = att(g, parents[i]);

			snprintf(conname, sizeof(conname), "%s_parent_fixed", ac_table_name(g->table));
			ereport(ERROR,
					(errcode(ERRCODE_CHECK_VIOLATION),
					 errmsg("%s of %s rows cannot change", NameStr(TupleDescAttr(g->desc, a - 1)->attname),
							ac_table_name(g->table)),
					 errdetail("%s %s belongs where it was created.", table_label(g->table),
							   row_id_text(g)),
					 errhint("Start a new run instead of moving executions between runs or batches."),
					 errtableconstraint(g->rel, conname)));
		}
	}
}

/* Columns that a terminal row keeps forever, per table */
static bool
tracking_changed(GuardCtx *g)
{
	static const AcCol common[] = {AC_C_STATUS, AC_C_STARTED_AT, AC_C_FINISHED_AT};
	static const AcCol item[] = {AC_C_RESULT_PAYLOAD, AC_C_ERROR_MESSAGE,
		AC_C_ATTEMPT_COUNT, AC_C_MAX_ATTEMPTS, AC_C_WORKER, AC_C_LEASE_EXPIRES_AT,
	AC_C_NEXT_ATTEMPT_AT};
	static const AcCol run[] = {AC_C_ERROR_SUMMARY, AC_C_CANCELLATION_REASON};
	static const AcCol orch[] = {AC_C_DURATION_SECONDS};
	int			i;

	for (i = 0; i < lengthof(common); i++)
		if (col_changed(g, common[i]))
			return true;
	if (g->table == AC_T_ITEM_EXECUTION)
	{
		for (i = 0; i < lengthof(item); i++)
			if (col_changed(g, item[i]))
				return true;
	}
	else if (g->table == AC_T_RUN)
	{
		for (i = 0; i < lengthof(run); i++)
			if (col_changed(g, run[i]))
				return true;
	}
	else if (g->table == AC_T_ORCHESTRATION_INSTANCE)
	{
		for (i = 0; i < lengthof(orch); i++)
			if (col_changed(g, orch[i]))
				return true;
	}
	return false;
}

/* Retry limits and the attempt counter of an item execution UPDATE */
static void
guard_item_attempts(GuardCtx *g, AcStatus from, AcStatus to)
{
	bool		isnull;
	bool		max_null;
	int32		old_count;
	int32		count;
	int32		max_attempts;

	old_count = DatumGetInt32(get_old(g, AC_C_ATTEMPT_COUNT, &isnull));
	max_attempts = DatumGetInt32(get_new(g, AC_C_MAX_ATTEMPTS, &max_null));

	if (col_changed(g, AC_C_ATTEMPT_COUNT))
		raise_retry_limit(g, "attempt_count is set by automation_core",
						  psprintf("attempt_count is %d", old_count),
						  "Leave attempt_count out of the UPDATE; entering processing counts an attempt.");

	count = old_count;
	if (to == AC_PROCESSING && from != AC_PROCESSING)
	{
		if (!max_null && old_count >= max_attempts)
			raise_retry_limit(g, "item execution has no attempts left",
							  psprintf("%d of %d attempts used", old_count, max_attempts),
							  "Raise max_attempts to allow another attempt.");
		count = old_count + 1;
		edit_set(&g->edit, att(g, AC_C_ATTEMPT_COUNT), Int32GetDatum(count), false);
	}
	else if (to == AC_RETRYING && from != AC_RETRYING)
	{
		if (max_null)
			raise_retry_limit(g, "item execution without max_attempts cannot retry",
							  psprintf("status %s, max_attempts is null", ac_status_name(from)),
							  "Set max_attempts, or move the item to failed.");
		if (old_count >= max_attempts)
			raise_retry_limit(g, "item execution has no attempts left to retry",
							  psprintf("%d of %d attempts used", old_count, max_attempts),
							  "Move the item to failed, or raise max_attempts.");
	}
	else if (to == AC_RETRYING && col_changed(g, AC_C_MAX_ATTEMPTS))
	{
		/*
		 * A retrying item is waiting for its next attempt: taking that
		 * attempt away would leave it retrying for ever, and every claim
		 * that reaches it would fail.
		 */
		if (max_null || old_count == max_attempts)
			raise_retry_limit(g, "max_attempts of a retrying item execution must leave it an attempt",
							  max_null ? psprintf("status retrying, %d attempts used, max_attempts is null", old_count)
							  : psprintf("status retrying, %d of %d attempts used", old_count, max_attempts),
							  "To stop retrying the item, set its status to failed in the same UPDATE.");
	}

	if (!max_null && max_attempts < count)
		raise_retry_limit(g, "max_attempts cannot be below attempt_count",
						  psprintf("max_attempts %d, attempt_count %d", max_attempts, count),
						  NULL);
}

/* The state machine on UPDATE */
static void
guard_status_update(GuardCtx *g, AcStatus from, AcStatus to)
{
	bool		isnull;
	Datum		d;

	if (ac_status_is_terminal(from))
	{
		if (tracking_changed(g))
			raise_transition(g,
							 psprintf("%s is %s and can no longer change",
									  table_label(g->table), ac_status_name(from)),
							 psprintf("status %s", ac_status_name(from)));
		return;
	}

	if (from != to && !ac_transition_allowed(g->table, from, to))
		raise_transition(g,
						 psprintf("%s status cannot change from %s to %s",
								  table_label(g->table), ac_status_name(from), ac_status_name(to)),
						 psprintf("status %s", ac_status_name(from)));

	if (col_changed(g, AC_C_STARTED_AT) || col_changed(g, AC_C_FINISHED_AT))
		raise_transition(g,
						 psprintf("started_at and finished_at of %s rows are set by automation_core",
								  ac_table_name(g->table)),
						 psprintf("status %s", ac_status_name(from)));

	if (g->table == AC_T_ITEM_EXECUTION)
		guard_item_attempts(g, from, to);

	if (from == to)
		return;

	if (to == AC_PROCESSING)
	{
		(void) get_old(g, AC_C_STARTED_AT, &isnull);
		if (g->table == AC_T_ITEM_EXECUTION || isnull)
			edit_set(&g->edit, att(g, AC_C_STARTED_AT), TimestampTzGetDatum(g->now), false);
		if (g->table == AC_T_ITEM_EXECUTION)
		{
			(void) get_new(g, AC_C_LEASE_EXPIRES_AT, &isnull);
			if (isnull || !col_changed(g, AC_C_LEASE_EXPIRES_AT))
				edit_set(&g->edit, att(g, AC_C_LEASE_EXPIRES_AT),
						 TimestampTzGetDatum(g->now + (int64) ac_default_lease_ms * 1000),
						 false);
			edit_set(&g->edit, att(g, AC_C_NEXT_ATTEMPT_AT), (Datum) 0, true);
		}
	}
	else if (to == AC_RETRYING)
	{
		(void) get_new(g, AC_C_NEXT_ATTEMPT_AT, &isnull);
		if (isnull || !col_changed(g, AC_C_NEXT_ATTEMPT_AT))
		{
			int32		count = DatumGetInt32(get_old(g, AC_C_ATTEMPT_COUNT, &isnull));

			edit_set(&g->edit, att(g, AC_C_NEXT_ATTEMPT_AT),
					 TimestampTzGetDatum(backoff_time(g->now, count)), false);
		}
		edit_set(&g->edit, att(g, AC_C_LEASE_EXPIRES_AT), (Datum) 0, true);
	}
	else if (ac_status_is_terminal(to))
	{
		edit_set(&g->edit, att(g, AC_C_FINISHED_AT), TimestampTzGetDatum(g->now), false);
		if (g->table == AC_T_ITEM_EXECUTION)
		{
			edit_set(&g->edit, att(g, AC_C_LEASE_EXPIRES_AT), (Datum) 0, true);
			edit_set(&g->edit, att(g, AC_C_NEXT_ATTEMPT_AT), (Datum) 0, true);
		}
		if (g->table == AC_T_ORCHESTRATION_INSTANCE &&
			!col_changed(g, AC_C_DURATION_SECONDS))
		{
			d = get_old(g, AC_C_STARTED_AT, &isnull);
			if (isnull)
				edit_set(&g->edit, att(g, AC_C_DURATION_SECONDS), (Datum) 0, true);
			else
			{
				int64		secs = (g->now - DatumGetTimestampTz(d)) / USECS_PER_SEC;

				if (secs < 0)
					secs = 0;
				if (secs > PG_INT32_MAX)
					secs = PG_INT32_MAX;
				edit_set(&g->edit, att(g, AC_C_DURATION_SECONDS), Int32GetDatum((int32) secs), false);
			}
		}
	}
}

/*
 * Apply the edits: the new row becomes the row to store, formed from the
 * deformed columns the checks have read (heap_modify_tuple_by_cols would
 * deform the row once more), which then are its columns.
 */
static void
apply_edits(GuardCtx *g)
{
	HeapTuple	final;
	int			i;

	if (g->edit.n == 0)
		return;
	deform(g, g->newtup, &g->newvals, &g->newnulls);
	for (i = 0; i < g->edit.n; i++)
	{
		g->newvals[g->edit.cols[i] - 1] = g->edit.vals[i];
		g->newnulls[g->edit.cols[i] - 1] = g->edit.nulls[i];
	}
	final = heap_form_tuple(g->desc, g->newvals, g->newnulls);
	final->t_data->t_ctid = g->newtup->t_data->t_ctid;
	final->t_self = g->newtup->t_self;
	final->t_tableOid = g->newtup->t_tableOid;
	g->newtup = final;
	g->edit.n = 0;
}

/* Events and roll-up notes for a status change, from the final row */
static void
after_status_change(GuardCtx *g, AcStatus from, AcStatus to)
{
	AcEventRow	ev;
	bool		isnull;
	Datum		d;

	memset(&ev, 0, sizeof(ev));
	ev.table = g->table;
	ev.old_status = from;
	ev.new_status = to;
	ev.entity_id = get_new(g, AC_C_ID, &isnull);
	ev.in_cascade = ac_cascade_depth > 0;
	if (g->table == AC_T_RUN)
	{
		ev.run_id = ev.entity_id;
		ev.has_run_id = true;
		ev.automation_id = get_new(g, AC_C_AUTOMATION_ID, &isnull);
		ev.has_automation_id = !isnull;
	}
	else if (g->table != AC_T_ORCHESTRATION_INSTANCE)
	{
		ev.run_id = get_new(g, AC_C_RUN_ID, &isnull);
		ev.has_run_id = !isnull;
	}
	if (g->table == AC_T_ITEM_EXECUTION)
	{
		ev.attempt = DatumGetInt32(get_new(g, AC_C_ATTEMPT_COUNT, &isnull));
		d = get_new(g, AC_C_ERROR_MESSAGE, &isnull);
		ev.error = isnull ? NULL : TextDatumGetCString(d);
	}
	ac_event_on_transition(&ev);

	if (ac_cascade_depth > 0)
		return;
	if (g->table == AC_T_ITEM_EXECUTION)
	{
		d = get_new(g, AC_C_BATCH_EXECUTION_ID, &isnull);
		if (to == AC_PROCESSING)
			ac_rollup_note(AC_ROLLUP_BATCH_START, d);
		else if (ac_status_is_terminal(to))
			ac_rollup_note(AC_ROLLUP_BATCH_CHECK, d);
	}
	else if (g->table == AC_T_BATCH_EXECUTION && ev.has_run_id)
	{
		if (to == AC_PROCESSING)
			ac_rollup_note(AC_ROLLUP_RUN_START, ev.run_id);
		else if (ac_status_is_terminal(to))
			ac_rollup_note(AC_ROLLUP_RUN_CHECK, ev.run_id);
	}
}

Datum
ac_guard_row(PG_FUNCTION_ARGS)
{
	TriggerData *td;
	GuardCtx	g;
	char	   *actor;
	bool		isnull;
	AcStatus	from = AC_STATUS_INVALID;
	AcStatus	to = AC_STATUS_INVALID;
	bool		status_table;
	AcTable		table;

	td = ac_trigger_call(fcinfo, "guard_row", AC_TRIG_BEFORE | AC_TRIG_ROW | AC_TRIG_INSERT | AC_TRIG_UPDATE,
						 AC_TABLE_BIT(AC_T_AUTOMATION) | AC_TABLE_BIT(AC_T_BATCH) |
						 AC_TABLE_BIT(AC_T_ITEM) | AC_TABLE_BIT(AC_T_RUN) |
						 AC_TABLE_BIT(AC_T_BATCH_EXECUTION) | AC_TABLE_BIT(AC_T_ITEM_EXECUTION) |
						 AC_TABLE_BIT(AC_T_ENGINE) | AC_TABLE_BIT(AC_T_ORCHESTRATION_INSTANCE) |
						 AC_TABLE_BIT(AC_T_RUN_ORCHESTRATION),
						 "before INSERT or UPDATE on a table of automation_core with audit columns, for each row",
						 &table);

	memset(&g, 0, sizeof(g));
	g.table = table;
	g.rel = td->tg_relation;
	g.desc = RelationGetDescr(g.rel);
	g.now = ac_now();
	if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
		g.newtup = td->tg_trigtuple;
	else
	{
		g.newtup = td->tg_newtuple;
		g.oldtup = td->tg_trigtuple;
		g.set_cols = td->tg_updatedcols;
	}

	actor = guard_audit(&g);

	if (g.table == AC_T_AUTOMATION || g.table == AC_T_BATCH || g.table == AC_T_ENGINE)
		guard_name(&g, AC_C_NAME, "name");
	if (g.table == AC_T_ENGINE)
		guard_name(&g, AC_C_TYPE, "type");
	if ((g.table == AC_T_BATCH || g.table == AC_T_ITEM) && g.oldtup != NULL)
		guard_definition_move(&g);
	if (g.table == AC_T_AUTOMATION && g.oldtup != NULL)
		guard_deactivation(&g);

	status_table = is_status_table(g.table);
	if (status_table)
	{
		if (g.oldtup == NULL)
			guard_status_insert(&g);
		else
		{
			from = ac_status_of_datum(get_old(&g, AC_C_STATUS, &isnull));
			to = new_status(&g);
			guard_parents(&g);
			guard_status_update(&g, from, to);
		}
	}

	apply_edits(&g);

	if (status_table && g.oldtup != NULL && from != to)
	{
		if (g.table == AC_T_ITEM_EXECUTION)
			ac_history_append(get_new(&g, AC_C_ID, &isnull), from, to, actor, false);
		after_status_change(&g, from, to);
	}

	return PointerGetDatum(g.newtup);
}

/*
 * An execution runs its own automation's work: an item execution's item
 * is in the batch of its batch execution, a batch execution's batch in the
 * automation of its run. Checked per INSERT statement, over all its rows
 * at once: the items (batches) are locked FOR KEY SHARE first, the lock a
 * foreign key's check takes, which a move of one to another batch
 * (automation) conflicts with because batch_id (automation_id) is part of
 * a unique key; then they are read at their latest version. Rows
 * ac_bulk_insert writes for start_run are paired by start_run's query,
 * which takes the same locks (ac_bulk_vouched).
 *
 * The other side: a batch (item) that has executions stays in its
 * automation (batch); moved, it would leave them running another
 * automation's work. The UPDATE changes a column of a unique key, so it
 * holds the row's strongest lock, which an INSERT of an execution waits
 * for and which waits for the inserts in flight: an execution not seen
 * by the move cannot come.
 *
 * One description per kind of execution serves both checks.
 */
typedef struct SameWork
{
	AcTable		execution;		/* item_execution, batch_execution */
	AcCol		work_col;		/* its item_id, batch_id */
	AcCol		parent_col;		/* its batch_execution_id, run_id */
	AcTable		work;			/* item, batch */
	AcCol		work_parent_col;	/* the item's batch_id, the batch's automation_id */
	AcPlan		lock_work;		/* $1 uuid[] of work: lock FOR KEY SHARE */
	AcPlan		elsewhere;		/* $1 work, $2 parents: a pair that does not match */
	AcPlan		has_executions; /* $1 work: has it any execution? */
	const char *insert_msg;
	const char *insert_detail;	/* work, parent, the parent's work */
	const char *move_msg;
	const char *move_hint;
} SameWork;

static SameWork same_work[] = {
	{
		AC_T_ITEM_EXECUTION, AC_C_ITEM_ID, AC_C_BATCH_EXECUTION_ID,
		AC_T_ITEM, AC_C_BATCH_ID,
		{"SELECT 1 FROM automation_core.item "
		 "WHERE id OPERATOR(pg_catalog.=) ANY ($1) ORDER BY id FOR KEY SHARE",
		1, {UUIDARRAYOID}},
		{"SELECT n.w, be.id, be.batch_id "
		 "FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2)) AS n(w, p) "
		 "JOIN automation_core.item i ON i.id OPERATOR(pg_catalog.=) n.w "
		 "JOIN automation_core.batch_execution be ON be.id OPERATOR(pg_catalog.=) n.p "
		 "WHERE i.batch_id IS DISTINCT FROM be.batch_id LIMIT 1",
		2, {UUIDARRAYOID, UUIDARRAYOID}},
		{"SELECT 1 FROM automation_core.item_execution "
		 "WHERE item_id OPERATOR(pg_catalog.=) $1 LIMIT 1",
		1, {UUIDOID}},
		"an item execution must run an item of its batch execution's batch",
		"Item %s is not in the batch of batch execution %s (batch %s).",
		"an item with item executions cannot move to another batch",
		"Create the item in the other batch instead."
	},
	{
		AC_T_BATCH_EXECUTION, AC_C_BATCH_ID, AC_C_RUN_ID,
		AC_T_BATCH, AC_C_AUTOMATION_ID,
		{"SELECT 1 FROM automation_core.batch "
		 "WHERE id OPERATOR(pg_catalog.=) ANY ($1) ORDER BY id FOR KEY SHARE",
		1, {UUIDARRAYOID}},
		{"SELECT n.w, r.id, r.automation_id "
		 "FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2)) AS n(w, p) "
		 "JOIN automation_core.batch b ON b.id OPERATOR(pg_catalog.=) n.w "
		 "JOIN automation_core.run r ON r.id OPERATOR(pg_catalog.=) n.p "
		 "WHERE b.automation_id IS DISTINCT FROM r.automation_id LIMIT 1",
		2, {UUIDARRAYOID, UUIDARRAYOID}},
		{"SELECT 1 FROM automation_core.batch_execution "
		 "WHERE batch_id OPERATOR(pg_catalog.=) $1 LIMIT 1",
		1, {UUIDOID}},
		"a batch execution must run a batch of its run's automation",
		"Batch %s is not in the automation of run %s (automation %s).",
		"a batch with batch executions cannot move to another automation",
		"Create the batch under the other automation instead."
	},
};

static SameWork *
same_work_of(AcTable t)
{
	int			i;

	for (i = 0; i < lengthof(same_work); i++)
		if (same_work[i].execution == t || same_work[i].work == t)
			return &same_work[i];
	elog(ERROR, "no same-work rule for automation_core.%s", ac_table_name(t));
	return NULL;				/* keep the compiler quiet */
}

/* The INSERT's side: works (items, batches) and the parents paired with them */
static void
require_same_work(Relation rel, SameWork *sw, Datum works, Datum parents)
{
	Datum		args[2] = {works, parents};
	bool		isnull;

	ac_spi_connect();
	ac_plan_exec_as_owner(&sw->lock_work, sw->work, &works, NULL, 0);
	ac_plan_exec_as_owner(&sw->elsewhere, sw->work, args, NULL, 1);
	if (SPI_processed > 0)
	{
		char	   *what = uuid_text(ac_spi_value(0, 1, &isnull));
		char	   *parent = uuid_text(ac_spi_value(0, 2, &isnull));
		Datum		d = ac_spi_value(0, 3, &isnull);
		char		conname[NAMEDATALEN];

		snprintf(conname, sizeof(conname), "%s_same_work", ac_table_name(sw->execution));
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("%s", sw->insert_msg),
				 errdetail(sw->insert_detail, what, parent, isnull ? "none" : uuid_text(d)),
				 errhint("start_run makes a run's executions itself."),
				 errtableconstraint(rel, conname)));
	}
	ac_spi_finish();
}

/* The move's side, from the row trigger of batch and item */
static void
guard_definition_move(GuardCtx *g)
{
	SameWork   *sw = same_work_of(g->table);
	bool		isnull;
	Datum		id;
	int			found;

	if (!col_changed(g, sw->work_parent_col))
		return;
	id = get_old(g, AC_C_ID, &isnull);
	ac_spi_connect();
	ac_plan_exec_as_owner(&sw->has_executions, sw->execution, &id, NULL, 1);
	found = SPI_processed;
	ac_spi_finish();
	if (found > 0)
	{
		char		conname[NAMEDATALEN];

		snprintf(conname, sizeof(conname), "%s_parent_fixed", ac_table_name(g->table));
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("%s", sw->move_msg),
				 errdetail("%s %s has executions, which run it where it is.",
						   ac_table_name(g->table), uuid_text(id)),
				 errhint("%s", sw->move_hint),
				 errtableconstraint(g->rel, conname)));
	}
}

/*
 * AFTER INSERT ... FOR EACH STATEMENT on item_execution and batch_execution,
 * with the inserted rows as a transition table. Only rows that were really
 * inserted are in it (not those an ON CONFLICT clause skipped), and reading
 * it once costs less than an AFTER ROW event per row.
 *
 * One pass gives every new item execution its first history row (NULL ->
 * pending) and collects the parents the rows joined (batch executions, or
 * runs), which must not have ended: see ac_require_open_parents. Rows come
 * grouped by parent, so a parent repeated from the row before is skipped.
 */
Datum
ac_after_insert_statement(PG_FUNCTION_ARGS)
{
	TriggerData *td;
	AcTable		table;
	TupleTableSlot *slot;
	AttrNumber	id_att;
	AttrNumber	status_att;
	AttrNumber	by_att;
	AttrNumber	parent_att;
	AttrNumber	work_att;
	ArrayBuildState *parents = NULL;
	ArrayBuildState *works = NULL;	/* per row: item or batch */
	ArrayBuildState *work_parents = NULL;	/* per row: batch execution or run */
	SameWork   *sw;
	bool		check_work;
	pg_uuid_t	last;
	char	   *actor = NULL;
	MemoryContext outercxt = CurrentMemoryContext;
	MemoryContext rowcxt;

	td = ac_trigger_call(fcinfo, "after_insert_statement",
						 AC_TRIG_AFTER | AC_TRIG_STATEMENT | AC_TRIG_INSERT,
						 AC_TABLE_BIT(AC_T_ITEM_EXECUTION) | AC_TABLE_BIT(AC_T_BATCH_EXECUTION),
						 "after INSERT on item_execution or batch_execution, for each statement, with a NEW TABLE",
						 &table);
	if (td->tg_newtable == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("after_insert_statement: must be fired with a NEW TABLE")));

	slot = MakeSingleTupleTableSlot(RelationGetDescr(td->tg_relation), &TTSOpsMinimalTuple);
	sw = same_work_of(table);
	parent_att = ac_attnum(table, sw->parent_col);
	work_att = ac_attnum(table, sw->work_col);
	/* start_run's item executions are paired by its own query */
	check_work = !(table == AC_T_ITEM_EXECUTION && ac_bulk_vouched);
	id_att = ac_attnum(table, AC_C_ID);
	status_att = ac_attnum(table, AC_C_STATUS);
	by_att = ac_attnum(table, AC_C_CREATED_BY);
	rowcxt = AllocSetContextCreate(outercxt, "automation_core inserted rows",
								   ALLOCSET_SMALL_SIZES);
	tuplestore_rescan(td->tg_newtable);
	/* the first history rows are written a heap page at a time */
	while (tuplestore_gettupleslot(td->tg_newtable, true, false, slot))
	{
		bool		isnull;
		bool		parent_null;
		Datum		parent;

		MemoryContextSwitchTo(rowcxt);
		parent = slot_getattr(slot, parent_att, &parent_null);
		if (!parent_null && (parents == NULL ||
							 memcmp(&last, DatumGetUUIDP(parent), sizeof(pg_uuid_t)) != 0))
		{
			memcpy(&last, DatumGetUUIDP(parent), sizeof(pg_uuid_t));
			parents = accumArrayResult(parents, parent, false, UUIDOID, outercxt);
		}
		if (check_work && !parent_null)
		{
			bool		work_null;
			Datum		work = slot_getattr(slot, work_att, &work_null);

			if (!work_null)
			{
				works = accumArrayResult(works, work, false, UUIDOID, outercxt);
				work_parents = accumArrayResult(work_parents, parent, false, UUIDOID, outercxt);
			}
		}
		if (table == AC_T_ITEM_EXECUTION)
		{
			Datum		id = slot_getattr(slot, id_att, &isnull);
			AcStatus	st = ac_status_of_datum(slot_getattr(slot, status_att, &isnull));
			Datum		by = slot_getattr(slot, by_att, &isnull);

			if (isnull && actor == NULL)
			{
				MemoryContextSwitchTo(outercxt);
				actor = ac_actor();
				MemoryContextSwitchTo(rowcxt);
			}
			ac_history_append(id, AC_STATUS_INVALID, st,
							  isnull ? actor : TextDatumGetCString(by), true);
		}
		MemoryContextSwitchTo(outercxt);
		MemoryContextReset(rowcxt);
	}
	ac_direct_insert_flush(AC_T_HISTORY);
	ExecDropSingleTupleTableSlot(slot);
	MemoryContextDelete(rowcxt);
	if (parents != NULL)
		ac_require_open_parents(table, makeArrayResult(parents, outercxt));
	if (works != NULL)
		require_same_work(td->tg_relation, sw, makeArrayResult(works, outercxt),
						  makeArrayResult(work_parents, outercxt));
	return PointerGetDatum(NULL);
}
