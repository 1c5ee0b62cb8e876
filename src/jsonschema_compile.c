/*-------------------------------------------------------------------------
 *
 * jsonschema_compile.c
 *		Compiles a JSON Schema (draft 2020-12) held in a jsonb into a tree
 *		of JsNode: checks every keyword's value, compiles patterns, resolves
 *		$id, $anchor, $dynamicAnchor, $ref and $dynamicRef inside the
 *		document.  jsonschema_cache.c keeps the compiled schemas.
 *
 *		Every problem with a schema is reported as invalid_parameter_value
 *		(22023).  A $ref to a document outside the schema is such a
 *		problem, except the draft 2020-12 metaschema, which is built in.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

#include "jsonschema.h"

const char *js_metaschema_uri = "https://json-schema.org/draft/2020-12/schema";

typedef struct JsAnchor
{
	char	   *uri;			/* absolute base URI + "#" + name */
	JsNode	   *node;
} JsAnchor;

typedef struct JsAddr
{
	JsonbContainer *addr;
	JsNode	   *node;
} JsAddr;

typedef struct JsPendingRef
{
	JsNode	   *node;
	bool		dynamic;
} JsPendingRef;

typedef struct JsCompile
{
	JsSchema   *schema;
	bool		resolve_refs;
	List	   *anchors;		/* JsAnchor */
	List	   *pending;		/* JsPendingRef */
	HTAB	   *addrs;			/* JsonbContainer * -> JsNode * */
} JsCompile;

static JsNode *jc_schema(JsCompile *c, JsonbValue *v, const char *path,
						 JsResource *res);

/* a location in the schema, as a URI fragment: "#", "#/properties/a" */
static const char *
loc(const char *path)
{
	return psprintf("#%s", path);
}

#define JC_ERROR(...) \
	ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), \
					errmsg("invalid JSON Schema"), errdetail(__VA_ARGS__)))

/* ---------------------------------------------------------------------
 * URI references (RFC 3986, what JSON Schema needs of it)
 * ---------------------------------------------------------------------
 */

static bool
uri_has_scheme(const char *s)
{
	const char *p = s;

	if (!isalpha((unsigned char) *p))
		return false;
	while (isalnum((unsigned char) *p) || *p == '+' || *p == '-' || *p == '.')
		p++;
	return *p == ':';
}

/* removes "." and ".." segments from a path (RFC 3986 5.2.4) */
static char *
uri_remove_dots(const char *path)
{
	StringInfoData out;
	const char *in = path;

	initStringInfo(&out);
	while (*in)
	{
		if (strncmp(in, "../", 3) == 0)
			in += 3;
		else if (strncmp(in, "./", 2) == 0)
			in += 2;
		else if (strncmp(in, "/./", 3) == 0)
			in += 2;
		else if (strcmp(in, "/.") == 0)
			in = "/";
		else if (strncmp(in, "/../", 4) == 0 || strcmp(in, "/..") == 0)
		{
			char	   *slash;

			in = (in[3] == '/') ? in + 3 : "/";
			slash = strrchr(out.data, '/');
			if (slash)
			{
				out.len = slash - out.data;
				out.data[out.len] = '\0';
			}
			else
				resetStringInfo(&out);
		}
		else if (strcmp(in, ".") == 0 || strcmp(in, "..") == 0)
			in += strlen(in);
		else
		{
			const char *next = strchr(in + 1, '/');
			int			n = next ? next - in : strlen(in);

			appendBinaryStringInfo(&out, in, n);
			in += n;
		}
	}
	return out.data;
}

