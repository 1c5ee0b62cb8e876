/*-------------------------------------------------------------------------
 *
 * automation_core.h
 *		Declarations shared by the C files of automation_core: statuses,
 *		the cached catalog of its tables, settings, and the hooks between
 *		triggers, roll-up, events and the execution API.
 *
 *-------------------------------------------------------------------------
 */
#ifndef AUTOMATION_CORE_H
#define AUTOMATION_CORE_H

#include "postgres.h"

#include "access/htup.h"
#include "access/tupdesc.h"
#include "fmgr.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "compat.h"

/* ExecutionStatus, in the order of the enum's labels */
typedef enum AcStatus
{
	AC_PENDING = 0,
	AC_PROCESSING,
	AC_RETRYING,
	AC_COMPLETED,
	AC_FAILED,
	AC_CANCELLED,
	AC_NSTATUS
} AcStatus;

#define AC_STATUS_INVALID ((AcStatus) -1)

/* The tables automation_core owns */
typedef enum AcTable
{
	AC_T_AUTOMATION = 0,
	AC_T_BATCH,
	AC_T_ITEM,
	AC_T_RUN,
	AC_T_BATCH_EXECUTION,
	AC_T_ITEM_EXECUTION,
	AC_T_HISTORY,
	AC_T_ENGINE,
	AC_T_ORCHESTRATION_INSTANCE,
	AC_T_RUN_ORCHESTRATION,
	AC_T_EVENT,
	AC_T_CONSUMER,
	AC_T_EVENT_EPOCH,
	AC_NTABLES
} AcTable;

#define AC_T_INVALID ((AcTable) -1)

/* Columns the C code reads or writes, looked up by name once per table */
typedef enum AcCol
{
	AC_C_ID = 0,
	AC_C_NAME,
	AC_C_TYPE,
	AC_C_CREATED_AT,
	AC_C_UPDATED_AT,
	AC_C_CREATED_BY,
	AC_C_UPDATED_BY,
	AC_C_VERSION,
	AC_C_IS_ACTIVE,
	AC_C_STATUS,
	AC_C_STARTED_AT,
	AC_C_FINISHED_AT,
	AC_C_AUTOMATION_ID,
	AC_C_BATCH_ID,
	AC_C_RUN_ID,
	AC_C_BATCH_EXECUTION_ID,
	AC_C_ITEM_ID,
	AC_C_RESULT_PAYLOAD,
	AC_C_ERROR_MESSAGE,
	AC_C_ATTEMPT_COUNT,
	AC_C_MAX_ATTEMPTS,
	AC_C_WORKER,
	AC_C_LEASE_EXPIRES_AT,
	AC_C_NEXT_ATTEMPT_AT,
	AC_C_ERROR_SUMMARY,
	AC_C_CANCELLATION_REASON,
	AC_C_DURATION_SECONDS,
	AC_C_ITEM_EXECUTION_ID,
	AC_C_PREVIOUS_STATUS,
	AC_C_NEW_STATUS,
	AC_C_CHANGED_AT,
	AC_C_QUEUE_POSITION,
	AC_NCOLS
} AcCol;

/* Indexes of item_execution the C code walks itself */
typedef enum AcIndex
{
	AC_I_OPEN_ITEMS = 0,		/* item_execution_open_idx */
	AC_I_READY,					/* item_execution_ready_idx */
	AC_I_RUN_READY,				/* item_execution_run_ready_idx */
	AC_NINDEXES
} AcIndex;

/* status.c */
extern bool ac_transition_allowed(AcTable table, AcStatus from, AcStatus to);
extern bool ac_status_is_terminal(AcStatus s);
extern bool ac_status_is_open(AcStatus s);
extern const char *ac_status_name(AcStatus s);

/*
 * trigger_call.c: the trigger data of a call from the trigger manager fired
 * as the function expects, else an error saying how it must be fired.
 * fired: the AC_TRIG_* bits of every timing, level and event allowed;
 * tables: the AC_TABLE_BIT of every table allowed, or 0 for any;
 * table: when not NULL, set to the table it was fired on.
 */
#define AC_TRIG_BEFORE		0x01
#define AC_TRIG_AFTER		0x02
#define AC_TRIG_ROW			0x04
#define AC_TRIG_STATEMENT	0x08
#define AC_TRIG_INSERT		0x10
#define AC_TRIG_UPDATE		0x20
#define AC_TRIG_DELETE		0x40
#define AC_TRIG_TRUNCATE	0x80
#define AC_TABLE_BIT(t)		((uint32) 1 << (t))
struct TriggerData;
extern struct TriggerData *ac_trigger_call(FunctionCallInfo fcinfo, const char *fname,
										   int fired, uint32 tables, const char *expected,
										   AcTable *table);

/* catalog.c: OIDs and attribute numbers, cached and invalidated */
extern Oid	ac_schema_oid(void);
extern Oid	ac_table_owner(AcTable t);
extern Oid	ac_table_oid(AcTable t);
extern Oid	ac_index_oid(AcIndex i);
struct RelationData;
extern bool ac_btree_keys(struct RelationData *index, struct RelationData *heap,
						  const AttrNumber *keys, int nkeys);
