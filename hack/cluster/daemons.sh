# Starting and stopping the cluster's daemons by PID file, sourced by up.sh, down.sh and node.sh.

# A PID file holds the PID and who had it: this boot and the process's start time. A file left
# from another boot (a machine restored from a snapshot taken with the cluster up) names PIDs that
# now belong to anything, the caller's own process group included, and must never be signalled.
process_identity() {
  local stat fields
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  # The fields after the command name, which may hold spaces; the start time is the 20th of them.
  read -r -a fields <<<"${stat##*) }"
  echo "$(cat /proc/sys/kernel/random/boot_id) ${fields[19]}"
}

# daemon_pid NAME: the PID in NAME's file while that process still runs, else fails.
daemon_pid() {
  local pid identity
  [ -f "$PIDS/$1" ] || return 1
  read -r pid identity <"$PIDS/$1" || true
  [ -n "$pid" ] && [ -n "$identity" ] && [ "$(process_identity "$pid")" = "$identity" ] || return 1
  echo "$pid"
}

running() { daemon_pid "$1" >/dev/null; }

# The node's daemons share one CPU cgroup, as a systemd node's system.slice. Left in the root
# cgroup, each of their threads would weigh as much as all pods together (kubepods), and in a
# burst of VMI starts the pods that drive it (virt-handler, the launchers) waited for the CPU
# ~80% of the time they were ready to run.
system_cpu_cgroup() {
  local dir
  if [ -f /sys/fs/cgroup/cpu/cgroup.procs ]; then dir=/sys/fs/cgroup/cpu/system.slice
  elif [ -f /sys/fs/cgroup/cgroup.controllers ]; then dir=/sys/fs/cgroup/system.slice
  else return 0
  fi
  mkdir -p "$dir" 2>/dev/null && echo "$dir" || true
}

# start NAME CMD...: runs a component in its own session, logging to $LOGS/NAME.log.
# GOGC: the Go daemons here (and containerd's shims, which inherit it) collect garbage a
# quarter as often as by default. Memory is plentiful on this node and CPU is not: in a
# burst of VMIs, garbage collection took 11-15% of the CPU of kube-apiserver, containerd
# and the shims.
start() {
  local name=$1; shift
  if running "$name"; then return; fi
  [ -n "${SYSTEM_CGROUP+set}" ] || SYSTEM_CGROUP=$(system_cpu_cgroup)
  (
    [ -z "$SYSTEM_CGROUP" ] || echo "$BASHPID" 2>/dev/null > "$SYSTEM_CGROUP/cgroup.procs" || true
    GOGC=400 exec setsid "$@"
  ) >>"$LOGS/$name.log" 2>&1 < /dev/null &
  echo "$! $(process_identity $!)" > "$PIDS/$name"
  log "started $name (pid $!, log $LOGS/$name.log)"
}

# stop NAME: SIGTERM to the component's session, SIGKILL after 10 s.
stop() {
  local name=$1 pidfile="$PIDS/$1" pid
  if pid=$(daemon_pid "$name"); then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do running "$name" || break; sleep 0.25; done
    if running "$name"; then kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true; fi
    log "stopped $name (pid $pid)"
  fi
  rm -f "$pidfile"
}

# wait_for WHAT SECONDS CMD...: polls CMD until it succeeds.
wait_for() {
  local what=$1 limit=$2; shift 2
  local deadline=$(( $(date +%s) + limit ))
  until "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$deadline" ]; then echo "timed out after ${limit}s waiting for $what (logs: $LOGS)" >&2; return 1; fi
    sleep 0.5
  done
}

# kill_containers SOCKET: SIGKILL to every task of that containerd, then their removal.
kill_containers() {
  local sock=$1 ns task c
  for ns in k8s.io default; do
    for task in $(ctr --address "$sock" -n "$ns" tasks ls -q 2>/dev/null); do
      ctr --address "$sock" -n "$ns" tasks kill -s SIGKILL "$task" >/dev/null 2>&1 || true
    done
    sleep 0.5
    for task in $(ctr --address "$sock" -n "$ns" tasks ls -q 2>/dev/null); do
      ctr --address "$sock" -n "$ns" tasks rm -f "$task" >/dev/null 2>&1 || true
    done
    for c in $(ctr --address "$sock" -n "$ns" containers ls -q 2>/dev/null); do
      ctr --address "$sock" -n "$ns" containers rm "$c" >/dev/null 2>&1 || true
    done
  done
}

# unmount_under DIR...: every mount at or below each DIR, deepest first; again while any is
# left, for a mount hidden under another at the same place only shows once that one is gone.
unmount_under() {
  local root mounts left=-1
  while :; do
    mounts=$(for root in "$@"; do awk -v r="$root" '$5 ~ "^"r {print $5}' /proc/self/mountinfo; done | sort -r)
    [ -n "$mounts" ] && [ "$(wc -l <<<"$mounts")" != "$left" ] || return 0
    left=$(wc -l <<<"$mounts")
    while read -r m; do umount -l "$m" 2>/dev/null || true; done <<<"$mounts"
  done
}
