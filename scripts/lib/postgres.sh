# Start a throwaway PostgreSQL cluster for tests on loopback, as the postgres user.
# shellcheck shell=bash
pg_start_test_cluster() {
  local bin dir port="${RXEDGE_TEST_PG_PORT:-55432}"
  bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  [ -n "$bin" ] || die "PostgreSQL server binaries not found"
  dir="${RXEDGE_TEST_PG_DIR:-/tmp/pgtest-rxedge}"
  local run=(env)
  if [ "$(id -u)" -eq 0 ]; then run=(runuser -u postgres --); fi
  if [ ! -f "$dir/PG_VERSION" ]; then
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$dir"
    "${run[@]}" "$bin/initdb" -D "$dir" -A trust -U postgres >/dev/null
  fi
  if ! "${run[@]}" "$bin/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
    say "starting PostgreSQL on 127.0.0.1:$port"
    "${run[@]}" "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w \
      -o "-p $port -k /tmp -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=200" start >/dev/null
  fi
  export RXEDGE_TEST_PG_URL="postgres://postgres@127.0.0.1:$port/postgres"
}
