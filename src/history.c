/*-------------------------------------------------------------------------
 *
 * history.c
 *		The append-only item_state_history: rows written by automation_core
 *		only, and a trigger refusing every client INSERT, UPDATE, DELETE or
 *		TRUNCATE. A history row may only disappear through the cascade of
 *		deleting its item execution.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/rel.h"
#include "utils/uuid.h"

#include "automation_core.h"
#include "spi_util.h"

PG_FUNCTION_INFO_V1(ac_history_guard);

void
ac_history_append(Datum item_execution_id, AcStatus prev, AcStatus next,
				  const char *actor, bool buffered)
{
	Datum		values[16];
	bool		nulls[16];
	TimestampTz now = ac_now();

	memset(nulls, true, sizeof(nulls));
#define SET(col, val) \
	do { \
		AttrNumber a_ = ac_attnum(AC_T_HISTORY, col); \
		if (a_ != InvalidAttrNumber && a_ <= lengthof(values)) \
		{ values[a_ - 1] = (val); nulls[a_ - 1] = false; } \
	} while (0)

	SET(AC_C_ITEM_EXECUTION_ID, item_execution_id);
	if (prev != AC_STATUS_INVALID)
		SET(AC_C_PREVIOUS_STATUS, ac_status_datum(prev));
	SET(AC_C_NEW_STATUS, ac_status_datum(next));
	SET(AC_C_CHANGED_AT, TimestampTzGetDatum(now));
	SET(AC_C_CREATED_AT, TimestampTzGetDatum(now));
	SET(AC_C_CREATED_BY, ac_audit_name_datum(actor));
#undef SET
	if (buffered)
		ac_direct_insert_buffered(AC_T_HISTORY, values, nulls, lengthof(values));
	else
		ac_direct_insert(AC_T_HISTORY, values, nulls, lengthof(values));
}

/*
 * Is the item execution still there for this statement? Cached for one
 * command, so a cascade deleting many history rows of one item execution
 * looks once.
 */
static bool
item_execution_exists(Datum id)
{
	static AcPlan p_exists = {
		"SELECT 1 FROM automation_core.item_execution WHERE id = $1", 1, {UUIDOID}
	};
	static TransactionId last_xid = InvalidTransactionId;
	static CommandId last_cid = InvalidCommandId;
	static pg_uuid_t last_gone;
	TransactionId xid = GetTopTransactionIdIfAny();
	CommandId	cid = GetCurrentCommandId(false);
	pg_uuid_t  *u = DatumGetUUIDP(id);
	bool		exists;

	if (xid == last_xid && cid == last_cid && TransactionIdIsValid(xid) &&
		memcmp(u, &last_gone, sizeof(pg_uuid_t)) == 0)
		return false;

	ac_spi_connect();
	ac_plan_exec(&p_exists, &id, NULL, false, 1);
	exists = SPI_processed > 0;
	ac_spi_finish();

	if (!exists)
	{
		last_xid = xid;
		last_cid = cid;
		memcpy(&last_gone, u, sizeof(pg_uuid_t));
	}
	return exists;
}

static void
refuse(Relation rel, const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("item_state_history is append-only"),
			 errdetail("%s refused: history rows are written by automation_core only.", what),
			 errhint("History rows are added by status changes of item executions and removed only by deleting the item execution."),
			 rel ? errtableconstraint(rel, "item_state_history_append_only") : 0));
}

Datum
ac_history_guard(PG_FUNCTION_ARGS)
{
	TriggerData *td;

	td = ac_trigger_call(fcinfo, "history_guard",
						 AC_TRIG_BEFORE | AC_TRIG_ROW | AC_TRIG_STATEMENT |
						 AC_TRIG_INSERT | AC_TRIG_UPDATE | AC_TRIG_DELETE | AC_TRIG_TRUNCATE,
						 AC_TABLE_BIT(AC_T_HISTORY), "before the change on automation_core.item_state_history",
						 NULL);

	if (TRIGGER_FIRED_BY_TRUNCATE(td->tg_event))
		refuse(td->tg_relation, "TRUNCATE");
	if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
		refuse(td->tg_relation, "INSERT");
	if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
		refuse(td->tg_relation, "UPDATE");
	if (TRIGGER_FIRED_BY_DELETE(td->tg_event))
	{
		bool		isnull;
		Datum		parent;

		parent = heap_getattr(td->tg_trigtuple,
							  ac_attnum(AC_T_HISTORY, AC_C_ITEM_EXECUTION_ID),
							  RelationGetDescr(td->tg_relation), &isnull);
		if (isnull || item_execution_exists(parent))
			refuse(td->tg_relation, "DELETE");
		return PointerGetDatum(td->tg_trigtuple);
	}
	return PointerGetDatum(NULL);
}
