/*-------------------------------------------------------------------------
 *
 * jsregex_exec.c
 *		The backtracking machine that runs compiled ECMA-262 patterns
 *		(see jsregex.c): character classes, \d \w \s and Unicode
 *		properties, and the unanchored search with its step budget.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"

#include "jsregex_int.h"

#define PROP_DIGIT	(-1000)
#define PROP_WORD	(-1001)
#define PROP_SPACE	(-1002)
#define PROP_NEG	0x40000000	/* flag for \D \W \S \P{} */

static bool
is_space(pg_wchar c)
{
	switch (c)
	{
		case 0x09: case 0x0A: case 0x0B: case 0x0C: case 0x0D: case 0x20:
		case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F:
		case 0x205F: case 0x3000: case 0xFEFF:
			return true;
		default:
			return c >= 0x2000 && c <= 0x200A;
	}
}

static bool
prop_matches(int prop, pg_wchar c)
{
	bool		neg = (prop & PROP_NEG) != 0 && prop >= 0;
	bool		r;

	if (prop < 0)
	{
		neg = false;
		if (prop <= PROP_DIGIT - 10)
		{
			neg = true;
			prop += 10;
		}
		if (prop == PROP_DIGIT)
			r = c >= '0' && c <= '9';
		else if (prop == PROP_WORD)
			r = jsre_is_word(c);
		else
			r = is_space(c);
		return r != neg;
	}
	r = ucd_has_property(prop & ~PROP_NEG, c);
	return r != neg;
}

bool
jsre_class_matches(ReClass *c, pg_wchar ch)
{
	int			i;
	bool		r = false;

	for (i = 0; i < c->nranges && !r; i++)
		r = ch >= c->ranges[2 * i] && ch <= c->ranges[2 * i + 1];
	for (i = 0; i < c->nprops && !r; i++)
		r = prop_matches(c->props[i], ch);
	return r != c->negated;
}

/* ---------------------------------------------------------------------
 * Backtracking machine
 * ---------------------------------------------------------------------
 */

typedef struct ReThread
{
	int			pc;				/* >= 0: resume; < 0: restore slot -pc-1 */
	int			pos;			/* position, or the slot's old value */
} ReThread;

typedef struct ReExec
{
	JsRegex    *re;
	pg_wchar   *s;
	int			len;
	int		   *slots;
	uint64		steps;
} ReExec;

static inline bool
line_term(pg_wchar c)
{
	return c == '\n' || c == '\r' || c == 0x2028 || c == 0x2029;
}

