/*-------------------------------------------------------------------------
 *
 * jsonschema_validate.c
 *		Validates a jsonb instance against a compiled JSON Schema by walking
 *		the jsonb containers directly.
 *
 *		Two modes: a yes/no answer that stops at the first failure, and a
 *		collecting mode that keeps going and records every failure with the
 *		JSON pointers of the instance location and of the failing keyword.
 *		unevaluatedProperties and unevaluatedItems are served by a bitmap of
 *		evaluated members of the current instance, filled by the keywords
 *		and the in-place applicators that succeeded.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"

#include "jsonschema.h"

/* members of one instance (object or array) evaluated so far */
typedef struct JsEval
{
	int			n;
	bool	   *seen;
} JsEval;

typedef struct JsVal
{
	bool		collect;		/* record errors instead of stopping */
	List	   *errors;
	int			nerrors;
	int			max_errors;
	StringInfoData ipath;		/* instance location, when collecting */
	JsResource **scope;			/* the dynamic scope, outermost first */
	int			nscope;
	int			maxscope;
	uint32		steps;
	/*
	 * Schemas applied in place, one inside the other, to the value being
	 * looked at ($ref, allOf, not, ...), which every applicator passes on
	 * as the same JsonbValue, while a member, element or property name is
	 * another one. More than twice as many as the schema has nodes means
	 * one of them is applied inside itself to the same value more than once
	 * (a $dynamicRef can resolve differently on a second visit, never on a
	 * third): the evaluation would never end.
	 */
	JsonbValue *inplace_value;
	int			inplace;
	int			max_inplace;
} JsVal;

static bool jv_node(JsVal *v, JsNode *n, JsonbValue *inst, JsEval *ev);
static pg_noinline bool jv_node_body(JsVal *v, JsNode *n, JsonbValue *inst, JsEval *ev);
static void jv_error(JsVal *v, JsNode *n, const char *kw, const char *fmt,...) pg_attribute_printf(4, 5);

/* ---------------------------------------------------------------------
 * Helpers
 * ---------------------------------------------------------------------
 */

/* JSON equality: numbers by value (1 = 1.0), objects regardless of order */
bool
js_equal(JsonbValue *a, JsonbValue *b)
{
	if (a->type == jbvBinary && b->type == jbvBinary)
		return compareJsonbContainers(a->val.binary.data,
									  b->val.binary.data) == 0;
	if (a->type != b->type)
		return false;
	switch (a->type)
	{
		case jbvNull:
			return true;
		case jbvBool:
			return a->val.boolean == b->val.boolean;
		case jbvNumeric:
			return DatumGetInt32(DirectFunctionCall2(numeric_cmp,
													 NumericGetDatum(a->val.numeric),
													 NumericGetDatum(b->val.numeric))) == 0;
		case jbvString:
			return a->val.string.len == b->val.string.len &&
				memcmp(a->val.string.val, b->val.string.val,
					   a->val.string.len) == 0;
		default:
			return false;
	}
}

static int
num_cmp(Numeric a, Numeric b)
{
	return DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(a),
											 NumericGetDatum(b)));
}

/* an array element and its position, for uniqueItems */
typedef struct JsIndexed
{
	JsonbValue	v;
	int			index;
} JsIndexed;

static int
type_rank(const JsonbValue *v)
{
	switch (v->type)
	{
		case jbvNull:
			return 0;
		case jbvBool:
			return 1;
		case jbvNumeric:
			return 2;
		case jbvString:
			return 3;
		default:
			return 4;
	}
}

