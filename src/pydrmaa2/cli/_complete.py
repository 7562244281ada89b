"""Shell completion for ``drmaa2``: ``drmaa2 completion bash|zsh|fish`` prints a script.

The scripts are made from the command's own argparse parser (so they list its commands and
options as they are), with what a value may be: a session, a job, a contact scheme, a state, a
file. Sessions, jobs and contacts change: for them the script asks ``drmaa2 __complete
sessions|jobs|contacts [--session S] [--prefix P]``, a hidden command that reads the store
(never creating one, never starting the agent) and prints ``value<TAB>description`` lines.
Nothing typed on the command line is ever run as shell code: values are read as data.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..errors import InvalidArgumentError
from ..states import JobState

__all__ = ["SHELLS", "KINDS", "script", "complete_main"]

SHELLS = ("bash", "zsh", "fish")
#: What the hidden ``__complete`` command lists.
DYNAMIC = ("sessions", "jobs", "contacts")
#: Job ids listed at most (the newest first) for one prefix.
MAX_JOBS = 500
#: What each (command, dest) takes, beyond argparse's choices; "*" is any command.
KINDS = {
    ("*", "session"): "sessions", ("*", "contact"): "contacts", ("jobs", "state"): "states",
    ("run", "output"): "files", ("run", "error"): "files", ("run", "input"): "files",
    ("run", "workdir"): "dirs", ("run", "cmd"): "command", ("info", "job"): "jobs",
    ("logs", "job"): "jobs",
    ("wait", "jobs"): "jobs", ("suspend", "jobs"): "jobs", ("resume", "jobs"): "jobs",
    ("hold", "jobs"): "jobs", ("release", "jobs"): "jobs", ("terminate", "jobs"): "jobs",
    ("reap", "jobs"): "jobs", ("sessions", "name"): "sessions",
    ("serve", "socket"): "files", ("serve", "tls_cert"): "files", ("serve", "tls_key"): "files",
    ("serve", "token_file"): "files",
}
#: A positional completed only after another positional has this value: (index, value).
ONLY_AFTER = {("sessions", "name"): (0, "destroy")}
STATES = [s.value for s in JobState]
CONTACT_HELP = {"process": "processes of this host", "docker": "Docker containers",
                "podman": "Podman containers", "containerd": "containerd containers",
                "slurm": "Slurm jobs"}


@dataclass
class Arg:
    """An option or positional of a command, as completion sees it."""

    names: list[str]  # option strings; [] for a positional
    dest: str
    help: str
    takes_value: bool = True
    repeat: bool = False  # an option given several times, a positional taking several words
    kind: str | None = None  # sessions, jobs, contacts, states, files, dirs, command
    choices: list[str] = field(default_factory=list)
    only_after: tuple[int, str] | None = None


@dataclass
class Command:
    """A subcommand with its options and positionals."""

    name: str
    help: str
    options: list[Arg]
    positionals: list[Arg]


def _help(text: str | None) -> str:
    """A help text on one line, short, without characters the scripts quote specially."""
    text = re.sub(r"\s+", " ", text or "").strip()
    text = re.sub(r"\s*\(.*", "", text) or text  # the first clause: no nested quotes or colons
    return re.sub(r"[^\w ,./+=-]", "", text)[:60]


def commands(parser: argparse.ArgumentParser) -> list[Command]:
    """The subcommands of the ``drmaa2`` parser, for the scripts."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {a.dest: a.help for a in sub._choices_actions}
    out = []
    for name, p in sub.choices.items():
        options, positionals = [], []
        for a in p._actions:
            kind = KINDS.get((name, a.dest)) or KINDS.get(("*", a.dest))
            choices = [str(c) for c in a.choices] if a.choices else []
            if a.option_strings:
                help_text = "show this help" if isinstance(a, argparse._HelpAction) else a.help
                options.append(Arg(list(a.option_strings), a.dest, _help(help_text),
                                   takes_value=a.nargs != 0,
                                   repeat=isinstance(a, argparse._AppendAction), kind=kind,
                                   choices=choices))
            else:
                positionals.append(Arg([], a.dest, _help(a.help or a.dest),
                                       repeat=a.nargs in ("+", "*", argparse.REMAINDER), kind=kind,
                                       choices=choices, only_after=ONLY_AFTER.get((name, a.dest))))
        out.append(Command(name, _help(helps.get(name)), options, positionals))
    return out


