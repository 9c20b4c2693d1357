"""Decompression bombs and hand-made archives for the tests of the file readers: small on
disk, huge once inflated, built in milliseconds (repeated independently compressed blocks
instead of compressing gigabytes)."""
import gzip
import io
import struct
import zipfile
import zlib

import numpy as np

MIB = 1 << 20


def gzip_bomb(prefix, mib):
    """A gzip file of about ``mib`` kB inflating to ``prefix`` then ``mib`` MiB of zeros: one
    member holding the prefix, then ``mib`` identical members of a MiB of zeros each."""
    return gzip.compress(prefix, mtime=0) + gzip.compress(bytes(MIB), mtime=0) * mib


def deflate_bomb(prefix, mib):
    """``(raw deflate data, crc32, size)`` of ``prefix`` then ``mib`` MiB of zeros: a MiB of
    zeros compressed once, after a full flush (so that it refers to nothing before it), and
    repeated."""
    head = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = head.compress(prefix) + head.flush(zlib.Z_FULL_FLUSH)
    block = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = bytes(MIB)
    chunk = block.compress(zeros) + block.flush(zlib.Z_FULL_FLUSH)
    last = zlib.compressobj(9, zlib.DEFLATED, -15).flush()  # an empty final block
    crc = zlib.crc32(prefix)
    for _ in range(mib):
        crc = zlib.crc32(zeros, crc)
    return first + chunk * mib + last, crc, len(prefix) + mib * MIB


def zip_bytes(members):
    """A zip archive of ``members``: ``(name, method, data as stored, crc32, size)`` each
    (method 0 stored, 8 deflated)."""
    out, central = bytearray(), bytearray()
    for name, method, raw, crc, size in members:
        offset = len(out)
        encoded = name.encode()
        out += struct.pack("<4s2B4HL2L2H", b"PK\x03\x04", 20, 0, 0, method, 0, 0x21, crc,
                           len(raw), size, len(encoded), 0) + encoded + raw
        central += struct.pack("<4s4B4HL2L5H2L", b"PK\x01\x02", 20, 3, 20, 0, 0, method, 0,
                               0x21, crc, len(raw), size, len(encoded), 0, 0, 0, 0, 0,
                               offset) + encoded
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members),
                      len(central), len(out), 0)
    return bytes(out + central + end)


def stored_members(archive):
    """The members of a zip archive (a path or bytes), as :func:`zip_bytes` takes them."""
    source = io.BytesIO(archive) if isinstance(archive, bytes) else archive
    with zipfile.ZipFile(source) as z:
        return [(i.filename, 0, z.read(i), i.CRC, i.file_size) for i in z.infolist()]


def npy_header(shape, dtype):
    """The bytes of a .npy (version 1.0) header for an array of ``shape`` and ``dtype``."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False,
              "shape": tuple(shape)})
    return buf.getvalue()
