/*-------------------------------------------------------------------------
 *
 * uuid_v7.c
 *		Time-ordered UUIDs (RFC 9562 version 7) for the rows start_run
 *		creates, and the byte order that C code sorts uuids by.
 *
 *		Layout: 48 bits of Unix time in milliseconds, the version (7), 12
 *		bits of the millisecond's fraction in 1/4096ths (RFC 9562 section
 *		6.2, method 3), the variant, and 62 random bits. Within a backend
 *		the values strictly increase: when the clock has not moved on (or
 *		went back), the previous value's 60-bit time field plus one is used.
 *
 *		Why: start_run inserts its item executions in queue order, and the
 *		primary key of a random (version 4) id puts every new entry on some
 *		random leaf page, while increasing ids all go to the rightmost one,
 *		which nbtree reaches without descending the tree. Workers then work
 *		through neighbouring keys as well.
 *
 *		The random bits come from pg_strong_random, like gen_random_uuid's,
 *		but are drawn 4 kB at a time: one call per 512 UUIDs instead of one
 *		per UUID, which costs more than the rest of the function.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "automation_core.h"

PG_FUNCTION_INFO_V1(ac_uuid_v7);

#define RANDOM_POOL_BYTES 4096

static uint8 random_pool[RANDOM_POOL_BYTES];
static int	random_pool_used = RANDOM_POOL_BYTES;

/* the last 60-bit time field handed out: ms << 12 | fraction */
static uint64 last_time_field = 0;

static void
random_bytes(uint8 *dst, int n)
{
	Assert(n <= RANDOM_POOL_BYTES);
	if (random_pool_used + n > RANDOM_POOL_BYTES)
	{
		if (!pg_strong_random(random_pool, RANDOM_POOL_BYTES))
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not generate random values")));
		random_pool_used = 0;
	}
	memcpy(dst, random_pool + random_pool_used, n);
	/* bytes handed out once are not kept */
	memset(random_pool + random_pool_used, 0, n);
	random_pool_used += n;
}

/* Fills u with a new version 7 UUID. */
static void
uuid_v7_fill(pg_uuid_t *u)
{
	TimestampTz now = GetCurrentTimestamp();
	uint64		unix_us;
	uint64		field;
	uint64		ms;
	int			i;

	/* microseconds since 1970; the clock of a running server is past 2000 */
	unix_us = (uint64) now +
		(uint64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY;
	field = (unix_us / 1000) << 12 | ((unix_us % 1000) << 12) / 1000;
	if (field <= last_time_field)
		field = last_time_field + 1;
	last_time_field = field;

	/* bytes 0-5: milliseconds; 6-7: version and fraction; 8-15: random */
	ms = field >> 12;
	for (i = 0; i < 6; i++)
		u->data[i] = (uint8) (ms >> (8 * (5 - i)));
	u->data[6] = 0x70 | (uint8) ((field >> 8) & 0x0f);
	u->data[7] = (uint8) (field & 0xff);
	random_bytes(u->data + 8, 8);
	u->data[8] = (u->data[8] & 0x3f) | 0x80;
}

/* uuid_v7() → uuid */
Datum
ac_uuid_v7(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *u = palloc(sizeof(pg_uuid_t));

	uuid_v7_fill(u);
	PG_RETURN_UUID_P(u);
}

/* uuid's own order (uuid_cmp compares the bytes), for qsort and bsearch */
int
ac_uuid_cmp(const void *a, const void *b)
{
	return memcmp(a, b, UUID_LEN);
}
