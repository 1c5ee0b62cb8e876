/*-------------------------------------------------------------------------
 *
 * compat.h
 *		Shims over differences between the PostgreSQL major versions
 *		automation_core builds against (13 to 17).
 *
 *-------------------------------------------------------------------------
 */
#ifndef AC_COMPAT_H
#define AC_COMPAT_H

#include "postgres.h"

#if PG_VERSION_NUM < 130000
#error "automation_core needs PostgreSQL 13 or later"
#endif

/* ExecInsertIndexTuples gained onlySummarizing in 16. */
#if PG_VERSION_NUM >= 160000
#define ac_exec_insert_index_tuples(rri, slot, estate) \
	ExecInsertIndexTuples((rri), (slot), (estate), false, false, NULL, NIL, false)
#elif PG_VERSION_NUM >= 140000
#define ac_exec_insert_index_tuples(rri, slot, estate) \
	ExecInsertIndexTuples((rri), (slot), (estate), false, false, NULL, NIL)
#else
#define ac_exec_insert_index_tuples(rri, slot, estate) \
	ExecInsertIndexTuples((slot), (estate), false, NULL, NIL)
#endif

/* getIdentitySequence takes a Relation from 17 on. */
#if PG_VERSION_NUM >= 170000
#define ac_identity_sequence(rel, attnum) getIdentitySequence((rel), (attnum), false)
#else
#define ac_identity_sequence(rel, attnum) \
	getIdentitySequence(RelationGetRelid(rel), (attnum), false)
#endif

#endif							/* AC_COMPAT_H */
