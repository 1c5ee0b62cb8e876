/*-------------------------------------------------------------------------
 *
 * events.h
 *		Declarations shared by events.c (writing the event log and the
 *		doorbell) and consumer.c (the functions that read and purge it).
 *
 *-------------------------------------------------------------------------
 */
#ifndef AC_EVENTS_H
#define AC_EVENTS_H

#include "postgres.h"

/* NOTIFY channel of the doorbell */
#define AC_EVENT_CHANNEL "automation_core_events"

/* error text kept in an event payload, in characters */
#define AC_EVENT_ERROR_MAX 500

/*
 * The epoch this cluster writes events under. With create = false, returns
 * -1 when the cluster has none yet (or none that is the newest).
 */
extern int32 ac_event_epoch(bool create);

/* consumer.c: a write of automation_core's own to the guarded event log */
struct AcPlan;
extern void ac_event_log_exec(struct AcPlan *plan, Datum *values);

#endif							/* AC_EVENTS_H */
