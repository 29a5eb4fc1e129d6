"""A WebSocket frame read where it lies in the parser's buffer, when the whole frame has arrived.

websockets' ``Frame.parse`` is a generator that asks for the header, the mask and the payload in
turn, each a copy and a delete at the buffer's head; for the tap's common frame (short, whole in
one read) those round trips were most of the parser's time (issue 13 profile of the tap worker).
Here the header is read in place, the payload copied once (unmasked by websockets' own C
``apply_mask``) and the buffer cut once. Whatever is not that common case — a frame not wholly
buffered, a 64-bit length, a payload over the parse limit, the wrong masking, an unknown opcode —
is left to ``Frame.parse`` (None), so every error is still raised by it, worded as before.
"""

from __future__ import annotations

from collections.abc import Sequence

from websockets.extensions.base import Extension
from websockets.frames import Frame, Opcode

try:
    from websockets.speedups import apply_mask
except ImportError:  # a websockets built without its C speedups
    from websockets.utils import apply_mask

_OPCODES = {opcode.value: opcode for opcode in Opcode}


def whole_frame(
    buffer: bytearray, *, mask: bool, max_size: int, extensions: Sequence[Extension]
) -> Frame | None:
    """The frame at the head of ``buffer``, removed from it; None (buffer untouched) if not simple."""
    held = len(buffer)
    if held < 2:
        return None
    head1 = buffer[0]
    head2 = buffer[1]
    opcode = _OPCODES.get(head1 & 0x0F)
    if opcode is None or (head2 & 0x80 != 0) != mask:
        return None
    length = head2 & 0x7F
    start = 2
    if length == 126:
        if held < 4:
            return None
        length = (buffer[2] << 8) | buffer[3]
        start = 4
    elif length == 127:
        return None
    if length > max_size:
        return None
    if mask:
        end = start + 4 + length
        if held < end:
            return None
        view = memoryview(buffer)
        try:
            data = apply_mask(view[start + 4 : end], bytes(view[start : start + 4]))
        finally:
            view.release()  # a bytearray with a live view cannot be resized
    else:
        end = start + length
        if held < end:
            return None
        data = bytes(buffer[start:end])
    del buffer[:end]
    frame = Frame(
        opcode, data, bool(head1 & 0x80), bool(head1 & 0x40), bool(head1 & 0x20), bool(head1 & 0x10)
    )
    for extension in reversed(extensions):
        frame = extension.decode(frame, max_size=max_size)
    frame.check()
    return frame