/* resolves ref against base; the result keeps ref's fragment */
static char *
uri_resolve(const char *base, const char *ref)
{
	const char *bfrag;
	int			blen;
	const char *auth_end;
	const char *bpath;

	if (uri_has_scheme(ref))
	{
		const char *colon = strchr(ref, ':');
		const char *rest = colon + 1;

		if (strncmp(rest, "//", 2) == 0)
		{
			const char *p = strchr(rest + 2, '/');

			if (p)
				return psprintf("%.*s%s", (int) (p - ref), ref, uri_remove_dots(p));
		}
		return pstrdup(ref);
	}
	bfrag = strchr(base, '#');
	blen = bfrag ? bfrag - base : strlen(base);
	if (ref[0] == '\0')
		return pnstrdup(base, blen);
	if (ref[0] == '#')
		return psprintf("%.*s%s", blen, base, ref);

	/* split the base into scheme+authority and path */
	bpath = base;
	if (uri_has_scheme(base))
	{
		bpath = strchr(base, ':') + 1;
		if (strncmp(bpath, "//", 2) == 0)
		{
			if (strncmp(ref, "//", 2) == 0)
				return psprintf("%.*s%s", (int) (bpath - base), base, ref);
			auth_end = bpath + 2;
			while (auth_end < base + blen && *auth_end != '/' &&
				   *auth_end != '?')
				auth_end++;
			bpath = auth_end;
		}
	}
	if (ref[0] == '/')
		return psprintf("%.*s%s", (int) (bpath - base), base,
						uri_remove_dots(ref));
	else
	{
		/* merge: the base path up to its last slash, then ref */
		const char *q = memchr(bpath, '?', base + blen - bpath);
		const char *pend = q ? q : base + blen;
		const char *last = NULL;
		const char *p;
		char	   *merged;

		for (p = bpath; p < pend; p++)
			if (*p == '/')
				last = p;
		if (last)
			merged = psprintf("%.*s%s", (int) (last + 1 - bpath), bpath, ref);
		else if (bpath > base && bpath[-1] != ':')
			merged = psprintf("/%s", ref);	/* authority, empty path */
		else
			merged = pstrdup(ref);
		return psprintf("%.*s%s", (int) (bpath - base), base,
						uri_remove_dots(merged));
	}
}

static char *
percent_decode(const char *s)
{
	StringInfoData out;

	initStringInfo(&out);
	for (; *s; s++)
	{
		if (*s == '%' && isxdigit((unsigned char) s[1]) &&
			isxdigit((unsigned char) s[2]))
		{
			char		hex[3] = {s[1], s[2], 0};

			appendStringInfoChar(&out, (char) strtol(hex, NULL, 16));
			s += 2;
		}
		else
			appendStringInfoChar(&out, *s);
	}
	return out.data;
}

/* ---------------------------------------------------------------------
 * Helpers for keyword values
 * ---------------------------------------------------------------------
 */

/* JSON pointer escaping of one reference token */
void
js_pointer_append(StringInfo buf, const char *key, int len)
{
	int			i;

	appendStringInfoChar(buf, '/');
	for (i = 0; i < len; i++)
	{
		if (key[i] == '~')
			appendStringInfoString(buf, "~0");
		else if (key[i] == '/')
			appendStringInfoString(buf, "~1");
		else
			appendStringInfoChar(buf, key[i]);
	}
}

static char *
path_join(const char *path, const char *kw)
{
	StringInfoData b;

	initStringInfo(&b);
	appendStringInfoString(&b, path);
	js_pointer_append(&b, kw, strlen(kw));
	return b.data;
}

static char *
path_join2(const char *path, const char *kw, const char *key, int keylen)
{
	StringInfoData b;

	initStringInfo(&b);
	appendStringInfoString(&b, path);
	js_pointer_append(&b, kw, strlen(kw));
	js_pointer_append(&b, key, keylen);
	return b.data;
}

static char *
path_join_index(const char *path, const char *kw, int i)
{
	return psprintf("%s/%s/%d", path, kw, i);
}

/*
 * A non-negative integer keyword (minLength, maxItems...).  Values beyond
 * what any jsonb can hold are clamped to PG_INT32_MAX.
 */
static int32
jc_count(JsonbValue *v, const char *path, const char *kw)
{
	Numeric		n;
	Datum		floor_;

	if (v->type != jbvNumeric)
		JC_ERROR("\"%s\" at \"%s\" must be a non-negative integer", kw, loc(path));
	n = v->val.numeric;
	floor_ = DirectFunctionCall1(numeric_floor, NumericGetDatum(n));
	if (DatumGetInt32(DirectFunctionCall2(numeric_cmp, floor_,
										  NumericGetDatum(n))) != 0 ||
		DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(n),
										  DirectFunctionCall1(int4_numeric, Int32GetDatum(0)))) < 0)
		JC_ERROR("\"%s\" at \"%s\" must be a non-negative integer", kw, loc(path));
	if (DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(n),
										  DirectFunctionCall1(int4_numeric, Int32GetDatum(PG_INT32_MAX)))) >= 0)
		return PG_INT32_MAX;
	return DatumGetInt32(DirectFunctionCall1(numeric_int4, NumericGetDatum(n)));
}

