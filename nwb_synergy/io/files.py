"""Open NWB files for reading, wherever they are, turning every failure into an InputError.

A *source* is any of:

``a local path``
    ``str`` or :class:`pathlib.Path` of an NWB HDF5 file.
``a URL``
    ``https://``/``http://`` (e.g. a DANDI asset's download or S3 address) or ``s3://bucket/key``
    of a public bucket, streamed with remfile (the way the DANDI documentation shows; fsspec
    when remfile is not installed, or with ``stream="fsspec"``). Only the byte ranges that are
    read are fetched: the file's structure, then the EMG and the Units the analysis reads,
    never the rest of a large file. ``s3://bucket/key`` is read through its public HTTPS
    address ``https://bucket.s3.amazonaws.com/key`` (no credentials are used).
``an open h5py.File``
    Read as it is and left open (closing our reader does not close it).
``a binary file object``
    Anything with ``read``/``seek``/``tell`` (``open(path, "rb")``, ``io.BytesIO``, a
    ``remfile.File``, an fsspec file); left open.
``an NWBFile``
    Already read (or built in memory); used as it is.

Pass a URL as a string: ``Path("https://host/a.nwb")`` collapses ``//`` into ``https:/host``,
which is recognised and refused with a message saying so.
"""

from __future__ import annotations

import gc
import io as _io
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..errors import InputError

#: URL schemes read by streaming
REMOTE_SCHEMES = ("https://", "http://", "s3://")
#: ways to stream a URL: remfile (default when installed) or fsspec's HTTP file system
STREAMS = ("remfile", "fsspec")

KIND_PATH = "path"
KIND_URL = "url"
KIND_H5PY = "h5py.File"
KIND_FILEOBJ = "file object"
KIND_NWBFILE = "NWBFile"


def is_url(source: object) -> bool:
    """Whether ``source`` is a URL string read by streaming (https://, http://, s3://)."""
    return isinstance(source, str) and source.strip().lower().startswith(REMOTE_SCHEMES)


def source_kind(source: object) -> str:
    """The kind of a source: "path", "url", "h5py.File", "file object" or "NWBFile".

    Raises
    ------
    InputError
        Anything else (naming its type).
    """
    import h5py
    from pynwb import NWBFile

    if isinstance(source, NWBFile):
        return KIND_NWBFILE
    if isinstance(source, h5py.File):
        return KIND_H5PY
    if is_url(source):
        return KIND_URL
    if isinstance(source, (str, Path)):
        return KIND_PATH
    if all(callable(getattr(source, a, None)) for a in ("read", "seek", "tell")):
        return KIND_FILEOBJ
    raise InputError(
        f"expected a path, an https:// or s3:// URL, an open h5py.File or binary file object, "
        f"or an NWBFile; got {type(source).__name__}",
        obj="source",
    )


def public_url(url: str) -> str:
    """``url`` without its query and fragment (signed URLs carry credentials there).

    This is what is printed and stored in results files as the source's address.
    """
    parts = urlsplit(url.strip())
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def s3_to_https(url: str) -> str:
    """``s3://bucket/key`` -> ``https://bucket.s3.amazonaws.com/key`` (other URLs unchanged)."""
    url = url.strip()
    if not url.lower().startswith("s3://"):
        return url
    parts = urlsplit(url)
    if not parts.netloc:
        raise InputError("an s3:// URL needs a bucket: s3://bucket/key", file=url, obj="/")
    return urlunsplit(("https", f"{parts.netloc}.s3.amazonaws.com", parts.path, parts.query, ""))


def file_label(nwbfile) -> str:
    """The file an NWBFile was read from, or ``<in-memory NWBFile identifier>``, for messages."""
    source = getattr(nwbfile, "container_source", None)
    if isinstance(source, str) and source and not source.startswith("<"):
        return source
    return f"<in-memory NWBFile {nwbfile.identifier}>"


def source_label(source: object) -> str:
    """How a source is named in messages and in results files (URLs without their query)."""
    kind = source_kind(source)
    if kind == KIND_URL:
        return public_url(source)
    if kind == KIND_PATH:
        return str(source)
    if kind == KIND_NWBFILE:
        return file_label(source)
    if kind == KIND_H5PY:
        name = getattr(source, "filename", "") or ""
        return name if name and not name.startswith("<") else "<open h5py.File>"
    name = getattr(source, "name", None)
    return name if isinstance(name, str) and name else f"<{type(source).__name__}>"


# -- file objects that h5py can read without deadlocking ----------------------------------------


