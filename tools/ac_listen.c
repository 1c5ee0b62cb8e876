/*-------------------------------------------------------------------------
 *
 * ac_listen.c
 *		A consumer of the automation_core event log: prints every event as
 *		one JSON line on stdout, exactly in the order next_events returns
 *		them, and acknowledges each batch once it is written out.
 *
 *		The loop: LISTEN automation_core_events, register the consumer,
 *		drain next_events until it returns less than a full batch, then
 *		wait for a notification, at most --poll seconds (the safety net for
 *		a lost or skipped NOTIFY). A lost connection is re-established with
 *		a growing delay; the drain after reconnecting catches up on whatever
 *		was written meanwhile, since the position lives in the database.
 *		Events printed but not acknowledged when the connection dropped come
 *		again and are not printed twice.
 *
 *		Usage: ac_listen [options] CONNINFO CONSUMER
 *		  --from-start     replay every retained event when the consumer is new
 *		  --batch N        events per next_events call (default 1000)
 *		  --poll SECONDS   longest wait for a notification (default 10)
 *		  --max-idle SECS  exit 0 after this long without an event
 *		  --exit-after N   exit 0 after printing N events
 *		  --quiet          no progress messages on stderr
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

#include "libpq-fe.h"

#define CHANNEL "automation_core_events"

static const char *conninfo;
static const char *consumer;
static int	from_start = 0;
static int	batch = 1000;
static double poll_secs = 10;
static double max_idle = 0;
static long exit_after = 0;
static int	quiet = 0;

static long printed = 0;
static volatile sig_atomic_t stop = 0;

/*
 * Ids printed but not yet acknowledged. When the connection drops between
 * printing and acknowledging, the next drain returns them again; they are
 * not printed twice.
 */
static long long *unacked = NULL;
static int	nunacked = 0;

static int
was_printed(long long id)
{
	int			i;

	for (i = 0; i < nunacked; i++)
		if (unacked[i] == id)
			return 1;
	return 0;
}

static void
note(const char *fmt, const char *arg)
{
	if (quiet)
		return;
	fprintf(stderr, "ac_listen: ");
	fprintf(stderr, fmt, arg ? arg : "");
	fputc('\n', stderr);
}

