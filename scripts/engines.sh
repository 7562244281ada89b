#!/usr/bin/env bash
# Provision the container / batch engines used by the pydrmaa2 test suite on a
# Debian 12 (bookworm) machine without systemd, as root.
#
# Usage: scripts/engines.sh [--verify|--no-verify] [ENGINE...]
#   ENGINE: docker podman containerd slurm   (none or "all" = all four)
#
# Works on a fresh machine as on one where the engines already run:
# - installs only missing Debian packages (apt-get update only when something
#   has to be installed);
# - an engine that already runs and passes the checks and smoke test below
#   (what the test suite needs) is used as it is: its configuration is left alone;
# - otherwise the script writes its own configuration, first keeping a copy of
#   every file it replaces (FILE.pydrmaa2-backup-YYYYmmddTHHMMSS, never
#   overwritten), and restarts the daemons whose configuration changed: by the
#   pid recorded in /run/pydrmaa2 when this script started them, else by the pid
#   that serves the engine's socket or port (never by process name);
# - when a daemon then does not come up, or the engine fails its smoke test, the
#   replaced files are put back, the daemons it stopped are started again with
#   their previous command line, and the script fails saying so: it never
#   leaves a daemon dead;
# - daemons are started in the background (logs in /var/log/pydrmaa2-*.log);
#   every wait is bounded.
# Smoke tests (run a container, pause/unpause; a Slurm job whose output and
# accounting arrive, suspend/resume, hold/release, a reservation) run when the
# serving daemons or their configuration differ from the last verified ones
# (/run/pydrmaa2/verified-*), e.g. after a (re)start or an image load;
# --verify forces them, --no-verify skips them.  A second run with everything
# up and verified takes ~1 s and writes nothing.
#
# Endpoints:
#   docker      unix:///var/run/docker.sock        (dockerd 20.10, API 1.41)
#   podman      unix:///run/podman/podman.sock     (podman 4.3, libpod + docker-compat API)
#   containerd  /run/containerd/containerd.sock    (namespace "pydrmaa2"; dockerd uses "moby")
#   slurm       partition "debug" (the default one) of the cluster that answers;
#               when configured here: cluster "pydrmaa2", node "$(hostname -s)"
#
# Environment knobs:
#   PYDRMAA2_ENGINES_TIMEOUT   seconds to wait for each daemon (default 60)
#   PYDRMAA2_SLURM_CPUS        CPUs declared for the Slurm node (default 8;
#                              more than the box has, so many small jobs run at once)
set -euo pipefail

readonly IMAGE_NAME=pydrmaa2-test
readonly IMAGE_TAG=latest
readonly IMAGE_REF="$IMAGE_NAME:$IMAGE_TAG"
readonly CTR_REF="docker.io/library/$IMAGE_REF"
readonly CTR_NS=pydrmaa2
# Bump when the image recipe below changes: engines then reload the image.
readonly IMAGE_VERSION=1
readonly CACHE_DIR=/var/cache/pydrmaa2
readonly IMAGE_ARCHIVE="$CACHE_DIR/$IMAGE_NAME-v$IMAGE_VERSION.tar"
readonly IMAGE_IDS="$IMAGE_ARCHIVE.ids"
readonly RUN_DIR=/run/pydrmaa2
readonly APT_LOG=/var/log/pydrmaa2-apt.log
readonly CONTAINERD_SOCK=/run/containerd/containerd.sock
readonly DOCKER_SOCK=/var/run/docker.sock
readonly PODMAN_SOCK=/run/podman/podman.sock
readonly PODMAN_CONF=/etc/containers/containers.conf
readonly MARIADB_CONF=/etc/mysql/mariadb.conf.d/90-pydrmaa2.cnf
readonly SLURM_CONF_FILE=/etc/slurm/slurm.conf
readonly SLURMDBD_CONF_FILE=/etc/slurm/slurmdbd.conf
# slurmctld's StateSaveLocation: a directory of its own, so that another
# cluster of the machine (often in /var/spool/slurmctld) never shares it
readonly SLURM_STATE_DIR=/var/spool/slurmctld-pydrmaa2
# where earlier versions of this script kept it
readonly SLURM_OLD_STATE_DIR=/var/spool/slurmctld
readonly SLURM_CLUSTER=pydrmaa2
readonly SLURM_PARTITION=debug
readonly SLURM_DB=slurm_acct_db
readonly SLURM_DB_USER=slurm
# Local, loopback-only test database: a fixed password is fine here.
readonly SLURM_DB_PASS=pydrmaa2-slurmdbd
readonly TIMEOUT="${PYDRMAA2_ENGINES_TIMEOUT:-60}"
readonly SLURM_CPUS="${PYDRMAA2_SLURM_CPUS:-8}"
STAMP=$(date +%Y%m%dT%H%M%S)
readonly STAMP

export DEBIAN_FRONTEND=noninteractive
export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH"

log() { printf 'engines: %s\n' "$*" >&2; }
die() {
    printf 'engines: ERROR: %s\n' "$*" >&2
    exit 1
}

CLEANUP_FILES=()
cleanup() {
    local f
    for f in "${CLEANUP_FILES[@]}"; do rm -rf -- "$f"; done
}

# ---------------------------------------------------------------------------
# changes that are undone when the set-up of an engine fails
# ---------------------------------------------------------------------------
# Between tx_begin and tx_end, every file written (install_file), directory
# moved aside (move_aside), daemon stopped (stop_for_reconfig) and daemon
# started (start_daemon) is recorded; if the script then exits with an error
# (die, or a failing command under set -e) tx_rollback undoes them in reverse.
TX=
TX_FILES=()   # "PATH<TAB>BACKUP" (BACKUP empty: PATH did not exist)
TX_DIRS=()    # "PATH<TAB>MOVED-TO" (MOVED-TO empty: PATH did not exist)
TX_STOPPED=() # "NAME<TAB>READY_FN"; argv, environment, cwd and uid in $TX_SAVE/NAME.*
TX_STARTED=() # names of the daemons started
TX_SAVE=

tx_begin() {
    TX=$1
    TX_FILES=() TX_DIRS=() TX_STOPPED=() TX_STARTED=()
    TX_SAVE=$(mktemp -d)
    CLEANUP_FILES+=("$TX_SAVE")
}
tx_end() { TX=; }

on_exit() {
    local rc=$?
    if ((rc != 0)) && [[ -n $TX ]]; then
        local name=$TX
        if tx_rollback; then
            printf 'engines: ERROR: %s: set-up failed (see above); the previous configuration and daemons are back\n' \
                "$name" >&2
        else
            printf 'engines: ERROR: %s: set-up failed (see above), and undoing it did not fully work (see above)\n' \
                "$name" >&2
        fi
    fi
    cleanup
}
trap on_exit EXIT

