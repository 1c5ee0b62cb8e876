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

/* Set while purge_events deletes, so that the guard trigger lets it pass */
extern bool ac_event_purging;
extern bool ac_epoch_registering;

#endif							/* AC_EVENTS_H */
