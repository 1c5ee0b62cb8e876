/*-------------------------------------------------------------------------
 *
 * api.c
 *		The execution API: start_run, claim, heartbeat, complete, fail,
 *		cancel_run, expire_leases.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "automation_core.h"