tx_rollback() { # 0 if everything was put back
    local name=$TX path bak d ready i pid ok=0
    TX=
    log "$name: undoing this run's changes"
    for ((i = ${#TX_STARTED[@]} - 1; i >= 0; i--)); do
        d=${TX_STARTED[i]}
        if pid=$(our_pid "$d"); then kill_pid "$d" "$pid"; fi
    done
    for ((i = ${#TX_FILES[@]} - 1; i >= 0; i--)); do
        path=${TX_FILES[i]%%$'\t'*} bak=${TX_FILES[i]#*$'\t'}
        if [[ -n $bak ]]; then
            if cp -a -- "$bak" "$path"; then log "restored $path from $bak"; else ok=1; fi
        else
            if rm -f -- "$path"; then log "removed $path (written by this run)"; else ok=1; fi
        fi
    done
    for ((i = ${#TX_DIRS[@]} - 1; i >= 0; i--)); do
        path=${TX_DIRS[i]%%$'\t'*} bak=${TX_DIRS[i]#*$'\t'}
        if [[ -e $path ]]; then
            local failed
            failed=$(backup_name "$path" failed)
            if mv -- "$path" "$failed"; then log "moved this run's $path to $failed"; else ok=1; fi
        fi
        if [[ -n $bak ]]; then
            if mv -- "$bak" "$path"; then log "moved $bak back to $path"; else ok=1; fi
        fi
    done
    for ((i = ${#TX_STOPPED[@]} - 1; i >= 0; i--)); do
        d=${TX_STOPPED[i]%%$'\t'*} ready=${TX_STOPPED[i]#*$'\t'}
        restart_saved "$d" "$ready" || ok=1
    done
    return "$ok"
}

# restart_saved NAME READY_FN: start again a daemon stopped by stop_for_reconfig
restart_saved() {
    local name=$1 ready=$2 save="$TX_SAVE/$1" exe cwd uid gid
    local -a argv envv cmd
    mapfile -d '' argv <"$save.cmd"
    mapfile -d '' envv <"$save.env"
    exe=$(<"$save.exe") cwd=$(<"$save.cwd")
    read -r uid gid <"$save.ids"
    # the program as it was called (e.g. an alternatives link), else what ran
    if [[ ${argv[0]} == */* && -x ${argv[0]} ]]; then
        exe=${argv[0]}
    elif command -v -- "${argv[0]}" >/dev/null 2>&1 && [[ $(command -v -- "${argv[0]}") == /* ]]; then
        exe=$(command -v -- "${argv[0]}")
    fi
    cmd=(env -i -C "${cwd:-/}" "${envv[@]}" "$exe" "${argv[@]:1}")
    if [[ $uid != 0 ]]; then
        cmd=(setpriv "--reuid=$uid" "--regid=$gid" --init-groups -- "${cmd[@]}")
    fi
    start_daemon --as "${argv[*]} (again: previous command line, environment, directory and uid)" \
        "$name" "${cmd[@]}"
    [[ -n $ready ]] || return 0
    local deadline=$((SECONDS + TIMEOUT))
    until "$ready" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            log "WARNING: the previous $name did not answer within ${TIMEOUT}s (log: /var/log/pydrmaa2-$name.log)"
            return 1
        fi
        sleep 0.2
    done
    log "the previous $name answers again"
}

# backup_name PATH [KIND]: PATH.pydrmaa2-KIND-STAMP[.N] (KIND: backup), a
# name that does not exist yet
backup_name() {
    local b="$1.pydrmaa2-${2:-backup}-$STAMP" n=1
    while [[ -e $b || -L $b ]]; do
        b="$1.pydrmaa2-${2:-backup}-$STAMP.$n"
        n=$((n + 1))
    done
    echo "$b"
}

# install_file DEST MODE TEXT: write TEXT (plus a newline) to DEST if different,
# keeping a copy of the file it replaces; returns 0 if DEST changed.  (An
# argument, not stdin: in a pipeline it would run in a subshell and the
# TX_FILES record would be lost.)
install_file() {
    local dest=$1 mode=$2 tmp bak=''
    mkdir -p "$(dirname "$dest")"
    tmp=$(mktemp "$dest.pydrmaa2-new.XXXXXX")
    CLEANUP_FILES+=("$tmp")
    printf '%s\n' "$3" >"$tmp"
    if [[ -f $dest ]] && cmp -s "$tmp" "$dest"; then
        rm -f -- "$tmp"
        [[ $(stat -c %a "$dest") == "${mode#0}" ]] || chmod "$mode" "$dest"
        return 1
    fi
    if [[ -e $dest ]]; then
        bak=$(backup_name "$dest")
        cp -a -- "$dest" "$bak"
        log "kept a copy of the previous $dest as $bak"
    fi
    TX_FILES+=("$dest"$'\t'"$bak")
    chmod "$mode" "$tmp"
    mv -f "$tmp" "$dest"
    log "wrote $dest"
}

same_content() { # FILE TEXT: does FILE hold exactly TEXT (plus a newline)?
    [[ -f $1 ]] && printf '%s\n' "$2" | cmp -s - "$1"
}

# move_aside DIR WHY: rename DIR to a fresh backup name (undone on failure)
move_aside() {
    local bak
    bak=$(backup_name "$1")
    mv -- "$1" "$bak"
    TX_DIRS+=("$1"$'\t'"$bak")
    log "$2: moved $1 to $bak"
}

usage() {
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
}

# ---------------------------------------------------------------------------
# packages
# ---------------------------------------------------------------------------
APT_UPDATED=
apt_install() {
    local missing=() p status
    for p in "$@"; do
        status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
        [[ $status == ii* ]] || missing+=("$p")
    done
    ((${#missing[@]})) || return 0
    log "installing Debian packages: ${missing[*]} (log: $APT_LOG)"
    local apt_opts=(-q -o DPkg::Lock::Timeout=300)
    if [[ -z $APT_UPDATED ]]; then
        apt-get "${apt_opts[@]}" update >>"$APT_LOG" 2>&1 ||
            { tail -n 20 "$APT_LOG" >&2; die "apt-get update failed"; }
        APT_UPDATED=1
    fi
    # Keep the packages' maintainer scripts from starting daemons through
    # init scripts: this script starts (and owns) them itself.
    local prc=/usr/sbin/policy-rc.d
    if [[ ! -e $prc ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$prc"
        chmod 0755 "$prc"
        CLEANUP_FILES+=("$prc")
    fi
    if ! apt-get "${apt_opts[@]}" install -y --no-install-recommends "${missing[@]}" >>"$APT_LOG" 2>&1; then
        tail -n 30 "$APT_LOG" >&2
        die "apt-get install ${missing[*]} failed"
    fi
}

# ---------------------------------------------------------------------------
# daemons
# ---------------------------------------------------------------------------
proc_start_time() { # PID -> its start time (clock ticks since boot)
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    local -a fields
    read -ra fields <<<"${stat##*) }"
    echo "${fields[19]}"
}

# start_daemon [--as TEXT] NAME CMD...: start CMD detached, output to
# /var/log/pydrmaa2-NAME.log; its pid goes to $RUN_DIR/NAME.pid, and "PID
# START-TIME" (against pid reuse) to $RUN_DIR/NAME.pid.start.  TEXT is what the
# logs show instead of CMD.
start_daemon() {
    local shown=
    if [[ $1 == --as ]]; then
        shown=$2
        shift 2
    fi
    local name=$1
    shift
    local logf="/var/log/pydrmaa2-$name.log"
    shown=${shown:-$*}
    mkdir -p "$RUN_DIR"
    log "starting $name: $shown (log: $logf)"
    printf '=== %s engines.sh starting: %s\n' "$(date -Is)" "$shown" >>"$logf"
    # 9>&-: the daemon must not inherit (and so hold forever) our lock fd
    setsid nohup "$@" >>"$logf" 2>&1 </dev/null 9>&- &
    local pid=$!
    echo "$pid $(proc_start_time "$pid" || true)" >"$RUN_DIR/$name.pid.start"
    echo "$pid" >"$RUN_DIR/$name.pid"
    [[ -z $TX ]] || TX_STARTED+=("$name")
}

# our_pid NAME: pid of a daemon this script started, if it still runs
our_pid() {
    local f="$RUN_DIR/$1.pid" pid='' spid='' st=''
    [[ -s $f ]] || return 1
    read -r pid _ <"$f" || true
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    if [[ -s $f.start ]]; then read -r spid st <"$f.start" || true; fi
    [[ $spid == "$pid" ]] || st=
    kill -0 "$pid" 2>/dev/null || return 1
    [[ -z $st || $(proc_start_time "$pid") == "$st" ]] || return 1
    echo "$pid"
}

# is_prog PID PROG: is PID running PROG? (its name, or that of its executable:
# Debian's slurmctld is an alternatives link to slurmctld-wlm)
is_prog() {
    local comm exe
    comm=$(cat "/proc/$1/comm" 2>/dev/null) || return 1
    exe=$(readlink "/proc/$1/exe" 2>/dev/null || true)
    exe=${exe##*/}
    [[ $comm =~ ^$2(-wlm)?$ || ${exe% (deleted)} =~ ^$2(-wlm)?$ ]]
}

# proc_running PROG: does a process run PROG (or PROG-wlm, see is_prog)?
proc_running() { pgrep -x "$1" >/dev/null 2>&1 || pgrep -x "$1-wlm" >/dev/null 2>&1; }

# serving_pid ENDPOINT COMM: pid of the COMM process listening on ENDPOINT
# (a Unix socket path or a TCP port)
serving_pid() {
    local ep=$1 comm=$2 lines pid
    if [[ $ep == /* ]]; then
        lines=$(ss -xlpnH 2>/dev/null | awk -v p="$ep" '$5 == p') || true
    else
        lines=$(ss -tlpnH "sport = :$ep" 2>/dev/null) || true
    fi
    for pid in $(grep -o 'pid=[0-9]*' <<<"$lines" | cut -d= -f2 | sort -un || true); do
        if is_prog "$pid" "$comm"; then
            echo "$pid"
            return 0
        fi
    done
    return 1
}

# daemon_pid NAME COMM ENDPOINT [PIDFILE]: the running daemon: ours, else the
# one serving ENDPOINT, else the one in its own pid file (checked against COMM)
daemon_pid() {
    local name=$1 comm=$2 ep=$3 pidfile=${4:-} pid
    our_pid "$name" && return 0
    serving_pid "$ep" "$comm" && return 0
    if [[ -n $pidfile && -s $pidfile ]]; then
        pid=$(head -n 1 "$pidfile" | tr -dc 0-9)
        if [[ -n $pid ]] && is_prog "$pid" "$comm"; then
            echo "$pid"
            return 0
        fi
    fi
    return 1
}

# kill_pid NAME PID: stop one process by pid: SIGTERM, SIGKILL after 15 s
kill_pid() {
    local name=$1 pid=$2 i f="$RUN_DIR/$1.pid" rec=''
    log "stopping $name (pid $pid)"
    kill "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "$name (pid $pid) did not stop within 15 s; sending SIGKILL"
        kill -9 "$pid" 2>/dev/null || true
        sleep 0.5
    fi
    if [[ -s $f ]]; then read -r rec _ <"$f" || true; fi
    if [[ $rec == "$pid" ]]; then rm -f "$f" "$f.start"; fi
    return 0
}

# stop_for_reconfig NAME PID [READY_FN]: stop the daemon PID (started by this
# script or not) because its configuration changes; its command line,
# environment, working directory and uid are kept so that a failure can start
# it again (tx_rollback).
stop_for_reconfig() {
    local name=$1 pid=$2 ready=${3:-} save="$TX_SAVE/$1"
    [[ -n $TX ]] || die "internal: stop_for_reconfig outside tx_begin/tx_end"
    # (gone meanwhile: nothing to stop, nothing to start again)
    cp "/proc/$pid/cmdline" "$save.cmd" 2>/dev/null || return 0
    cp "/proc/$pid/environ" "$save.env" 2>/dev/null || return 0
    readlink "/proc/$pid/exe" >"$save.exe" || echo >"$save.exe"
    readlink "/proc/$pid/cwd" >"$save.cwd" || echo / >"$save.cwd"
    awk '$1 == "Uid:" {u = $2} $1 == "Gid:" {g = $2} END {print u, g}' "/proc/$pid/status" >"$save.ids"
    TX_STOPPED+=("$name"$'\t'"$ready")
    kill_pid "$name" "$pid"
}

fail_with_log() { # NAME MESSAGE
    local logf="/var/log/pydrmaa2-$1.log"
    if [[ -s $logf ]]; then
        printf 'engines: ---- last lines of %s ----\n' "$logf" >&2
        tail -n 25 "$logf" >&2
        printf 'engines: ----\n' >&2
    fi
    die "$2"
}

# wait_until NAME WHAT CMD...: poll CMD (quietly) until it succeeds; bounded.
wait_until() {
    local name=$1 what=$2
    shift 2
    local deadline=$((SECONDS + TIMEOUT)) pid=
    pid=$(our_pid "$name" || true)
    until "$@" >/dev/null 2>&1; do
        if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
            fail_with_log "$name" "$name exited while waiting for $what"
        fi
        if ((SECONDS >= deadline)); then
            fail_with_log "$name" "timed out after ${TIMEOUT}s waiting for $what"
        fi
        sleep 0.2
    done
}

# ensure_daemon NAME PROCNAME READY_FN START_FN
#   READY_FN answers whether the service responds; PROCNAME (proc_running)
#   tells whether a process is already there (then we only wait for it).
# Sets STARTED=1 when it had to start the daemon.
STARTED=0
ensure_daemon() {
    local name=$1 proc=$2 ready=$3 start=$4
    "$ready" >/dev/null 2>&1 && return 0
    if ! proc_running "$proc"; then
        "$start"
        STARTED=1
    else
        log "$name is running but not answering yet; waiting"
    fi
    wait_until "$name" "$name to answer" "$ready"
    log "$name is up"
}

# Smoke tests are run again only when what they tested changed: KEY names the
# serving daemons (pids), their configuration and the image.
needs_verify() { # NAME KEY CHANGED(0|1)
    ((VERIFY == 1)) && return 0
    ((VERIFY == 0)) && return 1
    (($3)) && return 0
    [[ $(cat "$RUN_DIR/verified-$1" 2>/dev/null) != "$2" ]]
}
mark_verified() { # NAME KEY
    [[ $(cat "$RUN_DIR/verified-$1" 2>/dev/null) == "$2" ]] || echo "$2" >"$RUN_DIR/verified-$1"
}
file_sum() { # FILE -> sha256 or "none"
    if [[ -f $1 ]]; then sha256sum "$1" | cut -d' ' -f1; else echo none; fi
}

# ---------------------------------------------------------------------------
# the test image: busybox-static rootfs, as a tar that is both an OCI image
# layout (containerd, podman) and a docker-archive (docker load).
# ---------------------------------------------------------------------------
sha256_of() { sha256sum "$1" | cut -d' ' -f1; }
size_of() { stat -c %s "$1"; }

build_image_archive() {
    [[ -s $IMAGE_ARCHIVE && -s $IMAGE_IDS ]] && return 0
    apt_install busybox-static
    local bb=/bin/busybox
    [[ -x $bb ]] || die "$bb not found (package busybox-static)"
    log "building image archive $IMAGE_ARCHIVE"
    mkdir -p "$CACHE_DIR"
    local work
    work=$(mktemp -d)
    CLEANUP_FILES+=("$work")
    local root="$work/rootfs" oci="$work/oci"
    mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,var/tmp,work,root,proc,sys,dev} \
        "$oci/blobs/sha256"
    install -m 0755 "$bb" "$root/bin/busybox"
    local applet
    # Same as `busybox --install -s`, but with relative links that do not
    # depend on where busybox lives on the host (merged /usr).
    for applet in $("$bb" --list); do
        [[ $applet == busybox || -e $root/bin/$applet ]] && continue
        ln -s busybox "$root/bin/$applet"
    done
    ln -s ../../bin/busybox "$root/usr/bin/env"
    chmod 1777 "$root/tmp" "$root/var/tmp" "$root/work"
    chmod 0700 "$root/root"
    printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' \
        'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >"$root/etc/passwd"
    printf '%s\n' 'root:x:0:' 'nobody:x:65534:' 'nogroup:x:65534:' >"$root/etc/group"
    : >"$root/etc/hosts"
    : >"$root/etc/resolv.conf"
    echo "$IMAGE_NAME" >"$root/etc/hostname"

    local tarflags=(--sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner)
    tar "${tarflags[@]}" -C "$root" -cf "$work/layer.tar" .
    local layer_dgst layer_size arch
    layer_dgst=$(sha256_of "$work/layer.tar")
    layer_size=$(size_of "$work/layer.tar")
    mv "$work/layer.tar" "$oci/blobs/sha256/$layer_dgst"
    arch=$(dpkg --print-architecture)

    local created=1970-01-01T00:00:00Z
    printf '%s' "{\"architecture\":\"$arch\",\"os\":\"linux\",\"created\":\"$created\",\
\"config\":{\"Env\":[\"PATH=/bin:/usr/bin:/sbin:/usr/sbin\"],\"Cmd\":[\"/bin/sh\"],\"WorkingDir\":\"/\",\
\"Labels\":{\"org.pydrmaa2.image-version\":\"$IMAGE_VERSION\"}},\
\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:$layer_dgst\"]},\
\"history\":[{\"created\":\"$created\",\"created_by\":\"pydrmaa2 scripts/engines.sh: busybox-static rootfs\"}]}" \
        >"$work/config.json"
    local cfg_dgst cfg_size
    cfg_dgst=$(sha256_of "$work/config.json")
    cfg_size=$(size_of "$work/config.json")
    mv "$work/config.json" "$oci/blobs/sha256/$cfg_dgst"

    printf '%s' "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\
\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:$cfg_dgst\",\"size\":$cfg_size},\
\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"sha256:$layer_dgst\",\"size\":$layer_size}]}" \
        >"$work/manifest.json"
    local man_dgst man_size
    man_dgst=$(sha256_of "$work/manifest.json")
    man_size=$(size_of "$work/manifest.json")
    mv "$work/manifest.json" "$oci/blobs/sha256/$man_dgst"

    printf '%s' '{"imageLayoutVersion":"1.0.0"}' >"$oci/oci-layout"
    printf '%s' "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\
\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:$man_dgst\",\"size\":$man_size,\
\"annotations\":{\"io.containerd.image.name\":\"$CTR_REF\",\"org.opencontainers.image.ref.name\":\"$IMAGE_TAG\"}}]}" \
        >"$oci/index.json"
    # docker-archive manifest (docker load ignores the OCI files and vice versa)
    printf '%s' "[{\"Config\":\"blobs/sha256/$cfg_dgst\",\"RepoTags\":[\"$IMAGE_REF\"],\
\"Layers\":[\"blobs/sha256/$layer_dgst\"]}]" >"$oci/manifest.json"

    tar "${tarflags[@]}" -C "$oci" -cf "$work/image.tar" oci-layout index.json manifest.json blobs
    mv -f "$work/image.tar" "$IMAGE_ARCHIVE"
    printf '%s %s\n' "$cfg_dgst" "$man_dgst" >"$IMAGE_IDS.tmp"
    mv -f "$IMAGE_IDS.tmp" "$IMAGE_IDS"
}

image_config_digest() { cut -d' ' -f1 "$IMAGE_IDS"; }
image_manifest_digest() { cut -d' ' -f2 "$IMAGE_IDS"; }

# ---------------------------------------------------------------------------
# containerd (shared by docker and the containerd engine)
# ---------------------------------------------------------------------------
containerd_ready() { ctr --address "$CONTAINERD_SOCK" version >/dev/null 2>&1; }
containerd_start() { start_daemon containerd containerd --address "$CONTAINERD_SOCK"; }
containerd_pid() { daemon_pid containerd containerd "$CONTAINERD_SOCK" || echo none; }

ensure_containerd() {
    ensure_daemon containerd containerd containerd_ready containerd_start
}

ctr_ns() { ctr --address "$CONTAINERD_SOCK" -n "$CTR_NS" "$@"; }

ctr_image_digest() { # REF -> manifest digest or empty
    ctr_ns images ls 2>/dev/null | awk -v r="$1" '$1 == r {print $3}'
}

setup_containerd() {
    local changed=0 key
    STARTED=0
    ensure_containerd
    changed=$STARTED
    build_image_archive
    local want
    want="sha256:$(image_manifest_digest)"
    if [[ $(ctr_image_digest "$CTR_REF") != "$want" || $(ctr_image_digest "$IMAGE_REF") != "$want" ]]; then
        log "containerd: importing $IMAGE_ARCHIVE into namespace $CTR_NS"
        ctr_ns images import --all-platforms "$IMAGE_ARCHIVE" >/dev/null ||
            die "containerd: ctr images import failed"
        # plain alias next to the normalised docker.io/library/ name
        ctr_ns images tag --force "$CTR_REF" "$IMAGE_REF" >/dev/null ||
            die "containerd: ctr images tag failed"
        [[ $(ctr_image_digest "$CTR_REF") == "$want" ]] || die "containerd: image import did not register $CTR_REF"
        changed=1
    fi
    key="containerd=$(containerd_pid) image=$want"
    if needs_verify containerd "$key" "$changed"; then
        log "containerd: smoke test"
        local id="pydrmaa2-smoke-$$" out
        out=$(ctr_ns run --rm "$CTR_REF" "$id" /bin/echo ok 2>&1) || true
        [[ $out == ok ]] || die "containerd: 'ctr run $CTR_REF /bin/echo ok' gave: $out"
        mark_verified containerd "$key"
    fi
    log "containerd ready: $CONTAINERD_SOCK (namespace $CTR_NS, image $CTR_REF)"
}

# ---------------------------------------------------------------------------
# docker (no configuration file of ours: a dockerd that fails is not touched)
# ---------------------------------------------------------------------------
docker_ready() { [[ $(curl -sf --max-time 2 --unix-socket "$DOCKER_SOCK" http://d/_ping 2>/dev/null) == OK ]]; }
docker_start() {
    # The default bridge network with iptables works on this kernel, so no
    # --iptables=false / --bridge=none is needed.
    # --live-restore: containers keep running while dockerd restarts (a wait rides it out).
    rm -f /var/run/docker.pid
    start_daemon dockerd dockerd --containerd "$CONTAINERD_SOCK" -H "unix://$DOCKER_SOCK" \
        --live-restore
}
dockerd_pid() { daemon_pid dockerd dockerd "$DOCKER_SOCK" || echo none; }

docker_smoke() {
    local out name="pydrmaa2-smoke-$$" deadline=$((SECONDS + TIMEOUT))
    # after a restart of containerd, dockerd reconnects to it within seconds
    while :; do
        out=$(docker run --rm "$IMAGE_REF" /bin/echo ok 2>&1) || true
        [[ $out != ok ]] || break
        if [[ $out != *containerd.sock* ]] || ((SECONDS >= deadline)); then
            die "docker: 'docker run --rm $IMAGE_REF /bin/echo ok' gave: $out"
        fi
        sleep 1
    done
    out=$(docker run --rm --network none "$IMAGE_REF" /bin/echo ok 2>&1) || true
    [[ $out == ok ]] || die "docker: 'docker run --network none' gave: $out"
    docker run -d --name "$name" "$IMAGE_REF" sleep 30 >/dev/null || die "docker: cannot start a sleep container"
    local st=ok
    docker pause "$name" >/dev/null &&
        [[ $(docker inspect -f '{{.State.Status}}' "$name") == paused ]] &&
        docker unpause "$name" >/dev/null &&
        [[ $(docker inspect -f '{{.State.Status}}' "$name") == running ]] || st=bad
    docker rm -f "$name" >/dev/null 2>&1 || true
    [[ $st == ok ]] || die "docker: pause/unpause does not work"
}

setup_docker() {
    local changed=0 key
    STARTED=0
    ensure_containerd
    ensure_daemon dockerd dockerd docker_ready docker_start
    changed=$STARTED
    build_image_archive
    local want have
    want="sha256:$(image_config_digest)"
    have=$(docker image inspect -f '{{.Id}}' "$IMAGE_REF" 2>/dev/null || true)
    if [[ $have != "$want" ]]; then
        log "docker: loading $IMAGE_REF"
        docker load -i "$IMAGE_ARCHIVE" >/dev/null || die "docker: docker load failed"
        have=$(docker image inspect -f '{{.Id}}' "$IMAGE_REF" 2>/dev/null || true)
        [[ $have == "$want" ]] || die "docker: $IMAGE_REF has id '$have', expected $want"
        changed=1
    fi
    key="dockerd=$(dockerd_pid) containerd=$(containerd_pid) image=$have"
    if needs_verify docker "$key" "$changed"; then
        log "docker: smoke test"
        docker_smoke
        mark_verified docker "$key"
    fi
    log "docker ready: unix://$DOCKER_SOCK (image $IMAGE_REF)"
}

# ---------------------------------------------------------------------------
# podman
# ---------------------------------------------------------------------------
podman_conf() {
    cat <<'EOF'
# Written by pydrmaa2 scripts/engines.sh (rootful podman, no systemd, cgroup v1).
[containers]
# Without explicit limits the OCI runtime tries to raise RLIMIT_NOFILE/NPROC
# above what this sandbox allows ("error setting rlimit type 7: operation
# not permitted").
default_ulimits = ["nofile=20000:20000", "nproc=20000:20000"]
# no journald here
log_driver = "k8s-file"

[engine]
# no systemd here
cgroup_manager = "cgroupfs"
events_logger = "file"

[network]
# netavark is installed; do not fall back to CNI (whose plugins are absent)
network_backend = "netavark"
EOF
}

podman_ready() {
    [[ $(curl -sf --max-time 2 --unix-socket "$PODMAN_SOCK" http://d/v4.0.0/libpod/_ping 2>/dev/null) == OK ]]
}
podman_start() {
    mkdir -p "$(dirname "$PODMAN_SOCK")"
    rm -f "$PODMAN_SOCK"
    start_daemon podman podman system service --time=0 "unix://$PODMAN_SOCK"
}
podman_pid() { daemon_pid podman podman "$PODMAN_SOCK" || echo none; }

podman_smoke() { # 0 if it works, else 1 with the reason in WHY
    local out name="pydrmaa2-smoke-$$"
    out=$(podman run --rm "$IMAGE_REF" /bin/echo ok 2>&1) || true
    [[ $out == ok ]] || { WHY="'podman run --rm $IMAGE_REF /bin/echo ok' gave: $out"; return 1; }
    podman run -d --name "$name" "$IMAGE_REF" sleep 30 >/dev/null 2>&1 ||
        { WHY="cannot start a sleep container"; return 1; }
    local st=ok
    podman pause "$name" >/dev/null &&
        [[ $(podman inspect -f '{{.State.Status}}' "$name") == paused ]] &&
        podman unpause "$name" >/dev/null &&
        [[ $(podman inspect -f '{{.State.Status}}' "$name") == running ]] || st=bad
    podman rm -f -t 0 "$name" >/dev/null 2>&1 || true
    [[ $st == ok ]] || { WHY="pause/unpause does not work"; return 1; }
}

# podman_image: load the test image if missing; 0 if it was loaded
podman_image() {
    local want have
    want=$(image_config_digest)
    have=$(podman image inspect --format '{{.Id}}' "$IMAGE_REF" 2>/dev/null || true)
    [[ $have != "$want" ]] || return 1
    log "podman: loading $IMAGE_REF"
    podman load -q -i "$IMAGE_ARCHIVE" >/dev/null || die "podman: podman load failed"
    have=$(podman image inspect --format '{{.Id}}' "$IMAGE_REF" 2>/dev/null || true)
    [[ $have == "$want" ]] || die "podman: $IMAGE_REF has id '$have', expected $want"
}

podman_key() { echo "podman=$(podman_pid) conf=$(file_sum "$PODMAN_CONF") image=$(image_config_digest)"; }

setup_podman() {
    local changed=0 key pid
    build_image_archive
    # A service that already runs with a containers.conf of its own: use it as
    # it is if it passes the smoke test.
    if podman_ready && ! same_content "$PODMAN_CONF" "$(podman_conf)"; then
        if podman_image; then changed=1; fi
        key=$(podman_key)
        if ! needs_verify podman "$key" "$changed"; then
            log "podman ready: unix://$PODMAN_SOCK (the running service, its own $PODMAN_CONF)"
            return 0
        fi
        log "podman: smoke test of the running service (its $PODMAN_CONF is not this script's)"
        if podman_smoke; then
            mark_verified podman "$key"
            log "podman ready: unix://$PODMAN_SOCK (the running service, used as it is)"
            return 0
        fi
        log "podman: the running service fails the smoke test ($WHY): configuring it"
    fi
    tx_begin podman
    if install_file "$PODMAN_CONF" 0644 "$(podman_conf)"; then
        # the service reads containers.conf at start only
        if pid=$(daemon_pid podman podman "$PODMAN_SOCK"); then
            stop_for_reconfig podman "$pid" podman_ready
        fi
        changed=1
    fi
    STARTED=0
    ensure_daemon podman podman podman_ready podman_start
    ((STARTED)) && changed=1
    if podman_image; then changed=1; fi
    key=$(podman_key)
    if needs_verify podman "$key" "$changed"; then
        log "podman: smoke test"
        podman_smoke || die "podman: $WHY"
        mark_verified podman "$key"
    fi
    tx_end
    log "podman ready: unix://$PODMAN_SOCK (image $(podman image inspect --format '{{index .RepoTags 0}}' "$IMAGE_REF"))"
}

# ---------------------------------------------------------------------------
# slurm (munge, mariadb, slurmdbd, slurmctld, slurmd)
# ---------------------------------------------------------------------------
munge_ready() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }
munge_start() {
    install -d -o munge -g munge -m 0755 /run/munge
    install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
    start_daemon munged setpriv --reuid=munge --regid=munge --init-groups -- munged -F --force
}

mariadb_ready() { mariadb-admin --protocol=socket ping >/dev/null 2>&1; }
mariadb_start() {
    install -d -o mysql -g mysql -m 0755 /run/mysqld
    if [[ ! -d /var/lib/mysql/mysql ]]; then
        log "mariadb: initialising /var/lib/mysql"
        mariadb-install-db --user=mysql --datadir=/var/lib/mysql >>/var/log/pydrmaa2-mariadb.log 2>&1 ||
            fail_with_log mariadb "mariadb-install-db failed"
    fi
    start_daemon mariadb mariadbd --user=mysql
}

mariadb_conf() {
    cat <<'EOF'
# Written by pydrmaa2 scripts/engines.sh: values recommended by slurmdbd.
[mariadbd]
innodb_buffer_pool_size = 512M
innodb_lock_wait_timeout = 900
innodb_log_file_size = 64M
EOF
}

slurmdbd_conf() {
    cat <<EOF
# Written by pydrmaa2 scripts/engines.sh
AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=root
DebugLevel=info
PidFile=/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=$SLURM_DB_USER
StoragePass=$SLURM_DB_PASS
StorageLoc=$SLURM_DB
EOF
}

slurm_conf() {
    local host=$1 mem=$2
    cat <<EOF
# Written by pydrmaa2 scripts/engines.sh: a one-node test cluster, tuned for
# fast turnaround of many small jobs.
ClusterName=$SLURM_CLUSTER
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$SLURM_STATE_DIR
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldDebug=info
SlurmdDebug=info
# scheduling
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0,default_queue_depth=1000,bf_interval=1,max_rpc_cnt=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MaxArraySize=1001
MaxJobCount=300000
# timers
MinJobAge=300
KillWait=2
CompleteWait=0
InactiveLimit=0
MessageTimeout=10
SlurmctldTimeout=30
SlurmdTimeout=60
Waittime=0
# accounting
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
JobCompType=jobcomp/none
# no MTA here
MailProg=/bin/true
# the node declares more CPUs than the machine has (config_overrides keeps it
# from being drained for that) so that many small jobs run at once
SlurmdParameters=config_overrides
NodeName=$host NodeAddr=127.0.0.1 CPUs=$SLURM_CPUS Boards=1 SocketsPerBoard=1 CoresPerSocket=$SLURM_CPUS ThreadsPerCore=1 RealMemory=$mem State=UNKNOWN
PartitionName=$SLURM_PARTITION Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
}

slurmdbd_ready() { sacctmgr -n -P show cluster format=cluster >/dev/null 2>&1; }
slurmdbd_start() { start_daemon slurmdbd slurmdbd -D; }
slurmctld_ready() { scontrol ping 2>/dev/null | grep -q 'is UP'; }
slurmctld_start() {
    install -d -m 0755 "$SLURM_STATE_DIR"
    start_daemon slurmctld slurmctld -D
}
slurmd_start() {
    install -d -m 0755 /var/spool/slurmd
    start_daemon slurmd slurmd -D
}

# The running controller's configuration (scontrol show config), read by
# slurm_fits; cfg_get KEY reads a value from it.
SLURM_CFG=
cfg_get() {
    awk -v k="$1" 'index($0, k " ") == 1 || index($0, k "=") == 1 { sub(/^[^=]*= */, ""); print; exit }' \
        <<<"$SLURM_CFG"
}
# conf_value FILE KEY DEFAULT: KEY of a slurm.conf-style FILE (keys ignore case)
conf_value() {
    local v=
    if [[ -f $1 ]]; then
        v=$(sed -n "s/^[[:space:]]*$2[[:space:]]*=[[:space:]]*\([^[:space:]#]*\).*/\1/Ip" "$1" | tail -n 1)
    fi
    echo "${v:-$3}"
}

node_state() { sinfo -h -n "$1" -o %T 2>/dev/null | head -n 1; }
node_usable() { [[ $(node_state "$1") =~ ^(idle|mixed|allocated|completing)$ ]]; }
slurmd_ready() { # HOST
    local st
    st=$(node_state "$1")
    case $st in
    down* | drain* | fail*)
        scontrol update nodename="$1" state=resume >/dev/null 2>&1 || true
        return 1
        ;;
    esac
    node_usable "$1"
}

# The smoke test's jobs are named $SMOKE_NAME: after a reset of the job ids
# (a new StateSaveLocation) sacct may still show an older job of the same id.
SMOKE_NAME="pydrmaa2-smoke-$$"
job_state() { # JOBID -> state from sacct (main record) or squeue
    local s
    s=$(sacct -j "$1" -n -P -X -D -o JobName,State 2>/dev/null |
        awk -F'|' -v n="$SMOKE_NAME" '$1 == n {s = $2} END {print s}' | cut -d' ' -f1)
    [[ -n $s ]] || s=$(squeue -h -j "$1" -o %T 2>/dev/null || true)
    echo "$s"
}
squeue_state() { squeue -h -j "$1" -o %T 2>/dev/null || true; }

wait_job() { # JOBID STATE-REGEX TIMEOUT FN
    local id=$1 re=$2 t=$3 fn=$4 st deadline
    deadline=$((SECONDS + t))
    while :; do
        st=$("$fn" "$id")
        [[ $st =~ ^($re)$ ]] && return 0
        if ((SECONDS >= deadline)); then
            echo "$st"
            return 1
        fi
        sleep 0.2
    done
}

# slurm_fits: does the running Slurm have what the test suite needs? (else 1,
# the reason in WHY).  Sets SLURM_CFG.
slurm_fits() {
    WHY=
    SLURM_CFG=
    slurmctld_ready || { WHY="slurmctld does not answer"; return 1; }
    SLURM_CFG=$(scontrol show config 2>/dev/null) || { WHY="'scontrol show config' failed"; return 1; }
    local cluster acct part cpus a i
    cluster=$(cfg_get ClusterName)
    acct=$(cfg_get AccountingStorageType)
    if [[ $acct != accounting_storage/slurmdbd ]]; then
        WHY="AccountingStorageType is '$acct', sacct needs accounting_storage/slurmdbd"
        return 1
    fi
    if ! sacctmgr -n -P show cluster format=cluster 2>/dev/null | grep -qxF -- "$cluster"; then
        WHY="slurmdbd does not answer or does not know cluster '$cluster'"
        return 1
    fi
    part=$(scontrol show partition "$SLURM_PARTITION" -o 2>/dev/null || true)
    if [[ $part != PartitionName=* ]]; then
        WHY="cluster '$cluster' has no partition '$SLURM_PARTITION'"
        return 1
    fi
    if [[ ! $part =~ (^|\ )Default=YES(\ |$) || ! $part =~ (^|\ )State=UP(\ |$) ]]; then
        WHY="partition '$SLURM_PARTITION' is not the default partition, or not UP"
        return 1
    fi
    cpus=$(sinfo -h -p "$SLURM_PARTITION" -o %C 2>/dev/null | head -n 1 || true)
    IFS=/ read -r a i _ <<<"$cpus"
    if [[ ! $a =~ ^[0-9]+$ || ! $i =~ ^[0-9]+$ ]] || ((a + i < 2)); then
        WHY="partition '$SLURM_PARTITION' has fewer than 2 usable CPUs (allocated/idle/other/total: ${cpus:-none})"
        return 1
    fi
    # a node of this host that slurmctld still sees up, its slurmd gone
    local me
    me=$(hostname -s)
    if sinfo -h -N -p "$SLURM_PARTITION" -o %N 2>/dev/null | grep -qxF -- "$me" && ! proc_running slurmd; then
        WHY="no slurmd runs for node $me of partition '$SLURM_PARTITION'"
        return 1
    fi
    if ! sacctmgr -n -P show qos format=name 2>/dev/null | grep -qx normal; then
        WHY="slurmdbd has no QOS 'normal'"
        return 1
    fi
    if ! sacctmgr -n -P show account root format=account 2>/dev/null | grep -qx root; then
        WHY="slurmdbd has no account 'root'"
        return 1
    fi
}

# slurm_smoke: what the suite does, once: 0 if it works, else 1 with WHY.
slurm_smoke() {
    local id st tmp sb=(sbatch --parsable --job-name="$SMOKE_NAME" --output=/dev/null --chdir=/tmp)
    tmp=$(mktemp -d)
    CLEANUP_FILES+=("$tmp")
    # a job whose output reaches this machine's files and whose end reaches sacct
    id=$(sbatch --parsable --job-name="$SMOKE_NAME" --chdir=/tmp --output="$tmp/out" --wrap 'echo ok' 2>&1) ||
        { WHY="sbatch failed: $id"; return 1; }
    if ! st=$(wait_job "$id" COMPLETED 30 job_state); then
        scancel "$id" 2>/dev/null
        WHY="job $id did not reach COMPLETED in sacct (state: ${st:-none})"
        return 1
    fi
    if [[ $(cat "$tmp/out" 2>/dev/null) != ok ]]; then
        WHY="job $id completed but its output did not reach $tmp/out on this machine"
        return 1
    fi
    # suspend / resume
    id=$("${sb[@]}" --wrap 'sleep 30' 2>&1) || { WHY="sbatch failed: $id"; return 1; }
    if ! st=$(wait_job "$id" RUNNING 30 squeue_state); then
        WHY="job $id not RUNNING (${st:-none})"
    elif ! scontrol suspend "$id"; then
        WHY="scontrol suspend $id failed"
    elif ! st=$(wait_job "$id" SUSPENDED 10 squeue_state); then
        WHY="job $id not SUSPENDED (${st:-none})"
    elif ! scontrol resume "$id"; then
        WHY="scontrol resume $id failed"
    elif ! st=$(wait_job "$id" RUNNING 10 squeue_state); then
        WHY="job $id not RUNNING after resume (${st:-none})"
    fi
    scancel "$id" 2>/dev/null
    [[ -z $WHY ]] || return 1
    # hold / release
    id=$("${sb[@]}" -H --wrap true 2>&1) || { WHY="sbatch -H failed: $id"; return 1; }
    sleep 0.5
    st=$(squeue_state "$id")
    if [[ $st != PENDING ]]; then
        scancel "$id" 2>/dev/null
        WHY="held job $id is '$st', not PENDING"
        return 1
    fi
    scontrol release "$id" || { scancel "$id" 2>/dev/null; WHY="scontrol release $id failed"; return 1; }
    st=$(wait_job "$id" COMPLETED 30 job_state) || { WHY="released job $id did not complete (${st:-none})"; return 1; }
    # a reservation
    local out
    out=$(scontrol create reservation ReservationName="$SMOKE_NAME" StartTime=now+1day Duration=10 CoreCnt=1 \
        Users="$(id -un)" 2>&1) || { WHY="scontrol create reservation failed: $out"; return 1; }
    scontrol delete ReservationName="$SMOKE_NAME" >/dev/null 2>&1 || true
}

slurm_ready_log() {
    log "slurm ready: $(sinfo -V), cluster $(cfg_get ClusterName), partition $SLURM_PARTITION" \
        "(nodes $(sinfo -h -p "$SLURM_PARTITION" -o %N 2>/dev/null | head -n 1))"
}

# slurm_key: what the smoke test of the running Slurm tested (see needs_verify)
slurm_key() {
    local ctld_port
    ctld_port=$(cfg_get SlurmctldPort)
    printf 'cluster=%s conf=%s slurmctld=%s slurmd=%s slurmdbd=%s\n' "$(cfg_get ClusterName)" \
        "$(file_sum "$(cfg_get SLURM_CONF)")" \
        "$(daemon_pid slurmctld slurmctld "${ctld_port%%-*}" || echo none)" \
        "$(daemon_pid slurmd slurmd "$(cfg_get SlurmdPort)" || echo none)" \
        "$(daemon_pid slurmdbd slurmdbd "$(cfg_get AccountingStoragePort)" || echo none)"
}

setup_slurm() {
    local key
    # A Slurm that already answers what the suite needs is used as it is.
    if slurmctld_ready; then
        if slurm_fits; then
            key=$(slurm_key)
            if ! needs_verify slurm "$key" 0; then
                slurm_ready_log
                return 0
            fi
            log "slurm: smoke test of the running cluster $(cfg_get ClusterName) (sbatch/sacct, suspend/resume, hold/release, reservation)"
            if slurm_smoke; then
                mark_verified slurm "$key"
                slurm_ready_log
                return 0
            fi
        fi
        log "slurm: the running Slurm does not answer what the test suite needs ($WHY): configuring it"
    fi
    tx_begin slurm
    slurm_configure
    tx_end
}

slurm_configure() {
    local host mem pid changed=0
    host=$(hostname -s)
    # munge
    local mkey=/etc/munge/munge.key key
    if [[ ! -s $mkey ]]; then
        log "slurm: creating $mkey"
        install -d -o munge -g munge -m 0700 /etc/munge
        dd if=/dev/urandom of="$mkey" bs=1024 count=1 status=none
    fi
    if [[ ! $(stat -c %U:%a "$mkey") =~ ^munge:[46]00$ ]]; then
        chown munge:munge "$mkey"
        chmod 0400 "$mkey"
    fi
    STARTED=0
    ensure_daemon munged munged munge_ready munge_start
    ((STARTED)) && changed=1

    # mariadb: one that answers and that this script did not start is used as it is
    if mariadb_ready && ! our_pid mariadb >/dev/null; then
        log "slurm: using the running MariaDB as it is"
    else
        if install_file "$MARIADB_CONF" 0644 "$(mariadb_conf)"; then
            if pid=$(our_pid mariadb); then stop_for_reconfig mariadb "$pid" mariadb_ready; fi
        fi
        STARTED=0
        ensure_daemon mariadb mariadbd mariadb_ready mariadb_start
        ((STARTED)) && changed=1
    fi

    # the Slurm daemons running now, before anything is stopped
    SLURM_CFG=$(scontrol show config 2>/dev/null || true)
    local ctld_port slurmd_port ctld_pidfile slurmd_pidfile
    if [[ -n $SLURM_CFG ]]; then
        ctld_port=$(cfg_get SlurmctldPort) slurmd_port=$(cfg_get SlurmdPort)
        ctld_pidfile=$(cfg_get SlurmctldPidFile) slurmd_pidfile=$(cfg_get SlurmdPidFile)
    else
        ctld_port=$(conf_value "$SLURM_CONF_FILE" SlurmctldPort 6817)
        slurmd_port=$(conf_value "$SLURM_CONF_FILE" SlurmdPort 6818)
        ctld_pidfile=$(conf_value "$SLURM_CONF_FILE" SlurmctldPidFile /run/slurmctld.pid)
        slurmd_pidfile=$(conf_value "$SLURM_CONF_FILE" SlurmdPidFile /run/slurmd.pid)
    fi
    local ctld_pid slurmd_pid dbd_pid
    ctld_pid=$(daemon_pid slurmctld slurmctld "${ctld_port%%-*}" "$ctld_pidfile" || true)
    slurmd_pid=$(daemon_pid slurmd slurmd "$slurmd_port" "$slurmd_pidfile" || true)
    dbd_pid=$(daemon_pid slurmdbd slurmdbd "$(conf_value "$SLURMDBD_CONF_FILE" DbdPort 6819)" \
        "$(conf_value "$SLURMDBD_CONF_FILE" PidFile /run/slurmdbd.pid)" || true)

    # slurm.conf; slurmctld and slurmd read it at start only
    mem=$(slurmd -C 2>/dev/null | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' | head -n 1)
    [[ -n $mem ]] || die "slurm: 'slurmd -C' reported no RealMemory"
    local restart=
    if install_file "$SLURM_CONF_FILE" 0644 "$(slurm_conf "$host" "$mem")"; then
        restart="$SLURM_CONF_FILE changed"
    elif [[ -n $SLURM_CFG ]]; then
        local boot
        boot=$(date -d "$(cfg_get BOOT_TIME)" +%s 2>/dev/null || echo 0)
        if [[ $(cfg_get ClusterName) != "$SLURM_CLUSTER" || $(cfg_get SLURM_CONF) != "$SLURM_CONF_FILE" ]]; then
            restart="slurmctld runs with other settings than $SLURM_CONF_FILE"
        elif ((boot < $(stat -c %Y "$SLURM_CONF_FILE"))); then
            restart="slurmctld was started before $SLURM_CONF_FILE was last written"
        fi
    fi
    if [[ -n $restart ]]; then
        changed=1
        if [[ -n $slurmd_pid || -n $ctld_pid ]]; then log "slurm: $restart: restarting slurmd and slurmctld"; fi
        if [[ -n $slurmd_pid ]]; then stop_for_reconfig slurmd "$slurmd_pid"; fi
        if [[ -n $ctld_pid ]]; then stop_for_reconfig slurmctld "$ctld_pid" slurmctld_ready; fi
    fi

    # slurmdbd: one that answers (where the new slurm.conf looks) and that this
    # script did not start is used as it is
    if [[ -n $dbd_pid ]] && ! our_pid slurmdbd >/dev/null && slurmdbd_ready; then
        log "slurm: using the running slurmdbd (pid $dbd_pid) as it is"
    else
        if install_file "$SLURMDBD_CONF_FILE" 0600 "$(slurmdbd_conf)"; then
            changed=1
            if [[ -n $dbd_pid ]]; then stop_for_reconfig slurmdbd "$dbd_pid" slurmdbd_ready; fi
        fi
        if ! slurmdbd_ready; then
            mariadb --protocol=socket <<EOF || die "slurm: cannot create the accounting database"
CREATE DATABASE IF NOT EXISTS $SLURM_DB;
CREATE USER IF NOT EXISTS '$SLURM_DB_USER'@'localhost' IDENTIFIED BY '$SLURM_DB_PASS';
ALTER USER '$SLURM_DB_USER'@'localhost' IDENTIFIED BY '$SLURM_DB_PASS';
GRANT ALL PRIVILEGES ON $SLURM_DB.* TO '$SLURM_DB_USER'@'localhost';
FLUSH PRIVILEGES;
EOF
        fi
        STARTED=0
        ensure_daemon slurmdbd slurmdbd slurmdbd_ready slurmdbd_start
        ((STARTED)) && changed=1
    fi
    if ! sacctmgr -n -P show cluster format=cluster 2>/dev/null | grep -qx "$SLURM_CLUSTER"; then
        log "slurm: registering cluster $SLURM_CLUSTER in slurmdbd"
        sacctmgr -i add cluster "$SLURM_CLUSTER" >/dev/null || die "slurm: sacctmgr add cluster failed"
        changed=1
    fi

    if ! slurmctld_ready && ! proc_running slurmctld; then
        # slurmctld keeps the cluster name in StateSaveLocation and refuses to
        # start on the state of another cluster ("CLUSTER NAME MISMATCH")
        local saved
        saved=$(cat "$SLURM_STATE_DIR/clustername" 2>/dev/null || true)
        if [[ -n $saved && $saved != "$SLURM_CLUSTER" ]]; then
            move_aside "$SLURM_STATE_DIR" "slurm: it holds the state of cluster '$saved'"
        fi
        # the state left by an earlier version of this script (when newer than
        # ours) is carried over, so that job ids go on: a new sequence would
        # reuse ids that slurmdbd already has, and sacct would mix old and new jobs
        local old="$SLURM_OLD_STATE_DIR/job_state" new="$SLURM_STATE_DIR/job_state"
        if [[ -f $old && $(cat "$SLURM_OLD_STATE_DIR/clustername" 2>/dev/null) == "$SLURM_CLUSTER" ]] &&
            [[ ! -f $new || $(stat -c %Y "$old") -gt $(stat -c %Y "$new") ]]; then
            if [[ -e $SLURM_STATE_DIR ]]; then
                move_aside "$SLURM_STATE_DIR" "slurm: $SLURM_OLD_STATE_DIR holds newer state of cluster $SLURM_CLUSTER"
            fi
            cp -a -- "$SLURM_OLD_STATE_DIR" "$SLURM_STATE_DIR"
            TX_DIRS+=("$SLURM_STATE_DIR"$'\t')
            log "slurm: copied the state of cluster $SLURM_CLUSTER from $SLURM_OLD_STATE_DIR to $SLURM_STATE_DIR"
        fi
    fi
    STARTED=0
    ensure_daemon slurmctld slurmctld slurmctld_ready slurmctld_start
    ((STARTED)) && changed=1
    if ! proc_running slurmd; then
        slurmd_start
        changed=1
    fi
    if ! node_usable "$host"; then
        slurmd_ready "$host" || true
        wait_until slurmd "node $host to become idle (now: $(node_state "$host"))" slurmd_ready "$host"
        log "slurm node $host is $(node_state "$host")"
    fi

    slurm_fits || die "slurm: $WHY"
    key=$(slurm_key)
    if needs_verify slurm "$key" "$changed"; then
        log "slurm: smoke test (sbatch/sacct, suspend/resume, hold/release, reservation)"
        slurm_smoke || die "slurm: $WHY"
        mark_verified slurm "$key"
    fi
    slurm_ready_log
}

# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------
VERIFY=2 # 0 never, 1 always, 2 when what was verified changed (needs_verify)
main() {
    local arg e
    local -a ENGINES=() PKGS=()
    for arg in "$@"; do
        case $arg in
        -h | --help)
            usage
            exit 0
            ;;
        --verify) VERIFY=1 ;;
        --no-verify) VERIFY=0 ;;
        all) ENGINES+=(docker podman containerd slurm) ;;
        docker | podman | containerd | slurm) ENGINES+=("$arg") ;;
        *) die "unknown engine '$arg' (expected: docker podman containerd slurm all)" ;;
        esac
    done
    ((${#ENGINES[@]})) || ENGINES=(docker podman containerd slurm)

    [[ $(id -u) == 0 ]] || die "must run as root"
    mkdir -p "$RUN_DIR" "$CACHE_DIR"
    exec 9>"$RUN_DIR/engines.lock"
    if ! flock -n 9; then
        log "waiting for another engines.sh run to finish"
        flock -w 900 9 || die "another engines.sh is still running"
    fi

    declare -A WANT=()
    for e in "${ENGINES[@]}"; do WANT[$e]=1; done

    # ss (which pid serves a socket or port), pgrep; a C compiler and static libc for the
    # process tracker's fork server and the DRMAA v1 library (python3-dev: Python.h); zsh and
    # fish, whose completion of the drmaa2 command the CLI's tests drive; chromium, the headless
    # browser the dashboard's test drives (through Playwright), openssl for drmaa2 serve's TLS, and
    # the linter that the test of this script runs on it (shellcheck)
    PKGS=(iproute2 procps gcc libc6-dev python3-dev zsh fish chromium openssl shellcheck)
    if [[ -n ${WANT[docker]:-} || -n ${WANT[podman]:-} || -n ${WANT[containerd]:-} ]]; then
        PKGS+=(busybox-static curl)
    fi
    [[ -n ${WANT[docker]:-} ]] && PKGS+=(docker.io containerd runc iptables)
    [[ -n ${WANT[containerd]:-} ]] && PKGS+=(containerd runc)
    [[ -n ${WANT[podman]:-} ]] && PKGS+=(podman runc conmon netavark iptables)
    [[ -n ${WANT[slurm]:-} ]] && PKGS+=(slurm-wlm slurm-client munge slurmdbd mariadb-server mariadb-client)
    mapfile -t PKGS < <(printf '%s\n' "${PKGS[@]}" | sort -u)
    apt_install "${PKGS[@]}"

    for e in containerd docker podman slurm; do
        [[ -n ${WANT[$e]:-} ]] || continue
        "setup_$e"
    done
    log "ready: ${ENGINES[*]}"
}

# Sourced (tests/test_engines_script.py): only the functions.
[[ ${BASH_SOURCE[0]} != "$0" ]] || main "$@"