class GCPausedFile:
    """A read-only view of a binary file object that pauses cyclic garbage collection per read.

    h5py holds its global lock while it calls a file object's ``read``. Streaming file objects
    (remfile, fsspec) fetch the bytes on service threads; if the garbage collector starts on
    such a thread and finds an h5py object to free, it waits for that lock, while the reading
    thread waits for the bytes: the process hangs for ever (h5py's documentation, "Python
    file-like objects", and h5py issue 2019). Pausing automatic collection for the duration of
    each read closes that window; collection resumes when the read returns.

    Parameters
    ----------
    inner
        A binary file object with ``read``, ``seek`` and ``tell``. It is not closed by
        :meth:`close` unless ``owned``.
    owned
        Whether closing this view closes ``inner`` (True for streams opened here).
    """

    def __init__(self, inner, *, owned: bool = False):
        self.inner = inner
        self.owned = owned
        self.name = getattr(inner, "name", None)

    def _paused(self, call, *args):
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return call(*args)
        finally:
            if was_enabled:
                gc.enable()

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (all the rest when negative), collection paused."""
        return self._paused(self.inner.read, size)

    def readinto(self, buffer) -> int:
        """Fill ``buffer`` from the current position; the number of bytes read."""
        if hasattr(self.inner, "readinto"):
            return self._paused(self.inner.readinto, buffer)
        data = self.read(len(memoryview(buffer)))
        memoryview(buffer).cast("B")[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._paused(self.inner.seek, offset, whence)

    def tell(self) -> int:
        return self.inner.tell()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def flush(self) -> None:  # read-only: nothing to write back
        pass

    @property
    def closed(self) -> bool:
        return bool(getattr(self.inner, "closed", False))

    def close(self) -> None:
        """Close the inner file object when it was opened here; otherwise leave it open."""
        if self.owned:
            self.inner.close()


# -- readers that close what they opened and nothing else -----------------------------------


def _reader_class():
    from pynwb import NWBHDF5IO

    class StreamNWBHDF5IO(NWBHDF5IO):
        """An NWBHDF5IO that, when closed, also closes the stream it was opened on."""

        _stream: Any = None

        def close(self, close_links: bool = True) -> None:
            super().close(close_links=close_links)
            stream, self._stream = self._stream, None
            if stream is not None:
                stream.close()

    return StreamNWBHDF5IO


_READER = None


def _make_reader(h5file, stream=None):
    """An NWBHDF5IO reading the open ``h5file``; ``stream`` is closed with it."""
    global _READER
    if _READER is None:
        _READER = _reader_class()
    reader = _READER(file=h5file, mode="r", load_namespaces=True)
    reader._stream = stream
    return reader


def _borrowed(h5file):
    """A second handle on a caller's open h5py.File whose ``close`` leaves the file open."""
    import h5py

    class BorrowedFile(h5py.File):
        def close(self) -> None:  # the caller's file: theirs to close
            pass

    return BorrowedFile(h5file.id)


def open_stream(url: str, stream: str | None = None):
    """A seekable binary file object reading ``url`` by HTTP range requests.

    The stream is wrapped in a :class:`GCPausedFile` (closing the wrapper closes the stream).

    Parameters
    ----------
    url
        ``https://``, ``http://`` or ``s3://`` (public bucket) URL.
    stream
        "remfile" or "fsspec"; None: remfile when installed, else fsspec.

    Raises
    ------
    InputError
        Unknown ``stream``, neither library installed, or the server refuses the URL (missing
        file, no permission, unreachable host).
    """
    if stream is None:
        try:
            import remfile  # noqa: F401
        except ImportError:
            stream = "fsspec"
        else:
            stream = "remfile"
    label = public_url(url)
    if stream not in STREAMS:
        raise InputError(f"unknown stream {stream!r}; choose from {STREAMS}", obj="stream")
    target = s3_to_https(url)
    try:
        if stream == "remfile":
            import remfile

            return GCPausedFile(remfile.File(target), owned=True)
        import fsspec

        stream_file = fsspec.filesystem("http").open(target, "rb", block_size=1 << 20)
        return GCPausedFile(stream_file, owned=True)
    except ImportError as err:
        raise InputError(
            f"streaming a URL needs {stream} ({err}); pip install remfile (or fsspec aiohttp)",
            file=label,
            obj="/",
        ) from err
    except Exception as err:  # requests/aiohttp raise many kinds: a URL that cannot be read
        raise InputError(
            f"cannot read the URL ({type(err).__name__}: {' '.join(str(err).split())})",
            file=label,
            obj="/",
        ) from err


def _open_h5(opener, label: str):
    """``opener()`` -> h5py.File, with HDF5 failures reported as not-NWB input."""
    try:
        return opener()
    except InputError:
        raise
    except OSError as err:
        text = str(err)
        if "signature" in text or "not an HDF5" in text.lower():
            raise InputError("not an NWB file: it is not even HDF5", file=label, obj="/") from err
        raise InputError(f"cannot open HDF5 file: {err}", file=label, obj="/") from err
    except Exception as err:  # a stream failing mid-read (HTTP error, dropped connection)
        raise InputError(
            f"cannot read it ({type(err).__name__}: {' '.join(str(err).split())})",
            file=label,
            obj="/",
        ) from err