static bool
re_run(ReExec *e, int startpc, int startpos)
{
	ReThread   *stack;
	int			nstack = 0;
	int			maxstack = 64;
	bool		result = false;

	check_stack_depth();
	stack = palloc(sizeof(ReThread) * maxstack);
	stack[nstack].pc = startpc;
	stack[nstack++].pos = startpos;

#define PUSH(pc_, pos_) \
	do { \
		if (nstack == maxstack) \
		{ \
			if (maxstack >= JSRE_MAX_STACK) \
				ereport(ERROR, \
						(errcode(ERRCODE_STATEMENT_TOO_COMPLEX), \
						 errmsg("regular expression is too complex"))); \
			maxstack *= 2; \
			stack = repalloc_huge(stack, sizeof(ReThread) * maxstack); \
		} \
		stack[nstack].pc = (pc_); \
		stack[nstack++].pos = (pos_); \
	} while (0)

	while (nstack > 0)
	{
		ReThread	t = stack[--nstack];
		int			pc = t.pc;
		int			sp = t.pos;

		if (pc < 0)
		{
			e->slots[-pc - 1] = sp;
			continue;
		}
		for (;;)
		{
			ReInst	   *in = &e->re->prog[pc];

			if ((++e->steps & 0xFFF) == 0)
			{
				CHECK_FOR_INTERRUPTS();
				if (e->steps > JSRE_STEP_BUDGET)
					ereport(ERROR,
							(errcode(ERRCODE_STATEMENT_TOO_COMPLEX),
							 errmsg("regular expression is too complex"),
							 errdetail("Matching took more than %d steps.",
									   JSRE_STEP_BUDGET)));
			}
			switch (in->op)
			{
				case RE_CHAR:
					if (sp < e->len && e->s[sp] == (pg_wchar) in->x)
					{
						sp++;
						pc++;
						continue;
					}
					break;
				case RE_ANY:
					if (sp < e->len && !line_term(e->s[sp]))
					{
						sp++;
						pc++;
						continue;
					}
					break;
				case RE_CLASS:
					if (sp < e->len && jsre_class_matches(in->cls, e->s[sp]))
					{
						sp++;
						pc++;
						continue;
					}
					break;
				case RE_MATCH:
				case RE_LOOKEND:
					result = true;
					goto out;
				case RE_JMP:
					pc = in->x;
					continue;
				case RE_SPLIT:
					PUSH(in->y, sp);
					pc = in->x;
					continue;
				case RE_SAVE:
					PUSH(-in->x - 1, e->slots[in->x]);
					e->slots[in->x] = sp;
					pc++;
					continue;
				case RE_PROGRESS:
					if (e->slots[in->x] == sp)
						break;
					pc++;
					continue;
				case RE_BOL:
					if (sp == 0)
					{
						pc++;
						continue;
					}
					break;
				case RE_EOL:
					if (sp == e->len)
					{
						pc++;
						continue;
					}
					break;
				case RE_WORDB:
				case RE_NWORDB:
					{
						bool		a = sp > 0 && jsre_is_word(e->s[sp - 1]);
						bool		b = sp < e->len && jsre_is_word(e->s[sp]);

						if ((a != b) == (in->op == RE_WORDB))
						{
							pc++;
							continue;
						}
						break;
					}
				case RE_BACKREF:
					{
						int			st = e->slots[2 * in->x];
						int			en = e->slots[2 * in->x + 1];
						int			n;

						if (st < 0 || en < 0 || en < st)
						{
							pc++;	/* an unset group matches empty */
							continue;
						}
						n = en - st;
						if (sp + n <= e->len &&
							memcmp(e->s + st, e->s + sp, n * sizeof(pg_wchar)) == 0)
						{
							sp += n;
							pc++;
							continue;
						}
						break;
					}
				case RE_LOOK:
					{
						int		   *save = palloc(sizeof(int) * e->re->nslots);
						bool		m;

						memcpy(save, e->slots, sizeof(int) * e->re->nslots);
						m = re_run(e, pc + 1, sp);
						if (in->y || !m)
							memcpy(e->slots, save, sizeof(int) * e->re->nslots);
						pfree(save);
						if (m != (bool) in->y)
						{
							pc = in->x;
							continue;
						}
						break;
					}
			}
			break;				/* this thread failed */
		}
	}
out:
	pfree(stack);
	return result;
}

/* does the pattern match anywhere in str (database encoding)? */
bool
jsre_search(JsRegex *re, const char *str, int len)
{
	ReExec		e;
	int			start;
	bool		found = false;
	int			i;

	e.re = re;
	e.s = palloc(sizeof(pg_wchar) * (len + 1));
	e.len = pg_mb2wchar_with_len(str, e.s, len);
	e.slots = palloc(sizeof(int) * re->nslots);
	e.steps = 0;
	for (start = 0; start <= e.len && !found; start++)
	{
		/* a pattern starting with a literal can only start where it is */
		if (re->prog[0].op == RE_CHAR && !re->anchored &&
			(start == e.len || e.s[start] != (pg_wchar) re->prog[0].x))
			continue;
		for (i = 0; i < re->nslots; i++)
			e.slots[i] = -1;
		found = re_run(&e, 0, start);
		if (re->anchored)
			break;
	}
	pfree(e.s);
	pfree(e.slots);
	return found;
}
