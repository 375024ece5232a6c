"""Classic BPF socket filters (SO_ATTACH_FILTER) for the tests.

A filter that returns a constant keeps that many bytes of every skb it
sees (sk_filter() trims the skb) or, returning 0, drops it."""

from __future__ import annotations

import ctypes
import socket
import struct

SO_ATTACH_FILTER = 26
BPF_RET_K = 0x06  # BPF_RET | BPF_K


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def attach_keep_filter(sock: socket.socket, keep: int) -> None:
    """A one-instruction filter, `ret #keep`: the socket receives the first
    `keep` bytes of every skb (none when 0)."""
    code = ctypes.create_string_buffer(struct.pack("=HBBI", BPF_RET_K, 0, 0, keep), 8)
    prog = _SockFprog(1, ctypes.addressof(code))
    # setsockopt copies the program before it returns: `code` may go after
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, bytes(prog))