static Numeric
jc_number(JsonbValue *v, const char *path, const char *kw)
{
	if (v->type != jbvNumeric)
		JC_ERROR("\"%s\" at \"%s\" must be a number", kw, loc(path));
	return DatumGetNumericCopy(NumericGetDatum(v->val.numeric));
}

/* the elements of an array keyword, as JsonbValues */
static JsonbValue *
jc_array(JsonbValue *v, int *n, const char *path, const char *kw)
{
	JsonbContainer *jc;
	JsonbValue *out;
	int			i;

	if (v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data))
		JC_ERROR("\"%s\" at \"%s\" must be an array", kw, loc(path));
	jc = v->val.binary.data;
	*n = JsonContainerSize(jc);
	out = palloc0(sizeof(JsonbValue) * Max(*n, 1));
	for (i = 0; i < *n; i++)
	{
		JsonbValue *e = getIthJsonbValueFromContainer(jc, i);

		out[i] = *e;
	}
	return out;
}

/* the members of an object keyword, in jsonb order */
static JsKeyed *
jc_object(JsonbValue *v, int *n, const char *path, const char *kw,
		  JsonbValue **values)
{
	JsonbContainer *jc;
	JsonbIterator *it;
	JsonbValue	k;
	JsonbIteratorToken tok;
	JsKeyed    *out;
	int			i = 0;

	if (v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data))
		JC_ERROR("\"%s\" at \"%s\" must be an object", kw, loc(path));
	jc = v->val.binary.data;
	*n = JsonContainerSize(jc);
	out = palloc0(sizeof(JsKeyed) * Max(*n, 1));
	*values = palloc0(sizeof(JsonbValue) * Max(*n, 1));
	it = JsonbIteratorInit(jc);
	while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			out[i].key = pnstrdup(k.val.string.val, k.val.string.len);
			out[i].keylen = k.val.string.len;
		}
		else if (tok == WJB_VALUE)
			(*values)[i++] = k;
	}
	return out;
}

static JsNode *
jc_sub(JsCompile *c, JsonbValue *v, const char *path, JsResource *res)
{
	return jc_schema(c, v, path, res);
}

static JsNode **
jc_schema_array(JsCompile *c, JsonbValue *v, int *n, const char *path,
				const char *kw, JsResource *res, bool nonempty)
{
	JsonbValue *elems = jc_array(v, n, path, kw);
	JsNode	  **out = palloc0(sizeof(JsNode *) * Max(*n, 1));
	int			i;

	if (nonempty && *n == 0)
		JC_ERROR("\"%s\" at \"%s\" must be a non-empty array", kw, loc(path));
	for (i = 0; i < *n; i++)
		out[i] = jc_sub(c, &elems[i], path_join_index(path, kw, i), res);
	return out;
}

static uint32
jc_type_name(JsonbValue *v, const char *path)
{
	static const struct
	{
		const char *name;
		uint32		bit;
	}			names[] = {
		{"null", JS_T_NULL}, {"boolean", JS_T_BOOLEAN},
		{"object", JS_T_OBJECT}, {"array", JS_T_ARRAY},
		{"number", JS_T_NUMBER}, {"string", JS_T_STRING},
		{"integer", JS_T_INTEGER}
	};
	int			i;

	if (v->type == jbvString)
		for (i = 0; i < lengthof(names); i++)
			if (v->val.string.len == strlen(names[i].name) &&
				memcmp(v->val.string.val, names[i].name, v->val.string.len) == 0)
				return names[i].bit;
	JC_ERROR("\"type\" at \"%s\" must name a JSON type", loc(path));
	return 0;
}

static char *
jc_string(JsonbValue *v, const char *path, const char *kw)
{
	if (v->type != jbvString)
		JC_ERROR("\"%s\" at \"%s\" must be a string", kw, loc(path));
	return pnstrdup(v->val.string.val, v->val.string.len);
}

static void
jc_register_addr(JsCompile *c, JsonbContainer *addr, JsNode *node)
{
	JsAddr	   *e;
	bool		found;

	e = hash_search(c->addrs, &addr, HASH_ENTER, &found);
	e->node = node;
}

