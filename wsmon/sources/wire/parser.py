"""The wire parser: one connection's handshake state and its two directions' frame readers."""

from __future__ import annotations

import codecs
import dataclasses
from collections.abc import Callable, Generator
from typing import Literal

from websockets.exceptions import PayloadTooBig, ProtocolError
from websockets.extensions.base import Extension
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import CTRL_OPCODES, Frame, Opcode
from websockets.headers import parse_extension
from websockets.streams import StreamReader
from websockets.typing import ExtensionName

from wsmon.sources.wire.http import MAX_HTTP_HEAD, parse_request, parse_response
from wsmon.sources.wire.inplace import apply_mask, whole_frame
from wsmon.sources.wire.observations import (
    SENDER,
    ControlFrame,
    DataFrame,
    Direction,
    Message,
    ParseError,
    ParserFull,
    WireObserver,
    close_frame,
)

MAX_PARSED_FRAME = 1024 * 1024  # larger frames are counted from their header and skipped, not buffered
MAX_PAIRED_MESSAGE = 256 * 1024  # larger text messages are not read for delivery pairing
# What one direction's parser may hold: a handshake head (and, on the client's side, whatever it sends
# before the server has answered), or an incomplete frame up to MAX_PARSED_FRAME. Past it the parser stops
# for that connection and says so. Without it a silent upstream made the tap keep every byte the client
# sent.
MAX_HELD_HANDSHAKE = MAX_HTTP_HEAD
MAX_HELD_FRAMES = MAX_PARSED_FRAME + 64 * 1024


# --- one connection ------------------------------------------------------------------------------------


class WireParser:
    """Both directions of one connection, and the handshake they share: the client's frames are read
    only once the server's 101 has been seen."""

    def __init__(self, observer: WireObserver, *, payloads: bool) -> None:
        self.observer = observer
        self.payloads = payloads  # read text messages (inflating them if need be) for delivery pairing
        self.request_seen = False  # the client's request head has been read
        self.upgrade = False  # ... and asks for a WebSocket
        self.status: int | None = None  # the server's answer, once read (0: not HTTP)
        self.accepted = False  # a 101 to an upgrade request: frames follow
        self.extensions = ""  # what the 101 negotiated
        self.inbound = _Direction(self, "in")
        self.outbound = _Direction(self, "out")
        # The directions' own methods, not a call that passes the bytes on: one call fewer per read.
        self.from_client: Callable[[bytes], None] = self.inbound.feed
        self.from_server: Callable[[bytes], None] = self.outbound.feed

    def _on_request(self, head: bytes) -> bool:
        """True when frames may follow (once the server agrees)."""
        self.request_seen = True
        request = parse_request(head)
        self.upgrade = request.upgrade
        self.observer.on_request(request)
        return request.upgrade

    def _on_response(self, head: bytes) -> bool:
        """True when frames follow."""
        response = parse_response(head)
        self.status = response.status
        if not self.upgrade:
            return False
        if response.accepted:
            self.extensions = response.extensions
            if self.payloads and response.extensions:
                self._set_up_inflaters(response.extensions)
            self.accepted = True
        self.observer.on_response(response)
        self.inbound.kick()  # the request's side waits for this verdict
        return self.accepted

    def _set_up_inflaters(self, header: str) -> None:
        """Inflate compressed messages for delivery pairing only, with the parameters the server chose."""
        try:
            offers = parse_extension(header)
        except Exception:
            return
        for name, params in offers:
            if name != "permessage-deflate":
                continue
            values = dict(params)
            for direction in (self.inbound, self.outbound):
                sender = SENDER[direction.name]
                bits = values.get(f"{sender}_max_window_bits")
                try:
                    direction.decoder.inflater = PerMessageDeflate(
                        remote_no_context_takeover=f"{sender}_no_context_takeover" in values,
                        # No encoder: the parser never compresses; this skips allocating one.
                        local_no_context_takeover=True,
                        remote_max_window_bits=int(bits) if bits else 15,
                        local_max_window_bits=15,
                    )
                except (AssertionError, ValueError):
                    direction.decoder.inflater = None
            return

    def _on_full(self, direction: Direction, why: str) -> None:
        if self.status is None:
            self.inbound.stop()
            self.outbound.stop()
        self.observer.on_parser_full(ParserFull(direction, why))


# --- frames --------------------------------------------------------------------------------------------


