/*-------------------------------------------------------------------------
 *
 * jsonschema_cache.c
 *		Checking JSON Schemas, and the per-backend cache of compiled
 *		schemas keyed by their content.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "utils/memutils.h"

#include "jsonschema.h"

/* ---------------------------------------------------------------------
 * Checking and caching
 * ---------------------------------------------------------------------
 */

/*
 * Compiles and throws away; false when the schema is invalid.  Errors
 * other than invalid_parameter_value (cancellation, out of memory) are
 * thrown on.  Compiling only allocates memory, so catching its error
 * without a subtransaction is safe.
 */
bool
js_check_internal(Jsonb *schema, bool resolve_refs)
{
	MemoryContext old = CurrentMemoryContext;
	volatile bool ok = true;

	PG_TRY();
	{
		JsSchema   *s = js_compile(schema, resolve_refs);

		MemoryContextDelete(s->cxt);
	}
	PG_CATCH();
	{
		ErrorData  *e;

		MemoryContextSwitchTo(old);
		e = CopyErrorData();
		if (e->sqlerrcode != ERRCODE_INVALID_PARAMETER_VALUE)
			PG_RE_THROW();
		FlushErrorState();
		FreeErrorData(e);
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

bool
js_check(Jsonb *schema)
{
	return js_check_internal(schema, true);
}

#define JS_CACHE_SIZE 32

typedef struct JsCacheEntry
{
	uint32		hash;
	uint64		last_used;
	JsSchema   *schema;
} JsCacheEntry;

static JsCacheEntry js_cache[JS_CACHE_SIZE];
static uint64 js_cache_clock = 0;
static uint64 js_cache_evictions = 0;


/*
 * The compiled form of a schema, from the per-backend cache or compiled
 * now.  The cache holds JS_CACHE_SIZE schemas and drops the least
 * recently used one.
 */
JsSchema *
js_get_cached(Jsonb *schema)
{
	uint32		h = DatumGetUInt32(hash_any((unsigned char *) schema,
											VARSIZE(schema)));
	int			i;
	int			victim = 0;
	JsSchema   *s;

	for (i = 0; i < JS_CACHE_SIZE; i++)
	{
		JsCacheEntry *e = &js_cache[i];

		if (e->schema && e->hash == h &&
			VARSIZE(e->schema->doc) == VARSIZE(schema) &&
			memcmp(e->schema->doc, schema, VARSIZE(schema)) == 0)
		{
			e->last_used = ++js_cache_clock;
			return e->schema;
		}
		if (e->schema == NULL)
			victim = i;
		else if (js_cache[victim].schema &&
				 e->last_used < js_cache[victim].last_used)
			victim = i;
	}
	s = js_compile(schema, true);
	MemoryContextSetParent(s->cxt, CacheMemoryContext);
	if (js_cache[victim].schema)
	{
		js_cache_evictions++;
		MemoryContextDelete(js_cache[victim].schema->cxt);
	}
	js_cache[victim].schema = s;
	js_cache[victim].hash = h;
	js_cache[victim].last_used = ++js_cache_clock;
	return s;
}

/*
 * js_get_cached for a SQL function called row after row: the schema last
 * used by this call site is compared byte for byte before the cache is
 * searched (no hashing), as long as nothing was evicted since.
 */
JsSchema *
js_get_cached_fn(FmgrInfo *flinfo, Jsonb *schema)
{
	JsSchemaRef *ref = (JsSchemaRef *) flinfo->fn_extra;

	if (ref == NULL)
	{
		ref = MemoryContextAllocZero(flinfo->fn_mcxt, sizeof(JsSchemaRef));
		flinfo->fn_extra = ref;
	}
	if (ref->schema && ref->evictions == js_cache_evictions &&
		VARSIZE(ref->schema->doc) == VARSIZE(schema) &&
		memcmp(ref->schema->doc, schema, VARSIZE(schema)) == 0)
		return ref->schema;
	ref->schema = js_get_cached(schema);
	ref->evictions = js_cache_evictions;
	return ref->schema;
}

/*
 * The compiled schema through a remembered reference: the caller promises
 * that the schema behind ref has not changed since it was remembered.
 */
JsSchema *
js_get_cached_ref(JsSchemaRef *ref, Jsonb *schema)
{
	if (ref->schema && ref->evictions == js_cache_evictions)
		return ref->schema;
	ref->schema = js_get_cached(schema);
	ref->evictions = js_cache_evictions;
	return ref->schema;
}
