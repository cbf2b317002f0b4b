#!/usr/bin/env bash
# A real single-node Slurm on this machine, for the cluster tests (pytest -m slurm) and for trying the Slurm
# launcher on a laptop:
#
#   tests/cluster/slurm.sh start     # installs the packages if missing (root, apt), then starts munge, MariaDB,
#                                    # slurmdbd, slurmctld and slurmd; waits until the node is idle and sacct answers
#   export SLURM_CONF=/tmp/dagrad-slurm/slurm.conf   # what start prints: sbatch/squeue/sacct then find the cluster
#   tests/cluster/slurm.sh status    # each daemon's PID, exit 0 when all run
#   tests/cluster/slurm.sh stop      # stops, by PID, every daemon this script started
#
# Everything (configs, keys, database, logs, Slurm state) lives in $DAGRAD_SLURM_DIR (default /tmp/dagrad-slurm);
# the daemons run as the calling user, listen on 127.0.0.1 only (MariaDB on a socket in that folder only), and
# nothing in /etc is changed. Root is needed only to install packages. Start and stop are idempotent.
# Exit codes: 0 ok, 1 a daemon did not come up (its log's tail is printed), 3 the packages are missing and
# cannot be installed here (one line says why).
set -euo pipefail

DIR=${DAGRAD_SLURM_DIR:-/tmp/dagrad-slurm}
CLUSTER=dagrad
CTLD_PORT=${DAGRAD_SLURMCTLD_PORT:-16817}
SLURMD_PORT=${DAGRAD_SLURMD_PORT:-16818}
DBD_PORT=${DAGRAD_SLURMDBD_PORT:-16819}
ME=$(id -un)
NODE=localhost
PACKAGES=(slurm-wlm munge slurmdbd mariadb-server)
NEEDED=(munged mariadbd mariadb-install-db slurmdbd slurmctld slurmd sbatch sacct sacctmgr srun)
export PATH=$PATH:/usr/sbin:/sbin
export SLURM_CONF=$DIR/slurm.conf
MUNGE_SOCKET=/run/munge/munge.socket.2
export MYSQL_UNIX_PORT=$DIR/mysql/mysqld.sock   # slurmdbd reaches MariaDB through this socket only

say() { echo "slurm.sh: $*"; }

missing() { for b in "${NEEDED[@]}"; do command -v "$b" >/dev/null 2>&1 || echo "$b"; done; }

install_packages() {
  [ -z "$(missing)" ] && return 0
  if [ "$(id -u)" != 0 ]; then
    say "cannot start the cluster: $(missing | head -1) is missing and installing ${PACKAGES[*]} needs root"; exit 3
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    say "cannot start the cluster: $(missing | head -1) is missing and this machine has no apt-get"; exit 3
  fi
  say "installing ${PACKAGES[*]} (apt-get)"
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
          "${PACKAGES[@]}"; } >"${TMPDIR:-/tmp}/dagrad-slurm-apt.log" 2>&1; then
    say "cannot start the cluster: apt-get could not install ${PACKAGES[*]}: $(tail -1 "${TMPDIR:-/tmp}/dagrad-slurm-apt.log")"
    exit 3
  fi
  [ -z "$(missing)" ] || { say "cannot start the cluster: $(missing | head -1) still missing after apt-get"; exit 3; }
}

# ---------------------------------------------------------------- PIDs: only ever our own daemons
pid_of() {  # the PID in $DIR/<name>.pid when that process is alive and runs the program <comm>
  local file=$DIR/$1.pid comm=$2 pid
  [ -s "$file" ] || return 1
  pid=$(tr -dc 0-9 <"$file")
  [ -n "$pid" ] && [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm")" = "$comm" ] || return 1
  echo "$pid"
}