static double
now_secs(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
on_signal(int sig)
{
	(void) sig;
	stop = 1;
}

static void
usage(void)
{
	fprintf(stderr,
			"usage: ac_listen [--from-start] [--batch N] [--poll SECONDS] [--max-idle SECONDS]\n"
			"                 [--exit-after N] [--quiet] CONNINFO CONSUMER\n");
	exit(2);
}

/* Run a command that returns nothing interesting; false on failure */
static int
exec_ok(PGconn *conn, const char *sql, int nparams, const char *const *params)
{
	PGresult   *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(res);
	int			ok = (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK);

	if (!ok)
		note("%s", PQerrorMessage(conn));
	PQclear(res);
	return ok;
}

static PGconn *
connect_once(void)
{
	const char *keys[] = {"dbname", "fallback_application_name", NULL};
	const char *vals[] = {conninfo, "ac_listen", NULL};
	const char *params[2];
	char		fs[6];
	PGconn	   *conn = PQconnectdbParams(keys, vals, 1);

	if (PQstatus(conn) != CONNECTION_OK)
	{
		note("cannot connect: %s", PQerrorMessage(conn));
		PQfinish(conn);
		return NULL;
	}
	snprintf(fs, sizeof(fs), "%s", from_start ? "true" : "false");
	params[0] = consumer;
	params[1] = fs;
	if (!exec_ok(conn, "LISTEN " CHANNEL, 0, NULL) ||
		!exec_ok(conn, "SELECT automation_core.register_consumer($1, $2::boolean)", 2, params))
	{
		PQfinish(conn);
		return NULL;
	}
	note("listening as consumer %s", consumer);
	return conn;
}

/* Connect, retrying with a growing delay until it works or we stop */
static PGconn *
connect_retry(void)
{
	double		delay = 0.1;

	while (!stop)
	{
		PGconn	   *conn = connect_once();

		if (conn != NULL)
			return conn;
		usleep((useconds_t) (delay * 1e6));
		if (delay < 5)
			delay *= 2;
	}
	return NULL;
}

/*
 * One next_events call: print, then acknowledge. Returns the number of
 * events, or -1 when the connection failed.
 */
static int
drain_once(PGconn *conn)
{
	const char *params[2];
	char		nbuf[16];
	PGresult   *res;
	int			n;
	int			i;
	char	   *last = NULL;

	snprintf(nbuf, sizeof(nbuf), "%d", batch);
	params[0] = consumer;
	params[1] = nbuf;
	res = PQexecParams(conn,
					   "SELECT e.id, pg_catalog.row_to_json(e)::text "
					   "FROM automation_core.next_events($1, $2::integer) e",
					   2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		note("next_events failed: %s", PQerrorMessage(conn));
		PQclear(res);
		return -1;
	}
	n = PQntuples(res);
	unacked = realloc(unacked, (size_t) (nunacked + n + 1) * sizeof(long long));
	if (unacked == NULL)
	{
		fprintf(stderr, "ac_listen: out of memory\n");
		exit(1);
	}
	for (i = 0; i < n; i++)
	{
		long long	id = atoll(PQgetvalue(res, i, 0));

		if (was_printed(id))
			continue;
		fputs(PQgetvalue(res, i, 1), stdout);
		fputc('\n', stdout);
		unacked[nunacked++] = id;
		printed++;
	}
	fflush(stdout);
	if (n > 0)
	{
		last = strdup(PQgetvalue(res, n - 1, 0));
		params[1] = last;
		if (!exec_ok(conn, "SELECT automation_core.ack_events($1, $2::bigint)", 2, params))
		{
			free(last);
			PQclear(res);
			return -1;
		}
		free(last);
		nunacked = 0;
	}
	PQclear(res);
	return n;
}

/* Drain until a short batch; -1 on connection failure */
static int
drain(PGconn *conn)
{
	int			total = 0;

	for (;;)
	{
		int			n = drain_once(conn);

		if (n < 0)
			return -1;
		total += n;
		if (n < batch || (exit_after > 0 && printed >= exit_after))
			return total;
	}
}

/*
 * Wait for a notification or the poll timeout. Returns 1 when woken by a
 * notification, 0 on timeout, -1 when the connection is gone.
 */
static int
wait_for_doorbell(PGconn *conn, double timeout)
{
	int			sock = PQsocket(conn);
	fd_set		fds;
	struct timeval tv;
	PGnotify   *nt;
	int			got = 0;
	int			rc;

	if (sock < 0)
		return -1;
	/* notifications that came with earlier results */
	if (!PQconsumeInput(conn))
		return -1;
	while ((nt = PQnotifies(conn)) != NULL)
	{
		got = 1;
		PQfreemem(nt);
	}
	if (got)
		return 1;

	FD_ZERO(&fds);
	FD_SET(sock, &fds);
	tv.tv_sec = (long) timeout;
	tv.tv_usec = (long) ((timeout - (long) timeout) * 1e6);
	rc = select(sock + 1, &fds, NULL, NULL, &tv);
	if (rc < 0)
		return errno == EINTR ? 0 : -1;
	if (rc == 0)
		return 0;
	if (!PQconsumeInput(conn) || PQstatus(conn) != CONNECTION_OK)
		return -1;
	while ((nt = PQnotifies(conn)) != NULL)
	{
		got = 1;
		PQfreemem(nt);
	}
	return got;
}

int
main(int argc, char **argv)
{
	PGconn	   *conn;
	double		last_event;
	int			i;
	int			npos = 0;
	const char *pos[2] = {NULL, NULL};

	for (i = 1; i < argc; i++)
	{
		const char *a = argv[i];

		if (strcmp(a, "--from-start") == 0)
			from_start = 1;
		else if (strcmp(a, "--quiet") == 0)
			quiet = 1;
		else if (strcmp(a, "--batch") == 0 && i + 1 < argc)
			batch = atoi(argv[++i]);
		else if (strcmp(a, "--poll") == 0 && i + 1 < argc)
			poll_secs = atof(argv[++i]);
		else if (strcmp(a, "--max-idle") == 0 && i + 1 < argc)
			max_idle = atof(argv[++i]);
		else if (strcmp(a, "--exit-after") == 0 && i + 1 < argc)
			exit_after = atol(argv[++i]);
		else if (a[0] == '-' && a[1] == '-')
			usage();
		else if (npos < 2)
			pos[npos++] = a;
		else
			usage();
	}
	if (npos != 2 || batch < 1 || poll_secs <= 0)
		usage();
	conninfo = pos[0];
	consumer = pos[1];

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);

	conn = connect_retry();
	last_event = now_secs();
	while (conn != NULL && !stop)
	{
		int			n = drain(conn);
		int			w;
		double		timeout = poll_secs;

		if (n > 0)
			last_event = now_secs();
		if (exit_after > 0 && printed >= exit_after)
			break;
		if (n >= 0)
		{
			if (max_idle > 0)
			{
				double		left = last_event + max_idle - now_secs();

				if (left <= 0)
					break;
				if (left < timeout)
					timeout = left;
			}
			w = wait_for_doorbell(conn, timeout);
			if (w >= 0)
				continue;
		}
		note("connection lost, reconnecting%s", NULL);
		PQfinish(conn);
		conn = connect_retry();
	}
	if (conn != NULL)
		PQfinish(conn);
	return 0;
}
