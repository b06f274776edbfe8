"""Open NWB files for reading, turning every failure into an InputError naming the file."""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError


def file_label(nwbfile) -> str:
    """The file an NWBFile was read from, or ``<in-memory NWBFile identifier>``, for messages."""
    source = getattr(nwbfile, "container_source", None)
    return str(source) if source else f"<in-memory NWBFile {nwbfile.identifier}>"


def open_nwb(path: str | Path):
    """Open an NWB HDF5 file for reading.

    Parameters
    ----------
    path
        The file.

    Returns
    -------
    io : pynwb.NWBHDF5IO
        Open; the caller closes it.
    nwbfile : pynwb.NWBFile

    Raises
    ------
    InputError
        Missing file, a directory, not HDF5, HDF5 without ``nwb_version``, or any error pynwb
        raises while reading (object ``/``).
    """
    import h5py
    from pynwb import NWBHDF5IO

    path = Path(path)
    if not path.exists():
        raise InputError("file not found", file=path, obj="/")
    if path.is_dir():
        raise InputError(
            "is a directory, not an NWB HDF5 file (Zarr NWB files are not read here)",
            file=path,
            obj="/",
        )
    if not h5py.is_hdf5(path):
        raise InputError("not an NWB file: it is not even HDF5", file=path, obj="/")
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
    io = None
    try:
        io = NWBHDF5IO(str(path), "r")
        return io, io.read()
    except Exception as err:  # pynwb/hdmf raise many kinds; report them as bad input
        if io is not None:
            io.close()
        raise InputError(
            f"could not be read as NWB ({type(err).__name__}: {err})", file=path, obj="/"
        ) from err


def resolve_nwbfile(nwbfile_or_path):
    """An NWBFile from an NWBFile or a path.

    Returns
    -------
    nwbfile : pynwb.NWBFile
    label : str
        The file name (or in-memory label) for error messages.
    io : pynwb.NWBHDF5IO or None
        The IO opened here (the caller closes it), None when given an NWBFile.
    """
    from pynwb import NWBFile

    if isinstance(nwbfile_or_path, NWBFile):
        return nwbfile_or_path, file_label(nwbfile_or_path), None
    if isinstance(nwbfile_or_path, (str, Path)):
        io, nwbfile = open_nwb(nwbfile_or_path)
        return nwbfile, str(nwbfile_or_path), io
    raise InputError(
        f"expected an NWBFile or a path, got {type(nwbfile_or_path).__name__}",
        obj="nwbfile_or_path",
    )