/* a total order in which JSON-equal values are neighbours */
static int
indexed_cmp(const void *a, const void *b)
{
	const JsonbValue *x = &((const JsIndexed *) a)->v;
	const JsonbValue *y = &((const JsIndexed *) b)->v;
	int			rx = type_rank(x);
	int			ry = type_rank(y);

	if (rx != ry)
		return rx - ry;
	switch (x->type)
	{
		case jbvNull:
			return 0;
		case jbvBool:
			return (int) x->val.boolean - (int) y->val.boolean;
		case jbvNumeric:
			return num_cmp(x->val.numeric, y->val.numeric);
		case jbvString:
			if (x->val.string.len != y->val.string.len)
				return x->val.string.len < y->val.string.len ? -1 : 1;
			return memcmp(x->val.string.val, y->val.string.val,
						  x->val.string.len);
		default:
			return compareJsonbContainers(x->val.binary.data,
										  y->val.binary.data);
	}
}

static bool
num_is_integer(Numeric a)
{
	Datum		f = DirectFunctionCall1(numeric_floor, NumericGetDatum(a));

	return DatumGetInt32(DirectFunctionCall2(numeric_cmp, f,
											 NumericGetDatum(a))) == 0;
}

static const char *
type_name(JsonbValue *inst)
{
	switch (inst->type)
	{
		case jbvNull:
			return "null";
		case jbvBool:
			return "boolean";
		case jbvNumeric:
			return num_is_integer(inst->val.numeric) ? "integer" : "number";
		case jbvString:
			return "string";
		case jbvBinary:
			return JsonContainerIsObject(inst->val.binary.data) ? "object" : "array";
		default:
			return "unknown";
	}
}

static bool
type_matches(uint32 types, JsonbValue *inst)
{
	switch (inst->type)
	{
		case jbvNull:
			return (types & JS_T_NULL) != 0;
		case jbvBool:
			return (types & JS_T_BOOLEAN) != 0;
		case jbvString:
			return (types & JS_T_STRING) != 0;
		case jbvNumeric:
			if (types & JS_T_NUMBER)
				return true;
			return (types & JS_T_INTEGER) && num_is_integer(inst->val.numeric);
		case jbvBinary:
			if (JsonContainerIsObject(inst->val.binary.data))
				return (types & JS_T_OBJECT) != 0;
			return (types & JS_T_ARRAY) != 0;
		default:
			return false;
	}
}

static char *
types_text(uint32 types)
{
	static const char *names[] = {"null", "boolean", "object", "array",
	"number", "string", "integer"};
	StringInfoData b;
	int			i;

	initStringInfo(&b);
	for (i = 0; i < lengthof(names); i++)
		if (types & (1 << i))
			appendStringInfo(&b, "%s%s", b.len ? ", " : "", names[i]);
	return b.data;
}

static void
jv_error(JsVal *v, JsNode *n, const char *kw, const char *fmt,...)
{
	JsError    *e;
	StringInfoData msg;

	if (v->nerrors >= v->max_errors)
		return;
	v->nerrors++;
	e = palloc(sizeof(JsError));
	e->instance_path = pstrdup(v->ipath.data);
	e->schema_path = kw ? psprintf("%s/%s", n->path, kw) : pstrdup(n->path);
	initStringInfo(&msg);
	for (;;)
	{
		va_list		args;
		int			needed;

		va_start(args, fmt);
		needed = appendStringInfoVA(&msg, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&msg, needed);
	}
	e->message = msg.data;
	v->errors = lappend(v->errors, e);
}

#define JV_FAIL(kw, ...) \
	do { \
		ok = false; \
		if (!v->collect) \
			goto done; \
		jv_error(v, n, kw, __VA_ARGS__); \
	} while (0)

static void
eval_init(JsEval *ev, JsonbValue *inst)
{
	if (inst->type == jbvBinary)
		ev->n = JsonContainerSize(inst->val.binary.data);
	else
		ev->n = 0;
	ev->seen = ev->n > 0 ? palloc0(sizeof(bool) * ev->n) : NULL;
}

static void
eval_merge(JsEval *dst, JsEval *src)
{
	int			i;

	if (dst == NULL)
		return;
	for (i = 0; i < dst->n && i < src->n; i++)
		dst->seen[i] |= src->seen[i];
}

