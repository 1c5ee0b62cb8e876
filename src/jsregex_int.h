/*-------------------------------------------------------------------------
 *
 * jsregex_int.h
 *		Internal declarations shared by the ECMA-262 regular expression
 *		compiler (jsregex.c) and its backtracking matcher (jsregex_exec.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef AC_JSREGEX_INT_H
#define AC_JSREGEX_INT_H

#include "postgres.h"

#include "mb/pg_wchar.h"

#include "jsonschema.h"

/* steps of the machine one search may take before giving up */
#define JSRE_STEP_BUDGET	20000000
/* largest program (after expanding counted repetitions) */
#define JSRE_MAX_PROGRAM	50000
#define JSRE_MAX_CAPTURES	100
/* entries of the backtracking stack (8 bytes each) */
#define JSRE_MAX_STACK		(4 * 1024 * 1024)

typedef enum ReOp
{
	RE_CHAR,
	RE_ANY,
	RE_CLASS,
	RE_MATCH,
	RE_JMP,
	RE_SPLIT,
	RE_SAVE,
	RE_PROGRESS,
	RE_BOL,
	RE_EOL,
	RE_WORDB,
	RE_NWORDB,
	RE_BACKREF,
	RE_LOOK,
	RE_LOOKEND
} ReOp;

typedef struct ReClass
{
	int			nranges;
	int			rcap;			/* pairs allocated */
	pg_wchar   *ranges;			/* lo, hi pairs */
	int			nprops;
	int		   *props;			/* ucd property; negative: ~(prop) negated */
	bool		negated;
} ReClass;

typedef struct ReInst
{
	ReOp		op;
	int			x;				/* jump target, slot, capture, char */
	int			y;				/* second target; LOOK: negated */
	ReClass    *cls;
} ReInst;

struct JsRegex
{
	ReInst	   *prog;
	int			nprog;
	int			nslots;			/* 2 per capture, then progress marks */
	int			ncaps;
	bool		anchored;
};

/* pseudo properties for \d \w \s: negative numbers below every ucd index */
#define PROP_DIGIT	(-1000)
#define PROP_WORD	(-1001)
#define PROP_SPACE	(-1002)
#define PROP_NEG	0x40000000	/* flag for \D \W \S \P{} */

/* \w of ECMA-262 (without the i flag): ASCII letters, digits, "_" */
static inline bool
jsre_is_word(pg_wchar c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		(c >= '0' && c <= '9') || c == '_';
}

extern bool jsre_class_matches(ReClass *c, pg_wchar ch);

#endif							/* AC_JSREGEX_INT_H */
