/*-------------------------------------------------------------------------
 *
 * automation_core.c
 *		Module entry point: settings and the one-time set-up of the other
 *		files' caches and callbacks.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "fmgr.h"
#include "utils/guc.h"

#include "automation_core.h"
#include "spi_util.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

char	   *ac_actor_setting = NULL;
int			ac_item_events_setting = AC_ITEM_EVENTS_FAILURES;
int			ac_notify_setting = AC_NOTIFY_COMMIT;
int			ac_retry_base_ms = 10000;
int			ac_retry_max_ms = 3600000;
int			ac_default_lease_ms = 300000;

static const struct config_enum_entry item_events_options[] = {
	{"none", AC_ITEM_EVENTS_NONE, false},
	{"failures", AC_ITEM_EVENTS_FAILURES, false},
	{"all", AC_ITEM_EVENTS_ALL, false},
	{NULL, 0, false}
};

static const struct config_enum_entry notify_options[] = {
	{"off", AC_NOTIFY_OFF, false},
	{"commit", AC_NOTIFY_COMMIT, false},
	{NULL, 0, false}
};

void
_PG_init(void)
{
	DefineCustomStringVariable("automation_core.actor",
							   "Who is acting, for created_by, updated_by and item history.",
							   "When empty, the session user is recorded.",
							   &ac_actor_setting,
							   "",
							   PGC_USERSET,
							   0,
							   NULL, NULL, NULL);

	DefineCustomEnumVariable("automation_core.item_events",
							 "Which item execution changes write events: none, failures or all.",
							 NULL,
							 &ac_item_events_setting,
							 AC_ITEM_EVENTS_FAILURES,
							 item_events_options,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomEnumVariable("automation_core.notify",
							 "Whether a transaction that wrote events sends one NOTIFY at commit.",
							 NULL,
							 &ac_notify_setting,
							 AC_NOTIFY_COMMIT,
							 notify_options,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("automation_core.retry_base_delay",
							"First retry delay of the exponential backoff.",
							"Attempt n waits retry_base_delay * 2^(n-1), at most retry_max_delay.",
							&ac_retry_base_ms,
							10000, 0, INT_MAX,
							PGC_USERSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("automation_core.retry_max_delay",
							"Longest retry delay of the exponential backoff.",
							NULL,
							&ac_retry_max_ms,
							3600000, 0, INT_MAX,
							PGC_USERSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("automation_core.default_lease",
							"Lease given to an item execution that enters processing without one.",
							NULL,
							&ac_default_lease_ms,
							300000, 1, INT_MAX,
							PGC_USERSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

#if PG_VERSION_NUM >= 150000
	MarkGUCPrefixReserved("automation_core");
#else
	EmitWarningsOnPlaceholders("automation_core");
#endif

	ac_catalog_init();
	ac_spi_init();
	ac_direct_insert_init();
	ac_rollup_init();
	ac_events_init();
	ac_payload_init();
}