static inline void
eval_mark(JsEval *ev, int i)
{
	if (ev && i < ev->n)
		ev->seen[i] = true;
}

/* evaluate without recording errors (anyOf, oneOf, not, if, contains) */
static bool
jv_silent(JsVal *v, JsNode *n, JsonbValue *inst, JsEval *ev)
{
	bool		save = v->collect;
	bool		ok;

	v->collect = false;
	ok = jv_node(v, n, inst, ev);
	v->collect = save;
	return ok;
}

/* evaluate a child location: a member or an element */
static bool
jv_child(JsVal *v, JsNode *n, JsonbValue *inst, const char *key, int keylen,
		 int index)
{
	int			save = v->ipath.len;
	bool		ok;

	if (v->collect)
	{
		if (key)
			js_pointer_append(&v->ipath, key, keylen);
		else
			appendStringInfo(&v->ipath, "/%d", index);
	}
	ok = jv_node(v, n, inst, NULL);
	if (v->collect)
	{
		v->ipath.len = save;
		v->ipath.data[save] = '\0';
	}
	return ok;
}

static JsKeyed *
find_keyed(JsKeyed *arr, int n, const char *key, int keylen)
{
	int			lo = 0,
				hi = n - 1;

	while (lo <= hi)
	{
		int			mid = (lo + hi) / 2;
		int			c;

		if (arr[mid].keylen != keylen)
			c = arr[mid].keylen > keylen ? 1 : -1;
		else
			c = memcmp(arr[mid].key, key, keylen);
		if (c == 0)
			return &arr[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return NULL;
}

static bool
has_key(JsonbContainer *jc, const char *key, int keylen)
{
	return getKeyJsonValueFromContainer(jc, key, keylen, NULL) != NULL;
}

/* ---------------------------------------------------------------------
 * Keywords by instance type
 * ---------------------------------------------------------------------
 */

static bool
jv_object(JsVal *v, JsNode *n, JsonbValue *inst, JsEval *ev)
{
	JsonbContainer *jc = inst->val.binary.data;
	int			size = JsonContainerSize(jc);
	bool		ok = true;
	int			i;

	if (size < n->min_props)
		JV_FAIL("minProperties", "object has %d properties, fewer than %d",
				size, n->min_props);
	if (n->max_props >= 0 && size > n->max_props)
		JV_FAIL("maxProperties", "object has %d properties, more than %d",
				size, n->max_props);
	for (i = 0; i < n->nrequired; i++)
		if (!has_key(jc, n->required[i], n->requiredlens[i]))
			JV_FAIL("required", "required property \"%s\" is missing",
					n->required[i]);
	for (i = 0; i < n->ndep_required; i++)
	{
		JsKeyed    *d = &n->dep_required[i];
		int			j;

		if (!has_key(jc, d->key, d->keylen))
			continue;
		for (j = 0; j < d->nnames; j++)
			if (!has_key(jc, d->names[j], d->namelens[j]))
				JV_FAIL("dependentRequired",
						"property \"%s\" requires property \"%s\"",
						d->key, d->names[j]);
	}
	for (i = 0; i < n->ndep_schemas; i++)
	{
		JsKeyed    *d = &n->dep_schemas[i];

		if (has_key(jc, d->key, d->keylen) &&
			!jv_node(v, d->schema, inst, ev))
			JV_FAIL("dependentSchemas",
					"object with property \"%s\" does not match its dependent schema",
					d->key);
	}

	if (n->nprops || n->npatprops || n->additional || n->property_names || ev)
	{
		JsonbIterator *it = JsonbIteratorInit(jc);
		JsonbValue	k,
					val;
		JsonbIteratorToken tok;

		i = 0;
		while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
		{
			bool		matched = false;
			char	   *key;
			int			keylen;
			int			j;

			if (tok != WJB_KEY)
				continue;
			key = k.val.string.val;
			keylen = k.val.string.len;
			tok = JsonbIteratorNext(&it, &val, true);
			if (n->nprops)
			{
				JsKeyed    *p = find_keyed(n->props, n->nprops, key, keylen);

				if (p)
				{
					matched = true;
					eval_mark(ev, i);
					if (!jv_child(v, p->schema, &val, key, keylen, 0))
					{
						ok = false;
						if (!v->collect)
							goto done;
					}
				}
			}
			for (j = 0; j < n->npatprops; j++)
			{
				if (!jsre_search(n->patprops[j].re, key, keylen))
					continue;
				matched = true;
				eval_mark(ev, i);
				if (!jv_child(v, n->patprops[j].schema, &val, key, keylen, 0))
				{
					ok = false;
					if (!v->collect)
						goto done;
				}
			}
			if (!matched && n->additional)
			{
				eval_mark(ev, i);
				if (!jv_child(v, n->additional, &val, key, keylen, 0))
				{
					ok = false;
					if (!v->collect)
						goto done;
				}
			}
			if (n->property_names)
			{
				JsonbValue	name;

				name.type = jbvString;
				name.val.string.val = key;
				name.val.string.len = keylen;
				if (!jv_silent(v, n->property_names, &name, NULL))
					JV_FAIL("propertyNames",
							"property name \"%.*s\" does not match the schema",
							keylen, key);
			}
			i++;
		}
	}
done:
	return ok;
}

static bool
jv_array(JsVal *v, JsNode *n, JsonbValue *inst, JsEval *ev)
{
	JsonbContainer *jc = inst->val.binary.data;
	int			size = JsonContainerSize(jc);
	bool		ok = true;
	int			ncontains = 0;
	JsonbValue *elems = NULL;
	int			i;

	if (size < n->min_items)
		JV_FAIL("minItems", "array has %d items, fewer than %d",
				size, n->min_items);
	if (n->max_items >= 0 && size > n->max_items)
		JV_FAIL("maxItems", "array has %d items, more than %d",
				size, n->max_items);
	if (n->unique_items)
		elems = palloc(sizeof(JsonbValue) * Max(size, 1));

	if (n->nprefix || n->items || n->contains || elems)
	{
		JsonbIterator *it = JsonbIteratorInit(jc);
		JsonbValue	e;
		JsonbIteratorToken tok;

		i = 0;
		while ((tok = JsonbIteratorNext(&it, &e, true)) != WJB_DONE)
		{
			if (tok != WJB_ELEM)
				continue;
			if (elems)
				elems[i] = e;
			if (i < n->nprefix || n->items)
			{
				JsNode	   *s = i < n->nprefix ? n->prefix[i] : n->items;

				eval_mark(ev, i);
				if (!jv_child(v, s, &e, NULL, 0, i))
				{
					ok = false;
					if (!v->collect)
						goto done;
				}
			}
			if (n->contains)
			{
				if (jv_silent(v, n->contains, &e, NULL))
				{
					ncontains++;
					eval_mark(ev, i);
				}
			}
			i++;
		}
	}
	if (n->contains)
	{
		int			min = n->min_contains >= 0 ? n->min_contains : 1;

		if (ncontains < min)
			JV_FAIL(n->min_contains >= 0 ? "minContains" : "contains",
					"array contains %d matching items, fewer than %d",
					ncontains, min);
		if (n->max_contains >= 0 && ncontains > n->max_contains)
			JV_FAIL("maxContains",
					"array contains %d matching items, more than %d",
					ncontains, n->max_contains);
	}
	if (elems && size > 1)
	{
		/* sort, then compare neighbours: O(n log n) for long arrays */
		JsIndexed  *sorted = palloc(sizeof(JsIndexed) * size);

		for (i = 0; i < size; i++)
		{
			sorted[i].v = elems[i];
			sorted[i].index = i;
		}
		qsort(sorted, size, sizeof(JsIndexed), indexed_cmp);
		for (i = 1; i < size; i++)
		{
			if ((i & 1023) == 0)
				CHECK_FOR_INTERRUPTS();
			if (js_equal(&sorted[i - 1].v, &sorted[i].v))
			{
				JV_FAIL("uniqueItems", "items %d and %d are equal",
						Min(sorted[i - 1].index, sorted[i].index),
						Max(sorted[i - 1].index, sorted[i].index));
				break;
			}
		}
	}
done:
	return ok;
}

static bool
jv_string(JsVal *v, JsNode *n, JsonbValue *inst)
{
	bool		ok = true;

	if (n->min_length > 0 || n->max_length >= 0)
	{
		int			len = pg_mbstrlen_with_len(inst->val.string.val,
											   inst->val.string.len);

		if (len < n->min_length)
			JV_FAIL("minLength", "string has %d characters, fewer than %d",
					len, n->min_length);
		if (n->max_length >= 0 && len > n->max_length)
			JV_FAIL("maxLength", "string has %d characters, more than %d",
					len, n->max_length);
	}
	if (n->pattern &&
		!jsre_search(n->pattern, inst->val.string.val, inst->val.string.len))
		JV_FAIL("pattern", "string does not match the pattern");
done:
	return ok;
}

static char *
num_text(Numeric x)
{
	return DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(x)));
}

