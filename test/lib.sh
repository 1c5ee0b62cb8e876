# Shared shell functions for test/run, test/demo and test/bench/run:
# install build dependencies, build, install into a private copy of the
# PostgreSQL tree, and run a throwaway server as an unprivileged user.
# shellcheck shell=bash

AC_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
AC_PGVER=${AC_PGVER:-15}
AC_SYS_BIN=/usr/lib/postgresql/$AC_PGVER/bin

ac_log() { printf '== %s\n' "$*" >&2; }
ac_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

ac_is_root() { [ "$(id -u)" = 0 ]; }

# Run a command as the unprivileged server user when we are root.
ac_as_pg() {
	if ac_is_root; then
		runuser -u postgres -- env PATH="$PATH" LANG=C.UTF-8 "$@"
	else
		"$@"
	fi
}

ac_apt_install() {
	local sudo=
	if ! ac_is_root; then
		if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
			sudo="sudo -n"
		else
			ac_die "missing packages ($*); install them as root: apt-get install -y $*"
		fi
	fi
	ac_log "installing $*"
	$sudo apt-get update -q >/dev/null || true
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "$@" >/dev/null
}

# Everything the build and the tests need, installed when missing.
ac_deps() {
	local need=()
	[ -x "$AC_SYS_BIN/pg_config" ] || need+=("postgresql-$AC_PGVER")
	[ -f "/usr/include/postgresql/$AC_PGVER/server/postgres.h" ] || need+=("postgresql-server-dev-$AC_PGVER")
	[ -f /usr/include/postgresql/libpq-fe.h ] || need+=(libpq-dev)
	perl -MIPC::Run -e 1 2>/dev/null || need+=(libipc-run-perl)
	command -v make >/dev/null || need+=(make)
	command -v gcc >/dev/null || need+=(gcc)
	# pg_cron, for the TAP test of running expire_leases on a schedule
	[ -f "/usr/lib/postgresql/$AC_PGVER/lib/pg_cron.so" ] || need+=("postgresql-$AC_PGVER-cron")
	[ ${#need[@]} -eq 0 ] || ac_apt_install "${need[@]}"
	export PG_CONFIG="$AC_SYS_BIN/pg_config"
}

# Build the extension. Extra compiler flags come from AC_CFLAGS.
ac_build() {
	ac_log "building"
	make -C "$AC_ROOT" -s PG_CONFIG="$PG_CONFIG" PG_CFLAGS="${AC_CFLAGS:-}" >/dev/null
	make -C "$AC_ROOT" -s -f "$AC_ROOT/test/tools.mk" PG_CONFIG="$PG_CONFIG" PG_CFLAGS="${AC_CFLAGS:-}" >/dev/null
}

# A private copy of the server installation with the extension installed
# into it, so that no system directory is touched and no root is needed.
ac_install() {
	AC_TMP=$(mktemp -d "${TMPDIR:-/tmp}/automation_core.XXXXXX")
	chmod 755 "$AC_TMP"
	AC_INST="$AC_TMP/inst"
	mkdir -p "$AC_INST/usr/lib/postgresql" "$AC_INST/usr/share/postgresql"
	cp -a "/usr/lib/postgresql/$AC_PGVER" "$AC_INST/usr/lib/postgresql/"
	cp -a "/usr/share/postgresql/$AC_PGVER" "$AC_INST/usr/share/postgresql/"
	make -C "$AC_ROOT" -s install DESTDIR="$AC_INST" PG_CONFIG="$PG_CONFIG" >/dev/null
	AC_BIN="$AC_INST/usr/lib/postgresql/$AC_PGVER/bin"
	export PATH="$AC_BIN:$PATH"
}

# Start a server in $AC_TMP/data listening only on a socket in $AC_TMP.
# Extra postgresql.conf lines come from the arguments.
ac_start() {
	AC_DATA="$AC_TMP/data"
	AC_SOCK="$AC_TMP/sock"
	mkdir -p "$AC_SOCK"
	ac_is_root && chown -R postgres: "$AC_TMP"
	ac_as_pg initdb -D "$AC_DATA" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$AC_TMP/initdb.log" 2>&1 ||
		{ cat "$AC_TMP/initdb.log"; ac_die "initdb failed"; }
	{
		echo "listen_addresses = ''"
		echo "unix_socket_directories = '$AC_SOCK'"
		echo "port = 5432"
		echo "max_connections = 100"
		echo "shared_buffers = 256MB"
		echo "max_prepared_transactions = 10"
		echo "log_min_messages = warning"
		echo "log_line_prefix = '%m [%p] '"
		for line in "$@"; do echo "$line"; done
	} | ac_as_pg tee -a "$AC_DATA/postgresql.conf" >/dev/null
	ac_as_pg pg_ctl -D "$AC_DATA" -l "$AC_TMP/server.log" -w -t 60 start >/dev/null ||
		{ cat "$AC_TMP/server.log"; ac_die "server did not start"; }
	export PGHOST="$AC_SOCK" PGPORT=5432 PGUSER=postgres PGDATABASE=postgres
}

ac_stop() {
	if [ -n "${AC_DATA:-}" ] && [ -f "$AC_DATA/postmaster.pid" ]; then
		ac_as_pg pg_ctl -D "$AC_DATA" -m fast -w stop >/dev/null 2>&1 || true
	fi
}

ac_cleanup() {
	ac_stop
	if [ -n "${AC_TMP:-}" ] && [ -z "${AC_KEEP:-}" ]; then
		rm -rf "$AC_TMP"
	fi
}
