/*-------------------------------------------------------------------------
 *
 * events.c
 *		The durable event log and its doorbell.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "automation_core.h"

void
ac_event_on_transition(const AcEventRow *ev)
{
}

void
ac_events_init(void)
{
}
