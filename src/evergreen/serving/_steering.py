"""Which of the workers' listening sockets the kernel gives a new connection: one whose worker serves.

The supervisor's sockets (``_supervisor.py``) form one ``SO_REUSEPORT`` group on the port, indexed in the
order they started listening, which the supervisor makes the order of its worker slots. Left alone, the
kernel spreads new connections over every socket of the group by a hash of their addresses, including
the socket of a worker that died and is being replaced, where they would wait seconds (the replacement
loads its models) while the other workers idle. A classic BPF program attached to the group
(``SO_ATTACH_REUSEPORT_CBPF``: unprivileged, Linux 4.5 and later) chooses instead, for each new
connection, one of the sockets whose worker serves, at random (uniform: connections opened together
spread as they do by hash). Attaching a program replaces the group's previous one at once; a program
that names no socket leaves the choice to the kernel's hash.
"""

from __future__ import annotations

import ctypes
import socket
import struct
from collections.abc import Sequence

#: setsockopt's option that attaches a classic BPF program to a socket's SO_REUSEPORT group
#: (asm-generic/socket.h; Python's socket module does not name it).
SO_ATTACH_REUSEPORT_CBPF = 51

# Classic BPF instructions (linux/bpf_common.h, linux/filter.h): (code, jump if true, jump if false, k).
_LOAD_RANDOM = (0x20, 0, 0, (-0x1000 + 56) & 0xFFFFFFFF)  # BPF_LD|BPF_W|BPF_ABS of SKF_AD_OFF + SKF_AD_RANDOM
_MODULO = 0x94  # BPF_ALU|BPF_MOD|BPF_K: A %= k
_JUMP_IF_EQUAL = 0x15  # BPF_JMP|BPF_JEQ|BPF_K
_RETURN = 0x06  # BPF_RET|BPF_K: the index of the socket in the group
#: An index past the end of the group: the kernel then picks by its hash, as with no program.
_NO_CHOICE = 0xFFFFFFFF


def program(indexes: Sequence[int]) -> list[tuple[int, int, int, int]]:
    """The instructions that return one of ``indexes`` at random, or, with none, let the kernel choose."""
    if not indexes:
        return [(_RETURN, 0, 0, _NO_CHOICE)]
    code = [_LOAD_RANDOM, (_MODULO, 0, 0, len(indexes))]
    for drawn, index in enumerate(indexes[:-1]):
        code += [(_JUMP_IF_EQUAL, 0, 1, drawn), (_RETURN, 0, 0, index)]
    return [*code, (_RETURN, 0, 0, indexes[-1])]


def steer(sock: socket.socket, indexes: Sequence[int]) -> None:
    """Have the kernel give each new connection to the port of ``sock`` (listening, in a SO_REUSEPORT group) to
    the group's socket at one of ``indexes``, at random; with none, to any (its hash). Raises OSError where the
    kernel cannot."""
    code = program(indexes)
    instructions = ctypes.create_string_buffer(b"".join(struct.pack("=HBBI", *op) for op in code))
    # struct sock_fprog {unsigned short len; struct sock_filter *filter;}: the kernel copies the instructions.
    sock.setsockopt(
        socket.SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, struct.pack("HP", len(code), ctypes.addressof(instructions))
    )