def script(shell: str, parser: argparse.ArgumentParser) -> str:
    """The completion script for ``shell`` (bash, zsh or fish)."""
    if shell not in SHELLS:
        raise InvalidArgumentError(f"shell {shell!r} is not one of {', '.join(SHELLS)}")
    cmds = commands(parser)
    return {"bash": _bash, "zsh": _zsh, "fish": _fish}[shell](cmds)


def _sq(s: str) -> str:
    """``s`` single-quoted for bash, zsh and fish alike (it holds no quote, as _help makes it)."""
    if "'" in s or "\\" in s:
        raise AssertionError(f"{s!r} cannot be single-quoted here")
    return f"'{s}'"


# -- bash ------------------------------------------------------------------------------------------
def _bash_value(kind: str | None, choices: list[str]) -> str:
    """The bash lines that fill COMPREPLY for a value of this kind."""
    if choices:
        return f"_drmaa2_words {' '.join(choices)}"
    return {"sessions": "_drmaa2_dyn sessions", "jobs": "_drmaa2_dyn jobs",
            "contacts": "_drmaa2_dyn contacts", "states": f"_drmaa2_words {' '.join(STATES)}",
            "files": "compopt -o default; COMPREPLY=()", "dirs": "compopt -o dirnames; COMPREPLY=()",
            }.get(kind or "", "COMPREPLY=()")


def _bash(cmds: list[Command]) -> str:
    top = " ".join(c.name for c in cmds)
    valued, values, options, positional = [], [], [], []
    for c in cmds:
        opts = [n for o in c.options for n in o.names]
        options.append(f"        {c.name}) _drmaa2_words {' '.join(opts)} ;;")
        takes = [n for o in c.options if o.takes_value for n in o.names]
        if takes:
            valued.append(f"        {'|'.join(f'{c.name}:{n}' for n in takes)}) return 0 ;;")
        for o in c.options:
            if o.takes_value:
                pats = "|".join(f"{c.name}:{n}" for n in o.names)
                values.append(f"        {pats}) {_bash_value(o.kind, o.choices)} ;;")
        for i, p in enumerate(c.positionals):
            if p.kind == "command":
                continue
            pat = f"{c.name}:*" if p.repeat and i == len(c.positionals) - 1 else f"{c.name}:{i}"
            action = _bash_value(p.kind, p.choices)
            if p.only_after:
                j, v = p.only_after
                action = f'[[ ${{pos[{j}]}} == {v} ]] && {{ {action}; }}'
            positional.append(f"        {pat}) {action} ;;")
    nl = "\n"
    return f'''# bash completion for drmaa2 (pydrmaa2), made by `drmaa2 completion bash`.
# Install:  drmaa2 completion bash > ~/.local/share/bash-completion/completions/drmaa2
#      or:  eval "$(drmaa2 completion bash)"        (in ~/.bashrc)

_drmaa2_words() {{
    # COMPREPLY: those of the words given that start with $cur.
    local w
    COMPREPLY=()
    for w in "$@"; do
        [[ $w == "$cur"* ]] && COMPREPLY+=("$w")
    done
}}

_drmaa2_dyn() {{
    # COMPREPLY: sessions, jobs or contacts that start with $cur, as drmaa2 lists them.
    local line
    COMPREPLY=()
    while IFS= read -r line; do
        COMPREPLY+=("${{line%%$'\\t'*}}")
    done < <("$bin" __complete "$@" --prefix "$cur" 2>/dev/null)
}}

_drmaa2_takes_value() {{
    # Whether option $2 of command $1 takes a value (the next word).
    case "$1:$2" in
{nl.join(valued)}
    esac
    return 1
}}

_drmaa2() {{
    local bin="${{COMP_WORDS[0]}}" cur line i w cmd="" skip="" opt="" command=-1
    [[ $bin == "~/"* ]] && bin="$HOME/${{bin#"~/"}}"
    # The words up to the cursor, split at blanks only: a session such as default:docker and
    # an --option=value stay one word, whatever COMP_WORDBREAKS says.
    line="${{COMP_LINE:0:COMP_POINT}}"
    local -a words=() pos=()
    read -ra words <<<"$line"
    [[ -z $line || $line == *[[:blank:]] ]] && words+=("")
    cur="${{words[${{#words[@]}}-1]}}"
    for ((i = 1; i < ${{#words[@]}} - 1; i++)); do
        w="${{words[i]}}"
        if ((command >= 0)); then
            ((command++))
        elif [[ -n $skip ]]; then
            skip=""
        elif [[ $w == -- && $cmd == run ]]; then
            command=0
        elif [[ $w == -* ]]; then
            [[ $w != *=* ]] && _drmaa2_takes_value "$cmd" "$w" && skip=1
        elif [[ -z $cmd ]]; then
            cmd="$w"
        elif [[ $cmd == run ]]; then
            command=1
        else
            pos+=("$w")
        fi
    done
    if [[ -n $skip ]]; then
        opt="${{words[${{#words[@]}}-2]}}"
    elif [[ $cur == --*=* && command -lt 0 ]]; then
        opt="${{cur%%=*}}"
        cur="${{cur#*=}}"
    fi
    if [[ -z $cmd ]]; then
        if [[ $cur == -* ]]; then _drmaa2_words -h --help; else _drmaa2_words {top}; fi
    elif ((command == 0)) || [[ $cmd == run && -z $opt && $cur != -* && command -lt 0 ]]; then
        mapfile -t COMPREPLY < <(compgen -c -- "$cur")      # the job's command
    elif ((command > 0)); then
        compopt -o default; COMPREPLY=()                    # the job's arguments
    elif [[ -n $opt ]]; then
        case "$cmd:$opt" in
{nl.join(values)}
        *) COMPREPLY=() ;;
        esac
    elif [[ $cur == -* ]]; then
        case "$cmd" in
{nl.join(options)}
        esac
    else
        case "$cmd:${{#pos[@]}}" in
{nl.join(positional)}
        *) COMPREPLY=() ;;
        esac
    fi
    # Bash replaces only the part of the word after its last ':' (a word break): drop what
    # comes before from each candidate, as bash-completion's __ltrim_colon_completions does.
    if [[ $cur == *:* && $COMP_WORDBREAKS == *:* ]]; then
        local colon="${{cur%"${{cur##*:}}"}}"
        for i in "${{!COMPREPLY[@]}}"; do
            COMPREPLY[i]="${{COMPREPLY[i]#"$colon"}}"
        done
    fi
    return 0
}}

complete -F _drmaa2 drmaa2
'''


