/*-------------------------------------------------------------------------
 *
 * spi_util.h
 *		Kept SPI plans declared as static tables of SQL text and argument
 *		types, prepared on first use.
 *
 *-------------------------------------------------------------------------
 */
#ifndef AC_SPI_UTIL_H
#define AC_SPI_UTIL_H

#include "postgres.h"

#include "executor/spi.h"

#include "automation_core.h"

/* Stands for automation_core.execution_status, whose OID is not fixed */
#define AC_TYPE_STATUS ((Oid) 1)
#define AC_TYPE_MAX_ARGS 6

typedef struct AcPlan
{
	const char *sql;
	int			nargs;
	Oid			argtypes[AC_TYPE_MAX_ARGS];
	SPIPlanPtr	plan;
	Oid			status_type;	/* the enum's OID when prepared */
	int			cursor_options; /* CURSOR_OPT_* for SPI_prepare_cursor, or 0 */
} AcPlan;

extern void ac_spi_connect(void);
extern void ac_spi_finish(void);
extern void ac_spi_init(void);
extern SPIPlanPtr ac_plan_get(AcPlan *p);
extern int	ac_plan_exec(AcPlan *p, Datum *values, const char *nulls,
						 bool latest_snapshot, long limit);
extern int	ac_plan_exec_for_caller(AcPlan *p, Datum *values, const char *nulls,
									long limit);
extern int	ac_plan_exec_as_owner(AcPlan *p, AcTable owner_of, Datum *values,
								  const char *nulls, long limit);
extern Datum ac_spi_value(int row, int col, bool *isnull);

#endif							/* AC_SPI_UTIL_H */
