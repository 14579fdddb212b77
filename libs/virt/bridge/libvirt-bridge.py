"""VM-Babysitter's libvirt bridge: one long-lived libvirt connection for the Node services.

Spawning `virsh` costs ~50 ms per call (process start, connect, authenticate); a backup asks libvirt a dozen
questions, so that cost added up to most of the agent's overhead. This process keeps one connection open and
answers in well under a millisecond. It runs under the interpreter of virtnbdbackup itself, whose package
brings the libvirt binding, so it needs nothing the engine does not already need.

Protocol: one JSON object per line. Request {"id": n, "op": "...", "args": {...}}; answer
{"id": n, "ok": true, "result": ...} or {"id": n, "ok": false, "error": {"message": "...", "code": n|null}}.
Calls run on worker threads, so a slow one (a destroy, a shutdown) does not hold up the others; answers come
in completion order. End of input ends the process.
"""

import json
import sys
import threading
import xml.etree.ElementTree as ElementTree
from concurrent.futures import ThreadPoolExecutor

try:
    import libvirt
    import libvirt_qemu
except ImportError as err:
    sys.stderr.write(f"the libvirt Python binding is missing ({err}); install python3-libvirt\n")
    sys.exit(3)

# libvirt prints every error to stderr by default; errors travel back in the answers instead.
libvirt.registerErrorHandler(lambda _ctx, _err: None, None)


class Connection:
    """The shared connection, reopened when libvirtd went away (restart, crash)."""

    def __init__(self, uri):
        self.uri = uri
        self.lock = threading.Lock()
        self.conn = None

    def get(self):
        with self.lock:
            if self.conn is not None and self.conn.isAlive() != 1:
                self._drop()
            if self.conn is None:
                self.conn = libvirt.open(self.uri)
            return self.conn

    def forget_if_dead(self, conn):
        with self.lock:
            if self.conn is conn and conn.isAlive() != 1:
                self._drop()
                return True
            return False

    def _drop(self):
        try:
            self.conn.close()
        except libvirt.libvirtError:
            pass
        self.conn = None


def domain(conn, args):
    return conn.lookupByName(args["domain"])


def domain_info(conn, args):
    try:
        dom = domain(conn, args)
    except libvirt.libvirtError as err:
        if err.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            return None
        raise
    state, reason = dom.state()
    return {"name": dom.name(), "state": state, "reason": reason, "persistent": dom.isPersistent() == 1}


def list_persistent(conn, _args):
    out = []
    for dom in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_PERSISTENT):
        try:
            state, reason = dom.state()
        except libvirt.libvirtError:
            continue  # undefined between the listing and the question: not listed
        out.append({"name": dom.name(), "state": state, "reason": reason})
    return out


def domain_state(conn, args):
    state, reason = domain(conn, args).state()
    return {"state": state, "reason": reason}


def checkpoints(conn, args):
    dom = domain(conn, args)
    return [c.getName() for c in dom.listAllCheckpoints(libvirt.VIR_DOMAIN_CHECKPOINT_LIST_TOPOLOGICAL)]


def job_active(conn, args):
    return domain(conn, args).jobInfo()[0] != libvirt.VIR_DOMAIN_JOB_NONE


def backup_block_job(conn, args):
    """True while QEMU still runs a backup block job on a disk. After an abort libvirt may already report no
    job while QEMU tears the block job down, and virtnbdbackup refuses to start until it is gone."""
    dom = domain(conn, args)
    root = ElementTree.fromstring(dom.XMLDesc(0))
    for target in root.findall("./devices/disk/target"):
        info = dom.blockJobInfo(target.get("dev"), 0)
        if info and info.get("type") == libvirt.VIR_DOMAIN_BLOCK_JOB_TYPE_BACKUP:
            return True
    return False


def abort_job(conn, args):
    domain(conn, args).abortJob()


def delete_checkpoint(conn, args):
    flags = libvirt.VIR_DOMAIN_CHECKPOINT_DELETE_METADATA_ONLY if args.get("metadataOnly") else 0
    domain(conn, args).checkpointLookupByName(args["name"]).delete(flags)


def disk_images(conn, args):
    """File-backed disks (not cdroms, not network or block devices) with a source, by target."""
    root = ElementTree.fromstring(domain(conn, args).XMLDesc(0))
    out = []
    for disk in root.findall("./devices/disk"):
        if disk.get("type") != "file" or disk.get("device") != "disk":
            continue
        source = disk.find("source")
        target = disk.find("target")
        if source is None or target is None or not source.get("file"):
            continue
        out.append({"target": target.get("dev"), "path": source.get("file")})
    return out


def shutdown(conn, args):
    domain(conn, args).shutdown()


def start(conn, args):
    flags = libvirt.VIR_DOMAIN_START_PAUSED if args.get("paused") else 0
    domain(conn, args).createWithFlags(flags)


def destroy(conn, args):
    domain(conn, args).destroy()


def live_xml(conn, args):
    """The running definition (what QEMU uses now), secrets left out."""
    return domain(conn, args).XMLDesc(0)


def qemu_monitor(conn, args):
    return libvirt_qemu.qemuMonitorCommand(domain(conn, args), args["command"], 0)


def undefine(conn, args):
    """Removes a shut-off domain's definition with its checkpoint metadata, UEFI variable store and TPM state."""
    flags = (libvirt.VIR_DOMAIN_UNDEFINE_NVRAM | libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA
             | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA | libvirt.VIR_DOMAIN_UNDEFINE_TPM)
    domain(conn, args).undefineFlags(flags)


