# Shared by the TAP tests that put concurrent workers on a run: builds an
# automation with a run, drives workers with pgbench, and checks that every
# item, batch execution and the run ended consistently with their history.
package AcWorkload;

use strict;
use warnings;

use File::Temp qw(tempfile);
use IPC::Run;
use Test::More;
use Time::HiRes qw(time);

# The worker: claim 1 to 5 items in one transaction, then complete or fail
# each of them (one in five fails, retryable, due again at once) in a
# second one, using the attempt number as the fencing token.
my $WORKER_SCRIPT = <<'SQL';
\set n random(1, 5)
SELECT coalesce(string_agg(id::text || ':' || attempt_count, ','), '') AS claimed FROM automation_core.claim(NULL, 'worker-' || :client_id, :n, :lease::interval)
\gset
SELECT count(CASE WHEN random() < 0.2 THEN automation_core.fail(c.id, 'stress failure', true, '0 seconds', c.attempt) ELSE automation_core.complete(c.id, '{"ok": true}', c.attempt) END) FROM (SELECT split_part(x, ':', 1)::uuid AS id, split_part(x, ':', 2)::int AS attempt FROM unnest(string_to_array(:claimed, ',')) x) c;
SQL

sub worker_script
{
	my ($fh, $path) = tempfile('ac_worker_XXXX', SUFFIX => '.sql', TMPDIR => 1, UNLINK => 1);
	print $fh $WORKER_SCRIPT;
	close $fh;
	return $path;
}

# An automation of $batches batches of $items items each, a log of every
# run and batch execution status change (written by a trigger of the test,
# so "ended exactly once" can be checked), and a run started with
# $max_attempts. Returns the run id.
sub setup_run
{
	my ($node, $batches, $items, $max_attempts) = @_;

	$node->safe_psql('postgres', qq{
		CREATE EXTENSION IF NOT EXISTS automation_core;
		CREATE TABLE status_log (
			id bigserial PRIMARY KEY,
			tbl text NOT NULL,
			row_id uuid NOT NULL,
			old_status automation_core.execution_status,
			new_status automation_core.execution_status NOT NULL);
		CREATE FUNCTION log_status() RETURNS trigger LANGUAGE plpgsql AS \$\$
		BEGIN
			IF NEW.status IS DISTINCT FROM OLD.status THEN
				INSERT INTO public.status_log (tbl, row_id, old_status, new_status)
				VALUES (TG_TABLE_NAME, NEW.id, OLD.status, NEW.status);
			END IF;
			RETURN NULL;
		END \$\$;
		CREATE TRIGGER zz_log_status AFTER UPDATE ON automation_core.run
			FOR EACH ROW EXECUTE FUNCTION log_status();
		CREATE TRIGGER zz_log_status AFTER UPDATE ON automation_core.batch_execution
			FOR EACH ROW EXECUTE FUNCTION log_status();
		INSERT INTO automation_core.automation (name) VALUES ('workload');
		INSERT INTO automation_core.batch (automation_id, name)
		SELECT a.id, 'batch-' || b FROM automation_core.automation a, generate_series(1, $batches) b
		ORDER BY b;
		INSERT INTO automation_core.item (batch_id, sequence_number, payload)
		SELECT b.id, i, jsonb_build_object('n', i)
		FROM automation_core.batch b, generate_series(0, $items - 1) i;
	});
	return $node->safe_psql('postgres', qq{
		SELECT id FROM automation_core.start_run(
			(SELECT id FROM automation_core.automation WHERE name = 'workload'), 'workload', $max_attempts)
	});
}