# -- zsh -------------------------------------------------------------------------------------------
def _zsh_action(kind: str | None, choices: list[str]) -> str:
    if choices:
        return f"({' '.join(choices)})"
    return {"sessions": "_drmaa2_dyn sessions", "jobs": "_drmaa2_dyn jobs",
            "contacts": "_drmaa2_dyn contacts", "states": f"({' '.join(STATES)})",
            "files": "_files", "dirs": "_files -/"}.get(kind or "", " ")


def _zsh_spec(o: Arg) -> list[str]:
    """The _arguments specs of one option (each of its names, excluding the others)."""
    excl = f"({' '.join(o.names)})" if len(o.names) > 1 and not o.repeat else ""
    specs = []
    for n in o.names:
        star = "*" if o.repeat else ""
        if not o.takes_value:
            specs.append(f"{excl}{star}{n}[{o.help}]")
        else:
            eq = "=" if n.startswith("--") else "+"
            value = o.dest.replace("_", "-")
            specs.append(f"{excl}{star}{n}{eq}[{o.help}]:{value}:{_zsh_action(o.kind, o.choices)}")
    return specs


def _zsh(cmds: list[Command]) -> str:
    listing = "\n".join(f"    {_sq(f'{c.name}:{c.help}')}" for c in cmds)
    cases = []
    for c in cmds:
        specs = [s for o in c.options for s in _zsh_spec(o)]
        for i, p in enumerate(c.positionals):
            if p.kind == "command":
                specs.append("*::command:_normal")
                continue
            action = _zsh_action(p.kind, p.choices)
            if p.only_after:
                j, v = p.only_after
                action = f"{{ [[ $line[{j + 1}] == {v} ]] && {action} }}"
            where = "*" if p.repeat else str(i + 1)
            specs.append(f"{where}:{p.dest}:{action}")
        lines = " \\\n        ".join(_sq(s) for s in specs)
        cases.append(f"      ({c.name})\n        _arguments -S \\\n        {lines}\n        ;;")
    nl = "\n"
    return f'''#compdef drmaa2
# zsh completion for drmaa2 (pydrmaa2), made by `drmaa2 completion zsh`.
# Install:  drmaa2 completion zsh > "${{fpath[1]}}/_drmaa2"   (a directory of $fpath; then compinit)
#      or:  eval "$(drmaa2 completion zsh)"                 (in ~/.zshrc, after compinit)

_drmaa2_dyn() {{
  # Sessions, jobs or contacts (the last argument: _arguments puts compadd options before it)
  # as drmaa2 lists them, with their descriptions.
  local kind=${{@[-1]}} line
  local -a items
  for line in "${{(@f)$("$_drmaa2_bin" __complete $kind --prefix "$PREFIX" 2>/dev/null)}}"; do
    [[ -n $line ]] || continue
    items+=("${{${{line%%$'\t'*}}//:/\\:}}:${{line#*$'\t'}}")
  done
  _describe -t $kind $kind items
}}

_drmaa2() {{
  local _drmaa2_bin=${{words[1]/#\\~/$HOME}}
  local curcontext="$curcontext" state state_descr line ret=1
  typeset -A opt_args
  local -a commands
  commands=(
{listing}
  )
  _arguments -C '(- :)'{{-h,--help}}'[show this help]' '1: :->command' '*:: :->argument' && return
  case $state in
    (command)
      _describe -t commands 'drmaa2 command' commands && ret=0
      ;;
    (argument)
      curcontext="${{curcontext%:*:*}}:drmaa2-$words[1]:"
      case $words[1] in
{nl.join(cases)}
      esac
      ;;
  esac
  return ret
}}

if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
  _drmaa2 "$@"
else
  compdef _drmaa2 drmaa2
fi
'''


