"""The device side of the adb transport protocol on 127.0.0.1, for the real Debian adb client to connect to.

CNXN handshake without auth; OPEN ``shell:`` (legacy protocol: output streamed with WRTE, then CLSE) and
``sync:`` (STAT/SEND/RECV/DATA/DONE/QUIT). Shell commands run with /bin/sh in a per-test device root: absolute
device paths (/data, /sys) are mapped into the root, and ``python3`` there is the arm64 Python under
``qemu-aarch64-static -cpu cortex-a76``, so the pushed runner really executes aarch64 code.
"""

from __future__ import annotations

import os
import queue
import socket
import stat
import struct
import subprocess
import threading
from pathlib import Path

A_CNXN, A_OPEN, A_OKAY, A_CLSE, A_WRTE = (struct.unpack("<I", c)[0] for c in (b"CNXN", b"OPEN", b"OKAY",
                                                                               b"CLSE", b"WRTE"))
VERSION, MAXDATA = 0x01000001, 256 * 1024
DEVICE_PATHS = ("/data/", "/sys/")


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


class LoopbackDevice:
    def __init__(self, root: Path, props: dict[str, str], python_cmd: list[str], python_env: dict[str, str],
                 vanish_after: bytes | None = None):
        self.root, self.props, self.vanish_after = root, props, vanish_after
        self.commands: list[str] = []
        self._procs: list[subprocess.Popen] = []
        self._server = socket.socket()
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(4)
        self.port = self._server.getsockname()[1]
        self._conns: list[socket.socket] = []
        self._closed = False
        self._install(python_cmd, python_env)
        threading.Thread(target=self._accept, daemon=True).start()

    # ---- the fake device's file system and tools ----
    def _install(self, python_cmd: list[str], python_env: dict[str, str]) -> None:
        bin_dir = self.root / "bin"
        for d in (bin_dir, self.root / "data/local/tmp", self.root / "sys/class/thermal/thermal_zone0"):
            d.mkdir(parents=True, exist_ok=True)
        (self.root / "sys/class/thermal/thermal_zone0/temp").write_text("36500\n")
        for cpu, khz in enumerate((1800000, 1800000, 2400000, 2400000)):  # two little, two big cores
            f = self.root / f"sys/devices/system/cpu/cpu{cpu}/cpufreq/cpuinfo_max_freq"
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(f"{khz}\n")
        props = "\n".join(f"{k}={v}" for k, v in self.props.items())
        scripts = {
            "getprop": f"#!/bin/sh\ngrep \"^$1=\" <<'EOF' | cut -d= -f2-\n{props}\nEOF\n",
            "dumpsys": "#!/bin/sh\n[ \"$1\" = battery ] && printf 'Current Battery Service state:\\n  AC powered: false\\n"
                       "  USB powered: true\\n  status: 2\\n  level: 87\\n  temperature: 301\\n'\n",
            # records the mask it was asked for, then runs the command (the host has fewer cores than the phone)
            "taskset": f"#!/bin/sh\necho \"$1\" >> {self.root}/taskset.log\nshift\nexec \"$@\"\n",
            "python3": "#!/bin/sh\n" + "".join(f"export {k}='{v}'\n" for k, v in python_env.items() if k != "PATH")
                       + "exec " + " ".join(f"'{a}'" for a in python_cmd) + " \"$@\"\n",
        }
        for name, text in scripts.items():
            (bin_dir / name).write_text(text)
            (bin_dir / name).chmod(0o755)

    def local(self, device_path: str) -> Path:
        return self.root / device_path.lstrip("/")

    def _map(self, command: str) -> str:
        for prefix in DEVICE_PATHS:
            command = command.replace(prefix, f"{self.root}{prefix}")
        return command

    # ---- transport ----
    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def close(self) -> None:
        self._closed = True
        for c in self._conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()
        self._server.close()
        for p in self._procs:
            if p.poll() is None:
                p.kill()

    def _serve(self, conn: socket.socket) -> None:
        lock = threading.Lock()
        streams: dict[int, "_Stream"] = {}
        next_id = [1]

        def send(cmd: int, a0: int, a1: int, data: bytes = b"") -> None:
            head = struct.pack("<6I", cmd, a0, a1, len(data), sum(data) & 0xFFFFFFFF, cmd ^ 0xFFFFFFFF)
            with lock:
                conn.sendall(head + data)

        try:
            while True:
                cmd, a0, a1, n, _crc, _magic = struct.unpack("<6I", _recv_exact(conn, 24))
                data = _recv_exact(conn, n) if n else b""
                if cmd == A_CNXN:
                    banner = ("device::" + "".join(f"{k}={self.props[k]};" for k in
                                                   ("ro.product.name", "ro.product.model", "ro.product.device"))
                              + "features=").encode()
                    send(A_CNXN, VERSION, MAXDATA, banner)
                elif cmd == A_OPEN:
                    local_id, next_id[0] = next_id[0], next_id[0] + 1
                    service = data.rstrip(b"\0").decode()
                    s = _Stream(self, local_id, a0, send, conn)
                    streams[local_id] = s
                    send(A_OKAY, local_id, a0)
                    if service.startswith("shell:"):
                        threading.Thread(target=s.shell, args=(service[6:],), daemon=True).start()
                    elif service.startswith("sync:"):
                        s.sync = True  # replies wait for OKAYs this reader thread receives: serve from a worker
                        threading.Thread(target=s.sync_worker, daemon=True).start()
                    else:
                        send(A_CLSE, local_id, a0)
                elif cmd == A_OKAY and a1 in streams:
                    streams[a1].acked.set()
                elif cmd == A_WRTE and a1 in streams:
                    send(A_OKAY, a1, a0)
                    streams[a1].inbox.put(data)
                elif cmd == A_CLSE and a1 in streams:
                    streams.pop(a1).closed = True
        except (ConnectionError, OSError, struct.error):
            conn.close()


