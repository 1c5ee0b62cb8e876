/*-------------------------------------------------------------------------
 *
 * jsregex.c
 *		A small backtracking engine for ECMA-262 regular expressions, as
 *		JSON Schema's "pattern" and "patternProperties" use them: the
 *		syntax and meaning of JavaScript with the "u" flag (\d, \w, \s, \b,
 *		"." and \p{...} as JavaScript defines them), unanchored search.
 *
 *		This file parses a pattern into a tree and compiles it into a
 *		program for the backtracking machine of jsregex_exec.c, which has
 *		an explicit stack, a step budget and interrupt checks, so that a
 *		catastrophic pattern ends in an error (or at statement_timeout)
 *		instead of hanging.
 *
 *		Not supported (the pattern is refused as invalid): lookbehind, the
 *		emoji properties, and flags (JSON Schema has none).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"

#include "jsregex_int.h"

typedef enum ReNodeKind
{
	N_CHAR, N_ANY, N_CLASS, N_BOL, N_EOL, N_WORDB, N_NWORDB,
	N_GROUP, N_CONCAT, N_ALT, N_REPEAT, N_BACKREF, N_LOOK, N_EMPTY
} ReNodeKind;

typedef struct ReNode
{
	ReNodeKind	kind;
	pg_wchar	c;
	ReClass    *cls;
	int			cap;			/* GROUP: capture number or -1 */
	int			min,
				max;			/* REPEAT; max -1 = unbounded */
	bool		greedy;
	bool		negated;		/* LOOK */
	List	   *kids;
	char	   *name;			/* named group or \k reference */
} ReNode;


typedef struct ReParser
{
	pg_wchar   *s;
	int			len;
	int			pos;
	int			ncaps;			/* captures seen so far */
	int			total_caps;		/* all captures of the pattern */
	List	   *names;			/* capture names, index = capture - 1 */
	char	   *error;
	int			depth;
} ReParser;

static ReNode *re_alt(ReParser *p);

#define RE_FAIL(p, msg) do { if (!(p)->error) (p)->error = (msg); return NULL; } while (0)

static ReNode *
new_node(ReNodeKind kind)
{
	ReNode	   *n = palloc0(sizeof(ReNode));

	n->kind = kind;
	n->cap = -1;
	return n;
}

static ReClass *
new_class(void)
{
	ReClass    *c = palloc0(sizeof(ReClass));

	c->rcap = 8;
	c->ranges = palloc(sizeof(pg_wchar) * 2 * c->rcap);
	c->props = palloc(sizeof(int) * 4);
	return c;
}

static void
cls_add_range(ReClass *c, pg_wchar lo, pg_wchar hi)
{
	if (c->nranges == c->rcap)
	{
		c->rcap *= 2;
		c->ranges = repalloc(c->ranges, sizeof(pg_wchar) * 2 * c->rcap);
	}
	c->ranges[c->nranges * 2] = lo;
	c->ranges[c->nranges * 2 + 1] = hi;
	c->nranges++;
}

static void
cls_add_prop(ReClass *c, int prop)
{
	c->props = repalloc(c->props, sizeof(int) * (c->nprops + 1));
	c->props[c->nprops++] = prop;
}


/* ---------------------------------------------------------------------
 * Parser
 * ---------------------------------------------------------------------
 */

static inline bool
more(ReParser *p)
{
	return p->pos < p->len;
}

static inline pg_wchar
peek(ReParser *p)
{
	return p->pos < p->len ? p->s[p->pos] : 0;
}

