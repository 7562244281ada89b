#!/bin/sh
# pydrmaa2 Slurm batch script: sets JOB_ID and TASK_ID, then runs the job's argv unchanged.
pydrmaa2_vars='PYDRMAA2_SLURM_KEY PYDRMAA2_SLURM_JOB_ID PYDRMAA2_SLURM_TASK_ID PYDRMAA2_SLURM_FIRST_ID
    PYDRMAA2_SLURM_FIRST_INDEX PYDRMAA2_SLURM_STEP PYDRMAA2_SLURM_REINDEXED
    PYDRMAA2_SLURM_CPU_LIMIT PYDRMAA2_SLURM_WORKDIR PYDRMAA2_SLURM_STDIN
    PYDRMAA2_SLURM_STDOUT PYDRMAA2_SLURM_STDERR PYDRMAA2_SLURM_JOIN'
unset $pydrmaa2_vars
while :; do
    case ${1-} in
    --) shift; break ;;
    PYDRMAA2_SLURM_*=*) export "$1" || exit 1; shift ;;
    *) echo "pydrmaa2 batch script: unexpected argument '${1-}' before --" >&2; exit 1 ;;
    esac
done
pydrmaa2_expand() {
    p=$1 r=
    while :; do
        case $p in
        *'$DRMAA2_INDEX$'*) r=$r${p%%'$DRMAA2_INDEX$'*}$TASK_ID; p=${p#*'$DRMAA2_INDEX$'} ;;
        *) break ;;
        esac
    done
    printf '%s' "$r$p"
}
if [ -n "${SLURM_ARRAY_TASK_ID:-}" ] && [ -n "${PYDRMAA2_SLURM_FIRST_INDEX:-}" ]; then
    if [ "${PYDRMAA2_SLURM_REINDEXED:-}" = 1 ]; then
        TASK_ID=$((PYDRMAA2_SLURM_FIRST_INDEX + SLURM_ARRAY_TASK_ID * PYDRMAA2_SLURM_STEP))
    else
        TASK_ID=$SLURM_ARRAY_TASK_ID
    fi
    if [ -n "${PYDRMAA2_SLURM_FIRST_ID:-}" ]; then
        JOB_ID=$((PYDRMAA2_SLURM_FIRST_ID + (TASK_ID - PYDRMAA2_SLURM_FIRST_INDEX) / PYDRMAA2_SLURM_STEP))
    else
        JOB_ID=${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}
    fi
    export TASK_ID JOB_ID
else
    unset TASK_ID
    if [ -n "${PYDRMAA2_SLURM_TASK_ID:-}" ]; then TASK_ID=$PYDRMAA2_SLURM_TASK_ID; export TASK_ID; fi
    JOB_ID=${PYDRMAA2_SLURM_JOB_ID:-$SLURM_JOB_ID}
    export JOB_ID
fi
if [ -n "${PYDRMAA2_SLURM_CPU_LIMIT:-}" ]; then ulimit -t "$PYDRMAA2_SLURM_CPU_LIMIT" || exit 1; fi
if [ -n "${PYDRMAA2_SLURM_WORKDIR:-}" ]; then cd "$(pydrmaa2_expand "$PYDRMAA2_SLURM_WORKDIR")" || exit 1; fi
if [ -n "${PYDRMAA2_SLURM_STDIN:-}" ]; then exec <"$(pydrmaa2_expand "$PYDRMAA2_SLURM_STDIN")" || exit 1; fi
if [ -n "${PYDRMAA2_SLURM_STDOUT:-}" ]; then exec >"$(pydrmaa2_expand "$PYDRMAA2_SLURM_STDOUT")" || exit 1; fi
if [ -n "${PYDRMAA2_SLURM_STDERR:-}" ]; then exec 2>"$(pydrmaa2_expand "$PYDRMAA2_SLURM_STDERR")" || exit 1
elif [ "${PYDRMAA2_SLURM_JOIN:-}" = 1 ]; then exec 2>&1; fi
unset $pydrmaa2_vars pydrmaa2_vars
unset -f pydrmaa2_expand
exec "$@"