def block_copy(conn, args):
    """Starts copying a running disk, its whole backing chain flattened, into an existing image (`dest`, qcow2).
    A transient job: libvirt 9 refuses a recoverable copy job on a persistent domain."""
    dest = ElementTree.Element("disk", {"type": "file"})
    ElementTree.SubElement(dest, "source", {"file": args["dest"]})
    ElementTree.SubElement(dest, "driver", {"type": "qcow2"})
    flags = libvirt.VIR_DOMAIN_BLOCK_COPY_REUSE_EXT | libvirt.VIR_DOMAIN_BLOCK_COPY_TRANSIENT_JOB
    domain(conn, args).blockCopy(args["disk"], ElementTree.tostring(dest, encoding="unicode"), None, flags)


def block_job(conn, args):
    """The disk's block job: {type, cur, end}, or None when it has none."""
    info = domain(conn, args).blockJobInfo(args["disk"], 0)
    return {"type": info["type"], "cur": info["cur"], "end": info["end"]} if info else None


def block_job_abort(conn, args):
    """Ends the disk's block job; with pivot, a ready copy job switches the disk to the copy."""
    flags = libvirt.VIR_DOMAIN_BLOCK_JOB_ABORT_PIVOT if args.get("pivot") else 0
    domain(conn, args).blockJobAbort(args["disk"], flags)


def domain_xml(conn, args):
    """The persistent definition, secrets included (a copy needs its VNC password too)."""
    return domain(conn, args).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE)


def tpm_emulator(conn, args):
    """The emulated (swtpm) TPM of the persistent definition: its version and the domain's UUID, which names
    libvirt's TPM state folder. None when the domain has no emulated TPM."""
    dom = domain(conn, args)
    root = ElementTree.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    for backend in root.findall("./devices/tpm/backend"):
        if backend.get("type") == "emulator":
            return {"uuid": dom.UUIDString(), "version": backend.get("version") or ""}
    return None


def mac_addresses(conn, _args):
    """Every interface MAC of every domain, running (live XML) or defined (persistent XML)."""
    macs = set()
    for dom in conn.listAllDomains(0):
        try:
            flags = [0] + ([libvirt.VIR_DOMAIN_XML_INACTIVE] if dom.isPersistent() == 1 else [])
        except libvirt.libvirtError:
            continue  # undefined since the listing: it holds no MAC any more
        for f in flags:
            try:
                root = ElementTree.fromstring(dom.XMLDesc(f))
            except libvirt.libvirtError:
                continue  # undefined meanwhile
            for mac in root.findall("./devices/interface/mac"):
                if mac.get("address"):
                    macs.add(mac.get("address").lower())
    return sorted(macs)


def storage_pool_paths(conn, _args):
    """Target paths of the file-system storage pools (dir, fs, netfs); a logical or disk pool's path is a /dev folder."""
    paths = []
    for pool in conn.listAllStoragePools(0):
        try:
            root = ElementTree.fromstring(pool.XMLDesc(0))
        except libvirt.libvirtError:
            continue  # undefined meanwhile
        path = root.findtext("./target/path")
        if root.get("type") in ("dir", "fs", "netfs") and path:
            paths.append(path)
    return paths


def define_xml(conn, args):
    return conn.defineXML(args["xml"]).name()


def ping(conn, _args):
    return conn.getLibVersion()


def dotted_version(n):
    return "%d.%d.%d" % (n // 1000000, n // 1000 % 1000, n % 1000)


def versions(conn, _args):
    return {"libvirt": dotted_version(conn.getLibVersion()), "qemu": dotted_version(conn.getVersion())}


# Only these are asked again on a fresh connection after libvirtd went away: they change nothing.
READS = {
    "ping": ping,
    "versions": versions,
    "domainInfo": domain_info,
    "listPersistent": list_persistent,
    "domainState": domain_state,
    "checkpoints": checkpoints,
    "jobActive": job_active,
    "backupBlockJob": backup_block_job,
    "diskImages": disk_images,
    "domainXml": domain_xml,
    "liveXml": live_xml,
    "blockJob": block_job,
    "tpmEmulator": tpm_emulator,
    "macAddresses": mac_addresses,
    "storagePoolPaths": storage_pool_paths,
}
WRITES = {
    "abortJob": abort_job,
    "deleteCheckpoint": delete_checkpoint,
    "shutdown": shutdown,
    "start": start,
    "destroy": destroy,
    "defineXml": define_xml,
    "undefine": undefine,
    "blockCopy": block_copy,
    "blockJobAbort": block_job_abort,
    # A monitor command may change QEMU's state (block-dirty-bitmap-remove), so it is never repeated.
    "qemuMonitor": qemu_monitor,
}


def call(connection, op, args):
    fn = READS.get(op) or WRITES.get(op)
    if fn is None:
        raise ValueError(f"unknown operation {op!r}")
    conn = connection.get()
    try:
        return fn(conn, args)
    except libvirt.libvirtError:
        if connection.forget_if_dead(conn) and op in READS:
            return fn(connection.get(), args)
        raise


def main():
    connection = Connection(sys.argv[1])
    out_lock = threading.Lock()

    def answer(message):
        line = json.dumps(message) + "\n"
        with out_lock:
            sys.stdout.write(line)
            sys.stdout.flush()

    def serve(line):
        rid = None
        try:
            request = json.loads(line)
            rid = request.get("id")
            answer({"id": rid, "ok": True, "result": call(connection, request.get("op"), request.get("args") or {})})
        except libvirt.libvirtError as err:
            answer({"id": rid, "ok": False, "error": {"message": str(err), "code": err.get_error_code()}})
        except Exception as err:  # a bad request or a bug here must not end the bridge
            answer({"id": rid, "ok": False, "error": {"message": f"{type(err).__name__}: {err}", "code": None}})

    with ThreadPoolExecutor(max_workers=8) as pool:
        for line in sys.stdin:
            if line.strip():
                pool.submit(serve, line)


if __name__ == "__main__":
    main()