static bool
jv_number(JsVal *v, JsNode *n, JsonbValue *inst)
{
	Numeric		x = inst->val.numeric;
	bool		ok = true;

	if (n->minimum && num_cmp(x, n->minimum) < 0)
		JV_FAIL("minimum", "%s is less than %s", num_text(x), num_text(n->minimum));
	if (n->maximum && num_cmp(x, n->maximum) > 0)
		JV_FAIL("maximum", "%s is greater than %s", num_text(x),
				num_text(n->maximum));
	if (n->ex_minimum && num_cmp(x, n->ex_minimum) <= 0)
		JV_FAIL("exclusiveMinimum", "%s is not greater than %s", num_text(x),
				num_text(n->ex_minimum));
	if (n->ex_maximum && num_cmp(x, n->ex_maximum) >= 0)
		JV_FAIL("exclusiveMaximum", "%s is not less than %s", num_text(x),
				num_text(n->ex_maximum));
	if (n->multiple_of)
	{
		Datum		rem = DirectFunctionCall2(numeric_mod, NumericGetDatum(x),
											  NumericGetDatum(n->multiple_of));

		if (DatumGetInt32(DirectFunctionCall2(numeric_cmp, rem,
											  DirectFunctionCall1(int4_numeric, Int32GetDatum(0)))) != 0)
			JV_FAIL("multipleOf", "%s is not a multiple of %s", num_text(x),
					num_text(n->multiple_of));
	}
done:
	return ok;
}

