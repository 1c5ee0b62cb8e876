/*-------------------------------------------------------------------------
 *
 * jsonschema.h
 *		The JSON Schema (draft 2020-12) validator of automation_core: a
 *		schema is compiled once into a tree of JsNode and validated against
 *		jsonb instances without converting them to text or another DOM.
 *
 *-------------------------------------------------------------------------
 */
#ifndef AC_JSONSCHEMA_H
#define AC_JSONSCHEMA_H

#include "postgres.h"

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "nodes/pg_list.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

/* jsregex.c: ECMA-262 regular expressions (the "u" flag semantics) */
typedef struct JsRegex JsRegex;

extern JsRegex *jsre_compile(const char *pattern, int len, char **errmsg);
extern bool jsre_search(JsRegex *re, const char *str, int len);

/* unicode_props.c (generated): Unicode property lookup */
extern int	ucd_lookup_property(const char *name, const char *value);
extern bool ucd_has_property(int prop, uint32 cp);

/* type bits of the "type" keyword */
#define JS_T_NULL		0x01
#define JS_T_BOOLEAN	0x02
#define JS_T_OBJECT		0x04
#define JS_T_ARRAY		0x08
#define JS_T_NUMBER		0x10
#define JS_T_STRING		0x20
#define JS_T_INTEGER	0x40

typedef struct JsNode JsNode;

/* a named dynamic anchor of a schema resource */
typedef struct JsDynAnchor
{
	char	   *name;
	JsNode	   *node;
} JsDynAnchor;

/* a schema resource: the document root or a subschema with "$id" */
typedef struct JsResource
{
	char	   *uri;			/* absolute, without fragment */
	JsNode	   *root;
	JsonbValue	src;			/* the resource's schema, for JSON pointers */
	char	   *path;			/* JSON pointer of the resource in the document */
	List	   *dyn_anchors;	/* JsDynAnchor */
} JsResource;

typedef struct JsKeyed
{
	char	   *key;
	int			keylen;
	JsNode	   *schema;			/* properties, dependentSchemas */
	int			nnames;			/* dependentRequired */
	char	  **names;
	int		   *namelens;
} JsKeyed;

typedef struct JsPattern
{
	JsRegex    *re;
	JsNode	   *schema;
} JsPattern;

struct JsNode
{
	bool		is_bool;
	bool		bool_value;
	bool		needs_eval;		/* has unevaluatedItems/Properties */
	bool		is_metaschema;	/* stands for the draft 2020-12 metaschema */
	char	   *path;			/* JSON pointer of this schema in the document */
	JsResource *resource;
	char	   *dyn_anchor;		/* its own $dynamicAnchor, or NULL */

	uint32		types;			/* JS_T_* bits; 0 when no "type" */
	bool		has_const;
	JsonbValue	const_val;
	int			nenum;
	bool		has_enum;
	JsonbValue *enum_vals;

	/* objects */
	JsKeyed    *props;			/* sorted like jsonb keys */
	int			nprops;
	JsPattern  *patprops;
	int			npatprops;
	JsNode	   *additional;
	JsNode	   *property_names;
	char	  **required;
	int		   *requiredlens;
	int			nrequired;
	JsKeyed    *dep_required;
	int			ndep_required;
	JsKeyed    *dep_schemas;
	int			ndep_schemas;
	int32		min_props;
	int32		max_props;		/* -1: none */
	JsNode	   *uneval_props;

	/* arrays */
	JsNode	  **prefix;
	int			nprefix;
	JsNode	   *items;
	JsNode	   *contains;
	int32		min_contains;	/* -1: keyword absent (default 1) */
	int32		max_contains;	/* -1: none */
	int32		min_items;
	int32		max_items;
	bool		unique_items;
	JsNode	   *uneval_items;

	/* numbers */
	Numeric		minimum;
	Numeric		maximum;
	Numeric		ex_minimum;
	Numeric		ex_maximum;
	Numeric		multiple_of;

	/* strings */
	int32		min_length;
	int32		max_length;		/* -1: none */
	JsRegex    *pattern;

	/* applicators */
	JsNode	  **all_of;
	int			nall_of;
	JsNode	  **any_of;
	int			nany_of;
	JsNode	  **one_of;
	int			none_of;
	JsNode	   *not;
	JsNode	   *if_;
	JsNode	   *then_;
	JsNode	   *else_;
	char	   *ref_uri;
	JsNode	   *ref;
	char	   *dynref_uri;
	JsNode	   *dynref;
	char	   *dynref_name;	/* anchor name looked up in the dynamic scope */
};

/* a compiled schema; everything lives in cxt */
typedef struct JsSchema
{
	MemoryContext cxt;
	Jsonb	   *doc;
	JsNode	   *root;
	List	   *resources;		/* JsResource */
	int			nnodes;
} JsSchema;

/* one validation failure */
typedef struct JsError
{
	char	   *instance_path;
	char	   *schema_path;
	char	   *message;
} JsError;

/* a remembered compiled schema, valid while nothing is evicted */
typedef struct JsSchemaRef
{
	JsSchema   *schema;
	uint64		evictions;
} JsSchemaRef;

/* jsonschema_compile.c */
extern JsSchema *js_compile(Jsonb *schema, bool resolve_refs);
extern bool js_schema_is_valid_syntax(JsonbValue *schema);

/* jsonschema_cache.c */
extern JsSchema *js_get_cached(Jsonb *schema);
extern JsSchema *js_get_cached_fn(FmgrInfo *flinfo, Jsonb *schema);
extern JsSchema *js_get_cached_ref(JsSchemaRef *ref, Jsonb *schema);
extern bool js_check(Jsonb *schema);
extern bool js_check_internal(Jsonb *schema, bool resolve_refs);

/* jsonschema_validate.c */
extern bool js_validate(JsSchema *s, Jsonb *instance, List **errors,
						int max_errors);
extern bool js_equal(JsonbValue *a, JsonbValue *b);
extern void js_pointer_append(StringInfo buf, const char *key, int len);
extern const char *js_metaschema_uri;

#endif							/* AC_JSONSCHEMA_H */