static void
jc_add_anchor(JsCompile *c, JsResource *res, const char *name, JsNode *node,
			  const char *path)
{
	JsAnchor   *a;
	const char *p;

	/* anchors are plain names: a letter or underscore, then name chars */
	if (!(isalpha((unsigned char) name[0]) || name[0] == '_'))
		JC_ERROR("anchor \"%s\" at \"%s\" is not a valid name", name, loc(path));
	for (p = name; *p; p++)
		if (!(isalnum((unsigned char) *p) || *p == '_' || *p == '-' ||
			  *p == '.'))
			JC_ERROR("anchor \"%s\" at \"%s\" is not a valid name", name, loc(path));
	a = palloc(sizeof(JsAnchor));
	a->uri = psprintf("%s#%s", res->uri, name);
	a->node = node;
	c->anchors = lappend(c->anchors, a);
}

/* ---------------------------------------------------------------------
 * Compiling one schema object
 * ---------------------------------------------------------------------
 */

static void
jc_keyword(JsCompile *c, JsNode *n, const char *kw, JsonbValue *v,
		   JsResource *res)
{
	const char *path = n->path;

	/* the in-place and child applicators */
	if (strcmp(kw, "properties") == 0 || strcmp(kw, "dependentSchemas") == 0)
	{
		JsonbValue *vals;
		int			cnt,
					i;
		JsKeyed    *k = jc_object(v, &cnt, path, kw, &vals);

		for (i = 0; i < cnt; i++)
			k[i].schema = jc_sub(c, &vals[i],
								 path_join2(path, kw, k[i].key, k[i].keylen),
								 res);
		if (kw[0] == 'p')
		{
			n->props = k;
			n->nprops = cnt;
		}
		else
		{
			n->dep_schemas = k;
			n->ndep_schemas = cnt;
		}
	}
	else if (strcmp(kw, "patternProperties") == 0)
	{
		JsonbValue *vals;
		int			cnt,
					i;
		JsKeyed    *k = jc_object(v, &cnt, path, kw, &vals);

		n->patprops = palloc0(sizeof(JsPattern) * Max(cnt, 1));
		n->npatprops = cnt;
		for (i = 0; i < cnt; i++)
		{
			char	   *err = NULL;

			n->patprops[i].re = jsre_compile(k[i].key, k[i].keylen, &err);
			if (n->patprops[i].re == NULL)
				JC_ERROR("pattern \"%s\" at \"%s\" is not a valid ECMA-262 regular expression: %s",
						 k[i].key, loc(path), err);
			n->patprops[i].schema =
				jc_sub(c, &vals[i], path_join2(path, kw, k[i].key, k[i].keylen),
					   res);
		}
	}
	else if (strcmp(kw, "additionalProperties") == 0)
		n->additional = jc_sub(c, v, path_join(path, kw), res);
	else if (strcmp(kw, "propertyNames") == 0)
		n->property_names = jc_sub(c, v, path_join(path, kw), res);
	else if (strcmp(kw, "unevaluatedProperties") == 0)
	{
		n->uneval_props = jc_sub(c, v, path_join(path, kw), res);
		n->needs_eval = true;
	}
	else if (strcmp(kw, "unevaluatedItems") == 0)
	{
		n->uneval_items = jc_sub(c, v, path_join(path, kw), res);
		n->needs_eval = true;
	}
	else if (strcmp(kw, "items") == 0)
		n->items = jc_sub(c, v, path_join(path, kw), res);
	else if (strcmp(kw, "prefixItems") == 0)
		n->prefix = jc_schema_array(c, v, &n->nprefix, path, kw, res, true);
	else if (strcmp(kw, "contains") == 0)
		n->contains = jc_sub(c, v, path_join(path, kw), res);
	else if (strcmp(kw, "allOf") == 0)
		n->all_of = jc_schema_array(c, v, &n->nall_of, path, kw, res, true);
	else if (strcmp(kw, "anyOf") == 0)
		n->any_of = jc_schema_array(c, v, &n->nany_of, path, kw, res, true);
	else if (strcmp(kw, "oneOf") == 0)
		n->one_of = jc_schema_array(c, v, &n->none_of, path, kw, res, true);
	else if (strcmp(kw, "not") == 0)
		n->not = jc_sub(c, v, path_join(path, kw), res);
	else if (strcmp(kw, "if") == 0)
		n->if_ = jc_sub(c, v, path_join(path, kw), res);
	else if (strcmp(kw, "then") == 0)
		n->then_ = jc_sub(c, v, path_join(path, kw), res);
	else if (strcmp(kw, "else") == 0)
		n->else_ = jc_sub(c, v, path_join(path, kw), res);
	else if (strcmp(kw, "$defs") == 0)
	{
		JsonbValue *vals;
		int			cnt,
					i;
		JsKeyed    *k = jc_object(v, &cnt, path, kw, &vals);

		for (i = 0; i < cnt; i++)
			(void) jc_sub(c, &vals[i], path_join2(path, kw, k[i].key, k[i].keylen),
						  res);
	}
	else if (strcmp(kw, "$ref") == 0 || strcmp(kw, "$dynamicRef") == 0)
	{
		char	   *ref = jc_string(v, path, kw);
		JsPendingRef *p = palloc(sizeof(JsPendingRef));

		p->node = n;
		p->dynamic = (kw[1] == 'd');
		if (p->dynamic)
			n->dynref_uri = uri_resolve(res->uri, ref);
		else
			n->ref_uri = uri_resolve(res->uri, ref);
		c->pending = lappend(c->pending, p);
	}

	/* assertions */
	else if (strcmp(kw, "type") == 0)
	{
		if (v->type == jbvBinary)
		{
			int			cnt,
						i;
			JsonbValue *elems = jc_array(v, &cnt, path, kw);

			for (i = 0; i < cnt; i++)
			{
				uint32		bit = jc_type_name(&elems[i], path);

				if (n->types & bit)
					JC_ERROR("\"type\" at \"%s\" repeats a type", loc(path));
				n->types |= bit;
			}
			if (cnt == 0)
				JC_ERROR("\"type\" at \"%s\" must not be an empty array", loc(path));
		}
		else
			n->types = jc_type_name(v, path);
	}
	else if (strcmp(kw, "const") == 0)
	{
		n->has_const = true;
		n->const_val = *v;
	}
	else if (strcmp(kw, "enum") == 0)
	{
		n->has_enum = true;
		n->enum_vals = jc_array(v, &n->nenum, path, kw);
	}
	else if (strcmp(kw, "required") == 0)
	{
		int			cnt,
					i,
					j;
		JsonbValue *elems = jc_array(v, &cnt, path, kw);

		n->required = palloc(sizeof(char *) * Max(cnt, 1));
		n->requiredlens = palloc(sizeof(int) * Max(cnt, 1));
		n->nrequired = cnt;
		for (i = 0; i < cnt; i++)
		{
			n->required[i] = jc_string(&elems[i], path, kw);
			n->requiredlens[i] = elems[i].val.string.len;
			for (j = 0; j < i; j++)
				if (js_equal(&elems[i], &elems[j]))
					JC_ERROR("\"required\" at \"%s\" repeats a name", loc(path));
		}
	}
	else if (strcmp(kw, "dependentRequired") == 0)
	{
		JsonbValue *vals;
		int			cnt,
					i,
					j;
		JsKeyed    *k = jc_object(v, &cnt, path, kw, &vals);

		for (i = 0; i < cnt; i++)
		{
			JsonbValue *elems = jc_array(&vals[i], &k[i].nnames, path, kw);

			k[i].names = palloc(sizeof(char *) * Max(k[i].nnames, 1));
			k[i].namelens = palloc(sizeof(int) * Max(k[i].nnames, 1));
			for (j = 0; j < k[i].nnames; j++)
			{
				k[i].names[j] = jc_string(&elems[j], path, kw);
				k[i].namelens[j] = elems[j].val.string.len;
			}
		}
		n->dep_required = k;
		n->ndep_required = cnt;
	}
	else if (strcmp(kw, "minimum") == 0)
		n->minimum = jc_number(v, path, kw);
	else if (strcmp(kw, "maximum") == 0)
		n->maximum = jc_number(v, path, kw);
	else if (strcmp(kw, "exclusiveMinimum") == 0)
		n->ex_minimum = jc_number(v, path, kw);
	else if (strcmp(kw, "exclusiveMaximum") == 0)
		n->ex_maximum = jc_number(v, path, kw);
	else if (strcmp(kw, "multipleOf") == 0)
	{
		n->multiple_of = jc_number(v, path, kw);
		if (DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(n->multiple_of),
											  DirectFunctionCall1(int4_numeric, Int32GetDatum(0)))) <= 0)
			JC_ERROR("\"multipleOf\" at \"%s\" must be greater than 0", loc(path));
	}
	else if (strcmp(kw, "minLength") == 0)
		n->min_length = jc_count(v, path, kw);
	else if (strcmp(kw, "maxLength") == 0)
		n->max_length = jc_count(v, path, kw);
	else if (strcmp(kw, "minItems") == 0)
		n->min_items = jc_count(v, path, kw);
	else if (strcmp(kw, "maxItems") == 0)
		n->max_items = jc_count(v, path, kw);
	else if (strcmp(kw, "minProperties") == 0)
		n->min_props = jc_count(v, path, kw);
	else if (strcmp(kw, "maxProperties") == 0)
		n->max_props = jc_count(v, path, kw);
	else if (strcmp(kw, "minContains") == 0)
		n->min_contains = jc_count(v, path, kw);
	else if (strcmp(kw, "maxContains") == 0)
		n->max_contains = jc_count(v, path, kw);
	else if (strcmp(kw, "uniqueItems") == 0)
	{
		if (v->type != jbvBool)
			JC_ERROR("\"uniqueItems\" at \"%s\" must be a boolean", loc(path));
		n->unique_items = v->val.boolean;
	}
	else if (strcmp(kw, "pattern") == 0)
	{
		char	   *err = NULL;

		if (v->type != jbvString)
			JC_ERROR("\"pattern\" at \"%s\" must be a string", loc(path));
		n->pattern = jsre_compile(v->val.string.val, v->val.string.len, &err);
		if (n->pattern == NULL)
			JC_ERROR("pattern at \"%s\" is not a valid ECMA-262 regular expression: %s",
					 loc(path), err);
	}
	else if (strcmp(kw, "format") == 0 || strcmp(kw, "$comment") == 0 ||
			 strcmp(kw, "$schema") == 0 || strcmp(kw, "title") == 0 ||
			 strcmp(kw, "description") == 0 ||
			 strcmp(kw, "contentEncoding") == 0 ||
			 strcmp(kw, "contentMediaType") == 0)
	{
		if (v->type != jbvString)
			JC_ERROR("\"%s\" at \"%s\" must be a string", kw, loc(path));
	}
	else if (strcmp(kw, "contentSchema") == 0)
		(void) jc_sub(c, v, path_join(path, kw), res);
	else if (strcmp(kw, "deprecated") == 0 || strcmp(kw, "readOnly") == 0 ||
			 strcmp(kw, "writeOnly") == 0)
	{
		if (v->type != jbvBool)
			JC_ERROR("\"%s\" at \"%s\" must be a boolean", kw, loc(path));
	}
	else if (strcmp(kw, "$vocabulary") == 0)
	{
		if (v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data))
			JC_ERROR("\"$vocabulary\" at \"%s\" must be an object", loc(path));
	}
	/* every other keyword is an annotation this validator ignores */
}

