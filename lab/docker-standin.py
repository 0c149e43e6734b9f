#!/usr/bin/env python3
"""A recording STAND-IN of the Docker Engine API for the runbook lab. It is NOT Docker: no
daemon, no containers, no Swarm. It answers exactly what the real `docker` CLI asks for
`docker -H tcp://127.0.0.1:23750 service ls | ps | inspect | update --rollback | scale |
update --limit-memory` (found by running that CLI against it), keeps the state of one Swarm
service, applies updates to it, and appends every request as one JSON line
{method, path, query, body} to a record file, so tests can assert what the CLI sent.

What the CLI asks (docker 28.2.2 negotiates API 1.47 here; Debian's 20.10 client 1.41):
  every command     HEAD /_ping (version negotiation; `Swarm: active/manager` makes the CLI
                    offer its swarm commands)
  service ls        GET /vX/services?status=true[&filters={"name":{"S":true}}]
  service ps S      GET /vX/services?filters={"id":..}, then {"name":..}; GET /vX/tasks?filters=
                    {"service":{"ID":true}}; GET /vX/services/ID?insertDefaults=false;
                    GET /vX/nodes/NODE for each node
  service inspect S GET /vX/services/S?insertDefaults=true
  service scale S=N GET /vX/services/S?insertDefaults=false; POST /vX/services/ID/update?
                    version=V, the whole spec with the new Mode.Replicated.Replicas
  update --limit-memory M   the same GET; POST .../update?version=V&registryAuthFrom=spec,
                    the spec with TaskTemplate.Resources.Limits.MemoryBytes
  update --rollback the same GET; POST .../update?version=V&registryAuthFrom=spec&
                    rollback=previous (the body, the current spec, is ignored: the engine
                    swaps Spec and PreviousSpec)
  without --detach  the CLI then polls GET /vX/services/S, GET /vX/tasks?filters=
                    {"_up-to-date":..,"service":..} and GET /vX/nodes until the tasks converge,
                    then waits UpdateConfig.Monitor
  docker info / version   GET /vX/info, GET /vX/version

The CLI itself parses and validates its arguments; this stand-in only checks what the engine
would (the service exists, the version matches, a rollback has a previous spec).

    docker-standin.py --listen 127.0.0.1:23750 --record FILE

Stand-in-only endpoints (never recorded): POST /_standin/reset (state back to the start,
record emptied, no fault), GET /_standin/state (the service object), POST
/_standin/fail-next-update with a message as the body (a fault: the next update is refused with
HTTP 500 and that message, as a manager without quorum refuses it).

Python 3 standard library only.
"""

import argparse
import copy
import json
import re
import sys
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

API_VERSION = "1.47"  # what the stand-in says it speaks; the CLI negotiates down to it
MIN_API_VERSION = "1.24"
SERVICE_NAME = "cctelegram_mcp-server"
SERVICE_ID = "q7xkmw3v0f2bk3j4h5g6f7d8z"  # 25 lowercase alphanumerics, like Swarm's
NODES = [  # (id, hostname): the three lab hosts as Swarm nodes, the first the leader
    ("n1mcp01aaaaaaaaaaaaaaaaaa", "mcp-01"),
    ("n2mcp02bbbbbbbbbbbbbbbbbb", "mcp-02"),
    ("n3mcp03cccccccccccccccccc", "mcp-03"),
]
CREATED = "2025-05-20T09:00:00.000000000Z"

LOCK = threading.Lock()
STATE = {}
RECORD = None  # path of the record file


def now():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def spec(image, replicas, memory_bytes=0):
    """A ServiceSpec as `docker stack deploy` would have written it."""
    limits = {"MemoryBytes": memory_bytes} if memory_bytes else {}
    # UpdateConfig.Monitor is short so a CLI run without --detach converges in about a second
    # (it waits Monitor after the tasks are up; the engine's default is 5 s).
    policy = {"Parallelism": 1, "FailureAction": "pause", "Monitor": 500000000,
              "MaxFailureRatio": 0, "Order": "stop-first"}
    return {
        "Name": SERVICE_NAME,
        "Labels": {"com.docker.stack.image": image, "com.docker.stack.namespace": "cctelegram"},
        "TaskTemplate": {
            "ContainerSpec": {
                "Image": image,
                "Labels": {"com.docker.stack.namespace": "cctelegram"},
                "Init": False,
                "StopGracePeriod": 10000000000,
                "DNSConfig": {},
                "Isolation": "default",
            },
            "Resources": {"Limits": limits, "Reservations": {}},
            "RestartPolicy": {"Condition": "any", "Delay": 5000000000, "MaxAttempts": 0},
            "Placement": {},
            "ForceUpdate": 0,
            "Runtime": "container",
        },
        "Mode": {"Replicated": {"Replicas": replicas}},
        "UpdateConfig": dict(policy),
        "RollbackConfig": dict(policy),
        "EndpointSpec": {"Mode": "vip", "Ports": [
            {"Protocol": "tcp", "TargetPort": 8080, "PublishedPort": 8080, "PublishMode": "ingress"}]},
    }


