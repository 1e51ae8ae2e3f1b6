"""The unix-sim board's ROMFS partition: the firmware in memory-mapped flash.

On a board with MicroPython 1.25 or newer, the firmware's .mpy files can live in a ROMFS
partition (``mpremote romfs deploy``; docs/technician.md "Copying firmware to a board").
The flash is mapped into the address space, so MicroPython runs the bytecode in place and
the GC heap holds only what the code creates. The unix port has no such flash, so this
module provides it:

- ``build_romfs``: the .mpy build of protocol/ and firmware/ as a ROMFS image (mpremote's
  own image writer, the format ``vfs.VfsRom`` reads);
- ``python -m simulator.romfs IMAGE [micropython arguments]``: runs the unix port in this
  process with IMAGE mapped read-only outside its GC heap, and tells the unix ROM where
  (``HCP_ROMFS=address:size``); firmware/unix_rom.py mounts it at /rom with
  ``uctypes.bytearray_at``, as a board mounts its partition. A write into the mapping
  faults, as a write to flash would.

The process is the same one the ``micropython`` command starts (that command is a Python
entry point into the same ``micropython_run`` extension), so ``-X heapsize`` still bounds
the whole MicroPython heap.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import sys
from pathlib import Path
from typing import Any

IMAGE_NAME = "firmware.romfs"  # in the build folder, beside the .mpy files
ENV = "HCP_ROMFS"  # "address:size" of the mapped image, read by firmware/unix_rom.py
PACKAGES = ("protocol", "firmware")


def build_romfs(build: Path) -> Path:
    """Write build/firmware.romfs from the .mpy files of `build` (build_firmware's output)."""
    from mpremote.romfs import VfsRomWriter  # type: ignore[import-untyped]

    rom = VfsRomWriter()
    for package in PACKAGES:
        _add_dir(rom, build / package)
    out = build / IMAGE_NAME
    out.write_bytes(rom.finalise())
    return out


def _add_dir(rom: Any, folder: Path) -> None:
    rom.opendir(folder.name)
    for entry in sorted(folder.iterdir()):
        if entry.is_dir():
            _add_dir(rom, entry)
        elif entry.suffix == ".mpy":
            rom.mkfile(entry.name, entry.read_bytes())
    rom.closedir()


def map_read_only(image: Path) -> tuple[int, int]:
    """Map `image` read-only for the life of the process; returns (address, size)."""
    size = image.stat().st_size
    if size == 0:
        raise ValueError(f"{image}: empty ROMFS image")
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_long,
    ]
    fd = os.open(image, os.O_RDONLY)
    try:
        # Python's mmap object hides the address of a read-only mapping: ask libc directly.
        addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_PRIVATE, fd, 0)
    finally:
        os.close(fd)  # the mapping keeps the file
    if addr in (None, ctypes.c_void_p(-1).value):
        raise OSError(ctypes.get_errno(), f"{image}: mmap failed")
    return int(addr), size


def run(image: Path, args: list[str]) -> int:
    """Run the unix port with `args` (as the micropython command takes them), IMAGE mapped."""
    import micropython_run  # type: ignore[import-not-found]  # the unix port's wheel

    addr, size = map_read_only(image)
    os.environ[ENV] = f"{addr}:{size}"
    return int(micropython_run.run_main(["micropython", *args]) or 0)


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: python -m simulator.romfs IMAGE [micropython arguments]", file=sys.stderr)
        return 2
    return run(Path(argv[1]), argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