class _Decoder(Extension):
    """Hands frames to the parser as they are, except that compressed ones are inflated (for pairing)
    while an inflater is set, and their RSV1 bit is cleared either way so the frame check accepts them."""

    name = ExtensionName("permessage-deflate")

    def __init__(self) -> None:
        self.inflater: PerMessageDeflate | None = None
        self.compressed_message = False
        self.readable = True  # whether the last data frame's payload is the message's own bytes
        self.wire_size = 0

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        self.wire_size = len(frame.data)
        opcode = frame.opcode
        if opcode in CTRL_OPCODES:
            return frame
        if opcode is not Opcode.CONT:
            self.compressed_message = frame.rsv1
        if not self.compressed_message:
            self.readable = True
            return frame
        if self.inflater is not None:
            try:
                inflated = self.inflater.decode(frame, max_size=MAX_PAIRED_MESSAGE)
            except (PayloadTooBig, ProtocolError):
                self.inflater = None  # its window is lost: no more pairing of compressed messages here
            else:
                self.readable = True
                return inflated
        self.readable = False
        return dataclasses.replace(frame, rsv1=False) if frame.rsv1 else frame


_KIND: dict[int, Literal["text", "binary"]] = {Opcode.TEXT.value: "text", Opcode.BINARY.value: "binary"}
_UTF8 = codecs.getincrementaldecoder("utf-8")


def _check_utf8(data: bytes | bytearray) -> None:
    """A text message must be UTF-8 (RFC 6455 §8.1)."""
    try:
        codecs.utf_8_decode(data, "strict", True)
    except UnicodeDecodeError:
        raise ProtocolError("invalid UTF-8 in a text message") from None