stop_one() {
  local name=$1 comm=$2 pid
  pid=$(pid_of "$name" "$comm") || { rm -f "$DIR/$name.pid"; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
  [ -d "/proc/$pid" ] && kill -KILL "$pid" 2>/dev/null || true
  rm -f "$DIR/$name.pid"
  say "stopped $name (PID $pid)"
}

wait_for() {  # wait_for SECONDS LOGFILE DESCRIPTION COMMAND...
  local seconds=$1 log=$2 what=$3; shift 3
  for _ in $(seq $((seconds * 2))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  say "$what did not come up in ${seconds}s; last lines of $log:"; tail -5 "$log" 2>/dev/null || true
  exit 1
}

# ---------------------------------------------------------------- configuration
write_configs() {
  mkdir -p "$DIR"/{munge,mysql,state,spool,log}
  chmod 700 "$DIR" "$DIR/munge"
  if [ ! -s "$DIR/munge/munge.key" ]; then
    (umask 077; head -c 1024 /dev/urandom >"$DIR/munge/munge.key")
  fi
  local cpus mem
  cpus=$(nproc); [ "$cpus" -ge 2 ] || cpus=2   # two at once (array throttling, two ranks) even on one core
  mem=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
  cat >"$DIR/slurm.conf" <<EOF
ClusterName=$CLUSTER
SlurmctldHost=$(hostname -s)(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=$ME
SlurmdUser=$ME
CommunicationParameters=NoInAddrAny,NoCtldInAddrAny
AuthType=auth/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
MpiDefault=none
ReturnToService=2
JobRequeue=1
KillWait=10
MinJobAge=300
InactiveLimit=0
SchedulerParameters=sched_interval=2,bf_interval=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$DBD_PORT
NodeName=$NODE NodeAddr=127.0.0.1 NodeHostname=$NODE CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
  cat >"$DIR/slurmdbd.conf" <<EOF
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
CommunicationParameters=NoInAddrAny
SlurmUser=$ME
PidFile=$DIR/slurmdbd.pid
LogFile=$DIR/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=$ME
StorageLoc=slurm_acct_db
EOF
  chmod 600 "$DIR/slurmdbd.conf"   # slurmdbd refuses a config others can read
}

# ---------------------------------------------------------------- the daemons, in dependency order
munge_answers() { munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; }

start_munge() {
  # Slurm 22.05 reaches slurmdbd through munge's default socket whatever AuthInfo says, so munged serves
  # that socket: a munged already answering there (the system's) is used and left alone
  pid_of munged munged >/dev/null && return 0
  if munge_answers; then say "munged: using the one already running on $MUNGE_SOCKET"; return 0; fi
  mkdir -p "$(dirname "$MUNGE_SOCKET")"
  rm -f "$MUNGE_SOCKET" "$MUNGE_SOCKET.lock"
  munged --force --key-file="$DIR/munge/munge.key" --socket="$MUNGE_SOCKET" \
    --pid-file="$DIR/munged.pid" --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/munged.seed"
  wait_for 20 "$DIR/log/munged.log" munged munge_answers
  say "munged running (PID $(pid_of munged munged))"
}

start_mariadb() {
  pid_of mariadb mariadbd >/dev/null && return 0
  if [ ! -d "$DIR/mysql/data/mysql" ]; then
    mariadb-install-db --no-defaults --user="$ME" --datadir="$DIR/mysql/data" --skip-test-db \
      >"$DIR/log/mariadb-install.log" 2>&1 || { say "mariadb-install-db failed:"; tail -5 "$DIR/log/mariadb-install.log"; exit 1; }
  fi
  # --skip-networking: the database is reachable through its socket in $DIR only
  nohup mariadbd --no-defaults --user="$ME" --datadir="$DIR/mysql/data" --socket="$MYSQL_UNIX_PORT" \
    --skip-networking --pid-file="$DIR/mariadb.pid" --log-error="$DIR/log/mariadb.log" \
    --innodb-buffer-pool-size=64M --innodb-log-file-size=16M --performance-schema=OFF >/dev/null 2>&1 &
  wait_for 60 "$DIR/log/mariadb.log" MariaDB mariadb-admin --no-defaults --socket="$MYSQL_UNIX_PORT" -u "$ME" ping
  say "MariaDB running (PID $(pid_of mariadb mariadbd))"
}

start_slurmdbd() {
  pid_of slurmdbd slurmdbd >/dev/null && return 0
  slurmdbd   # reads slurmdbd.conf beside $SLURM_CONF
  wait_for 60 "$DIR/log/slurmdbd.log" slurmdbd sacctmgr -n list cluster
  if ! sacctmgr -n -P list cluster format=cluster | grep -qx "$CLUSTER"; then
    sacctmgr -i add cluster "$CLUSTER" >/dev/null
  fi
  say "slurmdbd running (PID $(pid_of slurmdbd slurmdbd)), cluster $CLUSTER registered"
}

start_slurmctld() {
  pid_of slurmctld slurmctld >/dev/null && return 0
  slurmctld -f "$DIR/slurm.conf"
  wait_for 60 "$DIR/log/slurmctld.log" slurmctld scontrol ping
  say "slurmctld running (PID $(pid_of slurmctld slurmctld))"
}

start_slurmd() {
  pid_of slurmd slurmd >/dev/null && return 0
  slurmd -f "$DIR/slurm.conf" -N "$NODE"
  node_idle() { sinfo -h -N -n "$NODE" -o %t | grep -Eq '^(idle|mix|alloc)'; }
  wait_for 60 "$DIR/log/slurmd.log" "slurmd (node $NODE idle)" node_idle
  say "slurmd running (PID $(pid_of slurmd slurmd)), node $NODE $(sinfo -h -N -n "$NODE" -o %t)"
}

sacct_answers() { sacct -n -X -S now-1minutes -o JobID >/dev/null 2>"$DIR/log/sacct-check.err" && \
  ! grep -qi disabled "$DIR/log/sacct-check.err"; }

start() {
  install_packages
  write_configs
  start_munge
  start_mariadb
  start_slurmdbd
  start_slurmctld
  start_slurmd
  wait_for 60 "$DIR/log/sacct-check.err" "sacct" sacct_answers
  say "cluster $CLUSTER ready; for sbatch/squeue/sacct: export SLURM_CONF=$SLURM_CONF"
}

stop() {
  [ -d "$DIR" ] || { say "nothing to stop ($DIR does not exist)"; return 0; }
  stop_one slurmd slurmd
  stop_one slurmctld slurmctld
  stop_one slurmdbd slurmdbd
  stop_one mariadb mariadbd
  stop_one munged munged
}

status() {
  local all=0 name comm pid
  for pair in munged:munged mariadb:mariadbd slurmdbd:slurmdbd slurmctld:slurmctld slurmd:slurmd; do
    name=${pair%%:*}; comm=${pair#*:}
    if pid=$(pid_of "$name" "$comm" 2>/dev/null); then echo "$name running (PID $pid)"
    else echo "$name stopped"; all=1; fi
  done
  [ $all = 0 ] && echo "node: $(sinfo -h -N -n "$NODE" -o %t 2>/dev/null || echo unknown); SLURM_CONF=$SLURM_CONF"
  return $all
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status   (state in \$DAGRAD_SLURM_DIR, default /tmp/dagrad-slurm)" >&2; exit 2 ;;
esac
