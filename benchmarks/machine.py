"""One line describing the machine a benchmark ran on: CPU model, the vector ISA that decides
convolution speed (AVX2 / AVX-512 / AMX), cores and load. Figures from different machines are
not comparable; the ratios printed by each benchmark (same run, same machine) are."""

from __future__ import annotations

import os
import platform

_ISA = (("amx_bf16", "AMX"), ("avx512f", "AVX-512"), ("avx2", "AVX2"), ("neon", "NEON"), ("asimd", "NEON"))


def describe() -> str:
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name":
                    model = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    isa = [name for flag, name in _ISA if flag in flags]
    isa = list(dict.fromkeys(isa))  # AMX implies AVX-512 implies AVX2: list what is there, best first
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"machine: {model}, {os.cpu_count()} CPUs, {' + '.join(isa) or 'no SIMD flags read'}, load {load:.2f}"


if __name__ == "__main__":
    print(describe())
