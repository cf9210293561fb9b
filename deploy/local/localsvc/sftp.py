"""An SFTP server for the fs.sftp plugin's tests: Debian's OpenSSH ``sshd`` as a plain process.

Everything lives under ``$HEADWATER_LOCAL_DIR/sftp``: ``sshd_config``, a generated host key, a
generated client key pair (``client_key``, whose public half is the only authorized key), the
pid file, the log, and ``chroot/``, the only directory clients see. The server listens on
127.0.0.1 only, accepts only that key (no passwords), for the user running it, and serves SFTP
only (``ForceCommand internal-sftp``; as root, jailed in ``chroot/``). Clients: user
:func:`login_user`, private key ``sftp/client_key``.
"""

from __future__ import annotations

import getpass
import os
import pathlib
import subprocess

from . import probes
from .base import Component, Say, Server, wait_ready
from .config import PortSpec, ServiceError
from .install import is_root

SSHD = pathlib.Path("/usr/sbin/sshd")
# sshd answers its banner at once; the margin covers busy cores.
SFTP_READY_TIMEOUT_S = 20.0
KEYGEN_TIMEOUT_S = 60.0


def login_user() -> str:
    return getpass.getuser()


def render_sshd_config(directory: pathlib.Path, port: int, user: str, root: bool) -> str:
    lines = [
        f"Port {port}",
        "ListenAddress 127.0.0.1",
        f"HostKey {directory / 'host_key'}",
        f"PidFile {directory / 'sshd.pid'}",
        f"AuthorizedKeysFile {directory / 'authorized_keys'}",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PermitRootLogin prohibit-password",
        f"AllowUsers {user}",
        "UsePAM no",
        "StrictModes no",
        "Subsystem sftp internal-sftp",
        "ForceCommand internal-sftp",
        "LogLevel INFO",
    ]
    if root:  # sshd only jails when it runs as root
        lines.append(f"ChrootDirectory {directory / 'chroot'}")
    return "\n".join(lines) + "\n"


class Sftp(Server):
    name = "sftp"
    port_key = "sftp"
    ready_timeout = SFTP_READY_TIMEOUT_S

    def _sshd(self) -> Component:
        return Component(
            "sshd",
            self.dir / "sshd.pid",
            self.dir / "sshd.log",
            (str(SSHD), str(self.dir / "sshd_config")),
            # sshd rewrites its process title over its environment, so our tag can't be read
            # back (it was taken for another program's and left running at `down`); the
            # config file's path, under this local dir, is the identity.
            None,
            owns_pid_file=False,
        )

    def components(self) -> list[Component]:
        return [self._sshd()]

    def ports(self) -> list[tuple[Component, PortSpec]]:
        return [(self._sshd(), self.cfg.port("sftp"))]

    def ready(self) -> bool:
        return probes.ssh_ready(self.cfg.ports["sftp"])

    def apt_packages(self) -> list[str]:
        return [] if SSHD.exists() else ["openssh-server"]

    def _keygen(self, path: pathlib.Path) -> None:
        if path.exists():
            return
        try:
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
                check=True,
                capture_output=True,
                timeout=KEYGEN_TIMEOUT_S,
            )
        except (subprocess.SubprocessError, OSError) as exc:
            raise ServiceError(f"ssh-keygen could not make {path}: {exc}") from exc

    def start(self, say: Say) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        chroot = self.dir / "chroot"
        chroot.mkdir(exist_ok=True)
        os.chmod(chroot, 0o755)  # noqa: S103 - sshd requires a 755 root-owned chroot
        self._keygen(self.dir / "host_key")
        self._keygen(self.dir / "client_key")
        (self.dir / "authorized_keys").write_text((self.dir / "client_key.pub").read_text())
        if is_root():
            pathlib.Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        port = self.cfg.ports["sftp"]
        config = self.dir / "sshd_config"
        config.write_text(render_sshd_config(self.dir, port, login_user(), is_root()))
        say(f"starting OpenSSH sshd (SFTP only) on 127.0.0.1:{port}")
        comp = self._sshd()
        argv = [str(SSHD), "-D", "-e", "-f", str(config)]
        process = self.spawn(comp, argv, dict(os.environ), self.dir)
        wait_ready("sshd", self.ready, SFTP_READY_TIMEOUT_S, comp.log, process)
