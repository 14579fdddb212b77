"""
nbdkit Python plugin: serves one disk of a virtnbdbackup chain, read-only, as it was at a checkpoint.

    nbdkit --readonly --unix SOCKET python chain-export-plugin.py file=<full.data> [file=<inc.data> ...]

The files are the disk's stream-format data files, the full backup first, then each incremental or differential
up to the checkpoint, in chain order. Their frames are mapped once at start (the frame headers only): every disk
range points at the newest file that holds it, or is zero. A read is served from those files with pread; nothing
is replayed or written anywhere. Compressed streams are refused (their frames are lz4 blocks, not disk bytes).

virtnbdbackup's own virtnbd-nbdkit-plugin serves only the full file and needs the incrementals replayed through a
kernel /dev/nbd device into a copy-on-write layer; this one needs neither.
"""
import bisect
import builtins
import os

import nbdkit
from libvirtnbdbackup.common import common as lib
from libvirtnbdbackup.sparsestream import streamer, types

API_VERSION = 2

files = []
# Non-overlapping segments sorted by start: starts[i], ends[i], and source[i] = (fd index, file offset) or None (zeros).
starts = []
ends = []
sources = []
size = 0
fds = []


def config(key, value):
    if key != "file":
        raise RuntimeError(f"unknown parameter {key!r}: only file=<data file> (repeated, full backup first)")
    files.append(value)


def read_frames(path):
    """The metadata and the (disk offset, length, file offset or None for zeros) frames of one stream file."""
    stream = streamer.SparseStream(types)
    kinds = types.SparseStreamTypes()
    frames = []
    with builtins.open(path, "rb") as reader:
        _, _, length = stream.readFrame(reader)
        meta = stream.loadMetadata(reader.read(length))
        if lib.isCompressed(meta):
            raise RuntimeError(f"{path} is compressed: a compressed chain cannot be served (restore it instead)")
        if reader.read(len(kinds.TERM)) != kinds.TERM:
            raise RuntimeError(f"{path}: bad metadata frame")
        while True:
            kind, start, length = stream.readFrame(reader)
            if kind == kinds.STOP:
                break
            if kind == kinds.DATA:
                frames.append((start, length, reader.tell()))
                reader.seek(length, os.SEEK_CUR)
                if reader.read(len(kinds.TERM)) != kinds.TERM:
                    raise RuntimeError(f"{path}: data frame at disk offset {start} is not terminated")
            elif kind == kinds.ZERO:
                frames.append((start, length, None))
            else:
                raise RuntimeError(f"{path}: unexpected frame {kind!r}")
    return meta, frames


def paint(start, end, source):
    """Lays [start, end) over the segments: what it covers now comes from `source`."""
    i = bisect.bisect_right(ends, start)
    j = bisect.bisect_left(starts, end)
    new_starts, new_ends, new_sources = [], [], []
    if i < j and starts[i] < start:
        new_starts.append(starts[i])
        new_ends.append(start)
        new_sources.append(sources[i])
    new_starts.append(start)
    new_ends.append(end)
    new_sources.append(source)
    if i < j and ends[j - 1] > end:
        s = sources[j - 1]
        new_starts.append(end)
        new_ends.append(ends[j - 1])
        new_sources.append(None if s is None else (s[0], s[1] + end - starts[j - 1]))
    starts[i:j] = new_starts
    ends[i:j] = new_ends
    sources[i:j] = new_sources


def config_complete():
    global size
    if not files:
        raise RuntimeError("no data file given (file=<full.data>)")
    for index, path in enumerate(files):
        meta, frames = read_frames(path)
        if index == 0:
            if meta.get("incremental"):
                raise RuntimeError(f"{path} is not a full backup: the chain must start with one")
            size = int(meta["virtualSize"])
            paint(0, size, None)
        for start, length, offset in frames:
            if length > 0 and start + length <= size:
                paint(start, start + length, None if offset is None else (index, offset))
            elif length > 0:
                raise RuntimeError(f"{path}: frame at {start}+{length} ends past the disk ({size} bytes)")
    # Opened now, before nbdkit forks: the files stay readable even if a rotation moves or a retention deletes them.
    fds.extend(os.open(path, os.O_RDONLY) for path in files)


def thread_model():
    return nbdkit.THREAD_MODEL_PARALLEL


def open(readonly):
    return 1


def get_size(h):
    return size


def can_write(h):
    return False


def can_multi_conn(h):
    return True


def can_extents(h):
    return True


def can_cache(h):
    return nbdkit.CACHE_NONE


def pread(h, buf, offset, flags):
    view = memoryview(buf)
    done = 0
    i = bisect.bisect_right(ends, offset)
    while done < len(buf):
        at = offset + done
        n = min(ends[i], offset + len(buf)) - at
        source = sources[i]
        if source is None:
            view[done:done + n] = bytes(n)
        else:
            got = os.preadv(fds[source[0]], [view[done:done + n]], source[1] + at - starts[i])
            if got != n:
                raise RuntimeError(f"short read from {files[source[0]]}")
        done += n
        i += 1


def extents(h, count, offset, flags):
    out = []
    i = bisect.bisect_right(ends, offset)
    end = offset + count
    while i < len(starts) and starts[i] < end:
        s, e = max(starts[i], offset), min(ends[i], end)
        out.append((s, e - s, 0 if sources[i] is not None else nbdkit.EXTENT_HOLE | nbdkit.EXTENT_ZERO))
        i += 1
        if flags & nbdkit.FLAG_REQ_ONE:
            break
    return out