sub pgbench_cmd
{
	my ($node, $script, $clients, %opt) = @_;
	my @cmd = ('pgbench', '-n', '-M', 'prepared', '-c', $clients, '-j', 2,
		'--max-tries', 10, '-D', 'lease=' . ($opt{lease} // '5 minutes'),
		'-f', $script, '-h', $node->host, '-p', $node->port);
	push @cmd, '-t', $opt{transactions} if $opt{transactions};
	push @cmd, '-T', $opt{seconds} if $opt{seconds};
	push @cmd, 'postgres';
	return \@cmd;
}

# How many item executions of the run are not terminal yet.
sub open_items
{
	my ($node, $run) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT count(*) FROM automation_core.item_execution
		WHERE run_id = '$run' AND NOT automation_core.is_terminal(status)});
}

# With no worker connected, an item still processing was abandoned (its
# worker's second transaction was rolled back, or the server crashed): end
# its lease now and let expire_leases take it back under the retry rule.
sub recover_abandoned
{
	my ($node) = @_;
	return $node->safe_psql('postgres', q{
		SET automation_core.retry_base_delay = 0;
		UPDATE automation_core.item_execution SET lease_expires_at = now() - interval '1 second'
		WHERE status = 'processing';
		SELECT automation_core.expire_leases();
	});
}

# Runs rounds of $clients workers until every item of the run is terminal,
# for at most $limit seconds. Returns the number of rounds.
sub drain
{
	my ($node, $run, $clients, $limit) = @_;
	my $script = worker_script();
	my $deadline = time() + $limit;
	my $rounds = 0;

	while (open_items($node, $run) > 0)
	{
		die "run $run still has open items after $limit seconds" if time() > $deadline;
		my ($out, $err) = ('', '');
		IPC::Run::run(pgbench_cmd($node, $script, $clients, transactions => 100),
			'>', \$out, '2>', \$err);
		$rounds++;
		note "round $rounds: pgbench exit $?; "
		  . join(' ', grep { /processed|failed|retried/ } split /\n/, $out);
		die "pgbench failed:\n$err" if $? != 0;
		my $stranded = recover_abandoned($node);
		note "recovered $stranded abandoned item executions" if $stranded;
	}
	return $rounds;
}

# What must hold for a run's items at any moment, finished or not: history
# is a chain of legal transitions, ends in each item's status, and counts
# its attempts.
sub check_history
{
	my ($node, $run, $label) = @_;
	my $q = sub { $node->safe_psql('postgres', shift) };

	is($q->(qq{SELECT count(*) FROM (
			SELECT h.previous_status, h.new_status,
				   lag(h.new_status) OVER w AS before, row_number() OVER w AS n
			FROM automation_core.item_execution ie
			JOIN automation_core.item_state_history h ON h.item_execution_id = ie.id
			WHERE ie.run_id = '$run'
			WINDOW w AS (PARTITION BY h.item_execution_id ORDER BY h.id)) x
			WHERE CASE WHEN n = 1 THEN previous_status IS NOT NULL OR new_status <> 'pending'
					   ELSE previous_status IS DISTINCT FROM before
							OR NOT automation_core.can_transition(previous_status, new_status) END}),
		0, "$label: history is a chain of legal transitions from pending");

	is($q->(qq{SELECT count(*) FROM automation_core.item_execution ie
			WHERE ie.run_id = '$run' AND ie.status IS DISTINCT FROM
				(SELECT h.new_status FROM automation_core.item_state_history h
				 WHERE h.item_execution_id = ie.id ORDER BY h.id DESC LIMIT 1)}),
		0, "$label: each item's last history row is its status");

	is($q->(qq{SELECT count(*) FROM automation_core.item_execution ie
			WHERE ie.run_id = '$run' AND ie.attempt_count <>
				(SELECT count(*) FROM automation_core.item_state_history h
				 WHERE h.item_execution_id = ie.id AND h.new_status = 'processing')}),
		0, "$label: attempt_count counts the history's entries into processing");
}