# -- fish ------------------------------------------------------------------------------------------
def _fish_value(kind: str | None, choices: list[str]) -> str:
    """The flags of a ``complete`` line that say what a value may be."""
    if choices:
        return f"-x -a {_sq(' '.join(choices))}"
    return {"sessions": "-x -a '(__drmaa2_dyn sessions)'", "jobs": "-x -a '(__drmaa2_dyn jobs)'",
            "contacts": "-x -a '(__drmaa2_dyn contacts)'", "states": f"-x -a {_sq(' '.join(STATES))}",
            "files": "-r -F", "dirs": "-x -a '(__fish_complete_directories)'"}.get(kind or "", "-x")


def _fish(cmds: list[Command]) -> str:
    lines = []
    valued = []
    for c in cmds:
        lines.append(f"complete -c drmaa2 -n __fish_use_subcommand -a {c.name} -d {_sq(c.help)}")
        not_in_command = f"__drmaa2_at {c.name} options"
        for o in c.options:
            flags = " ".join(f"-l {n[2:]}" if n.startswith("--") else f"-s {n[1:]}" for n in o.names)
            what = _fish_value(o.kind, o.choices) if o.takes_value else ""
            lines.append(f"complete -c drmaa2 -n {_sq(not_in_command)} {flags} {what} "
                         f"-d {_sq(o.help)}".replace("  ", " "))
            if o.takes_value:
                valued += [f"{c.name} {n}" for n in o.names]
        for i, p in enumerate(c.positionals):
            if p.kind == "command":
                lines.append(f"complete -c drmaa2 -n '__drmaa2_at {c.name} command' "
                             f"-a '(__drmaa2_job_command)'")
                continue
            where = "any" if p.repeat else str(i)
            cond = f"__drmaa2_at {c.name} {where}"
            if p.only_after:
                j, v = p.only_after
                cond += f"; and test (__drmaa2_args)[{j + 2}] = {v}"
            what = _fish_value(p.kind, p.choices)
            lines.append(f"complete -c drmaa2 -n {_sq(cond)} {what} -d {_sq(p.dest)}")
    nl = "\n"
    cases = " ".join(_sq(v) for v in valued)
    return f'''# fish completion for drmaa2 (pydrmaa2), made by `drmaa2 completion fish`.
# Install:  drmaa2 completion fish > ~/.config/fish/completions/drmaa2.fish
#      or:  drmaa2 completion fish | source

function __drmaa2_dyn --description 'sessions, jobs or contacts as drmaa2 lists them'
    set -l bin (commandline -opc)[1]
    set -l prefix (string replace -r -- '^--[^=]*=' '' (commandline -ct))
    command $bin __complete $argv --prefix "$prefix" 2>/dev/null
end

function __drmaa2_args --description 'the subcommand, its positionals, and for run: -- then the job command'
    set -l valued {cases}
    set -l tokens (commandline -opc)
    set -l cmd
    set -l skip 0
    set -l out
    set -l in_command 0
    for t in $tokens[2..-1]
        if test $in_command = 1
            set -a out $t
        else if test $skip = 1
            set skip 0
        else if test "$cmd" = run; and test "$t" = --
            set in_command 1
            set -a out --
        else if string match -q -- '-*' $t
            if not string match -q -- '*=*' $t; and contains -- "$cmd $t" $valued
                set skip 1
            end
        else if test -z "$cmd"
            set cmd $t
        else if test "$cmd" = run
            set in_command 1
            set -a out -- $t
        else
            set -a out $t
        end
    end
    printf '%s\n' "$cmd" $out
end

function __drmaa2_at --description 'whether the word completed is of CMD: options, command (of run), N or any'
    set -l args (__drmaa2_args)
    test "$args[1]" = $argv[1]; or return 1
    set -l rest $args[2..-1]
    set -l in_command 0
    if test (count $rest) -gt 0; and test "$rest[1]" = --
        set in_command 1
    end
    switch $argv[2]
        case options
            test $in_command = 0
        case command
            test $in_command = 1; and return 0
            test $argv[1] = run; and not string match -q -- '-*' (commandline -ct)
        case any
            test $in_command = 0
        case '*'
            test $in_command = 0; and test (count $rest) -eq $argv[2]
    end
end

function __drmaa2_job_command --description 'the job command and its arguments, as fish completes them'
    set -l args (__drmaa2_args)
    set -l rest $args[3..-1] (commandline -ct)
    complete -C (string join ' ' -- (string escape -- $rest))
end

complete -c drmaa2 -f
complete -c drmaa2 -n __fish_use_subcommand -s h -l help -d 'show this help'
{nl.join(lines)}
'''


