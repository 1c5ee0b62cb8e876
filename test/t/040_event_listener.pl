# The event listener (bin/ac_listen) against a live server: the doorbell
# wakes it, a dropped connection is re-established and caught up, and with
# eight concurrent writers every event is delivered exactly once, in
# (txid, id) order per batch.
use strict;
use warnings;
use JSON::PP;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $listen = "$ENV{AC_TOOLS}/ac_listen";
ok(-x $listen, 'ac_listen is built');

my $node = PostgreSQL::Test::Cluster->new('listener');
$node->init;
$node->append_conf('postgresql.conf', "max_connections = 40\n");
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION automation_core;
	INSERT INTO automation_core.engine (name, type) VALUES ('tap', 'test');
	-- one transaction, two events: an instance started and completed
	CREATE FUNCTION public.tap_work(tag text, pause float8) RETURNS void
	LANGUAGE plpgsql AS $$
	DECLARE
		oid uuid;
	BEGIN
		INSERT INTO automation_core.orchestration_instance (engine_id, external_id)
			SELECT e.id, tag || '-' || gen_random_uuid() FROM automation_core.engine e
			 WHERE e.name = 'tap' RETURNING id INTO oid;
		UPDATE automation_core.orchestration_instance SET status = 'processing' WHERE id = oid;
		IF pause > 0 THEN
			PERFORM pg_sleep(random() * pause);
		END IF;
		UPDATE automation_core.orchestration_instance SET status = 'completed' WHERE id = oid;
	END $$;
});

my $json = JSON::PP->new;
my $connstr = $node->connstr('postgres') . ' application_name=ac_listen';

# Wait until the listener printed at least $n lines or exited
sub wait_lines
{
	my ($h, $out, $n) = @_;
	my $timer = IPC::Run::timer($PostgreSQL::Test::Utils::timeout_default);
	$timer->start;
	while (1)
	{
		my @lines = split /\n/, $$out;
		return scalar(@lines) if @lines >= $n;
		return scalar(@lines) if !$h->pumpable || $timer->is_expired;
		$h->pump_nb;
		select(undef, undef, undef, 0.05);
	}
}

sub listener_pid
{
	return $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE application_name = 'ac_listen' AND state = 'idle'");
}

# --- the doorbell payload ---------------------------------------------------
my $bg = $node->background_psql('postgres');
$bg->query_safe('LISTEN automation_core_events');
$node->safe_psql('postgres', "SELECT public.tap_work('bell', 0)");
my $seen = $bg->query_safe('SELECT 1');
like($seen, qr/Asynchronous notification "automation_core_events" with payload "(\{.*\})"/,
	'a listener gets the doorbell');
my ($payload) = $seen =~ /with payload "(\{.*\})" received/;
my $bell = $json->decode($payload);
my $txid = $node->safe_psql('postgres',
	"SELECT txid FROM automation_core.event ORDER BY id DESC LIMIT 1");
is($bell->{txid}, $txid, 'payload txid is the writer\'s transaction');
is($bell->{count}, 2, 'payload counts the transaction\'s events');
is_deeply($bell->{types}, ['OrchestrationInstanceStarted', 'OrchestrationInstanceCompleted'],
	'payload lists the distinct types');
cmp_ok(length($payload), '<', 512, 'payload is under 512 bytes');
$seen = $bg->query_safe('SELECT 2');
unlike($seen, qr/Asynchronous notification/, 'one notification per transaction');
$bg->quit;

# --- listener, woken by NOTIFY, surviving a dropped connection ------------
$node->safe_psql('postgres', "SELECT automation_core.register_consumer('tap')");
my ($out, $err) = ('', '');
# --poll 300: within the test's time only a notification can wake it
my $h = IPC::Run::start([ $listen, '--poll', '300', '--exit-after', '20', $connstr, 'tap' ],
	'>', \$out, '2>', \$err);
$node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE application_name = 'ac_listen' AND state = 'idle'")
  or die "listener did not connect: $err";
my $pid1 = listener_pid();

$node->safe_psql('postgres', "SELECT public.tap_work('a', 0)") for 1 .. 5;
is(wait_lines($h, \$out, 10), 10, 'the doorbell wakes the listener: 10 events printed');

# drop the connection once the listener has acknowledged and sits waiting
$node->poll_query_until('postgres', q{
	SELECT c.last_event_id = (SELECT max(id) FROM automation_core.event)
	   AND EXISTS (SELECT 1 FROM pg_stat_activity
				   WHERE application_name = 'ac_listen' AND state = 'idle')
	  FROM automation_core.consumer c WHERE c.name = 'tap'})
  or die 'listener did not acknowledge';
$pid1 = listener_pid();
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid1)");
$node->safe_psql('postgres', "SELECT public.tap_work('b', 0)") for 1 .. 5;
is(wait_lines($h, \$out, 20), 20, 'after a dropped connection the listener catches up');
ok($h->finish, 'listener exits 0 after --exit-after events');
like($err, qr/connection lost, reconnecting/, 'listener noticed the lost connection');

my @events = map { $json->decode($_) } split /\n/, $out;
my @ids = map { $_->{id} } @events;
my $expected = $node->safe_psql('postgres', q{
	SELECT string_agg(e.id::text, ',' ORDER BY e.txid, e.id)
	  FROM automation_core.event e
	  JOIN automation_core.orchestration_instance o ON o.id = e.entity_id
	 WHERE o.external_id LIKE 'a-%' OR o.external_id LIKE 'b-%'});
is(join(',', @ids), $expected, 'every event exactly once, in (txid, id) order');
is($events[0]{event_type}, 'OrchestrationInstanceStarted', 'events are printed as JSON rows');
ok(exists $events[0]{payload}{new_status}, 'with their payload');
my $acked = $node->safe_psql('postgres',
	"SELECT last_event_id FROM automation_core.consumer WHERE name = 'tap'");
is($acked, $ids[-1], 'the listener acknowledged the last event');

# --- eight concurrent writers, one draining consumer ----------------------
$node->safe_psql('postgres', "SELECT automation_core.register_consumer('drain')");
my ($dout, $derr) = ('', '');
my $writers = 8;
my $per_writer = 25;
my $total = $writers * $per_writer * 2;
my $d = IPC::Run::start([ $listen, '--batch', '7', '--poll', '1', '--exit-after', $total,
		'--max-idle', '60', $connstr, 'drain' ],
	'>', \$dout, '2>', \$derr);
$node->pgbench(
	"--no-vacuum --client=$writers --jobs=2 --transactions=$per_writer",
	0,
	[qr/processed: @{[ $writers * $per_writer ]}\//],
	[qr/^$/],
	'eight concurrent writers',
	{ 'work' => "SELECT public.tap_work('c', 0.01);\n" });
ok($d->finish, 'draining consumer exits after all events');
my @d = map { $json->decode($_)->{id} } split /\n/, $dout;
my %count;
$count{$_}++ for @d;
is(scalar(@d), $total, "$total events delivered");
is(scalar(grep { $count{$_} > 1 } keys %count), 0, 'none delivered twice');
my $written = $node->safe_psql('postgres', q{
	SELECT string_agg(e.id::text, ',' ORDER BY e.id)
	  FROM automation_core.event e
	  JOIN automation_core.orchestration_instance o ON o.id = e.entity_id
	 WHERE o.external_id LIKE 'c-%'});
is(join(',', sort { $a <=> $b } @d), $written, 'exactly the events written, none missing');

$node->stop;
done_testing();