class _Stream:
    def __init__(self, device: LoopbackDevice, local_id: int, remote_id: int, send, conn: socket.socket):
        self.device, self.local_id, self.remote_id, self.send, self.conn = device, local_id, remote_id, send, conn
        self.acked = threading.Event()
        self.sync, self.closed = False, False
        self.buf = b""
        self.recv_file = None
        self.inbox: queue.Queue = queue.Queue()

    def sync_worker(self) -> None:
        try:
            while not self.closed:
                try:
                    self.incoming(self.inbox.get(timeout=1))
                except queue.Empty:
                    continue
        except (ConnectionError, OSError):
            pass

    def write(self, data: bytes) -> None:
        for i in range(0, len(data), MAXDATA):
            self.acked.clear()
            self.send(A_WRTE, self.local_id, self.remote_id, data[i:i + MAXDATA])
            if not self.acked.wait(60):
                raise ConnectionError("host stopped acknowledging")

    def shell(self, command: str) -> None:
        dev = self.device
        dev.commands.append(command)
        env = {"PATH": f"{dev.root}/bin:/usr/bin:/bin", "HOME": str(dev.root), "LC_ALL": "C"}
        proc = subprocess.Popen(["/bin/sh", "-c", dev._map(command)], cwd=dev.root, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        dev._procs.append(proc)
        seen = b""
        try:
            for line in iter(proc.stdout.readline, b""):
                self.write(line)
                seen += line
                if dev.vanish_after and dev.vanish_after in seen:
                    proc.kill()
                    dev.close()  # the phone is unplugged: every connection drops at once
                    return
            proc.wait()
            self.send(A_CLSE, self.local_id, self.remote_id)
        except (ConnectionError, OSError):
            proc.kill()

    # ---- sync: requests are 4-byte id + little-endian length, possibly split across WRTE packets ----
    def incoming(self, data: bytes) -> None:
        if not self.sync:
            return
        self.buf += data
        while len(self.buf) >= 8:
            rid, n = self.buf[:4], struct.unpack("<I", self.buf[4:8])[0]
            if rid == b"DONE":  # n is the mtime for SEND's DONE
                self.buf = self.buf[8:]
                self._finish_send()
                continue
            if len(self.buf) < 8 + n:
                return
            body, self.buf = self.buf[8:8 + n], self.buf[8 + n:]
            self._request(rid, body)

    def _request(self, rid: bytes, body: bytes) -> None:
        dev = self.device
        if rid == b"STAT":
            p = dev.local(body.decode())
            if p.exists():
                st = p.stat()
                reply = struct.pack("<4s3I", b"STAT", st.st_mode, st.st_size, int(st.st_mtime))
            else:
                reply = struct.pack("<4s3I", b"STAT", 0, 0, 0)
            self.write(reply)
        elif rid == b"SEND":
            path, _, mode = body.decode().rpartition(",")
            target = dev.local(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            self.recv_file = (target, open(target, "wb"), int(mode) & 0o777)
        elif rid == b"DATA" and self.recv_file:
            self.recv_file[1].write(body)
        elif rid == b"RECV":
            p = dev.local(body.decode())
            if not p.is_file():
                msg = b"No such file or directory"
                self.write(b"FAIL" + struct.pack("<I", len(msg)) + msg)
                return
            data = p.read_bytes()
            out = b"".join(b"DATA" + struct.pack("<I", len(data[i:i + 65536])) + data[i:i + 65536]
                           for i in range(0, len(data), 65536))
            self.write(out + b"DONE" + struct.pack("<I", 0))
        elif rid == b"QUIT":
            self.send(A_CLSE, self.local_id, self.remote_id)
        else:
            msg = f"unsupported sync request {rid!r}".encode()
            self.write(b"FAIL" + struct.pack("<I", len(msg)) + msg)

    def _finish_send(self) -> None:
        if self.recv_file:
            target, f, mode = self.recv_file
            f.close()
            os.chmod(target, mode or stat.S_IRUSR | stat.S_IWUSR)
            self.recv_file = None
        self.write(b"OKAY" + struct.pack("<I", 0))