# -- the hidden command ----------------------------------------------------------------------------
def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def candidates(kind: str, prefix: str = "", session: str | None = None) -> list[tuple[str, str]]:
    """(value, description) of the sessions, jobs or contacts that start with ``prefix``; the
    store is read only if it exists (completion never creates one nor starts the agent)."""
    if kind == "contacts":
        from ..trackers import available_schemes

        # A remote tracker's scheme (drmaa2+unix) is no contact without its server's address.
        return [(s, CONTACT_HELP.get(s, "tracker")) for s in available_schemes()
                if s.startswith(prefix) and "+" not in s]
    from .._store import Store, default_home

    path = default_home() / "store.sqlite"
    if not path.exists():
        return []
    store = Store(path)
    names = store.session_names("job")
    if kind == "sessions":
        return [(n, (store.session(n, "job") or ("",))[0]) for n in names if n.startswith(prefix)]
    out: list[tuple[str, str]] = []
    for name in [session] if session else names:
        if name not in names:
            continue
        ids = [i for i in store.job_ids(name) if i.startswith(prefix)]
        ids = sorted(ids, key=lambda i: (len(i), i))[-MAX_JOBS:]
        for row in store.job_rows(name, ids) if ids else []:
            what = ""
            try:
                t = json.loads(row.template or "{}")
                what = t.get("job_name") or " ".join([t.get("remote_command") or "", *(t.get("args") or [])])
            except (ValueError, TypeError, AttributeError):
                pass
            ended = row.state in (JobState.DONE.value, JobState.FAILED.value)
            out.append((row.id, _clean(f"{what[:50]} (session {name}{', ' + row.state if ended else ''})")))
    return sorted(out, key=lambda c: (len(c[0]), c[0]))


def complete_main(argv: Sequence[str]) -> int:
    """``drmaa2 __complete sessions|jobs|contacts [--session S] [--prefix P]``: one candidate a
    line, ``value<TAB>description``."""
    p = argparse.ArgumentParser(prog="drmaa2 __complete", add_help=False)
    p.add_argument("kind", choices=DYNAMIC)
    p.add_argument("--session")
    p.add_argument("--prefix", default="")
    a = p.parse_args(argv)
    for value, description in candidates(a.kind, a.prefix, a.session):
        if "\n" not in value and "\t" not in value:
            print(f"{value}\t{_clean(description) or a.kind[:-1]}")
    return 0
