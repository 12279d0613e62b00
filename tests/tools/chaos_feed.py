"""chaos_feed.py SRC DST COPIES SECONDS - append the .scid files of SRC
(mdb-sim's output) to DST as COPIES files each (SYMBOL01.scid ...), header
first, then their records in slices every 50 ms, so the whole input arrives
over SECONDS (0: at once) as Sierra Chart appends it. The files end up the
same bytes whatever the pace; a slice always ends on a record boundary."""
import os
import sys
import time

HEADER, RECORD = 56, 40
src, dst, copies, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
files = []
for name in sorted(os.listdir(src)):
    if name.endswith(".scid"):
        with open(os.path.join(src, name), "rb") as f:
            data = f.read()
        for k in range(1, copies + 1):
            out = open(os.path.join(dst, f"{name[:-5]}{k:02d}.scid"), "wb", buffering=0)
            out.write(data[:HEADER])
            files.append((out, data))
steps = max(1, int(seconds / 0.05))
t0 = time.monotonic()
for i in range(1, steps + 1):
    for out, data in files:
        n = (len(data) - HEADER) // RECORD
        a, b = n * (i - 1) // steps, n * i // steps
        out.write(data[HEADER + a * RECORD:HEADER + b * RECORD])
    delay = t0 + i * seconds / steps - time.monotonic()
    if delay > 0:
        time.sleep(delay)
for out, _ in files:
    out.close()
