/*-------------------------------------------------------------------------
 *
 * trigger_call.c
 *		Every trigger function of automation_core first checks that the
 *		trigger manager called it, fired the way the function was written
 *		for (timing, level, event, table), and refuses anything else: a
 *		trigger created by hand on the wrong table or event must fail
 *		loudly, not do half of its work.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/trigger.h"
#include "fmgr.h"
#include "utils/rel.h"

#include "automation_core.h"

TriggerData *
ac_trigger_call(FunctionCallInfo fcinfo, const char *fname, int fired, uint32 tables,
				const char *expected, AcTable *table)
{
	TriggerData *td;
	TriggerEvent ev;
	int			event;
	AcTable		t;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s: not called by trigger manager", fname)));
	td = (TriggerData *) fcinfo->context;
	ev = td->tg_event;
	switch (ev & TRIGGER_EVENT_OPMASK)
	{
		case TRIGGER_EVENT_INSERT:
			event = AC_TRIG_INSERT;
			break;
		case TRIGGER_EVENT_DELETE:
			event = AC_TRIG_DELETE;
			break;
		case TRIGGER_EVENT_UPDATE:
			event = AC_TRIG_UPDATE;
			break;
		default:
			event = AC_TRIG_TRUNCATE;
			break;
	}
	t = ac_table_of(RelationGetRelid(td->tg_relation));
	if (!(fired & (TRIGGER_FIRED_BEFORE(ev) ? AC_TRIG_BEFORE :
				   TRIGGER_FIRED_AFTER(ev) ? AC_TRIG_AFTER : 0)) ||
		!(fired & (TRIGGER_FIRED_FOR_ROW(ev) ? AC_TRIG_ROW : AC_TRIG_STATEMENT)) ||
		!(fired & event) ||
		(tables != 0 && (t == AC_T_INVALID || !(tables & AC_TABLE_BIT(t)))))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s: must be fired %s", fname, expected)));
	if (table != NULL)
		*table = t;
	return td;
}