def reset():
    with LOCK:
        STATE.clear()
        STATE["fail_next_update"] = None
        STATE["service"] = {
            "ID": SERVICE_ID,
            "Version": {"Index": 41},
            "CreatedAt": CREATED,
            "UpdatedAt": now(),  # tasks read "Running N seconds ago"
            "Spec": spec("cctelegram/mcp-server:1.4.2", 3),
            "PreviousSpec": spec("cctelegram/mcp-server:1.4.1", 3),
            "Endpoint": {
                "Spec": {"Mode": "vip", "Ports": [
                    {"Protocol": "tcp", "TargetPort": 8080, "PublishedPort": 8080, "PublishMode": "ingress"}]},
                "Ports": [{"Protocol": "tcp", "TargetPort": 8080, "PublishedPort": 8080, "PublishMode": "ingress"}],
                "VirtualIPs": [{"NetworkID": "ingress0000000000000000000", "Addr": "10.0.0.7/24"}],
            },
            "UpdateStatus": {"State": "completed", "StartedAt": "2025-05-20T09:29:00.000000000Z",
                             "CompletedAt": "2025-05-20T09:30:00.000000000Z", "Message": "update completed"},
        }
        if RECORD:
            open(RECORD, "w").close()


def replicas(svc):
    return svc["Spec"].get("Mode", {}).get("Replicated", {}).get("Replicas", 0)


