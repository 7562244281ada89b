#!/usr/bin/env bash
# Provision the container / batch engines used by the pydrmaa2 test suite on a
# Debian 12 (bookworm) machine without systemd, as root.
#
# Usage: scripts/engines.sh [--verify|--no-verify] [ENGINE...]
#   ENGINE: docker podman containerd slurm   (none or "all" = all four)
#
# Idempotent: installs only missing Debian packages (apt-get update only when
# something has to be installed), starts only daemons that are not answering
# (in the background, logs in /var/log/pydrmaa2-*.log), waits (bounded) until
# each engine answers, and loads the local test image `pydrmaa2-test:latest`.
# After a (re)start or an image (re)load the engine is smoke-tested (run a
# container / a Slurm job, pause/unpause, ...); --verify forces the smoke tests,
# --no-verify skips them.  A second run with everything up takes ~1 s.
#
# Endpoints:
#   docker      unix:///var/run/docker.sock        (dockerd 20.10, API 1.41)
#   podman      unix:///run/podman/podman.sock     (podman 4.3, libpod + docker-compat API)
#   containerd  /run/containerd/containerd.sock    (namespace "pydrmaa2"; dockerd uses "moby")
#   slurm       cluster "pydrmaa2", partition "debug", node "$(hostname -s)"
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
readonly SLURM_CLUSTER=pydrmaa2
readonly SLURM_PARTITION=debug
readonly SLURM_DB=slurm_acct_db
readonly SLURM_DB_USER=slurm
# Local, loopback-only test database: a fixed password is fine here.
readonly SLURM_DB_PASS=pydrmaa2-slurmdbd
readonly TIMEOUT="${PYDRMAA2_ENGINES_TIMEOUT:-60}"
readonly SLURM_CPUS="${PYDRMAA2_SLURM_CPUS:-8}"

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
trap cleanup EXIT

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
# start_daemon NAME CMD...: start CMD detached, output to /var/log/pydrmaa2-NAME.log
start_daemon() {
    local name=$1
    shift
    local logf="/var/log/pydrmaa2-$name.log"
    mkdir -p "$RUN_DIR"
    log "starting $name: $* (log: $logf)"
    printf '=== %s engines.sh starting: %s\n' "$(date -Is)" "$*" >>"$logf"
    # 9>&-: the daemon must not inherit (and so hold forever) our lock fd
    setsid nohup "$@" >>"$logf" 2>&1 </dev/null 9>&- &
    echo "$!" >"$RUN_DIR/$name.pid"
}

# our_pid NAME: pid of a daemon this script started, if it still runs
our_pid() {
    local f="$RUN_DIR/$1.pid" pid
    [[ -s $f ]] || return 1
    pid=$(<"$f")
    kill -0 "$pid" 2>/dev/null || return 1
    echo "$pid"
}