static int
hexval(pg_wchar c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool
read_hex(ReParser *p, int n, pg_wchar *out)
{
	pg_wchar	v = 0;
	int			i;

	if (p->pos + n > p->len)
		return false;
	for (i = 0; i < n; i++)
	{
		int			h = hexval(p->s[p->pos + i]);

		if (h < 0)
			return false;
		v = v * 16 + h;
	}
	p->pos += n;
	*out = v;
	return true;
}

/* \u escapes: \uHHHH (with surrogate pairs) or \u{H...} */
static bool
read_unicode_escape(ReParser *p, pg_wchar *out)
{
	if (peek(p) == '{')
	{
		pg_wchar	v = 0;
		int			n = 0;

		p->pos++;
		while (more(p) && hexval(peek(p)) >= 0)
		{
			v = v * 16 + hexval(peek(p));
			if (v > 0x10FFFF)
				return false;
			p->pos++;
			n++;
		}
		if (n == 0 || peek(p) != '}')
			return false;
		p->pos++;
		*out = v;
		return true;
	}
	if (!read_hex(p, 4, out))
		return false;
	if (*out >= 0xD800 && *out <= 0xDBFF && p->pos + 6 <= p->len &&
		p->s[p->pos] == '\\' && p->s[p->pos + 1] == 'u')
	{
		int			save = p->pos;
		pg_wchar	lo;

		p->pos += 2;
		if (read_hex(p, 4, &lo) && lo >= 0xDC00 && lo <= 0xDFFF)
			*out = 0x10000 + ((*out - 0xD800) << 10) + (lo - 0xDC00);
		else
			p->pos = save;
	}
	return true;
}

/* \p{...} after the "p"; adds to cls */
static bool
read_property(ReParser *p, ReClass *cls, bool negated)
{
	char		name[128];
	char	   *value = NULL;
	int			n = 0;
	int			prop;

	if (peek(p) != '{')
		return false;
	p->pos++;
	while (more(p) && peek(p) != '}')
	{
		pg_wchar	c = peek(p);

		if (n >= (int) sizeof(name) - 1 ||
			!(jsre_is_word(c) || c == '='))
			return false;
		name[n++] = (char) c;
		p->pos++;
	}
	if (!more(p) || n == 0)
		return false;
	p->pos++;
	name[n] = '\0';
	value = strchr(name, '=');
	if (value)
		*value++ = '\0';
	prop = ucd_lookup_property(name, value);
	if (prop < 0)
		return false;
	cls_add_prop(cls, negated ? (prop | PROP_NEG) : prop);
	return true;
}

static bool
is_syntax_char(pg_wchar c)
{
	return c && strchr("^$\\.*+?()[]{}|/", (int) c) != NULL;
}

/*
 * A character escape after the backslash (shared by atoms and classes).
 * Returns false when it is not one.
 */
static bool
read_char_escape(ReParser *p, pg_wchar *out, bool in_class)
{
	pg_wchar	c = peek(p);

	p->pos++;
	switch (c)
	{
		case 't':
			*out = '\t';
			return true;
		case 'n':
			*out = '\n';
			return true;
		case 'v':
			*out = '\v';
			return true;
		case 'f':
			*out = '\f';
			return true;
		case 'r':
			*out = '\r';
			return true;
		case '0':
			if (hexval(peek(p)) >= 0 && peek(p) <= '9')
				return false;
			*out = 0;
			return true;
		case 'c':
			if ((peek(p) >= 'a' && peek(p) <= 'z') || (peek(p) >= 'A' && peek(p) <= 'Z'))
			{
				*out = peek(p) % 32;
				p->pos++;
				return true;
			}
			return false;
		case 'x':
			return read_hex(p, 2, out);
		case 'u':
			return read_unicode_escape(p, out);
		case '-':
			if (in_class)
			{
				*out = '-';
				return true;
			}
			return false;
		case 'b':
			if (in_class)
			{
				*out = '\b';
				return true;
			}
			return false;
		default:
			if (is_syntax_char(c))
			{
				*out = c;
				return true;
			}
			return false;
	}
}

/* \d \D \w \W \s \S \p \P into cls; false when c is none of them */
static bool
read_class_escape(ReParser *p, pg_wchar c, ReClass *cls, bool *bad)
{
	int			prop;

	switch (c)
	{
		case 'd':
			prop = PROP_DIGIT;
			break;
		case 'w':
			prop = PROP_WORD;
			break;
		case 's':
			prop = PROP_SPACE;
			break;
		case 'D':
			prop = PROP_DIGIT - 10;
			break;
		case 'W':
			prop = PROP_WORD - 10;
			break;
		case 'S':
			prop = PROP_SPACE - 10;
			break;
		case 'p':
		case 'P':
			p->pos++;
			if (!read_property(p, cls, c == 'P'))
				*bad = true;
			return true;
		default:
			return false;
	}
	p->pos++;
	cls_add_prop(cls, prop);
	return true;
}

static ReNode *
re_class(ReParser *p)
{
	ReClass    *cls = new_class();
	ReNode	   *n = new_node(N_CLASS);

	n->cls = cls;
	if (peek(p) == '^')
	{
		cls->negated = true;
		p->pos++;
	}
	while (more(p) && peek(p) != ']')
	{
		pg_wchar	lo,
					hi;
		bool		lo_is_class = false;
		bool		bad = false;

		/* one class atom */
		if (peek(p) == '\\')
		{
			p->pos++;
			if (!more(p))
				RE_FAIL(p, "the pattern ends with a backslash");
			if (read_class_escape(p, peek(p), cls, &bad))
			{
				if (bad)
					RE_FAIL(p, "unknown Unicode property");
				lo_is_class = true;
				lo = 0;
			}
			else if (!read_char_escape(p, &lo, true))
				RE_FAIL(p, "invalid escape in a character class");
		}
		else
			lo = p->s[p->pos++];

		if (peek(p) == '-' && p->pos + 1 < p->len && p->s[p->pos + 1] != ']')
		{
			bool		hi_is_class = false;

			p->pos++;
			if (peek(p) == '\\')
			{
				p->pos++;
				if (!more(p))
					RE_FAIL(p, "the pattern ends with a backslash");
				if (read_class_escape(p, peek(p), cls, &bad))
					hi_is_class = true;
				else if (!read_char_escape(p, &hi, true))
					RE_FAIL(p, "invalid escape in a character class");
			}
			else
				hi = p->s[p->pos++];
			if (lo_is_class || hi_is_class || bad)
				RE_FAIL(p, "a class escape cannot bound a range");
			if (lo > hi)
				RE_FAIL(p, "range out of order in character class");
			cls_add_range(cls, lo, hi);
		}
		else if (!lo_is_class)
			cls_add_range(cls, lo, lo);
	}
	if (!more(p))
		RE_FAIL(p, "unterminated character class");
	p->pos++;
	return n;
}

static bool
read_int(ReParser *p, int *out)
{
	long		v = 0;
	int			n = 0;

	while (more(p) && peek(p) >= '0' && peek(p) <= '9')
	{
		v = v * 10 + (peek(p) - '0');
		if (v > 100000)
			v = 100000;
		p->pos++;
		n++;
	}
	*out = (int) v;
	return n > 0;
}

static char *
read_group_name(ReParser *p)
{
	StringInfoData b;

	initStringInfo(&b);
	while (more(p) && peek(p) != '>')
	{
		pg_wchar	c = peek(p);

		unsigned char utf8[8];

		if (!(jsre_is_word(c) || c == '$' || c > 127) || (b.len == 0 && c >= '0' && c <= '9'))
			return NULL;
		/* the name as UTF-8, so that two names differ wherever they do */
		unicode_to_utf8(c, utf8);
		appendBinaryStringInfo(&b, (char *) utf8, pg_utf_mblen(utf8));
		p->pos++;
	}
	if (!more(p) || b.len == 0)
		return NULL;
	p->pos++;
	return b.data;
}

static ReNode *
re_atom(ReParser *p)
{
	pg_wchar	c = peek(p);
	ReNode	   *n;

	switch (c)
	{
		case '.':
			p->pos++;
			return new_node(N_ANY);
		case '^':
			p->pos++;
			return new_node(N_BOL);
		case '$':
			p->pos++;
			return new_node(N_EOL);
		case '[':
			p->pos++;
			return re_class(p);
		case '(':
			p->pos++;
			if (++p->depth > 200)
				RE_FAIL(p, "groups nested too deeply");
			if (peek(p) == '?')
			{
				p->pos++;
				if (peek(p) == ':')
				{
					p->pos++;
					n = new_node(N_GROUP);
				}
				else if (peek(p) == '=' || peek(p) == '!')
				{
					n = new_node(N_LOOK);
					n->negated = (peek(p) == '!');
					p->pos++;
				}
				else if (peek(p) == '<' && p->pos + 1 < p->len &&
						 (p->s[p->pos + 1] == '=' || p->s[p->pos + 1] == '!'))
					RE_FAIL(p, "lookbehind is not supported");
				else if (peek(p) == '<')
				{
					p->pos++;
					n = new_node(N_GROUP);
					n->name = read_group_name(p);
					if (n->name == NULL)
						RE_FAIL(p, "invalid capture group name");
					n->cap = ++p->ncaps;
				}
				else
					RE_FAIL(p, "invalid group");
			}
			else
			{
				n = new_node(N_GROUP);
				n->cap = ++p->ncaps;
			}
			if (n->cap > JSRE_MAX_CAPTURES)
				RE_FAIL(p, "too many capture groups");
			{
				ReNode	   *body = re_alt(p);

				if (body == NULL)
					return NULL;
				n->kids = list_make1(body);
			}
			if (peek(p) != ')')
				RE_FAIL(p, "unterminated group");
			p->pos++;
			p->depth--;
			return n;
		case ')':
			RE_FAIL(p, "unmatched parenthesis");
		case '*':
		case '+':
		case '?':
		case '{':
			RE_FAIL(p, "nothing to repeat");
		case '}':
		case ']':
			RE_FAIL(p, "lone bracket (not allowed with the u flag)");
		case '\\':
			p->pos++;
			if (!more(p))
				RE_FAIL(p, "the pattern ends with a backslash");
			c = peek(p);
			if (c == 'b' || c == 'B')
			{
				p->pos++;
				return new_node(c == 'b' ? N_WORDB : N_NWORDB);
			}
			if (c >= '1' && c <= '9')
			{
				int			num;

				read_int(p, &num);
				if (num > p->total_caps)
					RE_FAIL(p, "back reference to a group that does not exist");
				n = new_node(N_BACKREF);
				n->cap = num;
				return n;
			}
			if (c == 'k')
			{
				p->pos++;
				if (peek(p) != '<')
					RE_FAIL(p, "invalid named reference");
				p->pos++;
				n = new_node(N_BACKREF);
				n->name = read_group_name(p);
				if (n->name == NULL)
					RE_FAIL(p, "invalid named reference");
				return n;
			}
			{
				ReClass    *cls = new_class();
				bool		bad = false;

				if (read_class_escape(p, c, cls, &bad))
				{
					if (bad)
						RE_FAIL(p, "unknown Unicode property");
					n = new_node(N_CLASS);
					n->cls = cls;
					return n;
				}
			}
			n = new_node(N_CHAR);
			if (!read_char_escape(p, &n->c, false))
				RE_FAIL(p, "invalid escape");
			return n;
		default:
			p->pos++;
			n = new_node(N_CHAR);
			n->c = c;
			return n;
	}
}

static ReNode *
re_term(ReParser *p)
{
	ReNode	   *atom = re_atom(p);
	ReNode	   *r;
	int			min,
				max;

	if (atom == NULL)
		return NULL;
	switch (peek(p))
	{
		case '*':
			min = 0;
			max = -1;
			p->pos++;
			break;
		case '+':
			min = 1;
			max = -1;
			p->pos++;
			break;
		case '?':
			min = 0;
			max = 1;
			p->pos++;
			break;
		case '{':
			p->pos++;
			if (!read_int(p, &min))
				RE_FAIL(p, "incomplete quantifier");
			max = min;
			if (peek(p) == ',')
			{
				p->pos++;
				if (!read_int(p, &max))
					max = -1;
			}
			if (peek(p) != '}')
				RE_FAIL(p, "incomplete quantifier");
			p->pos++;
			if (max >= 0 && max < min)
				RE_FAIL(p, "numbers out of order in quantifier");
			break;
		default:
			return atom;
	}
	if (atom->kind == N_BOL || atom->kind == N_EOL || atom->kind == N_WORDB ||
		atom->kind == N_NWORDB || atom->kind == N_LOOK)
		RE_FAIL(p, "an assertion cannot be repeated");
	r = new_node(N_REPEAT);
	r->min = min;
	r->max = max;
	r->greedy = true;
	if (peek(p) == '?')
	{
		r->greedy = false;
		p->pos++;
	}
	r->kids = list_make1(atom);
	return r;
}

static ReNode *
re_concat(ReParser *p)
{
	ReNode	   *n = new_node(N_CONCAT);

	while (more(p) && peek(p) != '|' && peek(p) != ')')
	{
		ReNode	   *t = re_term(p);

		if (t == NULL)
			return NULL;
		n->kids = lappend(n->kids, t);
	}
	return n;
}

static ReNode *
re_alt(ReParser *p)
{
	ReNode	   *first = re_concat(p);
	ReNode	   *n;

	if (first == NULL || peek(p) != '|')
		return first;
	n = new_node(N_ALT);
	n->kids = list_make1(first);
	while (peek(p) == '|' && more(p))
	{
		ReNode	   *k;

		p->pos++;
		k = re_concat(p);
		if (k == NULL)
			return NULL;
		n->kids = lappend(n->kids, k);
	}
	return n;
}

/* ---------------------------------------------------------------------
 * Compiler
 * ---------------------------------------------------------------------
 */

typedef struct ReCompiler
{
	ReInst	   *prog;
	int			n;
	int			cap;
	int			nslots;
	ReParser   *p;
	bool		too_big;
} ReCompiler;

static int
emit(ReCompiler *c, ReOp op, int x, int y)
{
	if (c->n >= JSRE_MAX_PROGRAM)
	{
		c->too_big = true;
		return c->n;
	}
	if (c->n == c->cap)
	{
		c->cap *= 2;
		c->prog = repalloc(c->prog, sizeof(ReInst) * c->cap);
	}
	c->prog[c->n].op = op;
	c->prog[c->n].x = x;
	c->prog[c->n].y = y;
	c->prog[c->n].cls = NULL;
	return c->n++;
}

static bool
nullable(ReNode *n)
{
	ListCell   *lc;

	switch (n->kind)
	{
		case N_CHAR:
		case N_ANY:
		case N_CLASS:
			return false;
		case N_CONCAT:
			foreach(lc, n->kids)
				if (!nullable(lfirst(lc)))
				return false;
			return true;
		case N_ALT:
			foreach(lc, n->kids)
				if (nullable(lfirst(lc)))
				return true;
			return false;
		case N_GROUP:
			return nullable(linitial(n->kids));
		case N_REPEAT:
			return n->min == 0 || nullable(linitial(n->kids));
		default:
			return true;
	}
}

static int
cap_of_name(ReCompiler *c, const char *name)
{
	ListCell   *lc;
	int			i = 1;

	foreach(lc, c->p->names)
	{
		if (lfirst(lc) && strcmp(lfirst(lc), name) == 0)
			return i;
		i++;
	}
	return -1;
}

static void
compile_node(ReCompiler *c, ReNode *n)
{
	ListCell   *lc;
	int			i;

	if (c->too_big)
		return;
	check_stack_depth();
	switch (n->kind)
	{
		case N_CHAR:
			emit(c, RE_CHAR, n->c, 0);
			break;
		case N_ANY:
			emit(c, RE_ANY, 0, 0);
			break;
		case N_CLASS:
			i = emit(c, RE_CLASS, 0, 0);
			if (!c->too_big)
				c->prog[i].cls = n->cls;
			break;
		case N_BOL:
			emit(c, RE_BOL, 0, 0);
			break;
		case N_EOL:
			emit(c, RE_EOL, 0, 0);
			break;
		case N_WORDB:
			emit(c, RE_WORDB, 0, 0);
			break;
		case N_NWORDB:
			emit(c, RE_NWORDB, 0, 0);
			break;
		case N_EMPTY:
			break;
		case N_BACKREF:
			{
				int			cap = n->name ? cap_of_name(c, n->name) : n->cap;

				if (cap < 0)
					c->p->error = "named reference to a group that does not exist";
				emit(c, RE_BACKREF, cap, 0);
				break;
			}
		case N_GROUP:
			if (n->cap > 0)
				emit(c, RE_SAVE, 2 * n->cap, 0);
			compile_node(c, linitial(n->kids));
			if (n->cap > 0)
				emit(c, RE_SAVE, 2 * n->cap + 1, 0);
			break;
		case N_CONCAT:
			foreach(lc, n->kids)
				compile_node(c, lfirst(lc));
			break;
		case N_ALT:
			{
				int		   *jumps = palloc(sizeof(int) * list_length(n->kids));
				int			k = 0;

				foreach(lc, n->kids)
				{
					int			split = -1;

					if (lnext(n->kids, lc))
						split = emit(c, RE_SPLIT, c->n + 1, 0);
					compile_node(c, lfirst(lc));
					if (lnext(n->kids, lc))
					{
						jumps[k++] = emit(c, RE_JMP, 0, 0);
						if (!c->too_big)
							c->prog[split].y = c->n;
					}
				}
				for (i = 0; i < k && !c->too_big; i++)
					c->prog[jumps[i]].x = c->n;
				break;
			}
		case N_LOOK:
			{
				int			look = emit(c, RE_LOOK, 0, n->negated);

				compile_node(c, linitial(n->kids));
				emit(c, RE_LOOKEND, 0, 0);
				if (!c->too_big)
					c->prog[look].x = c->n;
				break;
			}
		case N_REPEAT:
			{
				ReNode	   *kid = linitial(n->kids);
				bool		nul = nullable(kid);
				int			count = n->max >= 0 ? n->max : n->min;

				/* the required copies */
				for (i = 0; i < n->min && !c->too_big; i++)
					compile_node(c, kid);
				if (n->max < 0)
				{
					/* L1: split L2, L3; L2: [mark] kid [progress]; jmp L1; L3: */
					int			slot = c->nslots++;
					int			l1 = emit(c, RE_SPLIT, 0, 0);

					if (nul)
						emit(c, RE_SAVE, slot, 0);
					compile_node(c, kid);
					if (nul)
						emit(c, RE_PROGRESS, slot, 0);
					emit(c, RE_JMP, l1, 0);
					if (!c->too_big)
					{
						c->prog[l1].x = n->greedy ? l1 + 1 : c->n;
						c->prog[l1].y = n->greedy ? c->n : l1 + 1;
					}
				}
				else
				{
					/* optional copies: split in, out */
					for (i = n->min; i < count && !c->too_big; i++)
					{
						int			s = emit(c, RE_SPLIT, 0, 0);

						compile_node(c, kid);
						if (!c->too_big)
						{
							c->prog[s].x = n->greedy ? s + 1 : c->n;
							c->prog[s].y = n->greedy ? c->n : s + 1;
						}
					}
				}
				break;
			}
	}
}

static void
count_captures(ReParser *p)
{
	int			i;
	bool		in_class = false;

	p->total_caps = 0;
	for (i = 0; i < p->len; i++)
	{
		pg_wchar	c = p->s[i];

		if (c == '\\')
			i++;
		else if (in_class)
		{
			if (c == ']')
				in_class = false;
		}
		else if (c == '[')
			in_class = true;
		else if (c == '(')
		{
			if (i + 1 < p->len && p->s[i + 1] == '?')
			{
				if (i + 2 < p->len && p->s[i + 2] == '<' && i + 3 < p->len &&
					p->s[i + 3] != '=' && p->s[i + 3] != '!')
					p->total_caps++;
			}
			else
				p->total_caps++;
		}
	}
}

static void
collect_names(ReParser *p, ReNode *n)
{
	ListCell   *lc;

	if (n->kind == N_GROUP && n->cap > 0)
	{
		while (list_length(p->names) < n->cap)
			p->names = lappend(p->names, NULL);
		if (n->name)
		{
			ListCell   *lc2;

			foreach(lc2, p->names)
				if (lfirst(lc2) && strcmp(lfirst(lc2), n->name) == 0)
				p->error = "duplicate capture group name";
			list_nth_cell(p->names, n->cap - 1)->ptr_value = n->name;
		}
	}
	foreach(lc, n->kids)
		collect_names(p, lfirst(lc));
}

/*
 * Compiles a pattern (in the database encoding); NULL with *errmsg set
 * when it is not a valid ECMA-262 pattern or uses what is not supported.
 */
JsRegex *
jsre_compile(const char *pattern, int len, char **errmsg)
{
	ReParser	p;
	ReCompiler	c;
	ReNode	   *tree;
	JsRegex    *re;

	memset(&p, 0, sizeof(p));
	p.s = palloc(sizeof(pg_wchar) * (len + 1));
	p.len = pg_mb2wchar_with_len(pattern, p.s, len);
	count_captures(&p);
	tree = re_alt(&p);
	if (tree && more(&p))
	{
		tree = NULL;
		p.error = "unmatched parenthesis";
	}
	if (tree)
		collect_names(&p, tree);
	if (tree == NULL || p.error)
	{
		*errmsg = p.error ? p.error : "invalid pattern";
		return NULL;
	}
	memset(&c, 0, sizeof(c));
	c.cap = 64;
	c.prog = palloc(sizeof(ReInst) * c.cap);
	c.nslots = 2 * (p.ncaps + 1);
	c.p = &p;
	compile_node(&c, tree);
	emit(&c, RE_MATCH, 0, 0);
	if (c.too_big)
	{
		*errmsg = "pattern is too large once its repetitions are expanded";
		return NULL;
	}
	if (p.error)
	{
		*errmsg = p.error;
		return NULL;
	}
	re = palloc0(sizeof(JsRegex));
	re->prog = c.prog;
	re->nprog = c.n;
	re->nslots = c.nslots;
	re->ncaps = p.ncaps;
	re->anchored = (c.n > 0 && c.prog[0].op == RE_BOL);
	return re;
}