static JsNode *
jc_schema(JsCompile *c, JsonbValue *v, const char *path, JsResource *res)
{
	JsNode	   *n;
	JsonbContainer *jc;
	JsonbIterator *it;
	JsonbValue	k,
				val;
	JsonbIteratorToken tok;
	JsonbValue *idv;
	JsonbValue	key;

	check_stack_depth();
	CHECK_FOR_INTERRUPTS();

	n = palloc0(sizeof(JsNode));
	n->path = pstrdup(path);
	n->resource = res;
	n->max_props = n->max_items = n->max_length = -1;
	n->max_contains = n->min_contains = -1;
	c->schema->nnodes++;

	if (v->type == jbvBool)
	{
		n->is_bool = true;
		n->bool_value = v->val.boolean;
		return n;
	}
	if (v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data))
		JC_ERROR("the schema at \"%s\" is neither an object nor a boolean",
				 loc(path));
	jc = v->val.binary.data;

	/* a subschema reached twice (through a JSON pointer) is compiled once */
	{
		JsAddr	   *e = hash_search(c->addrs, &jc, HASH_FIND, NULL);

		if (e)
			return e->node;
	}
	jc_register_addr(c, jc, n);

	/* $id starts a new resource */
	key.type = jbvString;
	key.val.string.val = "$id";
	key.val.string.len = 3;
	idv = findJsonbValueFromContainer(jc, JB_FOBJECT, &key);
	if (idv)
	{
		char	   *id = jc_string(idv, path, "$id");
		char	   *abs = uri_resolve(res ? res->uri : "", id);
		char	   *hash = strchr(abs, '#');
		JsResource *r;

		if (hash && hash[1] != '\0')
			JC_ERROR("\"$id\" at \"%s\" must not have a fragment", loc(path));
		if (hash)
			*hash = '\0';
		r = palloc0(sizeof(JsResource));
		r->uri = abs;
		r->root = n;
		r->src = *v;
		r->path = n->path;
		c->schema->resources = lappend(c->schema->resources, r);
		res = r;
		n->resource = r;
	}
	else if (res == NULL)
	{
		JsResource *r = palloc0(sizeof(JsResource));

		r->uri = pstrdup("");
		r->root = n;
		r->src = *v;
		r->path = n->path;
		c->schema->resources = lappend(c->schema->resources, r);
		res = r;
		n->resource = r;
	}

	it = JsonbIteratorInit(jc);
	while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		char	   *kw;

		if (tok != WJB_KEY)
			continue;
		kw = pnstrdup(k.val.string.val, k.val.string.len);
		tok = JsonbIteratorNext(&it, &val, true);
		Assert(tok == WJB_VALUE);
		if (strcmp(kw, "$anchor") == 0)
			jc_add_anchor(c, res, jc_string(&val, path, kw), n, path);
		else if (strcmp(kw, "$dynamicAnchor") == 0)
		{
			JsDynAnchor *d = palloc(sizeof(JsDynAnchor));

			d->name = jc_string(&val, path, kw);
			d->node = n;
			jc_add_anchor(c, res, d->name, n, path);
			n->dyn_anchor = d->name;
			res->dyn_anchors = lappend(res->dyn_anchors, d);
		}
		else if (strcmp(kw, "$id") != 0)
			jc_keyword(c, n, kw, &val, res);
	}
	if (n->contains == NULL && (n->min_contains >= 0 || n->max_contains >= 0))
		n->min_contains = n->max_contains = -1;		/* no effect */
	return n;
}

