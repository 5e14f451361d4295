"""Helpers shared by the bench report scripts (run as `python3 bench/X.py`, so bench/ is on the
import path): a figure out of a mixq output file, and the CPU's name."""
import os
import re


def grab(path, pattern):
    """The first group of pattern's first match in the file (multi-line mode); None when the
    file or the match is missing."""
    if not os.path.exists(path):
        return None
    m = re.search(pattern, open(path).read(), re.M)
    return m.group(1) if m else None


def acc(path, missing=None):
    """The accuracy in percent that `mixq run` / `mixq eval` printed ("accuracy 89.19%"), or
    missing when the file or the line is not there."""
    v = grab(path, r"^accuracy ([0-9.]+)%")
    return float(v) if v is not None else missing


def cpu_name():
    """The CPU as /proc/cpuinfo names it."""
    return grab("/proc/cpuinfo", r"^model name\s*:\s*(.*)$") or "unknown CPU"
