# Sourced by .ci/run (and usable by hand: `. .ci/postgres.sh`): starts the newest local
# PostgreSQL cluster with pg_ctlcluster, creates the `ci` role (CREATEDB) and database,
# and exports TEST_POSTGRES_URL.
pg_version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -qx "$pg_version main"; then
    pg_createcluster "$pg_version" main >/dev/null
fi
pg_ctlcluster "$pg_version" main start 2>/dev/null || true
pg_port=$(pg_lsclusters -h | awk -v v="$pg_version" '$1 == v && $2 == "main" {print $3}')
for _ in $(seq 1 50); do
    pg_isready -q -h 127.0.0.1 -p "$pg_port" && break
    sleep 0.2
done
pg_isready -h 127.0.0.1 -p "$pg_port"
su postgres -c "psql -q -p $pg_port -v ON_ERROR_STOP=1" <<'SQL'
SELECT 'CREATE ROLE ci LOGIN CREATEDB PASSWORD ''ci'''
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ci') \gexec
SELECT 'CREATE DATABASE ci OWNER ci'
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'ci') \gexec
SQL
export TEST_POSTGRES_URL="postgres://ci:ci@127.0.0.1:${pg_port}/ci"