/* ---------------------------------------------------------------------
 * Resolving references
 * ---------------------------------------------------------------------
 */

static JsNode *
jc_metaschema_node(JsCompile *c)
{
	JsNode	   *n = palloc0(sizeof(JsNode));

	n->path = pstrdup("");
	n->is_metaschema = true;
	n->max_props = n->max_items = n->max_length = -1;
	n->max_contains = n->min_contains = -1;
	n->resource = linitial(c->schema->resources);
	return n;
}

static JsNode *
jc_resolve(JsCompile *c, const char *uri, const char *where)
{
	const char *hash = strchr(uri, '#');
	char	   *base = hash ? pnstrdup(uri, hash - uri) : pstrdup(uri);
	char	   *frag = hash ? percent_decode(hash + 1) : pstrdup("");
	JsResource *res = NULL;
	ListCell   *lc;

	foreach(lc, c->schema->resources)
	{
		JsResource *r = lfirst(lc);

		if (strcmp(r->uri, base) == 0)
		{
			res = r;
			break;
		}
	}
	if (res == NULL)
	{
		if (strcmp(base, js_metaschema_uri) == 0 && frag[0] == '\0')
			return jc_metaschema_node(c);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid JSON Schema"),
				 errdetail("the reference \"%s\" at \"%s\" points outside the schema document", uri, loc(where)),
				 errhint("Remote references are not fetched: put the referenced schema under \"$defs\" with its \"$id\".")));
	}
	if (frag[0] == '\0')
		return res->root;
	if (frag[0] == '/')
	{
		JsonbValue	cur = res->src;
		char	   *tok = frag + 1;
		StringInfoData path;

		initStringInfo(&path);
		appendStringInfoString(&path, res->path);
		for (;;)
		{
			char	   *slash = strchr(tok, '/');
			StringInfoData name;
			char	   *p;
			JsonbValue *next = NULL;

			if (slash)
				*slash = '\0';
			initStringInfo(&name);
			for (p = tok; *p; p++)
			{
				if (p[0] == '~' && p[1] == '0')
				{
					appendStringInfoChar(&name, '~');
					p++;
				}
				else if (p[0] == '~' && p[1] == '1')
				{
					appendStringInfoChar(&name, '/');
					p++;
				}
				else
					appendStringInfoChar(&name, *p);
			}
			js_pointer_append(&path, name.data, name.len);
			if (cur.type == jbvBinary && JsonContainerIsObject(cur.val.binary.data))
			{
				JsonbValue	key;

				key.type = jbvString;
				key.val.string.val = name.data;
				key.val.string.len = name.len;
				next = findJsonbValueFromContainer(cur.val.binary.data,
												   JB_FOBJECT, &key);
			}
			else if (cur.type == jbvBinary && JsonContainerIsArray(cur.val.binary.data))
			{
				char	   *end;
				long		idx = strtol(name.data, &end, 10);

				if (name.len > 0 && *end == '\0' && idx >= 0 &&
					idx < JsonContainerSize(cur.val.binary.data))
					next = getIthJsonbValueFromContainer(cur.val.binary.data, idx);
			}
			if (next == NULL)
				JC_ERROR("the reference \"%s\" at \"%s\" points to nothing", uri, loc(where));
			cur = *next;
			if (!slash)
				break;
			tok = slash + 1;
		}
		return jc_schema(c, &cur, path.data, res);
	}
	foreach(lc, c->anchors)
	{
		JsAnchor   *a = lfirst(lc);

		if (strcmp(a->uri, psprintf("%s#%s", base, frag)) == 0)
			return a->node;
	}
	JC_ERROR("the reference \"%s\" at \"%s\" points to no anchor", uri, loc(where));
	return NULL;
}