def _check_is_nwb(h5file, label: str) -> None:
    if not ("nwb_version" in h5file.attrs or h5file.attrs.get("namespace") == "core"):
        raise InputError(
            "an HDF5 file but not NWB (no 'nwb_version' attribute at the root)",
            file=label,
            obj="/",
        )


def _read(reader, label: str):
    try:
        return reader.read()
    except Exception as err:  # pynwb/hdmf raise many kinds; report them as bad input
        reader.close()
        raise InputError(
            f"could not be read as NWB ({type(err).__name__}: {err})", file=label, obj="/"
        ) from err


def _check_path(path: Path) -> None:
    import h5py

    if not path.exists():
        text = str(path)
        if text.lower().startswith(("https:/", "http:/", "s3:/")):
            raise InputError(
                "file not found; this looks like a URL whose '//' was collapsed into '/' by a "
                "pathlib.Path: pass URLs as strings",
                file=path,
                obj="/",
            )
        raise InputError("file not found", file=path, obj="/")
    if path.is_dir():
        raise InputError(
            "is a directory, not an NWB HDF5 file (Zarr NWB files are not read here)",
            file=path,
            obj="/",
        )
    if not h5py.is_hdf5(path):
        raise InputError("not an NWB file: it is not even HDF5", file=path, obj="/")


def _open_path(path: Path):
    """(io, nwbfile) of a local file, opened by path (``container_source`` is the path)."""
    import h5py
    from pynwb import NWBHDF5IO

    _check_path(path)
    try:
        with h5py.File(path, "r") as f:
            is_nwb = "nwb_version" in f.attrs or f.attrs.get("namespace") == "core"
    except OSError as err:
        raise InputError(f"cannot open HDF5 file: {err}", file=path, obj="/") from err
    if not is_nwb:
        raise InputError(
            "an HDF5 file but not NWB (no 'nwb_version' attribute at the root)",
            file=path,
            obj="/",
        )
    reader = NWBHDF5IO(str(path), "r")
    return reader, _read(reader, str(path))


def open_nwb(source, *, stream: str | None = None):
    """Open an NWB HDF5 file for reading, from a path, a URL, an h5py.File or a file object.

    Parameters
    ----------
    source
        A local path, an ``https://``/``s3://`` URL, an open :class:`h5py.File`, or a binary
        file object (see the module docstring).
    stream
        How to stream a URL: "remfile" or "fsspec" (default: remfile when installed).

    Returns
    -------
    io : pynwb.NWBHDF5IO
        Open; the caller closes it. Closing it closes what was opened here (the HDF5 file, the
        stream of a URL), never the caller's own h5py.File or file object.
    nwbfile : pynwb.NWBFile

    Raises
    ------
    InputError
        Missing file, a directory, a URL that cannot be read, not HDF5, HDF5 without
        ``nwb_version``, or any error pynwb raises while reading (object ``/``).
    """
    import h5py

    kind = source_kind(source)
    if kind == KIND_NWBFILE:
        raise InputError("is already an NWBFile: nothing to open", obj="source")
    label = source_label(source)
    stream_obj = None
    if kind == KIND_PATH:
        return _open_path(Path(source))
    if kind == KIND_URL:
        stream_obj = open_stream(source, stream)
        try:
            h5file = _open_h5(lambda: h5py.File(stream_obj, "r"), label)
        except InputError:
            stream_obj.close()
            raise
    elif kind == KIND_H5PY:
        h5file = _borrowed(source)
    else:
        if isinstance(source, _io.TextIOBase):
            raise InputError("a text file object: open the file in binary mode ('rb')", obj="/")
        view = GCPausedFile(source)  # the caller's object: left open
        h5file = _open_h5(lambda: h5py.File(view, "r"), label)
    try:
        _check_is_nwb(h5file, label)
    except InputError:
        h5file.close()
        if stream_obj is not None:
            stream_obj.close()
        raise
    reader = _make_reader(h5file, stream_obj)
    return reader, _read(reader, label)


def resolve_nwbfile(source):
    """An NWBFile from any source (see the module docstring).

    Returns
    -------
    nwbfile : pynwb.NWBFile
    label : str
        The file name, URL (without query) or in-memory label, for error messages.
    io : pynwb.NWBHDF5IO or None
        The reader opened here (the caller closes it), None when given an NWBFile.
    """
    if source_kind(source) == KIND_NWBFILE:
        return source, file_label(source), None
    io, nwbfile = open_nwb(source)
    return nwbfile, source_label(source), io