/* ---------------------------------------------------------------------
 * One schema against one instance location
 * ---------------------------------------------------------------------
 */

static JsNode *
dynamic_target(JsVal *v, JsNode *n)
{
	int			i;
	ListCell   *lc;

	if (n->dynref_name == NULL)
		return n->dynref;
	for (i = 0; i < v->nscope; i++)
		foreach(lc, v->scope[i]->dyn_anchors)
		{
			JsDynAnchor *d = lfirst(lc);

			if (strcmp(d->name, n->dynref_name) == 0)
				return d->node;
		}
	return n->dynref;
}

static pg_noinline bool
jv_node_body(JsVal *v, JsNode *n, JsonbValue *inst, JsEval *ev)
{
	bool		ok = true;
	bool		pushed = false;
	JsEval		local;
	JsEval	   *cev = ev;
	int			i;

	if (n->is_bool)
	{
		if (!n->bool_value && v->collect)
			jv_error(v, n, NULL, "value is not allowed here (the schema is false)");
		return n->bool_value;
	}
	if (n->is_metaschema)
	{
		if (!js_schema_is_valid_syntax(inst))
			JV_FAIL(NULL, "value is not a valid JSON Schema");
		return ok;
	}

	/* entering another schema resource extends the dynamic scope */
	if (v->nscope == 0 || v->scope[v->nscope - 1] != n->resource)
	{
		if (v->nscope == v->maxscope)
		{
			v->maxscope *= 2;
			v->scope = repalloc(v->scope, sizeof(JsResource *) * v->maxscope);
		}
		v->scope[v->nscope++] = n->resource;
		pushed = true;
	}
	if (n->needs_eval)
	{
		eval_init(&local, inst);
		cev = &local;
	}

	if (n->ref && !jv_node(v, n->ref, inst, cev))
		JV_FAIL("$ref", "value does not match the referenced schema");
	if (n->dynref && !jv_node(v, dynamic_target(v, n), inst, cev))
		JV_FAIL("$dynamicRef", "value does not match the referenced schema");

	if (n->types && !type_matches(n->types, inst))
		JV_FAIL("type", "expected %s, got %s", types_text(n->types),
				type_name(inst));
	if (n->has_const && !js_equal(&n->const_val, inst))
		JV_FAIL("const", "value is not the constant");
	if (n->has_enum)
	{
		for (i = 0; i < n->nenum; i++)
			if (js_equal(&n->enum_vals[i], inst))
				break;
		if (i == n->nenum)
			JV_FAIL("enum", "value is not one of the enumerated values");
	}

	switch (inst->type)
	{
		case jbvBinary:
			if (JsonContainerIsObject(inst->val.binary.data))
			{
				if (!jv_object(v, n, inst, cev))
				{
					ok = false;
					if (!v->collect)
						goto done;
				}
			}
			else if (!jv_array(v, n, inst, cev))
			{
				ok = false;
				if (!v->collect)
					goto done;
			}
			break;
		case jbvString:
			if (!jv_string(v, n, inst))
			{
				ok = false;
				if (!v->collect)
					goto done;
			}
			break;
		case jbvNumeric:
			if (!jv_number(v, n, inst))
			{
				ok = false;
				if (!v->collect)
					goto done;
			}
			break;
		default:
			break;
	}

	for (i = 0; i < n->nall_of; i++)
		if (!jv_node(v, n->all_of[i], inst, cev))
			JV_FAIL("allOf", "value does not match allOf/%d", i);
	if (n->nany_of)
	{
		int			nvalid = 0;

		for (i = 0; i < n->nany_of; i++)
		{
			JsEval		t;

			if (cev)
				eval_init(&t, inst);
			if (jv_silent(v, n->any_of[i], inst, cev ? &t : NULL))
			{
				nvalid++;
				if (!cev)
					break;
				eval_merge(cev, &t);
			}
		}
		if (nvalid == 0)
			JV_FAIL("anyOf", "value matches none of the anyOf schemas");
	}
	if (n->none_of)
	{
		int			nvalid = 0;
		int			first = -1;
		JsEval		t,
					keep;

		for (i = 0; i < n->none_of && nvalid < 2; i++)
		{
			if (cev)
				eval_init(&t, inst);
			if (jv_silent(v, n->one_of[i], inst, cev ? &t : NULL))
			{
				if (nvalid++ == 0)
				{
					first = i;
					if (cev)
						keep = t;
				}
				else
					JV_FAIL("oneOf", "value matches both oneOf/%d and oneOf/%d",
							first, i);
			}
		}
		if (nvalid == 0)
			JV_FAIL("oneOf", "value matches none of the oneOf schemas");
		else if (nvalid == 1 && cev)
			eval_merge(cev, &keep);
	}
	if (n->not && jv_silent(v, n->not, inst, NULL))
		JV_FAIL("not", "value matches the schema under not");
	if (n->if_)
	{
		JsEval		t;

		if (cev)
			eval_init(&t, inst);
		if (jv_silent(v, n->if_, inst, cev ? &t : NULL))
		{
			if (cev)
				eval_merge(cev, &t);
			if (n->then_ && !jv_node(v, n->then_, inst, cev))
				JV_FAIL("then", "value matches if but not then");
		}
		else if (n->else_ && !jv_node(v, n->else_, inst, cev))
			JV_FAIL("else", "value matches neither if nor else");
	}

	/* unevaluated*: what no keyword above (or in-place below) evaluated */
	if (n->needs_eval && inst->type == jbvBinary)
	{
		JsonbIterator *it = JsonbIteratorInit(inst->val.binary.data);
		JsonbValue	k,
					val;
		JsonbIteratorToken tok;
		bool		is_obj = JsonContainerIsObject(inst->val.binary.data);
		JsNode	   *u = is_obj ? n->uneval_props : n->uneval_items;

		i = 0;
		while (u && (tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
		{
			if (tok == WJB_KEY)
			{
				tok = JsonbIteratorNext(&it, &val, true);
				if (!local.seen[i])
				{
					local.seen[i] = true;
					if (!jv_child(v, u, &val, k.val.string.val,
								  k.val.string.len, 0))
						JV_FAIL("unevaluatedProperties",
								"property \"%.*s\" is not evaluated and not allowed",
								k.val.string.len, k.val.string.val);
				}
				i++;
			}
			else if (tok == WJB_ELEM)
			{
				if (!local.seen[i])
				{
					local.seen[i] = true;
					if (!jv_child(v, u, &k, NULL, 0, i))
						JV_FAIL("unevaluatedItems",
								"item %d is not evaluated and not allowed", i);
				}
				i++;
			}
		}
	}
	if (n->needs_eval && ok)
		eval_merge(ev, &local);

done:
	if (pushed)
		v->nscope--;
	return ok;
}

/* ---------------------------------------------------------------------
 * Entry points
 * ---------------------------------------------------------------------
 */

/* Apply schema n to inst (ev: the evaluated members of inst, or NULL) */
static bool
jv_node(JsVal *v, JsNode *n, JsonbValue *inst, JsEval *ev)
{
	JsonbValue *save_value = v->inplace_value;
	int			save_inplace = v->inplace;
	bool		ok;

	check_stack_depth();
	if ((++v->steps & 1023) == 0)
		CHECK_FOR_INTERRUPTS();
	if (inst != v->inplace_value)
	{
		v->inplace_value = inst;
		v->inplace = 0;
	}
	if (++v->inplace > v->max_inplace)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid JSON Schema"),
				 errdetail("The schema at \"#%s\" applies itself to the same value without end.",
						   n->path),
				 errhint("A $ref or $dynamicRef, possibly through allOf, anyOf, oneOf, not or if, leads back to a schema that contains it without moving into the value.")));
	ok = jv_node_body(v, n, inst, ev);
	v->inplace_value = save_value;
	v->inplace = save_inplace;
	return ok;
}

static void
instance_value(Jsonb *instance, JsonbValue *out)
{
	if (JB_ROOT_IS_SCALAR(instance))
		JsonbExtractScalar(&instance->root, out);
	else
	{
		out->type = jbvBinary;
		out->val.binary.data = &instance->root;
		out->val.binary.len = VARSIZE(instance) - VARHDRSZ;
	}
}

static void
jv_init(JsVal *v)
{
	memset(v, 0, sizeof(JsVal));
	initStringInfo(&v->ipath);
	v->maxscope = 8;
	v->scope = palloc(sizeof(JsResource *) * v->maxscope);
}

/*
 * Validates; when errors is not NULL, collects up to max_errors JsError
 * into it.
 */
bool
js_validate(JsSchema *s, Jsonb *instance, List **errors, int max_errors)
{
	JsVal		v;
	JsonbValue	inst;
	bool		ok;

	jv_init(&v);
	/* a $dynamicRef may resolve once differently on a second visit */
	v.max_inplace = 2 * s->nnodes + 2;
	v.collect = (errors != NULL);
	v.max_errors = max_errors;
	instance_value(instance, &inst);
	ok = jv_node(&v, s->root, &inst, NULL);
	if (errors)
		*errors = v.errors;
	return ok;
}