JsSchema *
js_compile(Jsonb *schema, bool resolve_refs)
{
	JsCompile	c;
	JsSchema   *s;
	HASHCTL		ctl;
	JsonbValue	root;
	int			i;
	MemoryContext cxt;
	MemoryContext old;

	cxt = AllocSetContextCreate(CurrentMemoryContext, "JSON Schema",
								ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(cxt);
	s = palloc0(sizeof(JsSchema));
	s->cxt = cxt;
	s->doc = (Jsonb *) palloc(VARSIZE(schema));
	memcpy(s->doc, schema, VARSIZE(schema));

	memset(&c, 0, sizeof(c));
	c.schema = s;
	c.resolve_refs = resolve_refs;
	ctl.keysize = sizeof(JsonbContainer *);
	ctl.entrysize = sizeof(JsAddr);
	ctl.hcxt = cxt;
	c.addrs = hash_create("JSON Schema nodes", 64, &ctl,
						  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	if (JB_ROOT_IS_SCALAR(s->doc))
	{
		if (!JsonbExtractScalar(&s->doc->root, &root) || root.type != jbvBool)
			JC_ERROR("the schema is neither an object nor a boolean");
	}
	else
	{
		root.type = jbvBinary;
		root.val.binary.data = &s->doc->root;
		root.val.binary.len = VARSIZE(s->doc) - VARHDRSZ;
	}
	s->root = jc_schema(&c, &root, "", NULL);
	if (s->resources == NIL)
	{
		JsResource *r = palloc0(sizeof(JsResource));

		r->uri = pstrdup("");
		r->root = s->root;
		r->src = root;
		r->path = "";
		s->resources = lappend(s->resources, r);
		s->root->resource = r;
	}

	/* resolve references; resolving may compile more subschemas */
	for (i = 0; resolve_refs && i < list_length(c.pending); i++)
	{
		JsPendingRef *p = list_nth(c.pending, i);
		JsNode	   *n = p->node;

		if (!p->dynamic)
			n->ref = jc_resolve(&c, n->ref_uri, n->path);
		else
		{
			const char *hash = strchr(n->dynref_uri, '#');

			n->dynref = jc_resolve(&c, n->dynref_uri, n->path);
			/* a dynamic lookup only when the static target is a dynamic anchor */
			if (hash && hash[1] != '/' && n->dynref->dyn_anchor &&
				strcmp(n->dynref->dyn_anchor, percent_decode(hash + 1)) == 0)
				n->dynref_name = n->dynref->dyn_anchor;
		}
	}
	MemoryContextSwitchTo(old);
	return s;
}

/*
 * Is this jsonb value a schema, syntax only (references are not
 * resolved)?  Used for the built-in metaschema.
 */
bool
js_schema_is_valid_syntax(JsonbValue *v)
{
	Jsonb	   *jb = JsonbValueToJsonb(v);

	return js_check_internal(jb, false);
}
