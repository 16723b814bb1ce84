"""The step channel: framed messages over TCP, authenticated with the job's secret.

Node 0 listens on its own address (SKYPILOT_NODE_IPS[0]); the agents of the other nodes, and
srun / scontrol / the ``signal`` command inside the job, connect to it. When every node is on
this machine (the local backend, or a lone node) the port is one the OS chooses (bind to 0),
published in node 0's 0600 ``control.json`` of the job's private rundir, so no other local
user can take it in advance. Nodes on other machines (SkyPilot's VMs, the job's own) share no
file: node 0 takes the first free port of ``ports(job_id)`` and their agents try those. Every connection
starts with a mutual HMAC-SHA256 challenge-response over fresh nonces, so the secret never
crosses the network and a listener of another job (or a stranger) is told apart. Keys are
derived from SLURMSKY_STEP_SECRET per role: ``agent`` for node runtimes, ``local`` for
commands inside the job (that key is in a 0600 file of the node's private rundir; the secret
itself is only ever in the runtime's memory).

A frame is two big-endian uint32 (header length, payload length), a JSON header, and raw
payload bytes (task output).
"""

import errno
import hashlib
import hmac
import json
import os
import socket
import struct
import threading
import time

PORT_BASE, PORT_SPAN, PORT_TRIES = 20000, 12000, 32
HANDSHAKE_TIMEOUT = 30  # bounds a peer that stalls mid-handshake (a loaded node is slow)
MAX_HEADER, MAX_PAYLOAD, MAX_HELLO = 16 << 20, 16 << 20, 4096
ROLES = ("agent", "local")


class ChannelError(Exception):
    """The peer went away, timed out, or spoke out of protocol."""


def role_key(secret, role):
    return hmac.new(secret.encode(), b"slurmsky-runtime/" + role.encode(), hashlib.sha256).digest()


def ports(job_id):
    """The ports node 0 tries, in order, when its agents are on other machines; they look
    for it on the same ones."""
    return [PORT_BASE + (job_id + k) % PORT_SPAN for k in range(PORT_TRIES)]


def all_here(ips):
    """Whether every node is on this machine (loopback addresses, or a lone node): then the
    nodes share the rundir and node 0's port can be the OS's choice."""
    return len(ips) == 1 or all(ip.startswith("127.") or ip in ("::1", "localhost") for ip in ips)


class Conn:
    """One framed connection; send() may be called from any thread."""

    def __init__(self, sock):
        self.sock = sock
        self._send_lock = threading.RLock()

    def send(self, header, payload=b""):
        head = json.dumps(header).encode()
        with self._send_lock:
            self.sock.sendall(struct.pack(">II", len(head), len(payload)) + head + payload)

    def recv(self, max_header=MAX_HEADER):
        """-> (header, payload); raises ChannelError at EOF, timeout or garbage."""
        try:
            hlen, plen = struct.unpack(">II", self._read(8))
            if hlen > max_header or plen > MAX_PAYLOAD:
                raise ChannelError("oversized frame")
            header = json.loads(self._read(hlen).decode())
            if not isinstance(header, dict):
                raise ChannelError("bad frame")
            return header, self._read(plen)
        except (OSError, ValueError) as e:
            raise ChannelError(str(e) or type(e).__name__) from None

    def _read(self, n):
        chunks = []
        while n:
            chunk = self.sock.recv(min(n, 1 << 20))
            if not chunk:
                raise ChannelError("connection closed")
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def _proof(key, side, first, second):
    return hmac.new(key, ("%s|%s|%s" % (side, first, second)).encode(), hashlib.sha256).hexdigest()


def listen(host, candidates=(0,)):
    """-> (socket, port): the first free port of candidates on host (0: the OS chooses; on
    every address when host is not this machine's, as behind NAT)."""
    for port in candidates:
        for addr in (host, "0.0.0.0"):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((addr, port))
            except OSError as e:
                sock.close()
                if e.errno == errno.EADDRNOTAVAIL:
                    continue  # not an address of this machine: every address then
                break
            sock.listen(64)
            return sock, sock.getsockname()[1]
    raise ChannelError("no free port for the step channel on %s" % host)


def accept(sock, job_id, keys):
    """Server side of the handshake -> (Conn, hello). keys: role -> key.

    Raises ChannelError with the reason when the peer is refused; nothing has been
    started for it then."""
    sock.settimeout(HANDSHAKE_TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn = Conn(sock)
    hello, _ = conn.recv(MAX_HELLO)
    if hello.get("t") != "hello" or hello.get("role") not in keys:
        raise ChannelError("not a slurmsky hello")
    if hello.get("job") != job_id:
        conn.send({"t": "wrongjob"})
        raise ChannelError("connection for job %s" % hello.get("job"))
    key = keys[hello["role"]]
    nonce = os.urandom(16).hex()
    conn.send(
        {
            "t": "challenge",
            "nonce": nonce,
            "proof": _proof(key, "server", hello.get("nonce"), nonce),
        }
    )
    answer, _ = conn.recv(MAX_HELLO)
    if not hmac.compare_digest(
        str(answer.get("proof")), _proof(key, "client", nonce, hello.get("nonce"))
    ):
        conn.send({"t": "denied"})
        raise ChannelError("authentication failed (role %s)" % hello["role"])
    conn.send({"t": "welcome"})
    sock.settimeout(None)
    return conn, hello


class NotOurs(ChannelError):
    """The listener there is not this job's node 0."""


def connect(host, port, job_id, role, key, rank=0, timeout=HANDSHAKE_TIMEOUT):
    """Client side of the handshake -> Conn (blocking, no timeout once welcomed)."""
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn = Conn(sock)
    try:
        nonce = os.urandom(16).hex()
        conn.send({"t": "hello", "job": job_id, "role": role, "rank": rank, "nonce": nonce})
        challenge, _ = conn.recv(MAX_HELLO)
        if challenge.get("t") != "challenge" or not hmac.compare_digest(
            str(challenge.get("proof")), _proof(key, "server", nonce, challenge.get("nonce"))
        ):
            raise NotOurs("%s:%d is not this job's node 0" % (host, port))
        conn.send({"t": "auth", "proof": _proof(key, "client", challenge["nonce"], nonce)})
        welcome, _ = conn.recv(MAX_HELLO)
        if welcome.get("t") != "welcome":
            raise ChannelError("refused by %s:%d" % (host, port))
    except BaseException:
        conn.close()
        raise
    sock.settimeout(None)
    return conn


def find_node0(host, job_id, key, rank, deadline, stopped, candidates):
    """An agent's connection to node 0: try the ports candidates() gives (node 0's published
    port, or the job's range) until one authenticates (or the deadline passes, or stopped()
    says to give up)."""
    while not stopped():
        for port in candidates():
            try:
                return connect(host, port, job_id, "agent", key, rank, timeout=2), port
            except (OSError, ChannelError):
                continue
        if time.monotonic() > deadline:
            raise ChannelError("node 0 (%s) did not answer" % host)
        time.sleep(0.2)
    raise ChannelError("stopped before node 0 answered")