# stop_daemon NAME: stop a daemon this script started (by its recorded pid)
stop_daemon() {
    local pid i
    pid=$(our_pid "$1") || return 0
    log "stopping $1 (pid $pid)"
    kill "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
    rm -f "$RUN_DIR/$1.pid"
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
#   READY_FN answers whether the service responds; PROCNAME (pgrep -x) tells
#   whether a process is already there (then we only wait for it).
# Sets STARTED=1 when it had to start the daemon.
STARTED=0
ensure_daemon() {
    local name=$1 proc=$2 ready=$3 start=$4
    "$ready" >/dev/null 2>&1 && return 0
    if ! pgrep -x "$proc" >/dev/null 2>&1; then
        "$start"
        STARTED=1
    else
        log "$name is running but not answering yet; waiting"
    fi
    wait_until "$name" "$name to answer" "$ready"
    log "$name is up"
}

# install_file DEST MODE: write stdin to DEST if different; returns 0 if changed.
install_file() {
    local dest=$1 mode=$2 tmp
    tmp=$(mktemp)
    cat >"$tmp"
    if [[ -f $dest ]] && cmp -s "$tmp" "$dest"; then
        rm -f "$tmp"
        chmod "$mode" "$dest"
        return 1
    fi
    mkdir -p "$(dirname "$dest")"
    chmod "$mode" "$tmp"
    mv -f "$tmp" "$dest"
    log "wrote $dest"
    return 0
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

ensure_containerd() {
    ensure_daemon containerd containerd containerd_ready containerd_start
}

ctr_ns() { ctr --address "$CONTAINERD_SOCK" -n "$CTR_NS" "$@"; }

ctr_image_digest() { # REF -> manifest digest or empty
    ctr_ns images ls 2>/dev/null | awk -v r="$1" '$1 == r {print $3}'
}

setup_containerd() {
    local started=0
    STARTED=0
    ensure_containerd
    started=$STARTED
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
        started=1
    fi
    if ((VERIFY == 1 || (VERIFY == 2 && started))); then
        log "containerd: smoke test"
        local id="pydrmaa2-smoke-$$" out
        out=$(ctr_ns run --rm "$CTR_REF" "$id" /bin/echo ok 2>&1) || true
        [[ $out == ok ]] || die "containerd: 'ctr run $CTR_REF /bin/echo ok' gave: $out"
    fi
    log "containerd ready: $CONTAINERD_SOCK (namespace $CTR_NS, image $CTR_REF)"
}

# ---------------------------------------------------------------------------
# docker
# ---------------------------------------------------------------------------
docker_ready() { [[ $(curl -sf --max-time 2 --unix-socket "$DOCKER_SOCK" http://d/_ping 2>/dev/null) == OK ]]; }
docker_start() {
    # The default bridge network with iptables works on this kernel, so no
    # --iptables=false / --bridge=none is needed.
    rm -f /var/run/docker.pid
    start_daemon dockerd dockerd --containerd "$CONTAINERD_SOCK" -H "unix://$DOCKER_SOCK"
}

docker_smoke() {
    local out name="pydrmaa2-smoke-$$"
    out=$(docker run --rm "$IMAGE_REF" /bin/echo ok 2>&1) || true
    [[ $out == ok ]] || die "docker: 'docker run --rm $IMAGE_REF /bin/echo ok' gave: $out"
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
    local started=0
    STARTED=0
    ensure_containerd
    ensure_daemon dockerd dockerd docker_ready docker_start
    started=$STARTED
    build_image_archive
    local want have
    want="sha256:$(image_config_digest)"
    have=$(docker image inspect -f '{{.Id}}' "$IMAGE_REF" 2>/dev/null || true)
    if [[ $have != "$want" ]]; then
        log "docker: loading $IMAGE_REF"
        docker load -i "$IMAGE_ARCHIVE" >/dev/null || die "docker: docker load failed"
        have=$(docker image inspect -f '{{.Id}}' "$IMAGE_REF" 2>/dev/null || true)
        [[ $have == "$want" ]] || die "docker: $IMAGE_REF has id '$have', expected $want"
        started=1
    fi
    if ((VERIFY == 1 || (VERIFY == 2 && started))); then
        log "docker: smoke test"
        docker_smoke
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

podman_smoke() {
    local out name="pydrmaa2-smoke-$$"
    out=$(podman run --rm "$IMAGE_REF" /bin/echo ok 2>&1) || true
    [[ $out == ok ]] || die "podman: 'podman run --rm $IMAGE_REF /bin/echo ok' gave: $out"
    podman run -d --name "$name" "$IMAGE_REF" sleep 30 >/dev/null || die "podman: cannot start a sleep container"
    local st=ok
    podman pause "$name" >/dev/null &&
        [[ $(podman inspect -f '{{.State.Status}}' "$name") == paused ]] &&
        podman unpause "$name" >/dev/null &&
        [[ $(podman inspect -f '{{.State.Status}}' "$name") == running ]] || st=bad
    podman rm -f -t 0 "$name" >/dev/null 2>&1 || true
    [[ $st == ok ]] || die "podman: pause/unpause does not work"
}

setup_podman() {
    local started=0 conf=/etc/containers/containers.conf
    if [[ -f $conf ]] && ! grep -q 'pydrmaa2 scripts/engines.sh' "$conf"; then
        cp -p "$conf" "$conf.orig-pydrmaa2"
        log "podman: saved the previous $conf as $conf.orig-pydrmaa2"
    fi
    if podman_conf | install_file "$conf" 0644; then
        # the service reads containers.conf at start only
        if our_pid podman >/dev/null; then
            stop_daemon podman
        fi
    fi
    STARTED=0
    ensure_daemon podman podman podman_ready podman_start
    started=$STARTED
    build_image_archive
    local want have
    want=$(image_config_digest)
    have=$(podman image inspect --format '{{.Id}}' "$IMAGE_REF" 2>/dev/null || true)
    if [[ $have != "$want" ]]; then
        log "podman: loading $IMAGE_REF"
        podman load -q -i "$IMAGE_ARCHIVE" >/dev/null || die "podman: podman load failed"
        have=$(podman image inspect --format '{{.Id}}' "$IMAGE_REF" 2>/dev/null || true)
        [[ $have == "$want" ]] || die "podman: $IMAGE_REF has id '$have', expected $want"
        started=1
    fi
    if ((VERIFY == 1 || (VERIFY == 2 && started))); then
        log "podman: smoke test"
        podman_smoke
    fi
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
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldDebug=info
SlurmdDebug=info
# scheduling
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0,default_queue_depth=1000,bf_interval=1,max_rpc_cnt=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MaxArraySize=1001
MaxJobCount=100000
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
    install -d -m 0755 /var/spool/slurmctld
    start_daemon slurmctld slurmctld -D
}
slurmd_start() {
    install -d -m 0755 /var/spool/slurmd
    start_daemon slurmd slurmd -D
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

job_state() { # JOBID -> state from sacct (main record) or squeue
    local s
    s=$(sacct -j "$1" -n -P -X -o State 2>/dev/null | head -n 1 | cut -d' ' -f1)
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

slurm_smoke() {
    local id st sb=(sbatch --parsable --output=/dev/null --chdir=/tmp)
    id=$("${sb[@]}" --wrap true) || die "slurm: sbatch failed"
    st=$(wait_job "$id" COMPLETED 30 job_state) ||
        die "slurm: job $id did not reach COMPLETED in sacct (state: ${st:-none})"
    # suspend / resume
    id=$("${sb[@]}" --wrap 'sleep 30') || die "slurm: sbatch failed"
    st=$(wait_job "$id" RUNNING 30 squeue_state) || { scancel "$id"; die "slurm: job $id not RUNNING (${st:-none})"; }
    scontrol suspend "$id" || { scancel "$id"; die "slurm: scontrol suspend failed"; }
    st=$(wait_job "$id" SUSPENDED 10 squeue_state) || { scancel "$id"; die "slurm: job $id not SUSPENDED (${st:-none})"; }
    scontrol resume "$id" || { scancel "$id"; die "slurm: scontrol resume failed"; }
    st=$(wait_job "$id" RUNNING 10 squeue_state) || { scancel "$id"; die "slurm: job $id not RUNNING after resume (${st:-none})"; }
    scancel "$id"
    # hold / release
    id=$("${sb[@]}" -H --wrap true) || die "slurm: sbatch -H failed"
    sleep 0.5
    st=$(squeue_state "$id")
    [[ $st == PENDING ]] || { scancel "$id"; die "slurm: held job $id is '$st', not PENDING"; }
    scontrol release "$id" || die "slurm: scontrol release failed"
    st=$(wait_job "$id" COMPLETED 30 job_state) || die "slurm: released job $id did not complete (${st:-none})"
}

setup_slurm() {
    local started=0 host mem
    host=$(hostname -s)
    # munge
    if [[ ! -s /etc/munge/munge.key ]]; then
        log "slurm: creating /etc/munge/munge.key"
        install -d -o munge -g munge -m 0700 /etc/munge
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
    STARTED=0
    ensure_daemon munged munged munge_ready munge_start
    ((STARTED)) && started=1

    # mariadb + the accounting database
    if mariadb_conf | install_file /etc/mysql/mariadb.conf.d/90-pydrmaa2.cnf 0644; then
        our_pid mariadb >/dev/null && stop_daemon mariadb
    fi
    STARTED=0
    ensure_daemon mariadb mariadbd mariadb_ready mariadb_start
    ((STARTED)) && started=1

    # configuration files
    mem=$(slurmd -C 2>/dev/null | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' | head -n 1)
    [[ -n $mem ]] || die "slurm: 'slurmd -C' reported no RealMemory"
    local dbd_changed=0 conf_changed=0
    slurmdbd_conf | install_file /etc/slurm/slurmdbd.conf 0600 && dbd_changed=1
    slurm_conf "$host" "$mem" | install_file /etc/slurm/slurm.conf 0644 && conf_changed=1
    if ((dbd_changed)); then stop_daemon slurmdbd; fi
    if ((conf_changed)); then
        stop_daemon slurmd
        stop_daemon slurmctld
        if pgrep -x slurmctld >/dev/null; then scontrol reconfigure >/dev/null 2>&1 || true; fi
    fi

    # slurmdbd
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
    ((STARTED)) && started=1
    if ! sacctmgr -n -P show cluster format=cluster 2>/dev/null | grep -qx "$SLURM_CLUSTER"; then
        log "slurm: registering cluster $SLURM_CLUSTER in slurmdbd"
        sacctmgr -i add cluster "$SLURM_CLUSTER" >/dev/null || die "slurm: sacctmgr add cluster failed"
        started=1
    fi

    # slurmctld + slurmd
    STARTED=0
    ensure_daemon slurmctld slurmctld slurmctld_ready slurmctld_start
    ((STARTED)) && started=1
    STARTED=0
    if ! pgrep -x slurmd >/dev/null; then
        slurmd_start
        STARTED=1
    fi
    ((STARTED)) && started=1
    if ! node_usable "$host"; then
        slurmd_ready "$host" || true
        wait_until slurmd "node $host to become idle (now: $(node_state "$host"))" slurmd_ready "$host"
        log "slurm node $host is $(node_state "$host")"
    fi

    if ((VERIFY == 1 || (VERIFY == 2 && started))); then
        log "slurm: smoke test (sbatch/sacct, suspend/resume, hold/release)"
        slurm_smoke
    fi
    log "slurm ready: $(sinfo -V), cluster $SLURM_CLUSTER, partition $SLURM_PARTITION, node $host"
}

# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------
VERIFY=2 # 0 never, 1 always, 2 after a (re)start / image load
ENGINES=()
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

PKGS=()
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