class _Direction:
    """The parser of one direction: the HTTP head, then frames."""

    def __init__(self, wire: WireParser, name: Direction) -> None:
        self.wire = wire
        self.observer = wire.observer
        self.name: Direction = name
        self.mask = name == "in"  # clients mask their frames, servers do not (RFC 6455 §5.1)
        self.reader = StreamReader()
        self.decoder = _Decoder()
        self.alive = True
        self.upgraded = False
        self.message_kind: Literal["text", "binary"] = "binary"  # until a message says which it is
        self.message_parts: list[bytes] | None = None
        self.message_size = 0  # of the message's readable text, for the pairing bound
        self.message_wire_size = 0
        self.in_message = False  # a fragmented message has begun and not yet had its final frame
        self.utf8: codecs.IncrementalDecoder | None = None  # checks a fragmented text message
        # Frames follow and the generator waits at the start of one: with nothing buffered, ``feed`` then
        # reads the whole messages at the head of the bytes itself.
        self.between_frames = False
        self.parser = self._parse()
        next(self.parser)

    def feed(self, data: bytes) -> None:
        if not self.alive:
            return
        if self.between_frames and not self.reader.buffer:
            read = self._whole_messages(data)
            if read == len(data):
                return
            data = data[read:]  # a frame that is not the common case, or not whole: the generator's
        self.reader.feed_data(data)
        self._step()
        held = len(self.reader.buffer)
        if self.alive and held > (MAX_HELD_FRAMES if self.upgraded else MAX_HELD_HANDSHAKE):
            self.stop()
            self.wire._on_full(self.name, self._full_reason(held))

    def _full_reason(self, held: int) -> str:
        if self.upgraded:
            return f"{held} bytes held for one incomplete {self.name} frame"
        cap = f"{MAX_HELD_HANDSHAKE // 1024} KiB"
        if self.name == "out":
            return f"the upstream's response head is over {cap}"
        if self.wire.request_seen:
            return f"the upstream has not answered the handshake and the client sent over {cap} more"
        return f"the client's request head is over {cap}"

    def kick(self) -> None:
        """Go on with bytes already buffered."""
        if self.alive:
            self._step()

    def _step(self) -> None:
        try:
            self.parser.send(None)
        except StopIteration:
            self.stop()
        except Exception as exc:
            self.stop()
            self.observer.on_parse_error(ParseError(self.name, exc))

    def stop(self) -> None:
        """Parse no more of this direction, and let go of what it held."""
        self.alive = False
        self.between_frames = False
        self.reader.discard()
        self.message_parts = None

    def _parse(self) -> Generator[None, None, None]:
        yield  # primed; everything below runs as bytes arrive
        head = yield from self._http_head()
        if head is None:
            return
        wire = self.wire
        if self.name == "in":
            if not wire._on_request(head):
                return
            while wire.status is None:  # frames may only follow a 101, which the other side will tell
                yield
            if not wire.accepted:
                return
        elif not wire._on_response(head):
            return
        yield from self._frames()

    def _http_head(self) -> Generator[None, None, bytes | None]:
        buffer = self.reader.buffer
        while True:
            end = buffer.find(b"\r\n\r\n", 0, MAX_HTTP_HEAD + 4)
            # A head ending past the cap is too long however it arrives: found only in a chunk that
            # brought its end too, it used to be read when it came whole and refused when it came split.
            if end >= 0 and end + 4 <= MAX_HTTP_HEAD:
                head = bytes(buffer[: end + 4])
                del buffer[: end + 4]
                return head
            if len(buffer) > MAX_HTTP_HEAD:
                held = len(buffer)
                self.stop()
                self.wire._on_full(self.name, self._full_reason(held))
                return None
            yield

    def _frames(self) -> Generator[None, None, None]:
        self.upgraded = True
        buffer = self.reader.buffer
        read_exact = self.reader.read_exact
        decoder = self.decoder
        # Without a negotiated extension there is nothing to inflate, and RSV bits are errors anyway.
        extensions: list[Extension] = [decoder] if self.wire.extensions else []
        mask = self.mask
        while True:
            self.between_frames = True
            while len(buffer) < 2:
                yield
            head = buffer[0]
            try:
                frame = whole_frame(buffer, mask=mask, max_size=MAX_PARSED_FRAME, extensions=extensions)
                if frame is None:  # not wholly here yet, or not the common case: websockets reads it
                    self.between_frames = False
                    frame = yield from Frame.parse(
                        read_exact, mask=mask, max_size=MAX_PARSED_FRAME, extensions=extensions
                    )
            except PayloadTooBig as exc:
                self.between_frames = False
                size = exc.size or 0
                self._check_big_frame(head, size, bool(extensions))
                yield from self._skip(size + (4 if mask else 0))
                self._big_frame(head, size)
                continue
            if extensions:
                self._frame(frame, decoder.wire_size, decoder.readable)
            else:
                self._frame(frame, len(frame.data), True)

    def _whole_messages(self, data: bytes) -> int:
        """Reads the messages of one unfragmented, whole text or binary frame each at the head of ``data``
        (as a read from a socket mostly is) straight from it, without the buffer, the generator or a
        ``Frame``; returns how many bytes they took. It stops at the first frame that is anything else
        — not whole, a control frame, a fragment, RSV bits (a compressed message), a 64-bit length, the
        wrong masking, text that is not UTF-8 — which the generator then reads as before, errors worded
        by websockets. With permessage-deflate negotiated, the messages sent uncompressed still come
        here (servers that compress only past a size send most small ones so)."""
        if self.in_message:  # a fragmented message is being read: its continuation is the generator's
            return 0
        mask_bit = 0x80 if self.mask else 0
        name = self.name
        payloads = self.wire.payloads
        observe = self.observer.on_frame_message
        held = len(data)
        read = 0
        try:
            while held - read >= 2:
                head1 = data[read]
                head2 = data[read + 1]
                if (head1 != 0x81 and head1 != 0x82) or head2 & 0x80 != mask_bit:  # FIN, no RSV, text/binary
                    break
                size = head2 & 0x7F
                start = read + 2
                if size == 126:
                    if held - read < 4:
                        break
                    size = (data[start] << 8) | data[start + 1]
                    start += 2
                elif size == 127:
                    break
                end = start + size + (4 if mask_bit else 0)
                if end > held:
                    break
                if head1 == 0x82:
                    observe(name, "binary", size, None)
                    read = end
                    continue
                if mask_bit:
                    payload = apply_mask(data[start + 4 : end], data[start : start + 4])
                else:
                    payload = data[start:end]
                if not payload.isascii():
                    try:
                        codecs.utf_8_decode(payload, "strict", True)
                    except UnicodeDecodeError:
                        break  # the generator reads it again and stops with websockets' words
                observe(name, "text", size, payload if payloads and size <= MAX_PAIRED_MESSAGE else None)
                read = end
        except Exception as exc:  # what the generator's caller does with an observer's error
            self.stop()
            self.observer.on_parse_error(ParseError(self.name, exc))
            return held
        if read:
            # What the extension's decoder would be left with after an uncompressed message (RSV1 0):
            # a stray continuation is then not inflated on the strength of an older message.
            self.decoder.compressed_message = False
            self.decoder.readable = True
        return read

    def _skip(self, count: int) -> Generator[None, None, None]:
        buffer = self.reader.buffer
        while count > 0:
            while not buffer:
                yield
            taken = min(count, len(buffer))
            del buffer[:taken]
            count -= taken

    def _check_big_frame(self, head: int, size: int, extended: bool) -> None:
        """What Frame.parse checks after reading a payload, for a frame whose payload is skipped instead:
        without it an oversized control frame, reserved bits or a 2^63+ length passed unnoticed."""
        if size >= 1 << 63:
            raise ProtocolError(f"frame length {size} has its most significant bit set")
        if head & 0x08:
            raise ProtocolError("control frame too long")
        if head & (0x30 if extended else 0x70):
            raise ProtocolError("reserved bits must be 0")
        self._sequence(head & 0x0F, bool(head & 0x80))

    def _sequence(self, opcode: int, fin: bool) -> None:
        """Data frames must follow each other as messages: a start, then continuations up to a FIN."""
        if opcode == Opcode.CONT.value:
            if not self.in_message:
                raise ProtocolError("continuation frame without a message to continue")
        elif self.in_message:
            raise ProtocolError(f"new {Opcode(opcode).name} message before the last one's final frame")
        self.in_message = not fin

    def _big_frame(self, head: int, size: int) -> None:
        """A frame too large to buffer: counted from its header; its message is not read for pairing."""
        self.decoder.inflater = None  # a skipped compressed frame would leave the inflater's window wrong
        self.utf8 = None  # nor can this message's UTF-8 be followed across the skipped bytes
        opcode = head & 0x0F
        self.observer.on_data_frame(DataFrame(self.name, size))
        if opcode in _KIND:
            self.message_kind = _KIND[opcode]
            self.message_wire_size = 0
        self.message_wire_size += size
        self.message_parts = None
        if head & 0x80 and opcode in (0, 1, 2):
            self.observer.on_message(Message(self.name, self.message_kind, self.message_wire_size, None))

    def _frame(self, frame: Frame, wire_size: int, readable: bool) -> None:
        opcode = frame.opcode
        observer = self.observer
        data = frame.data
        if isinstance(data, memoryview):  # Frame.parse reads into bytes; only a Frame made by hand has a view
            data = bytes(data)
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            if self.in_message:
                raise ProtocolError(f"new {opcode.name} message before the last one's final frame")
            kind = _KIND[opcode.value]
            text = opcode is Opcode.TEXT and readable
            if frame.fin:  # most messages are one frame: no assembly
                if text and not data.isascii():  # isascii: the common case costs no decoding
                    try:
                        _check_utf8(data)
                    except ProtocolError:
                        observer.on_data_frame(DataFrame(self.name, wire_size))  # its bytes passed
                        raise
                pairable = self.wire.payloads and text and len(data) <= MAX_PAIRED_MESSAGE
                observer.on_frame_message(self.name, kind, wire_size, bytes(data) if pairable else None)
                return
            observer.on_data_frame(DataFrame(self.name, wire_size))
            self.in_message = True
            self.utf8 = _UTF8() if text else None
            self._check_fragment(frame, readable)
            self.message_kind = kind
            self.message_parts = [] if self.wire.payloads and opcode is Opcode.TEXT else None
            self.message_size = 0
            self.message_wire_size = wire_size
            self._collect(data, readable)
            return
        if opcode is Opcode.CLOSE:
            observer.on_close(close_frame(self.name, data))
            return
        if opcode is Opcode.PING or opcode is Opcode.PONG:
            observer.on_control(ControlFrame(self.name, "ping" if opcode is Opcode.PING else "pong"))
            return
        # A continuation frame.
        if not self.in_message:
            raise ProtocolError("continuation frame without a message to continue")
        self.in_message = not frame.fin
        self._check_fragment(frame, readable)
        observer.on_data_frame(DataFrame(self.name, wire_size))
        self.message_wire_size += wire_size
        self._collect(data, readable)
        if frame.fin:
            parts = self.message_parts
            payload = b"".join(parts) if parts is not None else None
            self.message_parts = None
            observer.on_message(Message(self.name, self.message_kind, self.message_wire_size, payload))

    def _check_fragment(self, frame: Frame, readable: bool) -> None:
        """A fragmented text message's UTF-8, followed across its frames; given up on when a frame cannot
        be read (compressed and not inflated)."""
        decoder = self.utf8
        if decoder is None:
            return
        if not readable:
            self.utf8 = None
            return
        try:
            decoder.decode(frame.data, final=frame.fin)
        except UnicodeDecodeError:
            raise ProtocolError("invalid UTF-8 in a text message") from None
        if frame.fin:
            self.utf8 = None

    def _collect(self, data: bytes | bytearray, readable: bool) -> None:
        """Keep a fragmented text message's pieces for pairing, up to a size."""
        parts = self.message_parts
        if parts is None:
            return
        self.message_size += len(data)
        if readable and self.message_size <= MAX_PAIRED_MESSAGE:
            parts.append(bytes(data))
        else:
            self.message_parts = None
