/*-------------------------------------------------------------------------
 *
 * jsonschema_sql.c
 *		SQL entry points of the JSON Schema validator:
 *		jsonschema_is_valid, jsonschema_errors and jsonschema_check.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "jsonschema.h"

/* jsonschema_errors reports at most this many failures */
#define JS_MAX_REPORTED_ERRORS 1000

PG_FUNCTION_INFO_V1(ac_jsonschema_is_valid);
PG_FUNCTION_INFO_V1(ac_jsonschema_errors);
PG_FUNCTION_INFO_V1(ac_jsonschema_check);

/* jsonschema_is_valid(schema jsonb, instance jsonb) returns boolean */
Datum
ac_jsonschema_is_valid(PG_FUNCTION_ARGS)
{
	Jsonb	   *schema = PG_GETARG_JSONB_P(0);
	Jsonb	   *instance = PG_GETARG_JSONB_P(1);
	JsSchema   *s = js_get_cached_fn(fcinfo->flinfo, schema);

	PG_RETURN_BOOL(js_validate(s, instance, NULL, 0));
}

/*
 * jsonschema_errors(schema jsonb, instance jsonb)
 *		returns table (instance_path text, schema_path text, message text)
 */
Datum
ac_jsonschema_errors(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Jsonb	   *schema = PG_GETARG_JSONB_P(0);
	Jsonb	   *instance = PG_GETARG_JSONB_P(1);
	JsSchema   *s = js_get_cached(schema);
	List	   *errors = NIL;
	ListCell   *lc;

#if PG_VERSION_NUM >= 150000
	InitMaterializedSRF(fcinfo, 0);
#else
	{
		TupleDesc	tupdesc;
		MemoryContext per_query = rsinfo->econtext->ecxt_per_query_memory;
		MemoryContext old;

		if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) ||
			!(rsinfo->allowedModes & SFRM_Materialize))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("materialize mode required, but it is not allowed in this context")));
		if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
			elog(ERROR, "return type must be a row type");
		old = MemoryContextSwitchTo(per_query);
		rsinfo->returnMode = SFRM_Materialize;
		rsinfo->setResult = tuplestore_begin_heap(true, false, work_mem);
		rsinfo->setDesc = CreateTupleDescCopy(tupdesc);
		MemoryContextSwitchTo(old);
	}
#endif

	(void) js_validate(s, instance, &errors, JS_MAX_REPORTED_ERRORS);
	foreach(lc, errors)
	{
		JsError    *e = lfirst(lc);
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		values[0] = CStringGetTextDatum(e->instance_path);
		values[1] = CStringGetTextDatum(e->schema_path);
		values[2] = CStringGetTextDatum(e->message);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* jsonschema_check(schema jsonb) returns boolean */
Datum
ac_jsonschema_check(PG_FUNCTION_ARGS)
{
	Jsonb	   *schema = PG_GETARG_JSONB_P(0);

	PG_RETURN_BOOL(js_check(schema));
}