def tasks():
    """The service's tasks: one running task per replica, spread over the nodes, all current."""
    svc = STATE["service"]
    image = svc["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
    index = svc["Version"]["Index"]
    out = []
    for slot in range(1, replicas(svc) + 1):
        node_id = NODES[(slot - 1) % len(NODES)][0]
        tid = ("t%02d%04d" % (slot, index % 10000)).ljust(25, "x")
        out.append({
            "ID": tid,
            "Version": {"Index": index},
            "CreatedAt": svc["UpdatedAt"],
            "UpdatedAt": svc["UpdatedAt"],
            "Labels": {},
            "Spec": copy.deepcopy(svc["Spec"]["TaskTemplate"]),
            "ServiceID": svc["ID"],
            "Slot": slot,
            "NodeID": node_id,
            "Status": {"Timestamp": svc["UpdatedAt"], "State": "running", "Message": "started",
                       "ContainerStatus": {"ContainerID": tid * 2 + "abcdefghijklmn", "PID": 1000 + slot,
                                           "ExitCode": 0},
                       "PortStatus": {}},
            "DesiredState": "running",
        })
    return out


def node(node_id, hostname, leader):
    return {
        "ID": node_id,
        "Version": {"Index": 9},
        "CreatedAt": CREATED,
        "UpdatedAt": CREATED,
        "Spec": {"Labels": {}, "Role": "manager" if leader else "worker", "Availability": "active"},
        "Description": {"Hostname": hostname, "Platform": {"Architecture": "x86_64", "OS": "linux"},
                        "Engine": {"EngineVersion": "28.2.2"}},
        "Status": {"State": "ready", "Addr": "10.200.0.%d" % (11 + NODES.index((node_id, hostname)))},
        **({"ManagerStatus": {"Leader": True, "Reachability": "reachable", "Addr": "10.200.0.11:2377"}}
           if leader else {}),
    }


def filters(query):
    """`filters` as the CLI sends it: {"name": {"x": true}} → {"name": ["x"]}."""
    raw = query.get("filters")
    if not raw:
        return {}
    parsed = json.loads(raw)
    return {k: (list(v) if isinstance(v, (dict, list)) else [v]) for k, v in parsed.items()}


def service_matches(svc, f):
    if "name" in f and not any(svc["Spec"]["Name"].startswith(n) for n in f["name"]):
        return False  # the engine matches name prefixes
    if "id" in f and not any(svc["ID"].startswith(i) for i in f["id"]):
        return False
    if "mode" in f and "replicated" not in f["mode"]:
        return False
    if "label" in f:
        labels = svc["Spec"].get("Labels", {})
        for want in f["label"]:
            k, _, v = want.partition("=")
            if k not in labels or (v and labels[k] != v):
                return False
    return True


def find_service(ref):
    """By full ID, exact name, or unique ID prefix, as the engine resolves it."""
    svc = STATE["service"]
    if ref in (svc["ID"], svc["Spec"]["Name"]) or (ref and svc["ID"].startswith(ref)):
        return svc
    return None


def info():
    return {
        "ID": "STANDIN:0000:0000", "Name": "docker-standin", "OperatingSystem": "runbook-lab stand-in (not Docker)",
        "OSType": "linux", "Architecture": "x86_64", "ServerVersion": "28.2.2", "NCPU": 2, "MemTotal": 2147483648,
        "Containers": 0, "Images": 0, "Driver": "none", "Plugins": {}, "Labels": [], "Warnings": None,
        "Swarm": {"NodeID": NODES[0][0], "NodeAddr": "10.200.0.11", "LocalNodeState": "active",
                  "ControlAvailable": True, "Error": "", "RemoteManagers": [{"NodeID": NODES[0][0],
                                                                             "Addr": "10.200.0.11:2377"}],
                  "Nodes": len(NODES), "Managers": 1, "Cluster": {"ID": "standincluster00000000000",
                                                                   "Spec": {"Name": "default"}}},
    }


def version():
    return {"Platform": {"Name": "runbook-lab docker stand-in"}, "Version": "28.2.2",
            "ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION, "Os": "linux", "Arch": "amd64",
            "KernelVersion": "stand-in", "GoVersion": "n/a", "GitCommit": "standin", "BuildTime": CREATED,
            "Components": [{"Name": "Engine", "Version": "28.2.2",
                            "Details": {"ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION}}]}


def update(svc, query, body):
    """POST /services/{id}/update: the engine's checks, then the change, then a new version."""
    try:
        version_q = int(query.get("version", ""))
    except ValueError:
        return 400, {"message": "invalid service version '%s'" % query.get("version", "")}
    if version_q != svc["Version"]["Index"]:
        return 500, {"message": "rpc error: code = Unknown desc = update out of sequence"}
    if query.get("rollback") == "previous":
        if not svc.get("PreviousSpec"):
            return 500, {"message": "rpc error: code = FailedPrecondition desc = service %s does not have a "
                                    "previous spec" % svc["ID"]}
        svc["Spec"], svc["PreviousSpec"] = svc["PreviousSpec"], svc["Spec"]
        status = {"State": "rollback_completed", "Message": "rollback completed"}
    else:
        if not isinstance(body, dict) or body.get("Name") != svc["Spec"]["Name"]:
            return 400, {"message": "rpc error: code = Unimplemented desc = renaming services is not supported"}
        mem = body.get("TaskTemplate", {}).get("Resources", {}).get("Limits", {}).get("MemoryBytes", 0)
        if mem and mem < 4 * 1024 * 1024:  # swarmkit's validateResources
            return 400, {"message": "rpc error: code = InvalidArgument desc = invalid memory value %d: Must be "
                                    "at least 4MiB" % mem}
        svc["PreviousSpec"], svc["Spec"] = svc["Spec"], body
        status = {"State": "completed", "Message": "update completed"}
    stamp = now()
    svc["Version"]["Index"] += 1
    svc["UpdatedAt"] = stamp
    svc["UpdateStatus"] = {**status, "StartedAt": stamp, "CompletedAt": stamp}
    return 200, {"Warnings": None}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the Go client expects
    server_version = "docker-standin"

    def log_message(self, fmt, *args):  # one line per request on stderr (the lab's log file)
        sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))

    def reply(self, code, obj=None, text=None):
        body = b"" if self.command == "HEAD" else (
            text.encode() if text is not None else json.dumps(obj).encode() if obj is not None else b"")
        self.send_response(code)
        self.send_header("Api-Version", API_VERSION)
        self.send_header("Docker-Experimental", "false")
        self.send_header("Ostype", "linux")
        self.send_header("Server", "Docker/28.2.2 (linux) runbook-lab stand-in")
        if text is not None:
            self.send_header("Content-Type", "text/plain; charset=utf-8")
        elif obj is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))  # 0 for HEAD, as the engine answers
        if self.path.split("?")[0].endswith("/_ping"):
            self.send_header("Swarm", "active/manager")  # the CLI shows swarm commands only to managers
            self.send_header("Cache-Control", "no-cache, no-store, must-revalidate")
            self.send_header("Pragma", "no-cache")
        self.end_headers()
        self.wfile.write(body)

    def record(self, path, query, body):
        if not RECORD:
            return
        line = json.dumps({"method": self.command, "path": path, "query": query, "body": body})
        with open(RECORD, "a") as f:
            f.write(line + "\n")

    def handle_any(self):
        url = urlsplit(self.path)
        path, query = url.path, dict(parse_qsl(url.query, keep_blank_values=True))
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")

        if path.startswith("/_standin/"):
            if path == "/_standin/reset" and self.command == "POST":
                reset()
                return self.reply(200, {"reset": True})
            if path == "/_standin/fail-next-update" and self.command == "POST":
                with LOCK:
                    STATE["fail_next_update"] = body if isinstance(body, str) else raw.decode()
                return self.reply(200, {"fail_next_update": STATE["fail_next_update"]})
            if path == "/_standin/state":
                with LOCK:
                    return self.reply(200, STATE["service"])
            return self.reply(404, {"message": "no such stand-in endpoint"})

        with LOCK:
            self.record(path, query, body)
            code, obj = self.route(path, query, body)
        if code == "ping":
            return self.reply(200, text="OK")
        return self.reply(code, obj)

    def route(self, path, query, body):
        m = re.fullmatch(r"(?:/v(\d+\.\d+))?(/.*)", path)
        ver, rest = m.group(1), m.group(2)
        if ver and tuple(map(int, ver.split("."))) < tuple(map(int, MIN_API_VERSION.split("."))):
            return 400, {"message": "client version %s is too old. Minimum supported API version is %s"
                                    % (ver, MIN_API_VERSION)}
        get = self.command in ("GET", "HEAD")
        if rest == "/_ping" and get:
            return "ping", None
        if rest == "/version" and get:
            return 200, version()
        if rest == "/info" and get:
            return 200, info()
        if rest == "/services" and get:
            f = filters(query)
            out = []
            svc = STATE["service"]
            if service_matches(svc, f):
                out.append(copy.deepcopy(svc))
                if query.get("status") in ("1", "true"):
                    n = replicas(svc)
                    out[-1]["ServiceStatus"] = {"RunningTasks": n, "DesiredTasks": n, "CompletedTasks": 0}
            return 200, out
        m = re.fullmatch(r"/services/([^/]+)(/update)?", rest)
        if m:
            svc = find_service(m.group(1))
            if svc is None:
                return 404, {"message": "service %s not found" % m.group(1)}
            if m.group(2) and self.command == "POST":
                fault, STATE["fail_next_update"] = STATE["fail_next_update"], None
                if fault:
                    return 500, {"message": fault}
                return update(svc, query, body)
            if not m.group(2) and get:
                return 200, copy.deepcopy(svc)
        if rest == "/tasks" and get:
            f = filters(query)
            out = tasks()
            if "service" in f:
                svc = STATE["service"]
                if not any(s in (svc["ID"], svc["Spec"]["Name"]) for s in f["service"]):
                    out = []
            if "desired-state" in f and "running" not in f["desired-state"]:
                out = []
            if "node" in f:
                out = [t for t in out if t["NodeID"] in f["node"]]
            return 200, out
        if rest == "/nodes" and get:
            return 200, [node(i, h, n == 0) for n, (i, h) in enumerate(NODES)]
        m = re.fullmatch(r"/nodes/([^/]+)", rest)
        if m and get:
            for n, (i, h) in enumerate(NODES):
                if m.group(1) in (i, h):
                    return 200, node(i, h, n == 0)
            return 404, {"message": "node %s not found" % m.group(1)}
        self.log_message("NOT IMPLEMENTED by the stand-in: %s %s", self.command, self.path)
        return 404, {"message": "page not found (runbook-lab docker stand-in)"}

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = handle_any


def main():
    global RECORD
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--listen", default="127.0.0.1:23750")
    ap.add_argument("--record", required=True, help="JSON-lines file every request is appended to")
    a = ap.parse_args()
    RECORD = a.record
    reset()
    host, _, port = a.listen.rpartition(":")
    server = ThreadingHTTPServer((host, int(port)), Handler)
    server.daemon_threads = True
    sys.stderr.write("docker stand-in (not Docker) on %s, recording to %s\n" % (a.listen, RECORD))
    server.serve_forever()


if __name__ == "__main__":
    main()
