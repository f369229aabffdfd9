#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Turns a qcow2 image file into a seed for fuzz-qcow2 (tests/fuzz/).

fuzz-qcow2 reads a sparse image: be32 file size, then records
{be32 offset, be16 length, bytes}; what no record covers reads as zeros.
Only the non-zero 512-byte blocks of the image are kept, so an image with
64 KiB clusters (mostly zeros) becomes a few hundred bytes.  Keep guest
data small in images meant as seeds: data clusters are copied too.

usage: qcow2-to-seed.py IMAGE SEED
"""
import struct
import sys

BLOCK = 512
MAX_RECORD = 65535 // BLOCK * BLOCK
FILE_MAX = 8 << 20


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[-1])
    data = open(sys.argv[1], 'rb').read()
    if len(data) > FILE_MAX:
        sys.exit('%s: %d bytes; fuzz-qcow2 takes images up to %d bytes'
                 % (sys.argv[1], len(data), FILE_MAX))
    out = [struct.pack('>I', len(data))]
    run_start = None
    for off in range(0, len(data) + BLOCK, BLOCK):
        block = data[off:off + BLOCK]
        nonzero = block.strip(b'\0') != b''
        if nonzero and run_start is None:
            run_start = off
        if run_start is not None and (not nonzero
                                      or off + BLOCK - run_start > MAX_RECORD):
            end = off if not nonzero else off + BLOCK
            chunk = data[run_start:end].rstrip(b'\0')
            out.append(struct.pack('>IH', run_start, len(chunk)) + chunk)
            run_start = None
    open(sys.argv[2], 'wb').write(b''.join(out))


if __name__ == '__main__':
    main()