# Every check that must hold once the run's items have all ended.
sub check_finished_run
{
	my ($node, $run, $label) = @_;
	my $q = sub { $node->safe_psql('postgres', shift) };

	is($q->(qq{SELECT count(*) FROM automation_core.item_execution
			WHERE run_id = '$run' AND NOT automation_core.is_terminal(status)}),
		0, "$label: every item execution is terminal");

	is($q->(qq{SELECT count(*) FROM (
			SELECT ie.id FROM automation_core.item_execution ie
			JOIN automation_core.item_state_history h ON h.item_execution_id = ie.id
			WHERE ie.run_id = '$run'
			GROUP BY ie.id
			HAVING count(*) FILTER (WHERE automation_core.is_terminal(h.new_status)) <> 1) x}),
		0, "$label: each item entered a terminal status exactly once");

	check_history($node, $run, $label);

	is($q->(qq{SELECT count(*) FROM automation_core.item_execution
			WHERE run_id = '$run' AND (attempt_count > max_attempts
				OR (status = 'failed' AND attempt_count < max_attempts))}),
		0, "$label: items failed only after their last attempt");

	is($q->(qq{SELECT count(*) FROM automation_core.batch_execution be
			WHERE be.run_id = '$run' AND be.status IS DISTINCT FROM
				CASE WHEN EXISTS (SELECT 1 FROM automation_core.item_execution ie
								  WHERE ie.batch_execution_id = be.id AND ie.status = 'failed')
					 THEN 'failed' ELSE 'completed' END::automation_core.execution_status}),
		0, "$label: each batch execution is failed if an item failed, else completed");

	# finished_at is the time its transaction started, so overlapping
	# transactions may write them out of order; the order of commits is what
	# must hold: each batch execution and the run ended in a transaction that
	# committed after every one that ended an item of theirs (needs
	# track_commit_timestamp).
	is($q->(qq{SELECT count(*) FROM automation_core.batch_execution be
			WHERE be.run_id = '$run' AND (be.finished_at IS NULL OR pg_xact_commit_timestamp(be.xmin) <
				(SELECT max(pg_xact_commit_timestamp(ie.xmin)) FROM automation_core.item_execution ie
				 WHERE ie.batch_execution_id = be.id))}),
		0, "$label: no batch execution ended before its last item");
	is($q->(qq{SELECT (SELECT pg_xact_commit_timestamp(xmin) FROM automation_core.run WHERE id = '$run')
			>= (SELECT max(pg_xact_commit_timestamp(xmin)) FROM automation_core.batch_execution
				WHERE run_id = '$run')}),
		't', "$label: the run did not end before its last batch execution");

	is($q->(qq{SELECT count(*) FROM automation_core.batch_execution be
			WHERE be.run_id = '$run' AND
				(SELECT count(*) FROM status_log l
				 WHERE l.row_id = be.id AND automation_core.is_terminal(l.new_status)) <> 1}),
		0, "$label: each batch execution ended exactly once");

	is($q->(qq{SELECT string_agg(old_status || '>' || new_status, ' ' ORDER BY id)
			FROM status_log WHERE row_id = '$run'}),
		$q->(qq{SELECT 'pending>processing processing>' ||
				CASE WHEN EXISTS (SELECT 1 FROM automation_core.batch_execution
								  WHERE run_id = '$run' AND status = 'failed')
					 THEN 'failed' ELSE 'completed' END}),
		"$label: the run started once and ended once, failed if a batch execution failed");

	is($q->(qq{SELECT coalesce(error_summary, '(none)') FROM automation_core.run WHERE id = '$run'}),
		$q->(qq{SELECT CASE WHEN count(*) FILTER (WHERE status = 'failed') = 0 THEN '(none)'
				ELSE format('%s of %s item executions failed',
							count(*) FILTER (WHERE status = 'failed'), count(*)) END
				FROM automation_core.item_execution WHERE run_id = '$run'}),
		"$label: error_summary counts the failed items");

	is($q->(qq{SELECT total = completed + failed AND percent_done = 100
			FROM automation_core.run_progress WHERE run_id = '$run'}),
		't', "$label: run_progress shows every item done");
}

1;
