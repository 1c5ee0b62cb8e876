/*-------------------------------------------------------------------------
 *
 * status.c
 *		The ExecutionStatus state machine: which transitions are allowed,
 *		which statuses are terminal, and the SQL helpers over them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"

#include "automation_core.h"

PG_FUNCTION_INFO_V1(ac_can_transition);
PG_FUNCTION_INFO_V1(ac_is_terminal);

static const char *const status_names[AC_NSTATUS] = {
	"pending", "processing", "retrying", "completed", "failed", "cancelled"
};

/* allowed[from][to] */
static const bool allowed[AC_NSTATUS][AC_NSTATUS] = {
	/* pending */
	{false, true, false, false, false, true},
	/* processing */
	{false, false, true, true, true, true},
	/* retrying */
	{false, true, false, false, true, true},
	/* completed */
	{false, false, false, false, false, false},
	/* failed */
	{false, false, false, false, false, false},
	/* cancelled */
	{false, false, false, false, false, false},
};

const char *
ac_status_name(AcStatus s)
{
	if (s < 0 || s >= AC_NSTATUS)
		return "unknown";
	return status_names[s];
}

bool
ac_status_is_terminal(AcStatus s)
{
	return s == AC_COMPLETED || s == AC_FAILED || s == AC_CANCELLED;
}

bool
ac_status_is_open(AcStatus s)
{
	return s == AC_PENDING || s == AC_PROCESSING || s == AC_RETRYING;
}

/*
 * The transition table; retrying is for item executions
 * only, so every other table refuses to enter it.
 */
bool
ac_transition_allowed(AcTable table, AcStatus from, AcStatus to)
{
	if (from < 0 || from >= AC_NSTATUS || to < 0 || to >= AC_NSTATUS)
		return false;
	if (to == AC_RETRYING && table != AC_T_ITEM_EXECUTION &&
		table != AC_T_INVALID)
		return false;
	return allowed[from][to];
}

Datum
ac_can_transition(PG_FUNCTION_ARGS)
{
	AcStatus	from = ac_status_of_datum(PG_GETARG_DATUM(0));
	AcStatus	to = ac_status_of_datum(PG_GETARG_DATUM(1));

	PG_RETURN_BOOL(ac_transition_allowed(AC_T_INVALID, from, to));
}

Datum
ac_is_terminal(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(ac_status_is_terminal(ac_status_of_datum(PG_GETARG_DATUM(0))));
}
