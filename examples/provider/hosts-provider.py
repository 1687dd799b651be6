#!/usr/bin/env python3
"""Example cpekit data-model provider: LANDevice.{i}.Hosts from the kernel's
neighbour table (docs/provider-protocol.md).

    [[providers]]
    subtree = "InternetGatewayDevice.LANDevice.1.Hosts."
    command = ["/usr/lib/cpekit/hosts-provider.py", "--interface", "br-lan"]

Each host (a complete entry of the neighbour table, one per MAC address)
is an instance of Hosts.Host.{i}; its number stays the host's while the
agent runs and is never given to another host. Every --interval seconds the
table is read again; when hosts come or go the provider sends
{"notify": "instances"}, and it pushes the values that changed with
{"notify": "values", ...} so that the agent's change notification (active:
"4 VALUE CHANGE") needs no polling.

Standard library only; reads requests on stdin, writes replies and
notifications on stdout, one JSON object per line; logs on stderr.
"""

import argparse
import json
import os
import sys
import threading

SUBTREE = os.environ.get("CPEKIT_PROVIDER_SUBTREE", "InternetGatewayDevice.LANDevice.1.Hosts.")
TABLE = SUBTREE + "Host."
COUNT = SUBTREE + "HostNumberOfEntries"

out_lock = threading.Lock()
state_lock = threading.Lock()


def send(msg):
    with out_lock:
        sys.stdout.write(json.dumps(msg, separators=(",", ":")) + "\n")
        sys.stdout.flush()


def log(text):
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def read_neighbours(path, interface):
    """MAC -> (IP, interface) of the complete entries of /proc/net/arp."""
    hosts = {}
    try:
        with open(path) as f:
            next(f, None)  # header
            for line in f:
                fields = line.split()
                if len(fields) < 6:
                    continue
                ip, _hwtype, flags, mac, _mask, dev = fields[:6]
                # ATF_COM (0x2): a complete entry; 00:00:... is incomplete.
                if not int(flags, 16) & 0x2 or mac == "00:00:00:00:00:00":
                    continue
                if interface and dev != interface:
                    continue
                hosts[mac.upper()] = (ip, dev)
    except OSError as e:
        log("cannot read %s: %s" % (path, e))
    return hosts


class Hosts:
    def __init__(self):
        self.by_mac = {}  # MAC -> instance number
        self.values = {}  # parameter -> value
        self.next = 1

    def update(self, neighbours):
        """Take a new neighbour table; return (instances changed, changed values)."""
        macs = set(neighbours)
        gone = [m for m in self.by_mac if m not in macs]
        for m in gone:
            del self.by_mac[m]
        for m in sorted(macs):
            if m not in self.by_mac:
                self.by_mac[m] = self.next
                self.next += 1
        values = {COUNT: str(len(self.by_mac))}
        for mac, n in self.by_mac.items():
            ip, _dev = neighbours[mac]
            p = "%s%d." % (TABLE, n)
            values.update({
                p + "IPAddress": ip,
                p + "AddressSource": "Static",
                p + "LeaseTimeRemaining": "-1",
                p + "MACAddress": mac,
                p + "HostName": "",
                p + "InterfaceType": "Ethernet",
                p + "Active": "true",
            })
        changed = {k: v for k, v in values.items() if self.values.get(k) != v}
        instances_changed = bool(gone) or any(k.endswith(".MACAddress") for k in changed)
        self.values = values
        return instances_changed, changed

    def instances(self):
        return ["%s%d." % (TABLE, n) for n in sorted(self.by_mac.values())]


def poll(hosts, args, stop):
    while not stop.wait(args.interval):
        neighbours = read_neighbours(args.arp, args.interface)
        with state_lock:
            instances_changed, changed = hosts.update(neighbours)
        if instances_changed:
            send({"notify": "instances"})
        if changed:
            send({"notify": "values", "values": changed})


def handle(hosts, req):
    method = req.get("method")
    with state_lock:
        if method == "get":
            return {"values": {n: hosts.values[n] for n in req.get("names", []) if n in hosts.values}}
        if method == "instances":
            return {"objects": hosts.instances()}
        if method == "set":
            # Hosts are read-only in the data model: refuse every entry.
            faults = [{"name": n, "code": 9008, "message": "read-only: learned from the neighbour table"} for n in req.get("values", {})]
            raise Refused({"code": 9003, "message": "Invalid arguments", "faults": faults})
        if method in ("add", "delete"):
            raise Refused({"code": 9001, "message": "Request denied: hosts come from the neighbour table"})
    raise Refused({"code": 9000, "message": "Method not supported: %s" % method})


class Refused(Exception):
    pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arp", default="/proc/net/arp", help="neighbour table (default /proc/net/arp)")
    ap.add_argument("--interface", help="only hosts seen on this interface")
    ap.add_argument("--interval", type=float, default=2.0, help="seconds between two reads of the table")
    args = ap.parse_args()

    hosts = Hosts()
    hosts.update(read_neighbours(args.arp, args.interface))
    stop = threading.Event()
    threading.Thread(target=poll, args=(hosts, args, stop), daemon=True).start()
    log("serving %s from %s" % (SUBTREE, args.arp))
    for line in sys.stdin:
        try:
            req = json.loads(line)
        except ValueError as e:
            log("not JSON: %s" % e)
            continue
        try:
            send({"id": req.get("id"), "result": handle(hosts, req)})
        except Refused as e:
            send({"id": req.get("id"), "error": e.args[0]})
    # End of input: the agent stops us.
    stop.set()


if __name__ == "__main__":
    main()
