/*-------------------------------------------------------------------------
 *
 * consumer.c
 *		The C side of reading the event log: the guard trigger keeping
 *		clients from writing automation_core.event, purge_events, and
 *		current_event_epoch, which next_events and ack_events use to tell
 *		this cluster's events (ordered by transaction id) from restored ones
 *		(all finished). register_consumer, next_events and ack_events
 *		themselves are SQL functions in the install script.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "automation_core.h"
#include "spi_util.h"
#include "events.h"

PG_FUNCTION_INFO_V1(ac_event_guard);
PG_FUNCTION_INFO_V1(ac_purge_events);
PG_FUNCTION_INFO_V1(ac_current_event_epoch);

/* Set while ac_event_log_exec runs, so that the guard trigger lets it pass */
static bool event_log_writing = false;

/*
 * Runs plan (no row limit: it writes) as automation_core's own write to the
 * event log, past the guard trigger that refuses every client's: the purge's
 * DELETE, the INSERT that registers an epoch.
 */
void
ac_event_log_exec(AcPlan *plan, Datum *values)
{
	event_log_writing = true;
	PG_TRY();
	{
		ac_plan_exec(plan, values, NULL, false, 0);
	}
	PG_FINALLY();
	{
		event_log_writing = false;
	}
	PG_END_TRY();
}

Datum
ac_event_guard(PG_FUNCTION_ARGS)
{
	TriggerData *td;
	const char *what;
	AcTable		table;

	td = ac_trigger_call(fcinfo, "event_guard",
						 AC_TRIG_BEFORE | AC_TRIG_STATEMENT |
						 AC_TRIG_INSERT | AC_TRIG_UPDATE | AC_TRIG_DELETE | AC_TRIG_TRUNCATE,
						 AC_TABLE_BIT(AC_T_EVENT) | AC_TABLE_BIT(AC_T_EVENT_EPOCH),
						 "before the statement on automation_core.event or event_epoch", &table);

	if (event_log_writing)
		return PointerGetDatum(NULL);

	if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
		what = "INSERT";
	else if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
		what = "UPDATE";
	else if (TRIGGER_FIRED_BY_DELETE(td->tg_event))
		what = "DELETE";
	else
		what = "TRUNCATE";
	if (table == AC_T_EVENT_EPOCH)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("automation_core.event_epoch is written by automation_core only"),
				 errdetail("%s on automation_core.event_epoch was refused.", what),
				 errhint("A cluster registers its epoch when it writes its first event; the order of the event log depends on it."),
				 errtableconstraint(td->tg_relation, "event_epoch_written_by_automation_core")));
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("automation_core.event is written by automation_core only"),
			 errdetail("%s on automation_core.event was refused.", what),
			 errhint("Events are written by status changes; remove old ones with automation_core.purge_events()."),
			 errtableconstraint(td->tg_relation, "event_append_only")));
	return PointerGetDatum(NULL);	/* keep compiler quiet */
}

/* purge_events(older_than interval) → bigint */
Datum
ac_purge_events(PG_FUNCTION_ARGS)
{
	static AcPlan purge_plan = {
		"DELETE FROM automation_core.event "
		"WHERE created_at < pg_catalog.now() OPERATOR(pg_catalog.-) $1",
		1, {INTERVALOID}
	};
	Datum		older_than = PG_GETARG_DATUM(0);
	Interval	zero;
	uint64		deleted;

	/*
	 * A negative age would reach into the future: every event. Compared as
	 * a whole, as intervals compare ('1 day -1 hour' is 23 hours).
	 */
	memset(&zero, 0, sizeof(zero));
	if (DatumGetBool(DirectFunctionCall2(interval_lt, older_than,
										 IntervalPGetDatum(&zero))))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("older_than must not be negative"),
				 errhint("Pass the age of the oldest events to keep, such as '30 days'.")));
	ac_spi_connect();
	ac_event_log_exec(&purge_plan, &older_than);
	deleted = SPI_processed;
	ac_spi_finish();
	PG_RETURN_INT64((int64) deleted);
}

/* current_event_epoch() → integer, NULL before this cluster wrote events */
Datum
ac_current_event_epoch(PG_FUNCTION_ARGS)
{
	int32		epoch = ac_event_epoch(false);

	if (epoch < 0)
		PG_RETURN_NULL();
	PG_RETURN_INT32(epoch);
}
