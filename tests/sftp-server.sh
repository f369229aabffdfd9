#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# An OpenSSH sshd serving SFTP on 127.0.0.1 for the sftp target tests,
# with its own config, host key and authorized client key in DIR, no PAM.
# The SFTP user is root (PermitRootLogin prohibit-password with the
# generated key only).
#
# Sourced:  sftp_server_start DIR [PORT]   sets SFTP_PORT, SFTP_KEY (client
#               key, root-only), SFTP_KNOWN_HOSTS, SFTP_PID; keeps the keys
#               of an earlier start in DIR (a restart serves the same key).
#               With SFTP_READ_LOG=FILE, OpenSSH's sftp-server serves the
#               sessions and appends its log to FILE: one line per file
#               closed, 'close "PATH" bytes read N written M', so a test
#               counts at the server what a client read.
#           sftp_server_stop DIR           stops it and its sessions
# Run:      sftp-server.sh start DIR [PORT] | stop DIR

sftp_server_start () {
    local dir=$1 port=${2:-} i
    local sshd=/usr/sbin/sshd
    [ -x "$sshd" ] || { echo "sftp-server: $sshd missing (install openssh-server)" >&2; return 1; }
    mkdir -p "$dir" /run/sshd
    chmod 0700 "$dir"
    [ -f "$dir/host_key" ] || ssh-keygen -q -t ed25519 -N '' -C vv-host -f "$dir/host_key" || return 1
    [ -f "$dir/client_key" ] || ssh-keygen -q -t ed25519 -N '' -C vv-client -f "$dir/client_key" || return 1
    chmod 0600 "$dir/client_key"
    cp "$dir/client_key.pub" "$dir/authorized_keys"
    if [ -z "$port" ]; then
        # A free high port: one not listening now.
        for i in $(seq 1 50); do
            port=$(( 20000 + (RANDOM % 20000) ))
            ss -Hltn "sport = :$port" | grep -q . || break
        done
    fi
    local subsystem=internal-sftp
    if [ -n "${SFTP_READ_LOG:-}" ]; then
        [ -x /usr/lib/openssh/sftp-server ] || { echo "sftp-server: /usr/lib/openssh/sftp-server missing (install openssh-sftp-server)" >&2; return 1; }
        printf '#!/bin/sh\nexec /usr/lib/openssh/sftp-server -e -l INFO 2>>%q\n' "$SFTP_READ_LOG" > "$dir/sftp-logged"
        chmod 0755 "$dir/sftp-logged"
        subsystem=$dir/sftp-logged
    fi
    cat > "$dir/sshd_config" <<CONF
Port $port
ListenAddress 127.0.0.1
HostKey $dir/host_key
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
Subsystem sftp $subsystem
LogLevel ERROR
CONF
    echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$dir/host_key.pub")" > "$dir/known_hosts"
    /usr/sbin/sshd -D -f "$dir/sshd_config" -e 2>>"$dir/sshd.log" &
    SFTP_PID=$!
    echo "$SFTP_PID" > "$dir/listener.pid"
    # Bounded wait for the port (each probe is a connection attempt).
    for i in $(seq 1 200); do
        ss -Hltn "sport = :$port" | grep -q . && break
        kill -0 "$SFTP_PID" 2>/dev/null || { echo "sftp-server: sshd exited: $(tail -3 "$dir/sshd.log")" >&2; return 1; }
        sleep 0.05
    done
    ss -Hltn "sport = :$port" | grep -q . || { echo "sftp-server: sshd not listening on $port within 10 s" >&2; return 1; }
    SFTP_PORT=$port
    SFTP_KEY=$dir/client_key
    SFTP_KNOWN_HOSTS=$dir/known_hosts
    echo "$port" > "$dir/port"
}

# Stops the listener and the session processes it started (their parent
# is the listener), so open connections break as on a crashed server.
sftp_server_stop () {
    local dir=$1 pid
    pid=$(cat "$dir/listener.pid" 2>/dev/null) || return 0
    pkill -KILL -P "$pid" 2>/dev/null
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    rm -f "$dir/listener.pid"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    case ${1:-} in
        start) sftp_server_start "$2" "${3:-}" && echo "port $SFTP_PORT" ;;
        stop) sftp_server_stop "$2" ;;
        *) echo "usage: $0 start DIR [PORT] | stop DIR" >&2; exit 2 ;;
    esac
fi