extern AcTable ac_table_of(Oid relid);
extern const char *ac_table_name(AcTable t);
extern AttrNumber ac_attnum(AcTable t, AcCol c);
extern Oid	ac_status_type_oid(void);
extern Datum ac_status_datum(AcStatus s);
extern AcStatus ac_status_of_datum(Datum d);
extern void ac_catalog_init(void);

/* rollup.c: lock a row version as read, not following a newer one */
struct RelationData;
struct TupleTableSlot;
struct SnapshotData;
extern bool ac_lock_as_seen(struct RelationData *heap, struct TupleTableSlot *slot,
							struct SnapshotData *snap, CommandId cid,
							struct TupleTableSlot *locked);

/* claim.c: the ready rows claim takes, found and locked */
struct ItemPointerData;
extern int	ac_claim_lock_ready(const pg_uuid_t *run_id, int max_items,
								struct ItemPointerData **tids);

/* bulk_insert.c: start_run's item executions, see there */
struct AcPlan;
extern bool ac_bulk_insert(AcTable t, struct AcPlan *source, Datum *args,
						   const char *nulls, const AttrNumber *attnums, int ncols,
						   const AcTable *parents, int nparents);
extern bool ac_bulk_vouched;

/*
 * direct_insert.c: rows written by automation_core itself. values/nulls
 * have n entries, by attribute number; columns beyond them are null.
 */
extern void ac_direct_insert(AcTable t, Datum *values, bool *nulls, int n);
extern void ac_direct_insert_buffered(AcTable t, Datum *values, bool *nulls, int n);
extern void ac_direct_insert_flush(AcTable t);
extern void ac_direct_insert_init(void);

/* guard.c */
#define AC_AUDIT_NAME_LEN 100	/* characters of created_by and updated_by */
extern char *ac_actor(void);
extern Datum ac_audit_name_datum(const char *s);
extern TimestampTz ac_now(void);

/*
 * history.c. buffered: the row may wait to be written with others, until
 * ac_direct_insert_flush(AC_T_HISTORY).
 */
extern void ac_history_append(Datum item_execution_id, AcStatus prev,
							  AcStatus next, const char *actor, bool buffered);

/*
 * rollup.c: work noted by row triggers and carried out at the end of the
 * statement, so that a statement changing many items checks each batch
 * execution once.
 */
typedef enum AcRollupKind
{
	AC_ROLLUP_BATCH_START,		/* batch execution may leave pending */
	AC_ROLLUP_BATCH_CHECK,		/* batch execution may be finished */
	AC_ROLLUP_RUN_START,		/* run may leave pending */
	AC_ROLLUP_RUN_CHECK,		/* run may be finished */
	AC_ROLLUP_DONE				/* taken by the drain; removed at its end */
} AcRollupKind;

extern void ac_rollup_note(AcRollupKind kind, Datum id);
extern bool ac_batch_lock_to_start(Datum id, bool may_wait, bool *locked);
extern void ac_rollup_run_pending(void);
extern void ac_cascade_cancel(AcTable kind, Datum id);
extern void ac_require_open_parents(AcTable child, Datum parents);

/* uuid_v7.c */
extern int	ac_uuid_cmp(const void *a, const void *b);
extern int	ac_cascade_depth;
extern void ac_rollup_init(void);

/* events.c: called by the row trigger for every status change */
typedef struct AcEventRow
{
	AcTable		table;			/* run, batch_execution, item_execution or
								 * orchestration_instance */
	AcStatus	old_status;
	AcStatus	new_status;
	Datum		entity_id;		/* the row's id (uuid) */
	Datum		run_id;			/* uuid, when has_run_id */
	bool		has_run_id;
	Datum		automation_id;	/* uuid, when has_automation_id */
	bool		has_automation_id;
	int32		attempt;		/* item executions: attempt_count */
	const char *error;			/* item executions: error_message or NULL */
	bool		in_cascade;		/* written by a cancellation cascade */
} AcEventRow;

extern void ac_event_on_transition(const AcEventRow *ev);
extern void ac_events_init(void);

/* payload.c */
extern void ac_payload_init(void);

/* settings (automation_core.c) */
extern char *ac_actor_setting;
extern int	ac_item_events_setting;
extern int	ac_notify_setting;
extern int	ac_retry_base_ms;
extern int	ac_retry_max_ms;
extern int	ac_default_lease_ms;

typedef enum AcItemEvents
{
	AC_ITEM_EVENTS_NONE,
	AC_ITEM_EVENTS_FAILURES,
	AC_ITEM_EVENTS_ALL
} AcItemEvents;

typedef enum AcNotify
{
	AC_NOTIFY_OFF,
	AC_NOTIFY_COMMIT
} AcNotify;

/* api.c */
extern Interval *ac_backoff_interval(int32 attempt_count);

#endif							/* AUTOMATION_CORE_H */
