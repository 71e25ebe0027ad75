# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_lanyardctl_global_optspecs
    string join \n socket= config= h/help V/version
end

function __fish_lanyardctl_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_lanyardctl_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_lanyardctl_using_subcommand
    set -l cmd (__fish_lanyardctl_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c lanyardctl -n "__fish_lanyardctl_needs_command" -l socket -d 'The agent\'s socket' -r -F
complete -c lanyardctl -n "__fish_lanyardctl_needs_command" -l config -d 'The configuration file (for `status`, `doctor` and `config check`)' -r -F
complete -c lanyardctl -n "__fish_lanyardctl_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lanyardctl -n "__fish_lanyardctl_needs_command" -s V -l version -d 'Print version'
complete -c lanyardctl -n "__fish_lanyardctl_needs_command" -f -a "status" -d 'Whether the agent is online, its server, TLS and caches'
complete -c lanyardctl -n "__fish_lanyardctl_needs_command" -f -a "user" -d 'A user by name or uid, and where the answer came from'
complete -c lanyardctl -n "__fish_lanyardctl_needs_command" -f -a "group" -d 'A group by name or gid, and where the answer came from'
complete -c lanyardctl -n "__fish_lanyardctl_needs_command" -f -a "cache" -d 'Invalidate or wipe cached answers (root only)'
complete -c lanyardctl -n "__fish_lanyardctl_needs_command" -f -a "metrics" -d 'The agent\'s metrics in the Prometheus text format'
complete -c lanyardctl -n "__fish_lanyardctl_needs_command" -f -a "config" -d 'Configuration checks'
complete -c lanyardctl -n "__fish_lanyardctl_needs_command" -f -a "auth-test" -d 'Asks for USER\'s password and tries a login through the agent (root only)'
complete -c lanyardctl -n "__fish_lanyardctl_needs_command" -f -a "doctor" -d 'Walks the troubleshooting checklist, one line per step'
complete -c lanyardctl -n "__fish_lanyardctl_needs_command" -f -a "generate" -d 'Writes man pages or shell completions (for packaging)'
complete -c lanyardctl -n "__fish_lanyardctl_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand status" -l socket -d 'The agent\'s socket' -r -F
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand status" -l config -d 'The configuration file (for `status`, `doctor` and `config check`)' -r -F
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand user" -l socket -d 'The agent\'s socket' -r -F
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand user" -l config -d 'The configuration file (for `status`, `doctor` and `config check`)' -r -F
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand user" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand group" -l socket -d 'The agent\'s socket' -r -F
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand group" -l config -d 'The configuration file (for `status`, `doctor` and `config check`)' -r -F
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand group" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand cache; and not __fish_seen_subcommand_from invalidate clear help" -l socket -d 'The agent\'s socket' -r -F
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand cache; and not __fish_seen_subcommand_from invalidate clear help" -l config -d 'The configuration file (for `status`, `doctor` and `config check`)' -r -F
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand cache; and not __fish_seen_subcommand_from invalidate clear help" -s h -l help -d 'Print help'
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand cache; and not __fish_seen_subcommand_from invalidate clear help" -f -a "invalidate" -d 'Marks entries stale: kept for offline use, asked again from the directory next time'
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand cache; and not __fish_seen_subcommand_from invalidate clear help" -f -a "clear" -d 'Wipes every cached answer and offline verifier, in memory and on disk'
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand cache; and not __fish_seen_subcommand_from invalidate clear help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand cache; and __fish_seen_subcommand_from invalidate" -l socket -d 'The agent\'s socket' -r -F
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand cache; and __fish_seen_subcommand_from invalidate" -l config -d 'The configuration file (for `status`, `doctor` and `config check`)' -r -F
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand cache; and __fish_seen_subcommand_from invalidate" -s h -l help -d 'Print help'
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand cache; and __fish_seen_subcommand_from invalidate" -f -a "user" -d 'One user\'s entry and group list'
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand cache; and __fish_seen_subcommand_from invalidate" -f -a "group" -d 'One group\'s entry'
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand cache; and __fish_seen_subcommand_from invalidate" -f -a "all" -d 'Everything (the default)'
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand cache; and __fish_seen_subcommand_from invalidate" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand cache; and __fish_seen_subcommand_from clear" -l socket -d 'The agent\'s socket' -r -F
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand cache; and __fish_seen_subcommand_from clear" -l config -d 'The configuration file (for `status`, `doctor` and `config check`)' -r -F
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand cache; and __fish_seen_subcommand_from clear" -s h -l help -d 'Print help'
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand cache; and __fish_seen_subcommand_from help" -f -a "invalidate" -d 'Marks entries stale: kept for offline use, asked again from the directory next time'
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand cache; and __fish_seen_subcommand_from help" -f -a "clear" -d 'Wipes every cached answer and offline verifier, in memory and on disk'
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand cache; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand metrics" -l socket -d 'The agent\'s socket' -r -F
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand metrics" -l config -d 'The configuration file (for `status`, `doctor` and `config check`)' -r -F
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand metrics" -s h -l help -d 'Print help'
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand config; and not __fish_seen_subcommand_from check help" -l socket -d 'The agent\'s socket' -r -F
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand config; and not __fish_seen_subcommand_from check help" -l config -d 'The configuration file (for `status`, `doctor` and `config check`)' -r -F
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand config; and not __fish_seen_subcommand_from check help" -s h -l help -d 'Print help'
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand config; and not __fish_seen_subcommand_from check help" -f -a "check" -d 'Parses the configuration as lanyardd would and prints "ok" or what is wrong'
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand config; and not __fish_seen_subcommand_from check help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand config; and __fish_seen_subcommand_from check" -l socket -d 'The agent\'s socket' -r -F
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand config; and __fish_seen_subcommand_from check" -l config -d 'The configuration file (for `status`, `doctor` and `config check`)' -r -F
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand config; and __fish_seen_subcommand_from check" -s h -l help -d 'Print help'
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "check" -d 'Parses the configuration as lanyardd would and prints "ok" or what is wrong'
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand auth-test" -l socket -d 'The agent\'s socket' -r -F
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand auth-test" -l config -d 'The configuration file (for `status`, `doctor` and `config check`)' -r -F
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand auth-test" -s h -l help -d 'Print help'
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand doctor" -l nsswitch -d 'The name service switch configuration to check' -r -F
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand doctor" -l pam-dir -d 'The PAM configuration directory to check' -r -F
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand doctor" -l socket -d 'The agent\'s socket' -r -F
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand doctor" -l config -d 'The configuration file (for `status`, `doctor` and `config check`)' -r -F
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand doctor" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand generate; and not __fish_seen_subcommand_from man completions help" -l socket -d 'The agent\'s socket' -r -F
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand generate; and not __fish_seen_subcommand_from man completions help" -l config -d 'The configuration file (for `status`, `doctor` and `config check`)' -r -F
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand generate; and not __fish_seen_subcommand_from man completions help" -s h -l help -d 'Print help'
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand generate; and not __fish_seen_subcommand_from man completions help" -f -a "man" -d 'lanyardd.8 and lanyardctl.8 into DIR'
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand generate; and not __fish_seen_subcommand_from man completions help" -f -a "completions" -d 'Completion scripts for SHELL into DIR'
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand generate; and not __fish_seen_subcommand_from man completions help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand generate; and __fish_seen_subcommand_from man" -l socket -d 'The agent\'s socket' -r -F
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand generate; and __fish_seen_subcommand_from man" -l config -d 'The configuration file (for `status`, `doctor` and `config check`)' -r -F
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand generate; and __fish_seen_subcommand_from man" -s h -l help -d 'Print help'
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand generate; and __fish_seen_subcommand_from completions" -l socket -d 'The agent\'s socket' -r -F
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand generate; and __fish_seen_subcommand_from completions" -l config -d 'The configuration file (for `status`, `doctor` and `config check`)' -r -F
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand generate; and __fish_seen_subcommand_from completions" -s h -l help -d 'Print help'
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand generate; and __fish_seen_subcommand_from help" -f -a "man" -d 'lanyardd.8 and lanyardctl.8 into DIR'
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand generate; and __fish_seen_subcommand_from help" -f -a "completions" -d 'Completion scripts for SHELL into DIR'
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand generate; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand help; and not __fish_seen_subcommand_from status user group cache metrics config auth-test doctor generate help" -f -a "status" -d 'Whether the agent is online, its server, TLS and caches'
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand help; and not __fish_seen_subcommand_from status user group cache metrics config auth-test doctor generate help" -f -a "user" -d 'A user by name or uid, and where the answer came from'
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand help; and not __fish_seen_subcommand_from status user group cache metrics config auth-test doctor generate help" -f -a "group" -d 'A group by name or gid, and where the answer came from'
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand help; and not __fish_seen_subcommand_from status user group cache metrics config auth-test doctor generate help" -f -a "cache" -d 'Invalidate or wipe cached answers (root only)'
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand help; and not __fish_seen_subcommand_from status user group cache metrics config auth-test doctor generate help" -f -a "metrics" -d 'The agent\'s metrics in the Prometheus text format'
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand help; and not __fish_seen_subcommand_from status user group cache metrics config auth-test doctor generate help" -f -a "config" -d 'Configuration checks'
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand help; and not __fish_seen_subcommand_from status user group cache metrics config auth-test doctor generate help" -f -a "auth-test" -d 'Asks for USER\'s password and tries a login through the agent (root only)'
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand help; and not __fish_seen_subcommand_from status user group cache metrics config auth-test doctor generate help" -f -a "doctor" -d 'Walks the troubleshooting checklist, one line per step'
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand help; and not __fish_seen_subcommand_from status user group cache metrics config auth-test doctor generate help" -f -a "generate" -d 'Writes man pages or shell completions (for packaging)'
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand help; and not __fish_seen_subcommand_from status user group cache metrics config auth-test doctor generate help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand help; and __fish_seen_subcommand_from cache" -f -a "invalidate" -d 'Marks entries stale: kept for offline use, asked again from the directory next time'
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand help; and __fish_seen_subcommand_from cache" -f -a "clear" -d 'Wipes every cached answer and offline verifier, in memory and on disk'
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "check" -d 'Parses the configuration as lanyardd would and prints "ok" or what is wrong'
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand help; and __fish_seen_subcommand_from generate" -f -a "man" -d 'lanyardd.8 and lanyardctl.8 into DIR'
complete -c lanyardctl -n "__fish_lanyardctl_using_subcommand help; and __fish_seen_subcommand_from generate" -f -a "completions" -d 'Completion scripts for SHELL into DIR'
